// Transfer-Encoding: chunked (RFC 9112 7.1), decoded incrementally. The HTTP
// client feeds it the raw body as it arrives; it is its own file so that the
// decoder can be tested and fuzzed without a socket. Poco's chunked istream
// reports a connection closed in the middle of a chunk as a normal end of
// body, which would turn truncation into silent data loss; this decoder
// leaves that judgement to the caller (done() is false until the last chunk
// and its trailers are complete).
//
// Chunk extensions and trailer fields are skipped. A chunk-size line,
// extension or trailer line longer than kMaxChunkLineBytes is an error, and
// so is a size that does not fit 64 bits. Not thread safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace sync_agent {

// Longest chunk-size or trailer line accepted in a chunked body.
inline constexpr size_t kMaxChunkLineBytes = 8192;

class ChunkedDecoder {
 public:
  // Receives the decoded body in order; a non-OK Status stops Feed, which
  // returns it as is.
  using Output = std::function<Status(const char*, size_t)>;

  // Decodes from data[0, n). Stops early once the last chunk and trailers are
  // complete; *consumed tells how far it got. A malformed body is kNetwork
  // ("malformed chunked body: <why>"), with the reason also in error(); the
  // decoder must not be fed again after an error.
  Status Feed(const char* data, size_t n, size_t* consumed, const Output& out);

  // The last chunk and its trailers have been read.
  bool done() const { return state_ == State::kDone; }
  // Why the body is malformed, or "" (also when out failed).
  const std::string& error() const { return error_; }

 private:
  enum class State { kSize, kSizeExtension, kSizeLF, kData, kDataCR, kDataLF, kTrailer, kDone };

  Status Bad(std::string_view why);
  void StartSizeLine();
  void EndSizeLine();

  State state_ = State::kSize;
  uint64_t size_ = 0;
  bool saw_digit_ = false;
  size_t line_len_ = 0;
  std::string error_;
};

}  // namespace sync_agent
