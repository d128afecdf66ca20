// Tests for the NginxServer fixture (tests/support/nginx_server.h) with the
// real nginx and the real curl, so that HTTP tests built on it can trust it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/support/nginx_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kCurl = "/usr/bin/curl";

class NginxFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    if (::access(kCurl, X_OK) != 0) GTEST_SKIP() << kCurl << " is not installed";
    content_ = RandomBytes(300 * 1024 + 17, 42);
    WriteFile(root_.Sub("acme/llm-7b/model.bin"), content_, 0644);
  }

  // Fetches url into a file; returns curl's result with the HTTP status on stdout.
  ProcessResult Curl(const std::string& url, const std::string& out_path,
                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {kCurl, "-sS", "-o", out_path, "-w", "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return RunProcess(argv);
  }

  TempDir root_{/*world_readable=*/true};
  TempDir out_;
  std::string content_;
};

TEST_F(NginxFixtureTest, ServesAFileAndLogsTheRequest) {
  NginxServer server({.root = root_.path()});
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()));

  ProcessResult r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("model.bin"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_TRUE(ReadFile(out_.Sub("model.bin")) == content_) << "downloaded bytes differ";

  ASSERT_TRUE(server.WaitForAccessLog(1)) << ReadFile(server.AccessLogPath());
  std::vector<AccessLogEntry> log = server.ReadAccessLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].method, "GET");
  EXPECT_EQ(log[0].uri, "/acme/llm-7b/model.bin");
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(log[0].bytes_sent, content_.size());
  EXPECT_EQ(log[0].range, "");
  EXPECT_EQ(server.ErrorLog(), "");
}

TEST_F(NginxFixtureTest, RangeRequestIsLoggedWithItsHeader) {
  NginxServer server({.root = root_.path()});
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;

  ProcessResult r =
      Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("part"), {"-r", "1000-1099"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "206");
  EXPECT_TRUE(ReadFile(out_.Sub("part")) == content_.substr(1000, 100));

  ASSERT_TRUE(server.WaitForAccessLog(1));
  std::vector<AccessLogEntry> log = server.ReadAccessLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 206);
  EXPECT_EQ(log[0].bytes_sent, 100u);
  EXPECT_EQ(log[0].range, "bytes=1000-1099");
}

TEST_F(NginxFixtureTest, MissingFileAndHeadAreLogged) {
  NginxServer server({.root = root_.path()});
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;

  ProcessResult missing = Curl(server.url() + "/acme/llm-7b/nope", out_.Sub("nope"));
  ASSERT_EQ(missing.exit_code, 0) << missing.err;
  EXPECT_EQ(missing.out, "404");
  ProcessResult head = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("head"), {"-I"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  EXPECT_EQ(head.out, "200");
  EXPECT_THAT(ReadFile(out_.Sub("head")),
              HasSubstr("Content-Length: " + std::to_string(content_.size())));

  ASSERT_TRUE(server.WaitForAccessLog(2));
  std::vector<AccessLogEntry> log = server.ReadAccessLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].uri, "/acme/llm-7b/nope");
  EXPECT_EQ(log[0].status, 404);
  EXPECT_EQ(log[1].method, "HEAD");
  EXPECT_EQ(log[1].status, 200);
  EXPECT_EQ(log[1].bytes_sent, 0u);
}

TEST_F(NginxFixtureTest, MultiRangeCanBeTurnedOff) {
  const std::vector<std::string> two_ranges = {"-r", "0-9,100-109"};
  {
    NginxServer server({.root = root_.path()});
    std::string error;
    ASSERT_TRUE(server.Start(&error)) << error;
    ProcessResult r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("multi"), two_ranges);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "206");
    EXPECT_THAT(ReadFile(out_.Sub("multi")), HasSubstr("Content-Range: bytes 100-109/"));
  }
  {
    NginxServer server({.root = root_.path(), .multi_range_ok = false});
    std::string error;
    ASSERT_TRUE(server.Start(&error)) << error;
    ProcessResult r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("whole"), two_ranges);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "200");
    EXPECT_TRUE(ReadFile(out_.Sub("whole")) == content_);
    // A single range still works.
    r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("one"), {"-r", "5-9"});
    EXPECT_EQ(r.out, "206");
    EXPECT_TRUE(ReadFile(out_.Sub("one")) == content_.substr(5, 5));
  }
}

TEST_F(NginxFixtureTest, LimitRateIsAcceptedAndDownloadCompletes) {
  // 300 KiB at 2 MB/s: the throttle is configured, not timed.
  NginxServer server({.root = root_.path(), .limit_rate = "2m"});
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  ProcessResult r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("slow"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_TRUE(ReadFile(out_.Sub("slow")) == content_);
  ASSERT_TRUE(server.WaitForAccessLog(1));
  EXPECT_EQ(server.ReadAccessLog()[0].bytes_sent, content_.size());
}

TEST_F(NginxFixtureTest, StopsOnDestruction) {
  int port = 0;
  {
    NginxServer server({.root = root_.path()});
    std::string error;
    ASSERT_TRUE(server.Start(&error)) << error;
    port = server.port();
    ProcessResult r = Curl(server.url() + "/acme/llm-7b/model.bin", out_.Sub("a"));
    EXPECT_EQ(r.out, "200");
  }
  ProcessResult r = Curl("http://127.0.0.1:" + std::to_string(port) + "/acme/llm-7b/model.bin",
                         out_.Sub("b"), {"--max-time", "5"});
  EXPECT_NE(r.exit_code, 0) << "nginx still answers on port " << port;
}

TEST_F(NginxFixtureTest, StartFailsForMissingRoot) {
  NginxServer server({.root = root_.Sub("does-not-exist")});
  std::string error;
  EXPECT_FALSE(server.Start(&error));
  EXPECT_THAT(error, HasSubstr("does-not-exist"));
}

TEST_F(NginxFixtureTest, StartFailsForRootOthersCannotEnter) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root's nginx workers switch to nobody";
  TempDir private_dir;  // 0700
  WriteFile(private_dir.Sub("f"), "x");
  NginxServer server({.root = private_dir.path()});
  std::string error;
  EXPECT_FALSE(server.Start(&error));
  EXPECT_THAT(error, HasSubstr("by others (nginx workers run as nobody)"));
}

TEST_F(NginxFixtureTest, BadOptionReportsNginxError) {
  NginxServer server({.root = root_.path(), .limit_rate = "fast"});
  std::string error;
  EXPECT_FALSE(server.Start(&error));
  EXPECT_THAT(error, HasSubstr("limit_rate"));
}

}  // namespace
}  // namespace sync_agent::testing
