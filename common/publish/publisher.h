// Publisher: turns a directory holding one model repository into a new
// revision of the published tree (schema/published_tree.md):
//
//   <out>/<org/name>/objects/<ab>/<sha256>     content, immutable
//   <out>/<org/name>/revisions/<revision>.json  manifest, immutable
//   <out>/<org/name>/latest                     pointer to the newest revision
//
// Publishing is atomic for readers: every object and the manifest are durable
// before the pointer is replaced by one rename, so a reader never sees the
// pointer name an incomplete revision. Content already published (by hash) is
// not copied again. Two publishers of one repository serialize on a lock file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/base/status.h"
#include "common/manifest/manifest.h"
#include "common/publish/delta_publisher.h"
#include "common/trust/ed25519.h"

namespace sync_agent {

class Env;

struct PublishOptions {
  std::string input_dir;         // the repository's working directory
  std::string repo;              // "org/name"
  std::string out_root;          // the publish root
  std::string revision;          // optional: a revision id to use instead of the generated one
  bool allow_unchanged = false;  // publish a new revision even if content did not change
  // Rewrite <out_root>/<org>/index.json after the pointer (schema/org_index.md).
  // It lists every repository of the organisation, so a tool publishing
  // thousands at once turns this off and calls WriteOrgIndex once at the end.
  bool write_org_index = true;
  DeltaPublishOptions deltas;  // signatures and deltas for large files
  // Optional: recorded in the manifest as the revision's and the files'
  // provenance (publish --git: the commit, tree and blob ids).
  Provenance provenance;
  std::map<std::string, Provenance> file_provenance;  // by path
  // Each signs the revision (schema/signature_format.md): its signature
  // document "revisions/<revision>.sig" is written after the manifest and
  // before the pointer, so that a node that sees the pointer finds it.
  std::vector<PrivateKey> sign_keys;
};

struct PublishResult {
  Manifest manifest;
  bool unchanged = false;  // content equals the latest revision; nothing was published
  uint64_t objects_written = 0;
  uint64_t bytes_written = 0;
  uint64_t objects_reused = 0;
  uint64_t bytes_reused = 0;
  DeltaPublishStats delta_stats;
};

// Files are read through env. Symlinks to regular files are followed (their
// content is published); symlinks to directories, sockets, devices and FIFOs
// are errors naming the path. A top-level ".git" directory is skipped.
Result<PublishResult> PublishDirectory(Env* env, const PublishOptions& options);

}  // namespace sync_agent
