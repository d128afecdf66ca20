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

}  // namespace sync_agent::testing
