// Tests of StateDb against real SQLite files: opening and migrating, every
// method's contract, read-only access and a writer and a reader at once.
#include "common/db/state_db.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/base/time_util.h"
#include "common/db/sqlite.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::sync_agent::testing::ReadFile;
using ::sync_agent::testing::TempDir;
using ::sync_agent::testing::WriteFile;

constexpr const char* kRepo = "acme/llm-7b";

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

// A 64-character hex digest made of one repeated character, distinct per c.
std::string Sha(char c) { return std::string(64, c); }
std::string Xxh(char c) { return std::string(32, c); }

ManifestEntry Entry(const std::string& path, uint64_t size, char content) {
  ManifestEntry e;
  e.path = path;
  e.size = size;
  e.mode = 0644;
  e.sha256 = Sha(content);
  e.xxh3_128 = Xxh(content);
  return e;
}

Manifest MakeManifest(const std::string& revision, std::vector<ManifestEntry> files,
                      const std::string& repo = kRepo) {
  Manifest m;
  m.repo = repo;
  m.revision = revision;
  m.created = "2026-11-25T03:04:05Z";
  m.files = std::move(files);
  std::sort(m.files.begin(), m.files.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return m;
}

std::unique_ptr<StateDb> OpenOrDie(const std::string& path) {
  auto db = StateDb::Open(path);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

// A plain connection for looking at the file behind StateDb's back.
std::unique_ptr<SqliteDatabase> RawOpen(const std::string& path) {
  auto db = SqliteDatabase::Open(path, SqliteDatabase::Mode::kReadWriteCreate);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

int64_t RawInt(const std::string& path, const std::string& sql) {
  auto db = RawOpen(path);
  if (db == nullptr) return -1;
  auto value = db->QueryInt64(sql);
  EXPECT_TRUE(value.ok()) << value.status().ToString();
  return value.ok() ? *value : -1;
}

class StateDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("state.db");
    db_ = OpenOrDie(path_);
    ASSERT_NE(db_, nullptr);
  }

  int64_t Record(const std::string& revision, std::vector<ManifestEntry> files,
                 const std::string& repo = kRepo) {
    Manifest m = MakeManifest(revision, std::move(files), repo);
    auto id = db_->RecordRevision(repo, m, Sha('m') + revision, "origin");
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : -1;
  }

  RevisionState StateOf(const std::string& revision, const std::string& repo = kRepo) {
    auto row = db_->GetRevision(repo, revision);
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    EXPECT_TRUE(row.ok() && row->has_value()) << revision;
    return row.ok() && row->has_value() ? (*row)->state : RevisionState::kStaged;
  }

  std::vector<std::string> Unreferenced() {
    auto list = db_->UnreferencedObjects();
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? *list : std::vector<std::string>{"<error>"};
  }

  void PutObjects(const std::string& chars) {
    for (char c : chars) {
      ObjectRow o;
      o.sha256 = Sha(c);
      o.xxh3_128 = Xxh(c);
      o.size = 10;
      ASSERT_TRUE(db_->PutObject(o).ok());
    }
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<StateDb> db_;
};

// ---------------------------------------------------------------- opening

TEST_F(StateDbTest, OpenCreatesSchemaAndSetsUserVersion) {
  EXPECT_GE(StateDb::LatestSchemaVersion(), 1);
  EXPECT_EQ(db_->SchemaVersion(), StateDb::LatestSchemaVersion());
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), StateDb::LatestSchemaVersion());
  for (const char* table :
       {"repos", "revisions", "files", "objects", "sync_runs", "partial_transfers", "poll_state"}) {
    EXPECT_EQ(RawInt(path_, std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                        "AND name = '") +
                                table + "'"),
              1)
        << table;
  }
}

TEST_F(StateDbTest, ReopeningIsIdempotentAndKeepsData) {
  ASSERT_TRUE(db_->EnsureRepo(kRepo).ok());
  Record("r1", {Entry("a.bin", 5, 'a')});
  db_.reset();
  for (int i = 0; i < 2; ++i) {
    auto db = OpenOrDie(path_);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->SchemaVersion(), StateDb::LatestSchemaVersion());
    auto names = db->RepoNames();
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, std::vector<std::string>{kRepo});
    auto rev = db->GetRevision(kRepo, "r1");
    ASSERT_TRUE(rev.ok());
    ASSERT_TRUE(rev->has_value());
    EXPECT_EQ((*rev)->file_count, 1u);
  }
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), StateDb::LatestSchemaVersion());
}

TEST_F(StateDbTest, NewerSchemaVersionIsRefusedAndLeftUntouched) {
  db_.reset();
  int newer = StateDb::LatestSchemaVersion() + 1;
  {
    auto raw = RawOpen(path_);
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->Exec("PRAGMA user_version = " + std::to_string(newer)).ok());
  }
  for (bool read_only : {false, true}) {
    auto db = read_only ? StateDb::OpenReadOnly(path_) : StateDb::Open(path_);
    ASSERT_FALSE(db.ok()) << "read_only=" << read_only;
    EXPECT_EQ(db.status().code(), Status::Code::kUnsupported);
    const std::string& message = db.status().message();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("upgrade sync-agent"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(newer)), std::string::npos) << message;
  }
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), newer);
}

TEST(StateDbOpenTest, NonDatabaseFileIsRefusedWithClearMessage) {
  TempDir dir;
  std::string path = dir.Sub("state.db");
  std::string junk = "this is a text file, not a database\n";
  for (int i = 0; i < 6; ++i) junk += junk;
  WriteFile(path, junk);
  for (bool read_only : {false, true}) {
    auto db = read_only ? StateDb::OpenReadOnly(path) : StateDb::Open(path);
    ASSERT_FALSE(db.ok()) << "read_only=" << read_only;
    EXPECT_EQ(db.status().code(), Status::Code::kCorruption);
    const std::string& message = db.status().message();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("not a database"), std::string::npos) << message;
  }
  EXPECT_EQ(ReadFile(path), junk);
}

TEST(StateDbOpenTest, MissingDirectoryIsNamed) {
  TempDir dir;
  std::string missing_dir = dir.Sub("no-such-dir");
  auto db = StateDb::Open(missing_dir + "/state.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Status::Code::kNotFound) << db.status().ToString();
  EXPECT_NE(db.status().message().find(missing_dir), std::string::npos) << db.status().message();
  EXPECT_FALSE(testing::PathExists(missing_dir));
}

TEST(StateDbOpenTest, OpenReadOnlyOfMissingFileIsNotFound) {
  TempDir dir;
  std::string path = dir.Sub("state.db");
  auto db = StateDb::OpenReadOnly(path);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(db.status().IsNotFound()) << db.status().ToString();
  EXPECT_NE(db.status().message().find(path), std::string::npos);
  EXPECT_FALSE(testing::PathExists(path));
}

TEST(StateDbOpenTest, OpenReadOnlyRefusesUnmigratedDatabase) {
  TempDir dir;
  std::string path = dir.Sub("state.db");
  {
    auto raw = RawOpen(path);
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->Exec("CREATE TABLE unrelated (n INTEGER)").ok());
  }
  auto db = StateDb::OpenReadOnly(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Status::Code::kUnsupported) << db.status().ToString();
  EXPECT_NE(db.status().message().find("older"), std::string::npos) << db.status().message();
}

