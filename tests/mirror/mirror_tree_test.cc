// MirrorTree on real files in a temporary directory: planted symlinks below
// the mirror root are refused, the served link's ownership check is exact,
// and the hard-link limit renews an object instead of copying silently.
#include "common/mirror/mirror_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash/content_hasher.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"
#include "tests/support/tree_util.h"

namespace sync_agent {
namespace {

constexpr const char* kRepo = "acme/llm-7b";

class MirrorTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::MakeDirs(mirror_);
    testing::MakeDirs(state_);
  }
  // One object in <state>/objects and a manifest listing it under each path.
  Manifest OneObject(const std::string& revision, const std::vector<std::string>& paths) {
    sha_ = Sha256Hex(content_);
    testing::WriteFile(ObjectFile(), content_, 0444);
    Manifest m;
    m.repo = kRepo;
    m.revision = revision;
    for (const auto& p : paths) {
      ManifestEntry e;
      e.path = p;
      e.size = content_.size();
      e.sha256 = sha_;
      m.files.push_back(e);
    }
    return m;
  }
  std::string ObjectFile() const { return state_ + "/objects/" + sha_.substr(0, 2) + "/" + sha_; }
  std::function<RootedPath(const std::string&)> Objects() const {
    return [this](const std::string& sha) {
      return RootedPath{state_, "objects/" + sha.substr(0, 2) + "/" + sha};
    };
  }
  static uint64_t Inode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  }

  testing::TempDir tmp_;
  testing::Sentinel sentinel_{tmp_.Sub("outside")};
  std::string mirror_ = tmp_.Sub("mirror");
  std::string state_ = tmp_.Sub("state");
  std::string content_ = "weights";
  std::string sha_;
  testing::FaultEnv env_;
};

TEST_F(MirrorTreeTest, TheServedLinkIsOursOnlyInExactlyTheFormSwapWrites) {
  MirrorTree tree(&env_, mirror_);
  Manifest m = OneObject("rev1", {"a.txt"});
  AssembleStats stats;
  ASSERT_TRUE(tree.Assemble(kRepo, m, Objects(), &stats).ok());
  ASSERT_TRUE(tree.Swap(kRepo, "rev1").ok());
  EXPECT_EQ(tree.ActiveRevision(kRepo).value(), "rev1");

  std::string link = mirror_ + "/" + kRepo;
  // Starts with the prefix sync-agent writes, then climbs out of it.
  for (const std::string& target :
       {std::string("../.sync-agent/trees/acme/llm-7b/../../../../outside"),
        std::string("../.sync-agent/trees/acme/llm-7b/rev1/../../../../../outside"),
        std::string("../.sync-agent/trees/acme/llm-7b/"), std::string("/etc")}) {
    ASSERT_EQ(::unlink(link.c_str()), 0);
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    auto active = tree.ActiveRevision(kRepo);
    ASSERT_FALSE(active.ok()) << target << " was taken for ours";
    EXPECT_NE(active.status().message().find(link), std::string::npos)
        << active.status().ToString();
    EXPECT_NE(active.status().message().find("which sync-agent did not create"), std::string::npos)
        << active.status().ToString();
  }
}

TEST_F(MirrorTreeTest, ALinkPlantedAtTheOrgDirectoryIsRefusedAndNotFollowed) {
  MirrorTree tree(&env_, mirror_);
  Manifest m = OneObject("rev1", {"a.txt"});
  AssembleStats stats;
  ASSERT_TRUE(tree.Assemble(kRepo, m, Objects(), &stats).ok());
  // <mirror>/acme -> outside, which holds a link of the name sync-agent writes.
  ASSERT_EQ(::symlink(sentinel_.dir().c_str(), (mirror_ + "/acme").c_str()), 0);
  Status s = tree.Swap(kRepo, "rev1");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(mirror_ + "/acme: is a symlink where sync-agent expects its own "
                                       "directory"),
            std::string::npos)
      << s.ToString();
  EXPECT_FALSE(tree.ActiveRevision(kRepo).ok());
  EXPECT_FALSE(tree.ActiveRevision(kRepo).status().IsNotFound())
      << "a planted link must not read as 'nothing served yet'";
  EXPECT_EQ(sentinel_.Changes(), "");
}

