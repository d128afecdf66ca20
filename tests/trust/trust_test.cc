// Ed25519 keys, revision signature documents and their checks
// (common/trust, schema/signature_format.md), against OpenSSL's own tool
// for interoperability.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/fs/env.h"
#include "common/manifest/manifest.h"
#include "common/trust/ed25519.h"
#include "common/trust/revision_trust.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::TempDir;

PrivateKey NewKey() {
  auto key = PrivateKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

RevisionStatement Statement() {
  return {"acme/llm-7b", "20261202T130501Z-3f2a9c1b0d4e", std::string(64, 'a'),
          "2026-12-02T13:05:01Z"};
}

std::string SignedDoc(const RevisionStatement& st, const std::vector<PrivateKey>& keys) {
  auto doc = SignRevision(st, keys);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  return SerializeRevisionSignatures(*doc);
}

TEST(Base64Test, RoundTripsEveryLengthAndRefusesWhatIsNotCanonical) {
  std::string bytes;
  for (int n = 0; n < 70; n++) {
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, bytes) << n;
    bytes += static_cast<char>(n * 37 + 11);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_FALSE(Base64Decode("aGVsbG8").has_value());    // missing padding
  EXPECT_FALSE(Base64Decode("aGVsbG9=").has_value());   // unused bits set
  EXPECT_FALSE(Base64Decode("aGV sbG8=").has_value());  // whitespace
  EXPECT_FALSE(Base64Decode("a=Vs").has_value());       // padding inside
}

TEST(Ed25519Test, SignaturesVerifyOnlyForTheirMessageAndKey) {
  PrivateKey a = NewKey();
  PrivateKey b = NewKey();
  auto sig = a.Sign("message");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), kEd25519SignatureBytes);
  EXPECT_TRUE(a.public_key().Verify("message", *sig));
  EXPECT_FALSE(a.public_key().Verify("messagf", *sig));
  EXPECT_FALSE(b.public_key().Verify("message", *sig));
  std::string bent = *sig;
  bent[10] ^= 1;
  EXPECT_FALSE(a.public_key().Verify("message", bent));
  EXPECT_FALSE(a.public_key().Verify("message", sig->substr(1)));
  // The key id parses back to the same key.
  auto parsed = PublicKey::Parse(a.public_key().id());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->Verify("message", *sig));
}

