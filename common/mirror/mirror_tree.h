// MirrorTree: the served tree under <mirror_root> (schema/mirror_tree.md).
//
//   <mirror_root>/<org>/<name>  -> symlink to .sync-agent/trees/<org>/<name>/<revision>
//   <mirror_root>/.sync-agent/trees/<org>/<name>/<revision>/...   complete revisions
//   <mirror_root>/.sync-agent/staging/<org>/<name>/<revision>.<pid>/...  being assembled
//
// A revision is assembled completely in staging, renamed into trees/, and
// made visible by replacing the repository's symlink with one rename(2). A
// reader therefore sees the whole old or the whole new revision and never a
// partial file; files in trees are never modified in place (read-only,
// hard links to the node's object store where the file system allows).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class Env;

struct AssembleStats {
  uint64_t linked = 0;  // files hard-linked from the object store
  uint64_t copied = 0;  // files copied (different file system, exec mode, link limit)
};

class MirrorTree {
 public:
  MirrorTree(Env* env, std::string mirror_root);

  std::string LinkPath(const std::string& repo) const;
  std::string TreePath(const std::string& repo, const std::string& revision) const;
  std::string TreesDir(const std::string& repo) const;
  std::string StagingDir(const std::string& repo) const;

  // The revision the repository's symlink names; kNotFound if there is none.
  // A real directory (not created by sync-agent) in its place is an error
  // that says so, and is never touched.
  Result<std::string> ActiveRevision(const std::string& repo) const;
  bool HasTree(const std::string& repo, const std::string& revision) const;

  // Builds TreePath(repo, manifest.revision) from objects: object_path(sha256)
  // names the verified file of each entry. If the tree already exists it is
  // replaced in one atomic step (Env::Exchange), so that a served tree is
  // never missing. On failure nothing is left in trees/ and staging is cleaned.
  Status Assemble(const std::string& repo, const Manifest& manifest,
                  const std::function<std::string(const std::string&)>& object_path,
                  AssembleStats* stats);
  // Points the repository at revision (which must have a tree) atomically.
  Status Swap(const std::string& repo, const std::string& revision);
  Status RemoveTree(const std::string& repo, const std::string& revision);
  // Revisions with a tree on disk.
  Result<std::vector<std::string>> ListTrees(const std::string& repo) const;
  // Removes leftovers of interrupted assemblies and swaps (a new link not
  // yet renamed over the served one). The caller holds the run lock.
  Status CleanStaging(const std::string& repo);

 private:
  Env* env_;
  std::string root_;
};

}  // namespace sync_agent
