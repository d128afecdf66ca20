// The sync pipeline in-process, on real files and a real SQLite database,
// with file:// sources. Faults the file system cannot produce on demand come
// from FaultEnv (tests/support).
#include "common/sync/sync_engine.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <random>

#include "common/base/time_util.h"
#include "common/db/state_db.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "common/mirror/mirror_tree.h"
#include "common/publish/publisher.h"
#include "common/source/publish_root_source.h"
#include "tests/support/fault_env.h"
#include "tests/support/publish_tamper.h"
#include "tests/support/test_util.h"
#include "tests/support/tree_util.h"

namespace sync_agent {
namespace {

using testing::ReadFile;
using testing::WriteFile;

constexpr const char* kRepo = "acme/llm-7b";

class SyncEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_.Sub("model");
    pub_ = tmp_.Sub("pub");
    state_ = tmp_.Sub("state");
    mirror_ = tmp_.Sub("mirror");
    testing::MakeDirs(model_);
    testing::MakeDirs(state_);
    auto db = StateDb::Open(state_ + "/state.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    repo_.name = kRepo;
    repo_.source = std::make_shared<PublishRootSpec>(std::vector<std::string>{"file://" + pub_});
  }

  std::string Publish() {
    PublishOptions o;
    o.input_dir = model_;
    o.repo = kRepo;
    o.out_root = pub_;
    auto r = PublishDirectory(Env::Default(), o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->manifest.revision : "";
  }

  RepoSyncResult Sync(int keep = 2) {
    SyncEngineOptions o;
    o.state_dir = state_;
    o.mirror_root = mirror_;
    o.keep_revisions = keep;
    o.cancel = &cancel_;
    SyncEngine engine(&env_, db_.get(), o);
    Status s = engine.Init();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return engine.SyncRepo(repo_);
  }

  std::string Served() { return mirror_ + "/" + kRepo; }
  std::string ServedRevision() {
    auto r = MirrorTree(Env::Default(), mirror_).ActiveRevision(kRepo);
    return r.ok() ? *r : "";
  }
  std::string PublishedObject(const std::string& content) {
    return pub_ + "/" + kRepo + "/" + PublishedObjectPath(Sha256Hex(content));
  }

  testing::TempDir tmp_;
  testing::FaultEnv env_;
  CancelFlag cancel_;
  std::string model_, pub_, state_, mirror_;
  std::unique_ptr<StateDb> db_;
  RepoConfig repo_;
};

TEST_F(SyncEngineTest, FirstSyncMirrorsTheRepositoryExactly) {
  WriteFile(model_ + "/config.json", "{\"hidden\": 4096}");
  WriteFile(model_ + "/weights/model-00001.safetensors", testing::RandomBytes(3 << 20, 1));
  WriteFile(model_ + "/empty.txt", "");
  WriteFile(model_ + "/name with spaces/tökenizer ünïcode.json", "{}");
  std::string rev = Publish();
  RepoSyncResult r = Sync();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.outcome, RunOutcome::kUpdated);
  EXPECT_EQ(r.to_revision, rev);
  EXPECT_EQ(testing::DiffTrees(model_, Served()), "");
  EXPECT_EQ(ServedRevision(), rev);
  EXPECT_EQ(r.counters.bytes_downloaded, (3u << 20) + 16 + 2);
  auto active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, rev);
  EXPECT_EQ((*active)->file_count, 4u);
  // Served files are read-only so nobody edits a revision in place.
  struct stat st;
  ASSERT_EQ(::stat((Served() + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

TEST_F(SyncEngineTest, NoChangeRunReadsNoFileContent) {
  WriteFile(model_ + "/a.bin", testing::RandomBytes(1 << 20, 2));
  Publish();
  ASSERT_TRUE(Sync().status.ok());
  env_.ResetCounters();
  RepoSyncResult r = Sync();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.outcome, RunOutcome::kUnchanged);
  EXPECT_EQ(env_.ReadOpens("/objects/"), 0);
  EXPECT_EQ(env_.ReadOpens("/revisions/"), 0) << "the manifest must not be read";
  EXPECT_EQ(env_.ReadOpens(mirror_), 0);
  EXPECT_EQ(r.counters.bytes_downloaded, 0u);
}

TEST_F(SyncEngineTest, ChangesReuseContentTheNodeAlreadyHas) {
  std::string big = testing::RandomBytes(2 << 20, 3);
  std::string other = testing::RandomBytes(1 << 20, 4);
  WriteFile(model_ + "/old-name.bin", big);
  WriteFile(model_ + "/dir-a/moved.bin", other);
  WriteFile(model_ + "/modified.txt", "one");
  WriteFile(model_ + "/deleted.txt", "bye");
  Publish();
  ASSERT_TRUE(Sync().status.ok());
  // Rename, move between directories, modify, delete, add.
  ASSERT_EQ(::rename((model_ + "/old-name.bin").c_str(), (model_ + "/new-name.bin").c_str()), 0);
  testing::MakeDirs(model_ + "/dir-b");
  ASSERT_EQ(::rename((model_ + "/dir-a/moved.bin").c_str(), (model_ + "/dir-b/moved.bin").c_str()),
            0);
  ::rmdir((model_ + "/dir-a").c_str());
  WriteFile(model_ + "/modified.txt", "two!");
  ::unlink((model_ + "/deleted.txt").c_str());
  WriteFile(model_ + "/added.txt", "new");
  std::string rev2 = Publish();
  RepoSyncResult r = Sync();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(testing::DiffTrees(model_, Served()), "");
  EXPECT_EQ(r.counters.bytes_downloaded, 4u + 3u) << "only modified.txt and added.txt";
  EXPECT_EQ(r.counters.bytes_reused, big.size() + other.size());
  EXPECT_FALSE(testing::PathExists(Served() + "/deleted.txt"));
  EXPECT_FALSE(testing::PathExists(Served() + "/dir-a"));
}

TEST_F(SyncEngineTest, WrongBytesAtTheSourceFailTheRunAndKeepTheOldRevision) {
  WriteFile(model_ + "/config.json", "v1");
  std::string rev1 = Publish();
  ASSERT_TRUE(Sync().status.ok());
  std::string weights = testing::RandomBytes(1 << 20, 5);
  WriteFile(model_ + "/config.json", "v2");
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  // Corrupt the published object in place (same size, one byte flipped).
  std::string obj = PublishedObject(weights);
  std::string bad = weights;
  bad[12345] ^= 0x40;
  ::chmod(obj.c_str(), 0644);
  WriteFile(obj, bad);
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), Status::Code::kCorruption);
  EXPECT_NE(r.status.message().find("weights.bin"), std::string::npos) << r.status.ToString();
  EXPECT_NE(r.status.message().find("serves wrong bytes"), std::string::npos);
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "v1");
  auto runs = db_->RecentRuns(kRepo, 1);
  ASSERT_TRUE(runs.ok() && runs->size() == 1);
  EXPECT_EQ((*runs)[0].outcome, RunOutcome::kFailed);
  EXPECT_NE((*runs)[0].error.find("serves wrong bytes"), std::string::npos);
  // Once the origin is repaired the next run completes.
  WriteFile(obj, weights);
  RepoSyncResult r2 = Sync();
  ASSERT_TRUE(r2.status.ok()) << r2.status.ToString();
  EXPECT_EQ(testing::DiffTrees(model_, Served()), "");
}

