#include "common/hub/hub_source.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>

#include "common/base/json_text.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/http/http_text.h"
#include "common/http/ranged_get.h"
#include "common/hub/hub_json.h"

namespace sync_agent {
namespace {

constexpr uint64_t kMaxApiBytes = 64ULL << 20;  // one tree page, one repo info
constexpr int kMaxRateLimitWaits = 5;
constexpr uint64_t kMaxRetryAfterSeconds = 300;
constexpr size_t kMaxTreePages = 100000;
constexpr size_t kSpoolPiece = 1 << 20;

HttpClientOptions ClientOptions(const SourceOptions& o) {
  HttpClientOptions h = HttpOptionsFor(o);
  h.authorization = o.authorization;  // the hub's origin only, never a CDN's
  return h;
}

// The scheme://host:port of a URL, for comparing origins.
std::string OriginOf(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return "";
  size_t slash = url.find('/', sep + 3);
  return AsciiLower(url.substr(0, slash));
}

std::string Header(const HttpResponse& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// The absolute URL of the page after resp's (its Link rel="next"), "" after
// the last page; a next page on another origin is refused.
Result<std::string> NextPage(const HttpResponse& resp, const std::string& origin,
                             const std::string& context, const std::string& whose) {
  std::string next = LinkWithRel(Header(resp, "link"), "next");
  if (!next.empty() && next.find("://") == std::string::npos) {
    next = origin + (next.front() == '/' ? "" : "/") + next;  // a relative link
  }
  if (!next.empty() && OriginOf(next) != origin) {
    return Status::InvalidArgument(
        context, whose + " next page " + next + " is not on the hub; not followed");
  }
  return next;
}

// The wait a 429 or 503 asks for: Retry-After, or the t= of an IETF
// RateLimit header (huggingface.co sends `"api";r=0;t=55`), else 1 s.
uint64_t RetryAfterSeconds(const HttpResponse& r) {
  const int64_t now = ToUnixMillis(std::chrono::system_clock::now()) / 1000;
  if (auto s = ParseRetryAfterSeconds(Header(r, "retry-after"), now)) return *s;
  const std::string limit = Header(r, "ratelimit");
  size_t t = limit.find("t=");
  uint64_t seconds = 0;
  if (t != std::string::npos) {
    std::string digits;
    for (size_t i = t + 2; i < limit.size() && limit[i] >= '0' && limit[i] <= '9'; ++i) {
      digits.push_back(limit[i]);
    }
    if (ParseDecimal(digits, &seconds)) return seconds;
  }
  return 1;
}

// Receives a regular file into the spool, hashing it three ways.
class SpoolSink final : public ObjectSink {
 public:
  SpoolSink(WritableFile* file, uint64_t size) : file_(file), blob_(size) {}
  Status Begin(uint64_t offset) override {
    if (offset != 0) return Status::Network("spool", "the hub resumed a download not asked to");
    return Status::OK();
  }
  Status Write(const char* data, size_t n) override {
    blob_.Update(data, n);
    content_.Update(data, n);
    return file_->Append(data, n);
  }
  uint64_t received() const { return blob_.received(); }
  std::string BlobId() { return blob_.Finish(); }
  ContentDigest Digest() { return content_.Finish(); }

 private:
  WritableFile* file_;
  GitBlobHasher blob_;
  ContentHasher content_;
};

}  // namespace

bool HubPathSelected(const HubRepoSettings& settings, const std::string& path) {
  auto matches = [&path](const std::vector<std::string>& globs) {
    return std::any_of(globs.begin(), globs.end(), [&path](const std::string& g) {
      return ::fnmatch(g.c_str(), path.c_str(), 0) == 0;
    });
  };
  if (!settings.include.empty() && !matches(settings.include)) return false;
  return !matches(settings.exclude);
}

HubSource::HubSource(std::string repo, HubRepoSettings settings, SourceOptions options)
    : repo_(std::move(repo)),
      settings_(std::move(settings)),
      options_(std::move(options)),
      client_(ClientOptions(options_)),
      cdn_client_([this] {
        HttpClientOptions o = ClientOptions(options_);
        o.authorization.clear();
        return o;
      }()) {
  if (options_.env == nullptr) options_.env = Env::Default();
  if (!options_.state_dir.empty()) {
    spool_dir_ = JoinPath(
        options_.state_dir,
        "hub/" + Sha256Hex(settings_.hub + " " + settings_.type + " " + repo_).substr(0, 16) +
            "/spool");
  }
}

HubSource::~HubSource() = default;

std::unique_ptr<Source> HubSource::Fork() const {
  auto fork = std::make_unique<HubSource>(repo_, settings_, options_);
  {
    std::lock_guard<std::mutex> lock(urls_mu_);
    fork->content_urls_ = content_urls_;
  }
  fork->last_modified_ = last_modified_;
  return fork;
}

std::string HubSource::Context() const {
  return "hub " + settings_.hub + " " + settings_.type + " " + repo_;
}

std::string HubSource::ApiPath() const {
  return settings_.hub + (settings_.type == "dataset" ? "/api/datasets/" : "/api/models/") + repo_;
}

std::string HubSource::ResolveUrl(const std::string& revision, const std::string& path) const {
  return settings_.hub + (settings_.type == "dataset" ? "/datasets/" : "/") + repo_ + "/resolve/" +
         PercentEncode(revision) + "/" + PercentEncode(path, /*keep_slash=*/true);
}

std::string HubSource::ContentLocation(const ContentRef& content) const {
  return ResolveUrl(content.revision, content.path);
}

bool HubSource::ChunksHelp(const ContentRef& content) const {
  return content.provenance.count("lfs") > 0;
}

Result<HttpResponse> HubSource::SendToHub(HttpRequest request, const BodySink& sink,
                                          std::string* body) {
  request.cancel = options_.cancel;
  for (int attempt = 0;; ++attempt) {
    if (body != nullptr) body->clear();
    BodySink collect = sink;
    if (body != nullptr) {
      collect = [body, &request](const char* data, size_t n) -> Status {
        if (body->size() + n > kMaxApiBytes) {
          return Status::InvalidArgument("GET " + request.url, "the answer is larger than 64 MiB");
        }
        body->append(data, n);
        return Status::OK();
      };
    }
    SA_ASSIGN_OR_RETURN(HttpResponse resp, client_.Send(request, collect));
    if ((resp.status != 429 && resp.status != 503) || attempt == kMaxRateLimitWaits) {
      if (resp.status == 429) {
        return Status::Network(Context(), "the hub keeps answering HTTP 429 (rate limited) to " +
                                              request.url +
                                              "; try again later, or set a token (token_file) for "
                                              "a higher limit");
      }
      return resp;
    }
    const uint64_t wait = std::min(RetryAfterSeconds(resp), kMaxRetryAfterSeconds);
    LogWarning("the hub asks to wait before the next request",
               {{"hub", settings_.hub},
                {"status", std::to_string(resp.status)},
                {"wait", FormatDuration(std::chrono::seconds(wait))},
                {"url", request.url}});
    // The wait is what the hub asked for; a stop request ends it early.
    if (!PauseUntil(std::chrono::steady_clock::now() + std::chrono::seconds(wait),
                    options_.cancel)) {
      return Status::Cancelled(Context(), "stop requested");
    }
  }
}

namespace {

// What a hub's error answer means, as a message that says what to do.
Status HubError(const std::string& context, const std::string& url, const HttpResponse& r,
                const std::string& what) {
  const std::string code = Header(r, "x-error-code");
  const std::string message = Header(r, "x-error-message");
  const std::string said = "HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) +
                           (message.empty() ? "" : ": " + message) + " from " + url;
  if (code == "GatedRepo") {
    return Status::InvalidArgument(
        context, "the repository is gated (" + said +
                     "); accept its conditions on the hub with the account whose token the node "
                     "uses, and set token_file (or token_env) in its [[repo]]");
  }
  if (code == "RepoNotFound") {
    return Status::NotFound(context,
                            "the hub has no such repository, or it is private and the "
                            "token does not give access (" +
                                said + "); check name, type and token");
  }
  if (code == "RevisionNotFound") {
    return Status::NotFound(
        context, "the repository has no " + what + " (" + said + "); check ref in its [[repo]]");
  }
  if (code == "EntryNotFound") {
    return Status::NotFound(context, "the hub has no " + what + " (" + said + ")");
  }
  if (r.status == 401 || r.status == 403) {
    return Status::InvalidArgument(
        context, "the hub refused access (" + said +
                     "); set a token with read access (token_file or token_env) in its [[repo]]");
  }
  return StatusForHttp(context, url, r);
}

}  // namespace

Result<PollResult> HubSource::Poll(const PollValidators* prev) {
  HttpRequest req;
  req.url = ApiPath() + "/revision/" + PercentEncode(settings_.ref);
  std::string body;
  SA_ASSIGN_OR_RETURN(HttpResponse resp, SendToHub(req, nullptr, &body));
  if (resp.status != 200) return HubError(Context(), req.url, resp, "ref " + settings_.ref);
  SA_ASSIGN_OR_RETURN(HubRevisionInfo info, ParseHubRevisionInfo(body, Context(), req.url));
  const std::string& sha = info.sha;
  PollResult out;
  out.validators.etag = sha;
  if (prev != nullptr && prev->etag == sha) {
    out.not_modified = true;
    return out;
  }
  out.revision = sha;
  out.fingerprint = sha;
  last_modified_ = info.last_modified;
  return out;
}

std::string HubSource::SpoolPath(const std::string& blob) const {
  return JoinPath(spool_dir_, blob);
}

Result<std::string> HubSource::Spool(const std::string& revision, const std::string& path,
                                     const std::string& blob, uint64_t size,
                                     ContentDigest* digest) {
  if (spool_dir_.empty()) {
    return Status::InvalidArgument(Context(), "a hub source needs a state_dir for its downloads");
  }
  Env* env = options_.env;
  const std::string final_path = SpoolPath(blob);
  auto held = env->Stat(final_path);
  if (held.ok() && held->size == size) {
    // Kept from an earlier listing: check it again, it costs one read.
    SA_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(final_path));
    GitBlobHasher id(size);
    ContentHasher hasher;
    std::vector<char> buf(kSpoolPiece);
    while (true) {
      SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
      if (n == 0) break;
      id.Update(buf.data(), n);
      hasher.Update(buf.data(), n);
    }
    if (id.Finish() == blob) {
      *digest = hasher.Finish();
      return final_path;
    }
    env->RemoveFile(final_path);
  }
  SA_RETURN_IF_ERROR(CreateDirs(env, spool_dir_, 0755));
  const std::string tmp = final_path + ".tmp";
  const std::string url = ResolveUrl(revision, path);
  Status s;
  std::string got_id;
  {
    SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, 0644));
    SpoolSink sink(file.get(), size);
    HttpRequest req;
    req.url = url;
    req.cancel = options_.cancel;
    req.on_headers = [&sink](const HttpResponse& r) { return sink.Begin(0); };
    auto resp = SendToHub(req, [&sink](const char* data, size_t n) { return sink.Write(data, n); });
    if (!resp.ok()) {
      s = resp.status();
    } else if (resp->status != 200) {
      s = HubError(Context() + " " + path, url, *resp, "file " + path + " at " + revision);
    } else if (sink.received() != size) {
      s = Status::Corruption(url, "sent " + std::to_string(sink.received()) +
                                      " bytes; the tree lists " + std::to_string(size));
    } else {
      got_id = sink.BlobId();
      *digest = sink.Digest();
      if (got_id != blob) {
        s = Status::Corruption(url, "has git blob id " + got_id + ", the tree lists " + blob +
                                        " (wrong bytes from the hub or on the way)");
      }
    }
    if (s.ok()) s = file->Sync();
    Status closed = file->Close();
    if (s.ok()) s = closed;
  }
  if (s.ok()) s = env->Rename(tmp, final_path);
  if (!s.ok()) {
    env->RemoveFile(tmp);
    return s;
  }
  return final_path;
}

