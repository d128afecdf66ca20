#include <gtest/gtest.h>

#include <random>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/store/object_store.h"
#include "common/store/pipelined_sink.h"
#include "common/store/verifying_sink.h"
#include "tests/support/fault_env.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

// Records what reaches it; fails on demand.
class RecordingSink : public ObjectSink {
 public:
  Status Begin(uint64_t offset) override {
    begins.push_back({offset, data.size()});
    return Status::OK();
  }
  Status Write(const char* d, size_t n) override {
    if (fail_after >= 0 && static_cast<int64_t>(data.size() + n) > fail_after) {
      return Status::NoSpace("write x", "No space left on device");
    }
    data.append(d, n);
    return Status::OK();
  }
  std::string data;
  std::vector<std::pair<uint64_t, size_t>> begins;  // offset, bytes received before
  int64_t fail_after = -1;
};

TEST(PipelinedSinkTest, KeepsOrderAcrossManyWriteSizes) {
  std::string input = testing::RandomBytes(5 << 20, 1);
  RecordingSink inner;
  PipelinedSink pipe(&inner, 3, 64 << 10);
  ASSERT_TRUE(pipe.Begin(0).ok());
  std::mt19937 rng(7);
  size_t off = 0;
  while (off < input.size()) {
    size_t n = std::min<size_t>(input.size() - off, rng() % 200000 + 1);
    ASSERT_TRUE(pipe.Write(input.data() + off, n).ok());
    off += n;
  }
  ASSERT_TRUE(pipe.Drain().ok());
  EXPECT_EQ(inner.data, input);
}

TEST(PipelinedSinkTest, BeginWaitsForQueuedBytes) {
  RecordingSink inner;
  PipelinedSink pipe(&inner, 2, 1024);
  ASSERT_TRUE(pipe.Begin(0).ok());
  ASSERT_TRUE(pipe.Write("abc", 3).ok());
  ASSERT_TRUE(pipe.Begin(3).ok());
  ASSERT_EQ(inner.begins.size(), 2u);
  EXPECT_EQ(inner.begins[1].first, 3u);
  EXPECT_EQ(inner.begins[1].second, 3u) << "queued bytes must reach the sink before Begin";
}

TEST(PipelinedSinkTest, InnerErrorsReachTheCaller) {
  RecordingSink inner;
  inner.fail_after = 100000;
  PipelinedSink pipe(&inner, 2, 4096);
  ASSERT_TRUE(pipe.Begin(0).ok());
  std::string chunk(4096, 'x');
  Status s;
  for (int i = 0; i < 1000 && s.ok(); ++i) s = pipe.Write(chunk.data(), chunk.size());
  if (s.ok()) s = pipe.Drain();
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_LE(inner.data.size(), 100000u);
}

TEST(PipelinedSinkTest, EveryStageSeesEveryByteInOrderAndTheFirstErrorWins) {
  std::string input = testing::RandomBytes(3 << 20, 3);
  RecordingSink a, b;
  PipelinedSink pipe([&](uint64_t offset) { return a.Begin(offset); },
                     {[&](const char* d, size_t n) { return a.Write(d, n); },
                      [&](const char* d, size_t n) { return b.Write(d, n); }},
                     3, 50000);
  ASSERT_TRUE(pipe.Begin(0).ok());
  std::mt19937 rng(9);
  for (size_t off = 0; off < input.size();) {
    size_t n = std::min<size_t>(input.size() - off, rng() % 120000 + 1);
    ASSERT_TRUE(pipe.Write(input.data() + off, n).ok());
    off += n;
  }
  ASSERT_TRUE(pipe.Drain().ok());
  EXPECT_TRUE(a.data == input);
  EXPECT_TRUE(b.data == input);

  // The second stage fails: the error reaches the caller, and neither stage
  // gets more bytes once it is known.
  RecordingSink c, d;
  d.fail_after = 200000;
  PipelinedSink failing([](uint64_t) { return Status::OK(); },
                        {[&](const char* p, size_t n) { return c.Write(p, n); },
                         [&](const char* p, size_t n) { return d.Write(p, n); }},
                        2, 4096);
  std::string chunk(4096, 'y');
  Status s;
  for (int i = 0; i < 1000 && s.ok(); ++i) s = failing.Write(chunk.data(), chunk.size());
  // Drain waits for both stages even after the error, so c and d are read
  // below with no stage still writing them.
  Status drained = failing.Drain();
  if (s.ok()) s = drained;
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.ToString();
  EXPECT_EQ(drained.code(), Status::Code::kNoSpace) << drained.ToString();
  EXPECT_LE(d.data.size(), 200000u);
  EXPECT_LT(c.data.size(), 1000u * 4096);
}

