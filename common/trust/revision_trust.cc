#include "common/trust/revision_trust.h"

#include "common/base/json_text.h"

namespace sync_agent {

namespace {

// "ed25519:AbCd…", short enough for a message, long enough to tell keys apart.
std::string KeyList(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

std::vector<std::string> Ids(const std::vector<PublicKey>& keys) {
  std::vector<std::string> out;
  for (const PublicKey& k : keys) out.push_back(k.id());
  return out;
}

}  // namespace

std::string SignedStatementText(const RevisionStatement& s) {
  return "sync-agent revision signature 1\nrepo " + s.repo + "\nrevision " + s.revision +
         "\nmanifest_sha256 " + s.manifest_sha256 + "\ncreated " + s.created + "\n";
}

Result<RevisionSignatures> SignRevision(const RevisionStatement& statement,
                                        const std::vector<PrivateKey>& keys) {
  RevisionSignatures doc;
  doc.repo = statement.repo;
  doc.revision = statement.revision;
  doc.manifest_sha256 = statement.manifest_sha256;
  doc.created = statement.created;
  const std::string text = SignedStatementText(statement);
  for (const PrivateKey& key : keys) {
    SA_ASSIGN_OR_RETURN(std::string sig, key.Sign(text));
    doc.signatures.push_back({key.public_key().id(), Base64Encode(sig)});
  }
  // What is written must read back: the same rules a node applies.
  SA_RETURN_IF_ERROR(ParseRevisionSignatures(SerializeRevisionSignatures(doc)).status());
  return doc;
}

Result<std::vector<PublicKey>> ParseTrustedKeys(const std::vector<std::string>& ids,
                                                std::string_view where) {
  std::vector<PublicKey> out;
  for (size_t i = 0; i < ids.size(); i++) {
    auto key = PublicKey::Parse(ids[i]);
    if (!key.ok()) {
      return key.status().WithContext(std::string(where) + " trusted_keys[" + std::to_string(i) +
                                      "]");
    }
    out.push_back(std::move(key).value());
  }
  return out;
}

Result<SignatureVerdict> VerifyRevisionSignatures(const std::optional<std::string>& doc_text,
                                                  const RevisionStatement& expected,
                                                  const std::vector<PublicKey>& trusted,
                                                  const std::string& location) {
  const std::string what = expected.repo + " revision " + expected.revision;
  const std::string trusted_ids = KeyList(Ids(trusted));
  if (!doc_text) {
    return Status::NotFound(what + " is not signed",
                            "there is no " + location +
                                ", and trusted_keys requires a signature "
                                "by one of " +
                                trusted_ids +
                                "; publish with --sign-key, or remove trusted_keys to accept "
                                "unsigned revisions");
  }
  auto parsed = ParseRevisionSignatures(*doc_text);
  if (!parsed.ok()) return parsed.status().WithContext(what + ": " + location);
  const RevisionSignatures& doc = *parsed;
  auto mismatch = [&](const char* field, const std::string& got, const std::string& want) {
    return Status::Corruption(what + ": " + location,
                              std::string("the signatures are for ") + field + " " +
                                  JsonQuote(got) + ", not " + JsonQuote(want) +
                                  " (a signature moved from elsewhere); refusing the revision");
  };
  if (doc.repo != expected.repo) return mismatch("repository", doc.repo, expected.repo);
  if (doc.revision != expected.revision) {
    return mismatch("revision", doc.revision, expected.revision);
  }
  if (doc.manifest_sha256 != expected.manifest_sha256) {
    return mismatch("manifest sha256", doc.manifest_sha256, expected.manifest_sha256);
  }
  if (doc.created != expected.created) return mismatch("created", doc.created, expected.created);

  const std::string text = SignedStatementText(expected);
  std::vector<std::string> untrusted;
  for (const RevisionSignature& sig : doc.signatures) {
    const PublicKey* key = nullptr;
    for (const PublicKey& k : trusted) {
      if (k.id() == sig.key) key = &k;
    }
    if (key == nullptr) {
      untrusted.push_back(sig.key);
      continue;
    }
    auto raw = Base64Decode(sig.signature);
    if (!raw || !key->Verify(text, *raw)) {
      // A trusted key's name on a signature that does not verify is an
      // attack or damage, not a reason to look further.
      return Status::Corruption(what + ": " + location,
                                "the signature by " + sig.key +
                                    " does not verify (forged or damaged); refusing the revision");
    }
    return SignatureVerdict{sig.key};
  }
  if (doc.signatures.empty()) {
    return Status::NotFound(
        what + " is not signed",
        location + " lists no signatures; trusted_keys requires one by " + trusted_ids);
  }
  return Status::NotFound(what + " is signed only by unknown keys",
                          location + " is signed by " + KeyList(untrusted) +
                              ", none of them in trusted_keys (" + trusted_ids +
                              "); add the publisher's key to trusted_keys if you trust it");
}

}  // namespace sync_agent
