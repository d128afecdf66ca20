// multipart/byteranges bodies and the range headers (common/http/byteranges).
// The input's first line is the boundary, the rest the body.
//
// Invariants: the parser's events and result do not depend on how the body
// is split into pieces; each part's data arrives in order, starts at its
// Content-Range's first byte and never goes past its last; a part that is
// followed by another (or by the closing delimiter) got all its bytes.
// Content-Range values survive ToString -> ParseContentRange.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/http/byteranges.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

// Exact arithmetic: a range's length or end may not fit 64 bits.
using Wide = unsigned __int128;

struct Part {
  ContentRange range;
  Wide next = 0;  // file offset of the next data byte
  std::string data;
  Wide end() const { return Wide{*range.last} + 1; }
};

struct Run {
  std::vector<Part> parts;
  Status status;
};

Run Parse(std::string_view boundary, std::string_view body, const std::vector<size_t>& pieces) {
  Run run;
  ByteRangesParser parser(
      "fuzz", boundary,
      [&run](const ContentRange& range) {
        SA_FUZZ_CHECK(range.first && range.last && *range.first <= *range.last);
        // The previous part got all its bytes before the next one starts.
        if (!run.parts.empty()) SA_FUZZ_CHECK(run.parts.back().next == run.parts.back().end());
        run.parts.push_back({range, *range.first, ""});
        return Status::OK();
      },
      [&run](uint64_t offset, const char* data, size_t n) {
        SA_FUZZ_CHECK(!run.parts.empty());
        Part& part = run.parts.back();
        SA_FUZZ_CHECK(offset == part.next);
        SA_FUZZ_CHECK(offset + Wide{n} <= part.end());
        part.next += n;
        part.data.append(data, n);
        return Status::OK();
      });
  size_t at = 0;
  for (size_t n : pieces) {
    run.status = parser.Feed(body.data() + at, n);
    at += n;
    if (!run.status.ok()) return run;
  }
  run.status = parser.Finish();
  if (run.status.ok()) {
    SA_FUZZ_CHECK(!run.parts.empty());
    SA_FUZZ_CHECK(run.parts.back().next == run.parts.back().end());
    SA_FUZZ_CHECK(parser.parts() == run.parts.size());
  }
  return run;
}

void CheckContentRange(std::string_view value) {
  std::optional<ContentRange> range = ParseContentRange(value);
  if (!range) return;
  SA_FUZZ_CHECK(range->first.has_value() == range->last.has_value());
  SA_FUZZ_CHECK(range->first || range->total);
  if (range->first) SA_FUZZ_CHECK(*range->first <= *range->last);
  // RFC 9110 14.4: the complete length is more than the last byte position.
  if (range->first && range->total) SA_FUZZ_CHECK(*range->last < *range->total);
  std::optional<ContentRange> again = ParseContentRange(range->ToString());
  SA_FUZZ_CHECK(again && again->ToString() == range->ToString());
}

void Check(std::string_view input) {
  size_t eol = input.find('\n');
  if (eol == std::string_view::npos || eol > 100) return;
  std::string_view boundary = input.substr(0, eol);
  std::string_view body = input.substr(eol + 1);
  CheckContentRange(boundary);
  if (std::optional<MediaType> type = ParseMediaType(boundary)) {
    SA_FUZZ_CHECK(type->type.find('/') != std::string::npos);
  }

  Run whole = Parse(boundary, body, {body.size()});
  Run pieces = Parse(boundary, body, fuzz::PieceLengths(body));
  SA_FUZZ_CHECK(whole.status.code() == pieces.status.code());
  SA_FUZZ_CHECK(whole.status.message() == pieces.status.message());
  SA_FUZZ_CHECK(whole.parts.size() == pieces.parts.size());
  for (size_t i = 0; i < whole.parts.size(); ++i) {
    SA_FUZZ_CHECK(whole.parts[i].range.ToString() == pieces.parts[i].range.ToString());
    SA_FUZZ_CHECK(whole.parts[i].data == pieces.parts[i].data);
    CheckContentRange(whole.parts[i].range.ToString());
  }
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