TEST(VerifyingSinkTest, AcceptsExactlyTheExpectedBytes) {
  const std::string content = "signature bytes";
  const std::string sha = Sha256Hex(content);
  auto run = [&](const std::string& sent, uint64_t size, const std::string& want) {
    std::string out;
    VerifyingSink sink("test file", size, want, [&out](const char* d, size_t n) {
      out.append(d, n);
      return Status::OK();
    });
    Status s = sink.Begin(0);
    if (s.ok()) s = sink.Write(sent.data(), sent.size());
    if (s.ok()) s = sink.Verify();
    return std::make_pair(s, out);
  };
  auto [ok, out] = run(content, content.size(), sha);
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  EXPECT_EQ(out, content);
  Status longer = run(content + "x", content.size(), sha).first;
  EXPECT_EQ(longer.code(), Status::Code::kCorruption);
  EXPECT_NE(longer.ToString().find("longer than"), std::string::npos) << longer.ToString();
  Status shorter = run(content.substr(1), content.size(), sha).first;
  EXPECT_NE(shorter.ToString().find("expected " + std::to_string(content.size())),
            std::string::npos)
      << shorter.ToString();
  Status other = run("signature bytez", content.size(), sha).first;
  EXPECT_NE(other.ToString().find("differs from the expected " + sha), std::string::npos)
      << other.ToString();
  VerifyingSink sink("test file", 10, sha, [](const char*, size_t) { return Status::OK(); });
  EXPECT_EQ(sink.Begin(5).code(), Status::Code::kNetwork);
}

TEST(ObjectDownloadTest, HashingAndWritingOnTwoThreadsStoresTheVerifiedObject) {
  testing::TempDir tmp;
  ObjectStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Init().ok());
  std::string content = testing::RandomBytes(37 << 20, 4);  // several writeback chunks
  ContentDigest digest = HashBytes(content);
  ObjectDownload dl(&store, {digest.sha256, digest.xxh3_128, content.size()}, "test");
  {
    PipelinedSink pipe(&dl);
    ASSERT_TRUE(pipe.Begin(0).ok());
    std::mt19937 rng(11);
    for (size_t off = 0; off < content.size();) {
      size_t n = std::min<size_t>(content.size() - off, rng() % 3000000 + 1);
      ASSERT_TRUE(pipe.Write(content.data() + off, n).ok());
      off += n;
    }
    ASSERT_TRUE(pipe.Drain().ok());
  }
  ASSERT_TRUE(dl.Finish().ok());
  EXPECT_EQ(dl.bytes_written(), content.size());
  EXPECT_TRUE(testing::ReadFile(store.ObjectPath(digest.sha256)) == content);

  // One byte too many is refused by whichever stage sees it first.
  std::string small = "0123456789";
  ContentDigest sd = HashBytes(small);
  ObjectDownload over(&store, {sd.sha256, sd.xxh3_128, small.size()}, "test");
  PipelinedSink pipe(&over);
  ASSERT_TRUE(pipe.Begin(0).ok());
  Status s = pipe.Write("0123456789x", 11);
  if (s.ok()) s = pipe.Drain();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
}

TEST(ObjectDownloadTest, VerifiesResumesAndRejectsWrongBytes) {
  testing::TempDir tmp;
  ObjectStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Init().ok());
  std::string content = testing::RandomBytes(40 << 20, 2);  // several writeback chunks
  ContentDigest d = HashBytes(content);
  {
    ObjectDownload dl(&store, {d.sha256, d.xxh3_128, d.size}, "test");
    ASSERT_TRUE(dl.Begin(0).ok());
    ASSERT_TRUE(dl.Write(content.data(), 10 << 20).ok());
    // Interrupted here: the partial file stays.
  }
  EXPECT_EQ(store.PartialSize(d.sha256), 10u << 20);
  {
    ObjectDownload dl(&store, {d.sha256, d.xxh3_128, d.size}, "test");
    EXPECT_EQ(dl.ResumeOffset(), 10u << 20);
    ASSERT_TRUE(dl.Begin(10 << 20).ok());
    ASSERT_TRUE(dl.Write(content.data() + (10 << 20), content.size() - (10 << 20)).ok());
    ASSERT_TRUE(dl.Finish().ok());
  }
  EXPECT_TRUE(store.Has(d.sha256, d.size));
  EXPECT_EQ(testing::ReadFile(store.ObjectPath(d.sha256)), content);
  EXPECT_EQ(store.PartialSize(d.sha256), 0u);

  std::string other = "expected content";
  ContentDigest od = HashBytes(other);
  ObjectDownload bad(&store, {od.sha256, od.xxh3_128, od.size}, "http://origin/x");
  ASSERT_TRUE(bad.Begin(0).ok());
  ASSERT_TRUE(bad.Write("unexpected bytes", 16).ok());
  Status s = bad.Finish();
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("http://origin/x"), std::string::npos) << s.ToString();
  EXPECT_FALSE(store.Has(od.sha256, od.size));
  EXPECT_EQ(store.PartialSize(od.sha256), 0u) << "wrong bytes are not kept";

  ObjectDownload too_long(&store, {od.sha256, od.xxh3_128, od.size}, "x");
  ASSERT_TRUE(too_long.Begin(0).ok());
  EXPECT_EQ(too_long.Write(std::string(17, 'a').data(), 17).code(), Status::Code::kCorruption);
}

TEST(ObjectDownloadTest, DiskFullIsReportedAndTheBytesSoFarKept) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  ObjectStore store(&env, tmp.path());
  ASSERT_TRUE(store.Init().ok());
  std::string content = testing::RandomBytes(3 << 20, 3);
  ContentDigest d = HashBytes(content);
  env.FailWritesAfter("/partial/", 1 << 20);
  ObjectDownload dl(&store, {d.sha256, d.xxh3_128, d.size}, "x");
  ASSERT_TRUE(dl.Begin(0).ok());
  ASSERT_TRUE(dl.Write(content.data(), 1 << 20).ok());
  Status s = dl.Write(content.data() + (1 << 20), 1 << 20);
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(store.PartialSize(d.sha256), 1u << 20);
}

}  // namespace
}  // namespace sync_agent
