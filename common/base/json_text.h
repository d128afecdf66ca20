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

}  // namespace sync_agent
