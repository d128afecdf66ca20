// ChunkedDownload against real nginx, with a FaultProxy in front of it for
// the faults of slow cross-region links: connections cut every few MB,
// stalls, a source going down half-way while another keeps serving, a run
// that stops part-way and the next one that resumes per chunk.
#include "common/transfer/chunked_download.h"

#include <gtest/gtest.h>

#include <set>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "common/source/publish_root_source.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/nginx_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::FaultProxy;
using testing::NginxServer;

constexpr const char* kRepo = "acme/llm-7b";
constexpr uint64_t kMiB = 1 << 20;

class ChunkedDownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    store_ = std::make_unique<ObjectStore>(Env::Default(), tmp_.Sub("state"));
    ASSERT_TRUE(store_->Init().ok());
  }
  // Publishes content at the object path of a publish root served by a new nginx.
  NginxServer* Serve(const std::string& content, bool ranges_ok = true) {
    testing::TempDir* root = roots_.emplace_back(std::make_unique<testing::TempDir>(true)).get();
    testing::WriteFile(
        root->Sub(std::string(kRepo) + "/" + PublishedObjectPath(Sha256Hex(content))), content);
    NginxServer::Options o;
    o.root = root->path();
    o.ranges_ok = ranges_ok;
    auto& nginx = nginx_.emplace_back(std::make_unique<NginxServer>(o));
    std::string error;
    EXPECT_TRUE(nginx->Start(&error)) << error;
    return nginx.get();
  }
  std::unique_ptr<SourceSet> Sources(
      const std::vector<std::string>& urls,
      std::chrono::milliseconds io_timeout = std::chrono::seconds(10)) {
    std::vector<SourceHealthStats> stats;
    for (const auto& u : urls) {
      SourceHealthStats h;
      h.url = u;
      stats.push_back(h);
    }
    RetryPolicy retry;
    retry.base_delay = std::chrono::milliseconds(20);
    retry.max_delay = std::chrono::milliseconds(200);
    return std::make_unique<SourceSet>(
        stats,
        [io_timeout](const std::string& url) -> Result<std::unique_ptr<Source>> {
          SourceOptions o;
          o.io_timeout = io_timeout;
          SA_ASSIGN_OR_RETURN(auto source, MakePublishRootSource(url, kRepo, o));
          return std::unique_ptr<Source>(std::move(source));
        },
        retry);
  }
  Result<ChunkedDownloadResult> Download(SourceSet* sources, const std::string& content,
                                         int connections = 4, uint64_t chunk = 4 * kMiB) {
    ChunkedDownloadOptions o;
    o.connections = connections;
    o.chunk_bytes = chunk;
    ContentHasher h;
    h.Update(content.data(), content.size());
    ContentDigest digest = h.Finish();
    ChunkedDownload d(store_.get(), sources, kRepo,
                      {digest.sha256, content.size(), "r1", "model.bin", {}},
                      {digest.sha256, digest.xxh3_128, content.size()}, "model.bin", o);
    return d.Run();
  }
  std::string Stored(const std::string& content) {
    return testing::ReadFile(store_->ObjectPath(Sha256Hex(content)));
  }
  // The byte ranges nginx served for the object (from its access log).
  static std::vector<std::string> Ranges(const NginxServer& nginx) {
    std::vector<std::string> out;
    for (const auto& e : nginx.ReadAccessLog()) out.push_back(e.range);
    return out;
  }
  static uint64_t BytesSent(const NginxServer& nginx) {
    uint64_t n = 0;
    for (const auto& e : nginx.ReadAccessLog()) n += e.bytes_sent;
    return n;
  }

  testing::TempDir tmp_;
  std::unique_ptr<ObjectStore> store_;
  std::vector<std::unique_ptr<testing::TempDir>> roots_;
  std::vector<std::unique_ptr<NginxServer>> nginx_;
};

