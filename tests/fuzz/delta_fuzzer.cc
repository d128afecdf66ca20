// librsync's delta and signature formats (common/delta). Each input is read
// as a delta (ParseDelta, then ApplyDelta to a small basis, from memory and
// as a file) and as a signature (Signature::Load, MatchSignature and
// MatchAligned against the same basis).
//
// Invariants: a delta ApplyDelta accepts is one ParseDelta accepts, and its
// output is exactly what the parsed commands describe (literal bytes of the
// delta, copies of the basis); a delta with a copy outside the basis is
// refused before any output; the basis is never read outside
// [0, basis_size). A match plan covers the new file exactly once, in order,
// and takes nothing from outside the old file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

// The basis: 600 bytes of a fixed pattern with some repeats, so that
// signatures of edited copies find blocks in it. Only the first
// kBasisSize bytes are the basis; the rest must never be read.
constexpr uint64_t kBasisSize = 512;

const std::string& BasisBytes() {
  static const std::string bytes = [] {
    std::string b;
    uint32_t x = 12345;
    for (int i = 0; i < 600; ++i) {
      x = x * 1103515245 + 12345;
      b.push_back(static_cast<char>(i % 128 < 64 ? (x >> 16) & 0xff : 'a' + i % 26));
    }
    return b;
  }();
  return bytes;
}

// The basis, trapping on any read that reaches past kBasisSize.
class BasisFile final : public RandomAccessFile {
 public:
  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) const override {
    SA_FUZZ_CHECK(offset <= kBasisSize && n <= kBasisSize - offset);
    return bytes_.ReadAt(offset, buf, n);
  }

 private:
  StringFile bytes_{BasisBytes()};
};

void CheckDelta(std::string_view delta) {
  BasisFile basis;
  std::string out;
  ByteSink sink = [&out](const char* data, size_t n) {
    out.append(data, n);
    return Status::OK();
  };
  Status applied = ApplyDelta(basis, kBasisSize, delta, sink);
  Result<std::vector<DeltaCommand>> commands = ParseDelta(delta);
  if (!commands.ok()) {
    SA_FUZZ_CHECK(!applied.ok());
    SA_FUZZ_CHECK(applied.code() == Status::Code::kCorruption);
    SA_FUZZ_CHECK(out.empty());
    return;
  }
  // What the commands describe.
  std::string expected;
  bool inside = true;
  uint64_t copied = 0;
  for (const DeltaCommand& c : *commands) {
    SA_FUZZ_CHECK(c.length > 0);
    if (c.kind == DeltaCommand::Kind::kLiteral) {
      SA_FUZZ_CHECK(c.source_offset <= delta.size() && c.length <= delta.size() - c.source_offset);
      expected.append(delta.substr(c.source_offset, c.length));
    } else if (c.source_offset > kBasisSize || c.length > kBasisSize - c.source_offset) {
      inside = false;
    } else {
      expected.append(BasisBytes(), c.source_offset, c.length);
      copied += c.length;
    }
  }
  if (!inside) {
    SA_FUZZ_CHECK(applied.code() == Status::Code::kCorruption);
    SA_FUZZ_CHECK(out.empty());
    return;
  }
  SA_FUZZ_CHECK(applied.ok());
  SA_FUZZ_CHECK(out == expected);

  // The same delta read from a file.
  std::string from_file;
  ByteSink file_sink = [&from_file](const char* data, size_t n) {
    from_file.append(data, n);
    return Status::OK();
  };
  StringFile delta_file(delta);
  uint64_t copied_bytes = 0;
  SA_FUZZ_CHECK(
      ApplyDelta(basis, kBasisSize, delta_file, delta.size(), file_sink, &copied_bytes).ok());
  SA_FUZZ_CHECK(from_file == expected);
  SA_FUZZ_CHECK(copied_bytes == copied);
}

// A plan for a new file of new_size bytes from an old file of old_size.
void CheckPlan(const MatchPlan& plan, uint64_t new_size, uint64_t old_size) {
  uint64_t at = 0;  // the new file is covered in order: local copies and missing ranges
  size_t l = 0, m = 0;
  while (l < plan.local.size() || m < plan.missing.size()) {
    if (l < plan.local.size() && plan.local[l].new_offset == at) {
      const LocalCopy& c = plan.local[l++];
      SA_FUZZ_CHECK(c.length > 0);
      SA_FUZZ_CHECK(c.old_offset <= old_size && c.length <= old_size - c.old_offset);
      at += c.length;
    } else {
      SA_FUZZ_CHECK(m < plan.missing.size() && plan.missing[m].offset == at);
      SA_FUZZ_CHECK(plan.missing[m].length > 0);
      at += plan.missing[m++].length;
      // Merged: a missing range is never followed directly by another one.
      SA_FUZZ_CHECK(m == plan.missing.size() || plan.missing[m].offset != at);
    }
  }
  SA_FUZZ_CHECK(at == new_size);
  SA_FUZZ_CHECK(plan.local_bytes() + plan.missing_bytes() == new_size);
}

void CheckSignature(std::string_view bytes) {
  Result<Signature> sig = Signature::Load(bytes);
  if (!sig.ok()) {
    SA_FUZZ_CHECK(sig.status().code() == Status::Code::kCorruption ||
                  sig.status().code() == Status::Code::kUnsupported);
    return;
  }
  const uint64_t blocks = sig->block_count();
  SA_FUZZ_CHECK(sig->block_len() > 0 && sig->strong_len() > 0 && sig->strong_len() <= 32);
  // The sizes this signature fits: its last block is 1 to block_len bytes.
  const uint64_t new_size =
      blocks == 0 ? 0 : (blocks - 1) * sig->block_len() + 1 + bytes.size() % sig->block_len();
  BasisFile old;
  // A signature whose short last block has the sums of a whole block
  // matches past the end of the new file: kCorruption, as documented.
  Result<MatchPlan> plan = MatchSignature(bytes, new_size, old, kBasisSize);
  if (plan.ok()) CheckPlan(*plan, new_size, kBasisSize);
  if (!plan.ok()) SA_FUZZ_CHECK(plan.status().code() == Status::Code::kCorruption);
  Result<MatchPlan> aligned = MatchAligned(bytes, new_size, old, kBasisSize, {0, 7});
  if (aligned.ok()) CheckPlan(*aligned, new_size, kBasisSize);
  if (!aligned.ok()) SA_FUZZ_CHECK(aligned.status().code() == Status::Code::kCorruption);
  // One more block than the signature holds is refused.
  SA_FUZZ_CHECK(!MatchSignature(bytes, blocks * sig->block_len() + 1, old, kBasisSize).ok());
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = sync_agent::fuzz::AsText(data, size);
  sync_agent::CheckDelta(bytes);
  sync_agent::CheckSignature(bytes);
  return 0;
}
