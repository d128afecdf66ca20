// GitCache against repositories built by the real git and git-lfs command
// line tools, as local-path remotes; and the Git LFS pointer parser.
#include "common/git/git_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/hash/content_hasher.h"
#include "tests/support/git_repo.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::ProcessResult;
using testing::RunProcess;
using testing::WriteFile;

// ---- LFS pointers --------------------------------------------------------

const std::string kOid = std::string(64, 'a');

TEST(LfsPointerTest, ParsesWhatGitLfsWrites) {
  testing::TempDir tmp;
  std::string path = tmp.Sub("weights.bin");
  std::string content = testing::RandomBytes(100000, 3);
  WriteFile(path, content);
  ProcessResult r = RunProcess({"/usr/bin/git", "lfs", "pointer", "--file=" + path});
  if (r.exit_code != 0) GTEST_SKIP() << "git lfs is not installed (apt-get install git-lfs)";
  auto p = ParseLfsPointer(r.out);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(p->has_value()) << r.out;
  EXPECT_EQ((*p)->oid, Sha256Hex(content));
  EXPECT_EQ((*p)->size, content.size());
}

TEST(LfsPointerTest, OrdinaryFilesAreNotPointers) {
  for (std::string blob : {std::string(""), std::string("{\"a\": 1}\n"),
                           std::string("version 2\n"), std::string(2000, 'x')}) {
    auto p = ParseLfsPointer(blob);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(p->has_value()) << blob.substr(0, 40);
  }
  // Over 1024 bytes is content even if it starts like a pointer.
  std::string long_one = "version https://git-lfs.github.com/spec/v1\n" + std::string(1100, 'x');
  auto p = ParseLfsPointer(long_one);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
}

TEST(LfsPointerTest, BrokenPointersAreErrorsThatSayWhy) {
  const std::string v = "version https://git-lfs.github.com/spec/v1\n";
  const std::map<std::string, std::string> cases = {
      {v + "oid sha256:" + kOid + "\n", "has no size"},
      {v + "size 12\n", "has no oid"},
      {v + "oid sha256:" + std::string(63, 'a') + "\nsize 1\n", "64 lowercase hex"},
      {v + "oid md5:" + kOid + "\nsize 1\n", "is not sha256:"},
      {v + "oid sha256:" + std::string(64, 'A') + "\nsize 1\n", "64 lowercase hex"},
      {v + "oid sha256:" + kOid + "\nsize -1\n", "is not a number"},
      {v + "size 1\noid sha256:" + kOid + "\n", "out of order"},
      {v + "oid sha256:" + kOid + "\nsize 1", "newline"},
      {v + "oid sha256:" + kOid + "\nnospace\n", "key value"},
  };
  for (const auto& [blob, expect] : cases) {
    auto p = ParseLfsPointer(blob);
    ASSERT_FALSE(p.ok()) << blob;
    EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
    EXPECT_NE(p.status().ToString().find(expect), std::string::npos) << p.status().ToString();
  }
  // Extension keys sort between the others and are allowed.
  auto ok = ParseLfsPointer(v + "ext-0-foo sha256:" + kOid + "\noid sha256:" + kOid +
                            "\nsize 5\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((*ok)->size, 5u);
}

TEST(SymlinkTest, TargetsMustStayInsideTheRepository) {
  EXPECT_TRUE(SymlinkStaysInside("a/link", "b"));
  EXPECT_TRUE(SymlinkStaysInside("a/link", "../c/d"));
  EXPECT_TRUE(SymlinkStaysInside("link", "./x"));
  EXPECT_FALSE(SymlinkStaysInside("link", "../x"));
  EXPECT_FALSE(SymlinkStaysInside("a/link", "../../x"));
  EXPECT_FALSE(SymlinkStaysInside("a/link", "/etc/passwd"));
  EXPECT_FALSE(SymlinkStaysInside("a/link", ""));
  EXPECT_FALSE(SymlinkStaysInside("a/b/link", "../c/../../../x"));
}

// ---- GitCache against real repositories ----------------------------------

class GitCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = tmp_.Sub("work");
    repo_ = std::make_unique<testing::GitWorkRepo>(work_, tmp_.path());
  }
  ProcessResult Git(const std::vector<std::string>& args) { return repo_->Git(args); }
  std::string Commit(const std::string& message) { return repo_->Commit(message); }
  std::string Head() { return repo_->Head(); }
  std::unique_ptr<GitCache> Open() {
    auto cache = GitCache::Open(tmp_.Sub("cache.git"), work_);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return cache.ok() ? std::move(cache).value() : nullptr;
  }

  testing::TempDir tmp_;
  std::string work_;
  std::unique_ptr<testing::GitWorkRepo> repo_;
};