TEST_F(ChunkedDownloadTest, ChunksOverSeveralConnections) {
  const std::string content = testing::RandomBytes(40 * kMiB + 12345, 1);
  NginxServer* nginx = Serve(content);
  auto sources = Sources({nginx->url()});
  auto r = Download(sources.get(), content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Stored(content) == content);
  EXPECT_EQ(r->bytes_fetched, content.size());
  EXPECT_EQ(r->digest.sha256, Sha256Hex(content));
  ASSERT_TRUE(nginx->WaitForAccessLog(11));
  std::vector<std::string> ranges = Ranges(*nginx);
  EXPECT_EQ(ranges.size(), 11u);
  EXPECT_EQ(std::set<std::string>(ranges.begin(), ranges.end()).size(), 11u);
  EXPECT_NE(std::find(ranges.begin(), ranges.end(), "bytes=0-4194303"), ranges.end());
  EXPECT_FALSE(Env::Default()->Stat(store_->RangesPath(Sha256Hex(content))).ok())
      << "the chunk record outlived the download";
}

TEST_F(ChunkedDownloadTest, ConnectionsCutEveryFewMegabytesLoseNothingReceived) {
  const std::string content = testing::RandomBytes(24 * kMiB, 2);
  NginxServer* nginx = Serve(content);
  FaultProxy proxy(nginx->port());
  proxy.CutEvery(3 * kMiB + 777);
  auto sources = Sources({proxy.url()});
  auto r = Download(sources.get(), content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Stored(content) == content);
  EXPECT_EQ(r->bytes_fetched, content.size()) << "bytes received twice";
  EXPECT_GT(proxy.connections(), 6);
}

TEST_F(ChunkedDownloadTest, StalledConnectionsAreAbandonedAndTheRestFetchedAgain) {
  const std::string content = testing::RandomBytes(12 * kMiB, 3);
  NginxServer* nginx = Serve(content);
  FaultProxy proxy(nginx->port());
  proxy.StallAfter(2 * kMiB + 5);
  auto sources = Sources({proxy.url()}, std::chrono::milliseconds(500));
  auto r = Download(sources.get(), content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Stored(content) == content);
  EXPECT_EQ(r->bytes_fetched, content.size());
  auto health = sources->Snapshot();
  EXPECT_GT(health[0].errors, 0u);
  EXPECT_NE(health[0].last_error.find("timed out"), std::string::npos) << health[0].last_error;
}

TEST_F(ChunkedDownloadTest, ASourceGoingDownHalfWayIsLeftForAnotherWithoutRefetching) {
  const std::string content = testing::RandomBytes(32 * kMiB, 4);
  NginxServer* a = Serve(content);
  NginxServer* b = Serve(content);
  FaultProxy proxy(a->port());
  // The first requests are spread over both (nothing is known of either):
  // two 4 MiB chunks go to the proxy, which dies during them.
  proxy.DownAfter(6 * kMiB);
  auto sources = Sources({proxy.url(), b->url()});
  auto r = Download(sources.get(), content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Stored(content) == content);
  EXPECT_EQ(r->bytes_fetched, content.size());
  auto health = sources->Snapshot();
  EXPECT_GT(health[0].errors, 0u);
  EXPECT_GT(health[1].bytes, 0u);
  EXPECT_EQ(health[0].bytes + health[1].bytes, content.size());
}

