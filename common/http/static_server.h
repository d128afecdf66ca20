// StaticFileServer: the built-in HTTP/1.1 file server behind
// `sync-agent serve <root> --listen <host>:<port>`, and the origin the tests
// sync from. It serves regular files under one root directory with GET and
// HEAD, keep-alive, byte ranges (single, multiple as multipart/byteranges,
// suffix and open-ended), strong ETags, Last-Modified and the conditional
// headers If-None-Match, If-Modified-Since and If-Range. File bodies go out
// with sendfile(2) (or through TLS in bounded pieces): memory use does not
// depend on file size.
//
// Nothing outside the root is reachable: the request path is percent-decoded
// once, paths with NUL bytes are refused (400), ".." components are refused
// (403), and a file whose resolved location (after symlinks) is not under the
// root's resolved location is refused (403). Directories are 404; there are
// no listings. Dotfiles are served. Query strings are ignored.
//
// Hostile and slow clients (common/http/connection_loop.h): one thread reads
// request heads from every connection without blocking, and only a complete
// request takes one of Options::max_threads worker threads. The whole head
// must arrive within request_timeout; an idle kept-alive connection is closed
// after keep_alive_timeout; a connection beyond max_connections, or beyond
// max_connections_per_address from one IP, and a request beyond max_queued
// waiting for a worker get 503 with Retry-After, never a silent close.
// Overlapping and adjacent byte ranges are merged, so no answer is longer
// than the file (see ParseRangeHeader in byteranges.h). With TLS (only the
// tests use it: `serve` has no TLS, production ends TLS in nginx)
// connections are served by Poco's thread-per-connection server instead,
// without these limits.
//
// Thread safety: Start, Stop and the destructor from one thread; port(),
// url() and stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

// One served request, as written to the access log.
struct AccessLogEntry {
  std::string method;
  std::string path;  // the request target as received (not decoded), without the query
  int status = 0;
  uint64_t body_bytes = 0;  // body bytes written to the socket
  std::string range;        // the Range header as received, empty when none
  std::string client;       // the peer, "127.0.0.1:54321"; one value per connection
};

// A request as a router (StaticFileServer::Options::router) sees it.
struct RoutedRequest {
  std::string method;
  std::string target;                          // as received, query included
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // of a POST, at most 1 MiB
  std::string base_url;  // "http://<Host header>": how the client reached the server
};

// What a router answers: a body, or a file sent as any file is (ranges,
// HEAD, If-None-Match) with the router's headers and ETag.
struct RoutedResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  std::string file;  // an absolute path; when set, status and body are not used
  std::string etag;  // with file: the ETag to send (quoted), instead of the file's own
};

class StaticFileServer {
 public:
  // Answers the requests it claims (any method); nullopt leaves the request
  // to the file handler. Called from server threads at once: thread safe.
  using RequestRouter = std::function<std::optional<RoutedResponse>(const RoutedRequest&)>;

  struct Options {
    std::string root;  // directory to serve; must exist
    std::string host = "127.0.0.1";
    int port = 0;          // 0: the kernel picks a free port, see port()
    int max_threads = 32;  // requests answered at once
    int max_queued = 256;  // complete requests waiting for a thread
    int max_connections = 1024;
    int max_connections_per_address = 64;  // 0: no cap
    // The whole request head (and a body of up to 64 KiB) must arrive
    // within this time from the connection's start or the head's first byte.
    std::chrono::milliseconds request_timeout{10000};
    // A client that sends or accepts nothing for this long while its request
    // is answered is dropped.
    std::chrono::milliseconds io_timeout{60000};
    // A kept-alive connection idle this long between requests is closed.
    std::chrono::milliseconds keep_alive_timeout{15000};
    // When set, one line per request is appended:
    //   "GET /path 206 1048576 bytes=0-1048575" (the range is "-" when none).
    std::string access_log_path;
    // When set, called once per request after the response, from server
    // threads (concurrently); it must be thread safe and must not block long.
    // A client may see the response before the call; none happens after Stop().
    std::function<void(const AccessLogEntry&)> access_log;
    // When set, consulted first for every request (see RequestRouter).
    RequestRouter router;
    // HTTPS when both are set (PEM files); plain HTTP otherwise.
    std::string tls_cert_file;
    std::string tls_key_file;
  };

  // Counters over the object's lifetime (they survive Stop()).
  struct Stats {
    uint64_t requests = 0;
    uint64_t body_bytes = 0;
    // Connections refused with 503 and request heads cut off with 408, and
    // the connections open now (all 0 with TLS).
    uint64_t open_connections = 0;
    uint64_t refused_connections = 0;
    uint64_t timed_out_requests = 0;
  };

  explicit StaticFileServer(Options options);
  ~StaticFileServer();  // Stop()
  StaticFileServer(const StaticFileServer&) = delete;
  StaticFileServer& operator=(const StaticFileServer&) = delete;

  // Binds, listens and starts serving. Fails with kInvalidArgument when the
  // root is not a directory, a limit is not positive or the TLS files cannot
  // be loaded, kIOError when
  // the access log cannot be opened, and kNetwork naming host:port when the
  // address cannot be bound (for example, in use). On failure nothing runs.
  Status Start();

  // Stops accepting, aborts connections in progress (their clients see the
  // connection close) and waits for every server thread to finish. Safe to
  // call more than once and on a server that never started.
  void Stop();

  // The bound port (the chosen one when Options::port was 0); 0 before Start.
  int port() const { return port_.load(); }
  // "http://127.0.0.1:8080" (https when TLS is on); the base URL of the root.
  std::string url() const;
  Stats stats() const;

 private:
  struct Impl;
  Options options_;
  std::atomic<int> port_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> body_bytes_{0};
  mutable std::mutex stats_mu_;  // guards impl_ and the two below against stats()
  uint64_t refused_before_ = 0;  // of the loops of earlier Start()s
  uint64_t timed_out_before_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sync_agent
