#include "common/db/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "common/base/log.h"

namespace sync_agent {
namespace {

// Statements quoted in error messages are cut to this many bytes.
constexpr size_t kMaxQuotedSql = 120;

std::string QuoteSql(std::string_view sql) {
  std::string quoted = "\"";
  if (sql.size() > kMaxQuotedSql) {
    quoted.append(sql.substr(0, kMaxQuotedSql));
    quoted.append("...");
  } else {
    quoted.append(sql);
  }
  quoted.append("\"");
  return quoted;
}

// One place where SQLite result codes become Status codes.
Status SqliteError(int rc, const std::string& path, std::string_view what, const char* errmsg) {
  std::string context = "sqlite " + path;
  if (!what.empty()) {
    context.append(": ");
    context.append(what);
  }
  std::string detail = errmsg != nullptr ? errmsg : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(context, detail);
    case SQLITE_FULL:
      return Status::NoSpace(context, detail);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(context, detail);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(context, detail);
    case SQLITE_INTERRUPT:
      return Status::Cancelled(context, detail);
    default:
      return Status::IOError(context, detail);
  }
}

}  // namespace

// ---------------------------------------------------------------- statement

SqliteStatement::SqliteStatement(sqlite3_stmt* stmt, std::string path)
    : stmt_(stmt), path_(std::move(path)) {}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), path_(std::move(other.path_)) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

Status SqliteStatement::Error(int rc, std::string_view what) const {
  const char* sql = sqlite3_sql(stmt_);
  std::string context(what);
  context.append(" ");
  context.append(QuoteSql(sql != nullptr ? sql : ""));
  return SqliteError(rc, path_, context, sqlite3_errmsg(sqlite3_db_handle(stmt_)));
}

Status SqliteStatement::BindInt64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) return Error(rc, "bind ?" + std::to_string(index) + " of");
  return Status::OK();
}

Status SqliteStatement::BindText(int index, std::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return Error(rc, "bind ?" + std::to_string(index) + " of");
  return Status::OK();
}

Status SqliteStatement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) return Error(rc, "bind ?" + std::to_string(index) + " of");
  return Status::OK();
}

Status SqliteStatement::BindTextOrNull(int index, std::string_view value) {
  return value.empty() ? BindNull(index) : BindText(index, value);
}

Status SqliteStatement::BindInt64OrNull(int index, int64_t value) {
  return value == 0 ? BindNull(index) : BindInt64(index, value);
}

Result<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(rc, "step");
}

Status SqliteStatement::Run() {
  while (true) {
    SA_ASSIGN_OR_RETURN(bool has_row, Step());
    if (!has_row) return Status::OK();
  }
}

void SqliteStatement::Reset() {
  // sqlite3_reset repeats the last step's error code, which Step already reported.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int SqliteStatement::ColumnCount() const { return sqlite3_column_count(stmt_); }

bool SqliteStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t SqliteStatement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string SqliteStatement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return std::string();
  // sqlite3_column_bytes must follow sqlite3_column_text (it may convert the value).
  int bytes = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(bytes));
}

// ---------------------------------------------------------------- database

