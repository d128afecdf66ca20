// StaticFileServer under hostile clients (issue 11, findings 4 and 5): slow
// and idle connections, floods of concurrent requests, per-address limits and
// range requests built to amplify. Real sockets on 127.0.0.0/8: clients bind
// to different loopback source addresses (127.0.x.y) to look like many hosts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/http/static_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using testing::RandomBytes;
using ::testing::StartsWith;
using testing::TempDir;
using testing::WriteFile;

// Raises the soft RLIMIT_NOFILE to at least n; false when the hard limit is lower.
bool RaiseFdLimit(rlim_t n) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < n) return false;
  lim.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// Loopback source address number i (0 <= i < 62500): 127.0.<1 + i/250>.<1 + i%250>.
std::string Peer(int i) {
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
}

// A TCP connection from `from` (a loopback address) to 127.0.0.1:port; -1 on
// failure. Non-blocking sockets may still be connecting on return.
int Connect(int port, const std::string& from, bool nonblocking = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends request on a blocking socket and returns everything the server sends
// until it closes the connection (or 30 s pass without a byte).
std::string Exchange(int fd, const std::string& request) {
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return out;
  }
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

struct RawResponse {
  int status = 0;                              // 0: no status line (a silent close)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  bool complete = false;  // the body is as long as Content-Length says
};

RawResponse ParseResponse(const std::string& raw) {
  RawResponse r;
  size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  size_t pos = raw.find("\r\n") + 2;
  while (pos < end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = line.find_first_not_of(' ', colon + 1);
      r.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    pos = eol + 2;
  }
  r.body = raw.substr(end + 4);
  auto cl = r.headers.find("content-length");
  r.complete = cl != r.headers.end() && std::to_string(r.body.size()) == cl->second;
  return r;
}

// A GET with "Connection: close" from `from`, answered in full.
RawResponse Get(int port, const std::string& from, const std::string& path,
                const std::string& extra_headers = "") {
  int fd = Connect(port, from);
  if (fd < 0) return {};
  std::string raw = Exchange(
      fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "Connection: close\r\n\r\n");
  ::close(fd);
  return ParseResponse(raw);
}

// True while the server holds fd open: nothing to read and no EOF.
bool StillOpen(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

class HostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    content_ = RandomBytes(100000, 7);
    WriteFile(root_.Sub("data.bin"), content_);
    WriteFile(root_.Sub("six.txt"), "sixsix");
    big_ = RandomBytes(1 << 20, 8);
    WriteFile(root_.Sub("big.bin"), big_);
  }

  void StartServer(StaticFileServer::Options options = {}) {
    options.root = root_.path();
    server_ = std::make_unique<StaticFileServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }

  // Until the server holds n connections (it accepts them in the background).
  bool WaitForConnections(uint64_t n) {
    return testing::WaitFor([&] { return server_->stats().open_connections >= n; });
  }

  // n idle connections, the i-th from from(i), once the server holds them.
  std::vector<int> Hold(int n, const std::function<std::string(int)>& from) {
    std::vector<int> held;
    for (int i = 0; i < n; ++i) {
      int fd = Connect(server_->port(), from(i));
      EXPECT_GE(fd, 0) << std::strerror(errno);
      if (fd >= 0) held.push_back(fd);
    }
    EXPECT_TRUE(WaitForConnections(static_cast<uint64_t>(n)));
    return held;
  }

  // The refusal of a full server: 503, Retry-After, and the limit's name.
  static void ExpectBusy(const RawResponse& r, const std::string& limit) {
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.headers.count("retry-after"), 1u);
    EXPECT_THAT(r.body, HasSubstr(limit));
  }

  TempDir root_;
  std::string content_;
  std::string big_;
  std::unique_ptr<StaticFileServer> server_;
};

