#include "common/source/publish_root_source.h"

#include <algorithm>
#include <vector>

#include "common/base/json_text.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/http/ranged_get.h"

namespace sync_agent {
namespace {

// ReadRanges hands data to its sink in pieces of at most this size.
constexpr uint64_t kRangePieceBytes = 1 << 20;
constexpr uint64_t kMaxPointerBytes = 64 * 1024;
// The whole pointer request may take this many http_timeouts.
constexpr int kPointerDeadlineTimeouts = 2;

HttpClientOptions ClientOptions(const SourceOptions& o) {
  HttpClientOptions h = HttpOptionsFor(o);
  h.authorization = o.authorization;
  return h;
}

}  // namespace

PublishRootSource::PublishRootSource(std::string root, std::string repo, SourceOptions options)
    : root_(std::move(root)), repo_(std::move(repo)), options_(std::move(options)) {}

Result<PollResult> PublishRootSource::Poll(const PollValidators* prev) {
  SA_ASSIGN_OR_RETURN(PointerRead read, ReadPointer(prev));
  PollResult out;
  if (read.not_modified) {
    out.not_modified = true;
    out.validators = *prev;
    return out;
  }
  out.validators = read.validators;
  out.validators.digest = Sha256Hex(read.body);
  if (prev != nullptr && prev->digest == out.validators.digest) {
    out.not_modified = true;
    return out;
  }
  auto pointer = ParsePointer(read.body);
  if (!pointer.ok()) {
    return pointer.status().WithContext("source " + root_ + " serves a bad pointer for " + repo_);
  }
  if (pointer->repo != repo_) {
    return Status::InvalidArgument(
        "source " + root_, "the pointer for " + repo_ + " names repository " + pointer->repo);
  }
  pointer_ = std::move(pointer).value();
  out.revision = pointer_.revision;
  out.fingerprint = pointer_.manifest_sha256;
  return out;
}

Result<RevisionListing> PublishRootSource::FetchRevision(const PollResult& poll) {
  // Verified against the pointer, then validated, before anything else.
  SA_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(PublishedManifestPath(poll.revision),
                                                      options_.manifest_limits.max_bytes));
  RevisionListing out;
  out.manifest_sha256 = Sha256Hex(text);
  if (out.manifest_sha256 != poll.fingerprint) {
    return Status::Corruption("manifest of " + repo_ + " revision " + poll.revision,
                              "sha256 " + out.manifest_sha256 + " differs from the pointer's " +
                                  poll.fingerprint + " (truncated or replaced in transit)");
  }
  auto manifest = ParseManifest(text, options_.manifest_limits);
  if (!manifest.ok()) {
    return manifest.status().WithContext("revision " + poll.revision + " of " + repo_ + " from " +
                                         root_);
  }
  out.manifest = std::move(manifest).value();
  if (out.manifest.repo != repo_ || out.manifest.revision != poll.revision) {
    return Status::InvalidArgument(
        "manifest from " + root_, "describes " + out.manifest.repo + " revision " +
                                      out.manifest.revision + ", expected " + repo_ + " revision " +
                                      poll.revision);
  }
  return out;
}

Result<std::optional<std::string>> PublishRootSource::FetchRevisionSignatures(
    const PollResult& poll) {
  auto text = ReadSmallFile(PublishedRevisionSignaturesPath(poll.revision), 64 * 1024);
  if (text.ok()) return std::optional<std::string>(std::move(text).value());
  if (text.status().IsNotFound()) return std::optional<std::string>();
  return text.status();
}

std::string PublishRootSource::RevisionSignaturesLocation(const std::string& revision) const {
  return Location(PublishedRevisionSignaturesPath(revision));
}

Status PublishRootSource::FetchContent(const ContentRef& content, uint64_t offset,
                                       ObjectSink* sink) {
  return ReadFile(PublishedObjectPath(content.sha256), offset, sink);
}

