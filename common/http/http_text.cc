#include "common/http/http_text.h"

#include <ctime>

namespace sync_agent {

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;  // 19 digits always fit in 64 bits
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string_view TrimWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                      u == '-' || u == '.' || u == '_' || u == '~' || (keep_slash && u == '/');
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[u >> 4]);
      out.push_back(kDigits[u & 15]);
    }
  }
  return out;
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view s, std::string* out) {
  std::string decoded;
  decoded.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < s.size() ? HexDigitValue(s[i + 1]) : -1;
      int lo = hi >= 0 ? HexDigitValue(s[i + 2]) : -1;
      if (lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    decoded.push_back(c);
  }
  *out = std::move(decoded);
  return true;
}

std::string LinkWithRel(std::string_view header, std::string_view rel) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t open = header.find('<', pos);
    if (open == std::string_view::npos) return "";
    size_t close = header.find('>', open);
    if (close == std::string_view::npos) return "";
    std::string_view target = header.substr(open + 1, close - open - 1);
    size_t next = header.find('<', close);
    std::string_view params = header.substr(
        close + 1, next == std::string_view::npos ? std::string_view::npos : next - close - 1);
    // Parameters: ; rel="next" (quoted or not, any case, possibly several rels).
    size_t p = 0;
    while ((p = params.find(';', p)) != std::string_view::npos) {
      ++p;
      std::string_view param = TrimWhitespace(params.substr(p, params.find(';', p) - p));
      if (param.size() > 0 && param.back() == ',') param.remove_suffix(1);
      size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (AsciiLower(TrimWhitespace(param.substr(0, eq))) != "rel") continue;
      std::string_view value = TrimWhitespace(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      std::string lowered = AsciiLower(value);
      size_t start = 0;
      while (start <= lowered.size()) {
        size_t end = lowered.find(' ', start);
        if (end == std::string::npos) end = lowered.size();
        if (lowered.substr(start, end - start) == rel) return std::string(target);
        start = end + 1;
      }
    }
    pos = close + 1;
  }
  return "";
}

std::optional<uint64_t> ParseRetryAfterSeconds(std::string_view value, int64_t now_unix_seconds) {
  value = TrimWhitespace(value);
  uint64_t seconds = 0;
  if (ParseDecimal(value, &seconds)) return seconds;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  int64_t at = static_cast<int64_t>(timegm(&tm));
  return at > now_unix_seconds ? static_cast<uint64_t>(at - now_unix_seconds) : 0;
}

}  // namespace sync_agent
