// The daemon loop, status and the command line, through the real binary.
#include <Poco/JSON/Parser.h>
#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "common/base/json_text.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

class AgentCliTest : public AgentFixture {};

Poco::JSON::Object::Ptr ParseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

TEST_F(AgentCliTest, DaemonSyncsEachIntervalReloadsOnSighupAndStopsOnSigterm) {
  WriteFile(model_ + "/a.txt", "v1");
  std::string rev1 = Publish();
  WriteConfig({"file://" + pub_}, "stale_after = \"1m\"");
  // interval must be short for the test: rewrite it.
  std::string cfg = ReadFile(config_);
  cfg.replace(cfg.find("interval = \"1m\""), 15, "interval = \"1s\"");
  WriteFile(config_, cfg);
  BackgroundProcess daemon({AgentBinary(), "run", "--config", config_});
  ASSERT_TRUE(WaitFor([&] { return ServedRevision() == rev1; })) << daemon.Stderr();
  WriteFile(model_ + "/a.txt", "v2");
  std::string rev2 = Publish();
  ASSERT_TRUE(WaitFor([&] { return ServedRevision() == rev2; })) << daemon.Stderr();
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "v2");

  // SIGHUP: a second repository appears in the config.
  std::string other_model = tmp_.Sub("other");
  WriteFile(other_model + "/b.txt", "other");
  ASSERT_EQ(RunAgent({"publish", other_model, "--repo", "acme/other", "--out", pub_}).exit_code, 0);
  WriteFile(config_, ReadFile(config_) + "\n[[repo]]\nname = \"acme/other\"\nsources = [\"file://" +
                         pub_ + "\"]\n");
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(mirror_ + "/acme/other/b.txt") == "other"; }))
      << daemon.Stderr();
  EXPECT_NE(daemon.Stderr().find("config reloaded"), std::string::npos);

  // A broken config on reload keeps the old one running.
  std::string good = ReadFile(config_);
  WriteFile(config_, good + "\nbogus_key = 1\n");
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return daemon.Stderr().find("reload failed; keeping the previous config") != std::string::npos;
  })) << daemon.Stderr();
  EXPECT_TRUE(daemon.Running());

  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(), 0) << daemon.Stderr();
  EXPECT_NE(daemon.Stderr().find("daemon stopped"), std::string::npos);
}

TEST_F(AgentCliTest, StatusTellsTheTruth) {
  WriteFile(model_ + "/w.bin", RandomBytes(1 << 20, 1));
  WriteConfig({"file://" + pub_});
  // Never synced: unhealthy.
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("never synced successfully"), std::string::npos) << st.out;

  std::string rev1 = Publish();
  ASSERT_EQ(Once().exit_code, 0);
  st = Status({"--json"});
  EXPECT_EQ(st.exit_code, 0) << st.out;
  auto json = ParseJson(st.out);
  EXPECT_TRUE(json->getValue<bool>("healthy"));
  auto repo = json->getArray("repos")->getObject(0);
  EXPECT_EQ(repo->getValue<std::string>("name"), kRepo);
  EXPECT_EQ(repo->getValue<std::string>("active_revision"), rev1);
  EXPECT_FALSE(repo->getValue<bool>("stale"));
  auto last = repo->getObject("last_run");
  EXPECT_EQ(last->getValue<std::string>("outcome"), "updated");
  EXPECT_EQ(last->getValue<uint64_t>("bytes_downloaded"), 1u << 20);

  // A second revision that reuses everything but one small file.
  WriteFile(model_ + "/config.json", "{}");
  std::string rev2 = Publish();
  ASSERT_EQ(Once().exit_code, 0);
  st = Status();
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_NE(st.out.find("acme/llm-7b: ok"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("active revision: " + rev2), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("downloaded 2 B, files already here: 1 (1.0 MiB)"), std::string::npos)
      << st.out;

  // Detail: revisions and runs.
  st = Status({std::string(kRepo)});
  EXPECT_NE(st.out.find(rev1 + "  retained"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find(rev2 + "  active"), std::string::npos) << st.out;

  // A failing source: FAILING with the error, exit 1, the revision still active.
  ASSERT_EQ(::rename((pub_ + "/acme").c_str(), (pub_ + "/moved").c_str()), 0);
  WriteFile(model_ + "/config.json", "{\"x\": 1}");
  EXPECT_EQ(Once().exit_code, 1);
  st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("FAILING"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("last error:      not found"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("active revision: " + rev2), std::string::npos) << st.out;
  ASSERT_EQ(::rename((pub_ + "/moved").c_str(), (pub_ + "/acme").c_str()), 0);

  // Stale: no successful check within stale_after.
  WriteConfig({"file://" + pub_}, "stale_after = \"1m\"");
  std::string cfg = ReadFile(config_);
  cfg.replace(cfg.find("interval = \"1m\""), 15, "interval = \"1s\"");
  cfg.replace(cfg.find("stale_after = \"1m\""), 18, "stale_after = \"1s\"");
  WriteFile(config_, cfg);
  ASSERT_EQ(Once().exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Status().out.find("STALE") != std::string::npos; }));
  st = Status({"--json"});
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_TRUE(ParseJson(st.out)->getArray("repos")->getObject(0)->getValue<bool>("stale"));

  st = Status({"acme/unknown"});
  EXPECT_EQ(st.exit_code, 2);
  EXPECT_NE(st.err.find("not in the config and never synced"), std::string::npos) << st.err;
}

