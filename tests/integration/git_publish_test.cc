// `sync-agent publish --git` from a local git remote with Git LFS, then a
// node syncing it through nginx: the mirrored tree equals what git and
// git-lfs checked out, byte for byte, and the revision is the commit id.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/git_repo.h"
#include "tests/support/lfs_server.h"
#include "tests/support/nginx_server.h"

namespace sync_agent::testing {
namespace {

class GitPublishTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (!GitLfsAvailable()) GTEST_SKIP() << "git-lfs is not installed (apt-get install git-lfs)";
    work_ = tmp_.Sub("git-work");
    repo_ = std::make_unique<GitWorkRepo>(work_, tmp_.path(), "*.safetensors");
  }
  ProcessResult Git(const std::vector<std::string>& args) { return repo_->Git(args); }
  std::string Commit(const std::string& message) { return repo_->Commit(message); }
  ProcessResult PublishGit(const std::string& ref) {
    return RunAgent({"publish", "--git", work_, "--ref", ref, "--repo", kRepo, "--out", pub_});
  }
  // Every tracked file of the checkout equals the served one.
  void ExpectServedEqualsCheckout() {
    std::string files = Git({"-C", work_, "ls-files"}).out;
    size_t count = 0;
    for (size_t at = 0; at < files.size();) {
      size_t nl = files.find('\n', at);
      std::string f = files.substr(at, nl - at);
      at = nl + 1;
      ++count;
      EXPECT_TRUE(ReadFile(work_ + "/" + f) == ReadFile(Served() + "/" + f)) << f;
    }
    EXPECT_GT(count, 2u);
  }
  std::string work_;
  std::unique_ptr<GitWorkRepo> repo_;
};

TEST_F(GitPublishTest, PublishedFromGitAndSyncedThroughNginx) {
  WriteFile(work_ + "/model.safetensors", RandomBytes(2 << 20, 1));
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  std::string c1 = Commit("first");
  ProcessResult p = PublishGit("main");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("revision " + c1), std::string::npos) << p.out;

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
class GitHttpPublishTest : public GitPublishTest {
 protected:
  void SetUp() override {
    GitPublishTest::SetUp();
    if (IsSkipped()) return;
    if (::access("/usr/sbin/fcgiwrap", X_OK) != 0) {
      GTEST_SKIP() << "fcgiwrap is not installed (apt-get install fcgiwrap)";
    }
    std::string error;
    fcgi_ = StartFcgiWrap(tmp_.Sub("fcgi.sock"), &error);
    ASSERT_NE(fcgi_, nullptr) << error;
    NginxServer::Options o;
    o.git_project_root = tmp_.Sub("git-root");
    o.fcgi_socket = tmp_.Sub("fcgi.sock");
    o.lfs_upstream = lfs_.url().substr(std::string("http://").size());
    MakeDirs(o.git_project_root + "/acme");
    url_ = StartNginx(o);
    remote_ = url_ + "/acme/llm-7b.git";
  }
  // Pushes the work repository's state to the served bare repository and
  // its LFS objects to the LFS server.
  void Serve(const std::vector<std::string>& lfs_contents) {
    std::string bare = tmp_.Sub("git-root/acme/llm-7b.git");
    std::filesystem::remove_all(bare);
    Git({"clone", "-q", "--bare", work_, bare});
    for (const std::string& c : lfs_contents) lfs_.Add(c);
  }
  ProcessResult PublishHttp(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"publish", "--git", remote_, "--ref", "main",
                                     "--repo", kRepo, "--out", pub_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunAgent(args);
  }

  LfsServer lfs_;
  std::unique_ptr<BackgroundProcess> fcgi_;
  std::string url_, remote_;
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
