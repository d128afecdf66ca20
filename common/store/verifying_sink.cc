#include "common/store/verifying_sink.h"

namespace sync_agent {

VerifyingSink::VerifyingSink(std::string what, uint64_t size, std::string sha256, Out out)
    : what_(std::move(what)), size_(size), sha256_(std::move(sha256)), out_(std::move(out)) {}

Status VerifyingSink::Begin(uint64_t offset) {
  if (offset != 0 || begun_) {
    return Status::Network(what_, "the server resumed a download that was not asked to resume");
  }
  begun_ = true;
  return Status::OK();
}

Status VerifyingSink::Write(const char* data, size_t n) {
  if (n > size_ - hasher_.size()) {
    return Status::Corruption(what_, "is longer than the expected " + std::to_string(size_) +
                                         " bytes");
  }
  hasher_.Update(data, n);
  return out_(data, n);
}

Status VerifyingSink::Verify() {
  const uint64_t got = hasher_.size();
  if (got != size_) {
    return Status::Corruption(what_, "has " + std::to_string(got) + " bytes, expected " +
                                         std::to_string(size_));
  }
  std::string sha = hasher_.Finish().sha256;
  if (sha != sha256_) {
    return Status::Corruption(what_, "sha256 " + sha + " differs from the expected " + sha256_);
  }
  return Status::OK();
}

}  // namespace sync_agent
