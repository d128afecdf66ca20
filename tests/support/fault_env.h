// FaultEnv: an EnvWrapper over the real POSIX Env that injects the faults a
// real file system cannot produce on demand (ENOSPC after N bytes, failing
// fsync or rename) and counts content reads, so tests can assert that a
// no-change run reads no file content.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "common/fs/env.h"

namespace sync_agent::testing {

class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}

  // Writes (appends and positional) to files whose path contains `match` fail with ENOSPC once
  // `bytes` bytes in total have been written to such files.
  void FailWritesAfter(const std::string& match, uint64_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    write_match_ = match;
    write_budget_ = bytes;
    write_fault_ = true;
  }
  void FailSyncOf(const std::string& match) {
    std::lock_guard<std::mutex> l(mu_);
    sync_match_ = match;
  }
  void FailRenameTo(const std::string& match) {
    std::lock_guard<std::mutex> l(mu_);
    rename_match_ = match;
  }
  // The next `count` hard links to files whose path contains `match` fail as
  // if the file had as many links as the file system allows (EMLINK).
  void FailLinksOf(const std::string& match, int count) {
    std::lock_guard<std::mutex> l(mu_);
    link_match_ = match;
    link_failures_ = count;
  }
  void ClearFaults() {
    std::lock_guard<std::mutex> l(mu_);
    write_fault_ = false;
    sync_match_.clear();
    rename_match_.clear();
    link_failures_ = 0;
  }
  // Files opened for reading whose path contains `match`.
  int ReadOpens(const std::string& match) const;
  void ResetCounters();

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& p) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& p) override;
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p,
                                                        uint32_t mode) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& p,
                                                          uint32_t mode) override;
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFile(const std::string& p,
                                                              uint32_t mode) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Result<std::unique_ptr<WritableFile>> NewWritableFileAt(const RootedPath& p, uint32_t mode,
                                                          WriteOpen how) override;
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFileAt(const RootedPath& p,
                                                                uint32_t mode) override;
  Status RenameAt(const RootedPath& from, const RootedPath& to) override;
  Result<LinkOutcome> LinkAt(const RootedPath& existing, const RootedPath& link) override;

  // Used by the wrapped files.
  Status ChargeWrite(const std::string& path, size_t n);
  bool SyncFails(const std::string& path);

 private:
  Result<std::unique_ptr<WritableFile>> Wrap(const std::string& p,
                                             Result<std::unique_ptr<WritableFile>> f);
  Result<std::unique_ptr<RandomWriteFile>> Wrap(const std::string& p,
                                                Result<std::unique_ptr<RandomWriteFile>> f);
  bool RenameFails(const std::string& to);
  mutable std::mutex mu_;
  std::string write_match_;
  uint64_t write_budget_ = 0;
  bool write_fault_ = false;
  std::string sync_match_;
  std::string rename_match_;
  std::string link_match_;
  int link_failures_ = 0;
  std::vector<std::string> read_opens_;
};

}  // namespace sync_agent::testing
