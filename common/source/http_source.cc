// HttpSource: a publish root served by any static HTTP server or CDN.
#include "common/hash/content_hasher.h"
#include "common/source/source_impl.h"

namespace sync_agent {
namespace {

HttpClientOptions ClientOptions(const SourceOptions& o) {
  HttpClientOptions h;
  h.io_timeout = o.io_timeout;
  return h;
}

Status StatusForHttp(const std::string& what, const std::string& url, const HttpResponse& r) {
  std::string detail = "HTTP " + std::to_string(r.status) + " " + r.reason + " from " + url;
  if (r.status == 404 || r.status == 410) return Status::NotFound(what, detail);
  return Status::Network(what, detail);
}

}  // namespace

HttpSource::HttpSource(std::string root, SourceOptions options)
    : root_(std::move(root)), options_(options), client_(ClientOptions(options)) {}

std::string HttpSource::Url(const std::string& repo, const std::string& rel) const {
  return root_ + "/" + repo + "/" + rel;
}

Result<PointerFetch> HttpSource::FetchPointer(const std::string& repo,
                                              const PointerValidators* prev) {
  HttpRequest req;
  req.url = Url(repo, kPointerName);
  req.cancel = options_.cancel;
  if (prev != nullptr) {
    req.if_none_match = prev->etag;
    req.if_modified_since = prev->etag.empty() ? prev->last_modified : "";
  }
  SA_ASSIGN_OR_RETURN(auto got, client_.Fetch(req, 64 * 1024));
  auto& [resp, body] = got;
  PointerFetch fetch;
  if (resp.status == 304 && prev != nullptr) {
    fetch.not_modified = true;
    fetch.validators = *prev;
    return fetch;
  }
  if (resp.status == 404) {
    return Status::NotFound("source " + root_, "no published revision of " + repo +
                                                   " (HTTP 404 for " + req.url +
                                                   "); check the source URL and that the "
                                                   "origin has published this repository");
  }
  if (resp.status != 200) return StatusForHttp("fetch revision pointer", req.url, resp);
  fetch.validators.etag = resp.etag;
  fetch.validators.last_modified = resp.last_modified;
  fetch.validators.pointer_sha256 = Sha256Hex(body);
  if (prev != nullptr && prev->pointer_sha256 == fetch.validators.pointer_sha256) {
    fetch.not_modified = true;
    return fetch;
  }
  fetch.body = std::move(body);
  return fetch;
}

Result<std::string> HttpSource::FetchManifest(const std::string& repo,
                                              const std::string& revision) {
  HttpRequest req;
  req.url = Url(repo, PublishedManifestPath(revision));
  req.cancel = options_.cancel;
  SA_ASSIGN_OR_RETURN(auto got, client_.Fetch(req, kMaxManifestBytes));
  if (got.first.status != 200) return StatusForHttp("fetch manifest", req.url, got.first);
  return std::move(got.second);
}

std::string HttpSource::FileLocation(const std::string& repo, const std::string& rel_path) const {
  return Url(repo, rel_path);
}

Status HttpSource::FetchRanges(const std::string& repo, const std::string& rel_path,
                               uint64_t file_size, const std::vector<ByteRange>& ranges,
                               const RangeSink& sink) {
  (void)file_size;
  (void)ranges;
  (void)sink;
  return Status::Unsupported("ranges of " + FileLocation(repo, rel_path), "not yet");
}

Status HttpSource::FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                             ObjectSink* sink) {
  HttpRequest req;
  req.url = FileLocation(repo, rel_path);
  req.cancel = options_.cancel;
  if (offset > 0) req.range_first = offset;
  req.on_headers = [&](const HttpResponse& r) -> Status {
    if (r.status == 206) {
      uint64_t first = r.range_first.value_or(0);
      if (first != offset) {
        return Status::Network("GET " + req.url, "server answered a range request for byte " +
                                                     std::to_string(offset) + " from byte " +
                                                     std::to_string(first));
      }
      return sink->Begin(first);
    }
    return sink->Begin(0);  // 200: the server ignored Range and sends everything
  };
  SA_ASSIGN_OR_RETURN(HttpResponse resp,
                      client_.Send(req, [&](const char* data, size_t n) -> Status {
                        return sink->Write(data, n);
                      }));
  if (resp.status == 416 && offset > 0) {
    // What we hold is already the whole object (or more): the caller verifies it.
    return sink->Begin(offset);
  }
  if (resp.status != 200 && resp.status != 206) {
    return StatusForHttp("download", req.url, resp);
  }
  return Status::OK();
}

}  // namespace sync_agent
