#include "common/http/chunked_decoder.h"

#include <algorithm>
#include <limits>

#include "common/http/http_text.h"

namespace sync_agent {

Status ChunkedDecoder::Feed(const char* data, size_t n, size_t* consumed, const Output& out) {
  size_t i = 0;
  while (i < n && state_ != State::kDone) {
    char c = data[i];
    switch (state_) {
      case State::kSize: {
        int digit = HexDigitValue(c);
        if (digit >= 0) {
          if (size_ > (std::numeric_limits<uint64_t>::max() >> 4))
            return Bad("chunk size overflows");
          size_ = size_ * 16 + static_cast<uint64_t>(digit);
          saw_digit_ = true;
          ++i;
          break;
        }
        if (!saw_digit_) return Bad("missing chunk size");
        if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kSizeExtension;
        } else if (c == '\r') {
          state_ = State::kSizeLF;
        } else if (c == '\n') {
          EndSizeLine();
        } else {
          return Bad("invalid character in chunk size");
        }
        ++i;
        break;
      }
      case State::kSizeExtension:
        if (c == '\n') {
          EndSizeLine();
        } else if (++line_len_ > kMaxChunkLineBytes) {
          return Bad("chunk extension too long");
        }
        ++i;
        break;
      case State::kSizeLF:
        if (c != '\n') return Bad("CR without LF after chunk size");
        EndSizeLine();
        ++i;
        break;
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(size_, n - i));
        SA_RETURN_IF_ERROR(out(data + i, take));
        i += take;
        size_ -= take;
        if (size_ == 0) state_ = State::kDataCR;
        break;
      }
      case State::kDataCR:
        if (c == '\r') {
          state_ = State::kDataLF;
        } else if (c == '\n') {
          StartSizeLine();
        } else {
          return Bad("chunk data longer than its size");
        }
        ++i;
        break;
      case State::kDataLF:
        if (c != '\n') return Bad("CR without LF after chunk data");
        StartSizeLine();
        ++i;
        break;
      case State::kTrailer:
        if (c == '\n') {
          if (line_len_ == 0) state_ = State::kDone;
          line_len_ = 0;
        } else if (c != '\r' && ++line_len_ > kMaxChunkLineBytes) {
          return Bad("trailer line too long");
        }
        ++i;
        break;
      case State::kDone:
        break;
    }
  }
  *consumed = i;
  return Status::OK();
}

Status ChunkedDecoder::Bad(std::string_view why) {
  error_ = std::string(why);
  return Status::Network("malformed chunked body", why);
}

void ChunkedDecoder::StartSizeLine() {
  state_ = State::kSize;
  size_ = 0;
  saw_digit_ = false;
  line_len_ = 0;
}

void ChunkedDecoder::EndSizeLine() {
  line_len_ = 0;
  state_ = size_ == 0 ? State::kTrailer : State::kData;
}

}  // namespace sync_agent
