// A git working repository for tests, driven by the real git (and git-lfs)
// command line tools, with a private HOME so no user or system config leaks in.
#pragma once

#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace sync_agent::testing {

// True if `git lfs` runs.
bool GitLfsAvailable();

class GitWorkRepo {
 public:
  // Creates a repository with branch main at dir; home is a private HOME.
  // With lfs_pattern, git-lfs is installed locally and tracks it.
  GitWorkRepo(std::string dir, std::string home, const std::string& lfs_pattern = "");

  // Runs git with args; a failure fails the calling test (with git's output).
  ProcessResult Git(const std::vector<std::string>& args) const;
  // `git add -A` and commit; returns the new commit id.
  std::string Commit(const std::string& message) const;
  std::string Head() const;
  // Where git-lfs stored the object of this content.
  std::string LfsObjectPath(const std::string& content) const;
  const std::string& dir() const { return dir_; }
  const std::string& home() const { return home_; }

 private:
  std::string dir_;
  std::string home_;
};

// Every file git tracks in the checkout at checkout_dir equals the file at
// the same path under served (symlinks followed), and served holds no other
// files. Fails the calling test otherwise.
void ExpectTreeEqualsCheckout(const GitWorkRepo& git, const std::string& checkout_dir,
                              const std::string& served);

}  // namespace sync_agent::testing
