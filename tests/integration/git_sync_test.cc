// A node syncing straight from a git remote with Git LFS ([[repo]] git/ref),
// through the real sync-agent binary: a local-path remote, and smart HTTP
// (git-http-backend behind nginx and fcgiwrap) with the LFS batch API of a
// test LFS server. The served tree equals what git and git-lfs check out,
// polls of an unchanged ref move no objects, unchanged LFS objects are not
// downloaded again, a force push is followed, and every failure says which
// and leaves the served tree as it was.
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/hash/content_hasher.h"
#include "tests/support/git_agent_fixture.h"
#include "tests/support/nginx_server.h"

namespace sync_agent::testing {
namespace {

// Failures that a retry cannot fix fail at once (the retries have tests of their own).
constexpr const char* kNoRetries = "retry_attempts = 1\n";

// sqlite3 reads the node's database in these tests.
bool HaveSqlite3() { return ::access("/usr/bin/sqlite3", X_OK) == 0; }
constexpr const char* kNoSqlite3 = "sqlite3 is not installed (apt-get install sqlite3)";

class GitSyncTest : public GitAgentFixture {
 protected:
  void SetUp() override {
    if (!HaveSqlite3()) GTEST_SKIP() << kNoSqlite3;
    GitAgentFixture::SetUp();
  }
};

TEST_F(GitSyncTest, LocalRemoteCommitsForcePushAndTag) {
  const std::string weights = RandomBytes(2 << 20, 1);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  WriteFile(work_ + "/tokenizer.json", "{\"vocab\": 32000}");
  const std::string c1 = Commit("first");
  Git({"-C", work_, "tag", "v1.0"});
  WriteGitConfig(work_, "main");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectTreeEqualsCheckout(*repo_, work_, Served());

  // SQLite: the commit, its tree, each file's blob and whether it is a Git
  // LFS pointer (whose oid is the file's sha256), as provenance.
  EXPECT_EQ(Sql("SELECT json_extract(provenance, '$.commit') || ' ' || "
                "json_extract(provenance, '$.tree') FROM revisions"),
            c1 + " " + Rev("HEAD^{tree}"));
  EXPECT_EQ(Sql("SELECT json_extract(provenance, '$.blob') || ' ' || "
                "ifnull(json_extract(provenance, '$.lfs'), '-') FROM files "
                "WHERE path = 'config.json'"),
            Rev("HEAD:config.json") + " -");
  EXPECT_EQ(Sql("SELECT json_extract(provenance, '$.blob') || ' ' || "
                "json_extract(provenance, '$.lfs') || ' ' || sha256 FROM files "
                "WHERE path = 'model.safetensors'"),
            Rev("HEAD:model.safetensors") + " true " + Sha256Hex(weights));
  // The LFS object got its xxh3 once downloaded.
  EXPECT_EQ(Sql("SELECT length(xxh3_128) FROM objects WHERE sha256 = '" + Sha256Hex(weights) + "'"),
            "32");

  // Nothing changed: up to date.
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("up to date"), std::string::npos) << r.err;

  // Only the config changes: the weights are reused, not read again.
  WriteFile(work_ + "/config.json", "{\"layers\": 3}");
  const std::string c2 = Commit("second");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c2);
  ExpectTreeEqualsCheckout(*repo_, work_, Served());
  EXPECT_EQ(Sql("SELECT bytes_downloaded FROM sync_runs ORDER BY id DESC LIMIT 1"),
            std::to_string(std::string("{\"layers\": 3}").size()));

  // History rewritten: main goes back to the first commit.
  Git({"-C", work_, "reset", "-q", "--hard", c1});
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectTreeEqualsCheckout(*repo_, work_, Served());

  // A tag as the ref; status names the revision.
  WriteFile(work_ + "/config.json", "{\"layers\": 4}");
  Commit("third");
  WriteGitConfig(work_, "v1.0");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("active revision: " + c1), std::string::npos) << st.out;
  EXPECT_NE(
      st.out.find("git:             " + work_ + " ref v1.0 (tree " + Rev(c1 + "^{tree}") + ")"),
      std::string::npos)
      << st.out;
  st = Status({"--json"});
  EXPECT_NE(st.out.find("\"origin\":{\"kind\":\"git\",\"git\":\"" + work_ + "\",\"ref\":\"v1.0\"}"),
            std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("\"tree\": \"" + Rev(c1 + "^{tree}") + "\""), std::string::npos) << st.out;
}

