// Comparing directory trees in tests.
#pragma once

#include <map>
#include <string>

namespace sync_agent::testing {

// Relative path -> content of every regular file below root (following the
// root itself if it is a symlink; skipping ".git").
std::map<std::string, std::string> ReadTree(const std::string& root);
// Empty if equal, else a description of the first difference.
std::string DiffTrees(const std::string& expected_root, const std::string& actual_root);

// Everything below root as text, one line per entry (path, type, mode, size,
// link target or content), without following any symlink: two snapshots
// differ if anything was written, removed, added or had its mode changed.
std::string SnapshotTree(const std::string& root);

// A directory outside the agent's roots with content that must survive: the
// target of the symlinks tests plant. Holds keep.txt (0640), a subdirectory
// with a file (so that a tree written or removed through a link shows), and
// a file 8 days old.
class Sentinel {
 public:
  explicit Sentinel(std::string dir);
  const std::string& dir() const { return dir_; }
  std::string file() const { return dir_ + "/keep.txt"; }
  // Empty if nothing changed, else both snapshots.
  std::string Changes() const;

 private:
  std::string dir_;
  std::string before_;
};

}  // namespace sync_agent::testing
