// StaticFileServer against the real HttpClient (and raw sockets and curl
// where the client cannot express a request), on 127.0.0.1.
#include "common/http/static_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/hash/content_hasher.h"
#include "common/http/byteranges.h"
#include "common/http/http_client.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RandomBytes;
using ::testing::StartsWith;
using testing::TempDir;
using testing::WriteFile;

constexpr uint64_t kMaxBody = 256 << 20;

HttpRequest Req(const std::string& url) {
  HttpRequest r;
  r.url = url;
  return r;
}

// Sends raw bytes to 127.0.0.1:port and returns everything the server sends
// until it closes the connection (or 10 s pass).
std::string RawExchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int CountOccurrences(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class StaticServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    content_ = RandomBytes(100000, 1);
    WriteFile(root_.Sub("data.bin"), content_);
    WriteFile(root_.Sub("sub/dir/model.json"), R"({"a": 1})");
    WriteFile(root_.Sub(".hidden"), "dot");
    WriteFile(root_.Sub("empty"), "");
    WriteFile(outside_.Sub("secret"), "top secret");
  }

  void StartServer(StaticFileServer::Options options = {}) {
    options.root = root_.path();
    options.access_log = [this](const AccessLogEntry& e) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(e);
    };
    server_ = std::make_unique<StaticFileServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  std::string Url(const std::string& path) const { return server_->url() + path; }

  // GET (or HEAD) through the shared client; the body is returned in *body.
  HttpResponse Get(const HttpRequest& request, std::string* body = nullptr) {
    auto result = client_.Fetch(request, kMaxBody);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return {};
    if (body != nullptr) *body = result->second;
    return result->first;
  }
  HttpResponse Get(const std::string& path, std::string* body = nullptr) {
    HttpRequest request;
    request.url = Url(path);
    return Get(request, body);
  }
  HttpResponse GetWithHeader(const std::string& path, const std::string& name,
                             const std::string& value, std::string* body = nullptr) {
    HttpRequest request;
    request.url = Url(path);
    request.headers.emplace_back(name, value);
    return Get(request, body);
  }

  // The access log once it has n entries. The server logs a request after
  // its response went out, so the client may be a moment ahead of the log.
  std::vector<AccessLogEntry> Log(size_t n) {
    testing::WaitFor([&] {
      std::lock_guard<std::mutex> lock(log_mu_);
      return log_.size() >= n;
    });
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  TempDir root_;
  TempDir outside_;
  std::string content_;
  std::mutex log_mu_;
  std::vector<AccessLogEntry> log_;  // the server's threads append until it stops
  std::unique_ptr<StaticFileServer> server_;
  HttpClient client_;
};

TEST_F(StaticServerTest, FullGetCarriesValidatorsAndLength) {
  StartServer();
  std::string body;
  HttpResponse r = Get("/data.bin", &body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body, content_);
  ASSERT_TRUE(r.content_length.has_value());
  EXPECT_EQ(*r.content_length, content_.size());
  EXPECT_EQ(r.headers["accept-ranges"], "bytes");
  EXPECT_EQ(r.headers["content-type"], "application/octet-stream");
  ASSERT_GE(r.etag.size(), 3u);
  EXPECT_EQ(r.etag.front(), '"');
  EXPECT_EQ(r.etag.back(), '"');
  struct stat st;
  ASSERT_EQ(::stat(root_.Sub("data.bin").c_str(), &st), 0);
  EXPECT_EQ(r.last_modified, FormatHttpDate(st.st_mtim.tv_sec));
  EXPECT_EQ(r.final_url, Url("/data.bin"));

  std::string json;
  HttpResponse j = Get("/sub/dir/model.json", &json);
  EXPECT_EQ(j.status, 200);
  EXPECT_EQ(json, R"({"a": 1})");
  EXPECT_EQ(j.headers["content-type"], "application/json");
  EXPECT_NE(j.etag, r.etag);
}

