// The real @huggingface/hub npm client (tests/js/hub_client_check.mjs)
// against HubServer, which answers as huggingface.co does: repository info,
// paginated recursive trees, paths-info, resolve with a 302 to a CDN on
// another host for LFS files, 404 EntryNotFound for a missing path. This
// holds the test client to the Hub's behaviour before it is pointed at the
// node's own Hub API; the last test shows it catches wrong bytes.
#include "tests/support/hub_js_client.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/hub_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

constexpr const char* kCdnHost = "127.0.0.2";

class HubJsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubJsClientAvailable(&why)) GTEST_SKIP() << why;
    if (!HubServer::CanListenOn(kCdnHost, &why)) {
      GTEST_SKIP() << "cannot listen on " << kCdnHost << " for the test CDN: " << why;
    }
  }

  void StartHub(bool regular_files_via_resolve_cache = false) {
    HubServer::Options o;
    o.cdn_host = kCdnHost;
    o.tree_page_size = 2;  // every listing takes several pages
    o.regular_files_via_resolve_cache = regular_files_via_resolve_cache;
    hub_ = std::make_unique<HubServer>(o);
  }

  HubJsCheck CheckOf(const std::string& repo, RepoType type,
                     const std::map<std::string, HubServer::File>& files) {
    HubJsCheck check;
    check.hub_url = hub_->url();
    check.repo = repo;
    check.type = type;
    check.cache_dir = tmp_.Sub("hf-cache");
    for (const auto& [path, file] : files) check.files[path] = file.content;
    return check;
  }

  static void ExpectPasses(const ProcessResult& r) {
    EXPECT_EQ(r.exit_code, 0) << "stderr:\n" << r.err << "\nstdout:\n" << r.out;
  }

  std::vector<HubServer::Request> On(const std::string& listener) const {
    std::vector<HubServer::Request> out;
    for (const auto& r : hub_->requests()) {
      if (r.listener == listener) out.push_back(r);
    }
    return out;
  }

  TempDir tmp_;
  std::unique_ptr<HubServer> hub_;
};

TEST_F(HubJsClientTest, ModelAtItsDefaultRevisionWithRegularAndLfsFiles) {
  StartHub();
  const std::map<std::string, HubServer::File> files = {
      {"config.json", {"{\"layers\": 2}\n", false}},
      {"sub/dir/tokenizer.json", {"{\"vocab\": 32000}", false}},
      {"model.safetensors", {RandomBytes(3 << 20, 1), true}},
  };
  const std::string sha = hub_->Commit("org/model", RepoType::kModel, "main", files, "first");
  HubJsCheck check = CheckOf("org/model", RepoType::kModel, files);
  check.sha = sha;
  check.missing = {"nope.bin", "sub/nope.json"};
  ExpectPasses(RunHubJsClient(check));
  // The large file came from the CDN, once per downloadFile and once for the snapshot.
  const auto cdn = On("cdn");
  EXPECT_GE(std::count_if(cdn.begin(), cdn.end(),
                          [](const HubServer::Request& r) { return r.range.empty(); }),
            2);
  EXPECT_TRUE(PathExists(check.cache_dir + "/models--org--model/refs/main"));
}

TEST_F(HubJsClientTest, PrivateModelWithATokenThatNeverReachesTheCdn) {
  StartHub();
  const std::map<std::string, HubServer::File> files = {
      {"README.md", {"# private\n", false}},
      {"weights/part-1.bin", {RandomBytes(1 << 20, 2), true}},
  };
  const std::string sha = hub_->Commit("org/private", RepoType::kModel, "main", files, "first");
  hub_->SetPrivate("org/private", RepoType::kModel, "hf_private_token");
  HubJsCheck check = CheckOf("org/private", RepoType::kModel, files);
  check.revision = "main";
  check.sha = sha;
  check.access_token = "hf_private_token";
  check.missing = {"weights/part-2.bin"};
  ExpectPasses(RunHubJsClient(check));
  const auto hub = On("hub");
  ASSERT_FALSE(hub.empty());
  for (const auto& r : hub) EXPECT_EQ(r.authorization, "Bearer hf_private_token") << r.target;
  const auto cdn = On("cdn");
  EXPECT_FALSE(cdn.empty());
  for (const auto& r : cdn) EXPECT_EQ(r.authorization, "") << r.target;
}

TEST_F(HubJsClientTest, DatasetAtAnOlderCommitAskedForBySha) {
  StartHub();
  const std::map<std::string, HubServer::File> v1 = {
      {"data/train.csv", {"a,b\n1,2\n", false}},
      {"data/train.parquet", {RandomBytes(2 << 20, 3), true}},
      {"README.md", {"# v1\n", false}},
  };
  const std::string sha1 = hub_->Commit("org/data", RepoType::kDataset, "main", v1, "v1");
  std::map<std::string, HubServer::File> v2 = v1;
  v2["data/test.csv"] = {"a,b\n3,4\n", false};
  v2["README.md"] = {"# v2\n", false};
  hub_->Commit("org/data", RepoType::kDataset, "main", v2, "v2");
  HubJsCheck check = CheckOf("org/data", RepoType::kDataset, v1);
  check.revision = sha1;
  check.missing = {"data/test.csv"};
  ExpectPasses(RunHubJsClient(check));
  // Asked for by sha, the cache names no branch.
  EXPECT_FALSE(PathExists(check.cache_dir + "/datasets--org--data/refs"));
}

TEST_F(HubJsClientTest, RegularFilesThroughTheHubsRelativeRedirectToItsResolveCache) {
  StartHub(/*regular_files_via_resolve_cache=*/true);
  const std::map<std::string, HubServer::File> files = {
      {"config.json", {"{\"hidden\": 64}", false}},
      {"model.bin", {RandomBytes(1 << 20, 4), true}},
  };
  hub_->Commit("org/cached", RepoType::kModel, "dev", files, "on dev");
  HubJsCheck check = CheckOf("org/cached", RepoType::kModel, files);
  check.revision = "dev";
  check.sha = hub_->Head("org/cached", RepoType::kModel, "dev");
  ExpectPasses(RunHubJsClient(check));
  const auto hub = On("hub");
  EXPECT_TRUE(std::any_of(hub.begin(), hub.end(), [](const HubServer::Request& r) {
    return r.target.rfind("/api/resolve-cache/models/org/cached/", 0) == 0;
  }));
  EXPECT_EQ(ReadFile(check.cache_dir + "/models--org--cached/refs/dev"), *check.sha);
}

TEST_F(HubJsClientTest, WrongBytesFromTheHubFailTheCheck) {
  StartHub();
  const std::map<std::string, HubServer::File> files = {
      {"config.json", {"{\"layers\": 2}\n", false}},
      {"model.safetensors", {RandomBytes(1 << 20, 5), true}},
  };
  hub_->Commit("org/model", RepoType::kModel, "main", files, "first");
  hub_->ServeWrongBytes("model.safetensors");
  const ProcessResult r = RunHubJsClient(CheckOf("org/model", RepoType::kModel, files));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("FAIL downloadFile/sha256: \"model.safetensors\""), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("FAIL snapshotDownload/sha256: \"model.safetensors\""), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("config.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sync_agent::testing