TEST_F(SyncEngineTest, TamperedManifestIsRejectedBeforeAnyDownload) {
  WriteFile(model_ + "/a.txt", "a");
  std::string rev = Publish();
  std::string manifest = pub_ + "/" + kRepo + "/" + PublishedManifestPath(rev);
  std::string text = ReadFile(manifest);
  text.replace(text.find("\"a.txt\""), 7, "\"b.txt\"");
  WriteFile(manifest, text);
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("differs from the pointer's"), std::string::npos)
      << r.status.ToString();
  EXPECT_FALSE(testing::PathExists(Served()));
}

TEST_F(SyncEngineTest, DiskFullMidFileFailsCleanlyAndTheNextRunResumes) {
  WriteFile(model_ + "/config.json", "v1");
  std::string rev1 = Publish();
  ASSERT_TRUE(Sync().status.ok());
  // Below kMinChunkedBytes: one stream (the chunked path has its own test).
  std::string weights = testing::RandomBytes(7 << 20, 6);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  env_.FailWritesAfter("/partial/", 3 << 20);
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), Status::Code::kNoSpace) << r.status.ToString();
  EXPECT_NE(r.status.message().find("weights.bin"), std::string::npos) << r.status.ToString();
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_FALSE(testing::PathExists(Served() + "/weights.bin"));
  auto partials = db_->ListPartials();
  ASSERT_TRUE(partials.ok());
  ASSERT_EQ(partials->size(), 1u);
  EXPECT_EQ((*partials)[0].bytes_received, 3u << 20);
  env_.ClearFaults();
  RepoSyncResult r2 = Sync();
  ASSERT_TRUE(r2.status.ok()) << r2.status.ToString();
  EXPECT_EQ(r2.counters.bytes_downloaded, (7u << 20) - (3u << 20)) << "resumed, not restarted";
  EXPECT_EQ(testing::DiffTrees(model_, Served()), "");
  partials = db_->ListPartials();
  ASSERT_TRUE(partials.ok());
  EXPECT_TRUE(partials->empty());
}