TEST_F(StaticServerTest, EtagChangesWhenTheFileChanges) {
  StartServer();
  std::string before = Get("/data.bin").etag;
  WriteFile(root_.Sub("data.bin"), content_ + "more");
  std::string body;
  HttpResponse r = Get("/data.bin", &body);
  EXPECT_EQ(body, content_ + "more");
  EXPECT_NE(r.etag, before);
}

TEST_F(StaticServerTest, HeadSendsHeadersOnly) {
  StartServer();
  HttpRequest request;
  request.url = Url("/data.bin");
  request.head = true;
  int calls = 0;
  auto r = client_.Send(request, [&](const char*, size_t) {
    ++calls;
    return Status::OK();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_length, content_.size());
  EXPECT_EQ(calls, 0);
  // The connection is still in sync: the next GET works on it.
  std::string body;
  EXPECT_EQ(Get("/data.bin", &body).status, 200);
  EXPECT_EQ(body, content_);
  auto log = Log(2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].method, "HEAD");
  EXPECT_EQ(log[0].body_bytes, 0u);
  EXPECT_EQ(log[0].client, log[1].client);  // one connection
}

TEST_F(StaticServerTest, SingleAndOpenRanges) {
  StartServer();
  HttpRequest request;
  request.url = Url("/data.bin");
  request.range_first = 1000;
  request.range_last = 1999;
  std::string body;
  HttpResponse r = Get(request, &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(body, content_.substr(1000, 1000));
  EXPECT_EQ(r.range_first, 1000u);
  EXPECT_EQ(r.range_total, content_.size());
  EXPECT_EQ(r.headers["content-range"], "bytes 1000-1999/100000");
  EXPECT_EQ(r.content_length, 1000u);

  request.range_first = 99000;
  request.range_last.reset();  // bytes=99000-
  r = Get(request, &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(body, content_.substr(99000));
  EXPECT_EQ(r.headers["content-range"], "bytes 99000-99999/100000");

  request.range_first = 99990;
  request.range_last = 500000;  // past the end: clamped
  r = Get(request, &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(body, content_.substr(99990));
  EXPECT_EQ(r.headers["content-range"], "bytes 99990-99999/100000");

  auto log = Log(3);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].status, 206);
  EXPECT_EQ(log[0].body_bytes, 1000u);
  EXPECT_EQ(log[0].range, "bytes=1000-1999");
}

TEST_F(StaticServerTest, SuffixRange) {
  StartServer();
  std::string body;
  HttpResponse r = GetWithHeader("/data.bin", "Range", "bytes=-500", &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(body, content_.substr(content_.size() - 500));
  EXPECT_EQ(r.headers["content-range"], "bytes 99500-99999/100000");
  EXPECT_EQ(r.range_first, 99500u);

  // A suffix longer than the file is the whole file, still as a 206.
  r = GetWithHeader("/data.bin", "Range", "bytes=-1000000", &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(body, content_);
  EXPECT_EQ(r.headers["content-range"], "bytes 0-99999/100000");
}

// Splits a multipart/byteranges body into (Content-Range, data) pairs.
std::vector<std::pair<std::string, std::string>> ParseMultipart(const std::string& body,
                                                                const std::string& boundary) {
  std::vector<std::pair<std::string, std::string>> parts;
  ByteRangesParser parser(
      "multipart body", boundary,
      [&](const ContentRange& r) {
        parts.emplace_back(r.ToString(), "");
        return Status::OK();
      },
      [&](uint64_t, const char* data, size_t n) {
        parts.back().second.append(data, n);
        return Status::OK();
      });
  Status st = parser.Feed(body.data(), body.size());
  if (st.ok()) st = parser.Finish();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return parts;
}

TEST_F(StaticServerTest, MultipleRangesAreMultipart) {
  StartServer();
  std::string body;
  HttpResponse r = GetWithHeader("/data.bin", "Range", "bytes=0-9, 200-299,-5", &body);
  EXPECT_EQ(r.status, 206);
  const std::string type = r.headers["content-type"];
  ASSERT_THAT(type, StartsWith("multipart/byteranges; boundary="));
  EXPECT_EQ(r.content_length, body.size());
  std::string boundary = type.substr(type.find('=') + 1);
  auto parts = ParseMultipart(body, boundary);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].first, "bytes 0-9/100000");
  EXPECT_EQ(parts[0].second, content_.substr(0, 10));
  EXPECT_EQ(parts[1].first, "bytes 200-299/100000");
  EXPECT_EQ(parts[1].second, content_.substr(200, 100));
  EXPECT_EQ(parts[2].first, "bytes 99995-99999/100000");
  EXPECT_EQ(parts[2].second, content_.substr(99995));
  EXPECT_NE(body.find("\r\n--" + boundary + "--\r\n"), std::string::npos);

  // Unsatisfiable members are dropped; one left is a plain 206.
  r = GetWithHeader("/data.bin", "Range", "bytes=500000-600000, 10-19", &body);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers["content-range"], "bytes 10-19/100000");
  EXPECT_EQ(body, content_.substr(10, 10));
}

