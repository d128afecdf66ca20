// GitSource: a git remote with Git LFS as a Source. Each commit is a
// revision whose id is the commit id.
//
//   Poll           ls-remote for the ref (no objects move); the commit the
//                  last poll saw is not_modified. Otherwise the commit is
//                  fetched into the bare cache (forced, so a force push is
//                  followed); revision and fingerprint are the commit id.
//   FetchRevision  the commit's tree as a manifest: regular blobs hashed
//                  from the object database; Git LFS files by their pointer's
//                  oid (sha256) and size, without xxh3 (known only once
//                  downloaded). Provenance: the commit and tree, and each
//                  file's blob ("lfs" for pointers).
//   FetchContent   by the entry's provenance: a regular blob from the cache,
//                  or a Git LFS object from the local remote's LFS store or
//                  through the batch API, resumable from an offset; ranges
//                  likewise, so that large LFS objects come in chunks over
//                  several connections (a Fork() each). No signatures or
//                  deltas.
//
// Symlinks are resolved inside the commit (a link to a file lists the file's
// content under the link's path, a link to a directory the directory's
// files); one leaving the repository or pointing at nothing is refused.
// Submodules are skipped with a warning. Thread safety: one thread at a time.
//
// The [[repo]] keys of this kind (GitKind): git = "<remote>", ref = "<ref>".
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/git/git_cache.h"
#include "common/git/lfs_reader.h"
#include "common/source/source.h"
#include "common/source/source_kind.h"

namespace sync_agent {

class GitSource final : public Source {
 public:
  // url: the remote as configured; ref: the branch, tag, full ref or commit
  // to follow; cache_dir: its bare cache, created on first use.
  GitSource(std::string url, std::string repo, std::string ref, std::string cache_dir,
            SourceOptions options);
  ~GitSource() override;

  const std::string& url() const override { return url_; }
  const std::string& repo() const override { return repo_; }
  Result<PollResult> Poll(const PollValidators* prev) override;
  Result<RevisionListing> FetchRevision(const PollResult& poll) override;
  Status FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) override;
  Status FetchContentRanges(const ContentRef& content, const std::vector<ByteRange>& ranges,
                            const RangeSink& sink) override;
  std::string ContentLocation(const ContentRef& content) const override;
  std::unique_ptr<Source> Fork() const override;
  // Only LFS objects of a network remote: blobs and a local LFS store are on disk.
  bool ChunksHelp(const ContentRef& content) const override;

 private:
  // What a blob stands for: its own content, or the LFS object it points to.
  struct BlobDigest {
    std::string sha256, xxh3_128;  // xxh3_128 "" for an LFS object
    uint64_t size = 0;
    bool lfs = false;
  };
  // Where a ContentRef's bytes are: its provenance, checked.
  struct Place {
    bool lfs = false;
    std::string blob;
  };
  Result<Place> PlaceOf(const ContentRef& content) const;
  Status OpenCache();
  // Builds (and keeps) the manifest of a commit already in the cache.
  Status BuildManifest(const std::string& commit);
  std::string Context() const;

  std::string url_;
  std::string repo_;
  std::string ref_;
  std::string cache_dir_;
  Env* env_;
  SourceOptions options_;
  std::unique_ptr<GitCache> cache_;
  LfsReader lfs_;
  std::string manifest_commit_;  // whose manifest manifest_ is
  Manifest manifest_;
  std::string manifest_text_;
  std::unordered_map<std::string, BlobDigest> blob_digests_;  // by blob id
  std::unordered_map<std::string, uint64_t> sizes_;  // of the manifest's contents, by sha256
};

// A git remote as a repository's source.
class GitSpec final : public SourceSpec {
 public:
  GitSpec(std::string remote, std::string ref) : remote_(std::move(remote)), ref_(std::move(ref)) {}
  const char* kind() const override { return "git"; }
  std::vector<std::string> urls() const override { return {remote_}; }
  Result<std::unique_ptr<Source>> Make(const std::string& url, const std::string& repo,
                                       const SourceOptions& options) const override;
  std::vector<SpecField> Describe() const override;
  const std::string& remote() const { return remote_; }
  const std::string& ref() const { return ref_; }

 private:
  std::string remote_;
  std::string ref_;
};

// `git = "https://host/repo.git" | "file:///path" | "/path"`, `ref = "main"`.
class GitKind final : public SourceKind {
 public:
  const char* name() const override { return "git"; }
  const char* description() const override { return "a git repository"; }
  const char* selector() const override { return "git"; }
  std::vector<std::string> keys() const override { return {"git", "ref"}; }
  Result<std::shared_ptr<const SourceSpec>> Parse(const RepoTable& table) const override;
};

}  // namespace sync_agent
