#include "common/http/connection_loop.h"

#include <Poco/Exception.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/http/http_text.h"

namespace sync_agent {

// The connection's socket as Poco sees it: reads drain what the loop read
// ahead before they touch the socket, and closing is left to the owner (the
// HttpConnection's destructor), so that no Poco object can close a
// descriptor the loop still polls.
class PendingSocketImpl final : public Poco::Net::StreamSocketImpl {
 public:
  explicit PendingSocketImpl(int fd) : Poco::Net::StreamSocketImpl(fd) {}

  using Poco::Net::StreamSocketImpl::receiveBytes;
  using Poco::Net::StreamSocketImpl::sendBytes;

  int receiveBytes(void* buffer, int length, int flags = 0) override {
    if (pos_ < pending_.size() && length > 0) {
      size_t n = std::min(pending_.size() - pos_, static_cast<size_t>(length));
      std::memcpy(buffer, pending_.data() + pos_, n);
      if ((flags & MSG_PEEK) == 0) pos_ += n;
      return static_cast<int>(n);
    }
    return Poco::Net::StreamSocketImpl::receiveBytes(buffer, length, flags);
  }
  // A peer that has gone must not raise SIGPIPE in the process.
  int sendBytes(const void* buffer, int length, int flags = 0) override {
    return Poco::Net::StreamSocketImpl::sendBytes(buffer, length, flags | MSG_NOSIGNAL);
  }
  void close() override {}
  void ReallyClose() { Poco::Net::StreamSocketImpl::close(); }

  // What has been read and not consumed.
  std::string_view pending() const { return std::string_view(pending_).substr(pos_); }
  size_t pending_size() const { return pending_.size() - pos_; }
  void Append(const char* data, size_t n) {
    Compact();
    pending_.append(data, n);
  }
  void Prepend(const char* data, size_t n) {
    Compact();
    pending_.insert(0, data, n);
    scanned_ = 0;
  }
  void Clear() {
    pending_.clear();
    pos_ = 0;
    scanned_ = 0;
  }

  enum class Scan { kIncomplete, kComplete, kTooLarge };
  // Whether pending() starts with a whole request. Resumes where the last
  // call stopped looking for the end of the head, so that a head dribbled a
  // byte at a time costs linear time, not quadratic.
  Scan ScanRequest(size_t max_head, size_t max_body) {
    if (pos_ != scan_base_) {  // a request was consumed: start over
      scan_base_ = pos_;
      scanned_ = 0;
    }
    std::string_view data = pending();
    size_t start = 0;  // RFC 9112 2.2: empty lines before a request are ignored
    while (start < data.size() && (data[start] == '\r' || data[start] == '\n')) ++start;
    size_t end = std::string_view::npos;  // one past the blank line
    for (size_t i = std::max(start, scanned_); i < data.size(); ++i) {
      if (data[i] != '\n') continue;
      if (i + 1 < data.size() && data[i + 1] == '\n') {
        end = i + 2;
        break;
      }
      if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') {
        end = i + 3;
        break;
      }
    }
    if (end == std::string_view::npos) {
      // The last two bytes may begin the blank line: look at them again.
      scanned_ = data.size() > 2 ? data.size() - 2 : 0;
      return data.size() - start > max_head ? Scan::kTooLarge : Scan::kIncomplete;
    }
    scanned_ = end > 3 ? end - 3 : 0;
    if (end - start > max_head) return Scan::kTooLarge;
    // A short body with Content-Length is read here too; a body announced
    // otherwise (chunked, 100-continue, longer) is the worker's to read.
    std::string_view head = data.substr(start, end - start);
    uint64_t content_length = 0;
    bool buffer_body = false;
    size_t line_start = 0;
    while (line_start < head.size()) {
      size_t eol = head.find('\n', line_start);
      std::string_view line = head.substr(line_start, eol - line_start);
      line_start = eol == std::string_view::npos ? head.size() : eol + 1;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = AsciiLower(TrimWhitespace(line.substr(0, colon)));
      if (name == "transfer-encoding" || name == "expect") return Scan::kComplete;
      if (name == "content-length") {
        uint64_t n = 0;
        if (!ParseDecimal(TrimWhitespace(line.substr(colon + 1)), &n) || n > max_body) {
          return Scan::kComplete;
        }
        content_length = n;
        buffer_body = true;
      }
    }
    if (buffer_body && data.size() - end < content_length) return Scan::kIncomplete;
    return Scan::kComplete;
  }

