#include "common/delta/delta_format.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

namespace sync_agent::delta_internal {
namespace {

constexpr uint64_t kMaxStreamValue = std::numeric_limits<int64_t>::max();  // rs_long_t
constexpr uint8_t kOpEnd = 0x00;
constexpr uint8_t kOpLiteralLastInline = 0x40;
constexpr uint8_t kOpLiteralN1 = 0x41;
constexpr uint8_t kOpLiteralN8 = 0x44;
constexpr uint8_t kOpCopyFirst = 0x45;
constexpr uint8_t kOpCopyLast = 0x54;
constexpr size_t kWidths[4] = {1, 2, 4, 8};

uint64_t BigEndian(const uint8_t* p, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

std::string Hex(uint64_t v, int digits) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*" PRIx64, digits, v);
  return buf;
}

std::string At(std::string_view stage, std::string_view what, uint64_t offset) {
  std::string s(stage);
  s += " at ";
  s += what;
  s += " byte ";
  s += std::to_string(offset);
  return s;
}

}  // namespace

DeltaStreamParser::DeltaStreamParser(std::string_view stage, CommandFn on_command)
    : stage_(stage), on_command_(std::move(on_command)) {}

Status DeltaStreamParser::Fail(uint64_t at, std::string_view what) {
  failure_ = Status::Corruption(At(stage_, "delta", at), what);
  state_ = State::kFailed;
  return failure_;
}

Status DeltaStreamParser::Feed(const char* data, size_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  while (n > 0) {
    switch (state_) {
      case State::kFailed:
        return failure_;
      case State::kEnded:
        return Fail(offset_,
                    "data after the end command at byte " + std::to_string(command_offset_));
      case State::kMagic:
      case State::kParams: {
        size_t take = std::min(n, header_need_ - header_have_);
        std::memcpy(header_ + header_have_, p, take);
        header_have_ += take;
        p += take;
        n -= take;
        offset_ += take;
        if (header_have_ < header_need_) break;
        if (state_ == State::kMagic) {
          uint64_t magic = BigEndian(header_, 4);
          if (magic != kDeltaMagic) {
            return Fail(0, "bad magic " + Hex(magic, 8) + ", expected " + Hex(kDeltaMagic, 8));
          }
          state_ = State::kCommand;
        } else {
          SA_RETURN_IF_ERROR(FinishParams());
        }
        break;
      }
      case State::kCommand: {
        uint8_t op = *p++;
        --n;
        command_offset_ = offset_++;
        SA_RETURN_IF_ERROR(StartCommand(op));
        break;
      }
      case State::kLiteralData: {
        uint64_t take = std::min<uint64_t>(n, literal_left_);
        p += take;
        n -= static_cast<size_t>(take);
        offset_ += take;
        literal_left_ -= take;
        if (literal_left_ == 0) state_ = State::kCommand;
        break;
      }
    }
  }
  return state_ == State::kFailed ? failure_ : Status::OK();
}

Status DeltaStreamParser::StartCommand(uint8_t op) {
  op_ = op;
  if (op == kOpEnd) {
    state_ = State::kEnded;
    return Status::OK();
  }
  if (op <= kOpLiteralLastInline) {
    DeltaCommand literal;
    literal.kind = DeltaCommand::Kind::kLiteral;
    literal.length = op;
    literal.source_offset = offset_;
    literal_left_ = op;
    state_ = State::kLiteralData;
    return Emit(literal);
  }
  if (op <= kOpLiteralN8) {
    header_need_ = kWidths[op - kOpLiteralN1];
  } else if (op <= kOpCopyLast) {
    size_t k = op - kOpCopyFirst;
    header_need_ = kWidths[k / 4] + kWidths[k % 4];
  } else {
    return Fail(command_offset_, "unknown command byte " + Hex(op, 2));
  }
  header_have_ = 0;
  state_ = State::kParams;
  return Status::OK();
}

Status DeltaStreamParser::FinishParams() {
  DeltaCommand command;
  if (op_ <= kOpLiteralN8) {
    uint64_t length = BigEndian(header_, header_need_);
    if (length == 0) return Fail(command_offset_, "literal of length 0");
    if (length > kMaxStreamValue) {
      return Fail(command_offset_, "literal length " + std::to_string(length) + " is too large");
    }
    command.kind = DeltaCommand::Kind::kLiteral;
    command.length = length;
    command.source_offset = offset_;
    literal_left_ = length;
    state_ = State::kLiteralData;
  } else {
    size_t k = op_ - kOpCopyFirst;
    size_t offset_width = kWidths[k / 4];
    uint64_t basis_offset = BigEndian(header_, offset_width);
    uint64_t length = BigEndian(header_ + offset_width, kWidths[k % 4]);
    if (length == 0) return Fail(command_offset_, "copy of length 0");
    if (basis_offset > kMaxStreamValue || length > kMaxStreamValue - basis_offset) {
      return Fail(command_offset_, "copy of " + std::to_string(length) + " bytes at basis offset " +
                                       std::to_string(basis_offset) + " overflows");
    }
    command.kind = DeltaCommand::Kind::kCopy;
    command.length = length;
    command.source_offset = basis_offset;
    state_ = State::kCommand;
  }
  return Emit(command);
}

Status DeltaStreamParser::Emit(const DeltaCommand& command) {
  Status s = on_command_(command, command_offset_);
  if (!s.ok()) {
    failure_ = s;
    state_ = State::kFailed;
  }
  return s;
}

Status DeltaStreamParser::Finish() {
  switch (state_) {
    case State::kFailed:
      return failure_;
    case State::kEnded:
      return Status::OK();
    case State::kMagic:
      return Fail(offset_, "truncated: " + std::to_string(offset_) +
                               " bytes, shorter than the 4-byte magic");
    case State::kCommand:
      return Fail(offset_, "truncated: the delta ends without an end command");
    case State::kParams:
      return Fail(command_offset_, "truncated: the parameters of command " + Hex(op_, 2) +
                                       " run past the end of the delta");
    case State::kLiteralData:
      return Fail(command_offset_, "truncated: the literal runs " + std::to_string(literal_left_) +
                                       " bytes past the end of the delta");
  }
  return Status::OK();
}

Result<SignatureHeader> ParseSignatureHeader(std::string_view signature) {
  constexpr std::string_view kStage = "load signature";
  if (signature.size() < kSignatureHeaderBytes) {
    return Status::Corruption(At(kStage, "signature", signature.size()),
                              "truncated: " + std::to_string(signature.size()) +
                                  " bytes, shorter than the 12-byte header");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(signature.data());
  SignatureHeader h;
  h.magic = static_cast<uint32_t>(BigEndian(p, 4));
  h.block_len = static_cast<uint32_t>(BigEndian(p + 4, 4));
  h.strong_len = static_cast<uint32_t>(BigEndian(p + 8, 4));
  switch (h.magic) {
    case kRabinKarpBlake2Magic:
      break;
    case 0x72730136:  // RS_MD4_SIG_MAGIC
    case 0x72730137:  // RS_BLAKE2_SIG_MAGIC
    case 0x72730146:  // RS_RK_MD4_SIG_MAGIC
      return Status::Unsupported(kStage, "signature type " + Hex(h.magic, 8) +
                                             " is not RabinKarp+BLAKE2 (" +
                                             Hex(kRabinKarpBlake2Magic, 8) + ")");
    default:
      return Status::Corruption(At(kStage, "signature", 0), "bad magic " + Hex(h.magic, 8));
  }
  if (h.block_len == 0 || h.block_len > kMaxBlockLen) {
    return Status::Corruption(At(kStage, "signature", 4),
                              "block length " + std::to_string(h.block_len) + " is outside [1, " +
                                  std::to_string(kMaxBlockLen) + "]");
  }
  if (h.strong_len == 0 || h.strong_len > kMaxStrongLen) {
    return Status::Corruption(At(kStage, "signature", 8),
                              "strong sum length " + std::to_string(h.strong_len) +
                                  " is outside [1, " + std::to_string(kMaxStrongLen) + "]");
  }
  const uint64_t entry = 4 + h.strong_len;
  const uint64_t body = signature.size() - kSignatureHeaderBytes;
  if (body % entry != 0) {
    return Status::Corruption(At(kStage, "signature", signature.size() - body % entry),
                              "truncated: the last block entry has " +
                                  std::to_string(body % entry) + " of its " +
                                  std::to_string(entry) + " bytes");
  }
  h.block_count = body / entry;
  return h;
}

Result<SignatureHeader> ParseSignatureFor(std::string_view signature, uint64_t new_size,
                                          std::string_view stage) {
  SA_ASSIGN_OR_RETURN(SignatureHeader header, ParseSignatureHeader(signature));
  const uint64_t block = header.block_len;
  const uint64_t expected = new_size / block + (new_size % block != 0 ? 1 : 0);
  if (header.block_count != expected) {
    return Status::Corruption(stage, "the signature has " + std::to_string(header.block_count) +
                                         " blocks of " + std::to_string(block) +
                                         " bytes, but the new file's " + std::to_string(new_size) +
                                         " bytes make " + std::to_string(expected));
  }
  return header;
}

std::string_view SignatureBlockSums(std::string_view signature, const SignatureHeader& header,
                                    uint64_t block) {
  const size_t entry = 4 + header.strong_len;
  return signature.substr(kSignatureHeaderBytes + block * entry, entry);
}

}  // namespace sync_agent::delta_internal
