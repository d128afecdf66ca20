// Listing an organisation's repositories on a hub: HubServer's
// GET /api/{models|datasets}?author= (pages of list_page_size with
// Link rel="next", as huggingface.co answers), HubSpec::ListOrganisation
// over it, and the page parser on its own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/http/http_client.h"
#include "common/hub/hub_json.h"
#include "common/hub/hub_source.h"
#include "tests/support/hub_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::HubServer;
using testing::RepoType;

class HubListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) {
      GTEST_SKIP() << "cannot listen on 127.0.0.2 for the test CDN: " << why;
    }
    HubServer::Options o;
    o.list_page_size = 2;
    hub_ = std::make_unique<HubServer>(o);
    for (const char* r : {"acme/e", "acme/a", "acme/c", "acme/b", "acme/d", "beta/x"}) Add(r);
    hub_->Commit("acme/data", RepoType::kDataset, "main", {{"d.csv", {"1\n", false}}}, "init");
  }
  void Add(const std::string& repo) {
    hub_->Commit(repo, RepoType::kModel, "main", {{"f", {repo, false}}}, "init");
  }
  Result<std::vector<std::string>> List(const std::string& type, size_t max_repos = 100,
                                        const std::string& token = "") {
    HubRepoSettings s;
    s.hub = hub_->url();
    s.type = type;
    SourceOptions o;
    if (!token.empty()) o.authorization = "Bearer " + token;
    return HubSpec(s).ListOrganisation(hub_->url(), "acme", o, max_repos);
  }
  std::unique_ptr<HubServer> hub_;
};

TEST_F(HubListTest, FollowsEveryPageToTheEnd) {
  auto models = List("model");
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  EXPECT_THAT(*models, ElementsAre("acme/a", "acme/b", "acme/c", "acme/d", "acme/e"));
  auto requests = hub_->requests();
  ASSERT_EQ(requests.size(), 3u);  // 2 + 2 + 1
  EXPECT_EQ(requests[0].target, "/api/models?author=acme");
  EXPECT_THAT(requests[1].target, HasSubstr("author=acme&cursor="));
  auto datasets = List("dataset");
  ASSERT_TRUE(datasets.ok()) << datasets.status().ToString();
  EXPECT_THAT(*datasets, ElementsAre("acme/data"));
}

TEST_F(HubListTest, PrivateRepositoriesNeedTheirTokenAndTheCountIsBounded) {
  Add("acme/secret");
  hub_->SetPrivate("acme/secret", RepoType::kModel, "tok");
  auto anonymous = List("model");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(std::count(anonymous->begin(), anonymous->end(), "acme/secret"), 0);
  auto with_token = List("model", 100, "tok");
  ASSERT_TRUE(with_token.ok());
  EXPECT_EQ(std::count(with_token->begin(), with_token->end(), "acme/secret"), 1);
  auto bounded = List("model", 3);
  ASSERT_FALSE(bounded.ok());
  EXPECT_THAT(bounded.status().message(), HasSubstr("lists more than 3 models of acme"));
  EXPECT_THAT(bounded.status().message(), HasSubstr("org_max_repos"));
}

TEST_F(HubListTest, TheHubsLimitParameterCapsTheAnswer) {
  HttpClient client;
  HttpRequest req;
  req.url = hub_->url() + "/api/models?author=acme&limit=3";
  auto got = client.Fetch(req, 1 << 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->first.status, 200);
  EXPECT_EQ(got->first.headers.count("link"), 0u);
  auto ids = ParseHubRepoListPage(got->second, "ctx", req.url);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_THAT(*ids, ElementsAre("acme/a", "acme/b", "acme/c"));
}

TEST(HubRepoListPageTest, ParsesIdsAndRefusesEntriesWithout) {
  auto ids = ParseHubRepoListPage(
      R"([{"_id":"1","id":"acme/a","modelId":"acme/a"},{"_id":"2","modelId":"acme/b"}])", "ctx",
      "http://h/api/models?author=acme");
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_THAT(*ids, ElementsAre("acme/a", "acme/b"));
  auto empty = ParseHubRepoListPage("[]", "ctx", "u");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"{}", "repository list page from u: is not a JSON array"},
      {"[", "repository list page from u: is not valid JSON"},
      {"[1]", "repository list entry 0 from u is not an object"},
      {R"([{"id":"acme/a"},{"_id":"x"}])", "repository list entry 1 from u has no \"id\""},
      {R"([{"id":5}])", "has no \"id\""},
  };
  for (const Case& c : cases) {
    auto r = ParseHubRepoListPage(c.text, "ctx", "u");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_THAT(r.status().ToString(), HasSubstr(c.says)) << c.text;
  }
}

}  // namespace
}  // namespace sync_agent
