#include "common/base/json_text.h"

#include <algorithm>
#include <cstdio>

namespace sync_agent {

namespace {

// The length of the well-formed UTF-8 sequence starting at s[i] (1 for
// ASCII), or 0 when it is not one (overlongs and surrogates included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t cp;
  if (c < 0x80) {
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Bytes from a hostile server may be anything; JSON must stay valid.
      size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\\ufffd");
      } else {
        out->append(s.substr(i, len));
        i += len - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

size_t Utf8ErrorOffset(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = Utf8SequenceLength(s, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool FindJsonNumberOverflow(std::string_view json, JsonNumberOverflow* found) {
  static constexpr std::string_view kMax = "18446744073709551615";  // 2^64 - 1
  size_t key_begin = 0, key_end = 0;  // the last string that was followed by ':'
  size_t last_begin = 0, last_end = 0;
  bool in_array_value = false;  // the next value is not an object member's
  size_t i = 0;
  while (i < json.size()) {
    char c = json[i];
    if (c == '"') {
      size_t begin = ++i;
      while (i < json.size() && json[i] != '"') i += json[i] == '\\' ? 2 : 1;
      last_begin = begin;
      last_end = std::min(i, json.size());
      ++i;
      continue;
    }
    if (c == ':') {
      key_begin = last_begin;
      key_end = last_end;
      in_array_value = false;
    } else if (c == '[' || c == ',') {
      // After ',' inside an object a key follows, which resets the key anyway.
      in_array_value = true;
    } else if ((c >= '0' && c <= '9') || c == '-') {
      size_t begin = i;
      if (c == '-') ++i;
      size_t digits = i;
      while (i < json.size() && json[i] >= '0' && json[i] <= '9') ++i;
      std::string_view run = json.substr(digits, i - digits);
      bool fraction = i < json.size() && (json[i] == '.' || json[i] == 'e' || json[i] == 'E');
      while (run.size() > 1 && run.front() == '0') run.remove_prefix(1);
      if (!fraction && (run.size() > kMax.size() || (run.size() == kMax.size() && run > kMax))) {
        found->offset = begin;
        found->key = in_array_value ? std::string()
                                    : std::string(json.substr(key_begin, key_end - key_begin));
        // At most 40 bytes of it, and "..." when there is more, so that a
        // long run of leading zeros does not read as a small number.
        found->literal = std::string(json.substr(begin, std::min<size_t>(i - begin, 40)));
        if (i - begin > 40) found->literal += "...";
        return true;
      }
      continue;
    }
    ++i;
  }
  return false;
}

std::string DescribeJsonNumberOverflow(const JsonNumberOverflow& big) {
  std::string name = big.key.empty() ? "a number" : JsonQuote(big.key);
  return name + " is " + big.literal + ", beyond the largest whole number (2^64 - 1), at byte " +
         std::to_string(big.offset);
}

size_t CountTopLevelArrayElements(std::string_view json, std::string_view key, size_t stop_after) {
  size_t depth = 0;        // of objects and arrays
  size_t array_depth = 0;  // depth inside the wanted array, 0 when outside it
  bool in_array = false;
  bool expect_element = false;  // the next value at the array's depth begins an element
  size_t count = 0;
  std::string_view last_key;  // the last string at depth 1 (a key, or a value)
  for (size_t i = 0; i < json.size() && count <= stop_after; i++) {
    char c = json[i];
    if (c == '"') {
      size_t start = i + 1;
      for (i = start; i < json.size() && json[i] != '"'; i++) {
        if (json[i] == '\\') i++;
      }
      if (depth == 1 && !in_array) last_key = json.substr(start, std::min(i, json.size()) - start);
      if (in_array && depth == array_depth && expect_element) {
        count++;
        expect_element = false;
      }
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ':') continue;
    if (c == '{' || c == '[') {
      if (in_array && depth == array_depth && expect_element) {
        count++;
        expect_element = false;
      }
      depth++;
      if (c == '[' && depth == 2 && !in_array && last_key == key) {
        in_array = true;
        array_depth = depth;
        expect_element = true;
      }
      continue;
    }
    if (c == '}' || c == ']') {
      if (in_array && depth == array_depth) in_array = false;
      if (depth > 0) depth--;
      continue;
    }
    if (c == ',') {
      if (in_array && depth == array_depth) expect_element = true;
      continue;
    }
    // A number, true, false or null.
    if (in_array && depth == array_depth && expect_element) {
      count++;
      expect_element = false;
    }
  }
  return count;
}

}  // namespace sync_agent
