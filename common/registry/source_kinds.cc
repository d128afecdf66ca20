#include "common/registry/source_kinds.h"

#include "common/git/git_source.h"
#include "common/hub/hub_source.h"
#include "common/source/publish_root_source.h"

namespace sync_agent {

const std::vector<const SourceKind*>& BuiltinSourceKinds() {
  static const PublishRootKind publish;
  static const GitKind git;
  static const HubKind hub;
  static const std::vector<const SourceKind*> kinds = {&publish, &git, &hub};
  return kinds;
}

}  // namespace sync_agent
