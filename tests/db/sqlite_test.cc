// Tests of the sqlite3 wrapper against real database files.
#include "common/db/sqlite.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::sync_agent::testing::PathExists;
using ::sync_agent::testing::TempDir;
using ::sync_agent::testing::WriteFile;

std::unique_ptr<SqliteDatabase> OpenOrDie(
    const std::string& path, SqliteDatabase::Mode mode = SqliteDatabase::Mode::kReadWriteCreate) {
  auto db = SqliteDatabase::Open(path, mode);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

int64_t CountRows(SqliteDatabase& db, const std::string& table) {
  auto n = db.QueryInt64("SELECT count(*) FROM " + table);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : -1;
}

TEST(SqliteTest, BindsStepsAndReadsColumns) {
  TempDir dir;
  auto db = OpenOrDie(dir.Sub("t.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT)").ok());

  auto insert = db->Prepare("INSERT INTO t (n, s) VALUES (?1, ?2)");
  ASSERT_TRUE(insert.ok()) << insert.status().ToString();
  ASSERT_TRUE(insert->BindInt64(1, -(int64_t{1} << 40)).ok());
  ASSERT_TRUE(insert->BindText(2, std::string("with\0nul", 8)).ok());
  ASSERT_TRUE(insert->Run().ok());
  EXPECT_EQ(db->LastInsertRowId(), 1);
  EXPECT_EQ(db->Changes(), 1);
  insert->Reset();
  ASSERT_TRUE(insert->BindNull(1).ok());
  ASSERT_TRUE(insert->BindTextOrNull(2, "").ok());
  ASSERT_TRUE(insert->Run().ok());
  EXPECT_EQ(db->LastInsertRowId(), 2);

  auto select = db->Prepare("SELECT id, n, s FROM t ORDER BY id");
  ASSERT_TRUE(select.ok());
  EXPECT_EQ(select->ColumnCount(), 3);
  auto row = select->Step();
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(*row);
  EXPECT_EQ(select->ColumnInt64(0), 1);
  EXPECT_EQ(select->ColumnInt64(1), -(int64_t{1} << 40));
  EXPECT_EQ(select->ColumnText(2), std::string("with\0nul", 8));
  EXPECT_FALSE(select->ColumnIsNull(2));
  row = select->Step();
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(*row);
  EXPECT_TRUE(select->ColumnIsNull(1));
  EXPECT_TRUE(select->ColumnIsNull(2));
  EXPECT_EQ(select->ColumnInt64(1), 0);
  EXPECT_EQ(select->ColumnText(2), "");
  row = select->Step();
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(*row);
}

TEST(SqliteTest, StatementMovesAndIsReusedAfterReset) {
  TempDir dir;
  auto db = OpenOrDie(dir.Sub("t.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (n INTEGER NOT NULL)").ok());
  auto prepared = db->Prepare("INSERT INTO t (n) VALUES (?)");
  ASSERT_TRUE(prepared.ok());
  SqliteStatement moved = std::move(prepared).value();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(moved.BindInt64(1, i).ok());
    ASSERT_TRUE(moved.Run().ok());
    moved.Reset();
  }
  EXPECT_EQ(CountRows(*db, "t"), 10);
  auto sum = db->QueryInt64("SELECT sum(n) FROM t");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, 45);
}

TEST(SqliteTest, PrepareErrorNamesPathStatementAndReason) {
  TempDir dir;
  std::string path = dir.Sub("t.db");
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  auto stmt = db->Prepare("SELEC 1");
  ASSERT_FALSE(stmt.ok());
  const std::string& message = stmt.status().message();
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("SELEC 1"), std::string::npos) << message;
  EXPECT_NE(message.find("syntax error"), std::string::npos) << message;
}

TEST(SqliteTest, ConstraintViolationIsInvalidArgumentWithSqliteMessage) {
  TempDir dir;
  std::string path = dir.Sub("t.db");
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES ('a')").ok());
  auto stmt = db->Prepare("INSERT INTO t VALUES (?1)");
  ASSERT_TRUE(stmt.ok());
  ASSERT_TRUE(stmt->BindText(1, "a").ok());
  Status status = stmt->Run();
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("UNIQUE constraint failed"), std::string::npos)
      << status.message();

  // Exec reports the same way.
  status = db->Exec("INSERT INTO t VALUES ('a')");
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find(path), std::string::npos) << status.message();
}

