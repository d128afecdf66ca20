// HubApi in-process, over a node state built by the real sync engine from a
// published repository (real files, a real SQLite database): every endpoint
// the Hub clients use, the ids they compare (checked against git itself),
// pagination, revision names, and the errors with their X-Error-Code.
#include "common/serve/hub_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "common/db/state_db.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/publish/publisher.h"
#include "common/source/publish_root_source.h"
#include "common/sync/hub_ids.h"
#include "common/sync/sync_engine.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::WriteFile;

constexpr const char* kRepo = "acme/llm-7b";
constexpr const char* kBase = "http://node.example:8080";

class HubApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_.Sub("model");
    pub_ = tmp_.Sub("pub");
    state_ = tmp_.Sub("state");
    mirror_ = tmp_.Sub("mirror");
    testing::MakeDirs(state_);
    weights_ = testing::RandomBytes(static_cast<size_t>(kHubLfsMinBytes) + 5, 1);
    WriteFile(model_ + "/config.json", "{\"hidden\": 4096}");
    WriteFile(model_ + "/model.safetensors", weights_);
    WriteFile(model_ + "/empty.txt", "");
    WriteFile(model_ + "/sub/dir/notes.md", "# notes\n");
    WriteFile(model_ + "/sub/a b.txt", "spaced");
    rev1_ = PublishAndSync();
  }

  std::string PublishAndSync() {
    PublishOptions o;
    o.input_dir = model_;
    o.repo = kRepo;
    o.out_root = pub_;
    auto published = PublishDirectory(Env::Default(), o);
    EXPECT_TRUE(published.ok()) << published.status().ToString();
    auto db = StateDb::Open(state_ + "/state.db");
    EXPECT_TRUE(db.ok());
    SyncEngineOptions so;
    so.state_dir = state_;
    so.mirror_root = mirror_;
    SyncEngine engine(Env::Default(), db->get(), so);
    EXPECT_TRUE(engine.Init().ok());
    RepoConfig repo;
    repo.name = kRepo;
    repo.source = std::make_shared<PublishRootSpec>(std::vector<std::string>{"file://" + pub_});
    RepoSyncResult r = engine.SyncRepo(repo);
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    auto row = (*db)->GetRevision(kRepo, r.to_revision);
    EXPECT_TRUE(row.ok() && row->has_value());
    hub_sha_[r.to_revision] = row.ok() && row->has_value() ? (*row)->hub_sha : "";
    return r.to_revision;
  }

  RoutedResponse Get(const std::string& target, const std::string& method = "GET",
                     const std::string& body = "", const std::string& content_type = "") {
    if (!api_) api_ = std::make_unique<HubApi>(HubApiOptions{state_, mirror_, refs_, accel_, 2, 1});
    RoutedRequest req;
    req.method = method;
    req.target = target;
    req.base_url = kBase;
    req.body = body;
    if (!content_type.empty()) req.headers["content-type"] = content_type;
    auto r = api_->Handle(req);
    EXPECT_TRUE(r.has_value()) << target;
    return r ? *r : RoutedResponse{};
  }
  static std::string Header(const RoutedResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }
  // The blob or tree id git gives path in a checkout of the model.
  std::string GitId(const std::string& path) {
    if (git_.empty()) {
      git_ = tmp_.Sub("git");
      Run({"/bin/cp", "-a", model_, git_});
      Run({"/usr/bin/git", "-C", git_, "init", "-q"});
      Run({"/usr/bin/git", "-C", git_, "add", "-A"});
    }
    auto r = testing::RunProcess({"/usr/bin/git", "-C", git_, "write-tree"});
    std::string tree = r.out.substr(0, 40);
    if (path.empty()) return tree;
    return testing::RunProcess({"/usr/bin/git", "-C", git_, "rev-parse", tree + ":" + path})
        .out.substr(0, 40);
  }
  void Run(const std::vector<std::string>& argv) {
    auto r = testing::RunProcess(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  testing::TempDir tmp_;
  std::string model_, pub_, state_, mirror_, git_, weights_, rev1_;
  std::map<std::string, std::string> hub_sha_;
  std::map<std::string, std::vector<std::string>> refs_;
  std::string accel_;
  std::unique_ptr<HubApi> api_;
};

TEST_F(HubApiTest, RepoInfoNamesTheActiveRevisionAndItsFiles) {
  RoutedResponse r = Get("/api/models/acme/llm-7b");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"id\":\"acme/llm-7b\""));
  EXPECT_THAT(r.body, HasSubstr("\"sha\":\"" + hub_sha_[rev1_] + "\""));
  EXPECT_EQ(hub_sha_[rev1_].size(), 40u);
  EXPECT_THAT(r.body, HasSubstr("{\"rfilename\":\"sub/dir/notes.md\"}"));
  // HEAD is what @huggingface/hub's modelInfo asks for by default.
  RoutedResponse head = Get("/api/models/acme/llm-7b/revision/HEAD?expand=sha");
  EXPECT_EQ(head.body, r.body);
  RoutedResponse blobs = Get("/api/models/acme/llm-7b/revision/main?blobs=true");
  EXPECT_THAT(blobs.body, HasSubstr("\"rfilename\":\"config.json\",\"size\":16,\"blobId\":\"" +
                                    GitBlobId("{\"hidden\": 4096}") + "\""));
  EXPECT_THAT(blobs.body, HasSubstr("\"lfs\":{\"sha256\":\"" + Sha256Hex(weights_) + "\""));
}

