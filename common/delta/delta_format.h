// librsync's two stream formats (doc/format.md), read by our own code so that
// a corrupt stream is rejected with the byte offset of the problem before
// librsync acts on it. Private to common/delta.
//
// Delta: u32 magic 0x72730236, then commands; all integers big-endian.
//   0x00        END
//   0x01..0x40  LITERAL, length = the command byte, data follows
//   0x41..0x44  LITERAL, length in the next 1/2/4/8 bytes, data follows
//   0x45..0x54  COPY, basis offset then length; (byte - 0x45) / 4 picks the
//               offset width 1/2/4/8 and (byte - 0x45) % 4 the length width
//   0x55..0xff  reserved: never written, rejected
// (table of librsync's src/prototab.c; the writer is src/emit.c)
//
// Signature: u32 magic, u32 block_len, u32 strong_len, then per block a u32
// weak sum and strong_len bytes of strong sum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/delta/rsync_delta.h"

namespace sync_agent::delta_internal {

inline constexpr uint32_t kDeltaMagic = 0x72730236;            // RS_DELTA_MAGIC
inline constexpr uint32_t kRabinKarpBlake2Magic = 0x72730147;  // RS_RK_BLAKE2_SIG_MAGIC
inline constexpr size_t kSignatureHeaderBytes = 12;
inline constexpr uint32_t kMaxStrongLen = 32;  // BLAKE2b-256
// Largest block_len a signature may declare. ChooseSignatureParams never goes
// past 1 MiB; the margin accepts hand-picked sizes, the bound keeps a corrupt
// header from making librsync buffer gigabytes while it scans.
inline constexpr uint32_t kMaxBlockLen = 16u << 20;

// Parses a delta stream fed in pieces of any size and reports each command as
// soon as its header is complete (a literal before its data has arrived).
// Every error is kCorruption, "<stage> at delta byte N: <what>", N being the
// offset of the offending command (or byte). After an error the parser stays
// failed. Not thread safe.
class DeltaStreamParser {
 public:
  // Called with each command and the offset of its command byte; may return
  // non-OK to stop, and Feed returns that status unchanged.
  using CommandFn = std::function<Status(const DeltaCommand& command, uint64_t command_offset)>;

  DeltaStreamParser(std::string_view stage, CommandFn on_command);
  DeltaStreamParser(const DeltaStreamParser&) = delete;
  DeltaStreamParser& operator=(const DeltaStreamParser&) = delete;

  Status Feed(const char* data, size_t n);
  // The stream ended: fails unless the end command was the last byte.
  Status Finish();

  // Bytes fed so far.
  uint64_t offset() const { return offset_; }

 private:
  enum class State { kMagic, kCommand, kParams, kLiteralData, kEnded, kFailed };

  Status Fail(uint64_t at, std::string_view what);
  Status StartCommand(uint8_t op);
  Status FinishParams();
  Status Emit(const DeltaCommand& command);

  std::string stage_;
  CommandFn on_command_;
  State state_ = State::kMagic;
  uint64_t offset_ = 0;
  uint64_t command_offset_ = 0;
  uint8_t op_ = 0;
  uint8_t header_[16] = {};  // magic or a command's parameters
  size_t header_have_ = 0;
  size_t header_need_ = 4;
  uint64_t literal_left_ = 0;
  Status failure_;
};

struct SignatureHeader {
  uint32_t magic = 0;
  uint32_t block_len = 0;
  uint32_t strong_len = 0;
  uint64_t block_count = 0;
};

// Checks a whole signature's header and that its body is a whole number of
// block entries. kCorruption for anything malformed, kUnsupported for
// another librsync signature type (MD4, or BLAKE2 without RabinKarp).
Result<SignatureHeader> ParseSignatureHeader(std::string_view signature);

// ParseSignatureHeader, and then kCorruption (naming stage) unless the
// signature has exactly the blocks a file of new_size bytes makes.
Result<SignatureHeader> ParseSignatureFor(std::string_view signature, uint64_t new_size,
                                          std::string_view stage);

// The weak and strong sum bytes of block i of a signature that passed
// ParseSignatureHeader.
std::string_view SignatureBlockSums(std::string_view signature, const SignatureHeader& header,
                                    uint64_t block);

}  // namespace sync_agent::delta_internal
