// Prometheus metrics through the binary and the real tools: the textfile
// checked by promtool, the daemon's /metrics scraped by a real Prometheus
// started here, and the shipped alert rules and Grafana dashboard.
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>

#include "tests/support/agent_fixture.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kPromtool = "/usr/bin/promtool";
constexpr const char* kPrometheus = "/usr/bin/prometheus";

// The value of the sample named exactly `series` (name and labels), or "".
std::string Sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      size_t begin = at + series.size() + 1;
      return text.substr(begin, text.find('\n', begin) - begin);
    }
    at += series.size();
  }
  return "";
}

ProcessResult Promtool(const std::vector<std::string>& args, const std::string& stdin_data = "") {
  std::vector<std::string> argv = {kPromtool};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, {}, stdin_data);
}

class MetricsTest : public AgentFixture {
 protected:
  void SetUp() override {
    WriteFile(model_ + "/config.json", "{\"v\": 1}");
    WriteFile(model_ + "/weights.bin", RandomBytes(1 << 20, 5));
    rev_ = Publish();
    url_ = StartBuiltinServer();
    prom_file_ = tmp_.Sub("textfile") + "/sync-agent.prom";
    std::filesystem::create_directories(tmp_.Sub("textfile"));
  }
  std::string rev_, url_, prom_file_;
};

TEST_F(MetricsTest, TheTextfilePassesPromtoolAndCountsWhatTheRunsDid) {
  WriteConfig({url_}, "metrics_textfile = \"" + prom_file_ + "\"\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = ReadFile(prom_file_);
  ASSERT_FALSE(text.empty());
  struct stat st;
  ASSERT_EQ(::stat(prom_file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // node_exporter runs as another user
  if (access(kPromtool, X_OK) != 0) {
    ADD_FAILURE() << "promtool is missing (Debian package prometheus; scripts/test installs it)";
  } else {
    ProcessResult check = Promtool({"check", "metrics"}, text);
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err << text;
  }
  const std::string repo = std::string("{repo=\"") + kRepo + "\"";
  const uint64_t published = 8 + (1 << 20);  // config.json and weights.bin
  EXPECT_EQ(Sample(text, "sync_agent_downloaded_bytes_total" + repo + "}"),
            std::to_string(published));
  EXPECT_EQ(Sample(text, "sync_agent_runs_total" + repo + ",outcome=\"updated\"}"), "1");
  EXPECT_EQ(Sample(text, "sync_agent_runs_total" + repo + ",outcome=\"unchanged\"}"), "0");
  EXPECT_EQ(Sample(text, "sync_agent_active_revision_info" + repo + ",revision=\"" + rev_ + "\"}"),
            "1");
  EXPECT_EQ(Sample(text, "sync_agent_stale" + repo + "}"), "0");
  EXPECT_EQ(Sample(text, "sync_agent_failing" + repo + "}"), "0");
  EXPECT_EQ(Sample(text, "sync_agent_pinned" + repo + "}"), "0");
  EXPECT_EQ(Sample(text, "sync_agent_source_errors_total" + repo + ",source=\"" + url_ + "\"}"),
            "0");
  EXPECT_NE(Sample(text, "sync_agent_disk_free_bytes{path=\"" + mirror_ + "\"}"), "");
  EXPECT_NE(Sample(text, "sync_agent_last_success_timestamp_seconds" + repo + "}"), "");

  // Two unchanged checks share a row of sync_runs; each still counts.
  for (int i = 0; i < 2; ++i) {
    r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string later = ReadFile(prom_file_);
  EXPECT_EQ(Sample(later, "sync_agent_runs_total" + repo + ",outcome=\"unchanged\"}"), "2");
  EXPECT_EQ(Sample(later, "sync_agent_runs_total" + repo + ",outcome=\"updated\"}"), "1");
  EXPECT_EQ(Sample(later, "sync_agent_downloaded_bytes_total" + repo + "}"),
            std::to_string(published));
  // Written by rename: no temporary file is left beside it.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.Sub("textfile"))) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(MetricsTest, AFailingSourceShowsAsFailingAndCountsItsErrors) {
  WriteConfig({"http://127.0.0.1:9/"},
              "metrics_textfile = \"" + prom_file_ + "\"\nretry_attempts = 1\n");
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1);
  const std::string text = ReadFile(prom_file_);
  const std::string repo = std::string("{repo=\"") + kRepo + "\"";
  EXPECT_EQ(Sample(text, "sync_agent_failing" + repo + "}"), "1") << text;
  EXPECT_EQ(Sample(text, "sync_agent_runs_total" + repo + ",outcome=\"failed\"}"), "1");
  EXPECT_EQ(
      Sample(text, "sync_agent_source_errors_total" + repo + ",source=\"http://127.0.0.1:9\"}"),
      "1");
  EXPECT_EQ(Sample(text, "sync_agent_repos{state=\"failing\"}"), "1");
}

TEST_F(MetricsTest, AnUnwritableTextfileIsLoggedAndFailsNoSync) {
  WriteConfig({url_}, "metrics_textfile = \"" + tmp_.Sub("no-such-dir") + "/x.prom\"\n");
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("could not write the metrics file"));
  EXPECT_THAT(r.err, HasSubstr("metrics_textfile"));
  EXPECT_EQ(ServedRevision(), rev_);
}

TEST_F(MetricsTest, BadMetricsKeysAreRefusedByName) {
  WriteConfig({url_}, "metrics_listen = \"localhost\"\n");
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("\"metrics_listen\" \"localhost\" must be HOST:PORT"));
  WriteConfig({url_}, "metrics_listen = \"127.0.0.1:99999\"\n");
  r = Once();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("port must be between 1 and 65535"));
  WriteConfig({url_}, "metrics_textfile = \"/tmp/sync-agent.txt\"\n");
  r = Once();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("must end in .prom"));
}