TEST_F(GitCacheTest, ResolvesFetchesAndReadsTheTreeAsGitSeesIt) {
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  WriteFile(work_ + "/weights/part-1.bin", testing::RandomBytes(300000, 1));
  WriteFile(work_ + "/run.sh", "#!/bin/sh\necho hi\n", 0755);
  WriteFile(work_ + "/.gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n");
  ASSERT_EQ(::symlink("weights/part-1.bin", (work_ + "/latest.bin").c_str()), 0);
  std::string c1 = Commit("first");
  Git({"-C", work_, "tag", "-a", "v1", "-m", "release 1"});

  auto cache = Open();
  ASSERT_NE(cache, nullptr);
  auto resolved = cache->ResolveRemote("main");
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  EXPECT_EQ(*resolved, c1);
  // An annotated tag resolves to its commit, as does a full ref name.
  EXPECT_EQ(cache->ResolveRemote("v1").value_or(""), c1);
  EXPECT_EQ(cache->ResolveRemote("refs/heads/main").value_or(""), c1);
  EXPECT_EQ(cache->ResolveRemote(c1).value_or(""), c1);

  auto fetched = cache->Fetch("main");
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(*fetched, c1);
  auto tree = cache->ReadTree(c1);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(tree->tree_id, Git({"-C", work_, "rev-parse", "HEAD^{tree}"}).out.substr(0, 40));
  // The same entries, ids and sizes as `git ls-tree -r -l`.
  std::string listing = Git({"-C", work_, "ls-tree", "-r", "-l", "HEAD"}).out;
  ASSERT_EQ(tree->entries.size(), 5u) << listing;
  for (const GitTreeEntry& e : tree->entries) {
    EXPECT_NE(listing.find(e.id), std::string::npos) << e.path;
    EXPECT_NE(listing.find("\t" + e.path + "\n"), std::string::npos) << e.path;
    EXPECT_NE(listing.find(" " + std::to_string(e.size) + "\t" + e.path), std::string::npos)
        << e.path;
  }
  std::map<std::string, GitTreeEntry> by_path;
  for (const GitTreeEntry& e : tree->entries) by_path[e.path] = e;
  EXPECT_EQ(by_path["run.sh"].kind, GitTreeEntry::Kind::kExecutable);
  EXPECT_EQ(by_path["config.json"].kind, GitTreeEntry::Kind::kFile);
  EXPECT_EQ(by_path["latest.bin"].kind, GitTreeEntry::Kind::kSymlink);
  EXPECT_EQ(by_path["latest.bin"].target, "weights/part-1.bin");
  auto blob = cache->ReadBlob(by_path["config.json"].id, 1 << 20);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(*blob, "{\"layers\": 2}");
  EXPECT_EQ(cache->ReadBlob(by_path["weights/part-1.bin"].id, 1000).status().code(),
            Status::Code::kInvalidArgument);

  // A new commit: the poll sees it before any fetch; the cache is reopened.
  WriteFile(work_ + "/config.json", "{\"layers\": 3}");
  std::string c2 = Commit("second");
  cache = Open();
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->ResolveRemote("main").value_or(""), c2);
  EXPECT_EQ(cache->Fetch("main").value_or(""), c2);
  // v1 still names the first commit, and a commit id can be fetched.
  EXPECT_EQ(cache->Fetch("v1").value_or(""), c1);
  EXPECT_EQ(cache->Fetch(c1).value_or(""), c1);
}

