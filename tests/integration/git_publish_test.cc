// `sync-agent publish --git` from a local git remote with Git LFS, then a
// node syncing it through nginx: the mirrored tree equals what git and
// git-lfs checked out, byte for byte, and the revision is the commit id.
#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/git_repo.h"

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

}  // namespace
}  // namespace sync_agent::testing