Result<RevisionListing> HubSource::FetchRevision(const PollResult& poll) {
  const std::string& sha = poll.revision;
  Manifest m;
  m.repo = repo_;
  m.revision = sha;
  SystemTime modified;
  m.created = ParseIsoTime(last_modified_, &modified)
                  ? FormatIsoTime(modified)
                  : FormatIsoTime(std::chrono::system_clock::now());
  m.provenance = {{"kind", "hub"}, {"commit", sha}, {"ref", settings_.ref}};

  std::string url = ApiPath() + "/tree/" + sha + "?recursive=true&expand=false";
  const std::string origin = OriginOf(settings_.hub);
  size_t downloaded = 0;
  uint64_t downloaded_bytes = 0;
  for (size_t page = 0; !url.empty(); ++page) {
    if (page == kMaxTreePages) {
      return Status::InvalidArgument(Context(), "the tree of " + sha + " has more than " +
                                                    std::to_string(kMaxTreePages) + " pages");
    }
    HttpRequest req;
    req.url = url;
    std::string body;
    SA_ASSIGN_OR_RETURN(HttpResponse resp, SendToHub(req, nullptr, &body));
    if (resp.status != 200) return HubError(Context(), url, resp, "revision " + sha);
    SA_ASSIGN_OR_RETURN(std::vector<HubTreeFile> files,
                        ParseHubTreePage(body, Context(), url, [this](const std::string& path) {
                          return HubPathSelected(settings_, path);
                        }));
    for (HubTreeFile& file : files) {
      ManifestEntry f;
      f.path = std::move(file.path);
      f.mode = 0644;
      const std::string& blob = file.blob;
      f.provenance["blob"] = blob;
      if (file.lfs) {
        f.sha256 = std::move(file.lfs_sha256);
        f.size = file.lfs_size;
        f.provenance["lfs"] = "true";
      } else {
        f.size = file.size;
        std::optional<HeldDigest> held =
            options_.held != nullptr ? options_.held->FindByBlob(blob) : std::nullopt;
        if (held && held->size == f.size) {
          f.sha256 = held->sha256;
          f.xxh3_128 = held->xxh3_128;
        } else {
          // Known only by its blob id: read it now (regular files are small).
          ContentDigest digest;
          SA_RETURN_IF_ERROR(Spool(sha, f.path, blob, f.size, &digest).status());
          f.sha256 = digest.sha256;
          f.xxh3_128 = digest.xxh3_128;
          ++downloaded;
          downloaded_bytes += f.size;
        }
      }
      m.files.push_back(std::move(f));
    }
    SA_ASSIGN_OR_RETURN(url, NextPage(resp, origin, Context(), "the tree's"));
  }
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  if (downloaded > 0) {
    LogInfo("read files the hub lists by blob id only", {{"repo", repo_},
                                                         {"files", std::to_string(downloaded)},
                                                         {"bytes", FormatBytes(downloaded_bytes)}});
  }
  Status valid = ValidateManifest(m, options_.manifest_limits);
  if (!valid.ok()) return valid.WithContext(Context() + " revision " + sha);
  return RevisionListing{m, Sha256Hex(SerializeManifest(m))};
}

