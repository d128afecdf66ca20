// GitSource: a git remote with Git LFS as a Source. The sync engine sees each
// commit as a published revision would look: the "pointer" names the commit
// the ref points to, the "manifest" lists the commit's files (revision id =
// commit id), and "objects/<sha256>" are the files' contents.
//
//   FetchPointer   ls-remote for the ref (no objects move); when the commit
//                  is the one the last poll saw, not_modified. Otherwise the
//                  commit is fetched into the bare cache (forced, so a force
//                  push is followed) and its tree read into a manifest.
//   FetchManifest  that manifest: regular blobs hashed from the object
//                  database; Git LFS files by their pointer's oid (sha256)
//                  and size, without xxh3 (known only once downloaded).
//   FetchFile      an object: a regular blob from the cache, or a Git LFS
//                  object from the local remote's LFS store or through the
//                  batch API, resumable from an offset. Git sources publish no
//                  signatures or deltas (kNotFound).
//   FetchRanges    ranges of an object, so that large LFS objects come in
//                  chunks over several connections (a Fork() each). The
//                  engine verifies every object against the manifest (an LFS
//                  object against its oid and size).
//
// Symlinks are resolved inside the commit (a link to a file lists the file's
// content under the link's path, a link to a directory the directory's
// files); one leaving the repository or pointing at nothing is refused.
// Submodules are skipped with a warning. Thread safety: one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/git/git_cache.h"
#include "common/git/lfs_reader.h"
#include "common/source/source.h"

namespace sync_agent {

class GitSource final : public Source {
 public:
  // url: the remote as configured; options.git says which ref and where the cache is.
  GitSource(std::string url, Env* env, SourceOptions options);
  ~GitSource() override;

  const std::string& root() const override { return url_; }
  Result<PointerFetch> FetchPointer(const std::string& repo,
                                    const PointerValidators* prev) override;
  Result<std::string> FetchManifest(const std::string& repo, const std::string& revision) override;
  Status FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                   ObjectSink* sink) override;
  Status FetchRanges(const std::string& repo, const std::string& rel_path, uint64_t file_size,
                     const std::vector<ByteRange>& ranges, const RangeSink& sink) override;
  std::string FileLocation(const std::string& repo, const std::string& rel_path) const override;
  std::unique_ptr<Source> Fork() const override;
  // Only LFS objects of a network remote: blobs and a local LFS store are on disk.
  bool ChunksHelp(const std::string& sha256) const override;

 private:
  // Where a content listed in the manifest comes from.
  struct Content {
    bool lfs = false;
    std::string blob;  // regular file: its blob
    uint64_t size = 0;
  };
  // What a blob stands for: its own content, or the LFS object it points to.
  struct BlobDigest {
    std::string sha256, xxh3_128;  // xxh3_128 "" for an LFS object
    uint64_t size = 0;
    bool lfs = false;
  };
  Status OpenCache();
  // Builds (and keeps) the manifest of a commit already in the cache.
  Status BuildManifest(const std::string& repo, const std::string& commit);
  std::string Context() const;

  std::string url_;
  Env* env_;
  SourceOptions options_;
  std::unique_ptr<GitCache> cache_;
  LfsReader lfs_;
  std::string manifest_commit_;  // whose manifest manifest_text_ is
  std::string manifest_text_;
  std::map<std::string, Content> contents_;                   // by sha256
  std::unordered_map<std::string, BlobDigest> blob_digests_;  // by blob id
};

}  // namespace sync_agent