TEST_F(StaticServerTest, HonoursUpToMaxRangesPerRequest) {
  StartServer();
  std::vector<ByteRange> ranges;
  for (size_t i = 0; i < kMaxRangesPerRequest; ++i) ranges.push_back({i * 400, 3});
  HttpRequest request;
  request.url = Url("/data.bin");
  request.ranges = ranges;
  std::string body;
  HttpResponse r = Get(request, &body);
  EXPECT_EQ(r.status, 206);
  auto parts = ParseMultipart(
      body, r.headers["content-type"].substr(r.headers["content-type"].find('=') + 1));
  ASSERT_EQ(parts.size(), ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_EQ(parts[i].second, content_.substr(ranges[i].offset, 3)) << i;
  }

  // One more and the header is ignored: the whole file, as RFC 9110 allows.
  request.ranges.push_back({99990, 3});
  r = Get(request, &body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body, content_);
}

TEST_F(StaticServerTest, CurlReadsMultipartRanges) {
  if (!testing::PathExists("/usr/bin/curl")) GTEST_SKIP() << "no curl";
  StartServer();
  testing::ProcessResult p = testing::RunProcess(
      {"/usr/bin/curl", "-s", "-S", "-D", "-", "-r", "0-9,20-29", Url("/data.bin")});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_THAT(p.out, StartsWith("HTTP/1.1 206"));
  EXPECT_THAT(p.out, HasSubstr("Content-Type: multipart/byteranges; boundary="));
  EXPECT_THAT(p.out, HasSubstr("Content-Range: bytes 0-9/100000\r\n\r\n" + content_.substr(0, 10)));
  EXPECT_THAT(p.out,
              HasSubstr("Content-Range: bytes 20-29/100000\r\n\r\n" + content_.substr(20, 10)));
  // curl also checks that the body is exactly Content-Length long (exit 18 if not).
}

TEST_F(StaticServerTest, UnsatisfiableRangeIs416) {
  StartServer();
  HttpRequest request;
  request.url = Url("/data.bin");
  request.range_first = content_.size();
  HttpResponse r = Get(request);
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.headers["content-range"], "bytes */100000");
  EXPECT_EQ(r.range_total, content_.size());
  EXPECT_FALSE(r.range_first.has_value());

  EXPECT_EQ(GetWithHeader("/data.bin", "Range", "bytes=-0").status, 416);
  // An empty file has no satisfiable range at all.
  EXPECT_EQ(GetWithHeader("/empty", "Range", "bytes=0-").status, 416);
  std::string body = "x";
  EXPECT_EQ(Get("/empty", &body).status, 200);
  EXPECT_EQ(body, "");
}

