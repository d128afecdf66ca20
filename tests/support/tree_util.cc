#include "tests/support/tree_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "common/hash/content_hasher.h"
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

std::string SnapshotTree(const std::string& root) {
  namespace fs = std::filesystem;
  std::ostringstream out;
  std::error_code ec;
  struct stat top;
  // The root's own mtime shows an entry created and removed again.
  if (::lstat(root.c_str(), &top) == 0)
    out << ". mtime=" << top.st_mtim.tv_sec << "." << top.st_mtim.tv_nsec << "\n";
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string path = it->path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    out << fs::relative(it->path(), root).string() << " mode=" << std::oct << (st.st_mode & 07777)
        << std::dec << " size=" << st.st_size << " mtime=" << st.st_mtim.tv_sec << "."
        << st.st_mtim.tv_nsec;
    if (S_ISLNK(st.st_mode)) {
      out << " link=" << fs::read_symlink(it->path(), ec).string();
    } else if (S_ISREG(st.st_mode)) {
      std::string content = ReadFile(path);
      out << " sha256=" << Sha256Hex(content).substr(0, 16);
      if (content.size() <= 64) out << " content=" << content;
    } else if (S_ISDIR(st.st_mode)) {
      out << " dir";
    }
    out << "\n";
  }
  return out.str();
}

Sentinel::Sentinel(std::string dir) : dir_(std::move(dir)) {
  MakeDirs(dir_ + "/llm-7b/sub");
  WriteFile(dir_ + "/keep.txt", "sentinel: must stay as it is", 0640);
  WriteFile(dir_ + "/llm-7b/sub/keep.txt", "sentinel below", 0600);
  std::string old = dir_ + "/old.part";
  WriteFile(old, "an old file", 0600);
  // 8 days old: what the expiry of partial downloads would delete.
  auto t = std::chrono::system_clock::now() - std::chrono::hours(24 * 8);
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = std::chrono::system_clock::to_time_t(t);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ::utimensat(AT_FDCWD, old.c_str(), times, 0);
  before_ = SnapshotTree(dir_);
}

std::string Sentinel::Changes() const {
  std::string now = SnapshotTree(dir_);
  if (now == before_) return "";
  return "outside the agent's roots, " + dir_ + " changed.\nbefore:\n" + before_ + "after:\n" + now;
}

}  // namespace sync_agent::testing
