// Following whole organisations: each pass turns the [[repo]] tables named
// "ORG/*" (Config::orgs) into concrete repositories, before anything is
// polled.
//
//   discover  ask the table's origin for the organisation's repositories:
//             a hub's GET /api/{models|datasets}?author=ORG (every page), a
//             publish root's ORG/index.json (schema/org_index.md); the
//             sources in order, the first that answers wins
//   select    the table's include/exclude globs on names; a repository an
//             explicit [[repo]] names is left to that table
//   record    org_follows and org_repos (schema/database.md): a repository
//             listed again loses its missing mark, one no longer listed is
//             marked missing since now and kept (not polled, still served)
//   prune     with prune_missing, a missing one is removed
//             (SyncEngine::RemoveRepository)
//
// A failed discovery changes nothing: it is recorded (status shows it) and
// logged, and the repositories already followed are synced as before. A
// repository that no longer matches include/exclude, or whose glob left
// the config, is no longer followed: it stays on the node as an
// unconfigured repository, like a [[repo]] removed from the config.
#pragma once

#include <string>
#include <vector>

#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/config/config.h"
#include "common/db/state_db.h"

namespace sync_agent {

class Env;
class SyncEngine;

// What one organisation glob's discovery did this pass.
struct OrgDiscovery {
  std::string glob;
  Status status;  // OK, or why the discovery (or a prune) failed
  size_t listed = 0;
  // Served names.
  std::vector<std::string> added, returned, missing, pruned;
};

struct OrgExpansion {
  // config.repos, then each glob's followed repositories that its origin
  // lists (missing ones are not polled), each with the table's settings.
  std::vector<RepoConfig> repos;
  std::vector<OrgDiscovery> discoveries;
  bool failed() const;  // some discovery or prune failed
};

// Discovers, records and prunes every organisation glob of config (see the
// top of this file), and forgets globs no longer configured. engine removes
// pruned repositories; cancel stops a discovery early (it then fails).
// The caller holds the run lock. Never fails as a whole: a glob's failure
// is in its OrgDiscovery and the pass goes on with what is known.
OrgExpansion ExpandOrgFollows(Env* env, const Config& config, StateDb* db, SyncEngine* engine,
                              const CancelFlag* cancel, int64_t now_ms);

// Without asking any origin: config.repos and the repositories the
// database says each configured glob follows, missing ones included (they
// are still served), for status and verify.
Result<std::vector<RepoConfig>> ConfiguredAndFollowedRepos(StateDb* db, const Config& config);

// The [[repo]] of a followed repository: the table's settings under name.
RepoConfig FollowedRepoConfig(const OrgFollowConfig& org, const std::string& name);

}  // namespace sync_agent