TEST_F(HubApiTest, TreeIdsAreGitsAndPagesLinkToTheNode) {
  RoutedResponse page = Get("/api/models/acme/llm-7b/tree/main?recursive=true&expand=false");
  std::string all = page.body;
  int pages = 1;
  while (!Header(page, "Link").empty()) {
    std::string link = Header(page, "Link");
    ASSERT_EQ(link.rfind(std::string("<") + kBase + "/api/models/acme/llm-7b/tree/main?", 0), 0u)
        << link;
    EXPECT_THAT(link, HasSubstr(">; rel=\"next\""));
    std::string next =
        link.substr(1 + std::string(kBase).size(), link.find('>') - 1 - std::string(kBase).size());
    page = Get(next);
    all += page.body;
    ASSERT_LT(++pages, 10);
  }
  EXPECT_EQ(pages, 4);  // 7 entries (5 files, 2 directories), 2 per page
  for (const char* f : {"config.json", "empty.txt", "sub/dir/notes.md", "sub/a b.txt"}) {
    EXPECT_THAT(all, HasSubstr("\"oid\":\"" + GitId(f) + "\"")) << f;
  }
  // Directories carry git's tree ids.
  EXPECT_THAT(all, HasSubstr("{\"type\":\"directory\",\"oid\":\"" + GitId("sub") +
                             "\",\"size\":0,\"path\":\"sub\"}"));
  EXPECT_THAT(all, HasSubstr("\"oid\":\"" + GitId("sub/dir") + "\""));
  // The large file is a Git LFS file: its oid is its pointer's blob.
  EXPECT_THAT(all, HasSubstr("\"oid\":\"" +
                             GitBlobId(LfsPointerText(Sha256Hex(weights_), weights_.size())) +
                             "\",\"size\":" + std::to_string(weights_.size()) +
                             ",\"path\":\"model.safetensors\",\"lfs\":{\"oid\":\"" +
                             Sha256Hex(weights_) + "\""));
  // Not recursive, under a path.
  RoutedResponse sub = Get("/api/models/acme/llm-7b/tree/main/sub");
  EXPECT_THAT(sub.body, HasSubstr("\"path\":\"sub/a b.txt\""));
  EXPECT_THAT(sub.body, HasSubstr("\"path\":\"sub/dir\""));
  EXPECT_THAT(sub.body, Not(HasSubstr("notes.md")));
  RoutedResponse missing = Get("/api/models/acme/llm-7b/tree/main/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Header(missing, "X-Error-Code"), "EntryNotFound");
}

TEST_F(HubApiTest, ResolveSendsTheFileWithTheHeadersClientsRead) {
  RoutedResponse r = Get("/acme/llm-7b/resolve/main/config.json", "HEAD");
  EXPECT_EQ(r.file, mirror_ + "/.sync-agent/trees/acme/llm-7b/" + rev1_ + "/config.json");
  const std::string blob = GitBlobId("{\"hidden\": 4096}");
  EXPECT_EQ(r.etag, "\"" + blob + "\"");
  EXPECT_EQ(Header(r, "X-Linked-Etag"), "\"" + blob + "\"");
  EXPECT_EQ(Header(r, "X-Linked-Size"), "16");
  EXPECT_EQ(Header(r, "X-Repo-Commit"), hub_sha_[rev1_]);
  for (const auto& [k, v] : r.headers) EXPECT_EQ(k.rfind("X-Xet", 0), std::string::npos) << k;

  RoutedResponse lfs = Get("/acme/llm-7b/resolve/main/model.safetensors");
  EXPECT_EQ(lfs.etag, "\"" + Sha256Hex(weights_) + "\"");
  // Encoded paths and revisions, the revision by id and by sha.
  EXPECT_EQ(Get("/acme/llm-7b/resolve/" + rev1_ + "/sub/a%20b.txt").file,
            mirror_ + "/.sync-agent/trees/acme/llm-7b/" + rev1_ + "/sub/a b.txt");
  EXPECT_FALSE(
      Get("/acme/llm-7b/resolve/" + hub_sha_[rev1_] + "/sub%2Fdir%2Fnotes.md").file.empty());
  // An empty file: 200 with a Content-Range of its size, not a 416.
  RoutedResponse empty = Get("/acme/llm-7b/resolve/main/empty.txt");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(Header(empty, "Content-Range"), "bytes */0");
  // raw: an LFS file answers its pointer.
  RoutedResponse raw = Get("/acme/llm-7b/raw/main/model.safetensors");
  EXPECT_EQ(raw.body, LfsPointerText(Sha256Hex(weights_), weights_.size()));
}

TEST_F(HubApiTest, MissingRepositoriesRevisionsAndFilesSayWhichWithHubErrorCodes) {
  RoutedResponse r = Get("/acme/llm-7b/resolve/main/nope.json");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Header(r, "X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(Header(r, "X-Repo-Commit"), hub_sha_[rev1_]);
  r = Get("/acme/llm-7b/resolve/v9/config.json");
  EXPECT_EQ(Header(r, "X-Error-Code"), "RevisionNotFound");
  r = Get("/api/models/acme/other");
  EXPECT_EQ(Header(r, "X-Error-Code"), "RepoNotFound");
  r = Get("/api/datasets/acme/llm-7b");  // a model of that name, no dataset
  EXPECT_EQ(Header(r, "X-Error-Code"), "RepoNotFound");
  // Not the Hub API: the plain tree is served instead.
  RoutedRequest plain;
  plain.method = "GET";
  plain.target = "/acme/llm-7b/config.json";
  EXPECT_FALSE(api_->Handle(plain).has_value());
  r = Get("/acme/llm-7b/resolve/main/../../../etc/passwd");
  EXPECT_EQ(r.status, 400);
}

TEST_F(HubApiTest, PathsInfoTakesJsonAndFormBodies) {
  RoutedResponse j =
      Get("/api/models/acme/llm-7b/paths-info/main", "POST",
          "{\"paths\":[\"config.json\",\"sub\",\"nope\"],\"expand\":true}", "application/json");
  EXPECT_EQ(j.status, 200);
  EXPECT_THAT(j.body, HasSubstr("\"path\":\"config.json\""));
  EXPECT_THAT(j.body, HasSubstr("\"type\":\"directory\""));
  EXPECT_THAT(j.body, HasSubstr("\"lastCommit\":{\"id\":\"" + hub_sha_[rev1_] + "\""));
  EXPECT_THAT(j.body, Not(HasSubstr("nope")));
  RoutedResponse f = Get("/api/models/acme/llm-7b/paths-info/" + hub_sha_[rev1_], "POST",
                         "paths=model.safetensors&paths=empty.txt&expand=False",
                         "application/x-www-form-urlencoded");
  EXPECT_THAT(f.body, HasSubstr("\"path\":\"model.safetensors\",\"lfs\""));
  EXPECT_THAT(f.body, HasSubstr("\"path\":\"empty.txt\""));
  EXPECT_THAT(f.body, Not(HasSubstr("lastCommit")));
  EXPECT_EQ(Get("/api/models/acme/llm-7b/paths-info/main", "POST", "[", "application/json").status,
            400);
}

TEST_F(HubApiTest, RetainedRevisionsByIdAndTheFollowedRefByName) {
  WriteFile(model_ + "/config.json", "{\"hidden\": 8192}");
  const std::string rev2 = PublishAndSync();
  refs_[kRepo] = {"refs/pr/1"};
  // The new revision is main; the old one is still there by id and by sha.
  EXPECT_EQ(Header(Get("/acme/llm-7b/resolve/main/config.json"), "X-Repo-Commit"), hub_sha_[rev2]);
  EXPECT_EQ(
      Header(Get("/acme/llm-7b/resolve/" + hub_sha_[rev1_] + "/config.json"), "X-Repo-Commit"),
      hub_sha_[rev1_]);
  EXPECT_EQ(Get("/acme/llm-7b/resolve/" + rev1_ + "/config.json").etag,
            "\"" + GitBlobId("{\"hidden\": 4096}") + "\"");
  // A configured ref, encoded (resolve) or not (tree).
  EXPECT_EQ(Header(Get("/acme/llm-7b/resolve/refs%2Fpr%2F1/config.json"), "X-Repo-Commit"),
            hub_sha_[rev2]);
  EXPECT_EQ(Get("/api/models/acme/llm-7b/tree/refs/pr/1/sub?recursive=true").status, 200);
}

TEST_F(HubApiTest, WithAccelRedirectNginxSendsTheBody) {
  accel_ = "/_sync_agent_files/";
  RoutedResponse r = Get("/acme/llm-7b/resolve/main/sub/a%20b.txt");
  EXPECT_TRUE(r.file.empty());
  EXPECT_EQ(Header(r, "X-Accel-Redirect"),
            "/_sync_agent_files/.sync-agent/trees/acme/llm-7b/" + rev1_ + "/sub/a%20b.txt");
  EXPECT_EQ(Header(r, "ETag"), "\"" + GitBlobId("spaced") + "\"");
}

}  // namespace
}  // namespace sync_agent
