// Small parsing helpers shared by the HTTP client, the static server and the
// range formats.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sync_agent {

// Parses 1 to 19 ASCII digits (no sign, no spaces) into *out.
bool ParseDecimal(std::string_view s, uint64_t* out);

// s without leading and trailing spaces and tabs (HTTP's OWS).
std::string_view TrimWhitespace(std::string_view s);

// s with ASCII letters lowercased (header and parameter names, units).
std::string AsciiLower(std::string_view s);

}  // namespace sync_agent
