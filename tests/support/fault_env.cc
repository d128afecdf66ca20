#include "tests/support/fault_env.h"

#include <cerrno>

namespace sync_agent::testing {
namespace {

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status Append(const void* data, size_t n) override {
    SA_RETURN_IF_ERROR(env_->ChargeWrite(path_, n));
    return base_->Append(data, n);
  }
  Status Sync() override {
    if (env_->SyncFails(path_)) return PosixError("fsync " + path_, EIO);
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

class FaultRandomWriteFile final : public RandomWriteFile {
 public:
  FaultRandomWriteFile(FaultEnv* env, std::string path, std::unique_ptr<RandomWriteFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status WriteAt(uint64_t offset, const void* data, size_t n) override {
    SA_RETURN_IF_ERROR(env_->ChargeWrite(path_, n));
    return base_->WriteAt(offset, data, n);
  }
  Status WaitWriteback(uint64_t offset, uint64_t length) override {
    return base_->WaitWriteback(offset, length);
  }
  Status Sync() override {
    if (env_->SyncFails(path_)) return PosixError("fsync " + path_, EIO);
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }

 private:
  FaultEnv* env_;
  std::string path_;
  std::unique_ptr<RandomWriteFile> base_;
};

}  // namespace

Result<std::unique_ptr<RandomWriteFile>> FaultEnv::Wrap(
    const std::string& p, Result<std::unique_ptr<RandomWriteFile>> f) {
  if (!f.ok()) return f;
  return std::unique_ptr<RandomWriteFile>(new FaultRandomWriteFile(this, p, std::move(f).value()));
}

Result<std::unique_ptr<RandomWriteFile>> FaultEnv::NewRandomWriteFile(const std::string& p,
                                                                      uint32_t mode) {
  return Wrap(p, target()->NewRandomWriteFile(p, mode));
}

Result<std::unique_ptr<RandomWriteFile>> FaultEnv::NewRandomWriteFileAt(const RootedPath& p,
                                                                        uint32_t mode) {
  return Wrap(p.full(), target()->NewRandomWriteFileAt(p, mode));
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFileAt(const RootedPath& p,
                                                                  uint32_t mode, WriteOpen how) {
  return Wrap(p.full(), target()->NewWritableFileAt(p, mode, how));
}

Status FaultEnv::RenameAt(const RootedPath& from, const RootedPath& to) {
  if (RenameFails(to.full())) return PosixError("rename " + from.full() + " to " + to.full(), EIO);
  return target()->RenameAt(from, to);
}

Result<LinkOutcome> FaultEnv::LinkAt(const RootedPath& existing, const RootedPath& link) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (link_failures_ > 0 && existing.full().find(link_match_) != std::string::npos) {
      --link_failures_;
      return LinkOutcome::kTooManyLinks;
    }
  }
  return target()->LinkAt(existing, link);
}

int FaultEnv::ReadOpens(const std::string& match) const {
  std::lock_guard<std::mutex> l(mu_);
  int n = 0;
  for (const auto& p : read_opens_) {
    if (p.find(match) != std::string::npos) ++n;
  }
  return n;
}

void FaultEnv::ResetCounters() {
  std::lock_guard<std::mutex> l(mu_);
  read_opens_.clear();
}

Result<std::unique_ptr<SequentialFile>> FaultEnv::NewSequentialFile(const std::string& p) {
  {
    std::lock_guard<std::mutex> l(mu_);
    read_opens_.push_back(p);
  }
  return target()->NewSequentialFile(p);
}

Result<std::unique_ptr<RandomAccessFile>> FaultEnv::NewRandomAccessFile(const std::string& p) {
  {
    std::lock_guard<std::mutex> l(mu_);
    read_opens_.push_back(p);
  }
  return target()->NewRandomAccessFile(p);
}

Result<std::unique_ptr<WritableFile>> FaultEnv::Wrap(const std::string& p,
                                                     Result<std::unique_ptr<WritableFile>> f) {
  if (!f.ok()) return f;
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, p, std::move(f).value()));
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& p,
                                                                uint32_t mode) {
  return Wrap(p, target()->NewWritableFile(p, mode));
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewAppendableFile(const std::string& p,
                                                                  uint32_t mode) {
  return Wrap(p, target()->NewAppendableFile(p, mode));
}

bool FaultEnv::RenameFails(const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  return !rename_match_.empty() && to.find(rename_match_) != std::string::npos;
}

Status FaultEnv::Rename(const std::string& from, const std::string& to) {
  if (RenameFails(to)) return PosixError("rename " + from + " to " + to, EIO);
  return target()->Rename(from, to);
}

Status FaultEnv::ChargeWrite(const std::string& path, size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  if (!write_fault_ || path.find(write_match_) == std::string::npos) return Status::OK();
  if (write_budget_ < n) {
    write_budget_ = 0;
    return PosixError("write " + path, ENOSPC);
  }
  write_budget_ -= n;
  return Status::OK();
}

bool FaultEnv::SyncFails(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return !sync_match_.empty() && path.find(sync_match_) != std::string::npos;
}

}  // namespace sync_agent::testing