TEST(SqliteTest, BindOutOfRangeFails) {
  TempDir dir;
  auto db = OpenOrDie(dir.Sub("t.db"));
  ASSERT_NE(db, nullptr);
  auto stmt = db->Prepare("SELECT ?1");
  ASSERT_TRUE(stmt.ok());
  Status status = stmt->BindInt64(2, 1);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("?2"), std::string::npos) << status.message();
}

TEST(SqliteTest, EmptyStatementIsRefused) {
  TempDir dir;
  auto db = OpenOrDie(dir.Sub("t.db"));
  ASSERT_NE(db, nullptr);
  auto stmt = db->Prepare("  -- nothing\n");
  EXPECT_EQ(stmt.status().code(), Status::Code::kInvalidArgument);
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  TempDir dir;
  auto db = OpenOrDie(dir.Sub("t.db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (n INTEGER)").ok());
  {
    auto txn = SqliteTransaction::Begin(db.get());
    ASSERT_TRUE(txn.ok()) << txn.status().ToString();
    EXPECT_FALSE(db->InAutocommit());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
    EXPECT_EQ(CountRows(*db, "t"), 1);
  }
  EXPECT_TRUE(db->InAutocommit());
  EXPECT_EQ(CountRows(*db, "t"), 0);
  {
    auto txn = SqliteTransaction::Begin(db.get(), SqliteTransaction::Kind::kDeferred);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (2)").ok());
    SqliteTransaction moved = std::move(txn).value();
    ASSERT_TRUE(moved.Commit().ok());
    EXPECT_FALSE(moved.Commit().ok());  // already finished
  }
  EXPECT_EQ(CountRows(*db, "t"), 1);
  {
    auto txn = SqliteTransaction::Begin(db.get());
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (3)").ok());
    ASSERT_TRUE(txn->Rollback().ok());
  }
  EXPECT_EQ(CountRows(*db, "t"), 1);
}

TEST(SqliteTest, ReadOnlyConnectionCannotWrite) {
  TempDir dir;
  std::string path = dir.Sub("t.db");
  {
    auto db = OpenOrDie(path);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Exec("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7)").ok());
  }
  auto db = OpenOrDie(path, SqliteDatabase::Mode::kReadOnly);
  ASSERT_NE(db, nullptr);
  auto n = db->QueryInt64("SELECT n FROM t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 7);
  Status status = db->Exec("INSERT INTO t VALUES (8)");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("readonly"), std::string::npos) << status.message();
  EXPECT_EQ(CountRows(*db, "t"), 1);
}

TEST(SqliteTest, OpenWithoutCreateNeedsAnExistingFile) {
  TempDir dir;
  std::string path = dir.Sub("missing.db");
  auto db = SqliteDatabase::Open(path, SqliteDatabase::Mode::kReadWrite);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status().message();
  EXPECT_FALSE(PathExists(path));
}

TEST(SqliteTest, NonDatabaseFileIsCorruption) {
  TempDir dir;
  std::string path = dir.Sub("notes.txt");
  WriteFile(path, std::string(4096, 'x'));
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  auto version = db->QueryInt64("PRAGMA user_version");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().code(), Status::Code::kCorruption);
  EXPECT_NE(version.status().message().find("file is not a database"), std::string::npos)
      << version.status().message();
}

TEST(SqliteTest, LockedDatabaseIsBusyAfterTimeout) {
  TempDir dir;
  std::string path = dir.Sub("t.db");
  auto first = OpenOrDie(path);
  auto second = OpenOrDie(path);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(first->Exec("CREATE TABLE t (n INTEGER)").ok());
  ASSERT_TRUE(second->SetBusyTimeout(std::chrono::milliseconds(50)).ok());
  auto held = SqliteTransaction::Begin(first.get());
  ASSERT_TRUE(held.ok());
  auto blocked = SqliteTransaction::Begin(second.get());
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), Status::Code::kBusy) << blocked.status().ToString();
  ASSERT_TRUE(held->Commit().ok());
  auto after = SqliteTransaction::Begin(second.get());
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

}  // namespace
}  // namespace sync_agent
