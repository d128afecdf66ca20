// The organisation index "<root>/<org>/index.json" (schema/org_index.md):
// written by publish after each pointer (WriteOrgIndex), read by nodes
// that follow "org/*" (ParseOrgIndex). Round trips, what the writer leaves
// out, concurrent publishers, and every kind of bad index.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/manifest/manifest.h"
#include "common/publish/org_index_writer.h"
#include "common/publish/publisher.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBytes = 1 << 20;

Result<OrgIndex> Parse(const std::string& text, size_t max_repos = 100) {
  return ParseOrgIndex(text, "acme", "file:///pub/acme/index.json", max_repos, kBytes);
}

class OrgIndexTest : public ::testing::Test {
 protected:
  Status Publish(const std::string& repo, const std::string& content) {
    testing::WriteFile(tmp_.Sub("in/" + repo + "/f.txt"), content);
    PublishOptions o;
    o.input_dir = tmp_.Sub("in/" + repo);
    o.repo = repo;
    o.out_root = tmp_.Sub("pub");
    return PublishDirectory(Env::Default(), o).status();
  }
  Result<OrgIndex> Written() {
    return ParseOrgIndex(testing::ReadFile(tmp_.Sub("pub/acme/index.json")), "acme", "test", 100,
                         kBytes);
  }
  testing::TempDir tmp_;
};

TEST_F(OrgIndexTest, PublishListsEveryRepositoryWithALatestPointer) {
  ASSERT_TRUE(Publish("acme/b", "b").ok());
  auto index = Written();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->repos, (std::vector<std::string>{"acme/b"}));
  ASSERT_TRUE(Publish("acme/a", "a").ok());
  ASSERT_TRUE(Publish("other/x", "x").ok());  // another organisation has its own index
  // A directory without a pointer, a broken pointer, one naming another
  // repository and a plain file are left out.
  ASSERT_EQ(::mkdir(tmp_.Sub("pub/acme/empty").c_str(), 0755), 0);
  testing::WriteFile(tmp_.Sub("pub/acme/broken/latest"), "{not json");
  testing::WriteFile(tmp_.Sub("pub/acme/moved/latest"),
                     testing::ReadFile(tmp_.Sub("pub/acme/a/latest")));
  testing::WriteFile(tmp_.Sub("pub/acme/file"), "x");
  ASSERT_TRUE(WriteOrgIndex(Env::Default(), tmp_.Sub("pub"), "acme").ok());
  index = Written();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->org, "acme");
  EXPECT_EQ(index->repos, (std::vector<std::string>{"acme/a", "acme/b"}));
  SystemTime t;
  EXPECT_TRUE(ParseIsoTime(index->updated, &t)) << index->updated;
  struct stat st;
  ASSERT_EQ(::stat(tmp_.Sub("pub/acme/index.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto other =
      ParseOrgIndex(testing::ReadFile(tmp_.Sub("pub/other/index.json")), "other", "t", 100, kBytes);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->repos, (std::vector<std::string>{"other/x"}));
  // An unchanged publish still writes the index (a root published by an
  // older sync-agent gets one).
  ASSERT_EQ(::unlink(tmp_.Sub("pub/acme/index.json").c_str()), 0);
  ASSERT_TRUE(Publish("acme/a", "a").ok());
  EXPECT_TRUE(Written().ok());
}

// Each publisher writes its pointer, then the index: without the lock a
// publisher whose listing was taken before another's pointer appeared can
// rename its index last, and the other repository is not listed.
TEST_F(OrgIndexTest, ConcurrentPublishersLeaveAnIndexListingThemAll) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 15;
  auto pointer = [](const std::string& repo) {
    RevisionPointer p;
    p.repo = repo;
    p.revision = "r1";
    p.manifest = PublishedManifestPath("r1");
    p.manifest_sha256 = std::string(64, 'a');
    return SerializePointer(p);
  };
  Env* env = Env::Default();
  ASSERT_TRUE(CreateDirs(env, tmp_.Sub("pub/acme"), 0755).ok());
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> threads;
    std::vector<Status> results(kThreads);
    std::atomic<int> ready{0};
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        const std::string repo = "acme/r" + std::to_string(round) + "-" + std::to_string(i);
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        results[i] = CreateDirs(env, tmp_.Sub("pub/" + repo), 0755);
        if (results[i].ok()) {
          results[i] = WriteFileAtomically(env, tmp_.Sub("pub/" + repo + "/latest"), pointer(repo));
        }
        if (results[i].ok()) results[i] = WriteOrgIndex(env, tmp_.Sub("pub"), "acme");
      });
    }
    for (auto& t : threads) t.join();
    for (const Status& s : results) ASSERT_TRUE(s.ok()) << s.ToString();
    auto index = ParseOrgIndex(testing::ReadFile(tmp_.Sub("pub/acme/index.json")), "acme", "t",
                               100000, kBytes);
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    ASSERT_EQ(index->repos.size(), static_cast<size_t>(kThreads * (round + 1)))
        << "round " << round;
  }
  // No temporary file is left beside it.
  auto entries = env->ListDir(tmp_.Sub("pub/acme"));
  ASSERT_TRUE(entries.ok());
  for (const DirEntry& e : *entries) EXPECT_EQ(e.name.find(".tmp"), std::string::npos) << e.name;
}