Result<std::string> HubSource::ContentUrl(const ContentRef& content, bool refresh) {
  const std::string key = content.revision + "/" + content.path;
  {
    std::lock_guard<std::mutex> lock(urls_mu_);
    auto cached = content_urls_.find(key);
    if (cached != content_urls_.end() && !refresh) return cached->second;
  }
  auto remember = [&](const std::string& url) {
    std::lock_guard<std::mutex> lock(urls_mu_);
    content_urls_[key] = url;
  };
  // Follow the hub's own (relative) redirects; stop at the first that leaves
  // it: that URL gets no token and is used for every range of the file.
  std::string url = ResolveUrl(content.revision, content.path);
  const std::string origin = OriginOf(settings_.hub);
  for (int hops = 0; hops < 5; ++hops) {
    HttpRequest req;
    req.url = url;
    req.head = true;
    req.follow_redirects = false;
    SA_ASSIGN_OR_RETURN(HttpResponse resp, SendToHub(req, nullptr));
    if (!resp.location.empty()) {
      if (OriginOf(resp.location) != origin) {
        remember(resp.location);
        return resp.location;
      }
      url = resp.location;
      continue;
    }
    if (resp.status == 200) {  // the hub serves the bytes itself (another node)
      remember(url);
      return url;
    }
    return HubError(Context() + " " + content.path, url, resp,
                    "file " + content.path + " at " + content.revision);
  }
  return Status::Network(Context(), "too many redirects resolving " + content.path);
}