 private:
  void Compact() {
    if (pos_ == 0) return;
    pending_.erase(0, pos_);
    scanned_ = 0;
    pos_ = 0;
    scan_base_ = 0;
  }

  std::string pending_;
  size_t pos_ = 0;        // bytes of pending_ already consumed
  size_t scanned_ = 0;    // ScanRequest looked for the head's end up to here
  size_t scan_base_ = 0;  // pos_ when scanned_ was set
};

namespace {

// A refused connection is drained of what its client still sends for this
// long, so that the client reads the answer instead of a reset.
constexpr std::chrono::milliseconds kLinger{2000};
constexpr int kRetryAfterSeconds = 2;
// At most one warning about refusals per this long.
constexpr std::chrono::seconds kRefusalLogEvery{60};
// Tags told apart from connections in epoll events.
char kListenTag;
char kWakeTag;

const char* Reason(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string ClientAddress(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
  }
  return buf;
}

int OpenReserveFd() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

// Best effort: an answer of a few hundred bytes fits an empty send buffer.
void SendNow(int fd, const std::string& text) {
  ssize_t n;
  do {
    n = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
}

std::string RefusalResponse(int status, const std::string& text, bool retry_after) {
  std::string body = text + "\n";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  if (retry_after) out += "Retry-After: " + std::to_string(kRetryAfterSeconds) + "\r\n";
  out += "Connection: close\r\n\r\n";
  return out + body;
}

}  // namespace

HttpConnection::HttpConnection(int fd, std::string address, size_t max_head_bytes,
                               size_t max_body_bytes)
    : impl_(new PendingSocketImpl(fd)),
      socket_(impl_),
      fd_(fd),
      address_(std::move(address)),
      max_head_bytes_(max_head_bytes),
      max_body_bytes_(max_body_bytes) {}

HttpConnection::~HttpConnection() { impl_->ReallyClose(); }

void HttpConnection::Unread(const char* data, size_t n) {
  if (n > 0) impl_->Prepend(data, n);
}

bool HttpConnection::HasCompleteRequest() {
  // A request too large is the loop's to refuse.
  return impl_->ScanRequest(max_head_bytes_, max_body_bytes_) == PendingSocketImpl::Scan::kComplete;
}

ConnectionLoop::ConnectionLoop(int listen_fd, Limits limits, Worker worker)
    : listen_fd_(listen_fd), limits_(std::move(limits)), worker_(std::move(worker)) {}

ConnectionLoop::~ConnectionLoop() { Stop(); }

Status ConnectionLoop::Start() {
  if (started_) return Status::InvalidArgument("connection loop", "already started");
  int flags = ::fcntl(listen_fd_, F_GETFL);
  if (flags < 0 || ::fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK) != 0) {
    return PosixError("make the listening socket non-blocking", errno);
  }
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return PosixError("epoll_create1", errno);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    Status s = PosixError("eventfd", errno);
    ::close(epoll_fd_);
    epoll_fd_ = -1;
    return s;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &kListenTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.ptr = &kWakeTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  reserve_fd_ = OpenReserveFd();
  stopping_ = false;
  started_ = true;
  loop_ = std::thread([this] { Run(); });
  for (int i = 0; i < std::max(1, limits_.max_threads); ++i) {
    workers_.emplace_back([this] { RunWorker(); });
  }
  return Status::OK();
}

void ConnectionLoop::Stop() {
  if (!started_) return;
  {
    // Under the lock, so that no worker is between its check and its wait.
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  Wake();
  loop_.join();  // closes what it holds and shuts down what the workers hold
  work_ready_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  for (HttpConnection* c : ready_) delete c;
  for (HttpConnection* c : returned_) delete c;
  ready_.clear();
  returned_.clear();
  busy_.clear();
  ::close(epoll_fd_);
  ::close(wake_fd_);
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
  epoll_fd_ = wake_fd_ = reserve_fd_ = -1;
  per_address_.clear();
  open_ = draining_ = 0;
  open_connections_ = 0;
  next_deadline_ = Clock::time_point::max();
  started_ = false;
}

ConnectionLoop::Stats ConnectionLoop::stats() const {
  Stats s;
  s.open_connections = open_connections_.load();
  s.refused_connections = refused_.load();
  s.timed_out_requests = timed_out_.load();
  return s;
}

void ConnectionLoop::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;  // the counter only saturates when a wake is already pending
}