// The test: 500 slow connections (half dribbling a request head a
// byte at a time, half idle) spread over 50 addresses do not keep a normal
// client from its download, and the server still holds every one of them.
TEST_F(HostileClientTest, FiveHundredSlowConnectionsDoNotStarveANormalDownload) {
  if (!RaiseFdLimit(4096)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to 4096";
  StaticFileServer::Options options;
  // Long enough that no slow client is cut off before the normal download
  // is done, however loaded the machine: the point here is that holding them
  // costs no worker thread. The cut-off has its own test below.
  options.request_timeout = std::chrono::minutes(10);
  StartServer(options);
  constexpr int kSlow = 500;
  std::vector<int> fds;
  for (int i = 0; i < kSlow; ++i) {
    int fd = Connect(server_->port(), Peer(i % 50));
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    fds.push_back(fd);
    if (i % 2 == 0) {
      const std::string start = "GET /data.bin HTTP/1.1\r\nHost: x\r\nX-Slow: ";
      ASSERT_EQ(::send(fd, start.data(), start.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(start.size()));
    }
  }
  ASSERT_TRUE(WaitForConnections(kSlow)) << server_->stats().open_connections;
  std::atomic<bool> stop{false};
  std::thread dribbler([&] {
    while (!stop.load()) {
      for (size_t i = 0; i < fds.size(); i += 2)
        ::send(fds[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the slow client's pace
    }
  });

  RawResponse r = Get(server_->port(), "127.0.0.1", "/data.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(r.body == content_) << "body of " << r.body.size() << " bytes differs";
  RawResponse ranged = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: bytes=10-19\r\n");
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(ranged.body, content_.substr(10, 10));

  stop = true;
  dribbler.join();
  int open = 0;
  for (int fd : fds) open += StillOpen(fd) ? 1 : 0;
  EXPECT_EQ(open, kSlow) << "the server dropped slow clients to serve the normal one";
  for (int fd : fds) ::close(fd);
}

// A client that keeps sending one header byte after another is cut off once
// the whole head has taken request_timeout, not when it pauses for that long.
TEST_F(HostileClientTest, ADribblingClientIsCutOffAfterTheRequestTimeout) {
  StaticFileServer::Options options;
  options.request_timeout = std::chrono::seconds(1);
  StartServer(options);
  int fd = Connect(server_->port(), "127.0.0.2");
  ASSERT_GE(fd, 0);
  const std::string start = "GET /data.bin HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  ASSERT_EQ(::send(fd, start.data(), start.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(start.size()));
  std::string got;
  bool closed = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!closed && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {  // one byte every 100 ms while nothing comes back
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
      } else {
        got.append(buf, static_cast<size_t>(n));
      }
    } else if (got.empty()) {
      ::send(fd, "a", 1, MSG_NOSIGNAL);
    }
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "still connected after 30 s of dribbling";
  EXPECT_THAT(got, StartsWith("HTTP/1.1 408"));
}

// An idle keep-alive connection is closed after keep_alive_timeout; a
// connection that never sends a byte after request_timeout.
TEST_F(HostileClientTest, IdleConnectionsAreClosed) {
  StaticFileServer::Options options;
  options.request_timeout = std::chrono::seconds(1);
  options.keep_alive_timeout = std::chrono::seconds(1);
  StartServer(options);
  int silent = Connect(server_->port(), "127.0.0.2");
  int kept = Connect(server_->port(), "127.0.0.3");
  ASSERT_GE(silent, 0);
  ASSERT_GE(kept, 0);
  const std::string request = "GET /six.txt HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(kept, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  timeval tv{30, 0};
  ::setsockopt(kept, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(kept, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "the kept-alive connection was not closed: " << std::strerror(errno);
  RawResponse r = ParseResponse(raw);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "sixsix");
  std::string from_silent;
  while ((n = ::recv(silent, buf, sizeof buf, 0)) > 0)
    from_silent.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "the silent connection was not closed: " << std::strerror(errno);
  ::close(silent);
  ::close(kept);
}

// 1,000 concurrent GETs (a 6-byte file and a 1 MiB one) from 100 addresses:
// every one is answered, 200 with the right bytes or 503 with Retry-After,
// never closed without a response. Run with the default limits and with a
// connection cap low enough that most of them must be turned away.
void ThousandConcurrentGets(int port, const std::string& big, int* ok_count, int* busy_count,
                            std::vector<std::string>* failures) {
  constexpr int kClients = 1000;
  struct Client {
    int fd = -1;
    std::string request;
    size_t sent = 0;
    std::string received;
    bool done = false;
  };
  std::vector<Client> clients(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients[i].fd = Connect(port, Peer(i % 100), /*nonblocking=*/true);
    ASSERT_GE(clients[i].fd, 0) << "client " << i << ": " << std::strerror(errno);
    clients[i].request = std::string("GET ") + (i % 2 == 0 ? "/six.txt" : "/big.bin") +
                         " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  int left = kClients;
  std::vector<pollfd> fds;
  std::vector<int> index;
  char buf[65536];
  while (left > 0 && std::chrono::steady_clock::now() < give_up) {
    fds.clear();
    index.clear();
    for (int i = 0; i < kClients; ++i) {
      Client& c = clients[i];
      if (c.done) continue;
      short events = POLLIN;
      if (c.sent < c.request.size()) events |= POLLOUT;
      fds.push_back({c.fd, events, 0});
      index.push_back(i);
    }
    if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      Client& c = clients[index[k]];
      if ((fds[k].revents & POLLOUT) && c.sent < c.request.size()) {
        ssize_t n = ::send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) c.sent += static_cast<size_t>(n);
      }
      if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          c.received.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          c.done = true;
          --left;
        }
      }
    }
  }
  for (int i = 0; i < kClients; ++i) {
    Client& c = clients[i];
    ::close(c.fd);
    RawResponse r = ParseResponse(c.received);
    const std::string& want = i % 2 == 0 ? std::string("sixsix") : big;
    if (r.status == 200 && r.complete && r.body == want) {
      ++*ok_count;
    } else if (r.status == 503 && r.complete && !r.headers["retry-after"].empty()) {
      ++*busy_count;
    } else if (failures->size() < 10) {
      failures->push_back("client " + std::to_string(i) + ": " +
                          (c.done ? "" : "no end after 3 minutes; ") +
                          (r.status == 0 ? "closed without a response"
                                         : "status " + std::to_string(r.status) + ", " +
                                               std::to_string(r.body.size()) + " body bytes"));
    }
  }
}

// Runs ThousandConcurrentGets and checks that each was answered; returns
// how many got 503.
int ExpectThousandGetsAnswered(int port, const std::string& big) {
  int ok = 0, busy = 0;
  std::vector<std::string> failures;
  ThousandConcurrentGets(port, big, &ok, &busy, &failures);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(ok + busy, 1000);
  EXPECT_GT(ok, 0);
  return busy;
}

TEST_F(HostileClientTest, ThousandConcurrentGetsAreEachAnswered) {
  if (!RaiseFdLimit(4096)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to 4096";
  StartServer();
  ExpectThousandGetsAnswered(server_->port(), big_);
}

TEST_F(HostileClientTest, ThousandConcurrentGetsBeyondTheConnectionCapGet503) {
  if (!RaiseFdLimit(4096)) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to 4096";
  StaticFileServer::Options options;
  options.max_connections = 50;
  StartServer(options);
  EXPECT_GT(ExpectThousandGetsAnswered(server_->port(), big_), 0);
}

// One address cannot hold more than max_connections_per_address: the next
// connection from it gets 503 naming the limit, while another address is served.
TEST_F(HostileClientTest, ConnectionsPerAddressAreCapped) {
  StaticFileServer::Options options;
  options.max_connections_per_address = 4;
  StartServer(options);
  std::vector<int> held = Hold(4, [](int) { return "127.0.0.2"; });
  ExpectBusy(Get(server_->port(), "127.0.0.2", "/six.txt"), "serve_max_connections_per_address");
  RawResponse served = Get(server_->port(), "127.0.0.3", "/six.txt");
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, "sixsix");
  // Once one of the four goes, the address may connect again.
  ::close(held.back());
  held.pop_back();
  ASSERT_TRUE(testing::WaitFor([&] { return server_->stats().open_connections == 3; }));
  RawResponse again = Get(server_->port(), "127.0.0.2", "/six.txt");
  EXPECT_EQ(again.status, 200);
  for (int fd : held) ::close(fd);
}

// A full server answers 503 with Retry-After instead of closing silently.
TEST_F(HostileClientTest, AFullServerAnswers503) {
  StaticFileServer::Options options;
  options.max_connections = 6;
  StartServer(options);
  std::vector<int> held = Hold(6, Peer);
  ExpectBusy(Get(server_->port(), "127.0.0.1", "/six.txt"), "serve_max_connections");
  for (int fd : held) ::close(fd);
  ASSERT_TRUE(testing::WaitFor([&] { return server_->stats().open_connections == 0; }));
  EXPECT_EQ(Get(server_->port(), "127.0.0.1", "/six.txt").status, 200);
}

// Finding 5: 200 copies of "0-" used to answer 200 copies of the file.
// Overlapping and adjacent ranges are merged, so a body is never larger than
// the file (plus the multipart framing of disjoint parts).
TEST_F(HostileClientTest, OverlappingRangesDoNotAmplify) {
  StartServer();
  std::string spec = "bytes=0-";
  for (int i = 1; i < 200; ++i) spec += ",0-";
  RawResponse r = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: " + spec + "\r\n");
  ASSERT_TRUE(r.status == 200 || r.status == 206) << r.status;
  EXPECT_LE(r.body.size(), content_.size());
  EXPECT_TRUE(r.body == content_) << r.body.size() << " body bytes";

  // Overlapping and touching pieces become one range.
  r = Get(server_->port(), "127.0.0.1", "/data.bin",
          "Range: bytes=100-199,150-249,250-299,120-130\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers["content-range"], "bytes 100-299/100000");
  EXPECT_EQ(r.body, content_.substr(100, 200));

  // Suffixes and open ends that cover the file several times over.
  spec = "bytes=-100000";
  for (int i = 0; i < 199; ++i) spec += i % 2 ? ",-50000" : ",10-";
  r = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: " + spec + "\r\n");
  ASSERT_TRUE(r.status == 200 || r.status == 206) << r.status;
  EXPECT_TRUE(r.body == content_) << r.body.size() << " body bytes";
}

// Thousands of ranges are not honoured (the whole file, 200, as nginx does
// beyond max_ranges) and cost no more than one response; "bytes=-0" and a
// mixture of good and malformed specs do not break the server either.
TEST_F(HostileClientTest, ThousandsOfRangesAndOddSpecsAreRefused) {
  StartServer();
  // 2,000 ranges still fit the 8 KiB a header value may have.
  std::string spec = "bytes=1-1";
  for (int i = 1; i < 2000; ++i) spec += ",1-1";
  RawResponse r = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: " + spec + "\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == content_) << r.body.size() << " body bytes";

  r = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: bytes=-0\r\n");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.headers["content-range"], "bytes */100000");
  r = Get(server_->port(), "127.0.0.1", "/data.bin", "Range: bytes=-0,-0,-0\r\n");
  EXPECT_EQ(r.status, 416);
  for (const char* odd : {"bytes=0-1,abc", "bytes=0-1,,,", "bytes=,,,", "bytes=1-0,0-1",
                          "bytes=0--1", "bytes = 0-1 , -", "bytes=18446744073709551615-"}) {
    r = Get(server_->port(), "127.0.0.1", "/data.bin", std::string("Range: ") + odd + "\r\n");
    EXPECT_TRUE(r.status == 200 || r.status == 206 || r.status == 416) << odd << ": " << r.status;
    EXPECT_LE(r.body.size(), content_.size()) << odd;
  }
  // The server is still there.
  EXPECT_EQ(Get(server_->port(), "127.0.0.1", "/six.txt").body, "sixsix");
}

// A request head larger than the limit is answered 431 and closed, without
// waiting for the rest of it.
TEST_F(HostileClientTest, AnOversizedRequestHeadGets431) {
  StartServer();
  int fd = Connect(server_->port(), "127.0.0.2");
  ASSERT_GE(fd, 0);
  std::string head = "GET /six.txt HTTP/1.1\r\nHost: x\r\n";
  while (head.size() < (128u << 10)) head += "X-Filler: " + std::string(1000, 'f') + "\r\n";
  std::string raw = Exchange(fd, head);  // no blank line: the head never ends
  ::close(fd);
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 431"));
}

}  // namespace
}  // namespace sync_agent
