// Following whole organisations ([[repo]] name = "ORG/*") through the real
// sync-agent binary: against HubServer (tests/support/hub_server.h), which
// lists GET /api/models?author= in pages with Link rel="next" as
// huggingface.co does, and against publish roots whose ORG/index.json
// `sync-agent publish` writes, served by nginx or read through file://.
// Repositories added upstream are mirrored in the same pass; removed ones
// are kept and marked until prune_missing removes them, and then only
// their own objects go. A failed discovery changes nothing.
#include <gmock/gmock.h>
#include <unistd.h>

#include <algorithm>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/hub_server.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class OrgFollowTest : public AgentFixture {
 protected:
  std::string Top(const std::string& extra = "") const {
    return "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
           "\"\ninterval = \"1m\"\nretry_attempts = 1\n" + extra + "\n";
  }
  std::string ObjectPath(const std::string& content) const {
    const std::string sha = Sha256Hex(content);
    return state_ + "/objects/" + sha.substr(0, 2) + "/" + sha;
  }
  std::string ServedFile(const std::string& repo, const std::string& path) const {
    return ReadFile(mirror_ + "/" + repo + "/" + path);
  }
  bool IsServed(const std::string& repo) const { return PathExists(mirror_ + "/" + repo); }
  // The trees kept for repo under the mirror root.
  bool HasTrees(const std::string& repo) const {
    return PathExists(mirror_ + "/.sync-agent/trees/" + repo);
  }
};

// ---------------------------------------------------------------- a hub

class HubOrgFollowTest : public OrgFollowTest {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) {
      GTEST_SKIP() << "cannot listen on 127.0.0.2 for the test CDN: " << why;
    }
    HubServer::Options o;
    o.list_page_size = 2;  // 5+ repositories of acme: at least 3 pages
    hub_ = std::make_unique<HubServer>(o);
  }
  void CommitRepo(const std::string& repo) {
    hub_->Commit(repo, RepoType::kModel, "main",
                 {{"README.md", {"# " + repo + "\n", false}},
                  {"shared.safetensors", {shared_, true}},
                  {"own.safetensors", {Own(repo), true}}},
                 "init");
  }
  std::string Own(const std::string& repo) const { return "weights of " + repo + "\n"; }
  void WriteOrgConfig(const std::string& table_extra = "", const std::string& top_extra = "") {
    WriteFile(config_, Top(top_extra) + "[[repo]]\nname = \"acme/*\"\nhub = \"" + hub_->url() +
                           "\"\nexclude = [\"tmp-*\"]\n" + table_extra);
  }
  size_t ListingRequests() const {
    auto all = hub_->requests();
    return static_cast<size_t>(std::count_if(all.begin(), all.end(), [](const auto& r) {
      return r.target.rfind("/api/models?author=acme", 0) == 0 && r.status == 200;
    }));
  }

  std::unique_ptr<HubServer> hub_;
  const std::string shared_ = RandomBytes(64 << 10, 7);
};

