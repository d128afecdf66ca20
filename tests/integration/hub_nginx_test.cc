// The production setup of a node that speaks the Hub API: nginx with the
// shipped scripts/nginx-hub.conf.example in front of `sync-agent serve
// --config --x-accel-redirect`, through the real binary and a real nginx.
// nginx sends the bodies (sendfile) with the metadata sync-agent answered.
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/http/http_client.h"
#include "common/sync/hub_ids.h"
#include "tests/support/agent_fixture.h"

namespace sync_agent::testing {
namespace {

class HubNginxTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
  }
  // Syncs the model, starts the node's Hub API and nginx in front of it.
  void Start() {
    Publish();
    WriteConfig({"file://" + pub_});
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int port = FreeLoopbackPort();
    node_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{
        AgentBinary(), "serve", "--config", config_, "--listen",
        "127.0.0.1:" + std::to_string(port), "--x-accel-redirect", "/_sync_agent_files/"});
    ASSERT_TRUE(WaitForPort(port)) << node_->Stderr();
    ASSERT_FALSE(StartHubNginx(port).empty());
  }
  HttpResponse Send(const std::string& path, bool head = false, const std::string& range = "",
                    std::string* body = nullptr) {
    HttpRequest req;
    req.url = nginx_->url() + path;
    req.head = head;
    if (!range.empty()) req.headers.push_back({"Range", range});
    std::string got;
    auto r = client_.Send(req, [&](const char* d, size_t n) {
      got.append(d, n);
      return Status::OK();
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (body != nullptr) *body = got;
    return r.ok() ? *r : HttpResponse{};
  }
  static std::string H(const HttpResponse& r, const std::string& name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? "" : it->second;
  }

  std::unique_ptr<BackgroundProcess> node_;
  HttpClient client_;
};

TEST_F(HubNginxTest, NginxSendsTheBodiesWithTheNodesHeaders) {
  const std::string weights = RandomBytes(static_cast<size_t>(kHubLfsMinBytes) + 1000, 1);
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  WriteFile(model_ + "/model.safetensors", weights);
  WriteFile(model_ + "/sub dir/a b.txt", "spaced");
  ASSERT_NO_FATAL_FAILURE(Start());

  HttpResponse info = Send("/api/models/" + std::string(kRepo));
  std::string body;
  info = Send("/api/models/" + std::string(kRepo), false, "", &body);
  ASSERT_EQ(info.status, 200) << body << nginx_->ErrorLog();
  const std::string sha = body.substr(body.find("\"sha\":\"") + 7, 40);

  HttpResponse head = Send("/" + std::string(kRepo) + "/resolve/main/config.json", true);
  EXPECT_EQ(head.status, 200) << nginx_->ErrorLog();
  EXPECT_EQ(H(head, "x-repo-commit"), sha);
  EXPECT_EQ(H(head, "etag"), "\"" + GitBlobId("{\"layers\": 2}") + "\"");
  EXPECT_EQ(H(head, "x-linked-size"), "13");
  EXPECT_EQ(head.content_length.value_or(0), 13u);
  for (const auto& [k, v] : head.headers) EXPECT_EQ(k.rfind("x-xet", 0), std::string::npos) << k;

  // What @huggingface/hub asks first: one byte, for the size in Content-Range.
  HttpResponse one =
      Send("/" + std::string(kRepo) + "/resolve/main/model.safetensors", false, "bytes=0-0", &body);
  EXPECT_EQ(one.status, 206);
  EXPECT_EQ(H(one, "content-range"), "bytes 0-0/" + std::to_string(weights.size()));
  EXPECT_EQ(H(one, "etag"), "\"" + Sha256Hex(weights) + "\"");
  EXPECT_EQ(body, weights.substr(0, 1));
  HttpResponse whole =
      Send("/" + std::string(kRepo) + "/resolve/" + sha + "/model.safetensors", false, "", &body);
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(body == weights);
  HttpResponse spaced =
      Send("/" + std::string(kRepo) + "/resolve/main/sub%20dir/a%20b.txt", false, "", &body);
  EXPECT_EQ(spaced.status, 200) << nginx_->ErrorLog();
  EXPECT_EQ(body, "spaced");

  HttpResponse missing = Send("/" + std::string(kRepo) + "/resolve/main/nope.json");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(H(missing, "x-error-code"), "EntryNotFound");
  // The internal location cannot be asked for directly, nor the bookkeeping.
  EXPECT_EQ(Send("/_sync_agent_files/.sync-agent/trees/").status, 404);
  EXPECT_EQ(Send("/.sync-agent/trees/").status, 404);
  // The plain tree still works.
  Send("/" + std::string(kRepo) + "/config.json", false, "", &body);
  EXPECT_EQ(body, "{\"layers\": 2}");
}

}  // namespace
}  // namespace sync_agent::testing