Status PublishRootSource::FetchContentRanges(const ContentRef& content,
                                             const std::vector<ByteRange>& ranges,
                                             const RangeSink& sink) {
  return ReadRanges(PublishedObjectPath(content.sha256), content.size, ranges, sink);
}

std::string PublishRootSource::ContentLocation(const ContentRef& content) const {
  return Location(PublishedObjectPath(content.sha256));
}

Status PublishRootSource::FetchSignature(const std::string& content_sha256,
                                         const SignatureRef& signature, ObjectSink* sink) {
  return ReadFile(PublishedSignaturePath(content_sha256, signature.block_len), 0, sink);
}

Status PublishRootSource::FetchDelta(const std::string& to_sha256, const DeltaRef& delta,
                                     ObjectSink* sink) {
  return ReadFile(PublishedDeltaPath(delta.from_sha256, to_sha256), 0, sink);
}

std::string PublishRootSource::SignatureLocation(const std::string& content_sha256,
                                                 const SignatureRef& signature) const {
  return Location(PublishedSignaturePath(content_sha256, signature.block_len));
}

std::string PublishRootSource::DeltaLocation(const std::string& to_sha256,
                                             const DeltaRef& delta) const {
  return Location(PublishedDeltaPath(delta.from_sha256, to_sha256));
}

// --- FileSource --------------------------------------------------------------

FileSource::FileSource(std::string root, std::string dir, std::string repo, SourceOptions options)
    : PublishRootSource(std::move(root), std::move(repo), options),
      dir_(std::move(dir)),
      env_(options.env != nullptr ? options.env : Env::Default()) {}

std::unique_ptr<Source> FileSource::Fork() const {
  return std::make_unique<FileSource>(url(), dir_, repo(), options());
}

std::string FileSource::Location(const std::string& rel) const {
  return JoinPath(JoinPath(dir_, repo()), rel);
}

Result<PublishRootSource::PointerRead> FileSource::ReadPointer(const PollValidators* /*prev*/) {
  std::string path = Location(kPointerName);
  auto body = ReadFileToString(env_, path, kMaxPointerBytes);
  if (!body.ok()) {
    if (body.status().IsNotFound()) {
      return Status::NotFound("source " + url(),
                              "no published revision of " + repo() + " (" + path +
                                  " does not exist); run `sync-agent publish` on the origin");
    }
    return body.status();
  }
  PointerRead read;
  read.body = std::move(body).value();
  return read;
}

Result<std::string> FileSource::ReadSmallFile(const std::string& rel, uint64_t max_bytes) {
  auto body = ReadFileToString(env_, Location(rel), max_bytes);
  if (!body.ok()) return body.status().WithContext("source " + url());
  return body;
}

Status FileSource::ReadRanges(const std::string& rel, uint64_t file_size,
                              const std::vector<ByteRange>& ranges, const RangeSink& sink) {
  const std::string path = Location(rel);
  SA_RETURN_IF_ERROR(CheckRangesArgument(path, file_size, ranges));
  if (ranges.empty()) return Status::OK();
  SA_ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(path));
  SA_ASSIGN_OR_RETURN(FileInfo info, env_->Stat(path));
  if (info.type != FileInfo::Type::kRegular) {
    return Status::IOError("read ranges of " + path, "not a regular file");
  }
  if (info.size != file_size) return FileSizeMismatch(path, info.size, file_size, "on disk");

  uint64_t longest = 0;
  for (const ByteRange& r : ranges) longest = std::max(longest, r.length);
  std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(longest, kRangePieceBytes)));
  for (const ByteRange& r : ranges) {
    for (uint64_t pos = r.offset; pos < r.end();) {
      if (options().cancel != nullptr && options().cancel->load()) {
        return Status::Cancelled("read ranges of " + path, "stop requested");
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.end() - pos));
      SA_ASSIGN_OR_RETURN(size_t n, file->ReadAt(pos, buf.data(), want));
      if (n == 0) {
        // Published files are replaced by rename, never rewritten: one that
        // shrinks under us is not the file we checked.
        return Status::Corruption(path, "ended at byte " + std::to_string(pos) +
                                            " while reading; it had " + std::to_string(file_size) +
                                            " bytes when opened");
      }
      SA_RETURN_IF_ERROR(sink(pos, buf.data(), n));
      pos += n;
    }
  }
  return Status::OK();
}

