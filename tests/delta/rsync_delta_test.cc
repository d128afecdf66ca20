// Unit tests of the delta module's formats and error paths: parameter
// choice, ParseDelta on hand-made streams (every command byte), Signature
// loading, and ApplyDelta's defence of the basis.

#include "common/delta/rsync_delta.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/delta/delta_format.h"
#include "common/delta/librsync_job.h"
#include "tests/delta/delta_test_util.h"

namespace sync_agent {
namespace {

using testing::DeltaFiles;

std::string BigEndian(uint64_t v, int width) {
  std::string out(width, '\0');
  for (int i = width - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

std::string HexByte(int v) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[(v >> 4) & 0xf] + digits[v & 0xf];
}

const std::string kMagic("rs\x02\x36", 4);
const std::string kEnd(1, '\0');

std::string Op(int op) { return std::string(1, static_cast<char>(op)); }

void ExpectCorruptionAt(const Result<std::vector<DeltaCommand>>& r, uint64_t byte,
                        const std::string& what) {
  ASSERT_FALSE(r.ok()) << "expected a corruption error about " << what;
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().ToString();
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("parse delta at delta byte " + std::to_string(byte) + ":"), std::string::npos)
      << m;
  EXPECT_NE(m.find(what), std::string::npos) << m;
}

// ---- ChooseSignatureParams ----------------------------------------------

TEST(ChooseSignatureParamsTest, PowerOfTwoNearSqrtWithinBounds) {
  struct Case {
    uint64_t size;
    uint32_t block_len;
  };
  const Case cases[] = {
      {0, 1024},
      {1, 1024},
      {1024, 1024},
      {uint64_t{1} << 20, 1024},                   // sqrt = 1 KiB
      {uint64_t{4} << 20, 2048},                   // sqrt = 2 KiB
      {uint64_t{256} << 20, 16 * 1024},            // sqrt = 16 KiB
      {(uint64_t{256} << 20) * 2 - 1, 16 * 1024},  // sqrt just under 16 KiB * sqrt(2)
      {(uint64_t{256} << 20) * 2, 32 * 1024},      // from the geometric midpoint up
      {uint64_t{16} << 30, 128 * 1024},            // 16 GiB
      {uint64_t{1} << 40, 1 << 20},                // 1 TiB: sqrt = 1 MiB
      {uint64_t{1} << 50, 1 << 20},                // capped
      {~uint64_t{0}, 1 << 20},
  };
  for (const Case& c : cases) {
    SignatureParams p = ChooseSignatureParams(c.size);
    EXPECT_EQ(p.block_len, c.block_len) << c.size;
    EXPECT_EQ(p.strong_len, 16u);
  }
}

// ---- ParseDelta on hand-made streams --------------------------------------

TEST(ParseDeltaTest, EveryInlineLiteralLength) {
  std::string delta = kMagic;
  for (int len = 1; len <= 0x40; ++len) {
    delta += Op(len) + std::string(len, 'x');
  }
  delta += kEnd;
  auto commands = ParseDelta(delta);
  ASSERT_TRUE(commands.ok()) << commands.status().ToString();
  ASSERT_EQ(commands->size(), 64u);
  uint64_t at = 4;
  for (int len = 1; len <= 0x40; ++len) {
    const DeltaCommand& c = (*commands)[len - 1];
    EXPECT_EQ(c.kind, DeltaCommand::Kind::kLiteral);
    EXPECT_EQ(c.length, static_cast<uint64_t>(len));
    EXPECT_EQ(c.source_offset, at + 1);  // data follows the command byte
    at += 1 + len;
  }
}

TEST(ParseDeltaTest, LiteralWithLengthParameterOfEachWidth) {
  const int widths[] = {1, 2, 4, 8};
  for (int k = 0; k < 4; ++k) {
    std::string delta =
        kMagic + Op(0x41 + k) + BigEndian(65, widths[k]) + std::string(65, 'y') + kEnd;
    auto commands = ParseDelta(delta);
    ASSERT_TRUE(commands.ok()) << commands.status().ToString();
    ASSERT_EQ(commands->size(), 1u);
    EXPECT_EQ((*commands)[0].kind, DeltaCommand::Kind::kLiteral);
    EXPECT_EQ((*commands)[0].length, 65u);
    EXPECT_EQ((*commands)[0].source_offset, 5u + widths[k]);
  }
}

TEST(ParseDeltaTest, CopyOfEachOffsetAndLengthWidth) {
  // 0x45 + 4 * offset_width_index + length_width_index, per prototab.c.
  const int widths[] = {1, 2, 4, 8};
  for (int o = 0; o < 4; ++o) {
    for (int l = 0; l < 4; ++l) {
      const int op = 0x45 + 4 * o + l;
      const uint64_t offset = o == 0 ? 0xab : (uint64_t{0x0102} << (8 * (widths[o] - 2)));
      const uint64_t length = l == 0 ? 0xcd : (uint64_t{0x0304} << (8 * (widths[l] - 2)));
      std::string delta =
          kMagic + Op(op) + BigEndian(offset, widths[o]) + BigEndian(length, widths[l]) + kEnd;
      auto commands = ParseDelta(delta);
      ASSERT_TRUE(commands.ok()) << std::hex << op << " " << commands.status().ToString();
      ASSERT_EQ(commands->size(), 1u);
      EXPECT_EQ((*commands)[0].kind, DeltaCommand::Kind::kCopy);
      EXPECT_EQ((*commands)[0].source_offset, offset) << std::hex << op;
      EXPECT_EQ((*commands)[0].length, length) << std::hex << op;
    }
  }
}

TEST(ParseDeltaTest, RejectsBadMagic) {
  ExpectCorruptionAt(ParseDelta(std::string("rs\x01\x36", 4) + kEnd), 0, "bad magic 0x72730136");
  ExpectCorruptionAt(ParseDelta(std::string("rs\x02", 3)), 3, "shorter than the 4-byte magic");
  ExpectCorruptionAt(ParseDelta(""), 0, "shorter than the 4-byte magic");
}

TEST(ParseDeltaTest, RejectsEveryReservedCommandByte) {
  for (int op = 0x55; op <= 0xff; ++op) {
    ExpectCorruptionAt(ParseDelta(kMagic + Op(2) + "ab" + Op(op) + kEnd), 7,
                       "unknown command byte " + HexByte(op));
  }
}

TEST(ParseDeltaTest, RejectsLengthsPastTheEnd) {
  ExpectCorruptionAt(ParseDelta(kMagic + Op(5) + "abc"), 4, "runs 2 bytes past the end");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x42) + BigEndian(1000, 2) + "abc"), 4,
                     "runs 997 bytes past the end");
  // The length parameter itself cut short.
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x43) + BigEndian(1, 2)), 4,
                     "parameters of command 0x43 run past the end");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x54) + BigEndian(1, 8) + BigEndian(1, 7)), 4,
                     "parameters of command 0x54");
}

