// A node in the real world: `status` right after an upgrade, before the
// agent has run (a state database of an older schema, or none at all), and
// objects on disk that no database row knows.
#include <gmock/gmock.h>
#include <unistd.h>

#include <filesystem>

#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;

class UpgradeTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (access("/usr/bin/sqlite3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/sqlite3";
  }
  // A state database as sync-agent with schema `version` made it: the
  // shipped migrations 1..version, applied by the sqlite3 tool.
  void MakeOldDatabase(int version) {
    std::filesystem::create_directories(state_);
    std::string sql;
    for (const auto& e :
         std::filesystem::directory_iterator(std::string(SA_SOURCE_DIR) + "/schema/migrations")) {
      int n = std::stoi(e.path().filename().string().substr(0, 4));
      if (n <= version) files_.push_back(e.path().string());
    }
    std::sort(files_.begin(), files_.end());
    for (const std::string& f : files_) sql += ReadFile(f) + "\n";
    sql += "PRAGMA user_version = " + std::to_string(version) + ";\n";
    sql += "INSERT INTO repos (name, created_at_ms) VALUES ('" + std::string(kRepo) + "', 1);\n";
    sql +=
        "INSERT INTO revisions (repo_id, revision, manifest_sha256, source, created, state, "
        "fetched_at_ms, activated_at_ms, file_count, total_bytes) VALUES (1, 'old-rev', '" +
        std::string(64, 'a') +
        "', 'http://origin.example', '2026-01-01T00:00:00Z', 'active', 2, 3, "
        "1, 10);\n";
    sql +=
        "INSERT INTO sync_runs (repo_id, trigger, started_at_ms, finished_at_ms, outcome, "
        "from_revision, to_revision, source, bytes_downloaded) VALUES (1, 'timer', 2, 3, "
        "'updated', NULL, 'old-rev', 'http://origin.example', 10);\n";
    ProcessResult r = RunProcess({"/usr/bin/sqlite3", state_ + "/state.db"}, {}, sql);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<std::string> files_;
};

TEST_F(UpgradeTest, StatusReadsAnOlderSchemaWithoutMigratingTheFile) {
  for (int version : {1, 5, 8, 10}) {
    SCOPED_TRACE("schema version " + std::to_string(version));
    std::filesystem::remove_all(state_);
    files_.clear();
    MakeOldDatabase(version);
    WriteConfig({"http://127.0.0.1:9/"});
    ProcessResult st = Status();
    EXPECT_EQ(st.exit_code, 1) << st.err;  // stale: its last run is from 1970
    EXPECT_THAT(st.out, HasSubstr(std::string(kRepo) + ": STALE"));
    // Nothing is served (the test made no tree): status says what the database holds.
    EXPECT_THAT(st.out, HasSubstr("the database records revision old-rev as active"));
    EXPECT_THAT(st.out, HasSubstr("last run:        updated "));
    EXPECT_THAT(st.err, ::testing::Not(HasSubstr("older")));
    st = Status({"--json"});
    EXPECT_THAT(st.out, HasSubstr("\"database_revision\":\"old-rev\""));
    EXPECT_THAT(st.out, HasSubstr("\"pinned\":null"));
    st = Status({kRepo});
    EXPECT_THAT(st.out, HasSubstr("old-rev"));
    // The file is left to the next sync, which migrates it.
    EXPECT_EQ(Sql("PRAGMA user_version"), std::to_string(version));
  }
}

TEST_F(UpgradeTest, TheNextSyncMigratesAnOlderSchemaAndKeepsItsHistory) {
  MakeOldDatabase(8);
  WriteFile(model_ + "/config.json", "{}");
  std::string rev = Publish();
  WriteConfig({StartBuiltinServer()});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev);
  EXPECT_NE(Sql("PRAGMA user_version"), "8");
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_runs WHERE to_revision = 'old-rev'"), "1");
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
}

TEST_F(UpgradeTest, StatusBeforeTheFirstRunSaysSoWithoutCreatingAnything) {
  WriteConfig({"http://127.0.0.1:9/"});
  ASSERT_FALSE(PathExists(state_));
  ProcessResult st = Status();
  EXPECT_THAT(st.out, HasSubstr(kRepo));
  EXPECT_THAT(st.out, HasSubstr("last run:        never"));
  EXPECT_THAT(st.err, ::testing::Not(HasSubstr("error")));
  st = Status({"--json"});
  EXPECT_THAT(st.out, HasSubstr("\"last_run\":null"));
  EXPECT_FALSE(PathExists(state_ + "/state.db"));
}

TEST_F(UpgradeTest, ObjectsNoRowKnowsAreCollectedAndOthersAreKept) {
  WriteFile(model_ + "/config.json", "{\"v\": 1}");
  WriteFile(model_ + "/weights.bin", RandomBytes(1 << 20, 3));
  Publish();
  WriteConfig({StartBuiltinServer()});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Stored by a run killed before it recorded them, or by a lost database.
  const std::string orphan = "ab" + std::string(62, '1');
  std::filesystem::create_directories(state_ + "/objects/ab");
  WriteFile(state_ + "/objects/ab/" + orphan, "no row knows this");
  WriteFile(state_ + "/objects/ab/notes.txt", "not an object name");
  // Stored content a revision lists, whose objects row was lost: kept.
  const std::string listed = Sha256Hex("{\"v\": 1}");
  Sql("DELETE FROM objects WHERE sha256 = '" + listed + "'");

  WriteFile(model_ + "/config.json", "{\"v\": 2}");
  std::string rev2 = Publish();
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev2);
  EXPECT_THAT(r.err, HasSubstr("removed objects that no database row knows"));
  EXPECT_FALSE(PathExists(state_ + "/objects/ab/" + orphan));
  EXPECT_TRUE(PathExists(state_ + "/objects/ab/notes.txt"));
  EXPECT_TRUE(PathExists(state_ + "/objects/" + listed.substr(0, 2) + "/" + listed));
  EXPECT_EQ(DiffTrees(model_, Served()), "");
}

}  // namespace
}  // namespace sync_agent::testing
