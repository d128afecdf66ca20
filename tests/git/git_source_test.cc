// GitSource against local-path remotes built with the real git and git-lfs
// tools: a poll names the ref's commit, the manifest lists the commit's
// files (LFS files by oid and size), objects stream from any offset, and what
// a git source cannot offer (signatures, ranges) or must refuse (escaping
// symlinks, loops, missing refs) says so.
#include "common/git/git_source.h"

#include <gtest/gtest.h>

#include <map>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "tests/support/git_repo.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::WriteFile;

// Collects what a source streams.
class StringSink final : public ObjectSink {
 public:
  Status Begin(uint64_t offset) override {
    begun_at = offset;
    data.clear();
    return Status::OK();
  }
  Status Write(const char* d, size_t n) override {
    data.append(d, n);
    return Status::OK();
  }
  uint64_t begun_at = 0;
  std::string data;
};

class GitSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::GitLfsAvailable()) {
      GTEST_SKIP() << "git-lfs is not installed (apt-get install git-lfs)";
    }
    work_ = tmp_.Sub("work");
    repo_ = std::make_unique<testing::GitWorkRepo>(work_, tmp_.path(), "*.safetensors");
  }
  std::unique_ptr<GitSource> Source(const std::string& ref = "main") {
    return std::make_unique<GitSource>(work_, kRepo, ref, tmp_.Sub("cache/remote.git"),
                                       SourceOptions{});
  }
  // Polls and returns the manifest of what the ref names.
  Manifest Poll(GitSource* source, PollResult* poll_out = nullptr) {
    auto poll = source->Poll(nullptr);
    EXPECT_TRUE(poll.ok()) << poll.status().ToString();
    if (!poll.ok()) return {};
    EXPECT_EQ(poll->fingerprint, poll->revision) << "a commit is its own fingerprint";
    auto listing = source->FetchRevision(*poll);
    EXPECT_TRUE(listing.ok()) << listing.status().ToString();
    if (!listing.ok()) return {};
    EXPECT_EQ(listing->manifest.revision, poll->revision);
    // What the engine records is the sha256 of the manifest as serialized.
    EXPECT_EQ(listing->manifest_sha256, Sha256Hex(SerializeManifest(listing->manifest)));
    EXPECT_TRUE(ValidateManifest(listing->manifest).ok());
    if (poll_out != nullptr) *poll_out = *poll;
    return listing->manifest;
  }
  static const ManifestEntry* Find(const Manifest& m, const std::string& path) {
    for (const ManifestEntry& e : m.files) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }
  std::string Object(GitSource* source, const Manifest& m, const ManifestEntry* e,
                     uint64_t offset = 0) {
    StringSink sink;
    Status s = source->FetchContent(ContentOf(m, *e), offset, &sink);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(sink.begun_at, offset);
    return sink.data;
  }

  static constexpr const char* kRepo = "acme/llm-7b";
  testing::TempDir tmp_;
  std::string work_;
  std::unique_ptr<testing::GitWorkRepo> repo_;
};

TEST_F(GitSourceTest, ManifestListsTheCommitWithLfsFilesByOid) {
  const std::string weights = testing::RandomBytes(300000, 1);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{\"layers\": 2}");
  WriteFile(work_ + "/bin/run.sh", "#!/bin/sh\n", 0755);
  const std::string c1 = repo_->Commit("first");
  auto source = Source();
  Manifest m = Poll(source.get());
  EXPECT_EQ(m.revision, c1);
  EXPECT_EQ(m.provenance.at("commit"), c1);
  EXPECT_EQ(m.provenance.at("tree"),
            repo_->Git({"-C", work_, "rev-parse", "HEAD^{tree}"}).out.substr(0, 40));
  EXPECT_EQ(m.parent, "");
  ASSERT_EQ(m.files.size(), 4u);  // with .gitattributes

  const ManifestEntry* w = Find(m, "model.safetensors");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->provenance.count("lfs"), 1u);
  EXPECT_EQ(w->sha256, Sha256Hex(weights));
  EXPECT_EQ(w->size, weights.size());
  EXPECT_EQ(w->xxh3_128, "") << "an LFS object's xxh3 is not known before download";
  EXPECT_EQ(w->provenance.at("blob"),
            repo_->Git({"-C", work_, "rev-parse", "HEAD:model.safetensors"}).out.substr(0, 40));

  const ManifestEntry* c = Find(m, "config.json");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->provenance.count("lfs"), 0u);
  EXPECT_EQ(c->sha256, Sha256Hex("{\"layers\": 2}"));
  EXPECT_EQ(c->xxh3_128.size(), 32u);
  const ManifestEntry* r = Find(m, "bin/run.sh");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->mode, 0755u);

  // Objects stream from the start and from an offset.
  EXPECT_TRUE(Object(source.get(), m, w) == weights);
  EXPECT_TRUE(Object(source.get(), m, w, 100000) == weights.substr(100000));
  EXPECT_EQ(Object(source.get(), m, c, 3), std::string("{\"layers\": 2}").substr(3));

  // A second commit has the first as parent.
  WriteFile(work_ + "/config.json", "{\"layers\": 3}");
  const std::string c2 = repo_->Commit("second");
  Manifest m2 = Poll(Source().get());
  EXPECT_EQ(m2.revision, c2);
  EXPECT_EQ(m2.parent, c1);
}