TEST_F(SyncEngineTest, FailedFsyncOfADownloadFailsTheRun) {
  WriteFile(model_ + "/w.bin", testing::RandomBytes(1 << 20, 7));
  Publish();
  env_.FailSyncOf("/partial/");
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("fsync"), std::string::npos) << r.status.ToString();
  EXPECT_FALSE(testing::PathExists(Served()));
  env_.ClearFaults();
  EXPECT_TRUE(Sync().status.ok());
}

TEST_F(SyncEngineTest, FailedSwapLeavesTheOldRevisionServed) {
  WriteFile(model_ + "/a.txt", "v1");
  std::string rev1 = Publish();
  ASSERT_TRUE(Sync().status.ok());
  WriteFile(model_ + "/a.txt", "v2");
  Publish();
  env_.FailRenameTo(mirror_ + "/acme/llm-7b");
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "v1");
  auto active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, rev1);
  env_.ClearFaults();
  ASSERT_TRUE(Sync().status.ok());
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "v2");
}

TEST_F(SyncEngineTest, OldRevisionsAreCollectedBeyondKeepRevisions) {
  std::vector<std::string> revs;
  for (int i = 0; i < 4; ++i) {
    WriteFile(model_ + "/w.bin", testing::RandomBytes(100000, 100 + i));
    revs.push_back(Publish());
    ASSERT_TRUE(Sync(2).status.ok());
  }
  MirrorTree tree(Env::Default(), mirror_);
  EXPECT_TRUE(tree.HasTree(kRepo, revs[3]));
  EXPECT_TRUE(tree.HasTree(kRepo, revs[2]));
  EXPECT_FALSE(tree.HasTree(kRepo, revs[1]));
  EXPECT_FALSE(tree.HasTree(kRepo, revs[0]));
  auto r0 = db_->GetRevision(kRepo, revs[0]);
  ASSERT_TRUE(r0.ok() && r0->has_value());
  EXPECT_EQ((*r0)->state, RevisionState::kCollected);
  auto objects = db_->AllObjects();
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->size(), 2u) << "objects of collected revisions are removed";
}

TEST_F(SyncEngineTest, ADirectoryNotManagedBySyncAgentIsNeverTouched) {
  WriteFile(model_ + "/a.txt", "v1");
  Publish();
  WriteFile(mirror_ + "/acme/llm-7b/precious.txt", "operator data");
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("not managed by sync-agent"), std::string::npos)
      << r.status.ToString();
  EXPECT_EQ(ReadFile(mirror_ + "/acme/llm-7b/precious.txt"), "operator data");
}

