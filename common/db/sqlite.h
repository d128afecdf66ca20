// The one RAII wrapper around the sqlite3 C API. SqliteDatabase owns a
// connection, SqliteStatement a prepared statement, SqliteTransaction an open
// transaction. Every SQLite failure becomes a Status whose message names the
// database file, what was being done and sqlite3_errmsg(), e.g.
//   "sqlite /var/lib/sync-agent/state.db: prepare "SELEC 1": near "SELEC": syntax error".
//
// Threading: a connection is opened with SQLITE_OPEN_NOMUTEX and is used by one
// thread at a time, together with its statements. Separate connections (in
// this or another process) may be used concurrently; SQLite's file locking
// with the busy timeout arbitrates.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sync_agent {

// A prepared statement. Created by SqliteDatabase::Prepare; must be destroyed
// before the SqliteDatabase that prepared it. Movable, not copyable.
//
// Typical use: Bind*, then Step() until it yields false (or Run() for a
// statement that returns no rows), then Reset() to reuse with new bindings.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();  // finalizes

  // Parameters are numbered from 1, as in SQL ("?1" or the n-th "?").
  // Text is copied by SQLite, so the argument need not outlive the call.
  Status BindInt64(int index, int64_t value);
  Status BindText(int index, std::string_view value);
  Status BindNull(int index);
  // Binds NULL for "" (optional text columns store NULL when absent).
  Status BindTextOrNull(int index, std::string_view value);
  // Binds NULL for 0 (optional timestamps store NULL when absent).
  Status BindInt64OrNull(int index, int64_t value);

  // Advances: true when a row is ready for the Column* getters, false when the
  // statement has finished. On error the statement must be Reset() before reuse.
  Result<bool> Step();
  // Steps until done, ignoring any rows. For INSERT, UPDATE, DELETE.
  Status Run();
  // Rewinds the statement and clears its bindings, ready for new ones.
  void Reset();

  // Column getters for the current row (valid only after Step() returned true);
  // columns are numbered from 0. NULL reads as 0 or "".
  int ColumnCount() const;
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  std::string ColumnText(int column) const;

 private:
  friend class SqliteDatabase;
  SqliteStatement(sqlite3_stmt* stmt, std::string path);
  Status Error(int rc, std::string_view what) const;

  sqlite3_stmt* stmt_ = nullptr;  // owned
  std::string path_;              // database file, for error messages
};

// An open connection. Closed on destruction. Not copyable.
class SqliteDatabase {
 public:
  enum class Mode {
    kReadWriteCreate,  // create the file if it does not exist
    kReadWrite,        // the file must exist
    kReadOnly,         // the file must exist; every write fails
  };

  // Opens path. The file's header is not read until the first statement, so a
  // file that is not a database is reported by the first query (kCorruption).
  // On failure nothing is left open.
  static Result<std::unique_ptr<SqliteDatabase>> Open(const std::string& path, Mode mode);

  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  const std::string& path() const { return path_; }

  // Runs one or more ';'-separated statements that return no rows of interest.
  Status Exec(std::string_view sql);
  Result<SqliteStatement> Prepare(std::string_view sql);

  // Runs sql, which must return one row with one integer column (e.g. a PRAGMA).
  Result<int64_t> QueryInt64(std::string_view sql);
  // Same for a text column.
  Result<std::string> QueryText(std::string_view sql);

  // How long a statement waits for another connection's lock before failing
  // with kBusy.
  Status SetBusyTimeout(std::chrono::milliseconds timeout);
  // SQLITE_FCNTL_PERSIST_WAL: the -wal and -shm files stay when the last
  // connection closes (emptied, not deleted), so that a reader without
  // write access to the directory can still open the database read-only.
  Status KeepWalFiles();

  // Copies the whole main database of this connection into `into` (SQLite's
  // online backup), replacing what `into` held. Reads only.
  Status CopyTo(SqliteDatabase* into);

  // Rowid of the last successful INSERT on this connection.
  int64_t LastInsertRowId() const;
  // Rows changed by the last INSERT, UPDATE or DELETE on this connection.
  int64_t Changes() const;
  // True while no transaction is open (SQLite's autocommit mode).
  bool InAutocommit() const;

  // A Status for rc, with the path, what and sqlite3_errmsg() in its message.
  Status Error(int rc, std::string_view what) const;

 private:
  SqliteDatabase(sqlite3* db, std::string path);

  sqlite3* db_ = nullptr;  // owned
  std::string path_;
};

// An open transaction that rolls back on destruction unless committed.
//
//   SA_ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db));
//   ... writes ...
//   return txn.Commit();
//
// Writers should begin kImmediate: it takes the write lock up front, so a
// busy database makes Begin wait (busy timeout) instead of failing half way
// with a lock upgrade that SQLite cannot wait for. Transactions do not nest.
class SqliteTransaction {
 public:
  enum class Kind { kDeferred, kImmediate };

  // db must outlive the transaction.
  static Result<SqliteTransaction> Begin(SqliteDatabase* db, Kind kind = Kind::kImmediate);

  SqliteTransaction(SqliteTransaction&& other) noexcept;
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  // Rolls back if neither Commit() nor Rollback() ran.
  ~SqliteTransaction();

  // Commits. On failure the transaction is rolled back (nothing was written).
  Status Commit();
  Status Rollback();

 private:
  explicit SqliteTransaction(SqliteDatabase* db) : db_(db) {}
  SqliteDatabase* db_ = nullptr;  // nullptr once finished or moved from
};

}  // namespace sync_agent
