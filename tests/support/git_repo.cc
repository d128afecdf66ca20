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

}  // namespace sync_agent::testing
