// Signed revisions end to end: keygen, publish --sign-key, a node with
// trusted_keys, and the attacks they stop (schema/signature_format.md).
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/publish_tamper.h"

namespace sync_agent::testing {
namespace {

class TrustTest : public AgentFixture {
 protected:
  // `sync-agent keygen`; returns the public key it prints.
  std::string Keygen(const std::string& name) {
    const std::string path = tmp_.path() + "/" + name + ".key";
    ProcessResult r = RunAgent({"keygen", "--out", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    EXPECT_EQ(id.rfind("ed25519:", 0), 0u) << r.out;
    return id;
  }
  std::string KeyPath(const std::string& name) const { return tmp_.path() + "/" + name + ".key"; }
  std::string RepoDir() const { return pub_ + "/" + kRepo; }

  void TrustConfig(const std::string& url, const std::vector<std::string>& keys,
                   const std::string& repo_extra = "") {
    std::string list;
    for (const std::string& k : keys) list += (list.empty() ? "\"" : ", \"") + k + "\"";
    WriteConfig({url}, "trusted_keys = [" + list + "]");
    if (!repo_extra.empty()) WriteFile(config_, ReadFile(config_) + repo_extra + "\n");
  }

  // The attack from issue 11: the latest revision rewritten on the publish
  // root, config.json pointed at a new object, the pointer made to agree.
  void ForgeConfigJson(const std::string& evil) {
    const std::string sha = Sha256Hex(evil);
    WriteFile(RepoDir() + "/" + PublishedObjectPath(sha), evil);
    std::string error = RewriteLatestManifest(RepoDir(), [&](std::string text) {
      auto m = ParseManifest(text);
      if (!m.ok()) return text;
      for (ManifestEntry& e : m->files) {
        if (e.path != "config.json") continue;
        e.sha256 = sha;
        e.size = evil.size();
        e.xxh3_128 = HashBytes(evil).xxh3_128;
      }
      return SerializeManifest(*m);
    });
    ASSERT_EQ(error, "");
  }

  // Creation times have one-second resolution; a later revision must be
  // published in a later second for rollback protection to tell them apart.
  static void WaitForTheNextSecond() {
    auto now = std::chrono::system_clock::now();
    auto next = std::chrono::ceil<std::chrono::seconds>(now + std::chrono::milliseconds(1));
    while (std::chrono::system_clock::now() < next) {
      std::this_thread::sleep_until(next);
    }
  }
};

TEST_F(TrustTest, SignedRevisionsAreVerifiedAndStatusSaysByWhichKey) {
  const std::string old_key = Keygen("old");
  const std::string key = Keygen("origin");
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  WriteFile(model_ + "/weights.bin", RandomBytes(1 << 20, 3));
  std::string rev = Publish({"--sign-key", KeyPath("origin")});
  ASSERT_TRUE(PathExists(RepoDir() + "/revisions/" + rev + ".sig"));
  const std::string url = StartBuiltinServer();
  // Rotation: the node trusts the old and the new key.
  TrustConfig(url, {old_key, key});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev);
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_NE(st.out.find("signature:       verified, signed by " + key), std::string::npos)
      << st.out;
  st = Status({"--json"});
  EXPECT_NE(st.out.find("\"signature\":{\"required\":true,\"state\":\"verified\",\"signed_by\":\"" +
                        key + "\"}"),
            std::string::npos)
      << st.out;
  // The node keeps the document as served, for nodes below it.
  if (::access("/usr/bin/sqlite3", X_OK) == 0) {
    EXPECT_EQ(Sql("SELECT signatures FROM revisions WHERE revision = '" + rev + "'") + "\n",
              ReadFile(RepoDir() + "/revisions/" + rev + ".sig"));
  }
}

TEST_F(TrustTest, TheRewrittenRevisionAttackIsRefusedAndNothingChanges) {
  const std::string key = Keygen("origin");
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  const std::string rev1 = Publish({"--sign-key", KeyPath("origin")});
  const std::string url = StartBuiltinServer();
  TrustConfig(url, {key});
  ASSERT_EQ(Once().exit_code, 0);
  WriteFile(model_ + "/config.json", "{\"layers\": 3}");
  const std::string rev2 = Publish({"--sign-key", KeyPath("origin")});
  ForgeConfigJson("{\"evil\": true}");

  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("acme/llm-7b revision " + rev2), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the signatures are for manifest sha256"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"layers\": 2}");
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("FAILING"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("active revision: " + rev1), std::string::npos) << st.out;

