// A node mirroring straight from a Hugging Face-compatible hub ([[repo]]
// hub/ref/type), through the real sync-agent binary, against HubServer
// (tests/support/hub_server.h), which follows huggingface.co's documented
// behaviour: paginated trees, large files redirected to a CDN on another
// loopback address, gated and private repositories, 429 with Retry-After.
// A no-change poll makes no file request, an update fetches only the changed
// files, the token never reaches the CDN, and wrong bytes are never served.
#include <algorithm>

#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/hub_server.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

constexpr const char* kNoRetries = "retry_attempts = 1\n";

class HubSyncTest : public AgentFixture {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) {
      GTEST_SKIP() << "cannot listen on 127.0.0.2 for the test CDN: " << why;
    }
    HubServer::Options o;
    o.tree_page_size = 2;  // every listing takes several pages
    hub_ = std::make_unique<HubServer>(o);
  }

  void WriteHubConfig(const std::string& repo_extra = "", const std::string& top_extra = "") {
    WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                           "\"\ninterval = \"1m\"\n" + top_extra + "\n[[repo]]\nname = \"" + kRepo +
                           "\"\nhub = \"" + hub_->url() + "\"\n" + repo_extra);
  }

  std::string CommitFiles(const std::map<std::string, HubServer::File>& files) {
    files_.clear();
    for (const auto& [path, f] : files) files_[path] = f.content;
    return hub_->Commit(kRepo, RepoType::kModel, "main", files, "commit");
  }

  // The served tree holds exactly the last commit's files.
  void ExpectServedIsLastCommit() {
    for (const auto& [path, content] : files_) {
      EXPECT_TRUE(ReadFile(Served() + "/" + path) == content) << path;
    }
    EXPECT_EQ(DiffAgainstFiles(), "");
  }
  std::string DiffAgainstFiles() {
    TempDir expected;
    for (const auto& [path, content] : files_) WriteFile(expected.Sub(path), content);
    return DiffTrees(expected.path(), Served());
  }

  std::vector<HubServer::Request> On(const std::string& listener) const {
    std::vector<HubServer::Request> out;
    for (const auto& r : hub_->requests()) {
      if (r.listener == listener) out.push_back(r);
    }
    return out;
  }
  // Whether some request's target contains s.
  bool Requested(const std::string& s) const {
    auto all = hub_->requests();
    return std::any_of(all.begin(), all.end(), [&](const HubServer::Request& r) {
      return r.target.find(s) != std::string::npos;
    });
  }

  std::unique_ptr<HubServer> hub_;
  std::map<std::string, std::string> files_;
};

TEST_F(HubSyncTest, FirstSyncThenNoChangePollThenOnlyTheChangedFiles) {
  const std::string weights = RandomBytes(3 << 20, 1);
  const std::string c1 = CommitFiles({{"config.json", {"{\"layers\": 2}", false}},
                                      {"tokenizer.json", {"{\"vocab\": 32000}", false}},
                                      {"sub/dir/notes.md", {"# notes\n", false}},
                                      {"model.safetensors", {weights, true}}});
  WriteHubConfig();
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectServedIsLastCommit();
  // The LFS file came from the CDN after a redirect; the tree took pages.
  EXPECT_TRUE(Requested("/repos/")) << "no CDN request";
  EXPECT_TRUE(Requested("cursor=")) << "the tree was not paginated";

  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("hub:             " + hub_->url() + " ref main type model"),
            std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("active revision: " + c1), std::string::npos) << st.out;

  // No change: one revision request, nothing else.
  hub_->ClearRequests();
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto requests = hub_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, std::string("/api/models/") + kRepo + "/revision/main");

  // A commit that changes one regular file and the weights: only those move.
  const std::string weights2 = RandomBytes(3 << 20, 2);
  hub_->ClearRequests();
  const std::string c2 = CommitFiles({{"config.json", {"{\"layers\": 3}", false}},
                                      {"tokenizer.json", {"{\"vocab\": 32000}", false}},
                                      {"sub/dir/notes.md", {"# notes\n", false}},
                                      {"model.safetensors", {weights2, true}}});
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c2);
  ExpectServedIsLastCommit();
  EXPECT_TRUE(Requested("/resolve/" + c2 + "/config.json"));
  EXPECT_TRUE(Requested("/resolve/" + c2 + "/model.safetensors"));
  EXPECT_FALSE(Requested("tokenizer.json")) << "an unchanged file was fetched again";
  EXPECT_FALSE(Requested("notes.md")) << "an unchanged file was fetched again";
  EXPECT_FALSE(Requested(Sha256Hex(weights))) << "old weights were fetched again";
}

