// Fixtures for agent tests whose origin is a git repository built with the
// real git and git-lfs tools: GitAgentFixture has a work repository that
// tracks *.safetensors with LFS (usable as a local-path remote);
// GitHttpAgentFixture also serves it over git's smart HTTP (git-http-backend
// behind nginx and fcgiwrap) with "<repo>.git/info/lfs/" proxied to a test
// Git LFS server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/agent_fixture.h"
#include "tests/support/git_repo.h"
#include "tests/support/lfs_server.h"

namespace sync_agent::testing {

class GitAgentFixture : public AgentFixture {
 protected:
  void SetUp() override;
  ProcessResult Git(const std::vector<std::string>& args) { return repo_->Git(args); }
  std::string Commit(const std::string& message) { return repo_->Commit(message); }
  // The object id a revision expression names in the work repository.
  std::string Rev(const std::string& spec);
  // Runs the agent once, expecting a failed run whose message (on stderr
  // and in SQLite) mentions what, with the served revision and the bytes of
  // config.json and model.safetensors as before.
  void ExpectFailedRunKeepsServedTree(const std::string& what);

  std::string work_;
  std::unique_ptr<GitWorkRepo> repo_;
};

class GitHttpAgentFixture : public GitAgentFixture {
 protected:
  void SetUp() override;
  // Publishes the work repository's current state: a fresh bare copy served
  // by git-http-backend (so a reset is a force push), these LFS contents
  // added to the LFS server.
  void Serve(const std::vector<std::string>& lfs_contents);

  LfsServer lfs_;
  std::unique_ptr<BackgroundProcess> fcgi_;
  std::string url_;     // nginx
  std::string remote_;  // the served repository's URL
};

}  // namespace sync_agent::testing