TEST_F(SyncEngineTest, FallsBackToTheNextSourceWhenOneIsMissing) {
  WriteFile(model_ + "/a.txt", "v1");
  Publish();
  repo_.source = std::make_shared<PublishRootSpec>(
      std::vector<std::string>{"file://" + tmp_.Sub("nowhere"), "file://" + pub_});
  RepoSyncResult r = Sync();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.counters.source, "file://" + pub_);
}

TEST_F(SyncEngineTest, MissingRepositoryAtTheSourceSaysSo) {
  RepoSyncResult r = Sync();
  ASSERT_FALSE(r.status.ok());
  EXPECT_TRUE(r.status.IsNotFound()) << r.status.ToString();
  EXPECT_NE(r.status.message().find("no published revision of acme/llm-7b"), std::string::npos);
}

TEST_F(SyncEngineTest, CancelledRunIsRecordedAsInterrupted) {
  WriteFile(model_ + "/a.txt", "v1");
  Publish();
  cancel_.Cancel();
  RepoSyncResult r = Sync();
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted) << r.status.ToString();
  EXPECT_FALSE(testing::PathExists(Served()));
}

TEST_F(SyncEngineTest, PartialDownloadsUntouchedForAWeekAreRemoved) {
  std::string old_part = state_ + "/partial/" + std::string(64, 'a') + ".part";
  std::string new_part = state_ + "/partial/" + std::string(64, 'b') + ".part";
  WriteFile(old_part, "stale bytes");
  WriteFile(new_part, "fresh bytes");
  int64_t eight_days_ago =
      (ToUnixMillis(std::chrono::system_clock::now()) - 8LL * 86400000) * 1000000;
  ASSERT_TRUE(Env::Default()->SetModTime(old_part, eight_days_ago).ok());
  WriteFile(model_ + "/a.txt", "a");
  Publish();
  ASSERT_TRUE(Sync().status.ok());
  EXPECT_FALSE(testing::PathExists(old_part));
  EXPECT_TRUE(testing::PathExists(new_part));
}

TEST_F(SyncEngineTest, DatabaseBehindTheServedTreeIsReconciled) {
  WriteFile(model_ + "/a.txt", "v1");
  std::string rev1 = Publish();
  ASSERT_TRUE(Sync().status.ok());
  WriteFile(model_ + "/a.txt", "v2");
  std::string rev2 = Publish();
  ASSERT_TRUE(Sync().status.ok());
  // Simulate a crash after the swap but before the database update.
  ASSERT_TRUE(db_->ActivateRevision(kRepo, rev1, 1).ok());
  RepoSyncResult r = Sync();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, rev2);
}

}  // namespace
}  // namespace sync_agent

// ---- block-level deltas under mutation -----------------------------------