TEST_F(HubOrgFollowTest, FollowsTheOrganisationAcrossPagesAsItChanges) {
  for (const char* r : {"acme/a", "acme/b", "acme/c", "acme/d", "acme/e", "acme/tmp-1", "beta/x"}) {
    CommitRepo(r);
  }
  WriteOrgConfig();
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(ListingRequests(), 3u) << "the listing was not followed over its pages";
  for (const char* repo : {"acme/a", "acme/b", "acme/c", "acme/d", "acme/e"}) {
    EXPECT_EQ(ServedFile(repo, "own.safetensors"), Own(repo)) << repo;
    EXPECT_EQ(ServedFile(repo, "shared.safetensors"), shared_) << repo;
  }
  EXPECT_FALSE(IsServed("acme/tmp-1")) << "exclude = [\"tmp-*\"] was not applied";
  EXPECT_FALSE(IsServed("beta/x")) << "another organisation was followed";
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, HasSubstr("acme/c: ok\n  followed by:     acme/*\n"));
  EXPECT_THAT(st.out, HasSubstr("organisation acme/*: ok\n"));
  EXPECT_THAT(st.out, HasSubstr("  follows:         5 repositories\n"));

  // Upstream: f appears, b and c disappear. f is mirrored in the same pass;
  // b and c are kept, served and marked.
  CommitRepo("acme/f");
  hub_->DeleteRepo("acme/b", RepoType::kModel);
  hub_->DeleteRepo("acme/c", RepoType::kModel);
  hub_->ClearRequests();
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedFile("acme/f", "own.safetensors"), Own("acme/f"));
  EXPECT_EQ(ServedFile("acme/b", "own.safetensors"), Own("acme/b"));
  auto polled = hub_->requests();
  EXPECT_TRUE(std::none_of(polled.begin(), polled.end(), [](const auto& q) {
    return q.target.find("/api/models/acme/b/") != std::string::npos;
  })) << "a repository missing upstream was polled";
  st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, HasSubstr("acme/b: ok (missing upstream)\n  followed by:     acme/*\n"
                                "  upstream:        missing upstream since "));
  EXPECT_THAT(st.out, HasSubstr("; kept, set prune_missing = true to remove it\n"));
  EXPECT_THAT(st.out, HasSubstr("  follows:         6 repositories, 2 missing upstream\n"));
  ProcessResult js = Status({"--json"});
  EXPECT_THAT(js.out, HasSubstr("{\"name\":\"acme/f\",\"configured\":true"));
  EXPECT_THAT(js.out, HasSubstr("\"followed_by\":\"acme/*\",\"missing_upstream_since\":\"20"));
  EXPECT_THAT(js.out, HasSubstr("\"followed\":6,\"missing\":2,\"failing\":false"));

  // c comes back: its mark is cleared and it is polled again.
  CommitRepo("acme/c");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  st = Status();
  EXPECT_THAT(st.out, Not(HasSubstr("acme/c: ok (missing upstream)")));
  EXPECT_THAT(st.out, HasSubstr("  follows:         6 repositories, 1 missing upstream\n"));

  // prune_missing: b goes (link, trees, rows, its own object); what the
  // others list stays.
  ASSERT_TRUE(PathExists(ObjectPath(Own("acme/b"))));
  WriteOrgConfig("prune_missing = true\n");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(IsServed("acme/b"));
  EXPECT_FALSE(HasTrees("acme/b"));
  EXPECT_FALSE(PathExists(ObjectPath(Own("acme/b")))) << "b's own object was not collected";
  EXPECT_TRUE(PathExists(ObjectPath(shared_))) << "an object other repositories list was removed";
  EXPECT_TRUE(PathExists(ObjectPath(Own("acme/a"))));
  EXPECT_EQ(ServedFile("acme/a", "shared.safetensors"), shared_);
  EXPECT_EQ(ServedFile("acme/c", "own.safetensors"), Own("acme/c"));
  st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, Not(HasSubstr("acme/b:")));
  EXPECT_THAT(st.out, HasSubstr("  follows:         5 repositories (prune_missing"));
}

TEST_F(HubOrgFollowTest, IncludeExcludeAndAnExplicitTableThatWins) {
  for (const char* r : {"acme/llm-7b", "acme/llm-7b-old", "acme/tok", "acme/other"}) CommitRepo(r);
  WriteFile(config_, Top() + "[[repo]]\nname = \"acme/*\"\nhub = \"" + hub_->url() +
                         "\"\ninclude = [\"llm-*\", \"acme/tok\"]\nexclude = [\"*-old\"]\n"
                         "exclude_files = [\"own.*\"]\n"
                         "[[repo]]\nname = \"acme/tok\"\nhub = \"" +
                         hub_->url() + "\"\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(IsServed("acme/llm-7b"));
  EXPECT_FALSE(IsServed("acme/llm-7b-old"));
  EXPECT_FALSE(IsServed("acme/other"));
  // exclude_files applies to the followed repository, not to the explicit one.
  EXPECT_EQ(ServedFile("acme/llm-7b", "own.safetensors"), "");
  EXPECT_EQ(ServedFile("acme/llm-7b", "shared.safetensors"), shared_);
  EXPECT_EQ(ServedFile("acme/tok", "own.safetensors"), Own("acme/tok"));
  ProcessResult st = Status();
  EXPECT_THAT(st.out, HasSubstr("acme/llm-7b: ok\n  followed by:     acme/*\n"));
  EXPECT_THAT(st.out, HasSubstr("acme/tok: ok\n  active revision:")) << "explicit table lost";
  EXPECT_THAT(st.out, HasSubstr("  follows:         1 repositories\n"));
}

TEST_F(HubOrgFollowTest, AHubThatIsDownChangesNothingAndSaysSo) {
  for (const char* r : {"acme/a", "acme/b", "acme/c"}) CommitRepo(r);
  WriteOrgConfig();
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string url = hub_->url();
  hub_.reset();  // the hub is down
  r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("could not list the repositories of an organisation"));
  for (const char* repo : {"acme/a", "acme/b", "acme/c"}) {
    EXPECT_EQ(ServedFile(repo, "own.safetensors"), Own(repo)) << repo;
  }
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_THAT(st.out, HasSubstr("organisation acme/*: DISCOVERY FAILING\n"));
  EXPECT_THAT(st.out, HasSubstr("  problem:         discovery failed: "));
  EXPECT_THAT(st.out, HasSubstr(url + "/api/models?author=acme"));
  EXPECT_THAT(st.out, HasSubstr("the repositories already followed are kept"));
  EXPECT_THAT(st.out, Not(HasSubstr("missing upstream")));
  EXPECT_THAT(st.out, HasSubstr("  follows:         3 repositories\n"));
  ProcessResult js = Status({"--json"});
  EXPECT_THAT(js.out, HasSubstr("\"failing\":true"));
  EXPECT_THAT(js.out, HasSubstr("\"healthy\":false"));
}

