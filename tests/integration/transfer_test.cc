// The transfer engine through the real binary, against real nginx servers on
// loopback and a FaultProxy for the faults of cross-region links: per-
// connection caps beaten by parallel connections, connections dropped every
// few MB, a stalled source, a source going down half-way while another keeps
// serving, a source serving another revision (the global bandwidth cap is
// in tests/timed), HTTPS with a private CA, and a token sent as Authorization.
#include <unistd.h>

#include <filesystem>

#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/nginx_server.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

class TransferTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    if (::access("/usr/bin/sqlite3", X_OK) != 0) {
      GTEST_SKIP() << "sqlite3 is not installed (apt-get install sqlite3)";
    }
  }
  // Another nginx over a publish root (pub_ unless given).
  NginxServer* ExtraNginx(NginxServer::Options o = {}) {
    if (o.root.empty()) o.root = pub_;
    auto& n = extra_.emplace_back(std::make_unique<NginxServer>(o));
    std::string error;
    EXPECT_TRUE(n->Start(&error)) << error;
    return n.get();
  }
  static uint64_t ObjectRequests(const NginxServer& n, const std::string& uri) {
    uint64_t count = 0;
    for (const auto& e : n.ReadAccessLog()) count += e.uri == uri;
    return count;
  }

  std::vector<std::unique_ptr<NginxServer>> extra_;
};

TEST_F(TransferTest, ParallelConnectionsGetPastAPerConnectionCap) {
  const std::string weights = RandomBytes(24 << 20, 1);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  std::string url = StartNginx("2m");
  if (url.empty()) return;
  FaultProxy proxy(nginx_->port());
  WriteConfig({proxy.url()}, "connections_per_file = 6\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  // Six chunks (4 MiB each) at once, each on its own connection.
  EXPECT_EQ(ObjectRequests(*nginx_, ObjectUri(weights)), 6u);
  EXPECT_GE(proxy.max_active(), 6);
}

TEST_F(TransferTest, ConnectionsDroppedEveryFewMegabytesLoseNoReceivedBytes) {
  const std::string weights = RandomBytes(32 << 20, 2);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  std::string url = StartNginx();
  if (url.empty()) return;
  FaultProxy proxy(nginx_->port());
  proxy.CutEvery((3 << 20) + 4321);
  WriteConfig({proxy.url()});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_NE(r.err.find("range request failed; retrying"), std::string::npos) << r.err;
  // Every byte crossed the link once: what the agent received is the file.
  EXPECT_EQ(Sql("SELECT bytes_downloaded FROM sync_runs ORDER BY id DESC LIMIT 1"),
            std::to_string(weights.size()));
  EXPECT_NE(Sql("SELECT errors FROM source_health"), "0");
}

TEST_F(TransferTest, AStalledSourceIsLeftAndTheRestFetchedAgain) {
  const std::string weights = RandomBytes(12 << 20, 3);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  std::string url = StartNginx();
  if (url.empty()) return;
  FaultProxy proxy(nginx_->port());
  proxy.StallAfter((2 << 20) + 99);
  WriteConfig({proxy.url()}, "http_timeout = \"1s\"\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_NE(r.err.find("without data"), std::string::npos) << r.err;
}

TEST_F(TransferTest, ASourceGoingDownHalfWayIsReplacedByAnotherWithoutLosingRanges) {
  const std::string weights = RandomBytes(40 << 20, 4);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  std::string url = StartNginx("4m");
  if (url.empty()) return;
  NginxServer::Options slow;
  slow.limit_rate = "4m";
  NginxServer* second = ExtraNginx(slow);
  FaultProxy proxy(nginx_->port());
  proxy.DownAfter(12 << 20);
  WriteConfig({proxy.url(), second->url()}, "retry_attempts = 3\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(Sql("SELECT bytes_downloaded FROM sync_runs ORDER BY id DESC LIMIT 1"),
            std::to_string(weights.size()));
  // Both served part of the file; the first one's failures are on record.
  EXPECT_NE(Sql("SELECT bytes > 0 FROM source_health WHERE source = '" + second->url() + "'"),
            "0");
  EXPECT_NE(Sql("SELECT errors FROM source_health WHERE source = '" + proxy.url() + "'"), "0");
  // status shows both: the first with its errors (FAILING if its last
  // request failed, else ok with the errors counted), the second ok.
  ProcessResult st = Status();
  size_t at = st.out.find("source:          " + proxy.url() + ": ");
  ASSERT_NE(at, std::string::npos) << st.out;
  std::string line = st.out.substr(at, st.out.find('\n', at) - at);
  EXPECT_TRUE(line.find("FAILING") != std::string::npos ||
              (line.find(" errors in ") != std::string::npos &&
               line.find(" 0 errors in ") == std::string::npos))
      << line;
  EXPECT_NE(st.out.find("source:          " + second->url() + ": ok"), std::string::npos) << st.out;
}

TEST_F(TransferTest, ASourceServingAnotherRevisionIsNeverMixedIn) {
  WriteFile(model_ + "/weights.bin", RandomBytes(16 << 20, 5));
  Publish();
  // A lagging mirror keeps the first revision.
  const std::string old_pub = tmp_.Sub("old-pub");
  std::filesystem::copy(pub_, old_pub, std::filesystem::copy_options::recursive);
  const std::string weights = RandomBytes(16 << 20, 6);
  WriteFile(model_ + "/weights.bin", weights);
  std::string rev2 = Publish();
  std::string url = StartNginx();
  if (url.empty()) return;
  NginxServer::Options o;
  o.root = old_pub;
  NginxServer* lagging = ExtraNginx(o);
  WriteConfig({url, lagging->url()});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev2);
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_NE(r.err.find("source serves another revision; not used for this run"),
            std::string::npos)
      << r.err;
  // The lagging mirror was asked for its pointer only.
  for (const auto& e : lagging->ReadAccessLog()) {
    EXPECT_EQ(e.uri, std::string("/") + kRepo + "/latest");
  }
}

TEST_F(TransferTest, HttpsWithAPrivateCaIsAcceptedWithTheCaFileOnly) {
  if (::access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl is not installed";
  const std::string dir = tmp_.Sub("tls");
  MakeDirs(dir);
  auto openssl = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
           "/CN=sync-agent test CA", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem"});
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
           dir + "/server.key", "-out", dir + "/server.csr"});
  WriteFile(dir + "/san.ext", "subjectAltName = IP:127.0.0.1\n");
  openssl({"x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
           dir + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext", "-out",
           dir + "/server.pem"});
  ::chmod((dir + "/server.key").c_str(), 0644);  // nginx reads it as root; keep it simple

  WriteFile(model_ + "/weights.bin", RandomBytes(9 << 20, 8));
  WriteFile(model_ + "/config.json", "{}");
  Publish();
  NginxServer::Options o;
  o.tls_cert = dir + "/server.pem";
  o.tls_key = dir + "/server.key";
  std::string url = StartNginx(o);
  if (url.empty()) return;
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;

  WriteConfig({url});
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("certificate"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(Served()));

  WriteConfig({url}, "ca_file = \"" + dir + "/ca.pem\"\n");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
}

