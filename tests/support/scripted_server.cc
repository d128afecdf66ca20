#include "tests/support/scripted_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace sync_agent::testing {

Reply Respond(std::string bytes, bool close_after) {
  Reply r;
  r.writes.push_back(std::move(bytes));
  r.close_after = close_after;
  return r;
}

std::string Response(int status, const std::string& body, const std::string& extra) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

std::string MultipartBody(const std::string& boundary, const std::string& content,
                          const std::vector<ByteRange>& ranges) {
  std::string body;
  for (const ByteRange& r : ranges) {
    body += "\r\n--" + boundary +
            "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes " +
            std::to_string(r.offset) + "-" + std::to_string(r.end() - 1) + "/" +
            std::to_string(content.size()) + "\r\n\r\n" + content.substr(r.offset, r.length);
  }
  return body + "\r\n--" + boundary + "--\r\n";
}

std::vector<ByteRange> RequestedRanges(const std::string& request) {
  std::vector<ByteRange> out;
  const std::string header = "\r\nRange: bytes=";
  size_t pos = request.find(header);
  if (pos == std::string::npos) return out;
  pos += header.size();
  std::string specs = request.substr(pos, request.find("\r\n", pos) - pos);
  size_t start = 0;
  while (start < specs.size()) {
    size_t comma = specs.find(',', start);
    if (comma == std::string::npos) comma = specs.size();
    std::string spec = specs.substr(start, comma - start);
    size_t dash = spec.find('-');
    uint64_t first = std::stoull(spec.substr(0, dash));
    uint64_t last = std::stoull(spec.substr(dash + 1));
    out.push_back({first, last - first + 1});
    start = comma + 1;
  }
  return out;
}

ScriptedServer::ScriptedServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(listen_fd_, 64), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ScriptedServer::~ScriptedServer() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  ::close(listen_fd_);
}

std::string ScriptedServer::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> ScriptedServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

// Waits until fd is readable or the server stops.
bool ScriptedServer::WaitReadable(int fd) {
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) return true;
  }
  return false;
}

bool ScriptedServer::Pause(std::chrono::milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop_) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(10)));
  }
  return false;
}

bool ScriptedServer::SendAll(int fd, const std::string& bytes) {
  for (size_t sent = 0; sent < bytes.size();) {
    // A client that stops reading must not keep the server from stopping.
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 20) <= 0) {
      if (stop_) return false;
      continue;
    }
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

void ScriptedServer::AcceptLoop() {
  int index = 0;
  while (WaitReadable(listen_fd_)) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connections_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, fd, index] { Serve(fd, index); });
    ++index;
  }
}

void ScriptedServer::Serve(int fd, int connection) {
  std::string buffer;
  int index = 0;
  while (true) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!WaitReadable(fd)) return (void)::close(fd);
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return (void)::close(fd);
      buffer.append(buf, static_cast<size_t>(n));
    }
    std::string request = buffer.substr(0, end + 4);
    buffer.erase(0, end + 4);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    Reply reply = handler_(request, connection, index++);
    if (reply.hang) {
      while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return (void)::close(fd);
    }
    for (size_t i = 0; i < reply.writes.size(); ++i) {
      if (i > 0 && !Pause(reply.pause_between)) return (void)::close(fd);
      if (!SendAll(fd, reply.writes[i])) return (void)::close(fd);
    }
    if (!reply.repeat.empty()) {
      while (Pause(reply.pause_between) && SendAll(fd, reply.repeat)) {
      }
      return (void)::close(fd);
    }
    if (reply.close_after) return (void)::close(fd);
  }
}

}  // namespace sync_agent::testing
