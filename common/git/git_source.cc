#include "common/git/git_source.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/base/json_text.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "common/source/source_impl.h"

namespace sync_agent {
namespace {

constexpr size_t kChunk = 1 << 20;
// Symlinks may point at symlinks; more hops than this is a loop.
constexpr int kMaxSymlinkRounds = 16;

HttpClientOptions LfsHttpOptions(const SourceOptions& options) {
  HttpClientOptions http;
  http.io_timeout = options.io_timeout;
  http.ca_file = options.ca_file;
  http.limiter = options.limiter;
  return http;
}

std::vector<std::string> GitHeaders(const SourceOptions& options) {
  if (options.authorization.empty()) return {};
  return {"Authorization: " + options.authorization};
}

// The path a symlink at link_path with this (relative, inside) target names,
// "" for the repository's root.
std::string ResolveLinkTarget(const std::string& link_path, const std::string& target) {
  std::vector<std::string> parts;
  auto walk = [&parts](const std::string& s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('/', start);
      if (end == std::string::npos) end = s.size();
      std::string c = s.substr(start, end - start);
      if (c == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!c.empty() && c != ".") {
        parts.push_back(c);
      }
      start = end + 1;
    }
  };
  size_t slash = link_path.rfind('/');
  if (slash != std::string::npos) walk(link_path.substr(0, slash));
  walk(target);
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

bool HasPrefixDir(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// "objects/ab/<sha256>" -> sha256, else "".
std::string ObjectSha(const std::string& rel_path) {
  if (rel_path.size() != 8 + 3 + 64 || rel_path.compare(0, 8, "objects/") != 0) return "";
  std::string sha = rel_path.substr(11);
  if (!IsLowerHex(sha, 64) || PublishedObjectPath(sha) != rel_path) return "";
  return sha;
}

}  // namespace

GitSource::GitSource(std::string url, Env* env, SourceOptions options)
    : url_(std::move(url)),
      env_(env),
      options_(std::move(options)),
      lfs_(env, url_, LfsHttpOptions(options_), options_.authorization) {}

GitSource::~GitSource() = default;

std::string GitSource::Context() const { return "git " + url_ + " " + options_.git.ref; }

Status GitSource::OpenCache() {
  if (cache_) return Status::OK();
  if (!options_.ca_file.empty()) SA_RETURN_IF_ERROR(SetGitCaFile(options_.ca_file));
  SA_RETURN_IF_ERROR(CreateDirs(env_, DirName(options_.git.cache_dir), 0755));
  SA_ASSIGN_OR_RETURN(cache_, GitCache::Open(options_.git.cache_dir, url_, GitHeaders(options_)));
  return Status::OK();
}

Result<PointerFetch> GitSource::FetchPointer(const std::string& repo,
                                             const PointerValidators* prev) {
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  auto resolved = cache_->ResolveRemote(options_.git.ref);
  if (!resolved.ok()) return resolved.status().WithContext(Context());
  std::string commit = *resolved;
  PointerFetch out;
  if (prev != nullptr && prev->etag == commit) {
    out.not_modified = true;
    out.validators = *prev;
    return out;
  }
  if (!cache_->HasCommit(commit)) {
    auto fetched = cache_->Fetch(options_.git.ref, options_.cancel);
    if (!fetched.ok()) return fetched.status().WithContext(Context());
    if (*fetched != commit) {
      LogInfo("the ref moved while fetching; taking the newer commit",
              {{"remote", url_}, {"ref", options_.git.ref}, {"commit", *fetched}});
      commit = *fetched;
    }
  }
  SA_RETURN_IF_ERROR(BuildManifest(repo, commit).WithContext(Context() + " commit " + commit));
  RevisionPointer pointer;
  pointer.repo = repo;
  pointer.revision = commit;
  pointer.manifest = PublishedManifestPath(commit);
  pointer.manifest_sha256 = Sha256Hex(manifest_text_);
  pointer.published = FormatIsoTime(SystemTime::clock::now());
  out.body = SerializePointer(pointer);
  out.validators.etag = commit;
  out.validators.pointer_sha256 = Sha256Hex(out.body);
  return out;
}

Result<std::string> GitSource::FetchManifest(const std::string& repo,
                                             const std::string& revision) {
  if (revision != manifest_commit_) {
    SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
    if (!cache_->HasCommit(revision)) {
      return Status::NotFound(Context(), "commit " + revision + " is not in the cache");
    }
    SA_RETURN_IF_ERROR(BuildManifest(repo, revision).WithContext(Context() + " commit " + revision));
  }
  return manifest_text_;
}

Status GitSource::BuildManifest(const std::string& repo, const std::string& commit) {
  SA_ASSIGN_OR_RETURN(GitTree tree, cache_->ReadTree(commit));
  Manifest m;
  m.repo = repo;
  m.revision = commit;
  m.created = FormatIsoTime(SystemTime::clock::from_time_t(static_cast<time_t>(tree.commit_time)));
  m.parent = tree.parent;
  m.git_commit = commit;
  m.git_tree = tree.tree_id;

  std::map<std::string, ManifestEntry> files;  // by path
  std::vector<const GitTreeEntry*> links;
  std::map<std::string, Content> contents;
  for (const GitTreeEntry& e : tree.entries) {
    if (e.kind == GitTreeEntry::Kind::kSubmodule) {
      LogWarning("skipping a git submodule (its files are not mirrored)",
                 {{"remote", url_}, {"path", e.path}, {"commit", e.id}});
      continue;
    }
    if (e.kind == GitTreeEntry::Kind::kSymlink) {
      links.push_back(&e);
      continue;
    }
    ManifestEntry f;
    f.path = e.path;
    f.mode = e.kind == GitTreeEntry::Kind::kExecutable ? 0755 : 0644;
    f.git_blob = e.id;
    auto known = blob_digests_.find(e.id);
    if (known == blob_digests_.end()) {
      SA_ASSIGN_OR_RETURN(std::string blob, cache_->ReadBlob(e.id, e.size));
      auto pointer = ParseLfsPointer(blob);
      if (!pointer.ok()) return pointer.status().WithContext(e.path);
      BlobDigest d;
      if (pointer->has_value()) {
        d = {(*pointer)->oid, "", (*pointer)->size, true};
      } else {
        ContentHasher hasher;
        hasher.Update(blob.data(), blob.size());
        ContentDigest digest = hasher.Finish();
        d = {digest.sha256, digest.xxh3_128, blob.size(), false};
      }
      known = blob_digests_.emplace(e.id, std::move(d)).first;
    }
    f.sha256 = known->second.sha256;
    f.xxh3_128 = known->second.xxh3_128;
    f.size = known->second.size;
    f.git_lfs = known->second.lfs;
    // The same content may be both a regular blob and an LFS object; either serves.
    contents.emplace(f.sha256, Content{f.git_lfs, f.git_lfs ? "" : e.id, f.size});
    files.emplace(f.path, std::move(f));
  }

  // Symlinks: listed with their target's content, resolved in rounds because
  // a link may point at another link.
  for (int round = 0; !links.empty(); ++round) {
    std::vector<const GitTreeEntry*> waiting;
    for (const GitTreeEntry* link : links) {
      std::string target = ResolveLinkTarget(link->path, link->target);
      auto blocked = [&](const std::string& path) {
        return std::any_of(links.begin(), links.end(), [&](const GitTreeEntry* other) {
          return other != link && (other->path == path || HasPrefixDir(other->path, path));
        });
      };
      auto file = files.find(target);
      if (file != files.end()) {
        ManifestEntry copy = file->second;
        copy.path = link->path;
        files.emplace(link->path, std::move(copy));
        continue;
      }
      if (target.empty() || HasPrefixDir(link->path, target)) {
        return Status::InvalidArgument("symlink " + link->path,
                                       "points to \"" + link->target +
                                           "\", a directory that contains the link itself");
      }
      if (blocked(target)) {
        waiting.push_back(link);
        continue;
      }
      std::vector<ManifestEntry> under;
      for (auto it = files.lower_bound(target + "/");
           it != files.end() && HasPrefixDir(it->first, target); ++it) {
        ManifestEntry copy = it->second;
        copy.path = link->path + it->first.substr(target.size());
        under.push_back(std::move(copy));
      }
      if (under.empty()) {
        return Status::InvalidArgument(
            "symlink " + link->path,
            "points to \"" + link->target + "\", which is no file or directory of the commit");
      }
      for (ManifestEntry& u : under) files.emplace(u.path, std::move(u));
    }
    if (waiting.size() == links.size() || round == kMaxSymlinkRounds) {
      return Status::InvalidArgument("symlink " + waiting.front()->path,
                                     "is part of a symlink loop");
    }
    links = std::move(waiting);
  }

  for (auto& [path, f] : files) m.files.push_back(std::move(f));
  SA_RETURN_IF_ERROR(ValidateManifest(m));
  manifest_text_ = SerializeManifest(m);
  manifest_commit_ = commit;
  contents_ = std::move(contents);
  return Status::OK();
}

Status GitSource::FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                            ObjectSink* sink) {
  const std::string sha = ObjectSha(rel_path);
  if (sha.empty()) {
    return Status::NotFound(FileLocation(repo, rel_path),
                            "a git source publishes no signatures or deltas");
  }
  auto it = contents_.find(sha);
  if (it == contents_.end()) {
    return Status::NotFound(FileLocation(repo, rel_path),
                            "no file of commit " + manifest_commit_ + " has this content");
  }
  const Content& c = it->second;
  if (c.lfs) {
    Status s = lfs_.Read({sha, c.size}, offset, sink);
    return s.WithContext(Context());
  }
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  SA_ASSIGN_OR_RETURN(std::string blob, cache_->ReadBlob(c.blob, c.size));
  if (offset > blob.size()) offset = 0;
  SA_RETURN_IF_ERROR(sink->Begin(offset));
  for (size_t at = offset; at < blob.size(); at += kChunk) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled(FileLocation(repo, rel_path), "stop requested");
    }
    SA_RETURN_IF_ERROR(sink->Write(blob.data() + at, std::min(kChunk, blob.size() - at)));
  }
  return Status::OK();
}