void ConnectionLoop::Run() {
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    int timeout_ms = -1;
    if (next_deadline_ != Clock::time_point::max()) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline_ - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 60000));
    }
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      LogError("HTTP server: epoll_wait failed", {{"error", std::strerror(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &kListenTag) {
        Accept();
      } else if (tag == &kWakeTag) {
        uint64_t count;
        ssize_t r = ::read(wake_fd_, &count, sizeof count);
        (void)r;
        TakeReturned();
      } else {
        OnReadable(static_cast<HttpConnection*>(tag));
      }
    }
    if (Clock::now() >= next_deadline_) Expire();
  }
  for (HttpConnection* c : watched_) delete c;
  watched_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  for (HttpConnection* c : busy_) ::shutdown(c->fd_, SHUT_RDWR);
}

void ConnectionLoop::RunWorker() {
  while (true) {
    HttpConnection* c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [&] { return stopping_.load() || !ready_.empty(); });
      if (stopping_.load()) return;
      c = ready_.front();
      ready_.pop_front();
    }
    bool keep = false;
    try {
      keep = worker_(*c);
    } catch (const Poco::Exception&) {
      keep = false;  // the client went away; nothing to answer
    } catch (const std::exception&) {
      keep = false;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      c->keep_ = keep;
      busy_.erase(c);
      returned_.push_back(c);
    }
    Wake();
  }
}

void ConnectionLoop::Accept() {
  while (!stopping_.load()) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) AcceptWithReserveFd();
      return;  // EAGAIN: all accepted
    }
    std::string address = ClientAddress(ss);
    auto* c =
        new HttpConnection(fd, address, limits_.max_head_bytes, limits_.max_buffered_body_bytes);
    if (open_ >= limits_.max_connections) {
      Refuse(c, 503,
             "server busy: " + std::to_string(open_) + " connections open, the most it takes (" +
                 limits_.max_connections_key + "); retry later",
             true);
      continue;
    }
    int& from_here = per_address_[address];
    if (limits_.max_connections_per_address > 0 &&
        from_here >= limits_.max_connections_per_address) {
      Refuse(c, 503,
             "too many connections from " + address + ": " + std::to_string(from_here) +
                 " open, the most one address may hold (" +
                 limits_.max_connections_per_address_key + "); retry later",
             true);
      continue;
    }
    ++from_here;
    ++open_;
    open_connections_ = static_cast<uint64_t>(open_);
    c->state_ = HttpConnection::State::kHead;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    Watch(c, Clock::now() + limits_.request_timeout);
  }
}

void ConnectionLoop::AcceptWithReserveFd() {
  // Out of descriptors, the pending connection would wake epoll forever:
  // free the reserve, accept it, answer and close it at once.
  if (reserve_fd_ < 0) return;
  ::close(reserve_fd_);
  reserve_fd_ = -1;
  int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    SendNow(fd, RefusalResponse(503,
                                "server busy: out of file descriptors (raise the open-files limit, "
                                "LimitNOFILE=, or lower " +
                                    limits_.max_connections_key + ")",
                                true));
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
    refused_.fetch_add(1, std::memory_order_relaxed);
  }
  reserve_fd_ = OpenReserveFd();
}

void ConnectionLoop::Watch(HttpConnection* c, Clock::time_point deadline) {
  c->deadline_ = deadline;
  watched_.insert(c);
  next_deadline_ = std::min(next_deadline_, deadline);
}

void ConnectionLoop::OnReadable(HttpConnection* c) {
  char buf[16384];
  const size_t cap = limits_.max_head_bytes + limits_.max_buffered_body_bytes + sizeof buf;
  while (true) {
    ssize_t n = ::recv(c->fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (c->state_ == HttpConnection::State::kDraining) continue;  // discarded
      if (c->state_ == HttpConnection::State::kIdle) {
        c->state_ = HttpConnection::State::kHead;
        Watch(c, Clock::now() + limits_.request_timeout);
      }
      c->impl_->Append(buf, static_cast<size_t>(n));
      if (c->impl_->pending_size() >= cap || static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    c->eof_ = true;  // EOF or a reset
    break;
  }
  if (c->state_ == HttpConnection::State::kDraining) {
    if (c->eof_) Close(c);
    return;
  }
  Examine(c);
}

void ConnectionLoop::Examine(HttpConnection* c) {
  switch (c->impl_->ScanRequest(limits_.max_head_bytes, limits_.max_buffered_body_bytes)) {
    case PendingSocketImpl::Scan::kComplete:
      return Dispatch(c);
    case PendingSocketImpl::Scan::kTooLarge:
      return Refuse(c, 431,
                    "request head longer than " + std::to_string(limits_.max_head_bytes) + " bytes",
                    false);
    case PendingSocketImpl::Scan::kIncomplete:
      if (c->eof_) Close(c);  // the client gave up before a whole request
      return;
  }
}

void ConnectionLoop::Dispatch(HttpConnection* c) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ready_.size() >= static_cast<size_t>(std::max(0, limits_.max_queued))) {
    const size_t waiting = ready_.size();  // read under mu_: the workers pop it
    lock.unlock();
    return Refuse(c, 503,
                  "server busy: " + std::to_string(waiting) +
                      " requests are waiting for a worker thread; retry later",
                  true);
  }
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd_, nullptr);
  watched_.erase(c);
  c->state_ = HttpConnection::State::kBusy;
  busy_.insert(c);
  ready_.push_back(c);
  lock.unlock();
  work_ready_.notify_one();
}

