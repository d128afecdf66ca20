// The range wire formats: Range header formatting, Content-Range and
// Content-Type parsing, and the streaming multipart/byteranges parser fed in
// every piece size and split at every position.
#include "common/http/byteranges.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/scripted_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// One part of a multipart body: its Content-Range and data.
struct Part {
  std::string content_range;
  std::string data;
  bool operator==(const Part& o) const {
    return content_range == o.content_range && data == o.data;
  }
};

// What a parser handed out: the parts in order, data joined per part, and
// whether each data call continued where the last one ended.
struct Collected {
  std::vector<Part> parts;
  bool offsets_consistent = true;
  uint64_t next_offset = 0;
};

// A parser that records into *out.
std::unique_ptr<ByteRangesParser> Collector(const std::string& boundary, Collected* out) {
  return std::make_unique<ByteRangesParser>(
      "GET http://h/f", boundary,
      [out](const ContentRange& r) {
        out->parts.push_back({r.ToString(), ""});
        out->next_offset = *r.first;
        return Status::OK();
      },
      [out](uint64_t offset, const char* data, size_t n) {
        if (out->parts.empty() || offset != out->next_offset || n == 0) {
          out->offsets_consistent = false;
        }
        out->next_offset = offset + n;
        if (!out->parts.empty()) out->parts.back().data.append(data, n);
        return Status::OK();
      });
}

// Feeds body in pieces of `piece` bytes, then finishes.
Status FeedInPieces(ByteRangesParser* parser, const std::string& body, size_t piece) {
  for (size_t i = 0; i < body.size(); i += piece) {
    SA_RETURN_IF_ERROR(parser->Feed(body.data() + i, std::min(piece, body.size() - i)));
  }
  return parser->Finish();
}

// A body as nginx and the StaticFileServer write it, and the parts it holds.
std::string NginxStyleBody(const std::string& boundary, const std::string& content,
                           const std::vector<ByteRange>& ranges, std::vector<Part>* expected) {
  for (const ByteRange& r : ranges) {
    expected->push_back({ContentRange{r.offset, r.end() - 1, content.size()}.ToString(),
                         content.substr(r.offset, r.length)});
  }
  return testing::MultipartBody(boundary, content, ranges);
}

TEST(RangeHeaderTest, FormatsInclusiveSpecsInOrder) {
  EXPECT_EQ(FormatRangeHeader({{0, 10}}), "bytes=0-9");
  EXPECT_EQ(FormatRangeHeader({{0, 1}, {10, 5}, {99, 1}}), "bytes=0-0,10-14,99-99");
  EXPECT_EQ(FormatRangeHeader({{20, 5}, {0, 5}}), "bytes=20-24,0-4");
}

// ParseRangeHeader's answer as text: "ignore", "416" or the ranges, "0-9,20-29".
std::string ServerRanges(std::string_view header, uint64_t size) {
  std::vector<ByteRange> ranges;
  switch (ParseRangeHeader(header, size, &ranges)) {
    case RangeOutcome::kIgnore:
      return "ignore";
    case RangeOutcome::kUnsatisfiable:
      return "416";
    case RangeOutcome::kSatisfiable:
      break;
  }
  std::string out;
  for (const ByteRange& r : ranges) {
    if (!out.empty()) out += ",";
    out += std::to_string(r.offset) + "-" + std::to_string(r.end() - 1);
  }
  return out;
}

TEST(ServerRangeHeaderTest, ParsesSingleSuffixAndOpenRanges) {
  EXPECT_EQ(ServerRanges("bytes=0-9", 100), "0-9");
  EXPECT_EQ(ServerRanges("bytes=90-", 100), "90-99");
  EXPECT_EQ(ServerRanges("bytes=-5", 100), "95-99");
  EXPECT_EQ(ServerRanges("bytes=-500", 100), "0-99");
  EXPECT_EQ(ServerRanges("bytes=50-5000", 100), "50-99");
  EXPECT_EQ(ServerRanges(" BYTES = 1-2 ", 100), "1-2");
}