Result<std::string> HubSource::SpoolOf(const ContentRef& content) {
  auto blob = content.provenance.find("blob");
  if (blob == content.provenance.end()) {
    return Status::NotFound(ContentLocation(content), "no blob id for this content");
  }
  // Spooled by FetchRevision (checked then; the engine checks the sha256 of
  // what it reads), or read now.
  const std::string path = SpoolPath(blob->second);
  auto held = options_.env->Stat(path);
  if (held.ok() && held->size == content.size) return path;
  ContentDigest digest;
  return Spool(content.revision, content.path, blob->second, content.size, &digest);
}

HttpClient* HubSource::ClientFor(const std::string& url) {
  return OriginOf(url) == OriginOf(settings_.hub) ? &client_ : &cdn_client_;
}

Status HubSource::FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) {
  if (content.provenance.count("lfs") == 0) {
    SA_ASSIGN_OR_RETURN(std::string path, SpoolOf(content));
    SA_ASSIGN_OR_RETURN(auto file, options_.env->NewSequentialFile(path));
    SA_RETURN_IF_ERROR(file->Skip(offset));
    SA_RETURN_IF_ERROR(sink->Begin(offset));
    std::vector<char> buf(kSpoolPiece);
    while (true) {
      SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
      if (n == 0) return Status::OK();
      SA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
    }
  }
  for (bool refresh : {false, true}) {
    SA_ASSIGN_OR_RETURN(std::string url, ContentUrl(content, refresh));
    Status s = GetFromOffset(ClientFor(url), {url, {}, options_.cancel}, offset, sink);
    // A signed CDN URL that expired answers 403 (or 404/410): resolve again once.
    if (!refresh && !s.ok() && s.code() != Status::Code::kCancelled &&
        url.find('?') != std::string::npos &&
        (s.message().find("HTTP 403") != std::string::npos || s.IsNotFound())) {
      continue;
    }
    return s.WithContext(content.path);
  }
  return Status::OK();  // not reached
}

