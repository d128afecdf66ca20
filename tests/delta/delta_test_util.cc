#include "tests/delta/delta_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace sync_agent::testing {

Result<size_t> ChunkedSequentialFile::Read(void* buf, size_t n) {
  return base_->Read(buf, std::min(n, chunk_));
}

Result<size_t> CheckedRandomAccessFile::ReadAt(uint64_t offset, void* buf, size_t n) const {
  reads_.fetch_add(1);
  if (offset > limit_ || n > limit_ - offset) read_outside_.store(true);
  return base_->ReadAt(offset, buf, n);
}

std::string DeltaFiles::Put(const std::string& name, const std::string& content) {
  std::string path = dir_.Sub(name);
  WriteFile(path, content);
  return path;
}

std::unique_ptr<SequentialFile> DeltaFiles::OpenSequential(const std::string& path, size_t chunk) {
  auto file = Env::Default()->NewSequentialFile(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return nullptr;
  if (chunk == 0) return std::move(file).value();
  return std::make_unique<ChunkedSequentialFile>(std::move(file).value(), chunk);
}

std::unique_ptr<CheckedRandomAccessFile> DeltaFiles::OpenRandom(const std::string& path,
                                                                uint64_t limit) {
  auto file = Env::Default()->NewRandomAccessFile(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return nullptr;
  return std::make_unique<CheckedRandomAccessFile>(std::move(file).value(), limit);
}

std::vector<DeltaCase> MakeDeltaCases(uint32_t block_len, size_t base_size) {
  const std::string base = RandomBytes(base_size, 7);
  const size_t n = base.size();
  std::vector<DeltaCase> cases;
  auto add = [&cases](std::string name, std::string old_content, std::string new_content) {
    cases.push_back(DeltaCase{std::move(name), std::move(old_content), std::move(new_content)});
  };
  auto with_changes = [](std::string s, size_t count, size_t length, uint64_t seed) {
    for (size_t k = 0; k < count; ++k) {
      size_t at = (s.size() / (count + 1)) * (k + 1) + 17;
      std::string fresh = RandomBytes(length, seed + k);
      for (size_t i = 0; i < length && at + i < s.size(); ++i) {
        s[at + i] = static_cast<char>(s[at + i] ^ (fresh[i] | 1));  // always differs
      }
    }
    return s;
  };
  add("empty", "", "");
  add("one_byte_changed", "a", "b");
  add("one_byte_same", "a", "a");
  {
    std::string old_content = RandomBytes(block_len - 1, 11);
    add("block_minus_1", old_content, with_changes(old_content, 1, 1, 50));
  }
  {
    std::string old_content = RandomBytes(block_len, 12);
    add("block_same", old_content, old_content);
  }
  {
    std::string old_content = RandomBytes(block_len + 1, 13);
    std::string new_content = old_content;
    new_content[0] = static_cast<char>(new_content[0] ^ 0x5a);
    add("block_plus_1", old_content, new_content);
  }
  add("all_different", RandomBytes(n, 1), RandomBytes(n, 2));
  add("same", base, base);
  add("shifted_200", base, RandomBytes(200, 3) + base);
  add("scattered_bytes", base, with_changes(base, 8, 1, 60));
  add("rewritten_5pct", base, with_changes(base, 10, n / 200, 70));
  add("truncated", base, base.substr(0, n * 2 / 3 + 7));
  add("appended", base, base + RandomBytes(3000, 4));
  {
    std::string b0 = base.substr(0, block_len);
    add("repeated_blocks", base,
        b0 + b0 + b0 + b0 + base.substr(block_len, size_t{2} * block_len) + b0 +
            base.substr(size_t{5} * block_len, 100));
  }
  add("old_empty", "", base);
  add("new_empty", base, "");
  add("middle_deleted", base, base.substr(0, n / 3) + base.substr(n / 2));
  add("halves_swapped", base, base.substr(n / 2) + base.substr(0, n / 2));
  return cases;
}

uint64_t MatchableBytes(const std::string& old_content, const std::string& new_content,
                        uint32_t block_len) {
  uint64_t bytes = 0;
  for (size_t at = 0; at < new_content.size(); at += block_len) {
    std::string_view block = std::string_view(new_content).substr(at, block_len);
    if (block.size() == block_len) {
      if (old_content.find(block) != std::string::npos) bytes += block.size();
    } else if (old_content.size() >= block.size() &&
               std::string_view(old_content).substr(old_content.size() - block.size()) == block) {
      bytes += block.size();
    }
  }
  return bytes;
}

ByteSink AppendTo(std::string* out) {
  return [out](const char* data, size_t n) {
    out->append(data, n);
    return Status::OK();
  };
}

Result<std::string> DeltaFiles::Signature(const std::string& path, const SignatureParams& params,
                                          const delta_internal::JobBuffers& buffers, size_t chunk) {
  std::string out;
  auto file = OpenSequential(path, chunk);
  SA_RETURN_IF_ERROR(delta_internal::ComputeSignature(file.get(), params, AppendTo(&out), buffers));
  return out;
}

Result<std::string> DeltaFiles::Delta(const std::string& signature, const std::string& new_path,
                                      const delta_internal::JobBuffers& buffers, size_t chunk) {
  SA_ASSIGN_OR_RETURN(sync_agent::Signature sig, sync_agent::Signature::Load(signature));
  std::string out;
  auto file = OpenSequential(new_path, chunk);
  SA_RETURN_IF_ERROR(delta_internal::ComputeDelta(sig, file.get(), AppendTo(&out), buffers));
  return out;
}

Result<std::string> Apply(DeltaFiles& files, const std::string& basis_path, uint64_t basis_size,
                          const std::string& delta, const delta_internal::JobBuffers& buffers) {
  auto basis = files.OpenRandom(basis_path, basis_size);
  std::string out;
  Status s = delta_internal::ApplyDelta(*basis, basis_size, delta, AppendTo(&out), buffers);
  EXPECT_FALSE(basis->read_outside()) << "ApplyDelta read outside the basis";
  // The same delta read from a file (as a node applies a downloaded one)
  // must give the same result or the same error.
  std::string delta_path = files.Put("delta-under-test", delta);
  auto delta_file = files.OpenRandom(delta_path, delta.size());
  std::string from_file;
  Status fs = delta_internal::ApplyDeltaFile(*basis, basis_size, *delta_file, delta.size(),
                                             AppendTo(&from_file), buffers, nullptr);
  EXPECT_EQ(s.ToString(), fs.ToString()) << "in-memory and file deltas disagree";
  EXPECT_TRUE(from_file == out) << "in-memory and file deltas gave different output";
  EXPECT_FALSE(delta_file->read_outside());
  if (!s.ok()) return s;
  return out;
}

std::string Rebuild(const MatchPlan& plan, const std::string& old_content,
                    const std::string& new_content) {
  std::string out(new_content.size(), '\0');
  for (const LocalCopy& c : plan.local) {
    std::memcpy(&out[c.new_offset], old_content.data() + c.old_offset, c.length);
  }
  for (const ByteRange& r : plan.missing) {
    std::memcpy(&out[r.offset], new_content.data() + r.offset, r.length);
  }
  return out;
}

::testing::AssertionResult PlanIsWellFormed(const MatchPlan& plan, uint64_t new_size,
                                            uint64_t old_size) {
  // Walk local and missing together: they must tile [0, new_size) exactly.
  struct Piece {
    uint64_t offset, length;
    bool local;
  };
  std::vector<Piece> pieces;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < plan.local.size(); ++i) {
    const LocalCopy& c = plan.local[i];
    if (c.length == 0) return ::testing::AssertionFailure() << "empty local copy " << i;
    if (i > 0 && c.new_offset < prev_end) {
      return ::testing::AssertionFailure() << "local copy " << i << " overlaps or is unsorted";
    }
    if (c.new_offset + c.length > new_size || c.old_offset + c.length > old_size) {
      return ::testing::AssertionFailure() << "local copy " << i << " lies outside a file";
    }
    prev_end = c.new_offset + c.length;
    pieces.push_back({c.new_offset, c.length, true});
  }
  prev_end = 0;
  for (size_t i = 0; i < plan.missing.size(); ++i) {
    const ByteRange& r = plan.missing[i];
    if (r.length == 0) return ::testing::AssertionFailure() << "empty missing range " << i;
    if (i > 0 && r.offset <= prev_end) {
      return ::testing::AssertionFailure() << "missing range " << i << " not sorted and merged";
    }
    prev_end = r.offset + r.length;
    pieces.push_back({r.offset, r.length, false});
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
  uint64_t at = 0;
  for (const Piece& p : pieces) {
    if (p.offset != at) return ::testing::AssertionFailure() << "gap or overlap at " << at;
    at += p.length;
  }
  if (at != new_size) return ::testing::AssertionFailure() << "plan covers " << at << " bytes";
  if (plan.local_bytes() + plan.missing_bytes() != new_size) {
    return ::testing::AssertionFailure() << "local_bytes + missing_bytes != new size";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace sync_agent::testing
