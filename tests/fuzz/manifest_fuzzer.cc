// The revision manifest, the "latest" pointer and provenance records
// (common/manifest). Each input goes to all three parsers. Invariants: what
// parses validates, names only paths that stay inside the tree, and survives
// serialize -> parse -> serialize unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/manifest/manifest.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

// A path that ParseManifest accepted must not leave the directory it is
// materialized under.
bool StaysInside(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) return false;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part(path.data() + start,
                          (slash == std::string::npos ? path.size() : slash) - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

void CheckManifest(std::string_view text) {
  Result<Manifest> parsed = ParseManifest(text);
  if (!parsed.ok()) return;
  const Manifest& m = *parsed;
  SA_FUZZ_CHECK(ValidateManifest(m).ok());
  SA_FUZZ_CHECK(IsValidRepoName(m.repo));
  SA_FUZZ_CHECK(IsValidRevisionId(m.revision));
  for (size_t i = 0; i < m.files.size(); ++i) {
    SA_FUZZ_CHECK(StaysInside(m.files[i].path));
    SA_FUZZ_CHECK(CheckRelativePath(m.files[i].path, ManifestLimits{}).empty());
  }
  const std::string once = SerializeManifest(m);
  Result<Manifest> again = ParseManifest(once);
  SA_FUZZ_CHECK(again.ok());
  SA_FUZZ_CHECK(SerializeManifest(*again) == once);
  SA_FUZZ_CHECK(again->TotalBytes() == m.TotalBytes());
}

void CheckPointer(std::string_view text) {
  Result<RevisionPointer> parsed = ParsePointer(text);
  if (!parsed.ok()) return;
  SA_FUZZ_CHECK(IsValidRepoName(parsed->repo));
  SA_FUZZ_CHECK(parsed->manifest == PublishedManifestPath(parsed->revision));
  const std::string once = SerializePointer(*parsed);
  Result<RevisionPointer> again = ParsePointer(once);
  SA_FUZZ_CHECK(again.ok());
  SA_FUZZ_CHECK(SerializePointer(*again) == once);
}

void CheckProvenance(std::string_view text) {
  Result<Provenance> parsed = ParseProvenanceJson(text, "fuzz input");
  if (!parsed.ok()) return;
  SA_FUZZ_CHECK(ValidateProvenance(*parsed, "fuzz input").ok());
  Result<Provenance> again = ParseProvenanceJson(ProvenanceToJson(*parsed), "fuzz input");
  SA_FUZZ_CHECK(again.ok());
  SA_FUZZ_CHECK(*again == *parsed);
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = sync_agent::fuzz::AsText(data, size);
  sync_agent::CheckManifest(text);
  sync_agent::CheckPointer(text);
  sync_agent::CheckProvenance(text);
  return 0;
}