void ConnectionLoop::TakeReturned() {
  std::vector<HttpConnection*> back;
  {
    std::lock_guard<std::mutex> lock(mu_);
    back.swap(returned_);
  }
  for (HttpConnection* c : back) {
    if (!c->keep_ || c->eof_) {
      Close(c);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd_, &ev);
    if (c->impl_->pending_size() > 0) {  // the start of the next request
      c->state_ = HttpConnection::State::kHead;
      Watch(c, Clock::now() + limits_.request_timeout);
      Examine(c);  // too large already, or the worker left a whole one
    } else {
      c->state_ = HttpConnection::State::kIdle;
      Watch(c, Clock::now() + limits_.keep_alive_timeout);
    }
  }
}

void ConnectionLoop::Expire() {
  const Clock::time_point now = Clock::now();
  next_deadline_ = Clock::time_point::max();
  std::vector<HttpConnection*> due;
  for (HttpConnection* c : watched_) {
    if (c->deadline_ <= now) {
      due.push_back(c);
    } else {
      next_deadline_ = std::min(next_deadline_, c->deadline_);
    }
  }
  for (HttpConnection* c : due) {
    if (c->state_ == HttpConnection::State::kHead) {
      std::string_view sent = c->impl_->pending();
      bool any = sent.find_first_not_of("\r\n") != std::string_view::npos;
      if (any) {
        timed_out_.fetch_add(1, std::memory_order_relaxed);
        Refuse(c, 408,
               "request not received within " + FormatDuration(limits_.request_timeout) + " (" +
                   limits_.request_timeout_key + ")",
               false);
        continue;
      }
    }
    Close(c);  // idle, silent, or done draining
  }
}

void ConnectionLoop::Refuse(HttpConnection* c, int status, const std::string& text,
                            bool retry_after) {
  SendNow(c->fd_, RefusalResponse(status, text, retry_after));
  ::shutdown(c->fd_, SHUT_WR);
  if (status == 503) {
    uint64_t refused = refused_.fetch_add(1, std::memory_order_relaxed) + 1;
    // An operator should hear of refusals, but a flood must not flood the log.
    const Clock::time_point now = Clock::now();
    if (last_refusal_log_ == Clock::time_point() || now - last_refusal_log_ >= kRefusalLogEvery) {
      last_refusal_log_ = now;
      LogWarning("HTTP server refusing connections with 503",
                 {{"reason", text}, {"refused_since_start", std::to_string(refused)}});
    }
  }
  const bool counted = watched_.count(c) > 0;  // a new connection is not yet counted
  if (counted) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd_, nullptr);
    watched_.erase(c);
    if (--per_address_[c->address_] <= 0) per_address_.erase(c->address_);
    --open_;
    open_connections_ = static_cast<uint64_t>(open_);
  }
  // Draining is bounded too: past as many as may be open, close at once.
  if (draining_ >= limits_.max_connections) {
    delete c;
    return;
  }
  ++draining_;
  c->state_ = HttpConnection::State::kDraining;
  c->impl_->Clear();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd_, &ev);
  Watch(c, Clock::now() + kLinger);
}

void ConnectionLoop::Close(HttpConnection* c) {
  if (watched_.erase(c) > 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd_, nullptr);
  if (c->state_ == HttpConnection::State::kDraining) {
    --draining_;
  } else {
    if (--per_address_[c->address_] <= 0) per_address_.erase(c->address_);
    --open_;
    open_connections_ = static_cast<uint64_t>(open_);
  }
  delete c;
}

}  // namespace sync_agent