Status FileSource::ReadFile(const std::string& rel, uint64_t offset, ObjectSink* sink) {
  std::string path = Location(rel);
  SA_ASSIGN_OR_RETURN(auto file, env_->NewSequentialFile(path));
  SA_RETURN_IF_ERROR(file->Skip(offset));
  SA_RETURN_IF_ERROR(sink->Begin(offset));
  std::vector<char> buf(1 << 20);
  while (true) {
    if (options().cancel != nullptr && options().cancel->load()) {
      return Status::Cancelled("read " + path, "stop requested");
    }
    SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
    if (n == 0) break;
    SA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
  }
  return Status::OK();
}

// --- HttpSource --------------------------------------------------------------

HttpSource::HttpSource(std::string root, std::string repo, SourceOptions options)
    : PublishRootSource(std::move(root), std::move(repo), options),
      client_(ClientOptions(options)) {}

std::unique_ptr<Source> HttpSource::Fork() const {
  return std::make_unique<HttpSource>(url(), repo(), options());
}

std::string HttpSource::Location(const std::string& rel) const {
  return url() + "/" + repo() + "/" + rel;
}

Result<PublishRootSource::PointerRead> HttpSource::ReadPointer(const PollValidators* prev) {
  HttpRequest req;
  req.url = Location(kPointerName);
  req.cancel = options().cancel;
  // A pointer is a few hundred bytes: however the server dribbles it, it
  // must not hold the run (and the lock) for longer than this.
  req.deadline = kPointerDeadlineTimeouts * options().io_timeout;
  if (prev != nullptr) {
    req.if_none_match = prev->etag;
    req.if_modified_since = prev->etag.empty() ? prev->last_modified : "";
  }
  SA_ASSIGN_OR_RETURN(auto got, client_.Fetch(req, kMaxPointerBytes));
  auto& [resp, body] = got;
  PointerRead read;
  if (resp.status == 304 && prev != nullptr) {
    read.not_modified = true;
    return read;
  }
  if (resp.status == 404) {
    return Status::NotFound("source " + url(), "no published revision of " + repo() +
                                                   " (HTTP 404 for " + req.url +
                                                   "); check the source URL and that the "
                                                   "origin has published this repository");
  }
  if (resp.status != 200) return StatusForHttp("fetch revision pointer", req.url, resp);
  read.validators.etag = resp.etag;
  read.validators.last_modified = resp.last_modified;
  read.body = std::move(body);
  return read;
}

Result<std::string> HttpSource::ReadSmallFile(const std::string& rel, uint64_t max_bytes) {
  HttpRequest req;
  req.url = Location(rel);
  req.cancel = options().cancel;
  SA_ASSIGN_OR_RETURN(auto got, client_.Fetch(req, max_bytes));
  if (got.first.status != 200) return StatusForHttp("fetch manifest", req.url, got.first);
  return std::move(got.second);
}

Status HttpSource::ReadFile(const std::string& rel, uint64_t offset, ObjectSink* sink) {
  return GetFromOffset(&client_, {Location(rel), {}, options().cancel}, offset, sink);
}

Status HttpSource::ReadRanges(const std::string& rel, uint64_t file_size,
                              const std::vector<ByteRange>& ranges, const RangeSink& sink) {
  return GetRanges(&client_, {Location(rel), {}, options().cancel}, file_size, ranges, sink);
}

// --- Making them -------------------------------------------------------------