TEST(ServerRangeHeaderTest, MergesOverlappingAndAdjacentRanges) {
  EXPECT_EQ(ServerRanges("bytes=0-,0-,0-", 100), "0-99");
  EXPECT_EQ(ServerRanges("bytes=0-9,10-19", 100), "0-19");
  EXPECT_EQ(ServerRanges("bytes=50-59,0-9,5-14", 100), "0-14,50-59");
  EXPECT_EQ(ServerRanges("bytes=-10,80-95", 100), "80-99");
  EXPECT_EQ(ServerRanges("bytes=0-0,2-2", 100), "0-0,2-2");
  EXPECT_EQ(ServerRanges("bytes=20-29,0-9", 100), "0-9,20-29");
  // Finding 5: 200 copies of the whole file are one copy.
  std::string spec = "bytes=0-";
  for (int i = 1; i < 200; ++i) spec += ",0-";
  EXPECT_EQ(ServerRanges(spec, 1 << 20), "0-1048575");
}

TEST(ServerRangeHeaderTest, UnsatisfiableOnlyWhenNothingOverlapsTheFile) {
  EXPECT_EQ(ServerRanges("bytes=-0", 100), "416");
  EXPECT_EQ(ServerRanges("bytes=-0,-0", 100), "416");
  EXPECT_EQ(ServerRanges("bytes=100-", 100), "416");
  EXPECT_EQ(ServerRanges("bytes=0-", 0), "416");
  EXPECT_EQ(ServerRanges("bytes=-5", 0), "416");
  EXPECT_EQ(ServerRanges("bytes=100-,5-6,-0", 100), "5-6");
}

TEST(ServerRangeHeaderTest, MalformedOrTooManyRangesAreIgnored) {
  for (const char* header :
       {"bytes=abc", "bytes=5-2", "items=0-1", "bytes=", "bytes=1-2-3", "bytes=,,,", "0-10",
        "bytes=0-1,abc", "bytes=0--1", "bytes=99999999999999999999999-", "bytes=1-0,0-1"}) {
    EXPECT_EQ(ServerRanges(header, 100), "ignore") << header;
  }
  std::string at_limit = "bytes=0-0";
  for (size_t i = 1; i < kMaxRangesPerRequest; ++i) {
    at_limit += "," + std::to_string(2 * i) + "-" + std::to_string(2 * i);
  }
  EXPECT_NE(ServerRanges(at_limit, 1000), "ignore");
  EXPECT_EQ(ServerRanges(at_limit + ",999-999", 1000), "ignore");
}

// The parsed value written back, or "invalid".
std::string Reparsed(std::string_view value) {
  std::optional<ContentRange> r = ParseContentRange(value);
  return r ? r->ToString() : "invalid";
}

TEST(ContentRangeTest, ParsesTheThreeForms) {
  EXPECT_EQ(Reparsed("bytes 0-99/1000"), "bytes 0-99/1000");
  EXPECT_EQ(Reparsed("bytes 5-5/*"), "bytes 5-5/*");
  EXPECT_EQ(Reparsed("bytes */77"), "bytes */77");
  EXPECT_EQ(ParseContentRange("bytes 0-99/1000")->AsByteRange().offset, 0u);
  EXPECT_EQ(ParseContentRange("bytes 0-99/1000")->AsByteRange().length, 100u);
  EXPECT_FALSE(ParseContentRange("bytes 5-5/*")->total.has_value());
  EXPECT_FALSE(ParseContentRange("bytes */77")->first.has_value());
  EXPECT_FALSE(ParseContentRange("bytes */77")->last.has_value());
}

TEST(ContentRangeTest, ToleratesCaseAndWhitespace) {
  EXPECT_EQ(Reparsed("  BYTES\t10 - 19 / 20 "), "bytes 10-19/20");
  EXPECT_EQ(Reparsed("Bytes 0-0/1"), "bytes 0-0/1");
}

TEST(ContentRangeTest, RejectsMalformedValues) {
  for (const char* bad :
       {"", "bytes", "bytes ", "bytes 0-9", "items 0-9/10", "bytes=0-9/10", "bytes 9-0/10",
        "bytes */*", "bytes 0-/10", "bytes -9/10", "bytes a-b/10", "bytes 0-9/x",
        "bytes 0-99999999999999999999/1", "bytes 0-9/10/11", "bytes -1-9/10"}) {
    EXPECT_EQ(Reparsed(bad), "invalid") << bad;
  }
}

// Found by tests/fuzz/byteranges: a complete length that does not exceed the
// last byte position (RFC 9110 14.4 calls that invalid) was accepted, so a
// part or a 206 could claim bytes past the end of the file it described.
TEST(ContentRangeTest, RejectsATotalNotBeyondTheLastByte) {
  for (const char* bad : {"bytes 10-24/20", "bytes 0-99/50", "bytes 5-5/5", "bytes 0-0/0"}) {
    EXPECT_EQ(Reparsed(bad), "invalid") << bad;
  }
  EXPECT_EQ(Reparsed("bytes 19-19/20"), "bytes 19-19/20");
  EXPECT_EQ(Reparsed("bytes 0-0/1"), "bytes 0-0/1");
}