TEST_F(GitSyncTest, LocalFailuresSayWhichAndKeepTheServedTree) {
  WriteFile(work_ + "/model.safetensors", RandomBytes(100000, 2));
  WriteFile(work_ + "/config.json", "{}");
  Commit("first");
  WriteGitConfig(work_, "main");
  ASSERT_EQ(Once().exit_code, 0);

  WriteGitConfig(work_, "no-such-branch");
  ExpectFailedRunKeepsServedTree("has no ref");

  WriteGitConfig(work_, "main");
  const std::string weights = RandomBytes(100000, 3);
  WriteFile(work_ + "/model.safetensors", weights);
  Commit("second");
  ASSERT_EQ(::unlink(repo_->LfsObjectPath(weights).c_str()), 0);
  ExpectFailedRunKeepsServedTree("missing from the local remote's LFS store");

  WriteGitConfig(tmp_.Sub("moved-away"), "main");
  ExpectFailedRunKeepsServedTree("connect to git remote");
}

// The same over git's smart HTTP, with LFS behind a batch API server.
class GitHttpSyncTest : public GitHttpAgentFixture {
 protected:
  void SetUp() override {
    if (!HaveSqlite3()) GTEST_SKIP() << kNoSqlite3;
    GitHttpAgentFixture::SetUp();
  }
  // What `git clone` with git-lfs checks out from the served remote.
  std::string Checkout() {
    std::string dir = tmp_.Sub("checkout");
    std::filesystem::remove_all(dir);
    Git({"clone", "-q", remote_, dir});
    Git({"-C", dir, "lfs", "install", "--local"});
    Git({"-C", dir, "lfs", "pull"});
    return dir;
  }
  std::vector<std::string> LfsRequestsSince(size_t n) {
    std::vector<std::string> all = lfs_.requests();
    return std::vector<std::string>(all.begin() + static_cast<long>(std::min(n, all.size())),
                                    all.end());
  }
};

TEST_F(GitHttpSyncTest, SyncsOverSmartHttpPollsCheaplyAndReusesLfsObjects) {
  const std::string a = RandomBytes(1 << 20, 4), b = RandomBytes(1 << 20, 5);
  WriteFile(work_ + "/model-1.safetensors", a);
  WriteFile(work_ + "/model-2.safetensors", b);
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  const std::string c1 = Commit("first");
  Serve({a, b});
  WriteGitConfig(remote_, "main");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectTreeEqualsCheckout(*repo_, Checkout(), Served());

  // An unchanged ref: one ref listing, no pack negotiation, no LFS request.
  size_t lfs_seen = lfs_.requests().size();
  size_t log_seen = nginx_->ReadAccessLog().size();
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("up to date"), std::string::npos) << r.err;
  std::vector<AccessLogEntry> log = nginx_->ReadAccessLog();
  for (size_t i = log_seen; i < log.size(); ++i) {
    EXPECT_EQ(log[i].method, "GET") << log[i].uri;
    EXPECT_EQ(log[i].uri, "/acme/llm-7b.git/info/refs");
  }
  EXPECT_GT(log.size(), log_seen);
  EXPECT_TRUE(LfsRequestsSince(lfs_seen).empty());

  // One weights file changes: only its object is asked for and downloaded.
  std::string b2 = b;
  b2.replace(1000, 4000, RandomBytes(4000, 6));
  WriteFile(work_ + "/model-2.safetensors", b2);
  const std::string c2 = Commit("second");
  Serve({b2});
  lfs_seen = lfs_.requests().size();
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> asked = LfsRequestsSince(lfs_seen);
  EXPECT_EQ(ServedRevision(), c2);
  ExpectTreeEqualsCheckout(*repo_, Checkout(), Served());
  ASSERT_EQ(asked.size(), 2u) << ::testing::PrintToString(asked);
  EXPECT_EQ(asked[0], "POST /acme/llm-7b.git/info/lfs/objects/batch");
  EXPECT_EQ(asked[1], "GET /objects/" + Sha256Hex(b2));

  // Force push back to the first commit: followed, everything reused.
  Git({"-C", work_, "reset", "-q", "--hard", c1});
  Serve({});
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectTreeEqualsCheckout(*repo_, Checkout(), Served());
  EXPECT_EQ(Sql("SELECT bytes_downloaded FROM sync_runs ORDER BY id DESC LIMIT 1"), "0");
}