TEST(ParseDeltaTest, RejectsMissingEndAndTrailingBytes) {
  ExpectCorruptionAt(ParseDelta(kMagic), 4, "without an end command");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(1) + "z"), 6, "without an end command");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(1) + "z" + kEnd + "junk"), 7,
                     "data after the end command at byte 6");
  ExpectCorruptionAt(ParseDelta(kMagic + kEnd + kEnd), 5, "data after the end command");
}

TEST(ParseDeltaTest, RejectsZeroLengthsAndOverflow) {
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x41) + BigEndian(0, 1) + kEnd), 4,
                     "literal of length 0");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x45) + BigEndian(3, 1) + BigEndian(0, 1) + kEnd), 4,
                     "copy of length 0");
  // offset + length past 2^63 - 1 (librsync's signed 64-bit positions).
  ExpectCorruptionAt(
      ParseDelta(kMagic + Op(0x54) + BigEndian(0x7fffffffffffff00, 8) + BigEndian(0x100, 8) + kEnd),
      4, "overflows");
  ExpectCorruptionAt(
      ParseDelta(kMagic + Op(0x54) + BigEndian(~uint64_t{0}, 8) + BigEndian(1, 8) + kEnd), 4,
      "overflows");
  ExpectCorruptionAt(ParseDelta(kMagic + Op(0x44) + BigEndian(uint64_t{1} << 63, 8) + kEnd), 4,
                     "too large");
  // The largest copy that does not overflow parses.
  auto max_copy =
      ParseDelta(kMagic + Op(0x54) + BigEndian(0x7fffffffffffff00, 8) + BigEndian(0xff, 8) + kEnd);
  EXPECT_TRUE(max_copy.ok()) << max_copy.status().ToString();
}