SqliteDatabase::SqliteDatabase(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

SqliteDatabase::~SqliteDatabase() {
  // sqlite3_close_v2 defers the close if a statement outlived us by mistake,
  // rather than leaking the connection or failing.
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& path, Mode mode) {
  int flags = SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case Mode::kReadWriteCreate:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
    case Mode::kReadWrite:
      flags |= SQLITE_OPEN_READWRITE;
      break;
    case Mode::kReadOnly:
      flags |= SQLITE_OPEN_READONLY;
      break;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // Even a failed open may allocate a handle, which carries the error message.
  std::unique_ptr<SqliteDatabase> db(new SqliteDatabase(raw, path));
  if (rc != SQLITE_OK) {
    if (raw == nullptr) return SqliteError(rc, path, "open", nullptr);
    return db->Error(rc, "open");
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status SqliteDatabase::CopyTo(SqliteDatabase* into) {
  sqlite3_backup* backup = sqlite3_backup_init(into->db_, "main", db_, "main");
  if (backup == nullptr) return into->Error(sqlite3_errcode(into->db_), "copy " + path_);
  int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return Error(rc, "copy into " + into->path_);
  return Status::OK();
}

Status SqliteDatabase::Error(int rc, std::string_view what) const {
  return SqliteError(rc, path_, what, db_ != nullptr ? sqlite3_errmsg(db_) : nullptr);
}

Status SqliteDatabase::Exec(std::string_view sql) {
  std::string owned(sql);  // sqlite3_exec needs a NUL-terminated string
  char* errmsg = nullptr;
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &errmsg);
  if (rc == SQLITE_OK) return Status::OK();
  Status status = SqliteError(rc, path_, "exec " + QuoteSql(sql),
                              errmsg != nullptr ? errmsg : sqlite3_errmsg(db_));
  sqlite3_free(errmsg);
  return status;
}

Result<SqliteStatement> SqliteDatabase::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, "prepare " + QuoteSql(sql));
  }
  if (stmt == nullptr) {
    // Only whitespace or comments: nothing to run, which is a caller's mistake.
    return Status::InvalidArgument("sqlite " + path_ + ": prepare " + QuoteSql(sql),
                                   "no SQL statement");
  }
  return SqliteStatement(stmt, path_);
}

Result<int64_t> SqliteDatabase::QueryInt64(std::string_view sql) {
  SA_ASSIGN_OR_RETURN(SqliteStatement stmt, Prepare(sql));
  SA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) {
    return Status::NotFound("sqlite " + path_ + ": " + QuoteSql(sql), "returned no row");
  }
  return stmt.ColumnInt64(0);
}

Result<std::string> SqliteDatabase::QueryText(std::string_view sql) {
  SA_ASSIGN_OR_RETURN(SqliteStatement stmt, Prepare(sql));
  SA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
  if (!has_row) {
    return Status::NotFound("sqlite " + path_ + ": " + QuoteSql(sql), "returned no row");
  }
  return stmt.ColumnText(0);
}

Status SqliteDatabase::SetBusyTimeout(std::chrono::milliseconds timeout) {
  int rc = sqlite3_busy_timeout(db_, static_cast<int>(timeout.count()));
  if (rc != SQLITE_OK) return Error(rc, "set busy timeout");
  return Status::OK();
}

Status SqliteDatabase::KeepWalFiles() {
  int on = 1;
  int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
  if (rc != SQLITE_OK) return Error(rc, "keep the WAL files");
  return Status::OK();
}

int64_t SqliteDatabase::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int64_t SqliteDatabase::Changes() const { return sqlite3_changes64(db_); }

bool SqliteDatabase::InAutocommit() const { return sqlite3_get_autocommit(db_) != 0; }

// ---------------------------------------------------------------- transaction

Result<SqliteTransaction> SqliteTransaction::Begin(SqliteDatabase* db, Kind kind) {
  SA_RETURN_IF_ERROR(db->Exec(kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return SqliteTransaction(db);
}

SqliteTransaction::SqliteTransaction(SqliteTransaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

SqliteTransaction::~SqliteTransaction() {
  if (db_ == nullptr) return;
  Status status = Rollback();
  if (!status.ok()) LogWarning("rolling back a transaction failed", {{"error", status.ToString()}});
}

Status SqliteTransaction::Commit() {
  SqliteDatabase* db = std::exchange(db_, nullptr);
  if (db == nullptr) return Status::InvalidArgument("commit", "transaction already finished");
  Status status = db->Exec("COMMIT");
  // A failed COMMIT (e.g. SQLITE_BUSY) can leave the transaction open; close it
  // so that the contract "failure wrote nothing" holds and the connection is usable.
  if (!status.ok() && !db->InAutocommit()) db->Exec("ROLLBACK");
  return status;
}

Status SqliteTransaction::Rollback() {
  SqliteDatabase* db = std::exchange(db_, nullptr);
  if (db == nullptr) return Status::InvalidArgument("rollback", "transaction already finished");
  // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) make SQLite roll back by itself.
  if (db->InAutocommit()) return Status::OK();
  return db->Exec("ROLLBACK");
}

}  // namespace sync_agent