TEST_F(GitSourceTest, TheSameCommitAgainIsNotModified) {
  WriteFile(work_ + "/config.json", "{}");
  const std::string c1 = repo_->Commit("first");
  auto source = Source();
  PollResult first;
  Poll(source.get(), &first);
  EXPECT_EQ(first.validators.etag, c1);
  auto again = Source()->Poll(&first.validators);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->not_modified);

  WriteFile(work_ + "/config.json", "{\"v\": 2}");
  const std::string c2 = repo_->Commit("second");
  auto moved = Source()->Poll(&first.validators);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_FALSE(moved->not_modified);
  EXPECT_EQ(moved->revision, c2);
}

TEST_F(GitSourceTest, TagsAndCommitIdsAreRefs) {
  WriteFile(work_ + "/config.json", "{}");
  const std::string c1 = repo_->Commit("first");
  repo_->Git({"-C", work_, "tag", "-a", "v1.0", "-m", "release"});
  WriteFile(work_ + "/config.json", "{\"v\": 2}");
  const std::string c2 = repo_->Commit("second");
  EXPECT_EQ(Poll(Source("v1.0").get()).revision, c1);
  EXPECT_EQ(Poll(Source(c1).get()).revision, c1);
  EXPECT_EQ(Poll(Source("refs/heads/main").get()).revision, c2);
}

TEST_F(GitSourceTest, SymlinksInsideAreListedWithTheirTargetsContent) {
  WriteFile(work_ + "/config.json", "{\"a\": 1}");
  WriteFile(work_ + "/shards/one.safetensors", testing::RandomBytes(5000, 2));
  WriteFile(work_ + "/shards/two.txt", "two");
  ASSERT_EQ(::symlink("config.json", (work_ + "/alias.json").c_str()), 0);
  ASSERT_EQ(::symlink("alias.json", (work_ + "/alias-of-alias.json").c_str()), 0);
  ASSERT_EQ(::symlink("shards", (work_ + "/current").c_str()), 0);
  repo_->Commit("links");
  Manifest m = Poll(Source().get());
  for (const char* p : {"alias.json", "alias-of-alias.json"}) {
    const ManifestEntry* e = Find(m, p);
    ASSERT_NE(e, nullptr) << p;
    EXPECT_EQ(e->sha256, Sha256Hex("{\"a\": 1}")) << p;
  }
  const ManifestEntry* one = Find(m, "current/one.safetensors");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->sha256, Find(m, "shards/one.safetensors")->sha256);
  EXPECT_EQ(one->provenance.count("lfs"), 1u);
  ASSERT_NE(Find(m, "current/two.txt"), nullptr);
}

TEST_F(GitSourceTest, BadSymlinksAreRefusedNamingThem) {
  WriteFile(work_ + "/config.json", "{}");
  ASSERT_EQ(::symlink("../../etc/passwd", (work_ + "/escape").c_str()), 0);
  repo_->Commit("escape");
  auto fetch = Source()->Poll(nullptr);
  ASSERT_FALSE(fetch.ok());
  EXPECT_NE(fetch.status().ToString().find("symlink escape"), std::string::npos)
      << fetch.status().ToString();
  EXPECT_NE(fetch.status().ToString().find("outside the repository"), std::string::npos);

  ::unlink((work_ + "/escape").c_str());
  ASSERT_EQ(::symlink("b", (work_ + "/a").c_str()), 0);
  ASSERT_EQ(::symlink("a", (work_ + "/b").c_str()), 0);
  repo_->Commit("loop");
  fetch = Source()->Poll(nullptr);
  ASSERT_FALSE(fetch.ok());
  EXPECT_NE(fetch.status().ToString().find("symlink loop"), std::string::npos)
      << fetch.status().ToString();

  ::unlink((work_ + "/a").c_str());
  ::unlink((work_ + "/b").c_str());
  ASSERT_EQ(::symlink("gone.json", (work_ + "/dangling").c_str()), 0);
  repo_->Commit("dangling");
  fetch = Source()->Poll(nullptr);
  ASSERT_FALSE(fetch.ok());
  EXPECT_NE(fetch.status().ToString().find("no file or directory of the commit"), std::string::npos)
      << fetch.status().ToString();
}

TEST_F(GitSourceTest, SubmodulesAreSkipped) {
  WriteFile(work_ + "/config.json", "{}");
  const std::string c1 = repo_->Commit("first");
  // A gitlink entry, as `git submodule add` records it.
  repo_->Git({"-C", work_, "update-index", "--add", "--cacheinfo", "160000," + c1 + ",vendor/lib"});
  repo_->Git({"-C", work_, "commit", "-q", "-m", "submodule"});
  Manifest m = Poll(Source().get());
  EXPECT_EQ(Find(m, "vendor/lib"), nullptr);
  EXPECT_NE(Find(m, "config.json"), nullptr);
}

