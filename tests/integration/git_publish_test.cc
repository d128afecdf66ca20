// `sync-agent publish --git` from a local git remote with Git LFS, then a
// node syncing it through nginx: the mirrored tree equals what git and
// git-lfs checked out, byte for byte, and the revision is the commit id.
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/git_agent_fixture.h"

namespace sync_agent::testing {
namespace {

class GitPublishTest : public GitAgentFixture {
 protected:
  ProcessResult PublishGit(const std::string& ref) {
    return RunAgent({"publish", "--git", work_, "--ref", ref, "--repo", kRepo, "--out", pub_});
  }
  void ExpectServedEqualsCheckout() { ExpectTreeEqualsCheckout(*repo_, work_, Served()); }
};

TEST_F(GitPublishTest, PublishedFromGitAndSyncedThroughNginx) {
  WriteFile(work_ + "/model.safetensors", RandomBytes(2 << 20, 1));
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  std::string c1 = Commit("first");
  ProcessResult p = PublishGit("main");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("revision " + c1), std::string::npos) << p.out;
  // The manifest says what each file was in git.
  std::string manifest = ReadFile(pub_ + "/" + kRepo + "/revisions/" + c1 + ".json");
  EXPECT_NE(manifest.find("\"provenance\": {\"commit\": \"" + c1 +
                          "\", \"kind\": \"git\", \"tree\": \"" + Rev("HEAD^{tree}") + "\"}"),
            std::string::npos)
      << manifest;
  EXPECT_NE(manifest.find("\"provenance\": {\"blob\": \"" + Rev("HEAD:model.safetensors") +
                          "\", \"lfs\": \"true\"}"),
            std::string::npos)
      << manifest;

  std::string url = StartNginx();
  if (url.empty()) return;
  WriteConfig({url});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectServedEqualsCheckout();

  // A second commit changes a few tensors: the node gets it by delta.
  std::string weights = ReadFile(work_ + "/model.safetensors");
  weights.replace(100000, 5000, RandomBytes(5000, 9));
  WriteFile(work_ + "/model.safetensors", weights);
  std::string c2 = Commit("second");
  p = PublishGit("main");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c2);
  ExpectServedEqualsCheckout();
  EXPECT_NE(r.err.find("method=delta"), std::string::npos) << r.err;
}

TEST_F(GitPublishTest, StagingLeftByAKilledPublishIsRemoved) {
  WriteFile(work_ + "/config.json", "{}");
  WriteFile(work_ + "/model.safetensors", RandomBytes(1000, 7));
  Commit("first");
  // A publish killed while materializing left its staging directory; one of
  // a publish still running (this process) must stay.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string work = tmp_.Sub(".pub.git-work");
  const std::string left = work + "/staging." + std::to_string(dead);
  const std::string running = work + "/staging." + std::to_string(::getpid());
  WriteFile(left + "/model.safetensors", "half");
  WriteFile(running + "/x", "busy");
  ProcessResult p = PublishGit("main");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(::access(left.c_str(), F_OK), -1) << "the dead publish's staging is still there";
  EXPECT_EQ(ReadFile(running + "/x"), "busy");
  // Nothing of this publish's own staging stays either.
  auto entries = Env::Default()->ListDir(work);
  ASSERT_TRUE(entries.ok());
  for (const auto& e : *entries) {
    EXPECT_TRUE(e.name == "cache" || e.name == "staging." + std::to_string(::getpid())) << e.name;
  }
}

TEST_F(GitPublishTest, AMissingLfsObjectFailsThePublishAndKeepsTheOldRevision) {
  std::string weights = RandomBytes(300000, 2);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{}");
  Commit("first");
  ASSERT_EQ(PublishGit("main").exit_code, 0);
  std::string latest = ReadFile(pub_ + "/" + kRepo + "/latest");
  WriteFile(work_ + "/model.safetensors", RandomBytes(300000, 3));
  Commit("second");
  std::string object = repo_->LfsObjectPath(ReadFile(work_ + "/model.safetensors"));
  ASSERT_EQ(::unlink(object.c_str()), 0);
  ProcessResult p = PublishGit("main");
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("missing from the local remote's LFS store"), std::string::npos) << p.err;
  EXPECT_EQ(ReadFile(pub_ + "/" + kRepo + "/latest"), latest) << "the published pointer moved";
  ProcessResult bad_ref = PublishGit("no-such-branch");
  EXPECT_EQ(bad_ref.exit_code, 1);
  EXPECT_NE(bad_ref.err.find("has no ref \"no-such-branch\""), std::string::npos) << bad_ref.err;
}

// The same over git's smart HTTP (git-http-backend behind nginx and
// fcgiwrap) with the LFS objects behind the batch API of a test LFS server
// that nginx proxies "<repo>.git/info/lfs/" to.
class GitHttpPublishTest : public GitHttpAgentFixture {
 protected:
  void ExpectServedEqualsCheckout() { ExpectTreeEqualsCheckout(*repo_, work_, Served()); }
  ProcessResult PublishHttp(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"publish", "--git", remote_, "--ref", "main",
                                     "--repo",  kRepo,   "--out", pub_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunAgent(args);
  }
};

TEST_F(GitHttpPublishTest, PublishedOverSmartHttpWithLfsBatchAndSynced) {
  std::string weights = RandomBytes(1 << 20, 4);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/tokenizer.json", "{\"v\": 1}");
  std::string c1 = Commit("first");
  Serve({weights});
  ProcessResult p = PublishHttp();
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("revision " + c1), std::string::npos) << p.out;
  bool batched = false;
  for (const std::string& r : lfs_.requests()) {
    if (r == "POST /acme/llm-7b.git/info/lfs/objects/batch") batched = true;
  }
  EXPECT_TRUE(batched);
  WriteConfig({url_});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectServedEqualsCheckout();
}

TEST_F(GitHttpPublishTest, LfsAndRemoteFailuresSayWhichAndPublishNothing) {
  std::string weights = RandomBytes(200000, 5);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{}");
  Commit("first");
  Serve({weights});
  std::string oid = Sha256Hex(weights);
  auto expect_failure = [&](const std::string& what, const std::vector<std::string>& extra = {}) {
    ProcessResult p = PublishHttp(extra);
    EXPECT_EQ(p.exit_code, 1) << p.err;
    EXPECT_NE(p.err.find(what), std::string::npos) << p.err;
    EXPECT_EQ(ReadFile(pub_ + "/" + kRepo + "/latest"), "") << "something was published";
  };
  lfs_.RequireAuthorization("Bearer t0ken");
  expect_failure("HTTP 401");
  lfs_.ServeWrongBytes(oid);
  expect_failure("sha256", {"--lfs-authorization", "Bearer t0ken"});
  lfs_.MissingInBatch(oid);
  expect_failure("missing on the LFS server", {"--lfs-authorization", "Bearer t0ken"});
  lfs_.FailBatch(503);
  expect_failure("HTTP 503", {"--lfs-authorization", "Bearer t0ken"});

  remote_ = "http://127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "/acme/llm-7b.git";
  expect_failure("network error: git " + remote_ + " main: connect to git remote");
}

}  // namespace
}  // namespace sync_agent::testing