TEST_F(GitHttpSyncTest, FailuresSayWhichAndKeepTheServedTree) {
  WriteFile(work_ + "/model.safetensors", RandomBytes(200000, 7));
  WriteFile(work_ + "/config.json", "{}");
  Commit("first");
  Serve({ReadFile(work_ + "/model.safetensors")});
  lfs_.RequireAuthorization("Bearer t0ken");
  WriteGitConfig(remote_, "main", "authorization = \"Bearer t0ken\"\n", kNoRetries);
  ASSERT_EQ(Once().exit_code, 0);

  const std::string weights = RandomBytes(200000, 8);
  WriteFile(work_ + "/model.safetensors", weights);
  const std::string c2 = Commit("second");
  Serve({weights});
  const std::string oid = Sha256Hex(weights);

  WriteGitConfig(remote_, "main", "", kNoRetries);  // no authorization
  ExpectFailedRunKeepsServedTree("HTTP 401");
  WriteGitConfig(remote_, "main", "authorization = \"Bearer t0ken\"\n", kNoRetries);
  lfs_.ServeWrongBytes(oid);
  ExpectFailedRunKeepsServedTree("sha256");
  lfs_.MissingOnDownload(oid);
  ExpectFailedRunKeepsServedTree("missing on the LFS server (HTTP 404");
  lfs_.MissingInBatch(oid);
  ExpectFailedRunKeepsServedTree("missing on the LFS server, error 404");
  lfs_.FailBatch(503);
  ExpectFailedRunKeepsServedTree("HTTP 503");
  WriteGitConfig(remote_, "no-such-branch", "authorization = \"Bearer t0ken\"\n", kNoRetries);
  ExpectFailedRunKeepsServedTree("has no ref");
  WriteGitConfig("http://127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "/acme/llm-7b.git",
                 "main", "", kNoRetries);
  ExpectFailedRunKeepsServedTree("connect to git remote");
  // The token is never logged or recorded.
  EXPECT_EQ(Sql("SELECT count(*) FROM sync_runs WHERE error LIKE '%t0ken%'"), "0");
  EXPECT_EQ(Status({"--json"}).out.find("t0ken"), std::string::npos);
}

TEST_F(GitHttpSyncTest, LargeLfsObjectsComeInChunksOverSeveralConnections) {
  const std::string weights = RandomBytes(20 << 20, 13);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{}");
  const std::string c1 = Commit("first");
  Serve({weights});
  WriteGitConfig(remote_, "main", "", "connections_per_file = 4\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectTreeEqualsCheckout(*repo_, work_, Served());
  // Five 4 MiB chunks, each a ranged GET of the object the batch API pointed to.
  int ranged = 0;
  for (const std::string& q : lfs_.requests()) {
    ranged += q.rfind("GET /objects/" + Sha256Hex(weights) + " Range: bytes=", 0) == 0;
  }
  EXPECT_EQ(ranged, 5) << ::testing::PrintToString(lfs_.requests());
}

TEST_F(GitHttpSyncTest, DroppedLfsDownloadResumesWithARange) {
  const std::string weights = RandomBytes(3 << 20, 9);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{}");
  const std::string c1 = Commit("first");
  Serve({weights});
  WriteGitConfig(remote_, "main");
  lfs_.CutOffNextDownload(Sha256Hex(weights), 1 << 20);
  // The run retries after a pause and resumes where the connection broke.
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("download failed; resuming after a pause"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  EXPECT_TRUE(ReadFile(Served() + "/model.safetensors") == weights);
  std::vector<std::string> asked = lfs_.requests();
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.back(), "GET /objects/" + Sha256Hex(weights) + " Range: bytes=1048576-")
      << ::testing::PrintToString(asked);
}

}  // namespace
}  // namespace sync_agent::testing
