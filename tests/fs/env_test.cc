#include "common/fs/env.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"
#include "tests/support/tree_util.h"

namespace sync_agent {
namespace {

TEST(EnvTest, WriteFileAtomicallyReplacesContentAndLeavesNoTemporaries) {
  testing::TempDir tmp;
  Env* env = Env::Default();
  std::string path = tmp.Sub("file");
  ASSERT_TRUE(WriteFileAtomically(env, path, "one", 0644).ok());
  ASSERT_TRUE(WriteFileAtomically(env, path, "two", 0640).ok());
  EXPECT_EQ(testing::ReadFile(path), "two");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  auto entries = env->ListDir(tmp.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u);
}

TEST(EnvTest, FailedAtomicWriteKeepsTheOldContent) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  std::string path = tmp.Sub("file");
  ASSERT_TRUE(WriteFileAtomically(&env, path, "old", 0644).ok());
  env.FailWritesAfter(tmp.path(), 2);
  Status s = WriteFileAtomically(&env, path, "new content", 0644);
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_EQ(testing::ReadFile(path), "old");
  env.ClearFaults();
  env.FailSyncOf(tmp.path());
  EXPECT_FALSE(WriteFileAtomically(&env, path, "new content", 0644).ok());
  EXPECT_EQ(testing::ReadFile(path), "old");
  auto entries = Env::Default()->ListDir(tmp.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u) << "temporary file left behind";
}

TEST(EnvTest, CreateDirsAndRemoveTree) {
  testing::TempDir tmp;
  Env* env = Env::Default();
  std::string deep = tmp.Sub("a/b/c");
  ASSERT_TRUE(CreateDirs(env, deep).ok());
  testing::WriteFile(deep + "/f", "x", 0444);
  ASSERT_TRUE(env->Symlink("/etc", tmp.Sub("a/link")).ok());
  ASSERT_TRUE(RemoveTree(env, tmp.Sub("a")).ok());
  EXPECT_FALSE(testing::PathExists(tmp.Sub("a")));
  EXPECT_TRUE(testing::PathExists("/etc/hostname") || testing::PathExists("/etc"))
      << "RemoveTree must not follow symlinks";
  EXPECT_TRUE(RemoveTree(env, tmp.Sub("missing")).ok());
  testing::WriteFile(tmp.Sub("file"), "x");
  EXPECT_FALSE(CreateDirs(env, tmp.Sub("file/sub")).ok());
}

TEST(EnvTest, ErrorsNameThePath) {
  Env* env = Env::Default();
  auto f = env->NewSequentialFile("/nonexistent/dir/file");
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(f.status().IsNotFound());
  EXPECT_NE(f.status().message().find("/nonexistent/dir/file"), std::string::npos);
}

TEST(EnvTest, ReadFileToStringEnforcesItsLimit) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("f"), std::string(100, 'x'));
  EXPECT_TRUE(ReadFileToString(Env::Default(), tmp.Sub("f"), 100).ok());
  auto r = ReadFileToString(Env::Default(), tmp.Sub("f"), 99);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than 99 bytes"), std::string::npos);
}

TEST(PathTest, JoinDirBase) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "b/c"), "/a/b/c");
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(BaseName("/a/b/"), "b");
}

// Below a trusted root, every component is opened with O_NOFOLLOW: a symlink
// planted at any of them is refused, named, and nothing reaches its target.
class BelowRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::MakeDirs(root_);
    ASSERT_EQ(::symlink(sentinel_.dir().c_str(), (root_ + "/planted").c_str()), 0);
    ASSERT_EQ(::symlink(sentinel_.file().c_str(), (root_ + "/planted-file").c_str()), 0);
  }
  // The error names the planted link, says what it is and that nothing happened.
  void ExpectRefused(const Status& s, const std::string& link) {
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(root_ + "/" + link), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("is a symlink where sync-agent expects its own"), std::string::npos)
        << s.ToString();
    EXPECT_NE(s.message().find("nothing was written or removed"), std::string::npos)
        << s.ToString();
    EXPECT_EQ(sentinel_.Changes(), "");
  }
  RootedPath At(const std::string& rel) const { return {root_, rel}; }

  testing::TempDir tmp_;
  testing::Sentinel sentinel_{tmp_.Sub("outside")};
  std::string root_ = tmp_.Sub("root");
  Env* env_ = Env::Default();
};