TEST_F(HubSyncTest, LargeFilesComeInChunksFromTheCdnAndTheTokenNeverGoesThere) {
  const std::string weights = RandomBytes(24 << 20, 3);
  const std::string c1 = CommitFiles(
      {{"config.json", {"{}", false}}, {"model-00001-of-00001.safetensors", {weights, true}}});
  hub_->SetPrivate(kRepo, RepoType::kModel, "hf_secret");
  WriteHubConfig("token = \"hf_secret\"\n", "connections_per_file = 4\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  ExpectServedIsLastCommit();

  auto cdn = On("cdn");
  ASSERT_GE(cdn.size(), 2u) << "the large file was not fetched in chunks";
  for (const auto& req : cdn) {
    EXPECT_EQ(req.authorization, "") << "token sent to the CDN: " << req.target;
    EXPECT_NE(req.range, "") << "a CDN request without a range: " << req.target;
  }
  for (const auto& req : On("hub")) EXPECT_EQ(req.authorization, "Bearer hf_secret") << req.target;
  // The redirect is resolved once per file and connection, not per chunk.
  size_t resolves = 0;
  for (const auto& req : On("hub")) resolves += req.target.find("/resolve/") != std::string::npos;
  EXPECT_LT(resolves, cdn.size());
}

TEST_F(HubSyncTest, GatedAndPrivateRepositoriesSayWhatToDo) {
  CommitFiles(
      {{"config.json", {"{}", false}}, {"model.safetensors", {RandomBytes(1000, 4), true}}});
  hub_->SetGated(kRepo, RepoType::kModel, "hf_granted");
  WriteHubConfig("", kNoRetries);
  ProcessResult r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("gated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("token_file"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), "");

  // With a token that was not granted access: 403, the same advice.
  WriteHubConfig("token = \"hf_other\"\n", kNoRetries);
  r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("GatedRepo"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("403"), std::string::npos) << r.err;

  // The granted token works.
  WriteHubConfig("token = \"hf_granted\"\n", kNoRetries);
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectServedIsLastCommit();

  // A repository that is not there (or private without the token).
  WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                         "\"\nretry_attempts = 1\n[[repo]]\nname = \"acme/nothing\"\nhub = \"" +
                         hub_->url() + "\"\n");
  r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("RepoNotFound"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("check name, type and token"), std::string::npos) << r.err;
}

TEST_F(HubSyncTest, AMissingRefIsRevisionNotFound) {
  CommitFiles({{"config.json", {"{}", false}}});
  WriteHubConfig("ref = \"v9\"\n", kNoRetries);
  ProcessResult r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("RevisionNotFound"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("check ref"), std::string::npos) << r.err;
}

TEST_F(HubSyncTest, RateLimitsAreWaitedOutAsRetryAfterSays) {
  const std::string c1 = CommitFiles({{"config.json", {"{}", false}}});
  hub_->RateLimitNext(2, 1);
  hub_->ServiceUnavailableNext(1, 1);
  WriteHubConfig("", kNoRetries);
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  EXPECT_NE(r.err.find("the hub asks to wait"), std::string::npos) << r.err;
  size_t limited = 0;
  for (const auto& req : hub_->requests()) limited += req.status == 429 || req.status == 503;
  EXPECT_EQ(limited, 3u);
}

TEST_F(HubSyncTest, WrongBytesAreNeverServed) {
  const std::string weights = RandomBytes(2 << 20, 5);
  const std::string c1 =
      CommitFiles({{"config.json", {"{\"a\": 1}", false}}, {"model.safetensors", {weights, true}}});
  WriteHubConfig("", kNoRetries);
  ASSERT_EQ(Once().exit_code, 0);
  // The next commit's LFS file arrives wrong from the CDN.
  const std::string weights2 = RandomBytes(2 << 20, 6);
  CommitFiles({{"config.json", {"{\"a\": 1}", false}}, {"model.safetensors", {weights2, true}}});
  hub_->ServeWrongBytes(Sha256Hex(weights2));
  ProcessResult r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("sha256"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  EXPECT_TRUE(ReadFile(Served() + "/model.safetensors") == weights);

  // A regular file whose bytes are not its blob.
  CommitFiles({{"config.json", {"{\"a\": 2}", false}}, {"model.safetensors", {weights, true}}});
  hub_->ServeWrongBytes("config.json");
  r = Once();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("git blob id"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"a\": 1}");
}

TEST_F(HubSyncTest, IncludeAndExcludePickFiles) {
  const std::string c1 = CommitFiles({{"config.json", {"{}", false}},
                                      {"model.safetensors", {RandomBytes(5000, 7), true}},
                                      {"model.bin", {RandomBytes(5000, 8), true}},
                                      {"onnx/model.onnx", {RandomBytes(5000, 9), true}}});
  WriteHubConfig("include = [\"*.json\", \"*.safetensors\", \"onnx/*\"]\nexclude = [\"onnx/*\"]\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), c1);
  files_.erase("model.bin");
  files_.erase("onnx/model.onnx");
  ExpectServedIsLastCommit();
  EXPECT_FALSE(Requested("model.bin"));
}

TEST_F(HubSyncTest, ADatasetIsServedUnderDatasetsBesideAModelOfTheSameName) {
  const std::string model_rev = CommitFiles({{"config.json", {"{\"model\": true}", false}}});
  const std::string data = RandomBytes(100000, 10);
  const std::string data_rev = hub_->Commit(
      kRepo, RepoType::kDataset, "main",
      {{"data/train.parquet", {data, true}}, {"README.md", {"# data\n", false}}}, "data");
  WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                         "\"\n[[repo]]\nname = \"" + kRepo + "\"\nhub = \"" + hub_->url() +
                         "\"\n[[repo]]\nname = \"" + kRepo + "\"\nhub = \"" + hub_->url() +
                         "\"\ntype = \"dataset\"\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), model_rev);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"model\": true}");
  const std::string dataset = mirror_ + "/datasets/" + kRepo;
  EXPECT_TRUE(ReadFile(dataset + "/data/train.parquet") == data);
  EXPECT_EQ(ReadFile(dataset + "/README.md"), "# data\n");
  EXPECT_TRUE(Requested("/api/datasets/" + std::string(kRepo) + "/revision/main"));
  ProcessResult st = Status();
  EXPECT_NE(st.out.find("datasets/" + std::string(kRepo) + ": "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("active revision: " + data_rev), std::string::npos) << st.out;
  // The same again: both unchanged.
  ASSERT_EQ(Once().exit_code, 0);
  EXPECT_EQ(ServedRevision(), model_rev);
}

}  // namespace
}  // namespace sync_agent::testing