TEST(ParseDeltaTest, EmptyDeltaIsMagicAndEnd) {
  auto commands = ParseDelta(kMagic + kEnd);
  ASSERT_TRUE(commands.ok());
  EXPECT_TRUE(commands->empty());
}

TEST(ParseDeltaTest, StreamingParserAgreesWithParseDeltaInAnyPieces) {
  DeltaFiles files;
  const std::string old_content = testing::RandomBytes(20000, 5);
  const std::string new_content =
      testing::RandomBytes(70, 6) + old_content.substr(3000) + testing::RandomBytes(4000, 7);
  auto sig = files.Signature(files.Put("old", old_content), {1024, 16});
  ASSERT_TRUE(sig.ok());
  auto delta = files.Delta(*sig, files.Put("new", new_content));
  ASSERT_TRUE(delta.ok());
  auto whole = ParseDelta(*delta);
  ASSERT_TRUE(whole.ok());
  for (size_t piece : {size_t{1}, size_t{3}, size_t{64}, size_t{1000}}) {
    std::vector<DeltaCommand> streamed;
    delta_internal::DeltaStreamParser parser("test", [&](const DeltaCommand& c, uint64_t) {
      streamed.push_back(c);
      return Status::OK();
    });
    for (size_t at = 0; at < delta->size(); at += piece) {
      ASSERT_TRUE(parser.Feed(delta->data() + at, std::min(piece, delta->size() - at)).ok());
    }
    ASSERT_TRUE(parser.Finish().ok());
    ASSERT_EQ(streamed.size(), whole->size());
    for (size_t i = 0; i < streamed.size(); ++i) {
      EXPECT_EQ(streamed[i].kind, (*whole)[i].kind);
      EXPECT_EQ(streamed[i].length, (*whole)[i].length);
      EXPECT_EQ(streamed[i].source_offset, (*whole)[i].source_offset);
    }
  }
}

TEST(ParseDeltaTest, CallbackErrorStopsTheParser) {
  int calls = 0;
  delta_internal::DeltaStreamParser parser("test", [&](const DeltaCommand&, uint64_t) {
    ++calls;
    return Status::Cancelled("stop");
  });
  const std::string delta = kMagic + Op(1) + "a" + Op(1) + "b" + kEnd;
  EXPECT_EQ(parser.Feed(delta.data(), delta.size()).code(), Status::Code::kCancelled);
  EXPECT_EQ(parser.Finish().code(), Status::Code::kCancelled);
  EXPECT_EQ(calls, 1);
}

// ---- Signature::Load -----------------------------------------------------

std::string SignatureHeader(uint32_t magic, uint32_t block_len, uint32_t strong_len) {
  return BigEndian(magic, 4) + BigEndian(block_len, 4) + BigEndian(strong_len, 4);
}

TEST(SignatureTest, LoadReportsShape) {
  DeltaFiles files;
  auto bytes = files.Signature(files.Put("f", testing::RandomBytes(5000, 1)), {2048, 12});
  ASSERT_TRUE(bytes.ok());
  auto sig = Signature::Load(*bytes);
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(sig->block_len(), 2048u);
  EXPECT_EQ(sig->strong_len(), 12u);
  EXPECT_EQ(sig->block_count(), 3u);
  // Moves keep the loaded signature.
  Signature moved = std::move(sig).value();
  EXPECT_EQ(moved.block_count(), 3u);
}

