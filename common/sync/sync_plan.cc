#include "common/sync/sync_plan.h"

#include <algorithm>
#include <unordered_map>

#include "common/store/object_store.h"

namespace sync_agent {

const char* FetchMethodName(FetchMethod m) {
  switch (m) {
    case FetchMethod::kReuse:
      return "reuse";
    case FetchMethod::kDelta:
      return "delta";
    case FetchMethod::kRanges:
      return "ranges";
    case FetchMethod::kWhole:
      return "whole";
  }
  return "?";
}

SyncPlan PlanSync(const Manifest& target, const ObjectStore& store) {
  SyncPlan plan;
  std::unordered_map<std::string, bool> have;  // sha256 -> in store
  std::unordered_map<std::string, size_t> queued;
  plan.methods.reserve(target.files.size());
  for (const ManifestEntry& e : target.files) {
    auto it = have.find(e.sha256);
    if (it == have.end()) it = have.emplace(e.sha256, store.Has(e.sha256, e.size)).first;
    if (it->second) {
      plan.methods.push_back(FetchMethod::kReuse);
      plan.bytes_reused += e.size;
      plan.files_reused++;
      continue;
    }
    plan.methods.push_back(FetchMethod::kWhole);
    plan.files_fetched++;
    if (queued.emplace(e.sha256, plan.fetches.size()).second) {
      plan.fetches.push_back({e.sha256, e.xxh3_128, e.size, e.path, plan.methods.size() - 1});
      plan.bytes_to_fetch += e.size;
    }
  }
  std::stable_sort(plan.fetches.begin(), plan.fetches.end(),
                   [](const ObjectFetch& a, const ObjectFetch& b) { return a.size > b.size; });
  return plan;
}

}  // namespace sync_agent