TEST(MediaTypeTest, ParsesTypeAndParameters) {
  auto t = ParseMediaType("multipart/byteranges; boundary=00000000000000000001");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->type, "multipart/byteranges");
  ASSERT_NE(t->Parameter("boundary"), nullptr);
  EXPECT_EQ(*t->Parameter("boundary"), "00000000000000000001");
  EXPECT_EQ(t->Parameter("charset"), nullptr);

  t = ParseMediaType(" Multipart/ByteRanges ;charset=utf-8;  BOUNDARY = \"a b;c\\\"d\" ; x");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->type, "multipart/byteranges");
  ASSERT_NE(t->Parameter("boundary"), nullptr);
  EXPECT_EQ(*t->Parameter("boundary"), "a b;c\"d");
  EXPECT_EQ(*t->Parameter("charset"), "utf-8");

  // Unquoted values run to the next ';', even with characters a token lacks.
  t = ParseMediaType("multipart/byteranges; boundary=a:b?c=d/e");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t->Parameter("boundary"), "a:b?c=d/e");

  t = ParseMediaType("application/octet-stream");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->type, "application/octet-stream");
  EXPECT_TRUE(t->parameters.empty());
}

TEST(MediaTypeTest, RejectsWhatIsNoMediaType) {
  EXPECT_FALSE(ParseMediaType("").has_value());
  EXPECT_FALSE(ParseMediaType("multipart").has_value());
  EXPECT_FALSE(ParseMediaType("/x").has_value());
  EXPECT_FALSE(ParseMediaType("x/").has_value());
  EXPECT_FALSE(ParseMediaType("multipart/byteranges; boundary=\"open").has_value());
}

class ByteRangesParserTest : public ::testing::Test {
 protected:
  const std::string content_ = testing::RandomBytes(300, 5);
  // Adjacent ranges, a one-byte range, the last byte, and a part whose data
  // contains the delimiter text (parts are framed by their Content-Range).
  const std::vector<ByteRange> ranges_ = {{0, 7}, {7, 13}, {40, 1}, {100, 60}, {299, 1}};
};

TEST_F(ByteRangesParserTest, EveryPieceSizeGivesTheSameParts) {
  std::vector<Part> expected;
  std::string content = content_;
  content.replace(110, 14, "\r\n--BOUNDARY\r\n");
  std::string body = NginxStyleBody("BOUNDARY", content, ranges_, &expected);
  for (size_t piece = 1; piece <= body.size(); ++piece) {
    Collected got;
    auto parser = Collector("BOUNDARY", &got);
    Status st = FeedInPieces(parser.get(), body, piece);
    ASSERT_TRUE(st.ok()) << "piece " << piece << ": " << st.ToString();
    EXPECT_EQ(got.parts, expected) << "piece " << piece;
    EXPECT_TRUE(got.offsets_consistent) << "piece " << piece;
    EXPECT_EQ(parser->parts(), ranges_.size());
  }
}

TEST_F(ByteRangesParserTest, SplitAtEveryPositionGivesTheSameParts) {
  std::vector<Part> expected;
  std::string body = NginxStyleBody("3d6b6a416f9b5", content_, ranges_, &expected);
  for (size_t split = 0; split <= body.size(); ++split) {
    Collected got;
    auto parser = Collector("3d6b6a416f9b5", &got);
    ASSERT_TRUE(parser->Feed(body.data(), split).ok()) << split;
    ASSERT_TRUE(parser->Feed(body.data() + split, body.size() - split).ok()) << split;
    ASSERT_TRUE(parser->Finish().ok()) << split;
    EXPECT_EQ(got.parts, expected) << "split at " << split;
  }
}

