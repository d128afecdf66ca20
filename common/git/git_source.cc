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

namespace sync_agent {
namespace {

constexpr size_t kChunk = 1 << 20;
// Symlinks may point at symlinks; more hops than this is a loop.
constexpr int kMaxSymlinkRounds = 16;

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

// A git remote: http(s)://, file:///abs or /abs (a local repository).
std::string NormalizeGitRemote(std::string_view in, std::string* out) {
  if (!in.empty() && in.front() == '/') {
    if (!IsValidUtf8(in) || HasControlOrSpace(in)) {
      return "it contains a space or control character";
    }
    std::string why = NormalizeAbsolutePath(in, out);
    return why.empty() ? "" : "the path " + why;
  }
  size_t sep = in.find("://");
  std::string scheme = sep == std::string_view::npos ? "" : std::string(in.substr(0, sep));
  if (scheme != "http" && scheme != "https" && scheme != "file") {
    return "use https://host/path.git, http://host/path.git, file:///path or /path "
           "(ssh remotes are not supported)";
  }
  return NormalizeSourceUrl(in, out);
}

}  // namespace

GitSource::GitSource(std::string url, std::string repo, std::string ref, std::string cache_dir,
                     SourceOptions options)
    : url_(std::move(url)),
      repo_(std::move(repo)),
      ref_(std::move(ref)),
      cache_dir_(std::move(cache_dir)),
      env_(options.env != nullptr ? options.env : Env::Default()),
      options_(std::move(options)),
      lfs_(env_, url_, HttpOptionsFor(options_), options_.authorization) {}

GitSource::~GitSource() = default;

std::string GitSource::Context() const { return "git " + url_ + " " + ref_; }

Status GitSource::OpenCache() {
  if (cache_) return Status::OK();
  if (!options_.ca_file.empty()) SA_RETURN_IF_ERROR(SetGitCaFile(options_.ca_file));
  SA_RETURN_IF_ERROR(CreateDirs(env_, DirName(cache_dir_), 0755));
  SA_ASSIGN_OR_RETURN(cache_, GitCache::Open(cache_dir_, url_, GitHeaders(options_)));
  return Status::OK();
}

Result<PollResult> GitSource::Poll(const PollValidators* prev) {
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  auto resolved = cache_->ResolveRemote(ref_);
  if (!resolved.ok()) return resolved.status().WithContext(Context());
  std::string commit = *resolved;
  PollResult out;
  if (prev != nullptr && prev->etag == commit) {
    out.not_modified = true;
    out.validators = *prev;
    return out;
  }
  if (!cache_->HasCommit(commit)) {
    auto fetched = cache_->Fetch(ref_, options_.cancel);
    if (!fetched.ok()) return fetched.status().WithContext(Context());
    if (*fetched != commit) {
      LogInfo("the ref moved while fetching; taking the newer commit",
              {{"remote", url_}, {"ref", ref_}, {"commit", *fetched}});
      commit = *fetched;
    }
  }
  SA_RETURN_IF_ERROR(BuildManifest(commit).WithContext(Context() + " commit " + commit));
  out.revision = commit;
  out.fingerprint = commit;
  out.validators.etag = commit;
  return out;
}

Result<RevisionListing> GitSource::FetchRevision(const PollResult& poll) {
  if (poll.revision != manifest_commit_) {
    SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
    if (!cache_->HasCommit(poll.revision)) {
      return Status::NotFound(Context(), "commit " + poll.revision + " is not in the cache");
    }
    SA_RETURN_IF_ERROR(
        BuildManifest(poll.revision).WithContext(Context() + " commit " + poll.revision));
  }
  return RevisionListing{manifest_, Sha256Hex(manifest_text_)};
}

Status GitSource::BuildManifest(const std::string& commit) {
  SA_ASSIGN_OR_RETURN(GitTree tree, cache_->ReadTree(commit));
  Manifest m;
  m.repo = repo_;
  m.revision = commit;
  m.created = FormatIsoTime(SystemTime::clock::from_time_t(static_cast<time_t>(tree.commit_time)));
  m.parent = tree.parent;
  m.provenance = {{"kind", "git"}, {"commit", commit}, {"tree", tree.tree_id}};

  std::map<std::string, ManifestEntry> files;  // by path
  std::vector<const GitTreeEntry*> links;
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
    f.provenance["blob"] = e.id;
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
    if (known->second.lfs) f.provenance["lfs"] = "true";
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
        return Status::InvalidArgument(
            "symlink " + link->path,
            "points to \"" + link->target + "\", a directory that contains the link itself");
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
  SA_RETURN_IF_ERROR(ValidateManifest(m, options_.manifest_limits));
  manifest_text_ = SerializeManifest(m);
  manifest_commit_ = commit;
  sizes_.clear();
  for (const ManifestEntry& f : m.files) sizes_[f.sha256] = f.size;
  manifest_ = std::move(m);
  return Status::OK();
}

Result<GitSource::Place> GitSource::PlaceOf(const ContentRef& content) const {
  auto blob = content.provenance.find("blob");
  if (blob == content.provenance.end() || !IsLowerHex(blob->second, 40)) {
    return Status::NotFound(url_ + " " + content.path,
                            "the manifest entry names no git blob for content " + content.sha256);
  }
  return Place{content.provenance.count("lfs") > 0, blob->second};
}

Status GitSource::FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) {
  SA_ASSIGN_OR_RETURN(Place place, PlaceOf(content));
  if (place.lfs)
    return lfs_.Read({content.sha256, content.size}, offset, sink).WithContext(Context());
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  SA_ASSIGN_OR_RETURN(std::string blob, cache_->ReadBlob(place.blob, content.size));
  if (offset > blob.size()) offset = 0;
  SA_RETURN_IF_ERROR(sink->Begin(offset));
  for (size_t at = offset; at < blob.size(); at += kChunk) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled(ContentLocation(content), "stop requested");
    }
    SA_RETURN_IF_ERROR(sink->Write(blob.data() + at, std::min(kChunk, blob.size() - at)));
  }
  return Status::OK();
}