// Issue 11 finding 9: an agent killed between the swap and the database
// update left status naming the old revision while the new one was served.
// status reads the served symlink and tells the truth without writing.
TEST_F(AgentCliTest, StatusReconcilesWithTheServedSymlinkAfterAKillBetweenSwapAndRecord) {
  if (!PathExists("/usr/bin/sqlite3"))
    GTEST_SKIP() << "needs the sqlite3 tool (apt-get install sqlite3)";
  WriteFile(model_ + "/a.txt", "v1");
  std::string rev1 = Publish();
  WriteConfig({"file://" + pub_});
  ASSERT_EQ(Once().exit_code, 0);
  WriteFile(model_ + "/a.txt", "v2");
  std::string rev2 = Publish();
  // The engine's test-only kill point right after the swap: the link names
  // rev2, the database still records rev1.
  ProcessResult killed =
      RunAgent({"--once", "--config", config_}, {{"SYNC_AGENT_TEST_KILL_AT", "swap-done"}});
  ASSERT_EQ(killed.exit_code, -SIGKILL) << killed.err;
  ASSERT_EQ(ServedRevision(), rev2);
  ASSERT_EQ(Sql("SELECT r.revision FROM revisions r JOIN repos p ON p.id = r.repo_id "
                "WHERE p.name = '" +
                std::string(kRepo) + "' AND r.state = 'active'"),
            rev1)
      << "the kill point did not leave the database behind";
  auto database_bytes = [&] {
    return ReadFile(state_ + "/state.db") + "|" + ReadFile(state_ + "/state.db-wal");
  };
  const std::string db_before = database_bytes();

  ProcessResult st = Status();
  EXPECT_NE(st.out.find("active revision: " + rev2 + " (served"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("served revision " + rev2 + "; the database still records " + rev1),
            std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("the next run records it"), std::string::npos) << st.out;
  EXPECT_EQ(st.out.find("active revision: " + rev1), std::string::npos) << st.out;
  st = Status({"--json"});
  auto repo = ParseJson(st.out)->getArray("repos")->getObject(0);
  EXPECT_EQ(repo->getValue<std::string>("active_revision"), rev2);
  EXPECT_EQ(repo->getValue<std::string>("served_revision"), rev2);
  EXPECT_EQ(repo->getValue<std::string>("database_revision"), rev1);
  EXPECT_TRUE(repo->getValue<bool>("database_behind"));
  EXPECT_TRUE(repo->getValue<bool>("failing")) << "the killed run did not finish";
  // The detail view reads the same link.
  st = Status({"--json", kRepo});
  EXPECT_EQ(
      ParseJson(st.out)->getArray("repos")->getObject(0)->getValue<std::string>("active_revision"),
      rev2);
  // Status wrote nothing: the database is byte for byte what the kill left.
  EXPECT_TRUE(database_bytes() == db_before);

  // The next run records the served revision; status agrees with itself again.
  ProcessResult next = Once();
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.err.find("database was behind the served tree"), std::string::npos) << next.err;
  st = Status({"--json"});
  EXPECT_EQ(st.exit_code, 0) << st.out;
  repo = ParseJson(st.out)->getArray("repos")->getObject(0);
  EXPECT_EQ(repo->getValue<std::string>("active_revision"), rev2);
  EXPECT_EQ(repo->getValue<std::string>("database_revision"), rev2);
  EXPECT_FALSE(repo->getValue<bool>("database_behind"));
  EXPECT_EQ(Status().out.find("database:"), std::string::npos);

  // By hand, the way the swap does it (a new link renamed over the served
  // one): rev1's retained tree is served while the database records rev2.
  std::string link_tmp = mirror_ + "/acme/.llm-7b.swap.test";
  ASSERT_EQ(::symlink(("../.sync-agent/trees/" + std::string(kRepo) + "/" + rev1).c_str(),
                      link_tmp.c_str()),
            0);
  ASSERT_EQ(::rename(link_tmp.c_str(), Served().c_str()), 0);
  repo = ParseJson(Status({"--json"}).out)->getArray("repos")->getObject(0);
  EXPECT_EQ(repo->getValue<std::string>("active_revision"), rev1);
  EXPECT_EQ(repo->getValue<std::string>("database_revision"), rev2);
  EXPECT_TRUE(repo->getValue<bool>("database_behind"));
  EXPECT_NE(Status().out.find("active revision: " + rev1 + " (served"), std::string::npos);
}

