// GitCache: a node's bare copy of one git remote, through libgit2, and the
// Git LFS pointer format. The building blocks of git sources (issue 4):
//
//   ResolveRemote  asks the remote what a ref points to (the cheap poll:
//                  one ls-remote, no objects)
//   Fetch          brings that commit and its objects into the bare cache
//   ReadTree       lists the commit's tree recursively: regular files with
//                  their blob ids and sizes, symlinks (rejected when their
//                  target leaves the repository), submodules (reported so the
//                  caller can skip them with a warning)
//   ReadBlob       a blob's bytes
//
// The cache lives in its own directory (no working tree); it is created on
// first use. Every libgit2 error becomes a Status naming the remote and what
// was being done. Thread safety: one thread at a time per GitCache.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/cancel.h"
#include "common/base/status.h"

namespace sync_agent {

// A Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md, v1).
struct LfsPointer {
  std::string oid;  // sha256, 64 lowercase hex
  uint64_t size = 0;
};
// The pointer a blob holds, or nullopt when the blob is not an LFS pointer
// (any ordinary file). A blob that starts like a pointer but breaks the
// format (bad oid, missing size, unsorted keys, over 1024 bytes) is
// kCorruption naming what is wrong, so that a damaged pointer is never
// mirrored as if it were the file.
Result<std::optional<LfsPointer>> ParseLfsPointer(std::string_view blob);

struct GitTreeEntry {
  enum class Kind { kFile, kExecutable, kSymlink, kSubmodule };
  std::string path;  // '/'-separated, relative to the repository root
  Kind kind = Kind::kFile;
  std::string id;      // blob id (commit id for a submodule), 40 hex
  uint64_t size = 0;   // blob size (0 for a submodule)
  std::string target;  // kSymlink: the link's target
};

struct GitTree {
  std::string commit;
  std::string tree_id;
  int64_t commit_time = 0;            // committer time, Unix seconds
  std::string parent;                 // first parent commit id, "" for a root commit
  std::vector<GitTreeEntry> entries;  // sorted by path
};

class GitCache {
 public:
  ~GitCache();
  GitCache(const GitCache&) = delete;
  GitCache& operator=(const GitCache&) = delete;

  // Opens the bare cache in dir for url (a URL, a local path or file://),
  // creating it if dir does not exist yet. http_headers ("Name: value") go
  // with every request to an http(s) remote, for example an Authorization.
  static Result<std::unique_ptr<GitCache>> Open(const std::string& dir, const std::string& url,
                                                std::vector<std::string> http_headers = {});

  // The commit the remote's ref names now: ref may be a branch ("main"), a
  // tag ("v1.0"), a full ref ("refs/heads/main") or a 40-hex commit id
  // (returned as is). kNotFound names the ref and the refs the remote has;
  // an unreachable remote is kNetwork.
  Result<std::string> ResolveRemote(const std::string& ref);
  // Fetches ref (force: history rewritten upstream is followed) and returns
  // the commit it names; the objects are in the cache afterwards. Setting
  // *cancel stops the transfer (kCancelled).
  Result<std::string> Fetch(const std::string& ref, const CancelFlag* cancel = nullptr);
  // Whether the cache holds this commit (40 hex) already.
  bool HasCommit(const std::string& commit);
  // The tree of a commit in the cache. A symlink whose target leaves the
  // repository is kInvalidArgument naming it.
  Result<GitTree> ReadTree(const std::string& commit);
  // A blob's bytes; kInvalidArgument beyond max_bytes.
  Result<std::string> ReadBlob(const std::string& blob_id, uint64_t max_bytes);

  const std::string& url() const { return url_; }

 private:
  struct Rep;
  GitCache(std::string url, std::unique_ptr<Rep> rep);
  std::string url_;
  std::unique_ptr<Rep> rep_;
};

// Makes libgit2 trust the CA certificates in this PEM file for https remotes
// (process-wide).
Status SetGitCaFile(const std::string& path);

// The name of a remote's bare cache in a directory of caches: 16 hex digits
// of the sha256 of its URL, so that each remote has its own.
std::string GitCacheName(const std::string& url);

// Whether a symlink at path with this target stays inside the repository.
bool SymlinkStaysInside(std::string_view path, std::string_view target);

}  // namespace sync_agent