TEST(Ed25519Test, BadKeyIdsAreNamed) {
  auto r = PublicKey::Parse("rsa:AAAA");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not start with \"ed25519:\""), std::string::npos);
  r = PublicKey::Parse("ed25519:not base64!");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not valid base64"), std::string::npos);
  r = PublicKey::Parse("ed25519:" + Base64Encode(std::string(31, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("holds 31 bytes"), std::string::npos);
}

TEST(KeygenTest, WritesAPrivateKeyOnlyTheOwnerReadsAndNeverOverwrites) {
  TempDir tmp;
  Env* env = Env::Default();
  const std::string path = tmp.path() + "/origin.key";
  auto pub = GenerateKeyFiles(env, path);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(testing::ReadFile(path + ".pub"), pub->id() + "\n");
  EXPECT_EQ(testing::ReadFile(path).rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  auto loaded = PrivateKey::Load(env, path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_key().id(), pub->id());

  const std::string before = testing::ReadFile(path);
  auto again = GenerateKeyFiles(env, path);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(testing::ReadFile(path), before);
  // Only the public half in the way: still nothing written.
  const std::string other = tmp.path() + "/other.key";
  testing::WriteFile(other + ".pub", "mine\n");
  ASSERT_FALSE(GenerateKeyFiles(env, other).ok());
  EXPECT_FALSE(testing::PathExists(other));
  EXPECT_EQ(testing::ReadFile(other + ".pub"), "mine\n");
}

TEST(KeygenTest, ReadsKeysOpenSslMakesAndRefusesOtherAlgorithms) {
  TempDir tmp;
  const std::string ed = tmp.path() + "/ed.pem";
  auto made =
      testing::RunProcess({"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", ed});
  if (made.exit_code != 0) GTEST_SKIP() << "openssl genpkey failed: " << made.err;
  auto key = PrivateKey::Load(Env::Default(), ed);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  // The same public key as OpenSSL derives (the last 32 bytes of its DER).
  const std::string der = tmp.path() + "/ed.pub.der";
  ASSERT_EQ(testing::RunProcess(
                {"/usr/bin/openssl", "pkey", "-in", ed, "-pubout", "-outform", "DER", "-out", der})
                .exit_code,
            0);
  std::string raw = testing::ReadFile(der);
  ASSERT_GE(raw.size(), 32u);
  EXPECT_EQ(key->public_key().id(), "ed25519:" + Base64Encode(raw.substr(raw.size() - 32)));

  const std::string rsa = tmp.path() + "/rsa.pem";
  ASSERT_EQ(testing::RunProcess({"/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                 "rsa_keygen_bits:1024", "-out", rsa})
                .exit_code,
            0);
  auto wrong = PrivateKey::Load(Env::Default(), rsa);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("is not an ed25519 key"), std::string::npos);
  testing::WriteFile(tmp.path() + "/junk.pem", "not a key\n");
  wrong = PrivateKey::Load(Env::Default(), tmp.path() + "/junk.pem");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("is not a PEM private key"), std::string::npos);
  wrong = PrivateKey::Load(Env::Default(), tmp.path() + "/missing.pem");
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(wrong.status().IsNotFound());
}

class VerifyTest : public ::testing::Test {
 protected:
  Result<SignatureVerdict> Check(const std::optional<std::string>& doc,
                                 const std::vector<PublicKey>& trusted) {
    return VerifyRevisionSignatures(doc, Statement(), trusted,
                                    "http://o/acme/llm-7b/revisions/r.sig");
  }
  void ExpectFails(const Result<SignatureVerdict>& r, Status::Code code, const std::string& part) {
    ASSERT_FALSE(r.ok()) << part;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().ToString();
    // Every message names the repository, the revision and where it looked.
    EXPECT_NE(r.status().message().find("acme/llm-7b revision 20261202T130501Z-3f2a9c1b0d4e"),
              std::string::npos)
        << r.status().ToString();
    EXPECT_NE(r.status().message().find("http://o/acme/llm-7b/revisions/r.sig"), std::string::npos)
        << r.status().ToString();
  }
  PrivateKey origin_ = NewKey();
  PrivateKey other_ = NewKey();
};

TEST_F(VerifyTest, ASignatureByATrustedKeyIsAccepted) {
  auto v = Check(SignedDoc(Statement(), {origin_}), {origin_.public_key()});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->key, origin_.public_key().id());
}

TEST_F(VerifyTest, RotationAcceptsAnyListedKeyAndSkipsUnknownOnes) {
  // Signed by an unknown key and the new key; trusted: old and new.
  PrivateKey old_key = NewKey();
  std::string doc = SignedDoc(Statement(), {other_, origin_});
  auto v = Check(doc, {old_key.public_key(), origin_.public_key()});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->key, origin_.public_key().id());
}

TEST_F(VerifyTest, UnsignedUnknownKeyAndEmptyListAreRefusedByName) {
  ExpectFails(Check(std::nullopt, {origin_.public_key()}), Status::Code::kNotFound,
              "is not signed");
  ExpectFails(Check(SignedDoc(Statement(), {other_}), {origin_.public_key()}),
              Status::Code::kNotFound, "signed only by unknown keys");
  auto r = Check(SignedDoc(Statement(), {other_}), {origin_.public_key()});
  EXPECT_NE(r.status().message().find(other_.public_key().id()), std::string::npos);
  ExpectFails(Check(SignedDoc(Statement(), {}), {origin_.public_key()}), Status::Code::kNotFound,
              "lists no signatures");
}