TEST(OrgIndexFormatTest, RoundTrip) {
  for (size_t n : {0u, 1u, 3u}) {
    OrgIndex index;
    index.org = "acme";
    index.updated = "2026-01-02T03:04:05Z";
    for (size_t i = 0; i < n; ++i) index.repos.push_back("acme/r" + std::to_string(i));
    auto back = Parse(SerializeOrgIndex(index));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->repos, index.repos);
    EXPECT_EQ(back->updated, index.updated);
  }
}

TEST(OrgIndexFormatTest, BadIndexesNameWhatIsWrong) {
  const std::string ok = R"({"format": 1, "org": "acme", "updated": "", "repos": [)";
  struct Case {
    std::string text;
    std::string says;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {"[]", "top level is not a JSON object"},
      {R"({"format": 2, "org": "acme", "repos": []})", "this sync-agent reads format 1"},
      {R"({"format": 1, "org": "beta", "repos": []})", "describes organisation \"beta\""},
      {R"({"format": 1, "org": "acme"})", "\"repos\" is missing or not an array"},
      {R"({"format": 1, "org": "acme", "repos": [], "extra": 1})", "unknown key \"extra\""},
      {ok + R"("acme/a"]})", "repos[0]: is not an object"},
      {ok + R"({"name": "beta/a"}]})", "is not of the form acme/<name>"},
      {ok + R"({"name": "acme/../x"}]})", "is not of the form acme/<name>"},
      {ok + R"({"name": "acme/a"}, {"name": "acme/a"}]})", "lists acme/a a second time"},
      {ok + R"({"name": "acme/a", "size": 1}]})", "unknown key \"size\""},
      {ok + R"({"name": 5}]})", "\"name\" is not a string"},
  };
  for (const Case& c : cases) {
    auto r = Parse(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_THAT(r.status().ToString(), HasSubstr(c.says)) << c.text;
    EXPECT_THAT(r.status().ToString(), HasSubstr("organisation index file:///pub/acme/index.json"));
  }
  // Limits, before parsing: the count (org_max_repos) and the size.
  auto many = Parse(ok + R"({"name": "acme/a"}, {"name": "acme/b"}, {"name": "acme/c"}]})", 2);
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(many.status().message(), HasSubstr("more than 2 repositories (org_max_repos)"));
  auto big = ParseOrgIndex(std::string(100, ' ') + "{}", "acme", "u", 10, 50);
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("larger than manifest_max_bytes (50)"));
}

}  // namespace
}  // namespace sync_agent
