#include "common/publish/publisher.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

class PublisherTest : public ::testing::Test {
 protected:
  Result<PublishResult> Publish(bool allow_unchanged = false) {
    PublishOptions o;
    o.input_dir = tmp_.Sub("model");
    o.repo = "acme/m";
    o.out_root = tmp_.Sub("pub");
    o.allow_unchanged = allow_unchanged;
    return PublishDirectory(Env::Default(), o);
  }
  std::string RepoDir() { return tmp_.Sub("pub/acme/m"); }
  Manifest Latest() {
    auto p = ParsePointer(testing::ReadFile(RepoDir() + "/latest"));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    std::string text = testing::ReadFile(RepoDir() + "/" + p->manifest);
    EXPECT_EQ(Sha256Hex(text), p->manifest_sha256);
    auto m = ParseManifest(text);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return *m;
  }
  testing::TempDir tmp_;
};

TEST_F(PublisherTest, PublishesObjectsManifestAndPointer) {
  testing::WriteFile(tmp_.Sub("model/config.json"), "{}");
  testing::WriteFile(tmp_.Sub("model/sub/w.bin"), "weights");
  testing::WriteFile(tmp_.Sub("model/run.sh"), "#!/bin/sh\n", 0755);
  testing::WriteFile(tmp_.Sub("model/.git/HEAD"), "ref: refs/heads/main\n");
  auto r = Publish();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->objects_written, 3u);
  Manifest m = Latest();
  ASSERT_EQ(m.files.size(), 3u) << ".git must be skipped";
  EXPECT_EQ(m.files[0].path, "config.json");
  EXPECT_EQ(m.files[1].path, "run.sh");
  EXPECT_EQ(m.files[1].mode, 0755u);
  EXPECT_EQ(m.files[2].path, "sub/w.bin");
  EXPECT_EQ(testing::ReadFile(RepoDir() + "/" + PublishedObjectPath(Sha256Hex("weights"))),
            "weights");
  struct stat st;
  ASSERT_EQ(::stat((RepoDir() + "/objects").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u) << "nginx workers must be able to read";
}

TEST_F(PublisherTest, UnchangedContentIsNotPublishedAgain) {
  testing::WriteFile(tmp_.Sub("model/a"), "a");
  auto first = Publish();
  ASSERT_TRUE(first.ok());
  auto again = Publish();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->manifest.revision, first->manifest.revision);
  auto forced = Publish(true);
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->unchanged);
  EXPECT_NE(forced->manifest.revision, first->manifest.revision);
  EXPECT_EQ(forced->objects_written, 0u);
  EXPECT_EQ(forced->objects_reused, 1u);
  EXPECT_EQ(Latest().parent, first->manifest.revision);
}

TEST_F(PublisherTest, SameContentUnderManyNamesIsStoredOnce) {
  testing::WriteFile(tmp_.Sub("model/a"), "same");
  testing::WriteFile(tmp_.Sub("model/b"), "same");
  auto r = Publish();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->objects_written, 1u);
  EXPECT_EQ(r->objects_reused, 1u);
}

TEST_F(PublisherTest, SpecialFilesAndDanglingLinksAreErrorsNamingThePath) {
  testing::WriteFile(tmp_.Sub("model/a"), "a");
  ASSERT_EQ(::symlink("/nonexistent-target", tmp_.Sub("model/dangling").c_str()), 0);
  auto r = Publish();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model/dangling"), std::string::npos);
  EXPECT_NE(r.status().message().find("symlink points nowhere"), std::string::npos);
  ::unlink(tmp_.Sub("model/dangling").c_str());
  ASSERT_EQ(::mkfifo(tmp_.Sub("model/fifo").c_str(), 0644), 0);
  r = Publish();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FIFO"), std::string::npos);
  EXPECT_FALSE(testing::PathExists(RepoDir() + "/latest")) << "nothing published on error";
}

TEST_F(PublisherTest, SymlinkedFilesArePublishedByContent) {
  testing::WriteFile(tmp_.Sub("blobs/x"), "blob content");
  testing::MakeDirs(tmp_.Sub("model"));
  ASSERT_EQ(::symlink(tmp_.Sub("blobs/x").c_str(), tmp_.Sub("model/model.bin").c_str()), 0);
  auto r = Publish();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->manifest.files.size(), 1u);
  EXPECT_EQ(r->manifest.files[0].sha256, Sha256Hex("blob content"));
}

TEST_F(PublisherTest, BadArgumentsAreRejected) {
  PublishOptions o;
  o.input_dir = tmp_.Sub("missing");
  o.repo = "acme/m";
  o.out_root = tmp_.Sub("pub");
  auto r = PublishDirectory(Env::Default(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a directory"), std::string::npos);
  o.input_dir = tmp_.path();
  o.repo = "no-slash";
  r = PublishDirectory(Env::Default(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("org/name"), std::string::npos);
}

}  // namespace
}  // namespace sync_agent