TEST_F(TransferTest, ATokenIsSentAsAuthorizationAndNeverShown) {
  WriteFile(model_ + "/weights.bin", RandomBytes(9 << 20, 9));
  Publish();
  NginxServer::Options o;
  o.require_authorization = "Bearer t0ps3cret";
  std::string url = StartNginx(o);
  if (url.empty()) return;
  WriteConfig({url});
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("HTTP 401"), std::string::npos) << r.err;

  WriteFile(tmp_.Sub("token"), "t0ps3cret\n");
  std::string text = ReadFile(config_);
  text += "token_file = \"" + tmp_.Sub("token") + "\"\n";
  WriteFile(config_, text);
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(r.err.find("t0ps3cret"), std::string::npos);
  EXPECT_EQ(Status({"--json"}).out.find("t0ps3cret"), std::string::npos);
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_runs WHERE error LIKE '%t0ps3cret%'"), "0");
}

TEST_F(TransferTest, WithoutATerminalProgressGoesToTheLog) {
  WriteFile(model_ + "/weights.bin", RandomBytes(24 << 20, 10));
  Publish();
  std::string url = StartNginx();
  if (url.empty()) return;
  WriteConfig({url}, "bandwidth_limit = \"8MB/s\"\nprogress_interval = \"1s\"\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("progress repo=acme/llm-7b downloaded=\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" left\""), std::string::npos) << r.err;
}

TEST_F(TransferTest, OnATerminalProgressIsOneRedrawnLine) {
  if (::access("/usr/bin/script", X_OK) != 0) {
    GTEST_SKIP() << "script (util-linux) is not installed; it gives the agent a terminal";
  }
  WriteFile(model_ + "/weights.bin", RandomBytes(24 << 20, 11));
  Publish();
  std::string url = StartNginx();
  if (url.empty()) return;
  WriteConfig({url}, "bandwidth_limit = \"8MB/s\"\n");
  // script runs the agent on a pseudo-terminal and copies what it draws.
  ProcessResult r = RunProcess({"/usr/bin/script", "-qec",
                                AgentBinary() + " --once --config " + config_, "/dev/null"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_NE(r.out.find("\r\033[Kacme/llm-7b: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" left"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("progress repo="), std::string::npos) << "logged instead of drawn";
}

}  // namespace
}  // namespace sync_agent::testing