TEST(StateDbOpenTest, FailedMigrationIsRolledBackEntirely) {
  TempDir dir;
  std::string path = dir.Sub("state.db");
  {
    // A table in the way of a later CREATE TABLE in the first migration.
    auto raw = RawOpen(path);
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->Exec("CREATE TABLE sync_runs (n INTEGER)").ok());
  }
  auto db = StateDb::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("0001_init.sql"), std::string::npos)
      << db.status().message();
  EXPECT_NE(db.status().message().find("sync_runs"), std::string::npos) << db.status().message();
  EXPECT_EQ(RawInt(path, "PRAGMA user_version"), 0);
  EXPECT_EQ(RawInt(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'repos'"), 0);
}

TEST(StateDbOpenTest, GitColumnsOfVersion4BecomeProvenance) {
  // A database as sync-agent wrote it at schema version 4, with a revision
  // taken from git: migrations 0001..0004 applied by hand.
  TempDir dir;
  const std::string path = dir.Sub("state.db");
  const std::string commit(40, '1'), tree(40, '2'), blob(40, '3'), pointer(40, '4');
  {
    auto raw = RawOpen(path);
    ASSERT_NE(raw, nullptr);
    for (const char* name :
         {"0001_init.sql", "0002_transfer_methods.sql", "0003_git.sql", "0004_source_health.sql"}) {
      Status s = raw->Exec(ReadFile(std::string(SA_SOURCE_DIR) + "/schema/migrations/" + name));
      ASSERT_TRUE(s.ok()) << name << ": " << s.ToString();
    }
    ASSERT_TRUE(raw->Exec("PRAGMA user_version = 4").ok());
    ASSERT_TRUE(
        raw->Exec("INSERT INTO repos (id, name, created_at_ms) VALUES (1, 'acme/m', 1)").ok());
    ASSERT_TRUE(raw->Exec("INSERT INTO revisions (id, repo_id, revision, manifest_sha256, source, "
                          "created, state, fetched_at_ms, file_count, total_bytes, git_commit, "
                          "git_tree) VALUES (1, 1, '" +
                          commit + "', '" + Sha('m') +
                          "', '/git', '2026-01-01T00:00:00Z', 'active', 1, 2, 3, '" + commit +
                          "', '" + tree + "'), (2, 1, 'r2', '" + Sha('n') +
                          "', 'http://o', '2026-01-02T00:00:00Z', 'retained', 2, 0, 0, NULL, NULL)")
                    .ok());
    Status s = raw->Exec(
        "INSERT INTO files (revision_id, path, size, mode, sha256, xxh3_128, git_blob, "
        "git_lfs_oid) VALUES (1, 'config.json', 1, 420, '" +
        Sha('a') + "', '" + Xxh('a') + "', '" + blob + "', NULL), (1, 'model.bin', 2, 420, '" +
        Sha('b') + "', '', '" + pointer + "', '" + Sha('b') + "')");
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->SchemaVersion(), StateDb::LatestSchemaVersion());
  auto rev = db->GetRevision("acme/m", commit);
  ASSERT_TRUE(rev.ok() && rev->has_value()) << rev.status().ToString();
  EXPECT_EQ((*rev)->provenance, (Provenance{{"kind", "git"}, {"commit", commit}, {"tree", tree}}));
  EXPECT_EQ((*rev)->state, RevisionState::kActive);
  auto other = db->GetRevision("acme/m", "r2");
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_TRUE((*other)->provenance.empty());
  auto files = db->RevisionFiles((*rev)->id);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].provenance, (Provenance{{"blob", blob}}));
  EXPECT_EQ((*files)[1].provenance, (Provenance{{"blob", pointer}, {"lfs", "true"}}));
  EXPECT_EQ(RawInt(path, "SELECT count(*) FROM pragma_table_info('files') WHERE name LIKE 'git_%'"),
            0);
}

TEST_F(StateDbTest, HubIdsAndObjectsByBlobId) {
  std::vector<ManifestEntry> files = {Entry("config.json", 10, 'a'), Entry("model.bin", 20, 'b')};
  files[0].provenance["blob"] = std::string(40, '3');
  files[1].provenance = {{"blob", std::string(40, '4')}, {"lfs", "true"}};
  int64_t id = Record("r1", files);
  ASSERT_TRUE(db_->SetHubIds(id, std::string(40, '9'),
                             {{"config.json", std::string(40, '3'), false},
                              {"model.bin", std::string(40, '4'), true}})
                  .ok());
  auto rev = db_->GetRevision(kRepo, "r1");
  ASSERT_TRUE(rev.ok() && rev->has_value());
  EXPECT_EQ((*rev)->hub_sha, std::string(40, '9'));
  auto rows = db_->RevisionFiles(id);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].hub_oid, std::string(40, '3'));
  EXPECT_FALSE((*rows)[0].hub_lfs);
  EXPECT_TRUE((*rows)[1].hub_lfs);
  EXPECT_TRUE(db_->SetHubIds(id + 100, std::string(40, '9'), {}).IsNotFound());

  // A blob id finds the content only once the object is stored, and never an
  // LFS pointer's blob (its content is another file's).
  auto none = db_->FindObjectByBlob(std::string(40, '3'));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(db_->PutObject({Sha('a'), Xxh('a'), 10}).ok());
  ASSERT_TRUE(db_->PutObject({Sha('b'), Xxh('b'), 20}).ok());
  auto found = db_->FindObjectByBlob(std::string(40, '3'));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->sha256, Sha('a'));
  EXPECT_EQ((*found)->size, 10u);
  auto pointer = db_->FindObjectByBlob(std::string(40, '4'));
  ASSERT_TRUE(pointer.ok());
  EXPECT_FALSE(pointer->has_value());
}

TEST_F(StateDbTest, WalModeIsOn) {
  auto raw = RawOpen(path_);
  ASSERT_NE(raw, nullptr);
  auto mode = raw->QueryText("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok()) << mode.status().ToString();
  EXPECT_EQ(*mode, "wal");
  ASSERT_TRUE(db_->EnsureRepo(kRepo).ok());
  EXPECT_TRUE(testing::PathExists(path_ + "-wal"));
}

// ---------------------------------------------------------------- repositories

TEST_F(StateDbTest, EnsureRepoIsIdempotentAndRepoNamesAreSorted) {
  auto first = db_->EnsureRepo("zeta/model");
  auto second = db_->EnsureRepo("alpha/model");
  auto again = db_->EnsureRepo("zeta/model");
  ASSERT_TRUE(first.ok() && second.ok() && again.ok());
  EXPECT_EQ(*first, *again);
  EXPECT_NE(*first, *second);
  auto names = db_->RepoNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"alpha/model", "zeta/model"}));
  EXPECT_EQ(db_->EnsureRepo("").status().code(), Status::Code::kInvalidArgument);
}