// ---------------------------------------------------------------- publish roots

class PublishOrgFollowTest : public OrgFollowTest {
 protected:
  void PublishRepo(const std::string& repo, const std::string& own) {
    const std::string dir = tmp_.Sub("in/" + repo);
    WriteFile(dir + "/shared.bin", shared_);
    WriteFile(dir + "/own.bin", own);
    ProcessResult r = RunAgent({"publish", dir, "--repo", repo, "--out", pub_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void WriteOrgConfig(const std::string& source, const std::string& table_extra = "") {
    WriteFile(config_, Top() + "[[repo]]\nname = \"acme/*\"\nsources = [\"" + source + "\"]\n" +
                           table_extra);
  }
  const std::string shared_ = RandomBytes(32 << 10, 3);
};

TEST_F(PublishOrgFollowTest, FollowsTheIndexThatPublishWritesThroughNginx) {
  PublishRepo("acme/one", "one\n");
  PublishRepo("acme/two", "two\n");
  const std::string url = StartNginx();
  ASSERT_FALSE(url.empty());
  WriteOrgConfig(url);
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedFile("acme/one", "own.bin"), "one\n");
  EXPECT_EQ(ServedFile("acme/two", "own.bin"), "two\n");

  // A new repository is mirrored in the next pass.
  PublishRepo("acme/three", "three\n");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedFile("acme/three", "own.bin"), "three\n");

  // two leaves the origin; the next publish rewrites the index without it.
  ASSERT_TRUE(RemoveTree(Env::Default(), pub_ + "/acme/two").ok());
  PublishRepo("acme/one", "one, again\n");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedFile("acme/one", "own.bin"), "one, again\n");
  EXPECT_EQ(ServedFile("acme/two", "own.bin"), "two\n") << "a missing repository was not kept";
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, HasSubstr("acme/two: ok (missing upstream)"));
  EXPECT_THAT(st.out, HasSubstr("kept, set prune_missing = true to remove it"));

  WriteOrgConfig(url, "prune_missing = true\n");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(IsServed("acme/two"));
  EXPECT_FALSE(HasTrees("acme/two"));
  EXPECT_FALSE(PathExists(ObjectPath("two\n")));
  EXPECT_TRUE(PathExists(ObjectPath(shared_))) << "an object other repositories list was removed";
  EXPECT_EQ(ServedFile("acme/three", "shared.bin"), shared_);
}

TEST_F(PublishOrgFollowTest, ABadOrMissingIndexChangesNothingAndSaysSo) {
  PublishRepo("acme/one", "one\n");
  PublishRepo("acme/two", "two\n");
  WriteOrgConfig("file://" + pub_);
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string index = pub_ + "/acme/index.json";

  WriteFile(index, "{\"format\": 1, \"org\": \"acme\", \"repos\": [{\"name\": ");
  r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(ServedFile("acme/one", "own.bin"), "one\n");
  EXPECT_EQ(ServedFile("acme/two", "own.bin"), "two\n");
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_THAT(st.out, HasSubstr("organisation acme/*: DISCOVERY FAILING"));
  EXPECT_THAT(st.out, HasSubstr("organisation index " + index));
  EXPECT_THAT(st.out, HasSubstr("not valid JSON"));
  EXPECT_THAT(st.out, Not(HasSubstr("missing upstream")));

  ASSERT_EQ(::unlink(index.c_str()), 0);
  r = Once();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  st = Status();
  EXPECT_THAT(st.out, HasSubstr("does not exist; publish a repository of acme with this "
                                "sync-agent (`sync-agent publish` writes acme/index.json)"));
  EXPECT_EQ(ServedFile("acme/two", "own.bin"), "two\n");

  // Once the index is back, all is well again.
  PublishRepo("acme/one", "one\n");
  r = Once();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, HasSubstr("organisation acme/*: ok"));
}

TEST_F(PublishOrgFollowTest, BeforeTheFirstPassTheOrganisationIsNotHealthy) {
  WriteOrgConfig("file://" + pub_);
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_THAT(st.out, HasSubstr("organisation acme/*: NEVER DISCOVERED\n"));
  EXPECT_THAT(st.out, HasSubstr("never (the next sync lists the organisation)"));
}

TEST_F(PublishOrgFollowTest, ConfigMistakesAreUsageErrors) {
  WriteFile(config_, Top() + "[[repo]]\nname = \"acme/llm*\"\nsources = [\"file://" + pub_ +
                         "\"]\n[[repo]]\nname = \"acme/*\"\ngit = \"file://" + pub_ + "\"\n");
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 2) << r.err;  // kExitUsage
  EXPECT_THAT(r.err, HasSubstr("only \"acme/*\" is a glob name"));
  EXPECT_THAT(r.err, HasSubstr("a git source cannot list an organisation's repositories"));
}

}  // namespace
}  // namespace sync_agent::testing
