// The revision manifest and the "latest" pointer of the published tree, as
// documented in schema/manifest_format.md. Parsing validates everything before
// a caller may touch disk: a manifest that parses is safe to materialize under
// a directory (no absolute paths, no "..", no duplicates or file/directory
// clashes, no control characters, sane sizes, a known format version).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

inline constexpr int kManifestFormat = 1;
inline constexpr int kPointerFormat = 1;
// Manifests larger than this are refused before parsing.
inline constexpr uint64_t kMaxManifestBytes = 512ULL << 20;

struct ManifestEntry {
  std::string path;  // relative, '/'-separated, normalized
  uint64_t size = 0;
  uint32_t mode = 0644;  // permission bits; only 0644 and 0755 are published
  std::string sha256;
  std::string xxh3_128;
};

struct Manifest {
  int format = kManifestFormat;
  std::string repo;                  // "org/name"
  std::string revision;              // opaque id, see IsValidRevisionId
  std::string created;               // ISO-8601 UTC
  std::string parent;                // previous revision id, empty for the first
  std::vector<ManifestEntry> files;  // sorted by path

  uint64_t TotalBytes() const;
};

// The small mutable file "<publish-root>/<org/name>/latest".
struct RevisionPointer {
  int format = kPointerFormat;
  std::string repo;
  std::string revision;
  std::string manifest;         // path relative to the repository's publish directory
  std::string manifest_sha256;  // sha256 of the manifest file's bytes
  std::string published;        // ISO-8601 UTC
};

struct ManifestLimits {
  uint64_t max_files = 1000000;
  uint64_t max_file_size = 1ULL << 44;  // 16 TiB
  uint64_t max_total_size = 1ULL << 48;
  size_t max_path_bytes = 1024;
  size_t max_component_bytes = 255;
  size_t max_depth = 64;
};

std::string SerializeManifest(const Manifest& manifest);
// Parses and validates. Errors are kInvalidArgument (malformed or hostile,
// naming the offending entry as files[i] "path") or kUnsupported (format).
Result<Manifest> ParseManifest(std::string_view json, const ManifestLimits& limits = {});
// Checks an in-memory manifest by the same rules as ParseManifest.
Status ValidateManifest(const Manifest& manifest, const ManifestLimits& limits = {});

std::string SerializePointer(const RevisionPointer& pointer);
Result<RevisionPointer> ParsePointer(std::string_view json);

// "org/name": two components of [A-Za-z0-9._-], not starting with '.', at most 96 bytes each.
bool IsValidRepoName(std::string_view name);
// [A-Za-z0-9._-], 1 to 128 bytes, not starting with '.'.
bool IsValidRevisionId(std::string_view id);
// Empty on success, else why the path is not acceptable.
std::string CheckRelativePath(std::string_view path, const ManifestLimits& limits);

// Where things live inside "<publish-root>/<org/name>/" (relative paths).
std::string PublishedObjectPath(std::string_view sha256);      // "objects/ab/ab12..."
std::string PublishedManifestPath(std::string_view revision);  // "revisions/<rev>.json"
inline constexpr const char* kPointerName = "latest";

}  // namespace sync_agent
