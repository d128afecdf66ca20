#include "tests/support/git_repo.h"

#include <gtest/gtest.h>

#include "common/hash/content_hasher.h"

namespace sync_agent::testing {

bool GitLfsAvailable() { return RunProcess({"/usr/bin/git", "lfs", "version"}).exit_code == 0; }

GitWorkRepo::GitWorkRepo(std::string dir, std::string home, const std::string& lfs_pattern)
    : dir_(std::move(dir)), home_(std::move(home)) {
  Git({"init", "-q", "-b", "main", dir_});
  Git({"-C", dir_, "config", "user.email", "test@example.net"});
  Git({"-C", dir_, "config", "user.name", "Test"});
  if (!lfs_pattern.empty()) {
    Git({"-C", dir_, "lfs", "install", "--local"});
    Git({"-C", dir_, "lfs", "track", lfs_pattern});
  }
}

ProcessResult GitWorkRepo::Git(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/git"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = RunProcess(argv, {{"GIT_CONFIG_NOSYSTEM", "1"}, {"HOME", home_}});
  EXPECT_EQ(r.exit_code, 0) << "git " << ::testing::PrintToString(args) << ": " << r.err
                            << r.out;
  return r;
}

std::string GitWorkRepo::Commit(const std::string& message) const {
  Git({"-C", dir_, "add", "-A"});
  Git({"-C", dir_, "commit", "-q", "-m", message});
  return Head();
}

std::string GitWorkRepo::Head() const {
  return Git({"-C", dir_, "rev-parse", "HEAD"}).out.substr(0, 40);
}

std::string GitWorkRepo::LfsObjectPath(const std::string& content) const {
  std::string oid = Sha256Hex(content);
  return dir_ + "/.git/lfs/objects/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid;
}

void ExpectTreeEqualsCheckout(const GitWorkRepo& git, const std::string& checkout_dir,
                              const std::string& served) {
  std::string files = git.Git({"-C", checkout_dir, "ls-files"}).out;
  size_t count = 0;
  for (size_t at = 0; at < files.size();) {
    size_t nl = files.find('\n', at);
    std::string f = files.substr(at, nl - at);
    at = nl + 1;
    ++count;
    std::string want = ReadFile(checkout_dir + "/" + f);
    EXPECT_TRUE(want == ReadFile(served + "/" + f)) << f << " differs from the checkout";
    EXPECT_EQ(want.find("oid sha256:"), std::string::npos) << f << " is an LFS pointer";
  }
  EXPECT_GT(count, 1u);
  ProcessResult found = RunProcess({"/usr/bin/find", served + "/", "-type", "f"});
  size_t served_files = 0;
  for (char c : found.out) served_files += c == '\n';
  EXPECT_EQ(served_files, count) << "served files: " << found.out;
}

}  // namespace sync_agent::testing