TEST_F(VerifyTest, AForgedOrDamagedSignatureIsRefused) {
  auto doc = SignRevision(Statement(), {origin_});
  ASSERT_TRUE(doc.ok());
  std::string sig = *Base64Decode(doc->signatures[0].signature);
  sig[0] ^= 0x40;
  doc->signatures[0].signature = Base64Encode(sig);
  ExpectFails(Check(SerializeRevisionSignatures(*doc), {origin_.public_key()}),
              Status::Code::kCorruption, "does not verify");
  // A signature made by another key under the trusted key's name.
  auto forged = SignRevision(Statement(), {other_});
  ASSERT_TRUE(forged.ok());
  forged->signatures[0].key = origin_.public_key().id();
  ExpectFails(Check(SerializeRevisionSignatures(*forged), {origin_.public_key()}),
              Status::Code::kCorruption, "does not verify");
}

TEST_F(VerifyTest, ASignatureMovedToAnotherRepositoryRevisionOrManifestIsRefused) {
  struct Case {
    const char* name;
    void (*edit)(RevisionStatement*);
    const char* expect;
  };
  const Case cases[] = {
      {"repo", [](RevisionStatement* s) { s->repo = "acme/other"; }, "for repository"},
      {"revision", [](RevisionStatement* s) { s->revision = "older"; }, "for revision"},
      {"manifest", [](RevisionStatement* s) { s->manifest_sha256 = std::string(64, 'b'); },
       "for manifest sha256"},
      {"created", [](RevisionStatement* s) { s->created = "2030-01-01T00:00:00Z"; }, "for created"},
  };
  for (const Case& c : cases) {
    RevisionStatement elsewhere = Statement();
    c.edit(&elsewhere);
    // A genuine signature by the trusted key, of another statement.
    ExpectFails(Check(SignedDoc(elsewhere, {origin_}), {origin_.public_key()}),
                Status::Code::kCorruption, c.expect);
  }
}

TEST_F(VerifyTest, MalformedDocumentsAreRefusedNamingWhatIsWrong) {
  const std::string good = SignedDoc(Statement(), {origin_});
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "top level is not a JSON object"},
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {"{\"format\": 2}", "format 2"},
      {"{\"format\": 1, \"repo\": \"acme/llm-7b\"}", "missing \"revision\""},
      {std::string(70 * 1024, ' '), "larger than 64 KiB"},
  };
  for (const auto& [doc, expect] : cases) {
    auto r = Check(doc, {origin_.public_key()});
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_NE(r.status().message().find(expect), std::string::npos) << r.status().ToString();
  }
  std::string extra = good;
  extra.insert(1, "\"extra\": 1,");
  auto r = Check(extra, {origin_.public_key()});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown key \"extra\""), std::string::npos);
}

TEST(RevisionSignaturesFormatTest, RoundTripsAndLimitsTheNumberOfSignatures) {
  RevisionSignatures doc;
  doc.repo = "acme/llm-7b";
  doc.revision = "r1";
  doc.manifest_sha256 = std::string(64, 'c');
  doc.created = "2026-12-02T13:05:01Z";
  for (size_t i = 0; i <= kMaxRevisionSignatures; i++) {
    doc.signatures.push_back({"ed25519:k" + std::to_string(i), "s"});
  }
  auto r = ParseRevisionSignatures(SerializeRevisionSignatures(doc));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at most 16"), std::string::npos);
  doc.signatures.resize(2);
  r = ParseRevisionSignatures(SerializeRevisionSignatures(doc));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(SerializeRevisionSignatures(*r), SerializeRevisionSignatures(doc));
  doc.created = "yesterday";
  r = ParseRevisionSignatures(SerializeRevisionSignatures(doc));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an ISO-8601"), std::string::npos);
}

}  // namespace
}  // namespace sync_agent
