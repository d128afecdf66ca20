// The wire formats of HTTP range requests (RFC 9110 §14): the Range header a
// client sends, the Content-Range header and Content-Type it gets back, and a
// streaming parser for multipart/byteranges bodies (RFC 9110 §14.6, with the
// multipart syntax of RFC 2046 §5.1.1).
//
// Everything here is pure parsing and formatting: no I/O, no policy. What an
// answer means for a download (does it cover what was asked?) is the caller's
// business (HttpSource::FetchRanges).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/status.h"

namespace sync_agent {

// The most ranges HttpSource puts in one request, and the most the built-in
// StaticFileServer honours in one request (beyond that it sends the whole
// file, which bounds the work one request can cause; see ParseRangeHeader).
// Apache's default MaxRanges is also 200.
constexpr size_t kMaxRangesPerRequest = 200;

// "bytes=0-99,200-299" for ranges given as [offset, end()). Each range must
// be non-empty; the order is kept.
std::string FormatRangeHeader(const std::vector<ByteRange>& ranges);

// What a server makes of a Range header (RFC 9110 §14.2) for a file of size
// bytes.
enum class RangeOutcome {
  // Send the whole file (200): the header is not a bytes range set, does
  // not parse (the RFC asks that it be ignored), or has more than
  // kMaxRangesPerRequest ranges (as nginx does past max_ranges).
  kIgnore,
  // Send *ranges (206): at least one range overlaps the file.
  kSatisfiable,
  // Send 416: no range overlaps the file ("bytes=-0", "bytes=<size>-").
  kUnsatisfiable,
};

// Parses a Range header value for a file of size bytes. On kSatisfiable,
// *ranges holds the ranges clipped to the file, sorted, with overlapping and
// adjacent ones merged (RFC 9110 §15.3.7.2 lets a server coalesce them), so
// their total never exceeds size and "bytes=0-,0-,..." costs one copy of
// the file, not one per range. The work is bounded by kMaxRangesPerRequest.
RangeOutcome ParseRangeHeader(std::string_view header, uint64_t size,
                              std::vector<ByteRange>* ranges);

// A Content-Range header value (RFC 9110 §14.4).
struct ContentRange {
  // The inclusive first and last byte; unset for "bytes */<total>" (416).
  std::optional<uint64_t> first;
  std::optional<uint64_t> last;
  std::optional<uint64_t> total;  // unset for "bytes <first>-<last>/*"

  // The range as [offset, end()); only when first and last are set.
  ByteRange AsByteRange() const { return {*first, *last - *first + 1}; }
  // "bytes 0-99/1000", as it would appear on the wire.
  std::string ToString() const;
};

// Parses "bytes 0-99/1000", "bytes 0-99/*" or "bytes */1000" (the unit in any
// case, optional whitespace around the parts). Returns nullopt when the value
// is malformed, including last < first, a total not above last (RFC 9110
// 14.4: "bytes 0-99/50" is invalid) and "bytes */*".
std::optional<ContentRange> ParseContentRange(std::string_view value);

// A Content-Type value (RFC 9110 §8.3.1): "type/subtype; name=value; ...".
struct MediaType {
  std::string type;  // "type/subtype", lowercased
  // Names lowercased; values unquoted (quoted-pair escapes resolved), in order.
  std::vector<std::pair<std::string, std::string>> parameters;

