// The hub API's JSON answers (common/hub/hub_json): the input is read as a
// revision's repository info, as a tree page and as a page of a repository
// list (every id it gives is non-empty). Invariants: a parsed sha or
// blob is 40 lowercase hex and an LFS sha256 64; files come in page order;
// a selection only drops files (what a page with every file selected gives,
// filtered, is what the selection gives); errors are kInvalidArgument.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/hub/hub_json.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

bool IsHex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const std::string kUrl = "http://127.0.0.1:1/api/models/acme/m/tree/x";

void CheckInfo(const std::string& text) {
  Result<HubRevisionInfo> info = ParseHubRevisionInfo(text, "hub acme/m", kUrl);
  if (!info.ok()) {
    SA_FUZZ_CHECK(info.status().code() == Status::Code::kInvalidArgument);
    return;
  }
  SA_FUZZ_CHECK(IsHex(info->sha, 40));
}

void CheckTree(const std::string& text) {
  auto all = ParseHubTreePage(text, "hub acme/m", kUrl, [](const std::string&) { return true; });
  // Every other file by path length: a selection that depends on the path only.
  auto even = [](const std::string& path) { return path.size() % 2 == 0; };
  auto some = ParseHubTreePage(text, "hub acme/m", kUrl, even);
  if (!all.ok()) {
    SA_FUZZ_CHECK(all.status().code() == Status::Code::kInvalidArgument);
    if (!some.ok()) SA_FUZZ_CHECK(some.status().code() == Status::Code::kInvalidArgument);
    return;
  }
  SA_FUZZ_CHECK(some.ok());
  std::vector<const HubTreeFile*> expected;
  for (const HubTreeFile& f : *all) {
    SA_FUZZ_CHECK(IsHex(f.blob, 40));
    if (f.lfs) SA_FUZZ_CHECK(IsHex(f.lfs_sha256, 64));
    if (!f.lfs) SA_FUZZ_CHECK(f.lfs_sha256.empty() && f.lfs_size == 0);
    if (even(f.path)) expected.push_back(&f);
  }
  SA_FUZZ_CHECK(expected.size() == some->size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const HubTreeFile& a = *expected[i];
    const HubTreeFile& b = (*some)[i];
    SA_FUZZ_CHECK(a.path == b.path && a.blob == b.blob && a.size == b.size && a.lfs == b.lfs &&
                  a.lfs_sha256 == b.lfs_sha256 && a.lfs_size == b.lfs_size);
  }
}

void CheckRepoList(const std::string& text) {
  auto ids = ParseHubRepoListPage(text, "hub acme", kUrl);
  if (!ids.ok()) {
    SA_FUZZ_CHECK(ids.status().code() == Status::Code::kInvalidArgument);
    return;
  }
  for (const std::string& id : *ids) SA_FUZZ_CHECK(!id.empty());
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(sync_agent::fuzz::AsText(data, size));
  sync_agent::CheckInfo(text);
  sync_agent::CheckTree(text);
  sync_agent::CheckRepoList(text);
  return 0;
}