TEST_F(ByteRangesParserTest, PreambleEpilogueAndSloppyHeadersAreTolerated) {
  // RFC 2046 style: a preamble (with a line that only starts like the
  // delimiter), no CRLF before the first delimiter line, padding after
  // delimiters, header names in any case, no space after ':', a folded
  // Content-Range, bare LF line ends, other headers, and an epilogue.
  const std::string b = "simple boundary";
  std::string body = "This is the preamble.  It is to be ignored.\r\n--" + b + "-not-yet\r\n--" +
                     b + " \t\r\n" +
                     "content-type: application/octet-stream\r\n"
                     "CONTENT-RANGE:bytes 0-4/300\r\n"
                     "\r\n" +
                     content_.substr(0, 5) + "\r\n--" + b + "\n" +
                     "X-Other: 1\n"
                     "Content-Range: bytes\n"
                     "\t 250-259/300\n"
                     "\n" +
                     content_.substr(250, 10) + "\n--" + b + "--  \r\nThis is the epilogue.\r\n--" +
                     b + "\r\ngarbage";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, body.size()}) {
    Collected got;
    auto parser = Collector(b, &got);
    Status st = FeedInPieces(parser.get(), body, piece);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(got.parts.size(), 2u);
    EXPECT_EQ(got.parts[0], (Part{"bytes 0-4/300", content_.substr(0, 5)}));
    EXPECT_EQ(got.parts[1], (Part{"bytes 250-259/300", content_.substr(250, 10)}));
  }
}

TEST_F(ByteRangesParserTest, QuotedBoundaryFromTheContentType) {
  auto type = ParseMediaType("multipart/byteranges; boundary=\"gc0p4Jq0M:2Yt08j=34c0p? ()+_,-./\"");
  ASSERT_TRUE(type.has_value());
  const std::string boundary = *type->Parameter("boundary");
  EXPECT_EQ(boundary, "gc0p4Jq0M:2Yt08j=34c0p? ()+_,-./");
  std::vector<Part> expected;
  std::string body = NginxStyleBody(boundary, content_, ranges_, &expected);
  Collected got;
  auto parser = Collector(boundary, &got);
  ASSERT_TRUE(FeedInPieces(parser.get(), body, 5).ok());
  EXPECT_EQ(got.parts, expected);
}

TEST_F(ByteRangesParserTest, EveryTruncationIsAnError) {
  std::vector<Part> expected;
  const std::string body = NginxStyleBody("B", content_, ranges_, &expected);
  // The body is complete once the closing delimiter's "--" has arrived.
  const size_t complete = body.rfind("--B--") + 5;
  for (size_t cut = 0; cut < body.size(); ++cut) {
    Collected got;
    auto parser = Collector("B", &got);
    ASSERT_TRUE(parser->Feed(body.data(), cut).ok()) << cut;
    Status st = parser->Finish();
    if (cut >= complete) {
      EXPECT_TRUE(st.ok()) << cut << ": " << st.ToString();
      continue;
    }
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    if (parser->parts() == 0) {
      EXPECT_EQ(st.code(), Status::Code::kUnsupported) << cut;
      EXPECT_THAT(st.message(), HasSubstr("no delimiter line '--B'"));
    } else {
      EXPECT_EQ(st.code(), Status::Code::kNetwork) << cut;
      EXPECT_THAT(st.message(), StartsWith("GET http://h/f: multipart/byteranges body cut off"));
    }
  }
}

TEST_F(ByteRangesParserTest, TruncationMessagesSayWhere) {
  std::vector<Part> expected;
  const std::string body = NginxStyleBody("B", content_, {{100, 60}}, &expected);
  Collected got;
  auto parser = Collector("B", &got);
  const size_t data_start = body.find("\r\n\r\n") + 4;
  ASSERT_TRUE(parser->Feed(body.data(), data_start + 10).ok());
  EXPECT_EQ(parser->Finish().message(),
            "GET http://h/f: multipart/byteranges body cut off in the middle of part 1 "
            "(bytes 100-159/300), 50 of its bytes missing");
  EXPECT_EQ(got.parts[0].data, content_.substr(100, 10));  // what came was passed on

  Collected got2;
  auto parser2 = Collector("B", &got2);
  ASSERT_TRUE(parser2->Feed(body.data(), body.size() - 4).ok());  // no "--\r\n"
  EXPECT_EQ(parser2->Finish().message(),
            "GET http://h/f: multipart/byteranges body cut off after part 1 (bytes 100-159/300) "
            "without the closing delimiter '--B--'");
}

// Feeds body whole and returns the status of the first failure.
Status ParseWhole(const std::string& boundary, const std::string& body, Collected* got) {
  auto parser = Collector(boundary, got);
  SA_RETURN_IF_ERROR(parser->Feed(body.data(), body.size()));
  return parser->Finish();
}