Status HubSource::FetchContentRanges(const ContentRef& content,
                                     const std::vector<ByteRange>& ranges, const RangeSink& sink) {
  if (content.provenance.count("lfs") == 0) {
    SA_ASSIGN_OR_RETURN(std::string path, SpoolOf(content));
    SA_RETURN_IF_ERROR(CheckRangesArgument(path, content.size, ranges));
    SA_ASSIGN_OR_RETURN(auto file, options_.env->NewRandomAccessFile(path));
    std::vector<char> buf(kSpoolPiece);
    for (const ByteRange& r : ranges) {
      for (uint64_t pos = r.offset; pos < r.end();) {
        if (options_.cancel != nullptr && options_.cancel->load()) {
          return Status::Cancelled(ContentLocation(content), "stop requested");
        }
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.end() - pos));
        SA_ASSIGN_OR_RETURN(size_t n, file->ReadAt(pos, buf.data(), want));
        if (n == 0) return Status::Corruption(path, "ended at byte " + std::to_string(pos));
        SA_RETURN_IF_ERROR(sink(pos, buf.data(), n));
        pos += n;
      }
    }
    return Status::OK();
  }
  SA_ASSIGN_OR_RETURN(std::string url, ContentUrl(content, false));
  return GetRanges(ClientFor(url), {url, {}, options_.cancel}, content.size, ranges, sink);
}

// --- The hub kind -------------------------------------------------------------