Status GitSource::FetchContentRanges(const ContentRef& content,
                                     const std::vector<ByteRange>& ranges, const RangeSink& sink) {
  const std::string where = ContentLocation(content);
  SA_ASSIGN_OR_RETURN(Place place, PlaceOf(content));
  auto known = sizes_.find(content.sha256);
  if (known != sizes_.end() && known->second != content.size) {
    return FileSizeMismatch(where, known->second, content.size, "the commit's tree");
  }
  SA_RETURN_IF_ERROR(CheckRangesArgument(where, content.size, ranges));
  if (place.lfs) {
    for (const ByteRange& r : ranges) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        return Status::Cancelled(where, "stop requested");
      }
      SA_RETURN_IF_ERROR(
          lfs_.ReadRange({content.sha256, content.size}, r, sink).WithContext(Context()));
    }
    return Status::OK();
  }
  SA_RETURN_IF_ERROR(OpenCache().WithContext(Context()));
  SA_ASSIGN_OR_RETURN(std::string blob, cache_->ReadBlob(place.blob, content.size));
  if (blob.size() != content.size) {
    return FileSizeMismatch(where, blob.size(), content.size, "the commit's tree");
  }
  for (const ByteRange& r : ranges) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled(where, "stop requested");
    }
    SA_RETURN_IF_ERROR(sink(r.offset, blob.data() + r.offset, static_cast<size_t>(r.length)));
  }
  return Status::OK();
}

bool GitSource::ChunksHelp(const ContentRef& content) const {
  return content.provenance.count("lfs") > 0 && !lfs_.local();
}

std::unique_ptr<Source> GitSource::Fork() const {
  auto fork = std::make_unique<GitSource>(url_, repo_, ref_, cache_dir_, options_);
  fork->manifest_commit_ = manifest_commit_;
  fork->manifest_ = manifest_;
  fork->manifest_text_ = manifest_text_;
  fork->blob_digests_ = blob_digests_;
  fork->sizes_ = sizes_;
  return fork;
}

std::string GitSource::ContentLocation(const ContentRef& content) const {
  auto place = PlaceOf(content);
  if (!place.ok()) return url_ + " (" + content.path + ")";
  if (place->lfs) return lfs_.Location({content.sha256, content.size});
  return url_ + " blob " + place->blob;
}

// --- The git kind ------------------------------------------------------------

Result<std::unique_ptr<Source>> GitSpec::Make(const std::string& url, const std::string& repo,
                                              const SourceOptions& options) const {
  if (options.state_dir.empty()) {
    return Status::InvalidArgument("git " + url, "a git source needs a state_dir for its cache");
  }
  // One bare cache per remote URL.
  const std::string cache = JoinPath(options.state_dir, "git/" + GitCacheName(url) + ".git");
  return std::unique_ptr<Source>(new GitSource(url, repo, ref_, cache, options));
}

std::vector<SpecField> GitSpec::Describe() const { return {{"git", remote_}, {"ref", ref_}}; }

Result<std::shared_ptr<const SourceSpec>> GitKind::Parse(const RepoTable& table) const {
  std::string git;
  SA_RETURN_IF_ERROR(table.GetString("git", &git));
  std::string remote;
  std::string why = NormalizeGitRemote(git, &remote);
  if (!why.empty()) {
    return table.Error("git", table.label() + " git " + JsonQuote(git) + " is not valid: " + why);
  }
  std::string ref = "main";
  SA_RETURN_IF_ERROR(table.GetString("ref", &ref));
  if (HasControlOrSpace(ref) || ref.find("..") != std::string::npos) {
    return table.Error("ref", table.label() + " ref " + JsonQuote(ref) + " is not a valid git ref");
  }
  return std::shared_ptr<const SourceSpec>(std::make_shared<GitSpec>(remote, ref));
}

}  // namespace sync_agent
