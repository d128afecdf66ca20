// Helpers for the delta tests: real files in a temporary directory, read
// through wrappers that vary read sizes and catch reads outside a file.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/delta/librsync_job.h"
#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {

// Returns at most `chunk` bytes per Read from a real file.
class ChunkedSequentialFile : public SequentialFile {
 public:
  ChunkedSequentialFile(std::unique_ptr<SequentialFile> base, size_t chunk)
      : base_(std::move(base)), chunk_(chunk) {}
  Result<size_t> Read(void* buf, size_t n) override;
  Status Skip(uint64_t n) override { return base_->Skip(n); }

 private:
  std::unique_ptr<SequentialFile> base_;
  size_t chunk_;
};

// Forwards to a real file and remembers any read reaching past `limit`
// (the size the code under test was told).
class CheckedRandomAccessFile : public RandomAccessFile {
 public:
  CheckedRandomAccessFile(std::unique_ptr<RandomAccessFile> base, uint64_t limit)
      : base_(std::move(base)), limit_(limit) {}
  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) const override;
  bool read_outside() const { return read_outside_.load(); }
  uint64_t reads() const { return reads_.load(); }

 private:
  std::unique_ptr<RandomAccessFile> base_;
  uint64_t limit_;
  mutable std::atomic<bool> read_outside_{false};
  mutable std::atomic<uint64_t> reads_{0};
};

// A directory of named files, with the librsync operations run on them.
class DeltaFiles {
 public:
  // Writes content to <dir>/name and returns its path.
  std::string Put(const std::string& name, const std::string& content);
  std::unique_ptr<SequentialFile> OpenSequential(const std::string& path, size_t chunk = 0);
  std::unique_ptr<CheckedRandomAccessFile> OpenRandom(const std::string& path, uint64_t limit);

  Result<std::string> Signature(const std::string& path, const SignatureParams& params,
                                const delta_internal::JobBuffers& buffers = {}, size_t chunk = 0);
  Result<std::string> Delta(const std::string& signature, const std::string& new_path,
                            const delta_internal::JobBuffers& buffers = {}, size_t chunk = 0);

 private:
  TempDir dir_;
};

// Applies delta to the basis file at basis_path (of basis_size bytes); fails
// the calling test if a read went outside the basis.
Result<std::string> Apply(DeltaFiles& files, const std::string& basis_path, uint64_t basis_size,
                          const std::string& delta, const delta_internal::JobBuffers& buffers = {});

// An (old, new) pair in the spirit of librsync's tests/triple.test inputs.
struct DeltaCase {
  std::string name;
  std::string old_content;
  std::string new_content;
};
// Empty, tiny, block_len - 1 / block_len / block_len + 1 bytes, all different,
// same, shifted, scattered edits, truncated, appended, repeated blocks, old
// or new empty, ... around base_size bytes.
std::vector<DeltaCase> MakeDeltaCases(uint32_t block_len, size_t base_size);

// What a perfect block matcher finds of new in old: the bytes of new's
// full blocks that occur anywhere in old, plus new's short last block if
// old ends with it.
uint64_t MatchableBytes(const std::string& old_content, const std::string& new_content,
                        uint32_t block_len);

// Appends every sunk byte to *out.
ByteSink AppendTo(std::string* out);

// Builds the new file from a plan: local copies from old, the rest from
// new_content (what a node would fetch).
std::string Rebuild(const MatchPlan& plan, const std::string& old_content,
                    const std::string& new_content);

// Checks a plan's invariants: local sorted, disjoint and inside both files;
// missing sorted, merged, the exact complement of local in [0, new_size).
::testing::AssertionResult PlanIsWellFormed(const MatchPlan& plan, uint64_t new_size,
                                            uint64_t old_size);

}  // namespace sync_agent::testing
