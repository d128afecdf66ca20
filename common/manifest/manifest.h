// The revision manifest and the "latest" pointer of the published tree, as
// documented in schema/manifest_format.md. Parsing validates everything before
// a caller may touch disk: a manifest that parses is safe to materialize under
// a directory (no absolute paths, no "..", no duplicates or file/directory
// clashes, no control characters, sane sizes, a known format version).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

inline constexpr int kManifestFormat = 1;
inline constexpr int kPointerFormat = 1;
// Manifests larger than this are refused before parsing.
// The default cap on a manifest's size (ManifestLimits::max_bytes).
inline constexpr uint64_t kMaxManifestBytes = 128ULL << 20;

// Where a revision or a file came from, as its source tells it: a small set
// of named values, one generic record for every kind of source. Keys are 1 to
// 32 of [a-z0-9_], values 1 to 256 printable ASCII characters, at most 16
// entries. The keys in use (schema/manifest_format.md):
//   revision: "kind" (git, hub), "commit" and "tree" (40-hex git ids), "ref"
//   file:     "blob" (the 40-hex git blob at the path: the content, or for a
//             Git LFS file its pointer), "lfs" ("true": the blob is a Git LFS
//             pointer whose oid is the entry's sha256)
// "commit", "tree" and "blob" must be 40 lowercase hex digits, "lfs" "true".
using Provenance = std::map<std::string, std::string>;

// Provenance as a JSON object ("{}" when empty), and back. Parsing checks the
// rules above; what names the record in messages.
std::string ProvenanceToJson(const Provenance& provenance);
Result<Provenance> ParseProvenanceJson(std::string_view json, std::string_view what);
// Checks a record by the rules above.
Status ValidateProvenance(const Provenance& provenance, std::string_view what);

// A librsync signature of a file's content, published beside the objects.
struct SignatureRef {
  uint32_t block_len = 0;
  uint32_t strong_len = 0;
  uint64_t size = 0;   // bytes of the signature file
  std::string sha256;  // of the signature file
  bool present() const { return block_len != 0; }
};

// A librsync delta from an earlier content of the same path to this one.
struct DeltaRef {
  std::string from_sha256;  // the content the delta applies to
  uint64_t size = 0;        // bytes of the delta file
  std::string sha256;       // of the delta file
};

struct ManifestEntry {
  std::string path;  // relative, '/'-separated, normalized
  uint64_t size = 0;
  uint32_t mode = 0644;  // permission bits; only 0644 and 0755 are published
  std::string sha256;
  // Optional (empty): a git source knows only the sha256 of a Git LFS object
  // before downloading it. Publishers always write it.
  std::string xxh3_128;
  SignatureRef signature;        // optional: absent for small files
  std::vector<DeltaRef> deltas;  // optional: from previous revisions' contents
  // Optional: what the source says of this file beyond its content (see
  // Provenance), e.g. the git blob a commit holds at this path.
  Provenance provenance;
};

struct Manifest {
  int format = kManifestFormat;
  std::string repo;      // "org/name"
  std::string revision;  // opaque id, see IsValidRevisionId
  std::string created;   // ISO-8601 UTC
  std::string parent;    // previous revision id, empty for the first
  // Optional: what the source says of the revision (see Provenance), e.g.
  // the git commit and tree it was taken from.
  Provenance provenance;
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

// The signatures of one revision, "<publish-root>/<org/name>/revisions/
// <revision>.sig" (schema/signature_format.md). Each signature is an
// ed25519 signature of the statement that names the repository, the
// revision, its manifest's sha256 and its creation time, so it cannot be
// moved to another repository, revision or manifest. This module reads and
// writes the document; common/trust makes and checks the signatures.
inline constexpr int kRevisionSignaturesFormat = 1;
inline constexpr size_t kMaxRevisionSignatures = 16;
struct RevisionSignature {
  std::string key;        // "ed25519:<base64 of the 32-byte public key>"
  std::string signature;  // base64 of the 64-byte signature
};
struct RevisionSignatures {
  int format = kRevisionSignaturesFormat;
  std::string repo;
  std::string revision;
  std::string manifest_sha256;
  std::string created;  // ISO-8601 UTC, the manifest's "created"
  std::vector<RevisionSignature> signatures;
};
std::string SerializeRevisionSignatures(const RevisionSignatures& sigs);
// kInvalidArgument for a malformed document (at most 64 KiB and
// kMaxRevisionSignatures signatures), kUnsupported for another format. The
// signatures themselves are not checked here (common/trust does).
Result<RevisionSignatures> ParseRevisionSignatures(std::string_view json);

// The list of an organisation's repositories in a publish root,
// "<publish-root>/<org>/index.json" (schema/org_index.md): written by
// `sync-agent publish`, read by nodes that follow "org/*".
inline constexpr int kOrgIndexFormat = 1;
inline constexpr const char* kOrgIndexName = "index.json";
struct OrgIndex {
  int format = kOrgIndexFormat;
  std::string org;
  std::string updated;             // ISO-8601 UTC, when it was written
  std::vector<std::string> repos;  // "org/name", sorted, each once
};
std::string SerializeOrgIndex(const OrgIndex& index);
// what names the document in errors (its URL or path). kInvalidArgument
// for a malformed index, one whose org is not org, a repository name that
// is not "<org>/<name>" or listed twice, more than max_repos repositories
// (counted before the JSON is parsed) or more than max_bytes of text;
// kUnsupported for another format.
Result<OrgIndex> ParseOrgIndex(std::string_view json, const std::string& org,
                               const std::string& what, size_t max_repos, uint64_t max_bytes);

// What a node accepts of a manifest (config keys manifest_max_files and
// manifest_max_bytes). Both are checked before the JSON is parsed, so a
// hostile manifest costs at most max_bytes of memory and one scan.
struct ManifestLimits {
  uint64_t max_files = 250000;
  uint64_t max_bytes = kMaxManifestBytes;
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
// One component of a repository name: the "org" of "org/name".
bool IsValidOrgName(std::string_view org);
// [A-Za-z0-9._-], 1 to 128 bytes, not starting with '.'.
bool IsValidRevisionId(std::string_view id);
// Empty on success, else why the path is not acceptable.
std::string CheckRelativePath(std::string_view path, const ManifestLimits& limits);

// Where things live inside "<publish-root>/<org/name>/" (relative paths).
std::string PublishedObjectPath(std::string_view sha256);                // "objects/ab/ab12..."
std::string PublishedManifestPath(std::string_view revision);            // "revisions/<rev>.json"
std::string PublishedRevisionSignaturesPath(std::string_view revision);  // "revisions/<rev>.sig"
// "signatures/ab/<content sha256>-<block_len>.sig"
std::string PublishedSignaturePath(std::string_view content_sha256, uint32_t block_len);
// "deltas/<to[0:2]>/<from sha256>-<to sha256>.delta"
std::string PublishedDeltaPath(std::string_view from_sha256, std::string_view to_sha256);
inline constexpr const char* kPointerName = "latest";

}  // namespace sync_agent