// ---------------------------------------------------------------- revisions and files

TEST_F(StateDbTest, RecordRevisionStoresRevisionAndFiles) {
  int64_t before = NowMs();
  Manifest m = MakeManifest("r1", {Entry("weights/b.safetensors", 1000, 'b'),
                                   Entry("config.json", 12, 'c'), Entry("run.sh", 3, 'd')});
  m.files[1].mode = 0755;  // run.sh after sorting
  ASSERT_EQ(m.files[1].path, "run.sh");
  auto id = db_->RecordRevision(kRepo, m, Sha('m'), "https://origin.example/acme");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  int64_t after = NowMs();

  auto row = db_->GetRevision(kRepo, "r1");
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(row->has_value());
  const RevisionRow& r = **row;
  EXPECT_EQ(r.id, *id);
  EXPECT_EQ(r.revision, "r1");
  EXPECT_EQ(r.manifest_sha256, Sha('m'));
  EXPECT_EQ(r.source, "https://origin.example/acme");
  EXPECT_EQ(r.created, "2026-11-25T03:04:05Z");
  EXPECT_EQ(r.state, RevisionState::kStaged);
  EXPECT_GE(r.fetched_at_ms, before);
  EXPECT_LE(r.fetched_at_ms, after);
  EXPECT_EQ(r.activated_at_ms, 0);
  EXPECT_EQ(r.file_count, 3u);
  EXPECT_EQ(r.total_bytes, 1015u);

  auto files = db_->RevisionFiles(*id);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 3u);
  for (size_t i = 0; i < m.files.size(); ++i) {
    EXPECT_EQ((*files)[i].path, m.files[i].path);
    EXPECT_EQ((*files)[i].size, m.files[i].size);
    EXPECT_EQ((*files)[i].mode, m.files[i].mode);
    EXPECT_EQ((*files)[i].sha256, m.files[i].sha256);
    EXPECT_EQ((*files)[i].xxh3_128, m.files[i].xxh3_128);
  }

  auto missing = db_->GetRevision(kRepo, "r2");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto other_repo = db_->GetRevision("other/repo", "r1");
  ASSERT_TRUE(other_repo.ok());
  EXPECT_FALSE(other_repo->has_value());
}

TEST_F(StateDbTest, RevisionFilesOfEmptyAndUnknownRevisions) {
  int64_t id = Record("empty", {});
  auto files = db_->RevisionFiles(id);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_TRUE(files->empty());
  EXPECT_TRUE(db_->RevisionFiles(id + 1000).status().IsNotFound());
}

TEST_F(StateDbTest, RecordingTheSameRevisionAgainReturnsTheExistingId) {
  int64_t id = Record("r1", {Entry("a", 1, 'a')});
  // The second manifest lists other files: the recorded ones must stay.
  Manifest again = MakeManifest("r1", {Entry("b", 2, 'b')});
  auto second = db_->RecordRevision(kRepo, again, Sha('m') + "r1", "mirror");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, id);
  auto files = db_->RevisionFiles(id);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "a");
  auto all = db_->ListRevisions(kRepo);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(StateDbTest, RecordingARevisionWithAnotherManifestIsCorruption) {
  Record("r1", {Entry("a", 1, 'a')});
  Manifest changed = MakeManifest("r1", {Entry("a", 1, 'z')});
  auto id = db_->RecordRevision(kRepo, changed, Sha('x'), "origin");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kCorruption);
  EXPECT_NE(id.status().message().find(Sha('x')), std::string::npos) << id.status().message();
}

TEST_F(StateDbTest, RecordRevisionRefusesAManifestOfAnotherRepository) {
  Manifest m = MakeManifest("r1", {Entry("a", 1, 'a')}, "other/repo");
  auto id = db_->RecordRevision(kRepo, m, Sha('m'), "origin");
  EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument) << id.status().ToString();
  auto revisions = db_->ListRevisions(kRepo);
  ASSERT_TRUE(revisions.ok());
  EXPECT_TRUE(revisions->empty());
}

TEST_F(StateDbTest, RecordRevisionIsAllOrNothing) {
  // The second file row violates the primary key (revision, path).
  Manifest m;
  m.repo = kRepo;
  m.revision = "r1";
  m.created = "2026-11-25T03:04:05Z";
  m.files = {Entry("a", 1, 'a'), Entry("a", 2, 'b')};
  auto id = db_->RecordRevision(kRepo, m, Sha('m'), "origin");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("file a"), std::string::npos) << id.status().message();
  auto row = db_->GetRevision(kRepo, "r1");
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row->has_value());
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM files"), 0);
  // The connection is usable afterwards.
  EXPECT_GT(Record("r2", {Entry("a", 1, 'a')}), 0);
}

TEST_F(StateDbTest, RecordRevisionWithHundredThousandFilesIsFast) {
  constexpr int kFiles = 100000;
  Manifest m;
  m.repo = kRepo;
  m.revision = "big";
  m.created = "2026-11-25T03:04:05Z";
  m.files.reserve(kFiles);
  for (int i = 0; i < kFiles; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "shards/%06d.bin", i);
    ManifestEntry e;
    e.path = name;
    e.size = static_cast<uint64_t>(i);
    e.sha256 = std::string(58, 'f') + std::string(name + 7, 6);
    e.xxh3_128 = std::string(26, 'e') + std::string(name + 7, 6);
    m.files.push_back(std::move(e));
  }
  // One transaction with one reused statement (RecordRevisionIsAllOrNothing
  // checks the transaction); speed is for benchmarks, not tests.
  auto id = db_->RecordRevision(kRepo, m, Sha('m'), "origin");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto files = db_->RevisionFiles(*id);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), static_cast<size_t>(kFiles));
  EXPECT_EQ((*files)[12345].path, "shards/012345.bin");
  EXPECT_EQ((*files)[12345].size, 12345u);
  auto row = db_->GetRevision(kRepo, "big");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->file_count, static_cast<uint64_t>(kFiles));
  EXPECT_EQ((*row)->total_bytes, static_cast<uint64_t>(kFiles) * (kFiles - 1) / 2);
}

TEST_F(StateDbTest, ActivateFlipsThePreviousActiveToRetained) {
  Record("r1", {Entry("a", 1, 'a')});
  Record("r2", {Entry("a", 1, 'b')});
  auto none = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1000).ok());
  auto active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, "r1");
  EXPECT_EQ((*active)->activated_at_ms, 1000);
  EXPECT_EQ(StateOf("r2"), RevisionState::kStaged);

  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r2", 2000).ok());
  active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, "r2");
  EXPECT_EQ((*active)->activated_at_ms, 2000);
  EXPECT_EQ(StateOf("r1"), RevisionState::kRetained);
  auto r1 = db_->GetRevision(kRepo, "r1");
  ASSERT_TRUE(r1.ok() && r1->has_value());
  EXPECT_EQ((*r1)->activated_at_ms, 1000);

  // Activating the active revision again changes nothing.
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r2", 3000).ok());
  active = db_->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->activated_at_ms, 2000);

  // Rolling back to a retained revision.
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 4000).ok());
  EXPECT_EQ(StateOf("r1"), RevisionState::kActive);
  EXPECT_EQ(StateOf("r2"), RevisionState::kRetained);
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM revisions WHERE state = 'active'"), 1);
}

