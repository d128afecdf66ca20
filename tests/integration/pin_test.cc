// `sync-agent pin` and `unpin` on a real node: a rollback to a retained
// revision, runs that keep fetching but do not serve past the pin, a pin
// made while a run transfers, and a pin the node cannot honour.
#include <gmock/gmock.h>
#include <unistd.h>

#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;

class PinTest : public AgentFixture {
 protected:
  // Publishes and syncs revisions "rev-one" and "rev-two" from the built-in server.
  void SyncTwoRevisions() {
    WriteFile(model_ + "/config.json", "{\"v\": 1}");
    WriteFile(model_ + "/weights.bin", RandomBytes(1 << 20, 1));
    ASSERT_EQ(Publish({"--revision", "rev-one"}), "rev-one");
    if (url_.empty()) url_ = StartBuiltinServer();
    WriteConfig({url_});
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    WriteFile(model_ + "/config.json", "{\"v\": 2}");
    ASSERT_EQ(Publish({"--revision", "rev-two"}), "rev-two");
    r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(ServedRevision(), "rev-two");
  }
  ProcessResult Pin(const std::string& revision) {
    return RunAgent({"pin", kRepo, revision, "--config", config_});
  }
  ProcessResult Unpin() { return RunAgent({"unpin", kRepo, "--config", config_}); }
  std::string url_;
};

TEST_F(PinTest, PinServesARetainedRevisionAndRunsKeepItUntilUnpin) {
  SyncTwoRevisions();
  ProcessResult p = Pin("rev-one");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("pinned to rev-one (was serving rev-two)"));
  EXPECT_EQ(ServedRevision(), "rev-one");
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"v\": 1}");

  ProcessResult st = Status();
  EXPECT_THAT(st.out, HasSubstr("ok (pinned)"));
  EXPECT_THAT(st.out, HasSubstr("pinned:          to rev-one since "));
  EXPECT_THAT(st.out, HasSubstr("newest fetched rev-two is held, not served"));
  st = Status({"--json"});
  EXPECT_THAT(st.out, HasSubstr("\"pinned\":{\"revision\":\"rev-one\",\"since\":\""));
  EXPECT_THAT(st.out, HasSubstr("\"newest_revision\":\"rev-two\"}"));
  EXPECT_THAT(st.out, HasSubstr("\"active_revision\":\"rev-one\""));

  // A new revision upstream: fetched, kept, not served.
  WriteFile(model_ + "/config.json", "{\"v\": 3}");
  ASSERT_EQ(Publish({"--revision", "rev-three"}), "rev-three");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pinned: keeping the pinned revision served"));
  EXPECT_EQ(ServedRevision(), "rev-one");
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"v\": 1}");
  EXPECT_TRUE(PathExists(mirror_ + "/.sync-agent/trees/" + kRepo + "/rev-three"));
  st = Status();
  EXPECT_THAT(st.out, HasSubstr("newest fetched rev-three is held, not served"));
  // Again: the origin has nothing new, and the held revision stays held.
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), "rev-one");

  ProcessResult u = Unpin();
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_THAT(u.out, HasSubstr("unpinned (was pinned to rev-one)"));
  EXPECT_EQ(ServedRevision(), "rev-one");  // unpin itself swaps nothing
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), "rev-three");
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  st = Status({"--json"});
  EXPECT_THAT(st.out, HasSubstr("\"pinned\":null"));
  // The held revision was served without fetching it again.
  EXPECT_THAT(st.out, HasSubstr("\"bytes_downloaded\":0"));
  u = Unpin();
  EXPECT_EQ(u.exit_code, 0);
  EXPECT_THAT(u.out, HasSubstr("was not pinned; nothing changed"));
}

TEST_F(PinTest, APrefixNamesARevisionAndAnUnheldOneListsWhatTheNodeHolds) {
  SyncTwoRevisions();
  ProcessResult p = Pin("rev-o");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(ServedRevision(), "rev-one");
  ProcessResult again = Pin("rev-one");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("(already served)"));

  ProcessResult bad = Pin("rev-nine");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("the node does not hold that revision"));
  EXPECT_THAT(bad.err, HasSubstr("it holds: "));
  EXPECT_THAT(bad.err, HasSubstr("rev-one (active)"));
  EXPECT_THAT(bad.err, HasSubstr("rev-two (retained)"));
  ProcessResult ambiguous = Pin("rev-");
  EXPECT_EQ(ambiguous.exit_code, 1);
  EXPECT_THAT(ambiguous.err, HasSubstr("the prefix names 2 revisions"));
  ProcessResult unknown = RunAgent({"pin", "acme/other", "rev-one", "--config", config_});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("this node has no repository acme/other"));
  ProcessResult usage = RunAgent({"pin", kRepo, "--config", config_});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_EQ(ServedRevision(), "rev-one");  // nothing a refusal did changed the served tree
}

TEST_F(PinTest, ACollectedRevisionCannotBePinned) {
  SyncTwoRevisions();
  // keep_revisions = 1: the third run collects rev-one.
  WriteConfig({url_}, "keep_revisions = 1\n");
  WriteFile(model_ + "/config.json", "{\"v\": 3}");
  ASSERT_EQ(Publish({"--revision", "rev-three"}), "rev-three");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ProcessResult p = Pin("rev-one");
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_THAT(p.err, HasSubstr("no longer holds that revision (it is collected)"));
  EXPECT_THAT(p.err, HasSubstr("rev-three (active)"));
  EXPECT_EQ(ServedRevision(), "rev-three");
}

TEST_F(PinTest, APinThatWasRecordedButNotSwappedIsServedByTheNextRun) {
  if (access("/usr/bin/sqlite3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/sqlite3";
  SyncTwoRevisions();
  // What a `pin` killed after recording and before its swap leaves.
  Sql("INSERT INTO pins (repo_id, revision, pinned_at_ms) "
      "SELECT id, 'rev-one', 1 FROM repos WHERE name = '" +
      std::string(kRepo) + "'");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("served the pinned revision"));
  EXPECT_EQ(ServedRevision(), "rev-one");
  EXPECT_EQ(Sql("SELECT r.revision FROM revisions r WHERE r.state = 'active'"), "rev-one");
}

TEST_F(PinTest, APinMadeWhileARunTransfersHoldsWhenTheRunFinishes) {
  WriteFile(model_ + "/config.json", "{\"v\": 1}");
  ASSERT_EQ(Publish({"--revision", "rev-one"}), "rev-one");
  url_ = StartNginx("1m");  // 1 MiB/s per connection
  ASSERT_FALSE(url_.empty());
  WriteConfig({url_}, "connections_per_file = 1\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // rev-two brings 3 MiB: about 3 s at the server's rate.
  const std::string weights = RandomBytes(3 << 20, 9);
  WriteFile(model_ + "/weights.bin", weights);
  ASSERT_EQ(Publish({"--revision", "rev-two"}), "rev-two");
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(WaitFor([&] { return PathExists(PartialPath(weights)); })) << agent.Stderr();
  ProcessResult p = Pin("rev-one");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  ASSERT_TRUE(agent.Running()) << "the run finished before the pin; the test needs a slower "
                                  "transfer\n"
                               << agent.Stderr();
  EXPECT_EQ(agent.Wait(), 0) << agent.Stderr();
  EXPECT_EQ(ServedRevision(), "rev-one");
  EXPECT_TRUE(PathExists(mirror_ + "/.sync-agent/trees/" + kRepo + "/rev-two"));
  EXPECT_THAT(agent.Stderr(), HasSubstr("pinned: keeping the pinned revision served"));
}

}  // namespace
}  // namespace sync_agent::testing
