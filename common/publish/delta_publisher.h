// DeltaPublisher: adds what nodes need for block-level updates to a manifest
// being published: a librsync signature of every file above a size, and
// deltas from the same path's contents in the previous revisions. All are
// static files beside the objects (schema/published_tree.md), written
// durably before the manifest that names them, and reused when they exist.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class Env;

struct DeltaPublishOptions {
  uint64_t signature_min_size = 1 << 20;  // smaller files are always fetched whole
  int delta_depth = 2;                    // previous revisions to compute deltas from
};

struct DeltaPublishStats {
  uint64_t signatures_written = 0;
  uint64_t deltas_written = 0;
  uint64_t deltas_skipped = 0;  // not smaller than the file itself
  uint64_t bytes_written = 0;
};

// repo_dir is "<publish-root>/<org/name>"; the new manifest's objects are
// already there. previous holds the earlier manifests, newest first (at most
// options.delta_depth are used). Fills each large entry's signature and deltas.
Status AddDeltaInfo(Env* env, const std::string& repo_dir, const std::vector<Manifest>& previous,
                    const DeltaPublishOptions& options, Manifest* manifest,
                    DeltaPublishStats* stats);

}  // namespace sync_agent
