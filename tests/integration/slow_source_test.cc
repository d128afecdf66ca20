// Issue 11, finding 3: a source that dribbles must neither keep `--once`
// (and the run lock) for long nor hold up the node's other repositories, and
// SIGTERM must act while it dribbles. The real binary against a scripted
// server that dribbles, and a real nginx that does (limit_rate).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>

#include "tests/support/agent_fixture.h"
#include "tests/support/scripted_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr const char* kSlowRepo = "acme/slow";

class SlowSourceTest : public AgentFixture {
 protected:
  // kRepo from fast_source, and kSlowRepo (listed first, so it is synced
  // first) from slow_source.
  void WriteTwoRepoConfig(const std::string& slow_source, const std::string& fast_source,
                          const std::string& extra) {
    WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                           "\"\ninterval = \"1m\"\n" + extra + "\n[[repo]]\nname = \"" + kSlowRepo +
                           "\"\nsources = [\"" + slow_source + "\"]\n\n[[repo]]\nname = \"" +
                           kRepo + "\"\nsources = [\"" + fast_source + "\"]\n");
  }
  std::string SlowServed() const { return mirror_ + "/" + kSlowRepo; }
};

// Every answer: a head, then the body one byte every 200 ms, without end.
Reply DribbledBody(const std::string&, int, int) {
  Reply r;
  r.writes = {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"};
  r.repeat = " ";
  r.pause_between = milliseconds(200);
  return r;
}

TEST_F(SlowSourceTest, SigtermActsWhileTheResponseHeadIsDribbled) {
  ScriptedServer slow([](const std::string&, int, int) {
    Reply r;
    r.writes = {"HTTP/1.1 200 OK\r\nX-Slow: "};
    r.repeat = "a";
    r.pause_between = milliseconds(200);
    return r;
  });
  WriteConfig({slow.Url("")});  // http_timeout 60 s: only the signal can end it soon
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(WaitFor([&] { return !slow.requests().empty(); })) << agent.Stderr();
  agent.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, seconds(10)))
      << "--once still running 10 s after SIGTERM while the head dribbled: " << agent.Stderr();
  EXPECT_EQ(agent.Wait(), 1) << agent.Stderr();
  EXPECT_THAT(agent.Stderr(), HasSubstr("SIGTERM"));
  ProcessResult st = Status({"--json", kRepo});
  EXPECT_THAT(st.out, HasSubstr("\"outcome\":\"interrupted\"")) << st.out;
}

TEST_F(SlowSourceTest, SigtermActsWhileTheBodyIsDribbled) {
  ScriptedServer slow(DribbledBody);
  WriteConfig({slow.Url("")}, "http_low_speed_limit = \"0\"\n");  // no minimum rate
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(WaitFor([&] { return !slow.requests().empty(); })) << agent.Stderr();
  agent.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, seconds(10))) << agent.Stderr();
  EXPECT_EQ(agent.Wait(), 1) << agent.Stderr();
  ProcessResult st = Status({"--json", kRepo});
  EXPECT_THAT(st.out, HasSubstr("\"outcome\":\"interrupted\"")) << st.out;
}

TEST_F(SlowSourceTest, ADribbledPointerFailsByTheMinimumRateAndTheNextRepositorySyncs) {
  WriteFile(model_ + "/config.json", "{\"fast\": true}");
  std::string rev = Publish();
  std::string fast = StartBuiltinServer();
  ScriptedServer slow(DribbledBody);
  WriteTwoRepoConfig(slow.Url(""), fast, "http_low_speed_time = \"2s\"\n");
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  // Not a timing claim: the old agent read this pointer for hours.
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, seconds(60))) << agent.Stderr();
  EXPECT_EQ(agent.Wait(), 1) << agent.Stderr();  // one repository failed
  EXPECT_EQ(ServedRevision(), rev) << agent.Stderr();
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"fast\": true}");
  EXPECT_FALSE(PathExists(SlowServed()));
  EXPECT_THAT(agent.Stderr(), HasSubstr("GET " + slow.Url("/acme/slow/latest")));
  EXPECT_THAT(agent.Stderr(), HasSubstr("the body arrived slower than 1.0 KiB/s over 2s"));
  EXPECT_THAT(agent.Stderr(), HasSubstr("http_low_speed_limit"));
}

TEST_F(SlowSourceTest, ADribbledChunkFailsWithinItsAttemptsAndTheNextRepositorySyncs) {
  // acme/slow has one file large enough to come in chunks; nginx sends the
  // first 4 KiB of each answer at full speed (the pointer and the manifest
  // fit) and then 200 bytes a second. Every range request thus makes a
  // little progress before the minimum rate ends it.
  const std::string slow_model = tmp_.Sub("slow-model");
  WriteFile(slow_model + "/weights.bin", RandomBytes(9 << 20, 7));
  ProcessResult pub = RunAgent({"publish", slow_model, "--repo", kSlowRepo, "--out", pub_});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  WriteFile(model_ + "/config.json", "{\"fast\": true}");
  std::string rev = Publish();
  std::string fast = StartBuiltinServer();
  NginxServer::Options o;
  o.limit_rate = "200";
  o.limit_rate_after = "4k";
  std::string slow = StartNginx(o);
  ASSERT_FALSE(slow.empty());
  WriteTwoRepoConfig(slow, fast, "http_low_speed_time = \"2s\"\nretry_attempts = 2\n");
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  // Not a timing claim: the old agent retried such a chunk without end.
  ASSERT_TRUE(WaitFor([&] { return !agent.Running(); }, seconds(120))) << agent.Stderr();
  EXPECT_EQ(agent.Wait(), 1) << agent.Stderr();
  EXPECT_EQ(ServedRevision(), rev) << agent.Stderr();
  EXPECT_FALSE(PathExists(SlowServed()));
  EXPECT_THAT(agent.Stderr(), HasSubstr("weights.bin"));
  EXPECT_THAT(agent.Stderr(), HasSubstr("gave up after 2 attempts"));
  EXPECT_THAT(agent.Stderr(), HasSubstr("the body arrived slower than 1.0 KiB/s over 2s"));
}

}  // namespace
}  // namespace sync_agent::testing
