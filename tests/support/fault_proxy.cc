#include "tests/support/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>
#include <vector>

namespace sync_agent::testing {

struct FaultProxy::State {
  int listen_fd = -1;
  int port = 0;
  int upstream_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> down{false};
  std::atomic<uint64_t> cut_every{0};
  std::atomic<uint64_t> stall_after{0};
  std::atomic<uint64_t> down_after{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<int> connections{0};
  std::atomic<int> active{0};
  std::atomic<int> max_active{0};
  std::mutex mu;
  std::vector<std::thread> threads;
  std::thread acceptor;
};

namespace {

int ConnectUpstream(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void Pump(FaultProxy::State* st, int client) {
  int upstream = ConnectUpstream(st->upstream_port);
  if (upstream < 0) {
    ::close(client);
    return;
  }
  int now = ++st->active;
  for (int seen = st->max_active.load(); now > seen && !st->max_active.compare_exchange_weak(seen, now);) {
  }
  uint64_t sent = 0;
  bool stalled = false;
  std::vector<char> buf(64 * 1024);
  while (!st->stopping && !st->down) {
    pollfd fds[2] = {{client, POLLIN, 0}, {upstream, static_cast<short>(stalled ? 0 : POLLIN), 0}};
    int r = ::poll(fds, 2, 50);
    if (r < 0) break;
    if (r == 0) continue;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
      if (n <= 0 || !SendAll(upstream, buf.data(), static_cast<size_t>(n))) break;
    }
    if (!stalled && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      size_t want = buf.size();
      const uint64_t cut = st->cut_every.load();
      const uint64_t stall = st->stall_after.load();
      if (cut != 0) want = static_cast<size_t>(std::min<uint64_t>(want, cut - sent));
      if (stall != 0) want = static_cast<size_t>(std::min<uint64_t>(want, stall - sent));
      ssize_t n = ::recv(upstream, buf.data(), want, 0);
      if (n <= 0 || !SendAll(client, buf.data(), static_cast<size_t>(n))) break;
      sent += static_cast<uint64_t>(n);
      uint64_t total = st->sent.fetch_add(static_cast<uint64_t>(n)) + static_cast<uint64_t>(n);
      const uint64_t down_after = st->down_after.load();
      if (down_after != 0 && total >= down_after) st->down = true;
      if (cut != 0 && sent >= cut) break;
      if (stall != 0 && sent >= stall) stalled = true;
    }
  }
  --st->active;
  ::close(upstream);
  ::close(client);
}

}  // namespace

FaultProxy::FaultProxy(int upstream_port) : state_(std::make_shared<State>()) {
  State* st = state_.get();
  st->upstream_port = upstream_port;
  st->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(st->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(st->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(st->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  st->port = ntohs(addr.sin_port);
  ::listen(st->listen_fd, 64);
  st->acceptor = std::thread([st] {
    while (!st->stopping) {
      pollfd p{st->listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int client = ::accept4(st->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      st->connections++;
      if (st->down) {
        ::close(client);
        continue;
      }
      std::lock_guard<std::mutex> lock(st->mu);
      st->threads.emplace_back(Pump, st, client);
    }
  });
}

FaultProxy::~FaultProxy() {
  state_->stopping = true;
  state_->acceptor.join();
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& t : state_->threads) t.join();
  ::close(state_->listen_fd);
}

int FaultProxy::port() const { return state_->port; }
std::string FaultProxy::url() const { return "http://127.0.0.1:" + std::to_string(port()); }
void FaultProxy::CutEvery(uint64_t bytes) { state_->cut_every = bytes; }
void FaultProxy::StallAfter(uint64_t bytes) { state_->stall_after = bytes; }
void FaultProxy::SetDown(bool down) { state_->down = down; }
void FaultProxy::DownAfter(uint64_t total_bytes) { state_->down_after = total_bytes; }
uint64_t FaultProxy::bytes_sent() const { return state_->sent.load(); }
int FaultProxy::connections() const { return state_->connections.load(); }
int FaultProxy::max_active() const { return state_->max_active.load(); }

}  // namespace sync_agent::testing