Result<std::unique_ptr<PublishRootSource>> MakePublishRootSource(const std::string& url,
                                                                 const std::string& repo,
                                                                 const SourceOptions& options) {
  std::string root = url;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.rfind("http://", 0) == 0 || root.rfind("https://", 0) == 0) {
    return std::unique_ptr<PublishRootSource>(new HttpSource(root, repo, options));
  }
  if (root.rfind("file://", 0) == 0) {
    std::string dir = root.substr(7);
    if (dir.empty() || dir[0] != '/') {
      return Status::InvalidArgument("source " + url,
                                     "a file source needs an absolute path: file:///path");
    }
    return std::unique_ptr<PublishRootSource>(new FileSource(root, dir, repo, options));
  }
  return Status::InvalidArgument("source " + url,
                                 "unsupported scheme; use http://, https:// or file:///");
}

Result<std::unique_ptr<Source>> PublishRootSpec::Make(const std::string& url,
                                                      const std::string& repo,
                                                      const SourceOptions& options) const {
  SA_ASSIGN_OR_RETURN(auto source, MakePublishRootSource(url, repo, options));
  return std::unique_ptr<Source>(std::move(source));
}

Result<std::vector<std::string>> PublishRootSpec::ListOrganisation(const std::string& url,
                                                                   const std::string& org,
                                                                   const SourceOptions& options,
                                                                   size_t max_repos) const {
  // A source "of" the organisation: its files are "<root>/<org>/<rel>".
  SA_ASSIGN_OR_RETURN(auto source, MakePublishRootSource(url, org, options));
  const std::string where = source->Location(kOrgIndexName);
  const uint64_t max_bytes = options.manifest_limits.max_bytes;
  auto text = source->ReadSmallFile(kOrgIndexName, max_bytes);
  if (!text.ok()) {
    const Status& s = text.status();
    if (s.IsNotFound()) {
      return Status::NotFound("organisation index " + where,
                              "does not exist; publish a repository of " + org +
                                  " with this sync-agent (`sync-agent publish` writes " + org +
                                  "/index.json), or name each repository in a [[repo]]");
    }
    if (s.code() == Status::Code::kInvalidArgument) {
      return Status::InvalidArgument("organisation index " + where,
                                     "is larger than manifest_max_bytes (" +
                                         std::to_string(max_bytes) +
                                         "); raise manifest_max_bytes if it is right");
    }
    return s.WithContext("organisation index " + where);
  }
  SA_ASSIGN_OR_RETURN(OrgIndex index, ParseOrgIndex(*text, org, where, max_repos, max_bytes));
  return std::move(index.repos);
}

std::vector<SpecField> PublishRootSpec::Describe() const {
  return {};  // status lists each source with its health already
}

Result<std::shared_ptr<const SourceSpec>> PublishRootKind::Parse(const RepoTable& table) const {
  std::vector<std::string> given;
  SA_RETURN_IF_ERROR(table.GetStringArray("sources", &given));
  if (given.empty()) {
    return table.Error("sources",
                       table.label() + " \"sources\" is empty; list at least one publish root");
  }
  std::vector<std::string> roots;
  for (size_t i = 0; i < given.size(); ++i) {
    std::string normalized;
    std::string why = NormalizeSourceUrl(given[i], &normalized);
    if (!why.empty()) {
      return table.ElementError(
          "sources", i, table.label() + " source " + JsonQuote(given[i]) + " is not valid: " + why);
    }
    if (std::find(roots.begin(), roots.end(), normalized) != roots.end()) {
      return table.ElementError(
          "sources", i,
          table.label() + " lists source " + JsonQuote(normalized) + " more than once");
    }
    roots.push_back(std::move(normalized));
  }
  return std::shared_ptr<const SourceSpec>(std::make_shared<PublishRootSpec>(std::move(roots)));
}

}  // namespace sync_agent
