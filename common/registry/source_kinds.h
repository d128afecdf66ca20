// The source kinds this agent knows, in one place: publish roots
// (`sources`), git remotes (`git`) and Hugging Face-compatible hubs (`hub`).
// A new kind is added here and nowhere else in the core.
#pragma once

#include <vector>

#include "common/source/source_kind.h"

namespace sync_agent {

// In the order messages list them. The kinds live as long as the process.
const std::vector<const SourceKind*>& BuiltinSourceKinds();

}  // namespace sync_agent
