// Signed revisions: what a publisher signs and what a node checks before it
// trusts a revision (schema/signature_format.md).
//
// The signed message is the statement
//   "sync-agent revision signature 1\n"
//   "repo <org/name>\nrevision <id>\nmanifest_sha256 <hex>\ncreated <time>\n"
// Every field is validated to hold no newline, so the statement has one
// reading. A signature thus binds the repository, the revision, the exact
// manifest (and through its sha256 every file's sha256) and the creation
// time that rollback protection compares.
#pragma once

#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/manifest/manifest.h"
#include "common/trust/ed25519.h"

namespace sync_agent {

// What a signature vouches for.
struct RevisionStatement {
  std::string repo;
  std::string revision;
  std::string manifest_sha256;
  std::string created;
};
std::string SignedStatementText(const RevisionStatement& statement);

// The signature document for statement, signed by each key in order.
Result<RevisionSignatures> SignRevision(const RevisionStatement& statement,
                                        const std::vector<PrivateKey>& keys);

// Parses a config's trusted_keys; errors name the bad entry by index.
Result<std::vector<PublicKey>> ParseTrustedKeys(const std::vector<std::string>& ids,
                                                std::string_view where);

// How a revision's signatures were judged.
struct SignatureVerdict {
  std::string key;  // the trusted key whose signature verified
};

// Checks the signature document text (as fetched from `location`) for the
// revision `expected` against the trusted keys. The errors, each naming the
// repository, the revision and the location:
//   kNotFound      no document (doc is nullopt): "is not signed"
//   kInvalidArgument a malformed document
//   kCorruption    the document is for another repository, revision,
//                  manifest or creation time (a moved signature), or a
//                  signature by a trusted key does not verify (forged or
//                  damaged)
//   kNotFound      signed only by keys that are not trusted (naming them)
Result<SignatureVerdict> VerifyRevisionSignatures(const std::optional<std::string>& doc,
                                                  const RevisionStatement& expected,
                                                  const std::vector<PublicKey>& trusted,
                                                  const std::string& location);

}  // namespace sync_agent
