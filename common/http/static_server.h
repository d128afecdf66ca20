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
// Thread safety: Start, Stop and the destructor from one thread; port(),
// url() and stats() from any thread. Requests are served on a pool of up to
// Options::max_threads threads, one connection per thread at a time; further
// connections wait in a queue of Options::max_queued, beyond which they are
// closed.
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
    int port = 0;  // 0: the kernel picks a free port, see port()
    int max_threads = 32;
    int max_queued = 256;
    // A client that sends or accepts nothing for this long is dropped.
    std::chrono::milliseconds io_timeout{60000};
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
  };

  explicit StaticFileServer(Options options);
  ~StaticFileServer();  // Stop()
  StaticFileServer(const StaticFileServer&) = delete;
  StaticFileServer& operator=(const StaticFileServer&) = delete;

  // Binds, listens and starts serving. Fails with kInvalidArgument when the
  // root is not a directory or the TLS files cannot be loaded, kIOError when
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
  std::unique_ptr<Impl> impl_;
};

}  // namespace sync_agent
