// MaterializeGitRevision on a local-path remote built with the real git and
// git-lfs tools: the result must equal what `git lfs` checked out, byte for
// byte; missing and damaged LFS objects fail with a message and leave nothing.
#include "common/git/git_materialize.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/git_repo.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::ProcessResult;
using testing::ReadFile;
using testing::RunProcess;
using testing::WriteFile;

class GitMaterializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::GitLfsAvailable()) {
      GTEST_SKIP() << "git-lfs is not installed (apt-get install git-lfs)";
    }
    work_ = tmp_.Sub("work");
    repo_ = std::make_unique<testing::GitWorkRepo>(work_, tmp_.path(), "*.safetensors");
  }
  ProcessResult Git(const std::vector<std::string>& args) { return repo_->Git(args); }
  std::string Commit(const std::string& message) { return repo_->Commit(message); }
  Result<GitMaterializeResult> Materialize(const std::string& ref, const std::string& out) {
    GitMaterializeOptions o;
    o.cache_dir = tmp_.Sub("cache.git");
    return MaterializeGitRevision(Env::Default(), work_, ref, out, o);
  }
  std::string LfsObjectPath(const std::string& content) { return repo_->LfsObjectPath(content); }

  testing::TempDir tmp_;
  std::string work_;
  std::unique_ptr<testing::GitWorkRepo> repo_;
};

TEST_F(GitMaterializeTest, EqualsWhatGitLfsChecksOut) {
  const std::string weights = testing::RandomBytes(3 << 20, 1);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/shards/part-2.safetensors", testing::RandomBytes(100000, 2));
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  WriteFile(work_ + "/run.sh", "#!/bin/sh\n", 0755);
  std::string c1 = Commit("first");
  ASSERT_TRUE(Env::Default()->Stat(LfsObjectPath(weights)).ok()) << "git lfs did not store it";

  auto r = Materialize("main", tmp_.Sub("out"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit, c1);
  EXPECT_EQ(r->lfs_files, 2u);
  EXPECT_EQ(r->files, 5u);  // with .gitattributes, mirrored as it is
  for (const std::string& f :
       {std::string("model.safetensors"), std::string("shards/part-2.safetensors"),
        std::string("config.json"), std::string("run.sh"), std::string(".gitattributes")}) {
    EXPECT_TRUE(ReadFile(tmp_.Sub("out/" + f)) == ReadFile(work_ + "/" + f)) << f;
  }
  struct stat st;
  ASSERT_EQ(::stat(tmp_.Sub("out/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  // The pointer, not the content, is what git stores.
  EXPECT_NE(Git({"-C", work_, "cat-file", "-p", "HEAD:model.safetensors"}).out.find("oid sha256:"),
            std::string::npos);
}

TEST_F(GitMaterializeTest, MissingOrDamagedLfsObjectsFailAndLeaveNothing) {
  const std::string weights = testing::RandomBytes(200000, 3);
  WriteFile(work_ + "/model.safetensors", weights);
  Commit("first");
  const std::string object = LfsObjectPath(weights);

  // Damaged in the store: same size, other bytes.
  std::string damaged = weights;
  damaged[1000] ^= 0x01;
  ::chmod(object.c_str(), 0644);
  WriteFile(object, damaged);
  auto bad = Materialize("main", tmp_.Sub("out1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption) << bad.status().ToString();
  EXPECT_NE(bad.status().ToString().find(Sha256Hex(weights)), std::string::npos);
  EXPECT_FALSE(Env::Default()->Stat(tmp_.Sub("out1")).ok()) << "a partial directory was left";

  // Gone from the store.
  ASSERT_EQ(::unlink(object.c_str()), 0);
  auto missing = Materialize("main", tmp_.Sub("out2"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().ToString().find("git lfs fetch"), std::string::npos);
  EXPECT_FALSE(Env::Default()->Stat(tmp_.Sub("out2")).ok());

  // A ref that does not exist names itself.
  auto no_ref = Materialize("release", tmp_.Sub("out3"));
  ASSERT_FALSE(no_ref.ok());
  EXPECT_NE(no_ref.status().ToString().find("release"), std::string::npos);
}

}  // namespace
}  // namespace sync_agent
