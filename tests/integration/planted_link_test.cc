// Local attacks on the mirror root and the state directory (issue 11,
// findings 1 and 2): a symlink planted below either root, pointing outside
// them, makes the real sync-agent binary fail with an error naming it, while
// the target outside (contents, modes, listing) stays exactly as it was, the
// served tree stays as it was, and `status` reports the failure.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

class PlantedLinkTest : public AgentFixture {
 protected:
  // A node in its normal state: rev1 synced and served.
  void SyncFirstRevision() {
    WriteFile(model_ + "/config.json", "{\"layers\": 2}");
    WriteFile(model_ + "/weights.bin", RandomBytes(1 << 20, 7));
    rev1_ = Publish();
    WriteConfig({"file://" + pub_});
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(ServedRevision(), rev1_);
  }
  // rev2 adds new.bin, whose content must be downloaded.
  void PublishSecondRevision() {
    WriteFile(model_ + "/new.bin", new_content_);
    rev2_ = Publish();
  }
  // A link planted before the first sync: it fails, and nothing is served.
  void ExpectFirstSyncRefused(const std::string& link) {
    WriteFile(model_ + "/config.json", "{\"layers\": 2}");
    rev1_ = Publish();
    WriteConfig({"file://" + pub_});
    ExpectRefused(Once(), link, "");
  }
  // On a synced node, path is replaced by a link to target; the next sync,
  // of a new revision, must refuse it.
  void ExpectRefusedAfterReplacing(const std::string& path, const std::string& target) {
    SyncFirstRevision();
    std::filesystem::remove_all(path);
    Plant(path, target);
    PublishSecondRevision();
    ExpectRefused(Once(), path, rev1_);
  }
  void Plant(const std::string& link, const std::string& target) {
    MakeDirs(DirName(link));
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
  }
  // The run failed naming path as a symlink and saying nothing was written;
  // nothing outside changed; status is not ok and says why.
  void ExpectRefused(const ProcessResult& r, const std::string& path, const std::string& served) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(path + ": is a symlink where sync-agent expects its own"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("nothing was written"), std::string::npos) << r.err;
    EXPECT_EQ(outside_.Changes(), "");
    EXPECT_EQ(ServedRevision(), served);
    ProcessResult st = Status();
    EXPECT_EQ(st.exit_code, 1) << st.out;
    EXPECT_NE(st.out.find("last run failed"), std::string::npos) << st.out;
    EXPECT_NE(st.out.find(path), std::string::npos) << st.out;
  }

  Sentinel outside_{tmp_.Sub("outside")};
  std::string rev1_, rev2_;
  std::string new_content_ = RandomBytes(300 << 10, 9);
};

// Finding 1: links planted inside the mirror root.

TEST_F(PlantedLinkTest, HiddenDirectoryLink) {
  ExpectRefusedAfterReplacing(mirror_ + "/.sync-agent", outside_.dir());
}

TEST_F(PlantedLinkTest, TreesOrgLink) {
  std::string link = mirror_ + "/.sync-agent/trees/acme";
  Plant(link, outside_.dir());
  ExpectFirstSyncRefused(link);
}

TEST_F(PlantedLinkTest, TreesRepoLink) {
  std::string link = mirror_ + "/.sync-agent/trees/acme/llm-7b";
  Plant(link, outside_.dir());
  ExpectFirstSyncRefused(link);
}

TEST_F(PlantedLinkTest, StagingOrgLink) {
  ExpectRefusedAfterReplacing(mirror_ + "/.sync-agent/staging/acme", outside_.dir());
}

TEST_F(PlantedLinkTest, OrgDirectoryLinkInTheMirrorRoot) {
  SyncFirstRevision();
  // <mirror>/acme -> outside, where a link of the served name points on.
  std::string org = mirror_ + "/acme";
  ASSERT_EQ(::rename(org.c_str(), tmp_.Sub("acme-moved").c_str()), 0);
  Plant(org, outside_.dir());
  PublishSecondRevision();
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(org + ": is a symlink where sync-agent expects its own directory"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(outside_.Changes(), "");
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << "status says ok while the served path is broken:\n" << st.out;
  EXPECT_NE(st.out.find(org), std::string::npos) << st.out;
}

TEST_F(PlantedLinkTest, ForeignServedLinkThatClimbsOutOfTheTreesIsNotOurs) {
  SyncFirstRevision();
  std::string link = Served();
  std::string target = "../.sync-agent/trees/acme/llm-7b/../../../../outside";
  ASSERT_EQ(::unlink(link.c_str()), 0);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  PublishSecondRevision();
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(link + ": is a symlink to " + target + ", which sync-agent did not create"),
            std::string::npos)
      << r.err;
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), target) << "the foreign link was replaced";
  EXPECT_EQ(outside_.Changes(), "");
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_NE(st.out.find(link), std::string::npos) << st.out;
}

// Finding 2: links planted inside the state directory.

TEST_F(PlantedLinkTest, PartialFileLink) {
  SyncFirstRevision();
  PublishSecondRevision();
  std::string part = state_ + "/partial/" + Sha256Hex(new_content_) + ".part";
  Plant(part, outside_.file());
  ExpectRefused(Once(), part, rev1_);
  struct stat st;
  ASSERT_EQ(::stat(outside_.file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u) << "the target was made read-only";
}

TEST_F(PlantedLinkTest, PartialDirectoryLink) {
  ExpectRefusedAfterReplacing(state_ + "/partial", outside_.dir());
  EXPECT_TRUE(PathExists(outside_.dir() + "/old.part")) << "a file 8 days old was expired";
}

TEST_F(PlantedLinkTest, LockFileLink) {
  ExpectRefusedAfterReplacing(state_ + "/lock", outside_.file());
}

TEST_F(PlantedLinkTest, ReserveFileLink) {
  ExpectRefusedAfterReplacing(state_ + "/reserve", outside_.file());
}

TEST_F(PlantedLinkTest, ObjectFanOutDirectoryLink) {
  SyncFirstRevision();
  PublishSecondRevision();
  std::string sha = Sha256Hex(new_content_);
  std::string fan = state_ + "/objects/" + sha.substr(0, 2);
  ASSERT_TRUE(::rmdir(fan.c_str()) == 0 || errno == ENOENT);
  ASSERT_FALSE(PathExists(fan)) << "pick content whose fan-out directory is not used yet";
  Plant(fan, outside_.dir());
  ExpectRefused(Once(), fan, rev1_);
}

}  // namespace
}  // namespace sync_agent::testing
