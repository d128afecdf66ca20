// Shared by the libFuzzer harnesses in tests/fuzz (header only, so that a new
// harness is one file): invariant checks that stop the fuzzer with the
// reason, and splitting an input into pieces for streaming parsers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

// An invariant of the code under test: on violation, prints what and where
// and traps, which libFuzzer reports as a crash with the input saved.
#define SA_FUZZ_CHECK(cond)                                                               \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)

namespace sync_agent::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Piece lengths (1 to 64) for feeding text to a streaming parser, taken from
// the text's own bytes so that a given input always splits the same way and
// the fuzzer can steer the split points. Their sum is text.size().
inline std::vector<size_t> PieceLengths(std::string_view text) {
  std::vector<size_t> out;
  for (size_t at = 0, i = 0; at < text.size(); ++i) {
    size_t len = 1 + static_cast<uint8_t>(text[(i * 7919) % text.size()]) % 64;
    len = std::min(len, text.size() - at);
    out.push_back(len);
    at += len;
  }
  return out;
}

}  // namespace sync_agent::fuzz
