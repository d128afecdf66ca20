// A SyncPlan says which files of a target revision the node's object store
// already has (reuse) and which contents must be fetched. How each fetched
// content is obtained (delta, ranges or whole) is decided per content by
// ObjectFetcher during the transfer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/manifest/manifest.h"

namespace sync_agent {

class ObjectStore;

enum class FetchMethod { kReuse, kDelta, kRanges, kWhole };
const char* FetchMethodName(FetchMethod m);

struct ObjectFetch {
  std::string sha256;
  std::string xxh3_128;
  uint64_t size = 0;
  std::string first_path;  // a path that names this content, for messages
  size_t entry = 0;        // index of that path's manifest entry
};

struct SyncPlan {
  std::vector<FetchMethod> methods;  // one per manifest.files entry: kReuse or kWhole
  std::vector<ObjectFetch> fetches;  // distinct objects to download, largest first
  uint64_t bytes_to_fetch = 0;       // sum of fetches' sizes
  uint64_t bytes_reused = 0;         // bytes of files served from the store
  uint64_t files_reused = 0;
  uint64_t files_fetched = 0;
};

// Decides per file; reads no file content (a stat per distinct object).
SyncPlan PlanSync(const Manifest& target, const ObjectStore& store);

}  // namespace sync_agent