TEST_F(StateDbTest, ActivationIsPerRepository) {
  Record("r1", {Entry("a", 1, 'a')}, "one/repo");
  Record("r1", {Entry("a", 1, 'a')}, "two/repo");
  ASSERT_TRUE(db_->ActivateRevision("one/repo", "r1", 1).ok());
  ASSERT_TRUE(db_->ActivateRevision("two/repo", "r1", 2).ok());
  EXPECT_EQ(StateOf("r1", "one/repo"), RevisionState::kActive);
  EXPECT_EQ(StateOf("r1", "two/repo"), RevisionState::kActive);
}

TEST_F(StateDbTest, ActivateRefusesUnknownAndCollectedRevisions) {
  EXPECT_TRUE(db_->ActivateRevision(kRepo, "nope", 1).IsNotFound());
  Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r1", RevisionState::kCollected).ok());
  Status status = db_->ActivateRevision(kRepo, "r1", 1);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
  EXPECT_EQ(StateOf("r1"), RevisionState::kCollected);
}

TEST_F(StateDbTest, SetRevisionStateGuardsTheActiveRevision) {
  Record("r1", {Entry("a", 1, 'a')});
  Record("r2", {Entry("a", 1, 'b')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r2", 1).ok());
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r1", RevisionState::kRetained).ok());
  EXPECT_EQ(StateOf("r1"), RevisionState::kRetained);
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r1", RevisionState::kCollected).ok());
  EXPECT_EQ(StateOf("r1"), RevisionState::kCollected);

  EXPECT_EQ(db_->SetRevisionState(kRepo, "r1", RevisionState::kActive).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(StateOf("r1"), RevisionState::kCollected);
  EXPECT_EQ(db_->SetRevisionState(kRepo, "r2", RevisionState::kCollected).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(StateOf("r2"), RevisionState::kActive);
  EXPECT_TRUE(db_->SetRevisionState(kRepo, "r3", RevisionState::kRetained).IsNotFound());
}

TEST_F(StateDbTest, RecordingACollectedRevisionStagesItAgain) {
  int64_t id = Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r1", RevisionState::kCollected).ok());
  EXPECT_EQ(Record("r1", {Entry("a", 1, 'a')}), id);
  EXPECT_EQ(StateOf("r1"), RevisionState::kStaged);
}

TEST_F(StateDbTest, ListRevisionsIsNewestFirst) {
  Record("r1", {});
  Record("r2", {});
  Record("r3", {});
  Record("other", {}, "other/repo");
  auto list = db_->ListRevisions(kRepo);
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const RevisionRow& r : *list) names.push_back(r.revision);
  EXPECT_EQ(names, (std::vector<std::string>{"r3", "r2", "r1"}));
  auto unknown = db_->ListRevisions("unknown/repo");
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());
}

// ---------------------------------------------------------------- objects

TEST_F(StateDbTest, ObjectsPutGetUpdateAndRemove) {
  auto missing = db_->GetObject(Sha('a'));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ObjectRow o;
  o.sha256 = Sha('a');
  o.xxh3_128 = Xxh('a');
  o.size = uint64_t{1} << 40;
  ASSERT_TRUE(db_->PutObject(o).ok());
  auto got = db_->GetObject(Sha('a'));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->sha256, Sha('a'));
  EXPECT_EQ((*got)->xxh3_128, Xxh('a'));
  EXPECT_EQ((*got)->size, uint64_t{1} << 40);

  o.size = 7;
  ASSERT_TRUE(db_->PutObject(o).ok());
  got = db_->GetObject(Sha('a'));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->size, 7u);

  PutObjects("cb");
  auto all = db_->AllObjects();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].sha256, Sha('a'));
  EXPECT_EQ((*all)[1].sha256, Sha('b'));
  EXPECT_EQ((*all)[2].sha256, Sha('c'));

  ASSERT_TRUE(db_->RemoveObject(Sha('b')).ok());
  ASSERT_TRUE(db_->RemoveObject(Sha('b')).ok());  // absent: still fine
  all = db_->AllObjects();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  got = db_->GetObject(Sha('b'));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(StateDbTest, UnreferencedObjectsIgnoreCollectedRevisions) {
  PutObjects("abcd");
  Record("r1", {Entry("x", 10, 'a'), Entry("y", 10, 'b')});
  Record("r2", {Entry("x", 10, 'b'), Entry("z", 10, 'c')});
  // Staged revisions hold their objects too (they are being fetched).
  EXPECT_EQ(Unreferenced(), std::vector<std::string>{Sha('d')});

  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1).ok());
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r2", 2).ok());
  EXPECT_EQ(StateOf("r1"), RevisionState::kRetained);
  EXPECT_EQ(Unreferenced(), std::vector<std::string>{Sha('d')});

  // 'a' is only in the collected revision; 'b' is still in the active one.
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r1", RevisionState::kCollected).ok());
  EXPECT_EQ(Unreferenced(), (std::vector<std::string>{Sha('a'), Sha('d')}));

  ASSERT_TRUE(db_->RemoveObject(Sha('a')).ok());
  ASSERT_TRUE(db_->RemoveObject(Sha('d')).ok());
  EXPECT_TRUE(Unreferenced().empty());

  // A reference from another repository counts as well.
  PutObjects("a");
  Record("r9", {Entry("w", 10, 'a')}, "other/repo");
  EXPECT_TRUE(Unreferenced().empty());
}

// ---------------------------------------------------------------- partial transfers

TEST_F(StateDbTest, PartialsUpsertGetListAndRemove) {
  auto none = db_->GetPartial(Sha('a'));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  PartialTransfer p;
  p.sha256 = Sha('a');
  p.url = "https://origin.example/objects/aa/aaaa";
  p.size = 1000;
  p.bytes_received = 100;
  p.updated_at_ms = 5000;
  ASSERT_TRUE(db_->UpsertPartial(p).ok());
  auto got = db_->GetPartial(Sha('a'));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->url, p.url);
  EXPECT_EQ((*got)->size, 1000u);
  EXPECT_EQ((*got)->bytes_received, 100u);
  EXPECT_EQ((*got)->updated_at_ms, 5000);

  int64_t before = NowMs();
  p.bytes_received = 600;
  p.updated_at_ms = 0;  // take the clock
  p.url = "https://mirror.example/objects/aa/aaaa";
  ASSERT_TRUE(db_->UpsertPartial(p).ok());
  got = db_->GetPartial(Sha('a'));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->bytes_received, 600u);
  EXPECT_EQ((*got)->url, p.url);
  EXPECT_GE((*got)->updated_at_ms, before);

  PartialTransfer q = p;
  q.sha256 = Sha('b');
  ASSERT_TRUE(db_->UpsertPartial(q).ok());
  auto list = db_->ListPartials();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].sha256, Sha('a'));
  EXPECT_EQ((*list)[1].sha256, Sha('b'));

  ASSERT_TRUE(db_->RemovePartial(Sha('a')).ok());
  ASSERT_TRUE(db_->RemovePartial(Sha('a')).ok());
  got = db_->GetPartial(Sha('a'));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  list = db_->ListPartials();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

