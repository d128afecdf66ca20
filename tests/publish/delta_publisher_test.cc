#include "common/publish/delta_publisher.h"

#include <gtest/gtest.h>

#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/publish/publisher.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

class DeltaPublisherTest : public ::testing::Test {
 protected:
  Result<PublishResult> Publish(int depth = 2) {
    PublishOptions o;
    o.input_dir = tmp_.Sub("model");
    o.repo = "acme/m";
    o.out_root = tmp_.Sub("pub");
    o.deltas.signature_min_size = 64 << 10;
    o.deltas.delta_depth = depth;
    return PublishDirectory(Env::Default(), o);
  }
  std::string RepoFile(const std::string& rel) {
    return testing::ReadFile(tmp_.Sub("pub/acme/m/" + rel));
  }
  testing::TempDir tmp_;
};

TEST_F(DeltaPublisherTest, LargeFilesGetSignaturesAndDeltasThatReproduceTheNewContent) {
  std::string v1 = testing::RandomBytes(3 << 20, 1);
  testing::WriteFile(tmp_.Sub("model/w.bin"), v1);
  testing::WriteFile(tmp_.Sub("model/small.json"), "{}");
  auto r1 = Publish();
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  const ManifestEntry* w1 = &r1->manifest.files[1];
  ASSERT_EQ(w1->path, "w.bin");
  ASSERT_TRUE(w1->signature.present());
  EXPECT_TRUE(w1->deltas.empty());
  EXPECT_FALSE(r1->manifest.files[0].signature.present()) << "small files get no signature";
  std::string sig = RepoFile(PublishedSignaturePath(w1->sha256, w1->signature.block_len));
  EXPECT_EQ(sig.size(), w1->signature.size);
  EXPECT_EQ(Sha256Hex(sig), w1->signature.sha256);

  // v2: 200 bytes inserted at the start, a few scattered edits.
  std::string v2 = testing::RandomBytes(200, 2) + v1;
  for (size_t off = 100000; off < v2.size(); off += 700000) v2[off] ^= 0x55;
  testing::WriteFile(tmp_.Sub("model/w.bin"), v2);
  auto r2 = Publish();
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  const ManifestEntry& w2 = r2->manifest.files[1];
  ASSERT_EQ(w2.deltas.size(), 1u);
  EXPECT_EQ(w2.deltas[0].from_sha256, Sha256Hex(v1));
  std::string delta = RepoFile(PublishedDeltaPath(Sha256Hex(v1), Sha256Hex(v2)));
  EXPECT_EQ(Sha256Hex(delta), w2.deltas[0].sha256);
  EXPECT_LT(delta.size(), v2.size() / 10) << "a small change makes a small delta";
  // The published delta turns v1 into v2 exactly.
  testing::WriteFile(tmp_.Sub("v1"), v1);
  auto basis = Env::Default()->NewRandomAccessFile(tmp_.Sub("v1"));
  ASSERT_TRUE(basis.ok());
  std::string patched;
  Status s = ApplyDelta(**basis, v1.size(), delta, [&](const char* d, size_t n) {
    patched.append(d, n);
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(patched, v2);

  // v3 gets deltas from v2 and v1 (depth 2).
  std::string v3 = v2 + "appended tail";
  testing::WriteFile(tmp_.Sub("model/w.bin"), v3);
  auto r3 = Publish();
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  ASSERT_EQ(r3->manifest.files[1].deltas.size(), 2u);
  EXPECT_EQ(r3->manifest.files[1].deltas[0].from_sha256, Sha256Hex(v2));
  EXPECT_EQ(r3->manifest.files[1].deltas[1].from_sha256, Sha256Hex(v1));
  // Publishing the same content again is still "unchanged" despite the delta files.
  auto again = Publish();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->unchanged);
}

TEST_F(DeltaPublisherTest, DepthZeroPublishesNoDeltasAndUselessDeltasAreSkipped) {
  testing::WriteFile(tmp_.Sub("model/w.bin"), testing::RandomBytes(1 << 20, 3));
  ASSERT_TRUE(Publish(0).ok());
  testing::WriteFile(tmp_.Sub("model/w.bin"), testing::RandomBytes(1 << 20, 4));
  auto r = Publish(0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->manifest.files[0].deltas.empty());
  // With depth 2, a delta between unrelated contents is no smaller than the file.
  testing::WriteFile(tmp_.Sub("model/w.bin"), testing::RandomBytes(1 << 20, 5));
  r = Publish(2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->manifest.files[0].deltas.empty());
  EXPECT_GE(r->delta_stats.deltas_skipped, 1u);
}

}  // namespace
}  // namespace sync_agent
