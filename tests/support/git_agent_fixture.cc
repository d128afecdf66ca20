#include "tests/support/git_agent_fixture.h"

#include <unistd.h>

#include <filesystem>

#include "tests/support/nginx_server.h"

namespace sync_agent::testing {

void GitAgentFixture::SetUp() {
  if (!GitLfsAvailable()) GTEST_SKIP() << "git-lfs is not installed (apt-get install git-lfs)";
  work_ = tmp_.Sub("git-work");
  repo_ = std::make_unique<GitWorkRepo>(work_, tmp_.path(), "*.safetensors");
}

std::string GitAgentFixture::Rev(const std::string& spec) {
  return Git({"-C", work_, "rev-parse", spec}).out.substr(0, 40);
}

void GitAgentFixture::ExpectFailedRunKeepsServedTree(const std::string& what) {
  const std::string revision = ServedRevision();
  const std::vector<std::string> sums = {"/usr/bin/sha256sum", "-b", Served() + "/config.json",
                                         Served() + "/model.safetensors"};
  ProcessResult before = RunProcess(sums);
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), revision);
  EXPECT_EQ(RunProcess(sums).out, before.out);
  EXPECT_NE(Sql("SELECT error FROM sync_runs ORDER BY id DESC LIMIT 1").find(what),
            std::string::npos);
}

void GitHttpAgentFixture::SetUp() {
  GitAgentFixture::SetUp();
  if (IsSkipped()) return;
  if (::access("/usr/sbin/fcgiwrap", X_OK) != 0) {
    GTEST_SKIP() << "fcgiwrap is not installed (apt-get install fcgiwrap)";
  }
  std::string error;
  fcgi_ = StartFcgiWrap(tmp_.Sub("fcgi.sock"), &error);
  ASSERT_NE(fcgi_, nullptr) << error;
  NginxServer::Options o;
  o.git_project_root = tmp_.Sub("git-root");
  o.fcgi_socket = tmp_.Sub("fcgi.sock");
  o.lfs_upstream = lfs_.url().substr(std::string("http://").size());
  MakeDirs(o.git_project_root + "/acme");
  url_ = StartNginx(o);
  remote_ = url_ + "/acme/llm-7b.git";
}

void GitHttpAgentFixture::Serve(const std::vector<std::string>& lfs_contents) {
  std::string bare = tmp_.Sub("git-root/acme/llm-7b.git");
  std::filesystem::remove_all(bare);
  Git({"clone", "-q", "--bare", work_, bare});
  for (const std::string& c : lfs_contents) lfs_.Add(c);
}

}  // namespace sync_agent::testing