// ---------------------------------------------------------------- poll state

TEST_F(StateDbTest, PollStateIsKeptPerRepositoryAndSource) {
  auto none = db_->GetPollState(kRepo, "origin");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  PollState s;
  s.etag = "\"abc\"";
  s.last_modified = "Tue, 25 Nov 2026 03:04:05 GMT";
  s.revision = "r1";
  s.pointer_sha256 = Sha('p');
  ASSERT_TRUE(db_->SetPollState(kRepo, "origin", s).ok());
  auto got = db_->GetPollState(kRepo, "origin");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->etag, s.etag);
  EXPECT_EQ((*got)->last_modified, s.last_modified);
  EXPECT_EQ((*got)->revision, "r1");
  EXPECT_EQ((*got)->pointer_sha256, Sha('p'));

  PollState other;
  other.revision = "r0";  // no etag, no last-modified
  ASSERT_TRUE(db_->SetPollState(kRepo, "mirror", other).ok());
  ASSERT_TRUE(db_->SetPollState("other/repo", "origin", other).ok());

  s.etag = "\"def\"";
  s.revision = "r2";
  ASSERT_TRUE(db_->SetPollState(kRepo, "origin", s).ok());
  got = db_->GetPollState(kRepo, "origin");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->etag, "\"def\"");
  EXPECT_EQ((*got)->revision, "r2");

  got = db_->GetPollState(kRepo, "mirror");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->etag, "");
  EXPECT_EQ((*got)->last_modified, "");
  EXPECT_EQ((*got)->revision, "r0");
  got = db_->GetPollState("other/repo", "origin");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->revision, "r0");
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM poll_state"), 3);
}

// ---------------------------------------------------------------- runs

TEST_F(StateDbTest, RunsBeginFinishAndListNewestFirst) {
  int64_t before = NowMs();
  auto first = db_->BeginRun(kRepo, "once", "");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto runs = db_->RecentRuns(kRepo, 10);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  const RunRow& running = (*runs)[0];
  EXPECT_EQ(running.id, *first);
  EXPECT_EQ(running.repo, kRepo);
  EXPECT_EQ(running.trigger, "once");
  EXPECT_EQ(running.outcome, RunOutcome::kRunning);
  EXPECT_EQ(running.finished_at_ms, 0);
  EXPECT_EQ(running.from_revision, "");
  EXPECT_GE(running.started_at_ms, before);
  EXPECT_LE(running.started_at_ms, NowMs());

  RunRow result;
  result.outcome = RunOutcome::kUpdated;
  result.finished_at_ms = running.started_at_ms + 1234;
  result.to_revision = "r1";
  result.source = "origin";
  result.bytes_downloaded = uint64_t{5} << 40;
  result.bytes_reused = 20;
  result.files_downloaded = 3;
  result.files_reused = 4;
  ASSERT_TRUE(db_->FinishRun(*first, result).ok());

  auto second = db_->BeginRun(kRepo, "daemon", "r1");
  ASSERT_TRUE(second.ok());
  result = RunRow();
  result.outcome = RunOutcome::kFailed;
  result.error = "network error: connection refused";
  ASSERT_TRUE(db_->FinishRun(*second, result).ok());
  auto third = db_->BeginRun(kRepo, "daemon", "r1");
  ASSERT_TRUE(third.ok());

  runs = db_->RecentRuns(kRepo, 2);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, *third);
  EXPECT_EQ((*runs)[1].id, *second);
  EXPECT_EQ((*runs)[1].outcome, RunOutcome::kFailed);
  EXPECT_EQ((*runs)[1].from_revision, "r1");
  EXPECT_EQ((*runs)[1].error, "network error: connection refused");
  EXPECT_GT((*runs)[1].finished_at_ms, 0);  // taken from the clock

  runs = db_->RecentRuns(kRepo, 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 3u);
  const RunRow& done = (*runs)[2];
  EXPECT_EQ(done.outcome, RunOutcome::kUpdated);
  EXPECT_EQ(done.finished_at_ms, done.started_at_ms + 1234);
  EXPECT_EQ(done.to_revision, "r1");
  EXPECT_EQ(done.source, "origin");
  EXPECT_EQ(done.bytes_downloaded, uint64_t{5} << 40);
  EXPECT_EQ(done.bytes_reused, 20u);
  EXPECT_EQ(done.files_downloaded, 3u);
  EXPECT_EQ(done.files_reused, 4u);
  EXPECT_EQ(done.error, "");

  auto other = db_->RecentRuns("other/repo", 10);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_F(StateDbTest, RunFilesAndSavingTotals) {
  auto first = db_->BeginRun(kRepo, "once", "");
  ASSERT_TRUE(first.ok());
  RunRow result;
  result.outcome = RunOutcome::kUpdated;
  result.bytes_downloaded = 300;
  result.changed_bytes = 1000;
  result.changed_bytes_reused = 800;
  ASSERT_TRUE(db_->FinishRun(*first, result).ok());
  std::vector<RunFileRow> files = {
      {"w/b.bin", "bb", 1000, "delta", "aa", 250, 800, ""},
      {"a.json", "cc", 10, "whole", "", 10, 0, "no signature (small file)"},
      {"c.txt", "dd", 5, "reuse", "", 0, 5, ""},
  };
  ASSERT_TRUE(db_->RecordRunFiles(*first, files).ok());
  // Recording again replaces, it does not add.
  files[0].bytes_fetched = 200;
  ASSERT_TRUE(db_->RecordRunFiles(*first, files).ok());
  auto got = db_->RunFiles(*first);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].path, "a.json");
  EXPECT_EQ((*got)[0].note, "no signature (small file)");
  EXPECT_EQ((*got)[2].path, "w/b.bin");
  EXPECT_EQ((*got)[2].method, "delta");
  EXPECT_EQ((*got)[2].basis_sha256, "aa");
  EXPECT_EQ((*got)[2].bytes_fetched, 200u);
  EXPECT_EQ((*got)[2].bytes_reused, 800u);

  // An unknown method is refused by the schema and nothing is replaced.
  std::vector<RunFileRow> bad = {{"x", "ee", 1, "teleport", "", 0, 0, ""}};
  EXPECT_FALSE(db_->RecordRunFiles(*first, bad).ok());
  got = db_->RunFiles(*first);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 3u);

  // A failed run and an unchanged run do not count towards the saving.
  auto second = db_->BeginRun(kRepo, "once", "r1");
  ASSERT_TRUE(second.ok());
  RunRow failed;
  failed.outcome = RunOutcome::kFailed;
  failed.changed_bytes = 5000;
  ASSERT_TRUE(db_->FinishRun(*second, failed).ok());
  auto third = db_->BeginRun(kRepo, "once", "r1");
  ASSERT_TRUE(third.ok());
  result.bytes_downloaded = 100;
  result.changed_bytes = 1000;
  result.changed_bytes_reused = 900;
  ASSERT_TRUE(db_->FinishRun(*third, result).ok());

  auto saving = db_->Saving(kRepo);
  ASSERT_TRUE(saving.ok());
  EXPECT_EQ(saving->runs, 2u);
  EXPECT_EQ(saving->changed_bytes, 2000u);
  EXPECT_EQ(saving->changed_bytes_reused, 1700u);
  EXPECT_EQ(saving->bytes_downloaded, 400u);
  auto summaries = db_->Summaries();
  ASSERT_TRUE(summaries.ok());
  ASSERT_EQ(summaries->size(), 1u);
  ASSERT_TRUE((*summaries)[0].last_update.has_value());
  EXPECT_EQ((*summaries)[0].last_update->id, *third);
  EXPECT_EQ((*summaries)[0].last_update->changed_bytes_reused, 900u);
  EXPECT_EQ((*summaries)[0].saving.changed_bytes, 2000u);
}