TEST_F(GitSourceTest, WhatAGitSourceCannotServeSaysSo) {
  WriteFile(work_ + "/model.safetensors", testing::RandomBytes(3000, 3));
  repo_->Commit("first");
  auto source = Source();
  Manifest m = Poll(source.get());
  const std::string sha = Find(m, "model.safetensors")->sha256;
  StringSink sink;
  SignatureRef sig{1024, 16, 100, std::string(64, 'a')};
  Status s = source->FetchSignature(sha, sig, &sink);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_NE(s.ToString().find("publishes no signatures"), std::string::npos) << s.ToString();
  s = source->FetchDelta(sha, DeltaRef{std::string(64, 'b'), 10, std::string(64, 'c')}, &sink);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_NE(s.ToString().find("publishes no deltas"), std::string::npos) << s.ToString();
  // A content no entry of the commit names.
  s = source->FetchContent({std::string(64, 'e'), 10, m.revision, "nowhere", {}}, 0, &sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST_F(GitSourceTest, RangesOfBlobsAndLfsObjectsForParallelChunks) {
  const std::string weights = testing::RandomBytes(300000, 12);
  WriteFile(work_ + "/model.safetensors", weights);
  WriteFile(work_ + "/config.json", "{\"layers\": 2, \"heads\": 8}");
  repo_->Commit("first");
  auto primary = Source();
  Manifest m = Poll(primary.get());
  // A fork serves the same commit with its own connections.
  std::unique_ptr<sync_agent::Source> fork = primary->Fork();
  ASSERT_NE(fork, nullptr);
  // Both are on this machine (a blob, a local LFS store): chunks would not help.
  EXPECT_FALSE(fork->ChunksHelp(ContentOf(m, *Find(m, "config.json"))));
  EXPECT_FALSE(fork->ChunksHelp(ContentOf(m, *Find(m, "model.safetensors"))));
  for (const char* path : {"model.safetensors", "config.json"}) {
    const ManifestEntry* e = Find(m, path);
    ASSERT_NE(e, nullptr);
    const std::string& content =
        std::string(path) == "config.json" ? std::string("{\"layers\": 2, \"heads\": 8}") : weights;
    std::map<uint64_t, std::string> got;
    Status s = fork->FetchContentRanges(ContentOf(m, *e), {{1, 5}, {15, 7}},
                                        [&](uint64_t offset, const char* data, size_t n) {
                                          got[offset].append(data, n);
                                          return Status::OK();
                                        });
    ASSERT_TRUE(s.ok()) << path << ": " << s.ToString();
    EXPECT_EQ(got[1], content.substr(1, 5)) << path;
    EXPECT_EQ(got[15], content.substr(15, 7)) << path;
    // Another size than the object's is corruption, not a silent short read.
    ContentRef wrong = ContentOf(m, *e);
    wrong.size = e->size + 1;
    s = fork->FetchContentRanges(wrong, {{0, 1}},
                                 [](uint64_t, const char*, size_t) { return Status::OK(); });
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  }
}

TEST_F(GitSourceTest, MissingRefAndMissingRemoteSayWhich) {
  WriteFile(work_ + "/config.json", "{}");
  repo_->Commit("first");
  auto fetch = Source("no-such-branch")->Poll(nullptr);
  ASSERT_FALSE(fetch.ok());
  EXPECT_TRUE(fetch.status().IsNotFound()) << fetch.status().ToString();
  EXPECT_NE(fetch.status().ToString().find(
                "has no ref \"no-such-branch\" (it has: HEAD, refs/heads/main)"),
            std::string::npos)
      << fetch.status().ToString();

  GitSource nowhere(tmp_.Sub("no-such-repo"), kRepo, "main", tmp_.Sub("cache/other.git"), {});
  fetch = nowhere.Poll(nullptr);
  ASSERT_FALSE(fetch.ok());
  EXPECT_EQ(fetch.status().code(), Status::Code::kNetwork) << fetch.status().ToString();
  EXPECT_NE(fetch.status().ToString().find("connect to git remote"), std::string::npos);
}

TEST_F(GitSourceTest, MissingLfsObjectIsNotFoundNamingIt) {
  const std::string weights = testing::RandomBytes(4000, 4);
  WriteFile(work_ + "/model.safetensors", weights);
  repo_->Commit("first");
  ASSERT_EQ(::unlink(repo_->LfsObjectPath(weights).c_str()), 0);
  auto source = Source();
  Manifest m = Poll(source.get());  // the manifest needs only the pointer
  StringSink sink;
  Status s = source->FetchContent(ContentOf(m, *Find(m, "model.safetensors")), 0, &sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find("missing from the local remote's LFS store"), std::string::npos)
      << s.ToString();
}

}  // namespace
}  // namespace sync_agent