TEST_F(StaticServerTest, MalformedRangeHeadersAreIgnored) {
  StartServer();
  for (const char* header : {"bytes=abc", "bytes=5-2", "items=0-1", "bytes=", "bytes=1-2-3",
                             "bytes=99999999999999999999999-", "0-10"}) {
    std::string body;
    HttpResponse r = GetWithHeader("/data.bin", "Range", header, &body);
    EXPECT_EQ(r.status, 200) << header;
    EXPECT_EQ(body, content_) << header;
  }
}

TEST_F(StaticServerTest, IfNoneMatchGives304) {
  StartServer();
  const std::string etag = Get("/data.bin").etag;
  for (const std::string& value : {etag, std::string("*"), "\"nope\", " + etag, "W/" + etag}) {
    HttpRequest request;
    request.url = Url("/data.bin");
    request.if_none_match = value;
    std::string body = "x";
    HttpResponse r = Get(request, &body);
    EXPECT_EQ(r.status, 304) << value;
    EXPECT_EQ(body, "");
    EXPECT_EQ(r.etag, etag);
  }
  HttpRequest request;
  request.url = Url("/data.bin");
  request.if_none_match = "\"other\"";
  std::string body;
  EXPECT_EQ(Get(request, &body).status, 200);
  EXPECT_EQ(body, content_);
  // Everything above ran on one kept-alive connection, 304s included.
  std::set<std::string> clients;
  for (const auto& e : Log(6)) clients.insert(e.client);
  EXPECT_EQ(clients.size(), 1u);
}

TEST_F(StaticServerTest, IfModifiedSinceGives304) {
  const time_t mtime = std::time(nullptr) - 3600;
  struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, root_.Sub("data.bin").c_str(), times, 0), 0);
  StartServer();
  const std::string last_modified = Get("/data.bin").last_modified;
  EXPECT_EQ(last_modified, FormatHttpDate(mtime));
  HttpRequest request;
  request.url = Url("/data.bin");
  request.if_modified_since = last_modified;
  EXPECT_EQ(Get(request).status, 304);
  request.if_modified_since = FormatHttpDate(std::time(nullptr) - 1);
  EXPECT_EQ(Get(request).status, 304);
  request.if_modified_since = FormatHttpDate(mtime - 1);
  EXPECT_EQ(Get(request).status, 200);
  request.if_modified_since = "Thu, 01 Jan 1970 00:00:00 GMT";
  EXPECT_EQ(Get(request).status, 200);
  request.if_modified_since = "not a date";
  EXPECT_EQ(Get(request).status, 200);
  // A date in the future is invalid and ignored.
  request.if_modified_since = FormatHttpDate(std::time(nullptr) + 86400);
  EXPECT_EQ(Get(request).status, 200);
  // If-None-Match takes precedence over If-Modified-Since.
  request.if_modified_since = last_modified;
  request.if_none_match = "\"other\"";
  EXPECT_EQ(Get(request).status, 200);
}

TEST_F(StaticServerTest, IfRangeHonoursOnlyACurrentValidator) {
  StartServer();
  HttpResponse first = Get("/data.bin");
  HttpRequest request;
  request.url = Url("/data.bin");
  request.range_first = 10;
  request.range_last = 19;
  request.headers.emplace_back("If-Range", first.etag);
  std::string body;
  EXPECT_EQ(Get(request, &body).status, 206);
  EXPECT_EQ(body, content_.substr(10, 10));
  request.headers.back().second = "\"stale\"";
  EXPECT_EQ(Get(request, &body).status, 200);
  EXPECT_EQ(body, content_);
  request.headers.back().second = first.last_modified;
  EXPECT_EQ(Get(request, &body).status, 206);
}

