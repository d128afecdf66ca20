// The Git LFS pointer parser (common/git, ParseLfsPointer). Invariants: a
// blob that does not start with the version line is content, never an
// error; a parsed pointer has a 64-hex oid and names exactly what
// LfsPointerText writes for it, which parses back to the same pointer.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/git/git_cache.h"
#include "common/hash/git_ids.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void Check(std::string_view blob) {
  constexpr std::string_view kVersion = "version https://git-lfs.github.com/spec/v1\n";
  Result<std::optional<LfsPointer>> parsed = ParseLfsPointer(blob);
  if (blob.substr(0, kVersion.size()) != kVersion) {
    SA_FUZZ_CHECK(parsed.ok() && !parsed->has_value());
    return;
  }
  if (!parsed.ok()) {
    SA_FUZZ_CHECK(parsed.status().code() == Status::Code::kCorruption);
    return;
  }
  if (!parsed->has_value()) return;  // too long to be a pointer: content
  const LfsPointer& p = **parsed;
  SA_FUZZ_CHECK(IsLowerHex64(p.oid));
  SA_FUZZ_CHECK(blob.find("oid sha256:" + p.oid + "\n") != std::string_view::npos);
  SA_FUZZ_CHECK(blob.find("\nsize ") != std::string_view::npos);
  const std::string text = LfsPointerText(p.oid, p.size);
  Result<std::optional<LfsPointer>> again = ParseLfsPointer(text);
  SA_FUZZ_CHECK(again.ok() && again->has_value());
  SA_FUZZ_CHECK((*again)->oid == p.oid && (*again)->size == p.size);
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
