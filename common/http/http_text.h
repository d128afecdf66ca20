// Small parsing helpers shared by the HTTP client, the static server and the
// range formats.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sync_agent {

// Parses 1 to 19 ASCII digits (no sign, no spaces) into *out.
bool ParseDecimal(std::string_view s, uint64_t* out);

// s without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view TrimWhitespace(std::string_view s);

// s with ASCII letters lowercased (header and parameter names, units).
std::string AsciiLower(std::string_view s);

// The value of a hex digit (either case), or -1.
int HexDigitValue(char c);

// Percent-encodes every byte but the unreserved ones (RFC 3986: letters,
// digits, "-._~"), and "/" too when keep_slash: for a path whose segments
// are encoded one by one.
std::string PercentEncode(std::string_view s, bool keep_slash = false);
// Decodes %XX escapes; false for a malformed escape or a NUL byte.
bool PercentDecode(std::string_view s, std::string* out);

// The target of the link with rel="next" in a Link header value
// (RFC 8288: `<url>; rel="next", <url2>; rel="prev"`), or "".
std::string LinkWithRel(std::string_view header, std::string_view rel);

// How long a Retry-After value asks to wait: delay-seconds, or an HTTP date
// (relative to now_unix_seconds). nullopt when it is neither.
std::optional<uint64_t> ParseRetryAfterSeconds(std::string_view value, int64_t now_unix_seconds);

}  // namespace sync_agent