TEST(SignatureTest, EmptyFileSignatureLoadsWithNoBlocks) {
  auto sig = Signature::Load(SignatureHeader(0x72730147, 1024, 16));
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(sig->block_count(), 0u);
}

TEST(SignatureTest, LoadRejectsMalformedHeaders) {
  struct Case {
    std::string bytes;
    Status::Code code;
    std::string what;
  };
  const Case cases[] = {
      {"", Status::Code::kCorruption, "at signature byte 0: truncated"},
      {std::string("rs\x01G\0\0", 6), Status::Code::kCorruption, "at signature byte 6: truncated"},
      {SignatureHeader(0x12345678, 1024, 16), Status::Code::kCorruption, "bad magic 0x12345678"},
      {SignatureHeader(0x72730136, 1024, 16), Status::Code::kUnsupported, "not RabinKarp+BLAKE2"},
      {SignatureHeader(0x72730146, 1024, 16), Status::Code::kUnsupported, "not RabinKarp+BLAKE2"},
      {SignatureHeader(0x72730147, 0, 16), Status::Code::kCorruption, "block length 0"},
      {SignatureHeader(0x72730147, 0x80000000, 16), Status::Code::kCorruption,
       "block length 2147483648"},
      {SignatureHeader(0x72730147, 1024, 0), Status::Code::kCorruption, "strong sum length 0"},
      {SignatureHeader(0x72730147, 1024, 33), Status::Code::kCorruption, "strong sum length 33"},
      {SignatureHeader(0x72730147, 1024, 16) + std::string(21, 'x'), Status::Code::kCorruption,
       "at signature byte 32: truncated: the last block entry has 1 of its 20 bytes"},
  };
  for (const Case& c : cases) {
    auto sig = Signature::Load(c.bytes);
    ASSERT_FALSE(sig.ok()) << c.what;
    EXPECT_EQ(sig.status().code(), c.code) << sig.status().ToString();
    EXPECT_NE(sig.status().message().find("load signature"), std::string::npos);
    EXPECT_NE(sig.status().message().find(c.what), std::string::npos) << sig.status().ToString();
  }
}

TEST(SignatureTest, ComputeSignatureRejectsBadParams) {
  DeltaFiles files;
  const std::string path = files.Put("f", "abc");
  for (SignatureParams p : {SignatureParams{0, 16}, SignatureParams{1024, 0},
                            SignatureParams{1024, 33}, SignatureParams{(16u << 20) + 1, 16}}) {
    auto sig = files.Signature(path, p);
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.status().code(), Status::Code::kInvalidArgument) << sig.status().ToString();
  }
}

// ---- ApplyDelta's defence of the basis ------------------------------------

class ApplyDeltaBoundsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    basis_ = testing::RandomBytes(5000, 9);
    basis_path_ = files_.Put("basis", basis_);
  }
  // Runs fn over a basis reader limited to the basis size.
  template <typename Fn>
  Status Run(const std::string& delta, std::string* out, Fn fn) {
    auto basis = files_.OpenRandom(basis_path_, basis_.size());
    Status s =
        fn(*basis, basis_.size(), delta, testing::AppendTo(out), delta_internal::JobBuffers{});
    EXPECT_FALSE(basis->read_outside());
    return s;
  }
  DeltaFiles files_;
  std::string basis_;
  std::string basis_path_;
};

TEST_F(ApplyDeltaBoundsTest, CopiesInsideTheBasisWork) {
  const std::string delta = kMagic + Op(0x4a) + BigEndian(4000, 2) + BigEndian(1000, 2) + Op(3) +
                            "xyz" + Op(0x46) + BigEndian(0, 1) + BigEndian(10, 2) + kEnd;
  std::string out;
  Status s = Run(delta, &out, delta_internal::ApplyDelta);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(out == basis_.substr(4000, 1000) + "xyz" + basis_.substr(0, 10));
}

