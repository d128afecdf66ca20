// Pins: an operator holds a repository at one revision the node keeps
// (`sync-agent pin ORG/NAME REVISION`), as a rollback. Later runs still poll
// and fetch, but serve only the pinned revision until `sync-agent unpin`.
//
// Every change of the served revision, here and in a run's swap, happens
// under the state directory's SwapLock and re-reads the pin under it, so a
// run that started before a pin never swaps past it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/db/state_db.h"

namespace sync_agent {

class Env;

struct PinPaths {
  std::string mirror_root;
  std::string state_dir;
};

struct PinResult {
  std::string revision;     // the full revision pinned
  std::string was_serving;  // "" if none
  bool swapped = false;     // the served tree changed
  std::optional<PinRow> previous_pin;
};

// Pins repo to revision, which may be a unique prefix (at least 4
// characters) of a revision the node holds (active or retained, with its
// tree on disk), and serves it. A revision the node does not hold is
// kNotFound with a message that lists the revisions it holds.
Result<PinResult> PinRevision(Env* env, StateDb* db, const PinPaths& paths, const std::string& repo,
                              const std::string& revision, int64_t now_ms);

// Removes the pin of repo; the next run serves the latest revision again.
// Returns the pin removed (none if there was none).
Result<std::optional<PinRow>> Unpin(StateDb* db, const std::string& repo);

// Serves the pinned revision of repo if the served link names another (a
// pin that a killed `pin` recorded but did not swap). Returns the revision
// it swapped to, "" if it changed nothing.
Result<std::string> ApplyPin(Env* env, StateDb* db, const PinPaths& paths, const std::string& repo);

// "a1b2c3d (active), 9f8e7d6 (retained)": what the node holds of repo,
// for messages.
std::string DescribeHeldRevisions(const std::vector<RevisionRow>& revisions);

}  // namespace sync_agent
