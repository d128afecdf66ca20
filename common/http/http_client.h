// HttpClient: the agent's HTTP/1.1 client, on Poco::Net. It streams response
// bodies to a caller's sink in large pieces (memory use does not grow with
// the body), keeps connections alive between requests to the same host, and
// turns every Poco exception into a Status that names the URL.
//
// Thread safety: one HttpClient per thread. Cancellation: set *cancel and the
// request stops within a fraction of a second (common/http/transfer_watch.h),
// also while the server sends its head or body slowly or not at all.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/cancel.h"
#include "common/base/status.h"

namespace sync_agent {

class RateLimiter;
class SharedConnections;

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // No byte for this long fails the request; the status line and headers
  // must also be complete this long after the request was sent.
  std::chrono::milliseconds io_timeout{60000};
  // A body slower than low_speed_limit bytes/s on average over
  // low_speed_time fails the request (0: no minimum). Time spent waiting for
  // `limiter` does not count.
  uint64_t low_speed_limit = 1024;
  std::chrono::milliseconds low_speed_time{60000};
  int max_redirects = 5;
  std::string ca_file;  // for https; empty: the system's CA store
  std::string user_agent = "sync-agent/" SA_VERSION;
  // When set, every body byte read counts against this cap (shared by all
  // clients of the process); it must outlive the client.
  RateLimiter* limiter = nullptr;
  // When set, a request to an origin this client has no connection to
  // takes an idle one from here, and the client's connections go back here
  // when it is destroyed: keep-alive across the clients of a process (one
  // per source, repository and thread). It must outlive the client.
  SharedConnections* shared = nullptr;
  // Sent as the Authorization header of every request that does not set
  // one, to the origin of the request's URL only (never after a redirect to
  // another origin).
  std::string authorization;
};

struct HttpRequest {
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string if_none_match;      // sent as If-None-Match when not empty
  std::string if_modified_since;  // sent as If-Modified-Since when not empty
  // Range: bytes=<first>-[<last>] when set.
  std::optional<uint64_t> range_first;
  std::optional<uint64_t> range_last;
  // Several ranges in one request when not empty: Range: bytes=<a>-<b>,...
  // for each [offset, end()) in the given order. Each must be non-empty, and
  // range_first must be unset. The server may answer 206 with one part or
  // with multipart/byteranges (read it with common/http/byteranges.h), or
  // 200 with the whole file.
  std::vector<ByteRange> ranges;
  bool head = false;  // HEAD instead of GET
  // When false, a redirect is returned as the response (its status, headers
  // and HttpResponse::location) instead of being followed.
  bool follow_redirects = true;
  // When set, a POST with this body (and content_type) instead of a GET.
  std::optional<std::string> post_body;
  std::string content_type;
  const CancelFlag* cancel = nullptr;
  // When set, the whole request (redirects, heads and body) fails with
  // kNetwork if it is not done this long after Send was called; for small
  // answers (a pointer, a JSON document) that must not take long in total.
  std::optional<std::chrono::milliseconds> deadline;
  // When set, a 200 or 206 body longer than this fails with
  // kInvalidArgument ("larger than N bytes"), before any of it is read when
  // Content-Length says so, else once the limit is passed (an endless
  // chunked body).
  std::optional<uint64_t> max_body_bytes;
  // Called once for a 200 or 206 response after its headers and before the
  // first body byte goes to the sink. A non-OK Status aborts the request.
  std::function<Status(const struct HttpResponse&)> on_headers;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // keys lowercased
  std::string etag;
  std::string last_modified;
  std::optional<uint64_t> content_length;
  // From Content-Range on a 206: the first and last (inclusive) byte and the
  // full size ("*" -> nullopt). On a 416, range_total comes from
  // "bytes */<size>" and range_first and range_last are unset. All unset
  // when the header is missing or malformed (e.g. a multipart/byteranges
  // answer, whose parts carry their own Content-Range).
  std::optional<uint64_t> range_first;
  std::optional<uint64_t> range_last;
  std::optional<uint64_t> range_total;
  std::string final_url;  // after redirects
  // A redirect not followed (HttpRequest::follow_redirects false): where it
  // points, as an absolute URL.
  std::string location;
};

// Receives the body in order. A non-OK Status aborts the transfer and is returned by Get.
using BodySink = std::function<Status(const char* data, size_t n)>;

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request, following redirects. For 200 and 206 the body goes to
  // sink (if sink is set) and the call fails with kNetwork if the connection
  // ends before Content-Length bytes arrived. For other statuses the body is
  // read and dropped (up to a small limit) and the response is returned with
  // OK status: the caller decides what 304, 404 or 416 mean. Transport
  // failures (refused, reset, timeout, TLS) return kNetwork naming the URL,
  // and so does a server that breaks a limit: a head not complete within
  // io_timeout or longer than 64 KiB or 100 lines, a body below the minimum
  // rate, the request's deadline.
  // Whatever body bytes arrived before a failure (truncation, timeout,
  // cancellation) have been given to the sink, so a caller can resume with a
  // range from there. A request that failed on a reused connection before any
  // of the response arrived is sent once more on a fresh one. Connections are
  // kept per scheme://host:port (a few origins at most).
  Result<HttpResponse> Send(const HttpRequest& request, const BodySink& sink);

  // Convenience: GET into a string, at most max_bytes (kInvalidArgument past
  // that; request.max_body_bytes is set to it).
  Result<std::pair<HttpResponse, std::string>> Fetch(const HttpRequest& request,
                                                     uint64_t max_bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Idle kept-alive connections that HttpClients hand on to each other (see
// HttpClientOptions::shared), by origin and TLS settings; at most max_idle
// are kept, beyond that a returned connection is closed. Thread safe.
class SharedConnections {
 public:
  explicit SharedConnections(size_t max_idle = 64);
  ~SharedConnections();
  SharedConnections(const SharedConnections&) = delete;
  SharedConnections& operator=(const SharedConnections&) = delete;

  size_t idle() const;  // connections kept now
  // Connections made by clients using this pool so far (for tests and logs).
  uint64_t opened() const;

 private:
  friend class HttpClient;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "Tue, 15 Nov 1994 08:12:31 GMT" for a Unix time in seconds.
std::string FormatHttpDate(int64_t unix_seconds);

}  // namespace sync_agent