  // The first parameter with this (lowercase) name, or nullptr.
  const std::string* Parameter(std::string_view name) const;
};

// Parses a Content-Type value. Lenient where servers are sloppy: whitespace
// around ';' and '=', an unquoted value running up to the next ';', empty
// parameters. Returns nullopt when there is no "type/subtype" or a quoted
// value is not closed.
std::optional<MediaType> ParseMediaType(std::string_view value);

// Reads a multipart/byteranges body as it streams in, in pieces of any size
// (one byte at a time works), and hands each part's data on with the file
// offset it belongs at. Memory use is bounded by the header limits below,
// whatever the size of the body or of its parts.
//
// Accepted: an optional preamble (bounded) before the first delimiter line
// "--<boundary>"; whitespace after a delimiter; part headers in any case with
// optional whitespace, folded continuation lines, and bare LF line ends; an
// epilogue after the closing "--<boundary>--", which is ignored. Each part's
// data length is taken from its Content-Range and must be followed by
// CRLF (or a bare LF) and "--<boundary>"; data may contain the boundary.
//
// Errors (each message starts with the context given to the constructor):
// kUnsupported when the body is not such a multipart body (no delimiter, a
// part without a readable Content-Range, data that does not end where its
// Content-Range says); kNetwork from Finish() when the body ended before the
// closing delimiter (truncation); a callback's status as is. After an error,
// the parser must not be fed again.
//
// Not thread safe.
class ByteRangesParser {
 public:
  // Called once per part, after its headers and before its data. A non-OK
  // status stops the parse and is returned by Feed.
  using PartStart = std::function<Status(const ContentRange& range)>;
  // n bytes of the file starting at offset, in order within a part.
  using PartData = std::function<Status(uint64_t offset, const char* data, size_t n)>;

  // Longest preamble accepted before the first delimiter.
  static constexpr size_t kMaxPreambleBytes = 64 << 10;
  // Longest header line, and most header bytes in one part.
  static constexpr size_t kMaxHeaderLineBytes = 8 << 10;
  static constexpr size_t kMaxHeaderBytes = 64 << 10;

  // context names the body in messages, e.g. "GET http://host/file".
  // boundary is the Content-Type's boundary parameter, unquoted (1 to 70
  // characters per RFC 2046; longer ones are accepted).
  ByteRangesParser(std::string context, std::string_view boundary, PartStart on_part,
                   PartData on_data);
  ByteRangesParser(const ByteRangesParser&) = delete;
  ByteRangesParser& operator=(const ByteRangesParser&) = delete;

  // Consumes data[0, n).
  Status Feed(const char* data, size_t n);
  // The body has ended: OK only if the closing delimiter was seen.
  Status Finish() const;

  // Parts whose headers have been read so far.
  size_t parts() const { return parts_; }

 private:
  enum class State {
    kPreamble,       // before the first delimiter
    kAfterBoundary,  // "--<boundary>" just matched
    kCloseDash,      // one '-' after the boundary; a second closes the body
    kBoundaryLF,     // CR after a delimiter line
    kHeaders,        // part headers, line by line
    kData,           // the part's data
    kDataEndCR,      // after the data: CR LF "--<boundary>"
    kDataEndLF,
    kDelimiter,  // matching "--<boundary>" after a part's data
    kEpilogue,   // after the closing delimiter
  };

  Status Malformed(std::string_view why) const;
  // The current part, for messages: "part 3 (bytes 0-99/1000)".
  std::string PartName() const;
  void StartPart();
  Status EndHeaderLine();
  Status EndHeaders();

  std::string context_;
  std::string dash_boundary_;  // "--" + boundary
  PartStart on_part_;
  PartData on_data_;

  State state_ = State::kPreamble;
  bool in_preamble_ = true;  // no delimiter seen yet
  bool line_start_ = true;   // in the preamble: at the start of a line
  size_t matched_ = 0;       // bytes of dash_boundary_ matched so far
  uint64_t preamble_bytes_ = 0;
  std::string line_;           // the header line being read
  size_t header_bytes_ = 0;    // header bytes of the current part
  std::string content_range_;  // the current part's Content-Range value
  bool has_content_range_ = false;
  bool last_was_content_range_ = false;  // a folded line continues Content-Range
  ContentRange range_;                   // the current part's
  uint64_t offset_ = 0;                  // file offset of the next data byte
  uint64_t remaining_ = 0;               // data bytes left in the current part
  size_t parts_ = 0;
};

}  // namespace sync_agent
