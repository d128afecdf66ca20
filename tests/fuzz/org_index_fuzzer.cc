// The organisation index (schema/org_index.md, ParseOrgIndex). Invariants:
// errors are kInvalidArgument or kUnsupported; an accepted index has at
// most max_repos names, each "acme/<name>" and valid, none twice; and it
// serializes to text that parses back to the same index.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "common/manifest/manifest.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sync_agent;
  const std::string text(fuzz::AsText(data, size));
  constexpr size_t kMaxRepos = 64;
  auto index = ParseOrgIndex(text, "acme", "fuzz", kMaxRepos, 1 << 20);
  if (!index.ok()) {
    SA_FUZZ_CHECK(index.status().code() == Status::Code::kInvalidArgument ||
                  index.status().code() == Status::Code::kUnsupported);
    return 0;
  }
  SA_FUZZ_CHECK(index->repos.size() <= kMaxRepos);
  std::set<std::string> seen;
  for (const std::string& r : index->repos) {
    SA_FUZZ_CHECK(IsValidRepoName(r) && r.rfind("acme/", 0) == 0);
    SA_FUZZ_CHECK(seen.insert(r).second);
  }
  auto again = ParseOrgIndex(SerializeOrgIndex(*index), "acme", "fuzz", kMaxRepos, 1 << 20);
  SA_FUZZ_CHECK(again.ok());
  SA_FUZZ_CHECK(again->repos == index->repos && again->updated == index->updated);
  return 0;
}