TEST_F(ApplyDeltaBoundsTest, CopyPastTheBasisIsRejectedBeforeAnyOutput) {
  // Literal first, then a copy reaching one byte past the end.
  const std::string delta =
      kMagic + Op(2) + "ok" + Op(0x4a) + BigEndian(4000, 2) + BigEndian(1001, 2) + kEnd;
  std::string out;
  Status s = Run(delta, &out, delta_internal::ApplyDelta);
  ASSERT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("apply delta at delta byte 7: copy of 1001 bytes at basis offset "
                             "4000 reads past the basis (5000 bytes)"),
            std::string::npos)
      << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST_F(ApplyDeltaBoundsTest, CopyCallbackRefusesReadsOutsideTheBasis) {
  // Without the validating pass, librsync runs the copy and our callback
  // must stop it at the basis end.
  const struct {
    uint64_t offset, length;
  } copies[] = {{4000, 1001}, {5000, 1}, {6000, 10}, {0, (uint64_t{1} << 32) + 5}};
  for (const auto& c : copies) {
    const std::string delta =
        kMagic + Op(0x54) + BigEndian(c.offset, 8) + BigEndian(c.length, 8) + kEnd;
    std::string out;
    Status s = Run(delta, &out, delta_internal::PatchWithLibrsync);
    ASSERT_EQ(s.code(), Status::Code::kCorruption) << c.offset << "+" << c.length;
    EXPECT_NE(s.message().find("apply delta at delta byte"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("outside the basis (5000 bytes)"), std::string::npos)
        << s.ToString();
    // And the validating pass catches them all first.
    out.clear();
    s = Run(delta, &out, delta_internal::ApplyDelta);
    EXPECT_EQ(s.code(), Status::Code::kCorruption);
    EXPECT_TRUE(out.empty());
  }
}

TEST_F(ApplyDeltaBoundsTest, LibrsyncErrorsMapToCorruptionWithTheStage) {
  // Passed straight to librsync: bad magic, reserved command, truncation.
  const std::string deltas[] = {
      std::string("rs\x01\x36", 4) + kEnd,
      kMagic + Op(0x60) + kEnd,
      kMagic + Op(0x42) + BigEndian(300, 2) + "short",
      kMagic + Op(2) + "ab",
  };
  for (const std::string& delta : deltas) {
    std::string out;
    Status s = Run(delta, &out, delta_internal::PatchWithLibrsync);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("apply delta at delta byte "), std::string::npos) << s.ToString();
  }
}

TEST_F(ApplyDeltaBoundsTest, BasisShorterThanClaimedIsAnIOError) {
  const std::string short_path = files_.Put("short", basis_.substr(0, 3000));
  auto basis = files_.OpenRandom(short_path, 5000);
  const std::string delta = kMagic + Op(0x4a) + BigEndian(2000, 2) + BigEndian(2000, 2) + kEnd;
  std::string out;
  Status s = ApplyDelta(*basis, 5000, delta, testing::AppendTo(&out));
  ASSERT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("basis ended at byte 3000"), std::string::npos) << s.ToString();
}

TEST_F(ApplyDeltaBoundsTest, SinkErrorStopsTheJobAndIsReturned) {
  const std::string delta = kMagic + Op(0x4a) + BigEndian(0, 2) + BigEndian(5000, 2) + kEnd;
  auto basis = files_.OpenRandom(basis_path_, basis_.size());
  int calls = 0;
  Status s = delta_internal::ApplyDelta(
      *basis, basis_.size(), delta,
      [&calls](const char*, size_t) {
        ++calls;
        return Status::NoSpace("write /x", "No space left on device");
      },
      delta_internal::JobBuffers{1024, 1024});
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace sync_agent