TEST_F(StaticServerTest, MissingFilesAndDirectoriesAre404) {
  StartServer();
  std::string body;
  EXPECT_EQ(Get("/nope", &body).status, 404);
  EXPECT_EQ(body, "");  // error bodies are drained, not given to the caller
  EXPECT_EQ(Get("/sub").status, 404);
  EXPECT_EQ(Get("/sub/").status, 404);
  EXPECT_EQ(Get("/sub/dir").status, 404);
  EXPECT_EQ(Get("/").status, 404);
  EXPECT_EQ(Get("/data.bin/x").status, 404);
  // After all those errors the connection is still usable.
  EXPECT_EQ(Get("/data.bin", &body).status, 200);
  EXPECT_EQ(body, content_);
}

TEST_F(StaticServerTest, DotfilesQueriesAndEncodedNamesAreServed) {
  StartServer();
  std::string body;
  EXPECT_EQ(Get("/.hidden", &body).status, 200);
  EXPECT_EQ(body, "dot");
  EXPECT_EQ(Get("/data.bin?x=1&y=../../etc/passwd", &body).status, 200);
  EXPECT_EQ(body, content_);
  EXPECT_EQ(Get("/sub/dir/model%2Ejson", &body).status, 200);
  EXPECT_EQ(Get("/sub%2Fdir%2Fmodel.json", &body).status, 200);  // encoded slashes separate
  EXPECT_EQ(Get("/./sub//dir/./model.json", &body).status, 200);
  WriteFile(root_.Sub("with space.bin"), "spaced");
  EXPECT_EQ(Get("/with%20space.bin", &body).status, 200);
  EXPECT_EQ(body, "spaced");
}

TEST_F(StaticServerTest, TraversalIsRefused) {
  StartServer();
  // outside_ is a sibling of root_ under the same temporary directory.
  const std::string sibling = outside_.path().substr(outside_.path().rfind('/') + 1);
  const std::vector<std::string> attempts = {
      "/../" + sibling + "/secret",
      "/%2e%2e/" + sibling + "/secret",
      "/%2E%2E%2F" + sibling + "%2Fsecret",
      "/sub/..%2f..%2f" + sibling + "/secret",
      "/sub/../data.bin",  // stays inside, but ".." is refused outright
      "/..",
      "/../../../../../../etc/passwd",
  };
  for (const std::string& path : attempts) {
    std::string body;
    HttpResponse r = Get(path, &body);
    EXPECT_TRUE(r.status == 403 || r.status == 404) << path << " -> " << r.status;
    EXPECT_THAT(body, Not(HasSubstr("top secret"))) << path;
  }
  EXPECT_EQ(Get("/data.bin%00.txt").status, 400);
  EXPECT_EQ(Get("/data%zz").status, 400);
  EXPECT_EQ(Get("/data%2").status, 400);
  // Absolute-form targets are confined the same way.
  std::string raw = RawExchange(server_->port(), "GET http://x/../" + sibling +
                                                     "/secret HTTP/1.1\r\nHost: x\r\n"
                                                     "Connection: close\r\n\r\n");
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(raw, Not(HasSubstr("top secret")));
}

TEST_F(StaticServerTest, SymlinksLeavingTheRootAreRefused) {
  ASSERT_EQ(::symlink(outside_.Sub("secret").c_str(), root_.Sub("escape").c_str()), 0);
  ASSERT_EQ(::symlink(outside_.path().c_str(), root_.Sub("escape-dir").c_str()), 0);
  ASSERT_EQ(::symlink("data.bin", root_.Sub("alias").c_str()), 0);
  ASSERT_EQ(::symlink("sub/dir", root_.Sub("dir-alias").c_str()), 0);
  StartServer();
  std::string body;
  EXPECT_EQ(Get("/escape", &body).status, 403);
  EXPECT_THAT(body, Not(HasSubstr("top secret")));
  EXPECT_EQ(Get("/escape-dir/secret", &body).status, 403);
  // Links that stay inside the root are fine.
  EXPECT_EQ(Get("/alias", &body).status, 200);
  EXPECT_EQ(body, content_);
  EXPECT_EQ(Get("/dir-alias/model.json", &body).status, 200);
}

