// LfsClient against a test server that follows the public Git LFS batch API.
#include "common/git/lfs_client.h"

#include <gtest/gtest.h>

#include "common/base/byte_sink.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/store/object_store.h"
#include "tests/support/lfs_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

class StringSink final : public ObjectSink {
 public:
  Status Begin(uint64_t offset) override {
    if (offset != 0) return Status::Network("sink", "resume not expected");
    data.clear();
    return Status::OK();
  }
  Status Write(const char* d, size_t n) override {
    data.append(d, n);
    return Status::OK();
  }
  std::string data;
};

TEST(LfsEndpointTest, FollowsTheGitLfsConvention) {
  EXPECT_EQ(LfsEndpoint("https://git.example.net/acme/llm.git"),
            "https://git.example.net/acme/llm.git/info/lfs");
  EXPECT_EQ(LfsEndpoint("https://git.example.net/acme/llm"),
            "https://git.example.net/acme/llm.git/info/lfs");
  EXPECT_EQ(LfsEndpoint("https://git.example.net/acme/llm.git/"),
            "https://git.example.net/acme/llm.git/info/lfs");
}

class LfsClientTest : public ::testing::Test {
 protected:
  testing::LfsServer server_;
  std::string repo_url() const { return server_.url() + "/acme/llm-7b.git"; }
};

TEST_F(LfsClientTest, BatchThenDownloadWithTheServersHeaders) {
  std::string a = testing::RandomBytes(300000, 1), b = testing::RandomBytes(5, 2);
  LfsObject oa{server_.Add(a), a.size()}, ob{server_.Add(b), b.size()};
  LfsClient client(repo_url(), {});
  auto batch = client.Batch({oa, ob});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE((*batch)[i].ok()) << (*batch)[i].status().ToString();
    StringSink sink;
    const LfsObject& o = i == 0 ? oa : ob;
    Status s = client.Download(o, *(*batch)[i], 0, &sink);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(sink.data == (i == 0 ? a : b));
  }
  auto requests = server_.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0], "POST /acme/llm-7b.git/info/lfs/objects/batch");
}

TEST_F(LfsClientTest, PerObjectErrorsAndMissingDownloadsSayWhich) {
  std::string a = testing::RandomBytes(1000, 3), b = testing::RandomBytes(1000, 4);
  LfsObject oa{server_.Add(a), a.size()}, ob{server_.Add(b), b.size()};
  LfsObject never{std::string(64, 'c'), 10};
  server_.MissingInBatch(oa.oid);
  server_.MissingOnDownload(ob.oid);
  LfsClient client(repo_url(), {});
  auto batch = client.Batch({oa, ob, never});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_TRUE((*batch)[0].status().IsNotFound());
  EXPECT_NE((*batch)[0].status().ToString().find("missing on the LFS server"), std::string::npos)
      << (*batch)[0].status().ToString();
  EXPECT_NE((*batch)[0].status().ToString().find(oa.oid), std::string::npos);
  EXPECT_TRUE((*batch)[2].status().IsNotFound());
  ASSERT_TRUE((*batch)[1].ok());
  StringSink sink;
  Status s = client.Download(ob, *(*batch)[1], 0, &sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find("HTTP 404"), std::string::npos) << s.ToString();
}

TEST_F(LfsClientTest, WrongBytesAreRefusedByTheObjectStore) {
  std::string a = testing::RandomBytes(100000, 5);
  LfsObject oa{server_.Add(a), a.size()};
  server_.ServeWrongBytes(oa.oid);
  LfsClient client(repo_url(), {});
  auto batch = client.Batch({oa});
  ASSERT_TRUE(batch.ok() && (*batch)[0].ok());
  testing::TempDir tmp;
  ObjectStore store(Env::Default(), tmp.path());
  ASSERT_TRUE(store.Init().ok());
  ContentDigest d = HashBytes(a);
  ObjectDownload dl(&store, {d.sha256, d.xxh3_128, a.size()}, "lfs " + oa.oid);
  Status s = client.Download(oa, *(*batch)[0], 0, &dl);
  if (s.ok()) s = dl.Finish();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_FALSE(store.Has(d.sha256, a.size()));
}

TEST_F(LfsClientTest, BatchFailuresAndAuthorization) {
  std::string a = testing::RandomBytes(100, 6);
  LfsObject oa{server_.Add(a), a.size()};
  server_.RequireAuthorization("Bearer s3cret");
  LfsClient anonymous(repo_url(), {});
  auto denied = anonymous.Batch({oa});
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().ToString().find("HTTP 401"), std::string::npos)
      << denied.status().ToString();
  EXPECT_NE(denied.status().ToString().find("authorization"), std::string::npos);
  LfsClient with_token(repo_url(), {}, {{"Authorization", "Bearer s3cret"}});
  auto allowed = with_token.Batch({oa});
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_TRUE((*allowed)[0].ok());

  server_.FailBatch(500);
  auto failed = with_token.Batch({oa});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Status::Code::kNetwork);
  EXPECT_NE(failed.status().ToString().find("HTTP 500 Internal Server Error"), std::string::npos)
      << failed.status().ToString();
}

}  // namespace
}  // namespace sync_agent
