#include "common/base/status.h"

#include <cerrno>
#include <cstring>

namespace sync_agent {

Status::Status(Code code, std::string_view ctx, std::string_view detail) : code_(code) {
  message_.assign(ctx);
  if (!detail.empty()) {
    message_.append(": ");
    message_.append(detail);
  }
}

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "not found";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kIOError:
      return "I/O error";
    case Code::kNoSpace:
      return "no space left";
    case Code::kCorruption:
      return "corruption";
    case Code::kNetwork:
      return "network error";
    case Code::kBusy:
      return "busy";
    case Code::kCancelled:
      return "cancelled";
    case Code::kUnsupported:
      return "unsupported";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = std::string(prefix) + ": " + message_;
  return s;
}

Status PosixError(std::string_view context, int err) {
  const char* detail = std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(context, detail);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(context, detail);
    case EINTR:
      return Status::Cancelled(context, detail);
    default:
      return Status::IOError(context, detail);
  }
}

}  // namespace sync_agent