TEST_F(BelowRootTest, EveryOperationRefusesAPlantedDirectoryLink) {
  ExpectRefused(env_->NewWritableFileAt(At("planted/new"), 0644, WriteOpen::kTruncate).status(),
                "planted");
  ExpectRefused(env_->NewWritableFileAt(At("planted/keep.txt"), 0644, WriteOpen::kAppend).status(),
                "planted");
  ExpectRefused(env_->NewRandomWriteFileAt(At("planted/keep.txt"), 0644).status(), "planted");
  ExpectRefused(env_->CreateDirsAt(At("planted/a/b"), 0755), "planted");
  ExpectRefused(env_->RemoveFileAt(At("planted/keep.txt")), "planted");
  ExpectRefused(env_->RemoveTreeAt(At("planted/llm-7b")), "planted");
  ExpectRefused(env_->ListDirAt(At("planted")).status(), "planted");
  ExpectRefused(env_->LstatAt(At("planted/keep.txt")).status(), "planted");
  ExpectRefused(env_->ChmodAt(At("planted/keep.txt"), 0444), "planted");
  ExpectRefused(env_->TruncateAt(At("planted/keep.txt"), 0), "planted");
  ExpectRefused(env_->SymlinkAt("x", At("planted/new-link")), "planted");
  ExpectRefused(env_->SyncDirAt(At("planted")), "planted");
  testing::WriteFile(root_ + "/mine", "mine");
  ExpectRefused(env_->RenameAt(At("mine"), At("planted/mine")), "planted");
  ExpectRefused(env_->LinkAt(At("mine"), At("planted/mine")).status(), "planted");
  EXPECT_EQ(testing::ReadFile(root_ + "/mine"), "mine");
}

TEST_F(BelowRootTest, FilesAreOpenedWithoutFollowingTheirLastComponent) {
  for (WriteOpen how : {WriteOpen::kTruncate, WriteOpen::kAppend, WriteOpen::kCreateNew}) {
    auto f = env_->NewWritableFileAt(At("planted-file"), 0600, how);
    if (how == WriteOpen::kCreateNew) {
      EXPECT_FALSE(f.ok());
      EXPECT_EQ(sentinel_.Changes(), "");
    } else {
      ExpectRefused(f.status(), "planted-file");
    }
  }
  ExpectRefused(env_->NewRandomWriteFileAt(At("planted-file"), 0600).status(), "planted-file");
  ExpectRefused(env_->ChmodAt(At("planted-file"), 0444), "planted-file");
  ExpectRefused(env_->TruncateAt(At("planted-file"), 0), "planted-file");
  ExpectRefused(env_->LinkAt(At("planted-file"), At("linked")).status(), "planted-file");
  EXPECT_FALSE(testing::PathExists(root_ + "/linked"));
}

TEST_F(BelowRootTest, AFileWithAnotherHardLinkIsNotWritten) {
  std::string theirs = tmp_.Sub("theirs");
  testing::WriteFile(theirs, "theirs", 0600);
  ASSERT_EQ(::link(theirs.c_str(), (root_ + "/hard").c_str()), 0);
  Status s = env_->NewWritableFileAt(At("hard"), 0600, WriteOpen::kTruncate).status();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("has other hard links"), std::string::npos) << s.ToString();
  EXPECT_EQ(testing::ReadFile(theirs), "theirs");
}

TEST_F(BelowRootTest, RemoveTreeRemovesLinksInsideWithoutCrossingThem) {
  testing::MakeDirs(root_ + "/tree/a/b");
  testing::WriteFile(root_ + "/tree/a/b/f", "x", 0444);
  ASSERT_EQ(::symlink(sentinel_.dir().c_str(), (root_ + "/tree/a/to-dir").c_str()), 0);
  ASSERT_EQ(::symlink(sentinel_.file().c_str(), (root_ + "/tree/to-file").c_str()), 0);
  ASSERT_TRUE(env_->RemoveTreeAt(At("tree")).ok());
  EXPECT_FALSE(testing::PathExists(root_ + "/tree"));
  EXPECT_EQ(sentinel_.Changes(), "");
  EXPECT_TRUE(env_->RemoveTreeAt(At("tree")).ok()) << "a missing tree is not an error";
  // A link as the tree itself is removed, not followed.
  ASSERT_TRUE(env_->RemoveTreeAt(At("planted")).ok());
  EXPECT_FALSE(testing::PathExists(root_ + "/planted"));
  EXPECT_EQ(sentinel_.Changes(), "");
}

TEST_F(BelowRootTest, TheRootItselfMayBeASymlinkAndAFileInTheWayIsRefused) {
  std::string via = tmp_.Sub("via-link");
  ASSERT_EQ(::symlink(root_.c_str(), via.c_str()), 0);
  RootedPath p{via, "a/b/file"};
  ASSERT_TRUE(env_->CreateDirsAt(p.Parent(), 0755).ok());
  auto f = env_->NewWritableFileAt(p, 0644, WriteOpen::kCreateNew);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append("data", 4).ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(testing::ReadFile(root_ + "/a/b/file"), "data");
  auto info = env_->LstatAt(p);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 4u);
  EXPECT_EQ(env_->LinkAt(p, {via, "a/hard"}).value(), LinkOutcome::kLinked);
  ASSERT_TRUE(env_->RenameAt({via, "a/hard"}, {via, "a/b/renamed"}).ok());
  EXPECT_EQ(testing::ReadFile(root_ + "/a/b/renamed"), "data");

  Status s = env_->CreateDirsAt({via, "a/b/file/sub"}, 0755);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("is not a directory where sync-agent expects its own directory"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(env_->CreateDirsAt({via, "a/../b"}, 0755).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(env_->LstatAt({via, "a/missing"}).status().IsNotFound());
}

}  // namespace
}  // namespace sync_agent
