#include "common/base/time_util.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace sync_agent {

std::string FormatIsoTime(SystemTime t, bool millis) {
  int64_t ms = ToUnixMillis(t);
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::string out(buf, n);
  if (millis) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms % 1000));
    out += frac;
  }
  out.push_back('Z');
  return out;
}

bool ParseIsoTime(std::string_view text, SystemTime* out) {
  int y, mo, d, h, mi, s;
  std::string str(text);
  int consumed = 0;
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
      6) {
    return false;
  }
  int64_t frac_ms = 0;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < str.size() && str[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < str.size() && std::isdigit(static_cast<unsigned char>(str[pos]))) {
      if (digits < 3) frac_ms = frac_ms * 10 + (str[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return false;
    for (int i = digits; i < 3; ++i) frac_ms *= 10;
  }
  if (pos + 1 != str.size() || str[pos] != 'Z') return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  // SystemTime counts nanoseconds in 64 bits: it ends in April 2262 and a
  // later (or negative) year would overflow it.
  if (y < kMinIsoYear || y > kMaxIsoYear) return false;
  struct tm tm_utc = {};
  tm_utc.tm_year = y - 1900;
  tm_utc.tm_mon = mo - 1;
  tm_utc.tm_mday = d;
  tm_utc.tm_hour = h;
  tm_utc.tm_min = mi;
  tm_utc.tm_sec = s;
  time_t secs = timegm(&tm_utc);
  *out = FromUnixMillis(static_cast<int64_t>(secs) * 1000 + frac_ms);
  return true;
}

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

int64_t ToUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

SystemTime FromUnixMillis(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("bad duration \"" + std::string(text) + "\"",
                                   "use a number with a unit: ms, s, m, h or d (e.g. \"5m\")");
  };
  if (text.empty()) return bad();
  int64_t total_ms = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad();
    int64_t value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      value = value * 10 + (text[i] - '0');
      if (value > 1000000000) return bad();
      ++i;
    }
    std::string_view unit;
    size_t start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    unit = text.substr(start, i - start);
    int64_t mult;
    if (unit == "ms") {
      mult = 1;
    } else if (unit == "s" || (unit.empty() && !any && i == text.size())) {
      mult = 1000;
    } else if (unit == "m" || unit == "min") {
      mult = 60 * 1000;
    } else if (unit == "h") {
      mult = 3600 * 1000;
    } else if (unit == "d") {
      mult = 86400 * 1000;
    } else {
      return bad();
    }
    total_ms += value * mult;
    any = true;
  }
  return std::chrono::milliseconds(total_ms);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms % 1000 != 0 && ms < 60000) return out + std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  int64_t days = s / 86400, hours = (s / 3600) % 24, mins = (s / 60) % 60, secs = s % 60;
  if (days) out += std::to_string(days) + "d";
  if (hours) out += std::to_string(hours) + "h";
  if (mins) out += std::to_string(mins) + "m";
  if (secs) out += std::to_string(secs) + "s";
  return out;
}

std::string FormatAge(std::chrono::milliseconds age) {
  int64_t s = age.count() / 1000;
  if (s < 0) s = 0;
  if (s < 60) return std::to_string(s) + "s ago";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h" + std::to_string((s / 60) % 60) + "m ago";
  return std::to_string(s / 86400) + "d" + std::to_string((s / 3600) % 24) + "h ago";
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("bad size \"" + std::string(text) + "\"",
                                   "use a number with an optional unit: B, k/KB, KiB, MB, MiB, GB, "
                                   "GiB, TB, TiB");
  };
  size_t i = 0;
  uint64_t value = 0;
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return bad();
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (value > (1ULL << 50)) return bad();
    ++i;
  }
  while (i < text.size() && text[i] == ' ') ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit.push_back(static_cast<char>(std::tolower(text[i])));
  uint64_t mult;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb") {
    mult = 1000;
  } else if (unit == "kib") {
    mult = 1024;
  } else if (unit == "m" || unit == "mb") {
    mult = 1000 * 1000;
  } else if (unit == "mib") {
    mult = 1024 * 1024;
  } else if (unit == "g" || unit == "gb") {
    mult = 1000ULL * 1000 * 1000;
  } else if (unit == "gib") {
    mult = 1024ULL * 1024 * 1024;
  } else if (unit == "t" || unit == "tb") {
    mult = 1000ULL * 1000 * 1000 * 1000;
  } else if (unit == "tib") {
    mult = 1024ULL * 1024 * 1024 * 1024;
  } else {
    return bad();
  }
  return value * mult;
}

}  // namespace sync_agent
