// Two nodes as a tier: node A mirrors a publish root and serves it with
// `sync-agent serve --config` as a Hub; node B mirrors node A as it would
// mirror huggingface.co ([[repo]] hub = node A). Through the real binary.
// B serves byte-identical trees under A's commit ids, and an update moves
// only the changed files from A to B.
#include "common/hash/content_hasher.h"
#include "common/sync/hub_ids.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

class HubTierTest : public AgentFixture {
 protected:
  // Node A: the fixture's node, syncing from the publish root on disk.
  void SyncA() {
    WriteConfig({"file://" + pub_});
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string StartA() {
    int port = FreeLoopbackPort();
    a_server_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{
        AgentBinary(), "serve", "--config", config_, "--listen",
        "127.0.0.1:" + std::to_string(port), "--access-log", tmp_.Sub("a-access.log")});
    EXPECT_TRUE(WaitForPort(port)) << a_server_->Stderr();
    return "http://127.0.0.1:" + std::to_string(port);
  }
  // Node B, mirroring A as a hub.
  ProcessResult SyncB(const std::string& a_url) {
    const std::string b = tmp_.Sub("b");
    MakeDirs(b + "/state");
    WriteFile(b + "/config.toml", "state_dir = \"" + b + "/state\"\nmirror_root = \"" + b +
                                      "/mirror\"\nretry_attempts = 1\n[[repo]]\nname = \"" + kRepo +
                                      "\"\nhub = \"" + a_url + "\"\n");
    return RunAgent({"--once", "--config", b + "/config.toml"});
  }
  std::string ServedB() const { return tmp_.path() + "/b/mirror/" + kRepo; }
  std::vector<std::string> AccessLog() {
    std::vector<std::string> lines;
    std::string text = ReadFile(tmp_.Sub("a-access.log"));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      lines.push_back(text.substr(pos, nl - pos));
      pos = nl == std::string::npos ? text.size() : nl + 1;
    }
    return lines;
  }

  std::unique_ptr<BackgroundProcess> a_server_;
};

TEST_F(HubTierTest, ASecondNodeMirrorsTheFirstAsAHub) {
  const std::string weights =
      RandomBytes(static_cast<size_t>(kHubLfsMinBytes) + 3 * 1024 * 1024, 1);
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  WriteFile(model_ + "/tokenizer.json", "{\"vocab\": 32000}");
  WriteFile(model_ + "/model.safetensors", weights);
  WriteFile(model_ + "/empty.txt", "");
  Publish();
  ASSERT_NO_FATAL_FAILURE(SyncA());
  const std::string a_url = StartA();

  ProcessResult r = SyncB(a_url);
  ASSERT_EQ(r.exit_code, 0) << r.err << a_server_->Stderr();
  EXPECT_EQ(DiffTrees(model_, ServedB()), "");
  // B names the revision by A's Hub sha, 40 hex digits.
  ProcessResult st = RunAgent({"status", "--config", tmp_.Sub("b/config.toml")});
  EXPECT_NE(st.out.find("hub:             " + a_url + " ref main type model"), std::string::npos)
      << st.out;
  std::string b_rev;
  {
    char buf[4096];
    ssize_t n = ::readlink(ServedB().c_str(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    std::string target(buf, static_cast<size_t>(n));
    b_rev = target.substr(target.rfind('/') + 1);
  }
  EXPECT_EQ(b_rev.size(), 40u);
  EXPECT_TRUE(IsLowerHex(b_rev, 40)) << b_rev;

  // An update at the origin: B fetches only what changed from A.
  WriteFile(model_ + "/config.json", "{\"layers\": 3}");
  Publish();
  ASSERT_NO_FATAL_FAILURE(SyncA());
  const size_t before = AccessLog().size();
  r = SyncB(a_url);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, ServedB()), "");
  std::vector<std::string> log = AccessLog();
  std::string fetched;
  for (size_t i = before; i < log.size(); ++i) {
    if (log[i].find("/resolve/") != std::string::npos) fetched += log[i] + "\n";
  }
  EXPECT_NE(fetched.find("config.json"), std::string::npos) << fetched;
  EXPECT_EQ(fetched.find("tokenizer.json"), std::string::npos) << fetched;
  EXPECT_EQ(fetched.find("model.safetensors"), std::string::npos) << fetched;

  // Unchanged: one request.
  const size_t settled = AccessLog().size();
  r = SyncB(a_url);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The server writes the line after the response: wait for it.
  ASSERT_TRUE(WaitFor([&] { return AccessLog().size() >= settled + 1; }));
  log = AccessLog();
  ASSERT_EQ(log.size(), settled + 1);
  EXPECT_NE(log.back().find("/api/models/" + std::string(kRepo) + "/revision/main"),
            std::string::npos)
      << log.back();
}

}  // namespace
}  // namespace sync_agent::testing
