// Small helpers for writing JSON text by hand where key order and layout
// matter (manifests are diffed and hashed; log lines are grepped).
#pragma once

#include <string>
#include <string_view>

namespace sync_agent {

// Appends s as a quoted JSON string. s must be UTF-8; control characters are escaped.
void AppendJsonString(std::string* out, std::string_view s);
std::string JsonQuote(std::string_view s);
// The offset of the first byte that is not well-formed UTF-8 (overlongs and
// surrogates count as bad), or std::string_view::npos if all of s is.
size_t Utf8ErrorOffset(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return Utf8ErrorOffset(s) == std::string_view::npos; }

// A whole-number literal in JSON text that no uint64_t holds, which Poco's
// parser would wrap silently (2^64 + 1 becomes 1).
struct JsonNumberOverflow {
  size_t offset = 0;    // byte offset of the literal
  std::string key;      // the object key it is the value of, or "" in an array
  std::string literal;  // its first 40 bytes, and "..." when it is longer
};
// Finds the first such literal outside strings, or nothing. Linear in json,
// no allocation unless one is found; malformed text is left to the parser.
bool FindJsonNumberOverflow(std::string_view json, JsonNumberOverflow* found);
// How many elements the array under the top-level object's `key` holds,
// counting no further than stop_after (so a hostile document costs no more
// than one pass and no allocation). Malformed text gives a count the parser
// will refuse anyway.
size_t CountTopLevelArrayElements(std::string_view json, std::string_view key, size_t stop_after);
// `"size" is 18446744073709551616, beyond the largest whole number (2^64 - 1), at byte 120`
std::string DescribeJsonNumberOverflow(const JsonNumberOverflow& big);

}  // namespace sync_agent
