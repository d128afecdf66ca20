// The hand-written JSON helpers (common/base/json_text). Invariants:
// Utf8ErrorOffset agrees with an independent strict UTF-8 check written
// here; AppendJsonString always writes valid UTF-8 that Poco's JSON parser
// reads back as the input (each bad byte as U+FFFD); a number overflow
// names a literal that is really there and really beyond 2^64 - 1.
#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/base/json_text.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

// Where s stops being UTF-8 (RFC 3629: shortest form, no surrogates, at
// most U+10FFFF), by the table of well-formed byte sequences (Unicode 15,
// table 3-7), or npos.
size_t ReferenceUtf8Error(std::string_view s) {
  size_t i = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    unsigned char c = static_cast<unsigned char>(s[i + k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    if (c <= 0x7f) {
      len = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = in(1, 0x80, 0xbf) ? 2 : 0;
    } else if (c == 0xe0) {
      len = in(1, 0xa0, 0xbf) && in(2, 0x80, 0xbf) ? 3 : 0;
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
      len = in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf) ? 3 : 0;
    } else if (c == 0xed) {
      len = in(1, 0x80, 0x9f) && in(2, 0x80, 0xbf) ? 3 : 0;
    } else if (c == 0xf0) {
      len = in(1, 0x90, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    } else if (c >= 0xf1 && c <= 0xf3) {
      len = in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    } else if (c == 0xf4) {
      len = in(1, 0x80, 0x8f) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    }
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

// s with each byte that does not start a well-formed sequence replaced by
// U+FFFD, as AppendJsonString promises.
std::string Repaired(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = ReferenceUtf8Error(s.substr(i));
    if (bad == std::string_view::npos) bad = s.size() - i;
    out.append(s.substr(i, bad));
    i += bad;
    if (i < s.size()) {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
  return out;
}

void Check(std::string_view s) {
  SA_FUZZ_CHECK(Utf8ErrorOffset(s) == ReferenceUtf8Error(s));

  const std::string quoted = JsonQuote(s);
  SA_FUZZ_CHECK(IsValidUtf8(quoted));
  SA_FUZZ_CHECK(quoted.size() >= 2 && quoted.front() == '"' && quoted.back() == '"');
  for (char c : quoted) SA_FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var v = parser.parse("[" + quoted + "]");
    std::string back = v.extract<Poco::JSON::Array::Ptr>()->getElement<std::string>(0);
    SA_FUZZ_CHECK(back == Repaired(s));
  } catch (const Poco::Exception& e) {
    std::fprintf(stderr, "Poco refused %s: %s\n", quoted.c_str(), e.displayText().c_str());
    SA_FUZZ_CHECK(false);
  }

  JsonNumberOverflow big;
  if (FindJsonNumberOverflow(s, &big)) {
    SA_FUZZ_CHECK(big.offset < s.size());
    std::string_view literal = big.literal;
    const bool cut = literal.size() > 3 && literal.substr(literal.size() - 3) == "...";
    if (cut) literal.remove_suffix(3);
    SA_FUZZ_CHECK(s.substr(big.offset, literal.size()) == literal);
    // The whole literal: from the offset to the first byte that is not a digit.
    std::string_view digits = s.substr(big.offset);
    if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
    digits = digits.substr(0, digits.find_first_not_of("0123456789"));
    SA_FUZZ_CHECK(cut == (digits.size() + (s[big.offset] == '-') > 40));
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    SA_FUZZ_CHECK(digits.size() > 20 || (digits.size() == 20 && digits > "18446744073709551615"));
    SA_FUZZ_CHECK(!DescribeJsonNumberOverflow(big).empty());
  }
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