// Issue 11 finding 7: hostile bytes in a pointer (a BOM, which Poco names
// by its first byte) reached status --json and
// JSON logs raw, making both invalid JSON.
TEST_F(AgentCliTest, HostileBytesInAPointerKeepJsonOutputValid) {
  WriteFile(model_ + "/config.json", "{}");
  WriteConfig({"file://" + pub_});
  Publish();
  ASSERT_EQ(Once().exit_code, 0);
  WriteFile(pub_ + "/" + kRepo + "/latest", "\xef\xbb\xbf{\"format\": 1}");
  ProcessResult run = Once({"--log-format", "json"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_TRUE(IsValidUtf8(run.err)) << run.err;
  ProcessResult st = Status({"--json"});
  ASSERT_TRUE(IsValidUtf8(st.out)) << st.out;
  auto repo = ParseJson(st.out)->getArray("repos")->getObject(0);
  EXPECT_EQ(repo->getObject("last_run")->getValue<std::string>("outcome"), "failed");
}

TEST_F(AgentCliTest, BadConfigAndArgumentsAreNamed) {
  WriteFile(config_, "state_dir = \"/tmp/x\"\nintreval = \"5m\"\n");
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(config_ + ":2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("intreval"), std::string::npos) << r.err;

  // A config with no [[repo]] is refused by --once and by the daemon, not
  // run as a silent success.
  WriteFile(config_, "state_dir = \"" + tmp_.Sub("state-empty") + "\"\nmirror_root = \"" +
                         tmp_.Sub("mirror-empty") + "\"\n");
  for (const char* command : {"--once", "run"}) {
    r = RunAgent({command, "--config", config_});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_NE(r.err.find(config_ + ": no [[repo]] is configured"), std::string::npos) << r.err;
  }

  r = RunAgent({"--once", "--config", tmp_.Sub("missing.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos) << r.err;

  r = RunAgent({"status", "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown option --frobnicate"), std::string::npos) << r.err;

  r = RunAgent({"teleport"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command \"teleport\""), std::string::npos) << r.err;

  r = RunAgent({"publish", model_, "--repo", "not-a-repo", "--out", pub_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("org/name"), std::string::npos) << r.err;

  r = RunAgent({"serve", pub_, "--listen", "nonsense"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("HOST:PORT"), std::string::npos) << r.err;

  r = RunAgent({"serve", pub_, "--max-connections", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--max-connections must be a number from 1"), std::string::npos) << r.err;
  r = RunAgent({"serve", pub_, "--request-timeout", "500ms"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--request-timeout must be a duration"), std::string::npos) << r.err;
}

TEST_F(AgentCliTest, EveryCommandHasHelpAndVersionWorks) {
  for (const char* cmd : {"--once", "run", "status", "publish", "serve"}) {
    ProcessResult r = RunAgent({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd << r.err;
    EXPECT_NE(r.out.find("usage: sync-agent"), std::string::npos) << cmd;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << cmd;
  }
  ProcessResult r = RunAgent({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("sync-agent ", 0), 0u) << r.out;
  r = RunAgent({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("publish DIR"), std::string::npos);
}

TEST_F(AgentCliTest, JsonLogsAreOneObjectPerLine) {
  WriteFile(model_ + "/a.txt", "a");
  Publish();
  WriteConfig({"file://" + pub_});
  ProcessResult r = Once({"--log-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.err);
  std::string line;
  int n = 0;
  bool saw_update = false;
  while (std::getline(lines, line)) {
    auto obj = ParseJson(line);
    EXPECT_TRUE(obj->has("ts"));
    EXPECT_TRUE(obj->has("level"));
    if (obj->getValue<std::string>("msg") == "updated") {
      saw_update = true;
      EXPECT_EQ(obj->getValue<std::string>("repo"), kRepo);
    }
    ++n;
  }
  EXPECT_GE(n, 2);
  EXPECT_TRUE(saw_update);
}

}  // namespace
}  // namespace sync_agent::testing