  // The attacker signs with a key of their own: an unknown key.
  const std::string attacker = Keygen("attacker");
  std::string manifest = ReadFile(RepoDir() + "/revisions/" + rev2 + ".json");
  std::string sig = ReadFile(RepoDir() + "/revisions/" + rev2 + ".sig");
  ASSERT_FALSE(sig.empty());
  {
    // Re-sign the forged manifest by publishing it under the attacker's key:
    // take the real document and swap in the attacker's statement.
    auto parsed = ParseRevisionSignatures(sig);
    ASSERT_TRUE(parsed.ok());
    parsed->manifest_sha256 = Sha256Hex(manifest);
    parsed->signatures = {{attacker, parsed->signatures[0].signature}};
    WriteFile(RepoDir() + "/revisions/" + rev2 + ".sig", SerializeRevisionSignatures(*parsed));
  }
  r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("signed only by unknown keys"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(attacker), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"layers\": 2}");

  // The attacker drops the document: unsigned.
  std::filesystem::remove(RepoDir() + "/revisions/" + rev2 + ".sig");
  r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("acme/llm-7b revision " + rev2 + " is not signed"), std::string::npos)
      << r.err;
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"layers\": 2}");

  // Without trusted_keys the same forgery is served: what the keys prevent.
  WriteConfig({url});
  ASSERT_EQ(Once().exit_code, 0);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"evil\": true}");
  st = Status();
  EXPECT_NE(st.out.find("signature:       not required (no trusted_keys); the active revision "
                        "is unsigned"),
            std::string::npos)
      << st.out;
}

TEST_F(TrustTest, ARolledBackPointerIsRefusedUnlessTheOperatorAcceptsIt) {
  const std::string key = Keygen("origin");
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  const std::string rev1 = Publish({"--sign-key", KeyPath("origin")});
  const std::string pointer1 = ReadFile(RepoDir() + "/latest");
  WaitForTheNextSecond();
  WriteFile(model_ + "/config.json", "{\"layers\": 3}");
  const std::string rev2 = Publish({"--sign-key", KeyPath("origin")});
  const std::string url = StartBuiltinServer();
  TrustConfig(url, {key});
  ASSERT_EQ(Once().exit_code, 0);
  ASSERT_EQ(ServedRevision(), rev2);

  // A server replays the old, genuinely signed pointer.
  WriteFile(RepoDir() + "/latest", pointer1);
  namespace fs = std::filesystem;
  fs::last_write_time(RepoDir() + "/latest",
                      fs::last_write_time(RepoDir() + "/latest") + std::chrono::seconds(30));
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("acme/llm-7b revision " + rev1 + " is a rollback"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("accept_rollback_to"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), rev2);
  ProcessResult st = Status();
  EXPECT_NE(st.out.find("is a rollback"), std::string::npos) << st.out;

  // The operator accepts exactly that revision.
  TrustConfig(url, {key}, "accept_rollback_to = \"" + rev1 + "\"");
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "{\"layers\": 2}");
}

TEST_F(TrustTest, KeygenAndSignKeyMistakesAreNamed) {
  Keygen("origin");
  ProcessResult r = RunAgent({"keygen", "--out", KeyPath("origin")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists; keygen never overwrites a key"), std::string::npos)
      << r.err;
  WriteFile(model_ + "/a.txt", "a");
  r = RunAgent(
      {"publish", model_, "--repo", kRepo, "--out", pub_, "--sign-key", tmp_.path() + "/none.key"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("none.key"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(RepoDir() + "/latest"));
  r = RunAgent({"publish", model_, "--repo", kRepo, "--out", pub_, "--sign-key",
                KeyPath("origin") + ".pub"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a PEM private key"), std::string::npos) << r.err;

  // A bad key in the config is a config error with its line.
  WriteConfig({"file://" + pub_}, "trusted_keys = [\"ed25519:AAAA\"]");
  r = Once();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(config_ + ":4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("holds 3 bytes; an ed25519 public key is 32"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sync_agent::testing
