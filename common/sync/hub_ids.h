// The names the node gives a revision and its files when it serves them
// through the Hugging Face Hub API (common/serve/hub_api.h), computed once
// per revision at sync, before it is activated, and recorded in SQLite
// (StateDb::SetHubIds); the server only reads them.
//
//   revision  hub_sha: the commit id for revisions taken from git or a hub
//             (provenance "commit"), else the first 40 hex digits of the
//             manifest's sha256: stable, and the same on every node.
//   file      the blob id the source gave (provenance "blob", "lfs"); else
//             for files from kHubLfsMinBytes on a Git LFS file (the blob id
//             of its pointer text, which needs only sha256 and size), and
//             for smaller ones the git blob id of the content, read once
//             from the object store.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/status.h"
#include "common/db/state_db.h"

namespace sync_agent {

class ObjectStore;

// Files from this size on are shown as Git LFS files (the Hub refuses
// larger regular files).
inline constexpr uint64_t kHubLfsMinBytes = 10ULL << 20;

// Computes and records the Hub API ids of revision (its files' contents must
// be in store). On failure nothing is recorded.
Status RecordHubIds(StateDb* db, ObjectStore* store, const RevisionRow& revision);

}  // namespace sync_agent
