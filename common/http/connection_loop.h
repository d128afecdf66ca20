// ConnectionLoop: the front of the built-in HTTP server (StaticFileServer),
// which decides what a client may cost before a thread is spent on it.
//
// One thread accepts connections and reads each request's head (and a short
// body with Content-Length) from non-blocking sockets under epoll, so a slow
// or idle client costs a file descriptor and a few KiB, never a thread. A
// complete request is handed to a pool of worker threads, which answer it
// (and any request already read behind it); a kept-alive connection then
// returns to the loop to wait for its next request. This is the event-driven
// front of nginx and of Apache's event MPM, kept small: the workers still
// answer with blocking I/O (sendfile), which is what they are good at.
//
// The loop enforces, each with the status a client can act on:
//   - request_timeout: the whole head (and a buffered body) must arrive
//     within this time, counted from the connection's accept or, between
//     requests, from the head's first byte; not per byte, so a client
//     dribbling a byte a second is cut off like one that sends nothing.
//     408 then close (silently when it never sent a byte).
//   - keep_alive_timeout: a connection idle between requests is closed.
//   - max_head_bytes: a longer head gets 431 and a close.
//   - max_connections and max_connections_per_address (the client's IP):
//     a connection beyond either gets 503 with Retry-After and a close.
//   - max_queued: complete requests waiting for a free worker; one more
//     gets 503 with Retry-After.
// A refused connection's answer is followed by a half-close and a short
// drain of what the client still sends, so that it reads the answer rather
// than a reset. When the process runs out of file descriptors, one held in
// reserve is freed to accept, answer 503 and close the next connection.
//
// Thread safety: Start and Stop from one thread; stats() from any thread.
// The Worker function is called from worker threads at once.
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

class PendingSocketImpl;

// One client connection, owned by the ConnectionLoop. While a worker has it,
// only that worker touches it.
class HttpConnection {
 public:
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection();

  // For Poco's HTTP classes (HTTPServerSession): reads return the bytes the
  // loop has already read first, then read from the socket with its receive
  // timeout. Closing it does nothing: the loop closes the connection.
  Poco::Net::StreamSocket& socket() { return socket_; }
  // Puts bytes read from the socket but not used (an HTTP session's
  // buffered rest) back in front of what is still to be read.
  void Unread(const char* data, size_t n);
  // True when the bytes already read hold a whole request head (and its
  // buffered body), so that answering it need not wait for the client.
  bool HasCompleteRequest();

 private:
  friend class ConnectionLoop;
  enum class State { kHead, kIdle, kBusy, kDraining };
  HttpConnection(int fd, std::string address, size_t max_head_bytes, size_t max_body_bytes);

  PendingSocketImpl* impl_;  // owned by socket_
  Poco::Net::StreamSocket socket_;
  int fd_;
  std::string address_;  // the client's IP: the key of the per-address count
  State state_ = State::kHead;
  std::chrono::steady_clock::time_point deadline_;
  bool keep_ = false;  // set by the worker: wait for the next request
  bool eof_ = false;   // the client has half-closed
  const size_t max_head_bytes_;
  const size_t max_body_bytes_;
};

class ConnectionLoop {
 public:
  struct Limits {
    int max_threads = 32;
    int max_queued = 256;
    int max_connections = 1024;
    int max_connections_per_address = 64;  // 0: no cap
    std::chrono::milliseconds request_timeout{10000};
    std::chrono::milliseconds keep_alive_timeout{15000};
    size_t max_head_bytes = 64 << 10;
    // A body with Content-Length up to this size is read by the loop before
    // a worker is taken; a longer one (or a chunked one) by the worker.
    size_t max_buffered_body_bytes = 64 << 10;
    // Named in the messages of refusals, so that an operator knows what to
    // change, e.g. "serve_max_connections".
    std::string max_connections_key = "max_connections";
    std::string max_connections_per_address_key = "max_connections_per_address";
    std::string request_timeout_key = "request_timeout";
  };

  struct Stats {
    uint64_t open_connections = 0;     // accepted and not refused, now
    uint64_t refused_connections = 0;  // answered 503 at connect or when the queue was full
    uint64_t timed_out_requests = 0;   // heads not received within request_timeout
  };

  // Answers the complete request at the front of the connection (and any
  // complete one behind it). Returns true to keep the connection: it must
  // then hold no complete request (HasCompleteRequest() is false) and no
  // bytes outside the connection (see HttpConnection::Unread).
  using Worker = std::function<bool(HttpConnection&)>;

  // listen_fd: a bound, listening TCP socket that stays open until Stop()
  // has returned; the loop makes it non-blocking.
  ConnectionLoop(int listen_fd, Limits limits, Worker worker);
  ~ConnectionLoop();  // Stop()
  ConnectionLoop(const ConnectionLoop&) = delete;
  ConnectionLoop& operator=(const ConnectionLoop&) = delete;

  // Starts the loop and the workers. kIOError when epoll or eventfd fail.
  Status Start();
  // Stops accepting, closes the connections the loop holds, shuts down the
  // sockets of those the workers hold (their clients see the connection
  // close) and waits for every thread. Safe to call more than once.
  void Stop();

  Stats stats() const;

 private:
  using Clock = std::chrono::steady_clock;

  void Run();
  void RunWorker();
  void Accept();
  void AcceptWithReserveFd();
  void OnReadable(HttpConnection* c);
  // Hands a whole request to the workers, refuses one too large, or waits.
  void Examine(HttpConnection* c);
  void Dispatch(HttpConnection* c);
  void TakeReturned();
  void Expire();
  // Answers status and closes: the connection stops counting against the
  // limits and is drained for a moment first.
  void Refuse(HttpConnection* c, int status, const std::string& text, bool retry_after);
  void Close(HttpConnection* c);
  void Watch(HttpConnection* c, Clock::time_point deadline);
  void Wake();

  const int listen_fd_;
  const Limits limits_;
  const Worker worker_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int reserve_fd_ = -1;  // freed to accept one connection when out of descriptors
  std::thread loop_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;

  // The loop thread's own.
  std::unordered_set<HttpConnection*> watched_;  // in epoll: kHead, kIdle, kDraining
  std::unordered_map<std::string, int> per_address_;
  int open_ = 0;      // counted connections (not draining)
  int draining_ = 0;  // refused ones still draining
  Clock::time_point next_deadline_ = Clock::time_point::max();
  Clock::time_point last_refusal_log_{};

  // Shared between the loop and the workers.
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<HttpConnection*> ready_;          // complete requests for the workers
  std::vector<HttpConnection*> returned_;      // from the workers, for the loop
  std::unordered_set<HttpConnection*> busy_;   // queued or with a worker
  std::atomic<uint64_t> open_connections_{0};  // mirrors open_ for stats()
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> timed_out_{0};
};

}  // namespace sync_agent