namespace sync_agent {
namespace {

// Random flips of published deltas and signatures, with the manifest made to
// agree (so they pass the sha256 checks and reach the parsers): every run
// must still activate exactly v2, by a fallback when the damage shows.
class DeltaMutationTest : public SyncEngineTest {
 protected:
  // A fresh node that has v1: state and mirror emptied, pointer set back.
  void ResetNodeToV1(const std::string& v1_pointer) {
    db_.reset();
    std::filesystem::remove_all(state_);
    std::filesystem::remove_all(mirror_);
    testing::MakeDirs(state_);
    auto db = StateDb::Open(state_ + "/state.db");
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    WriteFile(pub_ + "/" + kRepo + "/latest", v1_pointer);
    RepoSyncResult r = Sync();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
  std::string Method() {
    auto runs = db_->RecentRuns(kRepo, 1);
    EXPECT_TRUE(runs.ok() && !runs->empty());
    auto files = db_->RunFiles(runs->front().id);
    EXPECT_TRUE(files.ok());
    for (const RunFileRow& f : *files) {
      if (f.path == "w.bin") return f.method + (f.note.empty() ? "" : " (" + f.note + ")");
    }
    return "(no row)";
  }
};

TEST_F(DeltaMutationTest, FlippedDeltasAndSignaturesFallBackAndServeExactlyV2) {
  const std::string v1 = testing::RandomBytes(3 << 20, 21);
  std::string v2 = v1;
  for (size_t at : {size_t{1000}, size_t{1500000}, size_t{3000000}}) {
    std::string noise = testing::RandomBytes(3000, at);
    v2.replace(at, noise.size(), noise);
  }
  WriteFile(model_ + "/w.bin", v1);
  Publish();
  const std::string repo_dir = pub_ + "/" + kRepo;
  const std::string v1_pointer = ReadFile(repo_dir + "/latest");
  WriteFile(model_ + "/w.bin", v2);
  std::string rev2 = Publish();
  const std::string v2_pointer = ReadFile(repo_dir + "/latest");
  auto manifest = ParseManifest(ReadFile(repo_dir + "/" + PublishedManifestPath(rev2)));
  ASSERT_TRUE(manifest.ok());
  const ManifestEntry& entry = manifest->files[0];
  ASSERT_EQ(entry.deltas.size(), 1u);
  const std::string delta_rel = testing::DeltaRelPath(v1, v2);
  const std::string sig_rel = testing::SignatureRelPath(v2, entry.signature.block_len);
  const std::string manifest_path = repo_dir + "/" + PublishedManifestPath(rev2);
  const std::string manifest_text = ReadFile(manifest_path);
  const std::string delta = ReadFile(repo_dir + "/" + delta_rel);
  const std::string signature = ReadFile(repo_dir + "/" + sig_rel);

  std::mt19937_64 rng(2026);
  std::map<std::string, int> methods;
  for (int round = 0; round < 24; ++round) {
    const bool damage_delta = round % 2 == 0;
    SCOPED_TRACE("round " + std::to_string(round) + (damage_delta ? " delta" : " signature"));
    ResetNodeToV1(v1_pointer);
    // Back to the pristine v2 publication, then damage one file.
    WriteFile(manifest_path, manifest_text);
    WriteFile(repo_dir + "/" + delta_rel, delta);
    WriteFile(repo_dir + "/" + sig_rel, signature);
    WriteFile(repo_dir + "/latest", v2_pointer);
    std::string bytes = damage_delta ? delta : signature;
    // The header most of the time, anywhere else otherwise.
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % 4 == 0 ? rng() % 16 : rng() % bytes.size();
      bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
    }
    if (!damage_delta) {
      // Signature-only rounds: the delta is gone from the manifest.
      ASSERT_EQ(testing::RewriteLatestManifest(repo_dir,
                                               [&](std::string m) {
                                                 size_t at = m.find(", \"deltas\": [");
                                                 size_t end = m.find("]", at);
                                                 return m.erase(at, end + 1 - at);
                                               }),
                "");
    }
    ASSERT_EQ(testing::ReplacePublishedFile(repo_dir, damage_delta ? delta_rel : sig_rel, bytes,
                                            /*fix_manifest=*/true),
              "");
    RepoSyncResult r = Sync();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.outcome, RunOutcome::kUpdated);
    EXPECT_EQ(testing::DiffTrees(model_, Served()), "");
    std::string method = Method();
    // A damaged delta is never the method that built the file.
    if (damage_delta) {
      EXPECT_NE(method.rfind("delta", 0), 0u) << method;
    }
    methods[method.substr(0, method.find(' '))]++;
  }
  for (const auto& [m, n] : methods) std::cout << "  " << m << ": " << n << " rounds\n";
  // Both fallbacks were exercised.
  EXPECT_GT(methods["ranges"], 0);
  EXPECT_GT(methods["whole"] + methods["ranges"], 12);
}

}  // namespace
}  // namespace sync_agent