TEST_F(StaticServerTest, RootGivenThroughASymlinkStillServes) {
  TempDir links;
  ASSERT_EQ(::symlink(root_.path().c_str(), links.Sub("root").c_str()), 0);
  StaticFileServer::Options options;
  options.root = links.Sub("root");
  StaticFileServer server(options);
  ASSERT_TRUE(server.Start().ok());
  auto r = client_.Fetch(Req(server.url() + "/data.bin"), kMaxBody);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first.status, 200);
  EXPECT_EQ(r->second, content_);
}

TEST_F(StaticServerTest, OtherMethodsAre405) {
  StartServer();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    std::string raw = RawExchange(server_->port(), std::string(method) +
                                                       " /data.bin HTTP/1.1\r\nHost: x\r\n"
                                                       "Content-Length: 3\r\n\r\nabc");
    EXPECT_THAT(raw, StartsWith("HTTP/1.1 405")) << method;
    EXPECT_THAT(raw, HasSubstr("Allow: GET, HEAD\r\n")) << method;
  }
  auto log = Log(4);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].method, "POST");
  EXPECT_EQ(log[0].status, 405);
}

TEST_F(StaticServerTest, PipelinedRequestsOnOneConnection) {
  StartServer();
  std::string raw = RawExchange(server_->port(),
                                "GET /.hidden HTTP/1.1\r\nHost: x\r\n\r\n"
                                "GET /sub/dir/model.json HTTP/1.1\r\nHost: x\r\n\r\n"
                                "HEAD /data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(CountOccurrences(raw, "HTTP/1.1 200 OK\r\n"), 3);
  EXPECT_THAT(raw, HasSubstr("\r\n\r\ndot"));
  EXPECT_THAT(raw, HasSubstr(R"({"a": 1})"));
  EXPECT_THAT(raw, HasSubstr("Content-Length: 100000\r\n"));
  EXPECT_EQ(raw.find(content_.substr(0, 16)), std::string::npos);  // HEAD: no body
}

TEST_F(StaticServerTest, Http10ClientGetsTheFileAndAClose) {
  StartServer();
  std::string raw = RawExchange(server_->port(), "GET /.hidden HTTP/1.0\r\n\r\n");
  EXPECT_THAT(raw, StartsWith("HTTP/1.0 200"));
  EXPECT_THAT(raw, HasSubstr("\r\n\r\ndot"));
}

TEST_F(StaticServerTest, StreamsA64MiBFileWithMatchingHash) {
  const std::string big = RandomBytes(64 << 20, 7);
  WriteFile(root_.Sub("big.bin"), big);
  StartServer();
  HttpRequest request;
  request.url = Url("/big.bin");
  ContentHasher hasher;
  size_t pieces = 0, largest = 0;
  auto r = client_.Send(request, [&](const char* data, size_t n) {
    hasher.Update(data, n);
    ++pieces;
    largest = std::max(largest, n);
    return Status::OK();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  ContentDigest got = hasher.Finish();
  EXPECT_EQ(got.size, big.size());
  EXPECT_EQ(got.sha256, Sha256Hex(big));
  EXPECT_EQ(largest, 1u << 20);  // the sink is fed in large pieces
  EXPECT_LE(pieces, 80u);
  EXPECT_TRUE(testing::WaitFor([&] { return server_->stats().body_bytes == big.size(); }));

  // A range deep inside it.
  request.range_first = (40 << 20) + 3;
  request.range_last = (50 << 20);
  ContentHasher range_hasher;
  r = client_.Send(request, [&](const char* data, size_t n) {
    range_hasher.Update(data, n);
    return Status::OK();
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(range_hasher.Finish().sha256,
            Sha256Hex(std::string_view(big).substr((40 << 20) + 3, (10 << 20) - 2)));
}

TEST_F(StaticServerTest, ManyConcurrentClients) {
  const std::string file = RandomBytes(3 << 20, 11);
  WriteFile(root_.Sub("shared.bin"), file);
  StaticFileServer::Options options;
  options.max_threads = 40;
  StartServer(options);
  constexpr int kThreads = 32;
  constexpr int kRequestsEach = 6;
  std::atomic<int> correct{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client;  // one per thread, as the contract says
      for (int i = 0; i < kRequestsEach; ++i) {
        HttpRequest request;
        request.url = Url("/shared.bin");
        uint64_t first = 0, last = file.size() - 1;
        if ((t + i) % 2 == 1) {
          first = static_cast<uint64_t>(t) * 65536 + static_cast<uint64_t>(i) * 1000;
          last = first + 300000;
          request.range_first = first;
          request.range_last = last;
        }
        auto r = client.Fetch(request, kMaxBody);
        if (!r.ok()) {
          failures[t] = r.status().ToString();
          return;
        }
        int want_status = request.range_first ? 206 : 200;
        if (r->first.status == want_status && r->second == file.substr(first, last - first + 1)) {
          correct.fetch_add(1);
        } else {
          failures[t] = "wrong status or body for request " + std::to_string(i);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  EXPECT_EQ(correct.load(), kThreads * kRequestsEach);
  const size_t total = static_cast<size_t>(kThreads) * kRequestsEach;
  EXPECT_TRUE(testing::WaitFor([&] { return server_->stats().requests == total; }));
  // Each client kept its connection: one peer address per thread.
  std::set<std::string> clients;
  for (const auto& e : Log(total)) clients.insert(e.client);
  EXPECT_EQ(clients.size(), static_cast<size_t>(kThreads));
}

TEST_F(StaticServerTest, AccessLogFileHasOneLinePerRequest) {
  StaticFileServer::Options options;
  options.access_log_path = outside_.Sub("access.log");
  StartServer(options);
  HttpRequest request;
  request.url = Url("/data.bin");
  request.range_first = 0;
  request.range_last = 1023;
  Get(request);
  Get("/nope");
  request.head = true;
  request.range_first.reset();
  request.range_last.reset();
  Get(request);
  server_->Stop();
  EXPECT_EQ(testing::ReadFile(outside_.Sub("access.log")),
            "GET /data.bin 206 1024 bytes=0-1023\n"
            "GET /nope 404 10 -\n"
            "HEAD /data.bin 200 0 -\n");
  StaticFileServer::Stats stats = server_->stats();
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.body_bytes, 1034u);
}

TEST_F(StaticServerTest, StartFailsClearlyWhenThePortIsTaken) {
  StartServer();
  StaticFileServer::Options options;
  options.root = root_.path();
  options.port = server_->port();
  StaticFileServer second(options);
  Status s = second.Start();
  EXPECT_EQ(s.code(), Status::Code::kNetwork);
  EXPECT_THAT(s.message(), HasSubstr("127.0.0.1:" + std::to_string(server_->port())));
  EXPECT_THAT(s.message(), HasSubstr("address already in use"));
  EXPECT_EQ(second.port(), 0);
  second.Stop();  // harmless on a server that never started
}

TEST_F(StaticServerTest, StartFailsOnAMissingRoot) {
  StaticFileServer::Options options;
  options.root = root_.Sub("does-not-exist");
  StaticFileServer server(options);
  Status s = server.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("does-not-exist"));
  options.root = root_.Sub("data.bin");
  StaticFileServer file_root(options);
  s = file_root.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not a directory"));
}

TEST_F(StaticServerTest, StopAbortsATransferInProgress) {
  const std::string big = RandomBytes(32 << 20, 5);
  WriteFile(root_.Sub("big.bin"), big);
  StartServer();
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  Status result;
  std::thread reader([&] {
    HttpClient client;
    HttpRequest request;
    request.url = Url("/big.bin");
    auto r = client.Send(request, [&](const char*, size_t) {
      started = true;
      // Stall the reader so the server blocks in sendfile with full buffers.
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Status::OK();
    });
    result = r.status();
  });
  ASSERT_TRUE(testing::WaitFor([&] { return started.load(); }));
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  release = true;
  reader.join();
  EXPECT_EQ(result.code(), Status::Code::kNetwork) << result.ToString();
  EXPECT_EQ(server_->port(), 0);
}

TEST_F(StaticServerTest, RestartAfterStop) {
  StartServer();
  int port = server_->port();
  server_->Stop();
  StaticFileServer::Options options;
  options.root = root_.path();
  options.port = port;
  StaticFileServer again(options);
  ASSERT_TRUE(again.Start().ok());
  EXPECT_EQ(again.port(), port);
  std::string body;
  auto r = client_.Fetch(Req(again.url() + "/.hidden"), 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->second, "dot");
}

// HTTPS: the server with a self-signed certificate, the client trusting it
// through ca_file; without it, verification fails with a clear message.
class TlsTest : public StaticServerTest {
 protected:
  void SetUp() override {
    StaticServerTest::SetUp();
    if (!testing::PathExists("/usr/bin/openssl")) GTEST_SKIP() << "no openssl";
    testing::ProcessResult p = testing::RunProcess(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", certs_.Sub("key.pem"), "-out",
         certs_.Sub("cert.pem"), "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
  }
  TempDir certs_;
};

TEST_F(TlsTest, ServesOverHttpsToAClientTrustingTheCertificate) {
  const std::string big = RandomBytes(5 << 20, 9);
  WriteFile(root_.Sub("big.bin"), big);
  StaticFileServer::Options options;
  options.tls_cert_file = certs_.Sub("cert.pem");
  options.tls_key_file = certs_.Sub("key.pem");
  StartServer(options);
  ASSERT_THAT(server_->url(), StartsWith("https://"));

  HttpClientOptions client_options;
  client_options.ca_file = certs_.Sub("cert.pem");
  HttpClient client(client_options);
  auto r = client.Fetch(Req(Url("/big.bin")), kMaxBody);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first.status, 200);
  EXPECT_TRUE(r->second == big);
  HttpRequest range = Req(Url("/big.bin"));
  range.range_first = 100;
  range.range_last = 199;
  auto rr = client.Fetch(range, kMaxBody);
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  EXPECT_EQ(rr->first.status, 206);
  EXPECT_EQ(rr->second, big.substr(100, 100));
  auto log = Log(2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].client, log[1].client);  // the TLS connection was kept alive

  HttpClient untrusting;  // system CA store only
  auto bad = untrusting.Fetch(Req(Url("/big.bin")), kMaxBody);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kNetwork);
  EXPECT_THAT(bad.status().message(), HasSubstr("GET " + Url("/big.bin")));
  EXPECT_THAT(bad.status().message(), HasSubstr("certificate verification failed"));
}

TEST_F(TlsTest, PlainHttpClientAgainstTlsServerFailsCleanly) {
  StaticFileServer::Options options;
  options.tls_cert_file = certs_.Sub("cert.pem");
  options.tls_key_file = certs_.Sub("key.pem");
  StartServer(options);
  HttpClientOptions client_options;
  client_options.io_timeout = std::chrono::milliseconds(2000);
  HttpClient client(client_options);
  auto r =
      client.Fetch(Req("http://127.0.0.1:" + std::to_string(server_->port()) + "/.hidden"), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNetwork);
}

TEST_F(TlsTest, MissingCertificateFileFailsStart) {
  StaticFileServer::Options options;
  options.root = root_.path();
  options.tls_cert_file = certs_.Sub("missing.pem");
  options.tls_key_file = certs_.Sub("key.pem");
  StaticFileServer server(options);
  Status s = server.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing.pem"));
}

}  // namespace
}  // namespace sync_agent
