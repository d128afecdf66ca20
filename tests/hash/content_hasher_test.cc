#include "common/hash/content_hasher.h"

#include <gtest/gtest.h>

#include "common/fs/env.h"
#include "common/hash/git_ids.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

TEST(ContentHasherTest, KnownVectors) {
  // FIPS 180-2 "abc" and the empty string; XXH3-128 of "" is the reference
  // value from xxHash's own test suite (seed 0).
  EXPECT_EQ(HashBytes("abc").sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ContentDigest empty = HashBytes("");
  EXPECT_EQ(empty.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(empty.xxh3_128, "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(empty.size, 0u);
}

TEST(ContentHasherTest, StreamingEqualsOneShotForAnySplit) {
  std::string data = testing::RandomBytes(100003, 9);
  ContentDigest whole = HashBytes(data);
  for (size_t piece : {1u, 7u, 4096u, 65537u}) {
    ContentHasher h;
    for (size_t off = 0; off < data.size(); off += piece) {
      h.Update(data.data() + off, std::min(piece, data.size() - off));
    }
    ContentDigest d = h.Finish();
    EXPECT_EQ(d.sha256, whole.sha256) << piece;
    EXPECT_EQ(d.xxh3_128, whole.xxh3_128) << piece;
    EXPECT_EQ(d.size, data.size());
  }
}

TEST(ContentHasherTest, HashFileMatchesBytesAndReportsMissingFiles) {
  testing::TempDir tmp;
  std::string data = testing::RandomBytes(3 << 20, 10);
  testing::WriteFile(tmp.Sub("f"), data);
  auto d = HashFile(Env::Default(), tmp.Sub("f"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->sha256, HashBytes(data).sha256);
  auto missing = HashFile(Env::Default(), tmp.Sub("nope"));
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_TRUE(IsLowerHex(d->sha256, 64));
  EXPECT_FALSE(IsLowerHex("ABCD", 4));
}

}  // namespace
}  // namespace sync_agent

namespace sync_agent {
namespace {

TEST(GitIdsTest, BlobIdsAreGitsOwn) {
  // `printf 'hello\n' | git hash-object --stdin`, and the empty blob.
  EXPECT_EQ(GitBlobId("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(GitBlobId(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  GitBlobHasher h(6);
  h.Update("hel", 3);
  h.Update("lo\n", 3);
  EXPECT_EQ(h.Finish(), "ce013625030ba8dba906f756967f9e9ca394464a");
}

TEST(GitIdsTest, LfsPointerTextIsSpecVersionOne) {
  const std::string sha(64, 'a');
  EXPECT_EQ(LfsPointerText(sha, 12345),
            "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha + "\nsize 12345\n");
}

}  // namespace
}  // namespace sync_agent