Result<std::vector<std::string>> HubSource::ListAuthorRepos(const std::string& org,
                                                            size_t max_repos) {
  const std::string context = "hub " + settings_.hub + " " + settings_.type + "s of " + org;
  const std::string origin = OriginOf(settings_.hub);
  std::string url = settings_.hub +
                    (settings_.type == "dataset" ? "/api/datasets" : "/api/models") +
                    "?author=" + PercentEncode(org);
  std::vector<std::string> ids;
  for (size_t page = 0; !url.empty(); ++page) {
    if (page == kMaxTreePages) {
      return Status::InvalidArgument(
          context, "the listing has more than " + std::to_string(kMaxTreePages) + " pages");
    }
    HttpRequest req;
    req.url = url;
    req.max_body_bytes = options_.manifest_limits.max_bytes;
    std::string body;
    auto resp = SendToHub(req, nullptr, &body);
    if (!resp.ok()) {
      if (resp.status().code() == Status::Code::kInvalidArgument) {
        return Status::InvalidArgument(context,
                                       "a page of " + url + " is larger than manifest_max_bytes (" +
                                           std::to_string(options_.manifest_limits.max_bytes) +
                                           "); raise manifest_max_bytes if it is right");
      }
      return resp.status().WithContext(context);
    }
    if (resp->status != 200) return HubError(context, url, *resp, "the list of " + org);
    SA_ASSIGN_OR_RETURN(std::vector<std::string> listed, ParseHubRepoListPage(body, context, url));
    for (std::string& id : listed) {
      if (ids.size() == max_repos) {
        return Status::InvalidArgument(
            context, "the hub lists more than " + std::to_string(max_repos) + " " + settings_.type +
                         "s of " + org +
                         " (org_max_repos); raise org_max_repos if the organisation is that "
                         "large");
      }
      ids.push_back(std::move(id));
    }
    SA_ASSIGN_OR_RETURN(url, NextPage(*resp, origin, context, "the listing's"));
  }
  return ids;
}

Result<std::vector<std::string>> HubSpec::ListOrganisation(const std::string& url,
                                                           const std::string& org,
                                                           const SourceOptions& options,
                                                           size_t max_repos) const {
  HubRepoSettings s = settings_;
  s.hub = url;
  HubSource source(org + "/*", std::move(s), options);
  return source.ListAuthorRepos(org, max_repos);
}

Result<std::unique_ptr<Source>> HubSpec::Make(const std::string& url, const std::string& repo,
                                              const SourceOptions& options) const {
  HubRepoSettings s = settings_;
  s.hub = url;
  return std::unique_ptr<Source>(new HubSource(repo, std::move(s), options));
}

std::vector<SpecField> HubSpec::Describe() const {
  std::vector<SpecField> out = {
      {"hub", settings_.hub}, {"ref", settings_.ref}, {"type", settings_.type}};
  std::string include, exclude;
  for (const auto& g : settings_.include) include += (include.empty() ? "" : ",") + g;
  for (const auto& g : settings_.exclude) exclude += (exclude.empty() ? "" : ",") + g;
  if (!include.empty()) out.push_back({"include", include});
  if (!exclude.empty()) out.push_back({"exclude", exclude});
  return out;
}

Result<std::shared_ptr<const SourceSpec>> HubKind::Parse(const RepoTable& table) const {
  HubRepoSettings s;
  std::string hub;
  SA_RETURN_IF_ERROR(table.GetString("hub", &hub));
  std::string why = NormalizeSourceUrl(hub, &s.hub);
  if (why.empty() && s.hub.rfind("http", 0) != 0) why = "use https://host or http://host";
  if (!why.empty()) {
    return table.Error("hub", table.label() + " hub " + JsonQuote(hub) + " is not valid: " + why);
  }
  SA_RETURN_IF_ERROR(table.GetString("ref", &s.ref));
  if (HasControlOrSpace(s.ref) || s.ref.find("..") != std::string::npos) {
    return table.Error("ref", table.label() + " ref " + JsonQuote(s.ref) +
                                  " is not a branch, tag or commit of a hub");
  }
  SA_RETURN_IF_ERROR(table.GetString("type", &s.type));
  if (s.type != "model" && s.type != "dataset") {
    return table.Error(
        "type", table.label() + " type " + JsonQuote(s.type) + " must be \"model\" or \"dataset\"");
  }
  SA_RETURN_IF_ERROR(table.GetStringArray("include", &s.include));
  SA_RETURN_IF_ERROR(table.GetStringArray("exclude", &s.exclude));
  for (const char* key : {"include", "exclude"}) {
    const auto& globs = std::string(key) == "include" ? s.include : s.exclude;
    for (size_t i = 0; i < globs.size(); ++i) {
      if (globs[i].empty()) {
        return table.ElementError(key, i, table.label() + " " + key + " has an empty glob");
      }
    }
  }
  return std::shared_ptr<const SourceSpec>(std::make_shared<HubSpec>(std::move(s)));
}

}  // namespace sync_agent