TEST_F(MetricsTest, ThePortInUseStopsTheDaemonWithTheKeyNamed) {
  int port = FreeLoopbackPort();
  BackgroundProcess holder(
      {AgentBinary(), "serve", pub_, "--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(WaitForPort(port)) << holder.Stderr();
  WriteConfig({url_}, "metrics_listen = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ProcessResult r = RunAgent({"run", "--config", config_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("metrics_listen"));
  EXPECT_THAT(r.err, HasSubstr(std::to_string(port)));
}

TEST_F(MetricsTest, ARealPrometheusScrapesTheDaemon) {
  if (access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << "needs Debian's prometheus package (scripts/test installs it)";
  }
  const int metrics_port = FreeLoopbackPort();
  WriteConfig({url_}, "metrics_listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n");
  BackgroundProcess daemon({AgentBinary(), "run", "--config", config_});
  ASSERT_TRUE(WaitForPort(metrics_port)) << daemon.Stderr();
  // The daemon's first pass has synced the repository.
  ASSERT_TRUE(WaitFor([&] { return ServedRevision() == rev_; })) << daemon.Stderr();

  const std::string prom_dir = tmp_.Sub("prometheus");
  std::filesystem::create_directories(prom_dir + "/data");
  WriteFile(prom_dir + "/prometheus.yml",
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: sync-agent\n    static_configs:\n"
            "      - targets: ['127.0.0.1:" +
                std::to_string(metrics_port) + "']\n");
  const int prom_port = FreeLoopbackPort();
  const std::string prom = "http://127.0.0.1:" + std::to_string(prom_port);
  BackgroundProcess prometheus({kPrometheus, "--config.file=" + prom_dir + "/prometheus.yml",
                                "--storage.tsdb.path=" + prom_dir + "/data",
                                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});
  ASSERT_TRUE(WaitForPort(prom_port)) << prometheus.Stderr();
  auto query = [&](const std::string& path) {
    return RunProcess({"/usr/bin/curl", "-s", "-g", prom + path}).out;
  };
  std::string answer;
  EXPECT_TRUE(WaitFor(
      [&] {
        answer = query("/api/v1/query?query=sync_agent_active_revision_info");
        return answer.find("\"revision\":\"" + rev_ + "\"") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << answer << prometheus.Stderr();
  EXPECT_THAT(answer, HasSubstr(std::string("\"repo\":\"") + kRepo + "\""));
  std::string targets = query("/api/v1/targets");
  EXPECT_THAT(targets, HasSubstr("\"health\":\"up\"")) << targets;
  EXPECT_THAT(targets, HasSubstr("\"lastError\":\"\""));
  answer = query("/api/v1/query?query=sync_agent_downloaded_bytes_total");
  EXPECT_THAT(answer, HasSubstr(std::to_string(8 + (1 << 20))));
  prometheus.Signal(SIGTERM);
  prometheus.Wait();
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(), 0) << daemon.Stderr();
}

TEST(MetricsFilesTest, TheShippedAlertRulesPassPromtoolAndTheirUnitTests) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << "needs promtool (Debian package prometheus)";
  const std::string dir = std::string(SA_SOURCE_DIR) + "/scripts";
  ProcessResult check = Promtool({"check", "rules", dir + "/prometheus-alerts.yml"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_THAT(check.out, HasSubstr("SUCCESS: 4 rules found"));
  ProcessResult test = Promtool({"test", "rules", dir + "/prometheus-alerts.test.yml"});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
}

TEST_F(MetricsTest, EveryMetricTheDashboardAndTheRulesUseIsOneTheAgentExports) {
  WriteConfig({url_}, "metrics_textfile = \"" + prom_file_ + "\"\n");
  ASSERT_EQ(Once().exit_code, 0);
  const std::string text = ReadFile(prom_file_);
  std::set<std::string> exported;
  std::regex type_line("# TYPE (sync_agent_[a-z_]+) ");
  for (std::sregex_iterator it(text.begin(), text.end(), type_line), end; it != end; ++it) {
    exported.insert((*it)[1].str());
  }
  ASSERT_GT(exported.size(), 15u);
  std::regex used("sync_agent_[a-z_]+");
  for (const char* file : {"grafana-dashboard.json", "prometheus-alerts.yml"}) {
    const std::string body = ReadFile(std::string(SA_SOURCE_DIR) + "/scripts/" + file);
    ASSERT_FALSE(body.empty()) << file;
    size_t uses = 0;
    for (std::sregex_iterator it(body.begin(), body.end(), used), end; it != end; ++it) {
      ++uses;
      EXPECT_TRUE(exported.count(it->str())) << file << " uses " << it->str();
    }
    EXPECT_GT(uses, 3u) << file;
  }
}

}  // namespace
}  // namespace sync_agent::testing
