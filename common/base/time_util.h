// Time formatting and parsing shared by the manifest, the database and status.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace sync_agent {

using SystemTime = std::chrono::system_clock::time_point;

// "2026-11-25T03:04:05Z" (UTC); with millis, "2026-11-25T03:04:05.123Z".
std::string FormatIsoTime(SystemTime t, bool millis = false);

// Parses the format above (with or without fraction). Returns false if
// malformed, and for a year outside [kMinIsoYear, kMaxIsoYear] (what
// SystemTime holds, from the Unix epoch on).
inline constexpr int kMinIsoYear = 1970;
inline constexpr int kMaxIsoYear = 2261;
bool ParseIsoTime(std::string_view text, SystemTime* out);

// Unix time in milliseconds, the unit the database stores.
int64_t ToUnixMillis(SystemTime t);
// The wall clock now, in Unix milliseconds (what the database records).
int64_t NowMs();
SystemTime FromUnixMillis(int64_t ms);

// Parses "90s", "5m", "2h", "1d", "1500ms" or a bare number of seconds.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "5m", "1h30m", "12s", "250ms": the shortest exact rendering.
std::string FormatDuration(std::chrono::milliseconds d);
// "3 min ago"-style age for status output.
std::string FormatAge(std::chrono::milliseconds age);
// 1536 -> "1.5 KiB".
std::string FormatBytes(uint64_t bytes);
// Parses "50MB/s"-free sizes: "4GiB", "512MB", "100k", "123". Binary and decimal units.
Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace sync_agent