TEST_F(StateDbTest, FinishRunRejectsUnknownRunsAndRunningOutcome) {
  RunRow result;
  result.outcome = RunOutcome::kUnchanged;
  EXPECT_TRUE(db_->FinishRun(12345, result).IsNotFound());
  auto id = db_->BeginRun(kRepo, "once", "");
  ASSERT_TRUE(id.ok());
  result.outcome = RunOutcome::kRunning;
  EXPECT_EQ(db_->FinishRun(*id, result).code(), Status::Code::kInvalidArgument);
}

TEST_F(StateDbTest, CloseAbandonedRunsMarksOnlyRunningRunsInterrupted) {
  auto finished = db_->BeginRun(kRepo, "once", "");
  auto abandoned = db_->BeginRun(kRepo, "daemon", "");
  auto abandoned_elsewhere = db_->BeginRun("other/repo", "daemon", "");
  ASSERT_TRUE(finished.ok() && abandoned.ok() && abandoned_elsewhere.ok());
  RunRow result;
  result.outcome = RunOutcome::kUnchanged;
  ASSERT_TRUE(db_->FinishRun(*finished, result).ok());

  ASSERT_TRUE(db_->CloseAbandonedRuns("the agent stopped during the run").ok());
  auto runs = db_->RecentRuns(kRepo, 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].outcome, RunOutcome::kInterrupted);
  EXPECT_EQ((*runs)[0].error, "the agent stopped during the run");
  EXPECT_EQ((*runs)[0].finished_at_ms, 0);
  EXPECT_EQ((*runs)[1].outcome, RunOutcome::kUnchanged);
  EXPECT_EQ((*runs)[1].error, "");
  runs = db_->RecentRuns("other/repo", 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].outcome, RunOutcome::kInterrupted);
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM sync_runs WHERE outcome = 'running'"), 0);
}

// ---------------------------------------------------------------- status

TEST_F(StateDbTest, SummariesShowActiveRevisionLastRunAndLastSuccess) {
  Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1000).ok());
  auto ok_run = db_->BeginRun(kRepo, "once", "");
  ASSERT_TRUE(ok_run.ok());
  RunRow result;
  result.outcome = RunOutcome::kUpdated;
  result.to_revision = "r1";
  ASSERT_TRUE(db_->FinishRun(*ok_run, result).ok());
  auto failed_run = db_->BeginRun(kRepo, "daemon", "r1");
  ASSERT_TRUE(failed_run.ok());
  result = RunRow();
  result.outcome = RunOutcome::kFailed;
  result.error = "boom";
  ASSERT_TRUE(db_->FinishRun(*failed_run, result).ok());
  ASSERT_TRUE(db_->EnsureRepo("aaa/fresh").ok());

  auto summaries = db_->Summaries();
  ASSERT_TRUE(summaries.ok()) << summaries.status().ToString();
  ASSERT_EQ(summaries->size(), 2u);
  const RepoSummary& fresh = (*summaries)[0];
  EXPECT_EQ(fresh.name, "aaa/fresh");
  EXPECT_FALSE(fresh.active.has_value());
  EXPECT_FALSE(fresh.last_run.has_value());
  EXPECT_FALSE(fresh.last_success.has_value());

  const RepoSummary& repo = (*summaries)[1];
  EXPECT_EQ(repo.name, kRepo);
  ASSERT_TRUE(repo.active.has_value());
  EXPECT_EQ(repo.active->revision, "r1");
  EXPECT_EQ(repo.active->activated_at_ms, 1000);
  ASSERT_TRUE(repo.last_run.has_value());
  EXPECT_EQ(repo.last_run->id, *failed_run);
  EXPECT_EQ(repo.last_run->outcome, RunOutcome::kFailed);
  EXPECT_EQ(repo.last_run->error, "boom");
  ASSERT_TRUE(repo.last_success.has_value());
  EXPECT_EQ(repo.last_success->id, *ok_run);
  EXPECT_EQ(repo.last_success->outcome, RunOutcome::kUpdated);
}

TEST_F(StateDbTest, EnumNamesMatchTheSchema) {
  EXPECT_STREQ(RevisionStateName(RevisionState::kStaged), "staged");
  EXPECT_STREQ(RevisionStateName(RevisionState::kActive), "active");
  EXPECT_STREQ(RevisionStateName(RevisionState::kRetained), "retained");
  EXPECT_STREQ(RevisionStateName(RevisionState::kCollected), "collected");
  EXPECT_STREQ(RunOutcomeName(RunOutcome::kRunning), "running");
  EXPECT_STREQ(RunOutcomeName(RunOutcome::kUnchanged), "unchanged");
  EXPECT_STREQ(RunOutcomeName(RunOutcome::kUpdated), "updated");
  EXPECT_STREQ(RunOutcomeName(RunOutcome::kFailed), "failed");
  EXPECT_STREQ(RunOutcomeName(RunOutcome::kInterrupted), "interrupted");
}

// ---------------------------------------------------------------- concurrency and read-only

TEST_F(StateDbTest, OpenReadOnlyReadsButCannotWrite) {
  Record("r1", {Entry("a", 1, 'a')});
  Record("r2", {Entry("a", 1, 'b')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1).ok());
  db_.reset();

  auto ro = StateDb::OpenReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  StateDb& db = **ro;
  EXPECT_EQ(db.SchemaVersion(), StateDb::LatestSchemaVersion());
  auto summaries = db.Summaries();
  ASSERT_TRUE(summaries.ok()) << summaries.status().ToString();
  ASSERT_EQ(summaries->size(), 1u);
  ASSERT_TRUE((*summaries)[0].active.has_value());
  EXPECT_EQ((*summaries)[0].active->revision, "r1");

  Status write = db.EnsureRepo("new/repo").status();
  EXPECT_FALSE(write.ok());
  EXPECT_NE(write.message().find("readonly"), std::string::npos) << write.message();
  EXPECT_FALSE(db.BeginRun(kRepo, "once", "").ok());
  ObjectRow o;
  o.sha256 = Sha('a');
  EXPECT_FALSE(db.PutObject(o).ok());
  EXPECT_FALSE(db.ActivateRevision(kRepo, "r2", 2).ok());
  EXPECT_FALSE(db.SetRevisionState(kRepo, "r2", RevisionState::kCollected).ok());
  EXPECT_FALSE(db.CloseAbandonedRuns("x").ok());
  auto names = db.RepoNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{kRepo});
}

