// Block-level deltas with librsync, behind one RAII module. librsync is driven
// only through rs_job_iter() with our own buffers (never the stdio helpers,
// which call exit()), and every rs_result becomes a Status naming the stage
// and what was being read.
//
// Three uses:
//  - the publisher computes a signature of each new file and deltas from the
//    same path's previous contents (ComputeSignature, ComputeDelta);
//  - a node patches its old content with a published delta (ApplyDelta);
//  - a node rolls its old content against the new file's published signature
//    to learn which blocks of the new file it already has, at any offset, and
//    which byte ranges it must fetch (MatchSignature), zsync style.
//
// Thread safety: functions are reentrant; a Signature may be used by one
// thread at a time (librsync updates statistics inside it while matching).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/status.h"

namespace sync_agent {

class RandomAccessFile;
class SequentialFile;

// Receives output bytes in order; a non-OK Status aborts the job.
using ByteSink = std::function<Status(const char* data, size_t n)>;

struct SignatureParams {
  uint32_t block_len = 0;   // bytes per block
  uint32_t strong_len = 0;  // bytes of the strong (BLAKE2) sum kept per block
};

// About sqrt(file_size), rounded to a power of two within [1 KiB, 1 MiB];
// strong_len 16. (Deterministic: publisher and tests agree.)
SignatureParams ChooseSignatureParams(uint64_t file_size);

// Writes the librsync signature (RabinKarp + BLAKE2 format) of input's bytes.
// kInvalidArgument unless block_len is in [1, 16 MiB] and strong_len in
// [1, 32].
Status ComputeSignature(SequentialFile* input, const SignatureParams& params, const ByteSink& out);

// A signature loaded into memory with its hash table built. Owns the
// rs_signature_t. Load rejects truncated or corrupt input with kCorruption
// ("load signature at signature byte N: ...", including a block_len over
// 16 MiB) and other librsync signature types (MD4, BLAKE2 without
// RabinKarp) with kUnsupported. A moved-from Signature may only be assigned
// or destroyed.
class Signature {
 public:
  ~Signature();
  Signature(Signature&&) noexcept;
  Signature& operator=(Signature&&) noexcept;
  Signature(const Signature&) = delete;
  Signature& operator=(const Signature&) = delete;

  static Result<Signature> Load(std::string_view bytes);
  uint32_t block_len() const;
  uint32_t strong_len() const;
  uint64_t block_count() const;

 private:
  friend struct SignatureAccess;
  Signature() = default;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

// Writes a librsync delta that turns the content the signature describes
// (the basis) into input's bytes.
Status ComputeDelta(Signature& basis_signature, SequentialFile* input, const ByteSink& out);

// Applies a delta to basis (random access) and writes the result. The whole
// delta is checked first (format, and every copy inside [0, basis_size)), so
// a corrupt delta fails with kCorruption ("apply delta at delta byte N: ...")
// before any output; basis is never read outside [0, basis_size). A basis
// shorter than basis_size is kIOError, and a failing sink's status is
// returned as is; output already written then is not retracted.
Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                  const ByteSink& out);

// The same with the delta in a file of delta_size bytes (a downloaded
// delta: memory does not grow with its size). The delta is read twice.
// copied_bytes, when set, receives the bytes the delta takes from the basis
// (known once the delta is checked, before any output).
Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, const RandomAccessFile& delta,
                  uint64_t delta_size, const ByteSink& out, uint64_t* copied_bytes = nullptr);

// The commands of a delta stream, parsed per librsync's documented format
// (doc/formats.md): for each, where its bytes come from.
struct DeltaCommand {
  enum class Kind { kLiteral, kCopy };
  Kind kind = Kind::kLiteral;
  uint64_t length = 0;
  uint64_t source_offset = 0;  // kCopy: offset in the basis; kLiteral: offset in the delta
};
// kCorruption ("parse delta at delta byte N: ...") for bad magic, unknown
// command bytes, zero lengths, lengths past the end, copies whose offset +
// length overflow a signed 64-bit position, a missing end command and bytes
// after it.
Result<std::vector<DeltaCommand>> ParseDelta(std::string_view delta);

