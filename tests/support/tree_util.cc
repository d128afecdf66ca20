#include "tests/support/tree_util.h"

#include <filesystem>

#include "tests/support/test_util.h"

namespace sync_agent::testing {

std::map<std::string, std::string> ReadTree(const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  fs::path base = fs::canonical(root);
  for (auto it = fs::recursive_directory_iterator(base); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) {
      out[fs::relative(it->path(), base).string()] = ReadFile(it->path().string());
    }
  }
  return out;
}

std::string DiffTrees(const std::string& expected_root, const std::string& actual_root) {
  auto a = ReadTree(expected_root);
  auto b = ReadTree(actual_root);
  for (const auto& [path, content] : a) {
    auto it = b.find(path);
    if (it == b.end()) return "missing " + path;
    if (it->second != content) return "content differs: " + path;
  }
  for (const auto& [path, content] : b) {
    if (!a.count(path)) return "unexpected " + path;
  }
  return "";
}

}  // namespace sync_agent::testing