TEST_F(StateDbTest, ReaderKeepsItsSnapshotWhileAWriterCommits) {
  Record("r1", {Entry("a", 1, 'a')});

  // The reader holds a read transaction open, as `status` does while it reads.
  auto reader = SqliteDatabase::Open(path_, SqliteDatabase::Mode::kReadOnly);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto snapshot = SqliteTransaction::Begin(reader->get(), SqliteTransaction::Kind::kDeferred);
  ASSERT_TRUE(snapshot.ok());
  auto count = (*reader)->QueryInt64("SELECT count(*) FROM revisions");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);

  // Without WAL this commit would wait for the reader and fail with kBusy.
  EXPECT_GT(Record("r2", {Entry("b", 1, 'b')}), 0);
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r2", 1).ok());

  count = (*reader)->QueryInt64("SELECT count(*) FROM revisions");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);  // still its snapshot
  ASSERT_TRUE(snapshot->Commit().ok());
  count = (*reader)->QueryInt64("SELECT count(*) FROM revisions");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2);

  // A second StateDb on the same file sees the writer's commits.
  auto second = StateDb::OpenReadOnly(path_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  auto active = (*second)->ActiveRevision(kRepo);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->revision, "r2");
}

TEST_F(StateDbTest, TwoWritersTakeTurns) {
  auto other = OpenOrDie(path_);
  ASSERT_NE(other, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(db_->BeginRun(kRepo, "once", "").ok());
    ASSERT_TRUE(other->BeginRun(kRepo, "daemon", "").ok());
  }
  auto runs = db_->RecentRuns(kRepo, 0);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 10u);
}

// ---------------------------------------------------------------- organisation globs (0010)

TEST_F(StateDbTest, OrgDiscoveriesReplaceTheFollowedRowsAndAFailureKeepsThem) {
  OrgFollowRow ok{"acme/*", "https://hub/api/models?author=acme", 100, 100, ""};
  std::vector<OrgRepoRow> rows = {{"acme/*", "acme/a", "acme/a", 100, 0},
                                  {"acme/*", "acme/b", "acme/b", 100, 150}};
  ASSERT_TRUE(db_->SaveOrgDiscovery(ok, &rows).ok());
  // A failure: the error is recorded, ok_at and the followed rows stay.
  OrgFollowRow failed{"acme/*", "https://hub/api/models?author=acme", 200, 0, "hub down"};
  ASSERT_TRUE(db_->SaveOrgDiscovery(failed, nullptr).ok());
  auto follows = db_->OrgFollows();
  ASSERT_TRUE(follows.ok()) << follows.status().ToString();
  ASSERT_EQ(follows->size(), 1u);
  EXPECT_EQ((*follows)[0].checked_at_ms, 200);
  EXPECT_EQ((*follows)[0].ok_at_ms, 100);
  EXPECT_EQ((*follows)[0].error, "hub down");
  auto kept = db_->OrgRepos();
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[1].missing_since_ms, 150);
  // A success replaces the rows and clears the error.
  std::vector<OrgRepoRow> now = {{"acme/*", "acme/c", "acme/c", 300, 0}};
  ASSERT_TRUE(db_->SaveOrgDiscovery({"acme/*", "u", 300, 300, ""}, &now).ok());
  follows = db_->OrgFollows();
  ASSERT_TRUE(follows.ok());
  EXPECT_EQ((*follows)[0].error, "");
  EXPECT_EQ((*follows)[0].ok_at_ms, 300);
  kept = db_->OrgRepos();
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].repo, "acme/c");
  // A glob no longer configured is forgotten with its rows.
  ASSERT_TRUE(db_->ForgetOrgFollowsExcept({"beta/*"}).ok());
  EXPECT_TRUE(db_->OrgFollows()->empty());
  EXPECT_TRUE(db_->OrgRepos()->empty());
}

TEST_F(StateDbTest, DeleteRepoRemovesItsRowsAndFreesOnlyItsObjects) {
  PutObjects("abc");
  Record("r1", {Entry("a", 10, 'a'), Entry("shared", 10, 'c')}, "acme/gone");
  Record("r1", {Entry("b", 10, 'b'), Entry("shared", 10, 'c')}, "acme/stays");
  ASSERT_TRUE(db_->ActivateRevision("acme/gone", "r1", 1).ok());
  ASSERT_TRUE(db_->ActivateRevision("acme/stays", "r1", 1).ok());
  ASSERT_TRUE(db_->BeginRun("acme/gone", "once", "").ok());
  VerificationRow v;
  v.repo = "acme/gone";
  ASSERT_TRUE(db_->RecordVerification(v).ok());
  std::vector<OrgRepoRow> rows = {{"acme/*", "acme/gone", "acme/gone", 1, 2}};
  ASSERT_TRUE(db_->SaveOrgDiscovery({"acme/*", "u", 2, 2, ""}, &rows).ok());
  EXPECT_TRUE(Unreferenced().empty());

  ASSERT_TRUE(db_->DeleteRepo("acme/gone").ok());
  auto names = db_->RepoNames();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"acme/stays"});
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM sync_runs"), 0);
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM verifications"), 0);
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM org_repos"), 0);
  // Its own object is free; the shared one is still listed by the other.
  EXPECT_EQ(Unreferenced(), std::vector<std::string>{Sha('a')});
  EXPECT_TRUE(db_->DeleteRepo("acme/never").ok());
}

}  // namespace
}  // namespace sync_agent

namespace sync_agent {
namespace {

FinishedRun Check(const std::string& repo, RunOutcome outcome, const std::string& revision,
                  int64_t at_ms, const std::string& source = "http://origin/") {
  FinishedRun run;
  run.row.repo = repo;
  run.row.trigger = "daemon";
  run.row.outcome = outcome;
  run.row.from_revision = revision;
  run.row.to_revision = outcome == RunOutcome::kUnchanged ? revision : "";
  run.row.source = source;
  run.row.started_at_ms = at_ms;
  run.row.finished_at_ms = at_ms + 5;
  if (outcome == RunOutcome::kFailed) run.row.error = "network: connect refused";
  return run;
}

TEST_F(StateDbTest, ConsecutiveUnchangedChecksShareOneRunRow) {
  ASSERT_TRUE(db_->RecordFinishedRuns({Check(kRepo, RunOutcome::kUnchanged, "r1", 1000),
                                       Check("other/repo", RunOutcome::kUnchanged, "r9", 1000)})
                  .ok());
  ASSERT_TRUE(db_->RecordFinishedRuns({Check(kRepo, RunOutcome::kUnchanged, "r1", 2000)}).ok());
  ASSERT_TRUE(db_->RecordFinishedRuns({Check(kRepo, RunOutcome::kUnchanged, "r1", 3000)}).ok());
  auto runs = db_->RecentRuns(kRepo, 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].checks, 3u);
  EXPECT_EQ((*runs)[0].first_started_at_ms, 1000);
  EXPECT_EQ((*runs)[0].started_at_ms, 3000);
  EXPECT_EQ((*runs)[0].finished_at_ms, 3005);
  // A failure, another revision or another source starts a new row.
  ASSERT_TRUE(db_->RecordFinishedRuns({Check(kRepo, RunOutcome::kFailed, "r1", 4000),
                                       Check(kRepo, RunOutcome::kUnchanged, "r1", 5000),
                                       Check(kRepo, RunOutcome::kUnchanged, "r2", 6000),
                                       Check(kRepo, RunOutcome::kUnchanged, "r2", 7000, "m/")})
                  .ok());
  runs = db_->RecentRuns(kRepo, 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 5u);
  EXPECT_EQ((*runs)[0].source, "m/");
  EXPECT_EQ((*runs)[1].from_revision, "r2");
  EXPECT_EQ((*runs)[2].checks, 1u);
  EXPECT_EQ((*runs)[2].first_started_at_ms, 5000);  // a row of one run: its own start
  EXPECT_EQ((*runs)[3].outcome, RunOutcome::kFailed);
  EXPECT_EQ((*runs)[3].error, "network: connect refused");
  auto other = db_->RecentRuns("other/repo", 0);
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].checks, 1u);
}