TEST_F(ByteRangesParserTest, GarbageIsUnsupportedWithAReason) {
  struct Case {
    std::string body;
    std::string why;
  };
  const std::string d = "\r\n--B\r\n";
  const std::vector<Case> cases = {
      {"<html>502 Bad Gateway</html>", "no delimiter line '--B'"},
      {std::string(ByteRangesParser::kMaxPreambleBytes + 1, 'x'),
       "no delimiter line '--B' in its "
       "first 65536 bytes"},
      {"--B--\r\n", "the closing delimiter comes before any part"},
      {d + "Content-Type: text/plain\r\n\r\nhello\r\n--B--", "part 1 has no Content-Range header"},
      {d + "Content-Range: bytes 0-4\r\n\r\nhello\r\n--B--",
       "part 1 has an unusable Content-Range 'bytes 0-4'"},
      {d + "Content-Range: bytes */300\r\n\r\nhello\r\n--B--",
       "part 1 has an unusable Content-Range 'bytes */300'"},
      {d + "Content-Range: bytes 0-4/300\r\nContent-Range: bytes 0-4/300\r\n\r\nhello",
       "part 1 has two Content-Range headers"},
      {d + "Content-Range bytes 0-4/300\r\n\r\nhello", "part 1 has a header line without a name"},
      {d + "Content-Range: bytes 0-3/300\r\n\r\nhello\r\n--B--",
       "part 1 (bytes 0-3/300) does not end where its Content-Range says"},
      {d + "Content-Range: bytes 0-4/300\r\n\r\nhello\r\n--C--",
       "part 1 (bytes 0-4/300) is not followed by the delimiter '--B'"},
      {d + "Content-Range: bytes 0-4/300\r\n\r\nhello\r\n--Bx\r\n",
       "garbage after the delimiter after part 1 (bytes 0-4/300)"},
      {"--B\rX", "CR without LF after a delimiter"},
      {d + std::string(ByteRangesParser::kMaxHeaderLineBytes + 1, 'h'),
       "part 1 has a header line longer than 8192 bytes"},
  };
  for (const Case& c : cases) {
    Collected got;
    Status st = ParseWhole("B", c.body, &got);
    ASSERT_FALSE(st.ok()) << c.why;
    EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
    EXPECT_THAT(st.message(), StartsWith("GET http://h/f: "));
    EXPECT_THAT(st.message(), HasSubstr(c.why));
  }
  // Many short header lines: the per-part total is bounded too.
  std::string many = d;
  while (many.size() <= ByteRangesParser::kMaxHeaderBytes) many += "X-Filler: 0123456789\r\n";
  Collected got;
  EXPECT_THAT(ParseWhole("B", many, &got).message(), HasSubstr("more than 65536 bytes of headers"));
}

TEST_F(ByteRangesParserTest, RandomGarbageNeverDeliversData) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::string body = testing::RandomBytes(1000 + seed * 13, seed);
    Collected got;
    Status st = ParseWhole("B", body, &got);
    EXPECT_FALSE(st.ok()) << seed;
    for (const Part& p : got.parts) EXPECT_TRUE(p.data.empty()) << seed;
  }
}

TEST_F(ByteRangesParserTest, CallbackErrorsStopTheParseAndAreReturnedAsIs) {
  std::vector<Part> expected;
  const std::string body = NginxStyleBody("B", content_, ranges_, &expected);
  int parts = 0;
  ByteRangesParser reject_third(
      "ctx", "B",
      [&](const ContentRange&) {
        return ++parts == 3 ? Status::Corruption("part three", "no") : Status::OK();
      },
      [](uint64_t, const char*, size_t) { return Status::OK(); });
  Status st = reject_third.Feed(body.data(), body.size());
  EXPECT_EQ(st.ToString(), Status::Corruption("part three", "no").ToString());
  EXPECT_EQ(parts, 3);

  uint64_t data_bytes = 0;
  ByteRangesParser full_disk(
      "ctx", "B", [](const ContentRange&) { return Status::OK(); },
      [&](uint64_t, const char*, size_t n) {
        data_bytes += n;
        return Status::NoSpace("write", "disk full");
      });
  st = full_disk.Feed(body.data(), body.size());
  EXPECT_EQ(st.code(), Status::Code::kNoSpace);
  EXPECT_EQ(st.message(), "write: disk full");
  EXPECT_EQ(data_bytes, 7u);  // the first part, then nothing more
}

}  // namespace
}  // namespace sync_agent
