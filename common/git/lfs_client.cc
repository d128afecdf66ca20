#include "common/git/lfs_client.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "common/base/byte_sink.h"
#include "common/base/json_text.h"

namespace sync_agent {
namespace {

constexpr const char* kLfsMediaType = "application/vnd.git-lfs+json";
constexpr uint64_t kMaxBatchResponseBytes = 16 << 20;

using Poco::JSON::Object;

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::string LfsEndpoint(const std::string& git_url) {
  std::string url = TrimSlash(git_url);
  if (url.size() >= 4 && url.compare(url.size() - 4, 4, ".git") == 0) return url + "/info/lfs";
  return url + ".git/info/lfs";
}

LfsClient::LfsClient(std::string git_url, HttpClientOptions options,
                     std::vector<std::pair<std::string, std::string>> headers)
    : endpoint_(LfsEndpoint(git_url)), headers_(std::move(headers)), client_(std::move(options)) {}

Result<std::vector<Result<LfsDownload>>> LfsClient::Batch(const std::vector<LfsObject>& objects) {
  const std::string url = endpoint_ + "/objects/batch";
  const std::string context = "git lfs batch request to " + url;
  std::string body = "{\"operation\": \"download\", \"transfers\": [\"basic\"], \"objects\": [";
  for (size_t i = 0; i < objects.size(); ++i) {
    if (i) body += ", ";
    body += "{\"oid\": " + JsonQuote(objects[i].oid) +
            ", \"size\": " + std::to_string(objects[i].size) + "}";
  }
  body += "]}";
  HttpRequest req;
  req.url = url;
  req.post_body = body;
  req.content_type = kLfsMediaType;
  req.headers = headers_;
  req.headers.emplace_back("Accept", kLfsMediaType);
  SA_ASSIGN_OR_RETURN(auto got, client_.Fetch(req, kMaxBatchResponseBytes));
  auto& [resp, text] = got;
  if (resp.status != 200) {
    // (HttpClient drops the bodies of error answers, so the server's own
    // message is not available here.)
    std::string detail = "HTTP " + std::to_string(resp.status) + " " + resp.reason;
    if (resp.status == 401 || resp.status == 403) {
      return Status::Network(context, detail + " (check the repository's authorization header)");
    }
    if (resp.status == 404) return Status::NotFound(context, detail);
    return Status::Network(context, detail);
  }

  std::map<std::string, Result<LfsDownload>> by_oid;
  try {
    Poco::JSON::Parser parser;
    Object::Ptr obj = parser.parse(text).extract<Object::Ptr>();
    if (!obj) return Status::Corruption(context, "the answer is not a JSON object");
    if (obj->has("transfer") && obj->getValue<std::string>("transfer") != "basic") {
      return Status::Unsupported(context, "the server chose transfer \"" +
                                              obj->getValue<std::string>("transfer") +
                                              "\"; only \"basic\" is supported");
    }
    Poco::JSON::Array::Ptr list = obj->getArray("objects");
    if (!list) return Status::Corruption(context, "the answer has no \"objects\" array");
    for (unsigned i = 0; i < list->size(); ++i) {
      Object::Ptr o = list->getObject(i);
      if (!o || !o->has("oid")) {
        return Status::Corruption(context, "objects[" + std::to_string(i) + "] has no oid");
      }
      std::string oid = o->getValue<std::string>("oid");
      if (Object::Ptr err = o->getObject("error")) {
        int code = err->has("code") ? err->getValue<int>("code") : 0;
        std::string message = err->has("message") ? err->getValue<std::string>("message") : "";
        std::string detail = "error " + std::to_string(code) + (message.empty() ? "" : ": ") +
                             message + " (from " + url + ")";
        by_oid.emplace(oid, code == 404 ? Status::NotFound("git lfs object " + oid,
                                                           "missing on the LFS server, " + detail)
                                        : Status::Network("git lfs object " + oid, detail));
        continue;
      }
      Object::Ptr actions = o->getObject("actions");
      Object::Ptr download = actions ? actions->getObject("download") : nullptr;
      if (!download || !download->has("href")) {
        by_oid.emplace(oid, Status::Corruption("git lfs object " + oid,
                                               "the batch answer gives no download action"));
        continue;
      }
      LfsDownload d;
      d.href = download->getValue<std::string>("href");
      if (Object::Ptr header = download->getObject("header")) {
        for (const auto& [name, value] : *header) d.headers.emplace_back(name, value.toString());
      }
      by_oid.emplace(oid, std::move(d));
    }
  } catch (const Poco::Exception& e) {
    return Status::Corruption(context, "the answer is not valid batch JSON: " + e.displayText());
  }
  std::vector<Result<LfsDownload>> out;
  for (const LfsObject& o : objects) {
    auto it = by_oid.find(o.oid);
    if (it == by_oid.end()) {
      out.push_back(Status::Corruption("git lfs object " + o.oid,
                                       "the batch answer from " + url + " does not mention it"));
    } else {
      // (A copy: the same oid may be asked for twice.)
      const Result<LfsDownload>& found = it->second;
      out.push_back(found.ok() ? Result<LfsDownload>(*found) : Result<LfsDownload>(found.status()));
    }
  }
  return out;
}

namespace {

// What a download answered with another status than 200 or 206 means.
Status DownloadFailed(const LfsObject& object, const LfsDownload& action, const HttpResponse& r) {
  if (r.status == 404) {
    return Status::NotFound("git lfs object " + object.oid,
                            "missing on the LFS server (HTTP 404 for " + action.href + ")");
  }
  return Status::Network("git lfs object " + object.oid, "HTTP " + std::to_string(r.status) + " " +
                                                             r.reason + " from " + action.href);
}

}  // namespace

Status LfsClient::Download(const LfsObject& object, const LfsDownload& action, uint64_t offset,
                           ObjectSink* sink) {
  HttpRequest req;
  req.url = action.href;
  req.headers = action.headers;
  if (offset > 0) req.range_first = offset;
  req.on_headers = [&](const HttpResponse& r) -> Status {
    if (r.status == 206) {
      if (r.range_first.value_or(0) != offset) {
        return Status::Network("git lfs object " + object.oid,
                               action.href + " answered a range request for byte " +
                                   std::to_string(offset) + " from byte " +
                                   std::to_string(r.range_first.value_or(0)));
      }
      return sink->Begin(offset);
    }
    if (r.content_length && *r.content_length != object.size) {
      return Status::Corruption("git lfs object " + object.oid,
                                action.href + " sends " + std::to_string(*r.content_length) +
                                    " bytes, the pointer says " + std::to_string(object.size));
    }
    return sink->Begin(0);
  };
  SA_ASSIGN_OR_RETURN(HttpResponse resp,
                      client_.Send(req, [&](const char* data, size_t n) -> Status {
                        return sink->Write(data, n);
                      }));
  if (resp.status == 416 && offset > 0) {
    // What the caller holds is the whole object already; it verifies that.
    return sink->Begin(offset);
  }
  if (resp.status != 200 && resp.status != 206) return DownloadFailed(object, action, resp);
  return Status::OK();
}

Status LfsClient::DownloadRange(const LfsObject& object, const LfsDownload& action, ByteRange range,
                                const std::function<Status(uint64_t, const char*, size_t)>& sink) {
  const std::string what = "git lfs object " + object.oid;
  HttpRequest req;
  req.url = action.href;
  req.headers = action.headers;
  req.range_first = range.offset;
  req.range_last = range.offset + range.length - 1;
  uint64_t at = range.offset;
  req.on_headers = [&](const HttpResponse& r) -> Status {
    if (r.status == 200) {
      return Status::Unsupported(what, action.href + " ignores Range requests (answered 200)");
    }
    if (r.range_first.value_or(0) != range.offset ||
        (r.range_total && *r.range_total != object.size)) {
      return Status::Network(
          what, action.href + " answered another range than bytes " + std::to_string(range.offset) +
                    "-" + std::to_string(range.end() - 1) + " of " + std::to_string(object.size));
    }
    return Status::OK();
  };
  SA_ASSIGN_OR_RETURN(HttpResponse resp, client_.Send(req, [&](const char* data, size_t n) {
    Status s = sink(at, data, n);
    at += n;
    return s;
  }));
  if (resp.status != 206) return DownloadFailed(object, action, resp);
  if (at != range.end()) {
    return Status::Network(what, action.href + " sent " + std::to_string(at - range.offset) +
                                     " of " + std::to_string(range.length) + " bytes asked");
  }
  return Status::OK();
}

}  // namespace sync_agent