TEST_F(StateDbTest, FinishedRunsRecordHealthAndPollStateAndRefuseAnUpdate) {
  FinishedRun run = Check(kRepo, RunOutcome::kUnchanged, "r1", 1000);
  SourceHealthRow h;
  h.url = "http://origin/";
  h.requests = 7;
  h.last_ok_at_ms = 1005;
  run.health = {h};
  run.poll_state = {{"http://origin/", PollState{"\"e1\"", "", "r1", Sha('p')}}};
  ASSERT_TRUE(db_->RecordFinishedRuns({run}).ok());
  auto health = db_->SourceHealth(kRepo);
  ASSERT_TRUE(health.ok());
  ASSERT_EQ(health->size(), 1u);
  EXPECT_EQ((*health)[0].requests, 7u);
  auto poll = db_->GetPollState(kRepo, "http://origin/");
  ASSERT_TRUE(poll.ok() && poll->has_value());
  EXPECT_EQ((*poll)->etag, "\"e1\"");

  auto pass = db_->LoadPassState();
  ASSERT_TRUE(pass.ok());
  ASSERT_EQ(pass->count(kRepo), 1u);
  const RepoPassState& p = pass->at(kRepo);
  EXPECT_EQ(p.active_revision, "");
  ASSERT_EQ(p.polls.size(), 1u);
  EXPECT_EQ(p.polls[0].first, "http://origin/");
  EXPECT_EQ(p.polls[0].second.revision, "r1");
  ASSERT_EQ(p.health.size(), 1u);
  EXPECT_EQ(p.health[0].requests, 7u);

  FinishedRun updated = Check(kRepo, RunOutcome::kUnchanged, "r2", 2000);
  updated.row.outcome = RunOutcome::kUpdated;
  Status s = db_->RecordFinishedRuns({Check("x/y", RunOutcome::kUnchanged, "r1", 1), updated});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  // The transaction is all or nothing.
  auto none = db_->RecentRuns("x/y", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// ---------------------------------------------------------------- pins and older schemas

TEST_F(StateDbTest, PinsAreSetReplacedReadInAPassAndCleared) {
  Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1).ok());
  auto none = db_->GetPin(kRepo);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(db_->SetPin(kRepo, "r1", 10).ok());
  ASSERT_TRUE(db_->SetPin(kRepo, "r2", 20).ok());  // replaces
  auto pin = db_->GetPin(kRepo);
  ASSERT_TRUE(pin.ok() && pin->has_value());
  EXPECT_EQ((*pin)->revision, "r2");
  EXPECT_EQ((*pin)->pinned_at_ms, 20);
  auto pass = db_->LoadPassState();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  ASSERT_TRUE((*pass)[kRepo].pin.has_value());
  EXPECT_EQ((*pass)[kRepo].pin->revision, "r2");
  auto summaries = db_->Summaries();
  ASSERT_TRUE(summaries.ok());
  ASSERT_TRUE((*summaries)[0].pin.has_value());
  EXPECT_EQ((*summaries)[0].pin->revision, "r2");
  auto removed = db_->ClearPin(kRepo);
  ASSERT_TRUE(removed.ok() && removed->has_value());
  EXPECT_EQ((*removed)->revision, "r2");
  removed = db_->ClearPin(kRepo);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed->has_value());
  pass = db_->LoadPassState();
  ASSERT_TRUE(pass.ok());
  EXPECT_FALSE((*pass)[kRepo].pin.has_value());
}

TEST_F(StateDbTest, ASummaryOfAPinnedRepositoryNamesTheNewestRevisionNotServed) {
  Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1).ok());
  Record("r2", {Entry("a", 1, 'b')});
  ASSERT_TRUE(db_->SetRevisionState(kRepo, "r2", RevisionState::kRetained).ok());
  ASSERT_TRUE(db_->SetPin(kRepo, "r1", 5).ok());
  auto summaries = db_->Summaries();
  ASSERT_TRUE(summaries.ok()) << summaries.status().ToString();
  EXPECT_EQ((*summaries)[0].newest_revision, "r2");
}

TEST_F(StateDbTest, OpenReadOnlyReadsAnOlderSchemaFromAMigratedCopyAndLeavesTheFile) {
  Record("r1", {Entry("a", 1, 'a')});
  ASSERT_TRUE(db_->ActivateRevision(kRepo, "r1", 1).ok());
  db_.reset();
  // Undo the last migration by hand: what the previous release left.
  {
    auto raw = RawOpen(path_);
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(raw->Exec("DROP TABLE pins").ok());
    ASSERT_TRUE(
        raw->Exec("PRAGMA user_version = " + std::to_string(StateDb::LatestSchemaVersion() - 1))
            .ok());
  }
  auto ro = StateDb::OpenReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  StateDb& db = **ro;
  EXPECT_EQ(db.SchemaVersion(), StateDb::LatestSchemaVersion());
  EXPECT_EQ(db.OnDiskSchemaVersion(), StateDb::LatestSchemaVersion() - 1);
  auto summaries = db.Summaries();
  ASSERT_TRUE(summaries.ok()) << summaries.status().ToString();
  ASSERT_EQ(summaries->size(), 1u);
  ASSERT_TRUE((*summaries)[0].active.has_value());
  EXPECT_EQ((*summaries)[0].active->revision, "r1");
  EXPECT_FALSE((*summaries)[0].pin.has_value());
  // Still read-only: the copy refuses writes as the file would.
  Status write = db.SetPin(kRepo, "r1", 1);
  EXPECT_FALSE(write.ok());
  EXPECT_NE(write.message().find("readonly"), std::string::npos) << write.message();
  ro->reset();
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), StateDb::LatestSchemaVersion() - 1);
}

}  // namespace
}  // namespace sync_agent
