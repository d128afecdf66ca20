// Status and Result<T>: how every fallible call in sync-agent reports failure.
//
// A Status is either OK or carries a code and a message. The message names
// what failed (a path, a URL, a manifest entry) and why, so that an operator
// reading it in a log knows what to do. Exceptions from libraries never cross
// module boundaries; they are converted into a Status where the library is
// wrapped.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sync_agent {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // a file, URL, revision or row that does not exist
    kInvalidArgument,  // bad input from the user: config, command line, manifest
    kIOError,          // local file system failure
    kNoSpace,          // ENOSPC / EDQUOT: the disk is full
    kCorruption,       // content does not match its recorded hash or format
    kNetwork,          // connection refused, reset, timeout, bad HTTP status
    kBusy,             // another agent holds the lock
    kCancelled,        // stopped by a signal
    kUnsupported,      // a format version or feature this build does not know
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kNotFound, ctx, detail);
  }
  static Status InvalidArgument(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kInvalidArgument, ctx, detail);
  }
  static Status IOError(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kIOError, ctx, detail);
  }
  static Status NoSpace(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kNoSpace, ctx, detail);
  }
  static Status Corruption(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kCorruption, ctx, detail);
  }
  static Status Network(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kNetwork, ctx, detail);
  }
  static Status Busy(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kBusy, ctx, detail);
  }
  static Status Cancelled(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kCancelled, ctx, detail);
  }
  static Status Unsupported(std::string_view ctx, std::string_view detail = {}) {
    return Status(Code::kUnsupported, ctx, detail);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }

  // The message without the code name, e.g. "open /srv/x: Permission denied".
  const std::string& message() const { return message_; }
  // "IO error: open /srv/x: Permission denied", or "OK".
  std::string ToString() const;
  // Returns a copy whose message is "<prefix>: <message>"; the code is kept.
  Status WithContext(std::string_view prefix) const;

  static const char* CodeName(Code code);

 private:
  Status(Code code, std::string_view ctx, std::string_view detail);

  Code code_ = Code::kOk;
  std::string message_;
};

// Holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  // The value, or fallback when this holds an error (as std::optional).
  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

// errno -> Status, in one place. ENOSPC/EDQUOT become kNoSpace, ENOENT kNotFound.
Status PosixError(std::string_view context, int err);

}  // namespace sync_agent

#define SA_CONCAT_INNER(a, b) a##b
#define SA_CONCAT(a, b) SA_CONCAT_INNER(a, b)

#define SA_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::sync_agent::Status _sa_st = (expr); \
    if (!_sa_st.ok()) return _sa_st;      \
  } while (0)

#define SA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define SA_ASSIGN_OR_RETURN(lhs, expr) \
  SA_ASSIGN_OR_RETURN_IMPL(SA_CONCAT(_sa_result_, __LINE__), lhs, expr)
