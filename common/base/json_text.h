// Small helpers for writing JSON text by hand where key order and layout
// matter (manifests are diffed and hashed; log lines are grepped).
#pragma once

#include <string>
#include <string_view>

namespace sync_agent {

// Appends s as a quoted JSON string. s must be UTF-8; control characters are escaped.
void AppendJsonString(std::string* out, std::string_view s);
std::string JsonQuote(std::string_view s);
// True if s is well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(std::string_view s);

}  // namespace sync_agent