// Where each part of a new file can come from, given the new file's signature
// and an old local file.
struct LocalCopy {
  uint64_t new_offset = 0;  // in the new file
  uint64_t old_offset = 0;  // in the old local file
  uint64_t length = 0;
};
struct MatchPlan {
  std::vector<LocalCopy> local;    // sorted by new_offset, non-overlapping
  std::vector<ByteRange> missing;  // sorted, merged: what must be fetched
  uint64_t local_bytes() const;
  uint64_t missing_bytes() const;
};
// Rolls old's bytes against the new file's signature. new_size is the new
// file's size (from the manifest); a signature whose block count does not
// fit it is kCorruption, as are a malformed signature and a match reaching
// past new_size. Blocks are matched whole, at any offset of old; the new
// file's short last block only at old's end. A block the new file repeats is
// taken from old for every occurrence. Where old offers the same new bytes
// more than once, the copy found first (lowest old offset) is kept.
//
// threads > 1 splits old into that many parts at block-aligned offsets, each
// reaching block_len - 1 bytes into the next so no block-long window is lost,
// and matches them on their own threads, each with its own copy of the
// signature (memory: one signature per thread). Every copy is verified by
// the strong sum either way; because each part restarts the greedy scan,
// the covered bytes can differ slightly from threads = 1 near part
// boundaries, usually by finding more (e.g. the short last block at a
// part's end). old must allow concurrent ReadAt (RandomAccessFile does).
Result<MatchPlan> MatchSignature(std::string_view signature_bytes, uint64_t new_size,
                                 const RandomAccessFile& old, uint64_t old_size, int threads = 1);

// A quick look before a full MatchSignature: rolls `windows` short windows
// (about 2.5 blocks each) spread evenly over old against the signature. If
// none matches, old very likely shares little with the new file: with a
// fraction f of old reusable, all windows miss with probability about
// (1 - f)^windows. Costs a few blocks of reading per window.
struct MatchSample {
  int windows = 0;
  int windows_matched = 0;  // windows with at least one block found
  uint64_t bytes_sampled = 0;
  uint64_t bytes_matched = 0;
  // Offsets between matched old and new bytes (old - new), the most bytes
  // first: 0 for edits in place, +k where k bytes were cut before, -k where
  // k bytes were inserted before.
  std::vector<int64_t> shifts;
};
Result<MatchSample> SampleMatch(std::string_view signature_bytes, uint64_t new_size,
                                const RandomAccessFile& old, uint64_t old_size, int windows);

// The fast path for edits that keep most blocks where they were, up to a
// few shifts: block i of the new file is taken from old at
// i * block_len + shift for the first shift whose bytes there have block i's
// weak (RabinKarp) sum; blocks found nowhere are missing. No rolling and no
// strong sums, so it is several times faster than MatchSignature, but a
// 32-bit sum may match wrong bytes (about 2^-32 per block tried): the
// caller must verify the rebuilt file and fall back to MatchSignature.
// threads > 1 splits the blocks between threads. Errors as MatchSignature.
Result<MatchPlan> MatchAligned(std::string_view signature_bytes, uint64_t new_size,
                               const RandomAccessFile& old, uint64_t old_size,
                               const std::vector<int64_t>& shifts, int threads = 1);
// librsync's RabinKarp weak sum of a block, as signatures store it.
uint32_t RabinKarpWeakSum(const char* data, size_t n);

// Sorts ranges and merges those that overlap, touch, or are separated by
// fewer than gap bytes (the bytes between are then fetched too), then splits
// them into groups of at most max_ranges (0 counts as 1); returns the groups
// in offset order (one HTTP request each). Empty ranges are dropped.
std::vector<std::vector<ByteRange>> GroupRanges(const std::vector<ByteRange>& ranges, uint64_t gap,
                                                size_t max_ranges);

}  // namespace sync_agent
