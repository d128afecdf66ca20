// The real @huggingface/hub npm client against a node's own Hub API, both
// through the built-in server (`sync-agent serve --config`) and through nginx
// with the shipped scripts/nginx-hub.conf.example (bodies by
// X-Accel-Redirect). The node mirrors a model and a dataset from HubServer
// (a stand-in for huggingface.co) and a model from a publish root; the
// client's listFiles, fileDownloadInfo, downloadFile, snapshotDownload and
// modelInfo/datasetInfo must see byte-identical files, null for a missing
// file, and the same files when the revision is asked for by sha.
#include "common/hash/content_hasher.h"
#include "common/sync/hub_ids.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/hub_js_client.h"
#include "tests/support/hub_server.h"

namespace sync_agent::testing {
namespace {

class HubNodeJsTest : public AgentFixture, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubJsClientAvailable(&why)) GTEST_SKIP() << why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) GTEST_SKIP() << "no 127.0.0.2: " << why;
    if (GetParam() && !NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    HubServer::Options o;
    o.tree_page_size = 3;
    upstream_ = std::make_unique<HubServer>(o);
  }

  // The node: syncs what the config lists, then serves it; returns the URL
  // clients use (the node itself, or nginx in front of it).
  std::string SyncAndServe(const std::string& repos) {
    WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                           "\"\nretry_attempts = 1\n" + repos);
    ProcessResult r = Once();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    int port = FreeLoopbackPort();
    std::vector<std::string> argv = {AgentBinary(), "serve",
                                     "--config",    config_,
                                     "--listen",    "127.0.0.1:" + std::to_string(port)};
    if (GetParam()) {
      argv.push_back("--x-accel-redirect");
      argv.push_back("/_sync_agent_files/");
    }
    node_ = std::make_unique<BackgroundProcess>(argv);
    EXPECT_TRUE(WaitForPort(port)) << node_->Stderr();
    const std::string node_url = "http://127.0.0.1:" + std::to_string(port);
    if (!GetParam()) return node_url;
    return StartHubNginx(port);
  }

  HubJsCheck Check(const std::string& url, const std::string& repo, RepoType type,
                   const std::map<std::string, std::string>& files) {
    HubJsCheck c;
    c.hub_url = url;
    c.repo = repo;
    c.type = type;
    c.cache_dir = tmp_.Sub("hf-cache-" + std::to_string(++runs_));
    c.files = files;
    c.missing = {"no-such-file.json", "sub/nope.bin"};
    return c;
  }
  void ExpectPasses(const HubJsCheck& c) {
    ProcessResult r = RunHubJsClient(c);
    EXPECT_EQ(r.exit_code, 0) << "stderr:\n"
                              << r.err << "\nstdout:\n"
                              << r.out << (node_ ? "\nnode:\n" + node_->Stderr() : "")
                              << (nginx_ ? "\nnginx:\n" + nginx_->ErrorLog() : "");
  }

  std::unique_ptr<HubServer> upstream_;
  std::unique_ptr<BackgroundProcess> node_;
  int runs_ = 0;
};

TEST_P(HubNodeJsTest, AModelAndADatasetMirroredFromAHub) {
  const std::map<std::string, std::string> model = {{"config.json", "{\"layers\": 2}"},
                                                    {"tokenizer.json", "{\"vocab\": 32000}"},
                                                    {"model.safetensors", RandomBytes(3 << 20, 1)},
                                                    {"sub/dir/notes.md", "# notes\n"}};
  std::map<std::string, HubServer::File> upload;
  for (const auto& [p, c] : model) upload[p] = {c, p == "model.safetensors"};
  const std::string sha = upstream_->Commit(kRepo, RepoType::kModel, "main", upload, "model");
  const std::map<std::string, std::string> data = {{"data/train.parquet", RandomBytes(200000, 2)},
                                                   {"README.md", "# data\n"}};
  upstream_->Commit("acme/corpus", RepoType::kDataset, "main",
                    {{"data/train.parquet", {data.at("data/train.parquet"), true}},
                     {"README.md", {"# data\n", false}}},
                    "data");
  const std::string url =
      SyncAndServe("[[repo]]\nname = \"" + std::string(kRepo) + "\"\nhub = \"" + upstream_->url() +
                   "\"\n[[repo]]\nname = \"acme/corpus\"\nhub = \"" + upstream_->url() +
                   "\"\ntype = \"dataset\"\n");

  HubJsCheck c = Check(url, kRepo, RepoType::kModel, model);
  c.sha = sha;  // a node mirroring a hub keeps the hub's commit ids
  ExpectPasses(c);
  // The same revision asked for by its sha.
  c = Check(url, kRepo, RepoType::kModel, model);
  c.revision = sha;
  ExpectPasses(c);
  ExpectPasses(Check(url, "acme/corpus", RepoType::kDataset, data));
}

TEST_P(HubNodeJsTest, AModelFromAPublishRootWithALargeAndAnEmptyFile) {
  const std::map<std::string, std::string> files = {
      {"config.json", "{\"layers\": 2}"},
      {"model.safetensors", RandomBytes(static_cast<size_t>(kHubLfsMinBytes) + 4096, 3)},
      {"empty/__init__.py", ""},
      {"name with spaces.txt", "spaced"}};
  for (const auto& [p, c] : files) WriteFile(model_ + "/" + p, c);
  Publish();
  const std::string url = SyncAndServe("[[repo]]\nname = \"" + std::string(kRepo) +
                                       "\"\nsources = [\"file://" + pub_ + "\"]\n");
  ExpectPasses(Check(url, kRepo, RepoType::kModel, files));
}

INSTANTIATE_TEST_SUITE_P(BuiltinAndNginx, HubNodeJsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "Nginx" : "BuiltinServer");
                         });

}  // namespace
}  // namespace sync_agent::testing