Status GitSource::FetchRanges(const std::string& repo, const std::string& rel_path,
                              uint64_t file_size, const std::vector<ByteRange>& ranges,
                              const RangeSink& sink) {
  const std::string where = FileLocation(repo, rel_path);
  const std::string sha = ObjectSha(rel_path);
  auto it = sha.empty() ? contents_.end() : contents_.find(sha);
  if (it == contents_.end()) {
    return Status::NotFound(where, sha.empty() ? "a git source publishes no signatures or deltas"
                                               : "no file of commit " + manifest_commit_ +
                                                     " has this content");
  }
  const Content& c = it->second;
  if (c.size != file_size) {
    return FileSizeMismatch(where, c.size, file_size, "the commit's tree");
  }
  SA_RETURN_IF_ERROR(CheckRangesArgument(where, file_size, ranges));
  if (c.lfs) {
    for (const ByteRange& r : ranges) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        return Status::Cancelled(where, "stop requested");
      }
      SA_RETURN_IF_ERROR(lfs_.ReadRange({sha, c.size}, r, sink).WithContext(Context()));
    }
    return Status::OK();
  }
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  SA_ASSIGN_OR_RETURN(std::string blob, cache_->ReadBlob(c.blob, c.size));
  for (const ByteRange& r : ranges) {
    SA_RETURN_IF_ERROR(sink(r.offset, blob.data() + r.offset, static_cast<size_t>(r.length)));
  }
  return Status::OK();
}

bool GitSource::ChunksHelp(const std::string& sha256) const {
  auto it = contents_.find(sha256);
  return it != contents_.end() && it->second.lfs && !lfs_.local();
}

std::unique_ptr<Source> GitSource::Fork() const {
  auto fork = std::make_unique<GitSource>(url_, env_, options_);
  fork->manifest_commit_ = manifest_commit_;
  fork->manifest_text_ = manifest_text_;
  fork->contents_ = contents_;
  fork->blob_digests_ = blob_digests_;
  return fork;
}

std::string GitSource::FileLocation(const std::string& /*repo*/,
                                    const std::string& rel_path) const {
  const std::string sha = ObjectSha(rel_path);
  auto it = sha.empty() ? contents_.end() : contents_.find(sha);
  if (it == contents_.end()) return url_ + " (" + rel_path + ")";
  if (it->second.lfs) return lfs_.Location({sha, it->second.size});
  return url_ + " blob " + it->second.blob;
}

}  // namespace sync_agent
