// A real nginx (/usr/sbin/nginx) serving a directory on a free loopback port,
// for tests that need a production-grade static file server: ranges,
// conditional requests, throttling and an access log to assert on.
//
// Each NginxServer owns a fresh world-readable prefix directory holding its
// nginx.conf, pid file, logs and temp paths; nothing outside it is written.
// When the tests run as root, nginx's workers run as "nobody", so the served
// root, its parents and every file in it must be readable (and directories
// traversable) by others: create the root with TempDir(/*world_readable=*/true)
// and files with mode 0644. Start() refuses a root that others cannot enter.
//
// Not thread safe; use from the test's thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sync_agent::testing {

class BackgroundProcess;
class TempDir;

// fcgiwrap on a unix socket in dir, writable by nginx's workers, for git's
// smart HTTP backend. Returns nullptr (and *error) if it did not start.
std::unique_ptr<BackgroundProcess> StartFcgiWrap(const std::string& socket, std::string* error);

// One line of the fixture's access log.
struct AccessLogEntry {
  std::string method;       // "GET", "HEAD"
  std::string uri;          // normalized, decoded path without the query ($uri)
  int status = 0;           // 200, 206, 304, 404, 416, ...
  uint64_t bytes_sent = 0;  // body bytes only ($body_bytes_sent)
  std::string range;        // the request's Range header, "" if none
  uint64_t connection = 0;  // nginx's serial number of the connection ($connection)
};

class NginxServer {
 public:
  struct Options {
    std::string root = {};        // directory to serve at "/"
    std::string limit_rate = {};  // per-connection rate limit, e.g. "2m"; empty = none
    // When set, requests that begin while this file exists are not rate
    // limited (a test throttles only the runs it means to interrupt).
    std::string unlimited_while_exists = {};
    std::string limit_rate_after =
        {};  // limit_rate applies after this much of a response, e.g. "4k"
    // false sets max_ranges 1: a request for several ranges is answered with
    // the whole file (200), like servers and CDNs that do not do multipart.
    bool multi_range_ok = true;
    // false sets max_ranges 0: every request, ranged or not, is answered
    // with the whole file (200), like servers without range support.
    bool ranges_ok = true;
    // Git smart HTTP: when set, "<name>.git/..." requests for the bare
    // repositories under git_project_root go to git-http-backend through
    // the fcgiwrap listening on fcgi_socket (see FcgiWrap).
    std::string git_project_root = {};
    std::string fcgi_socket = {};
    // When set ("127.0.0.1:<port>"), "<name>.git/info/lfs/..." is proxied
    // there (a Git LFS server).
    std::string lfs_upstream = {};
    // When both are set (PEM files readable by nginx's workers), the server
    // speaks HTTPS and url() starts with https://.
    std::string tls_cert = {};
    std::string tls_key = {};
    // When set, requests without exactly this Authorization header get 401.
    std::string require_authorization = {};
    // When set, nginx.conf's http {} holds this text (upstream and server
    // blocks, e.g. a shipped example with its listen, root and ports
    // replaced) instead of the generated server block; root and the options
    // above are then not used; "@PORT@" becomes the port the fixture picked.
    // The fixture's access log still applies.
    std::string http_blocks = {};
  };

  explicit NginxServer(Options options);
  // Stops nginx: SIGQUIT (graceful), then SIGKILL to its process group if it
  // has not exited within a few seconds; waits for it; removes the prefix.
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  // Writes the config, starts nginx and returns once the port accepts
  // connections. On failure returns false with *error holding nginx's own
  // messages; nothing is left running. Call at most once.
  bool Start(std::string* error);

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>" (https with TLS), no trailing slash
  std::string AccessLogPath() const;
  // Parses the access log. nginx writes a line after the response has been
  // sent, so a client may see the last byte before its line exists: use
  // WaitForAccessLog() to wait for a count.
  std::vector<AccessLogEntry> ReadAccessLog() const;
  // Polls until the log has at least n entries or the timeout passes; returns
  // whether it does.
  bool WaitForAccessLog(size_t n,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Marks the present point in the access log: requests "/.sa-test-mark-<n>"
  // itself, on a connection of its own (a 404), and waits until that line is
  // written. nginx logs a request when it has sent the response, and the
  // fixture runs one worker, which logs in order: every request whose
  // response a client had received before the call is above the mark, so the
  // entries between two marks are exactly what was requested in between.
  // Returns the mark's index in ReadAccessLog(); fails the test and returns
  // -1 if the line did not appear within 10 s. Plain HTTP only (not TLS).
  long MarkAccessLog();

  // nginx's error log, for failure messages.
  std::string ErrorLog() const;

  // Kills nginx and its workers at once (SIGKILL to the process group), so
  // connections in flight break off mid-body. The access log stays readable.
  void Kill();

  // True if /usr/sbin/nginx is installed and executable.
  static bool Available();

 private:
  bool StartOnPort(int port, std::string* error);
  void Stop();

  Options options_;
  std::unique_ptr<TempDir> prefix_;
  std::unique_ptr<BackgroundProcess> process_;
  int port_ = 0;
  int marks_ = 0;
};

}  // namespace sync_agent::testing