TEST_F(ChunkedDownloadTest, TheNextRunFetchesOnlyChunksNotRecorded) {
  const std::string content = testing::RandomBytes(40 * kMiB, 5);
  NginxServer* nginx = Serve(content);
  {
    FaultProxy proxy(nginx->port());
    proxy.DownAfter(17 * kMiB);
    auto sources = Sources({proxy.url()});
    auto r = Download(sources.get(), content, 2);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kNetwork) << r.status().ToString();
  }
  const std::string record = testing::ReadFile(store_->RangesPath(Sha256Hex(content)));
  ASSERT_NE(record.find("sync-agent-ranges 1 " + std::to_string(content.size()) + " 4194304\n"),
            std::string::npos)
      << record;
  std::set<std::string> recorded_ranges;  // as nginx logs the Range header
  for (size_t at = record.find('\n') + 1; at < record.size();) {
    size_t nl = record.find('\n', at);
    uint64_t i = std::stoull(record.substr(at, nl - at));
    recorded_ranges.insert("bytes=" + std::to_string(i * 4 * kMiB) + "-");
    at = nl + 1;
  }
  const size_t recorded = recorded_ranges.size();
  EXPECT_GE(recorded, 3u);
  size_t before = nginx->ReadAccessLog().size();

  // Free-space checks count what the record lists, not the sparse file's size.
  EXPECT_EQ(PartialBytesHeld(store_.get(), Sha256Hex(content), content.size()),
            recorded * 4 * kMiB);
  auto sources = Sources({nginx->url()});
  auto r = Download(sources.get(), content, 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Stored(content) == content);
  EXPECT_EQ(r->resumed_bytes, recorded * 4 * kMiB);
  EXPECT_EQ(r->bytes_fetched, content.size() - recorded * 4 * kMiB);
  ASSERT_TRUE(nginx->WaitForAccessLog(before + 10 - recorded));
  std::vector<std::string> ranges = Ranges(*nginx);
  for (size_t i = before; i < ranges.size(); ++i) {
    std::string start = ranges[i].substr(0, ranges[i].find('-') + 1);
    EXPECT_EQ(recorded_ranges.count(start), 0u)
        << "a recorded chunk was fetched again: " << ranges[i];
  }
}

TEST_F(ChunkedDownloadTest, WrongBytesAreCorruptionAndLeaveNothing) {
  const std::string content = testing::RandomBytes(10 * kMiB, 6);
  std::string other = content;
  other[7 * kMiB] ^= 1;
  NginxServer* nginx = Serve(content);
  // The file at content's object path holds other bytes of the same size.
  testing::WriteFile(
      roots_.back()->Sub(std::string(kRepo) + "/" + PublishedObjectPath(Sha256Hex(content))),
      other);
  auto sources = Sources({nginx->url()});
  auto r = Download(sources.get(), content);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().ToString().find(nginx->url()), std::string::npos);
  EXPECT_FALSE(Env::Default()->Stat(store_->PartialPath(Sha256Hex(content))).ok());
  EXPECT_FALSE(Env::Default()->Stat(store_->RangesPath(Sha256Hex(content))).ok());
  EXPECT_FALSE(store_->Has(Sha256Hex(content), content.size()));
}

TEST_F(ChunkedDownloadTest, NoSourceWithRangesIsUnsupported) {
  const std::string content = testing::RandomBytes(9 * kMiB, 7);
  NginxServer* nginx = Serve(content, /*ranges_ok=*/false);
  auto sources = Sources({nginx->url()});
  auto r = Download(sources.get(), content);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported) << r.status().ToString();
}

TEST_F(ChunkedDownloadTest, ASequentialPartialKeepsItsWholeChunks) {
  const std::string content = testing::RandomBytes(20 * kMiB, 8);
  testing::WriteFile(store_->PartialPath(Sha256Hex(content)), content.substr(0, 9 * kMiB));
  NginxServer* nginx = Serve(content);
  auto sources = Sources({nginx->url()});
  auto r = Download(sources.get(), content);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->resumed_bytes, 8 * kMiB);
  EXPECT_EQ(r->bytes_fetched, 12 * kMiB);
  EXPECT_TRUE(Stored(content) == content);
}

TEST(ChunkBytesTest, AboutOneInTwoHundredFiftySixBetweenFourAndSixtyFourMebibytes) {
  EXPECT_EQ(ChunkBytesFor(1), 4 * kMiB);
  EXPECT_EQ(ChunkBytesFor(2048 * kMiB), 8 * kMiB);
  EXPECT_EQ(ChunkBytesFor(2049 * kMiB), 9 * kMiB);
  EXPECT_EQ(ChunkBytesFor(1ULL << 40), 64 * kMiB);
}

}  // namespace
}  // namespace sync_agent
