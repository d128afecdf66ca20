// The JSON answers of a Hugging Face-compatible hub's API that HubSource
// reads, parsed and checked without any I/O (so that they can be tested and
// fuzzed on their own): the repository info of a revision and the pages of
// a revision's tree. Whole numbers beyond 2^64 - 1 are refused rather than
// wrapped (FindJsonNumberOverflow). Errors are kInvalidArgument: JSON that
// does not parse or has the wrong shape names what it is ("repository info
// from <url>", "tree page from <url>"); an entry without what HubSource
// needs names context, the entry and the url.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

// GET /api/{models|datasets}/{repo}/revision/{ref}.
struct HubRevisionInfo {
  std::string sha;            // 40 lowercase hex: the commit
  std::string last_modified;  // as the hub gave it ("" when absent)
};
Result<HubRevisionInfo> ParseHubRevisionInfo(const std::string& text, const std::string& context,
                                             const std::string& url);

// A file entry of GET /api/.../tree/{sha}?recursive=true.
struct HubTreeFile {
  std::string path;        // as the hub gave it: the manifest checks it later
  std::string blob;        // 40 lowercase hex: the git blob (an LFS file's pointer)
  uint64_t size = 0;       // the blob's size
  bool lfs = false;        // a Git LFS file: its content is lfs_sha256 and lfs_size
  std::string lfs_sha256;  // 64 lowercase hex ("sha256:" dropped)
  uint64_t lfs_size = 0;
};
// The files of one tree page, in page order. Directories are skipped, and so
// are the files selected(path) refuses, before their "lfs" is read; any other
// type is an error.
Result<std::vector<HubTreeFile>> ParseHubTreePage(
    const std::string& text, const std::string& context, const std::string& url,
    const std::function<bool(const std::string& path)>& selected);

// One page of GET /api/{models|datasets}?author={org}: a JSON array of
// repository objects, each named by "id" ("org/name"; a model's legacy
// "modelId" when "id" is absent). The ids in page order; an entry without
// either is an error naming the entry and url. Ids are returned as given:
// the caller checks them against the organisation it asked for.
Result<std::vector<std::string>> ParseHubRepoListPage(const std::string& text,
                                                      const std::string& context,
                                                      const std::string& url);

}  // namespace sync_agent
