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
//
// Everything below <mirror_root> is reached by directory fds with O_NOFOLLOW
// (Env's *At operations): a symlink planted at .sync-agent, trees/<org>,
// staging/<org>, <org> or anywhere else below the root is refused with an
// error naming it, and nothing is written or removed through it. Only the
// repository's own symlink is one, and it counts as ours only if it names
// exactly RelativeTarget(repo, revision) for a valid revision id.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/fs/env.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

struct AssembleStats {
  uint64_t linked = 0;  // files hard-linked from the object store
  uint64_t copied = 0;  // files copied (different file system, exec mode, no hard links)
  // Objects that had as many hard links as the file system allows (EMLINK,
  // 65,000 on ext4) and were replaced in the store by a fresh copy of
  // themselves, which this and later trees link to.
  uint64_t renewed = 0;
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
  // An object that reached the hard-link limit is replaced by a copy of
  // itself beside it (written, fsynced, renamed over it), logged with a
  // warning naming it, and counted in stats->renewed; trees that link the
  // old inode keep it.
  Status Assemble(const std::string& repo, const Manifest& manifest,
                  const std::function<RootedPath(const std::string&)>& object_path,
                  AssembleStats* stats);
  // Points the repository at revision (which must have a tree) atomically.
  Status Swap(const std::string& repo, const std::string& revision);
  Status RemoveTree(const std::string& repo, const std::string& revision);
  // Revisions with a tree on disk.
  Result<std::vector<std::string>> ListTrees(const std::string& repo) const;
  // Stops serving repo and removes everything of it under the mirror root:
  // its link (only if it is ours, as ActiveRevision reads it; anything else
  // there is refused and left alone), then its trees and staging. Nothing
  // there: OK. The caller holds the run lock.
  Status RemoveRepository(const std::string& repo);
  // Removes leftovers of interrupted assemblies and swaps (a new link not
  // yet renamed over the served one). The caller holds the run lock.
  Status CleanStaging(const std::string& repo);
  // The same for every repository at once: all of staging/, and every
  // swap's new link in every <org>/ and datasets/<org>/ directory, each
  // directory listed once. The caller holds the run lock.
  Status CleanAllStaging();

 private:
  RootedPath Below(const std::string& rel) const { return {root_, rel}; }
  RootedPath LinkAt(const std::string& repo) const { return Below(repo); }
  RootedPath TreesAt(const std::string& repo) const;
  RootedPath StagingAt(const std::string& repo) const;
  // Removes the symlinks named like a swap's new link in dir.
  Status RemoveSwapLinksIn(const RootedPath& dir);
  // Links object to dest, renewing the object once if it has too many links.
  Status LinkObject(const RootedPath& object, const RootedPath& dest, bool* linked,
                    AssembleStats* stats);

  Env* env_;
  std::string root_;
};

}  // namespace sync_agent
