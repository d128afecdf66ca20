// An HTTP server on a raw loopback socket whose answers a test scripts byte by
// byte, for the cases a well-behaved server never produces: truncated
// bodies, broken chunked encoding, stalls, dropped keep-alive connections,
// odd range answers.
//
// Thread safety: the handler runs on the server's threads, one per
// connection; url(), port(), connections() and requests() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/base/byte_range.h"

namespace sync_agent::testing {

// What a ScriptedServer does with one request.
struct Reply {
  std::vector<std::string> writes;             // sent in order, each with its own send()
  std::chrono::milliseconds pause_between{0};  // between writes
  bool close_after = false;                    // close the connection after the writes
  // When not empty: after the writes, sent again and again (pause_between
  // apart) until the client goes away or the server stops: an endless header
  // or body, fast or dribbling.
  std::string repeat;
  bool hang = false;  // send nothing and keep the connection open
};

// A Reply that sends bytes in one write.
Reply Respond(std::string bytes, bool close_after = false);

// "HTTP/1.1 <status> X" with Content-Length, the extra header lines (each
// ending in CRLF) and body.
std::string Response(int status, const std::string& body, const std::string& extra = "");

// A multipart/byteranges body holding the given ranges of content, written
// as nginx and the StaticFileServer write it: each part is CRLF "--boundary"
// CRLF, Content-Type and Content-Range headers, CRLF, the data; then CRLF
// "--boundary--" CRLF.
std::string MultipartBody(const std::string& boundary, const std::string& content,
                          const std::vector<ByteRange>& ranges);

// The ranges of a request's "Range: bytes=a-b,c-d" header as [offset,
// end()) (no suffix or open-ended specs); empty when there is none.
std::vector<ByteRange> RequestedRanges(const std::string& request);

// Every request (headers only) is answered by the handler, which sees the
// request text, the connection's number and the request's number on that
// connection (both from 0). Listens on 127.0.0.1, port chosen by the kernel.
class ScriptedServer {
 public:
  using Handler = std::function<Reply(const std::string& request, int connection, int index)>;

  explicit ScriptedServer(Handler handler);
  // Stops accepting, closes connections and joins every thread.
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  std::string Url(const std::string& path) const;
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  // The requests received so far, headers only, in arrival order.
  std::vector<std::string> requests() const;

 private:
  bool WaitReadable(int fd);
  // Sleeps for d unless the server stops first; false if it did.
  bool Pause(std::chrono::milliseconds d);
  // Sends all of bytes; false if the client went away or the server stops.
  bool SendAll(int fd, const std::string& bytes);
  void AcceptLoop();
  void Serve(int fd, int connection);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<std::string> requests_;
};

}  // namespace sync_agent::testing
