// PublishRootGenerator: a publish root (schema/published_tree.md) holding
// many small repositories, for the scale tests and scripts/bench-scale
// (through tests/tools/gen_publish_root).
//
// Each revision is written by the real publisher (common/publish), so the
// tree is what `sync-agent publish` writes byte for byte, timestamps and
// revision ids aside; only its fsyncs are skipped (a generated root need not
// survive a power cut), which makes 10,000 repositories a matter of seconds
// rather than minutes of fsync. Publishing one repository one by one through
// the binary costs a process start and a dozen fsyncs each.
//
// Repository i is "<org>/repo-<i, 5 digits>" and holds, at generation g:
//   config.json      small, names the repository and g (changes with g)
//   tokenizer.json   small, names the repository (same at every generation)
//   weights.bin      weights_bytes of pseudo-random bytes seeded by i
//   big.bin          only when big_bytes > 0 and g >= 1: big_bytes of
//                    pseudo-random bytes seeded by i and g
// so every repository's content differs from every other's, and generation
// g + 1 changes one small file (and adds or replaces big.bin when asked).
//
// Not thread safe; one generator per publish root at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "common/base/status.h"

namespace sync_agent::testing {

struct GeneratedRevision {
  std::string repo;      // "org/name"
  std::string revision;  // the published revision id
  // Bytes a node must fetch to move to this revision from the previous
  // generation: the pointer, the manifest and the objects new to the
  // repository (content it already held under any name is not counted).
  uint64_t pointer_bytes = 0;
  uint64_t manifest_bytes = 0;
  uint64_t new_object_bytes = 0;
  uint64_t new_objects = 0;
};

class PublishRootGenerator {
 public:
  struct Options {
    std::string root;      // the publish root; created if missing
    std::string work_dir;  // scratch space for a repository's input files
    std::string org = "scale";
    size_t weights_bytes = 4096;
    uint64_t big_bytes = 0;  // see big.bin above; 0 = none
  };

  explicit PublishRootGenerator(Options options);

  std::string RepoName(size_t index) const;
  // path -> content of repository index at generation.
  std::map<std::string, std::string> Files(size_t index, int generation) const;
  // Publishes generation of repository index as its new latest revision.
  // Fails (naming the repository) if the publisher does, e.g. when that
  // generation's content equals the latest revision's.
  Result<GeneratedRevision> Publish(size_t index, int generation);
  // <root>/<org>/index.json, which Publish leaves alone (rewriting it after
  // each of thousands of repositories would list them all each time).
  Status WriteOrgIndex();

 private:
  Options options_;
};

}  // namespace sync_agent::testing