TEST_F(MirrorTreeTest, LinksPlantedInTheHiddenTreeAreRefusedAndNothingOutsideIsTouched) {
  for (const std::string& planted :
       {std::string(".sync-agent"), std::string(".sync-agent/trees/acme"),
        std::string(".sync-agent/trees/acme/llm-7b"), std::string(".sync-agent/staging/acme"),
        std::string(".sync-agent/staging/acme/llm-7b")}) {
    SCOPED_TRACE(planted);
    ASSERT_TRUE(Env::Default()->RemoveTreeAt({mirror_, ".sync-agent"}).ok());
    testing::MakeDirs(DirName(mirror_ + "/" + planted));
    ASSERT_EQ(::symlink(sentinel_.dir().c_str(), (mirror_ + "/" + planted).c_str()), 0);
    MirrorTree tree(&env_, mirror_);
    Manifest m = OneObject("rev1", {"a.txt", "sub/b.txt"});
    AssembleStats stats;
    Status clean = tree.CleanStaging(kRepo);
    Status s = tree.Assemble(kRepo, m, Objects(), &stats);
    Status rm = tree.RemoveTree(kRepo, "rev1");
    auto listed = tree.ListTrees(kRepo);
    if (planted == ".sync-agent/staging/acme/llm-7b") {
      // The link is the removed thing itself: removed, never crossed.
      EXPECT_TRUE(clean.ok()) << clean.ToString();
      EXPECT_TRUE(s.ok()) << s.ToString();
    } else {
      EXPECT_FALSE(s.ok());
      EXPECT_NE(s.message().find(mirror_ + "/" + planted + ": is a symlink"), std::string::npos)
          << s.ToString();
      EXPECT_NE(s.message().find("nothing was written or removed through it"), std::string::npos)
          << s.ToString();
      if (planted.find("staging") == std::string::npos && planted != ".sync-agent") {
        EXPECT_FALSE(listed.ok() && rm.ok()) << "trees under a planted link";
      } else {
        EXPECT_FALSE(clean.ok()) << "staging below a planted link was cleaned";
      }
    }
    EXPECT_EQ(sentinel_.Changes(), "");
  }
}

TEST_F(MirrorTreeTest, AnObjectAtTheHardLinkLimitIsRenewedAndTheRestLinkToTheCopy) {
  MirrorTree tree(&env_, mirror_);
  Manifest m = OneObject("rev1", {"a.bin", "b.bin", "c.bin"});
  uint64_t old_inode = Inode(ObjectFile());
  // EMLINK once, as ext4 gives past 65,000 links to one inode.
  env_.FailLinksOf("/objects/", 1);
  AssembleStats stats;
  Status s = tree.Assemble(kRepo, m, Objects(), &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(stats.renewed, 1u);
  EXPECT_EQ(stats.linked, 3u);
  EXPECT_EQ(stats.copied, 0u);
  uint64_t new_inode = Inode(ObjectFile());
  EXPECT_NE(new_inode, old_inode) << "the object was not replaced by a fresh copy";
  EXPECT_EQ(testing::ReadFile(ObjectFile()), content_);
  struct stat st;
  ASSERT_EQ(::stat(ObjectFile().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(st.st_nlink, 4u) << "the object and the three files share the new inode";
  for (const char* name : {"a.bin", "b.bin", "c.bin"}) {
    std::string file = mirror_ + "/.sync-agent/trees/" + kRepo + "/rev1/" + name;
    EXPECT_EQ(Inode(file), new_inode) << name;
    EXPECT_EQ(testing::ReadFile(file), content_);
  }
  auto entries = Env::Default()->ListDir(DirName(ObjectFile()));
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 1u) << "the renewal left a temporary file beside the object";
}

}  // namespace
}  // namespace sync_agent
