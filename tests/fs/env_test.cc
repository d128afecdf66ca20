#include "common/fs/env.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

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

}  // namespace
}  // namespace sync_agent