TEST_F(GitCacheTest, AForcePushIsFollowed) {
  WriteFile(work_ + "/a.txt", "one");
  Commit("one");
  WriteFile(work_ + "/a.txt", "two");
  std::string c2 = Commit("two");
  auto cache = Open();
  ASSERT_NE(cache, nullptr);
  ASSERT_EQ(cache->Fetch("main").value_or(""), c2);
  // History rewritten upstream: the second commit replaced by another.
  Git({"-C", work_, "reset", "-q", "--hard", "HEAD~1"});
  WriteFile(work_ + "/a.txt", "rewritten");
  std::string c3 = Commit("rewritten");
  auto fetched = cache->Fetch("main");
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(*fetched, c3);
  auto tree = cache->ReadTree(c3);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(tree->entries.size(), 1u);
  EXPECT_EQ(cache->ReadBlob(tree->entries[0].id, 100).value_or(""), "rewritten");
}

TEST_F(GitCacheTest, MissingRefAndUnreachableRemoteSayWhich) {
  WriteFile(work_ + "/a.txt", "one");
  Commit("one");
  auto cache = Open();
  ASSERT_NE(cache, nullptr);
  auto missing = cache->ResolveRemote("release");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().ToString().find("has no ref \"release\""), std::string::npos)
      << missing.status().ToString();
  EXPECT_NE(missing.status().ToString().find("refs/heads/main"), std::string::npos);
  EXPECT_FALSE(cache->Fetch("release").ok());
  EXPECT_TRUE(cache->Fetch(std::string(40, 'b')).status().IsNotFound());

  auto gone = GitCache::Open(tmp_.Sub("cache2.git"), tmp_.Sub("no-such-repo"));
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  auto r = (*gone)->ResolveRemote("main");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNetwork) << r.status().ToString();
  EXPECT_NE(r.status().ToString().find("no-such-repo"), std::string::npos);
}

TEST_F(GitCacheTest, SymlinkOutsideTheRepositoryIsRefusedAndSubmodulesAreListed) {
  WriteFile(work_ + "/a.txt", "one");
  std::string c1 = Commit("one");
  // A submodule entry (a gitlink) without checking anything out.
  // (Committed without `add -A`, which would drop it: nothing is checked out.)
  Git({"-C", work_, "update-index", "--add", "--cacheinfo", "160000," + c1 + ",vendor/lib"});
  Git({"-C", work_, "commit", "-q", "-m", "submodule"});
  std::string c2 = Head();
  ASSERT_EQ(::symlink("../../etc/passwd", (work_ + "/escape").c_str()), 0);
  Git({"-C", work_, "add", "escape"});
  Git({"-C", work_, "commit", "-q", "-m", "escape"});
  std::string c3 = Head();
  auto cache = Open();
  ASSERT_NE(cache, nullptr);
  ASSERT_EQ(cache->Fetch("main").value_or(""), c3);
  auto with_submodule = cache->ReadTree(c2);
  ASSERT_TRUE(with_submodule.ok()) << with_submodule.status().ToString();
  bool found = false;
  for (const GitTreeEntry& e : with_submodule->entries) {
    if (e.path == "vendor/lib") {
      found = true;
      EXPECT_EQ(e.kind, GitTreeEntry::Kind::kSubmodule);
      EXPECT_EQ(e.id, c1);
    }
  }
  EXPECT_TRUE(found);
  auto escaping = cache->ReadTree(c3);
  ASSERT_FALSE(escaping.ok());
  EXPECT_NE(escaping.status().ToString().find("symlink escape"), std::string::npos)
      << escaping.status().ToString();
  EXPECT_NE(escaping.status().ToString().find("outside the repository"), std::string::npos);
}

}  // namespace
}  // namespace sync_agent
