// Ed25519 keys and signatures through OpenSSL's EVP interface: the one RAII
// wrapper of OpenSSL's signing objects in sync-agent.
//
// A public key is written as "ed25519:<base64 of its 32 raw bytes>" (its key
// id), in configs (trusted_keys), in signature documents and in messages.
// Private keys are PKCS#8 PEM files, as `openssl genpkey -algorithm ed25519`
// writes them.
//
// Thread safety: a PublicKey or PrivateKey may be used by several threads
// at once (OpenSSL's EVP_PKEY is reference counted and read-only here).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace sync_agent {

class Env;

inline constexpr size_t kEd25519KeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;
inline constexpr std::string_view kEd25519KeyPrefix = "ed25519:";

// Standard base64 with padding (RFC 4648 section 4).
std::string Base64Encode(std::string_view bytes);
// Strict: only the canonical encoding of some bytes is accepted (no
// whitespace, correct padding, zero unused bits); nullopt otherwise.
std::optional<std::string> Base64Decode(std::string_view text);

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

class PublicKey {
 public:
  // Parses "ed25519:<base64>". kInvalidArgument naming what is wrong.
  static Result<PublicKey> Parse(std::string_view id);
  static Result<PublicKey> FromRaw(const std::array<uint8_t, kEd25519KeyBytes>& raw);

  // "ed25519:<base64>"
  const std::string& id() const { return id_; }
  // Whether signature (64 raw bytes) is this key's signature of message.
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  friend class PrivateKey;
  PublicKey() = default;
  std::string id_;
  std::shared_ptr<EVP_PKEY> key_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> Generate();
  // Reads a PKCS#8 PEM Ed25519 private key. Errors name the path and say
  // whether the file is missing, unreadable, not PEM, or another algorithm.
  static Result<PrivateKey> Load(Env* env, const std::string& path);

  const PublicKey& public_key() const { return public_; }
  // The 64-byte signature of message.
  Result<std::string> Sign(std::string_view message) const;
  // PKCS#8 PEM text.
  Result<std::string> ToPem() const;

 private:
  PrivateKey() = default;
  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_;
};

// `sync-agent keygen`: writes a new private key to path (mode 0600) and its
// key id to path + ".pub" (mode 0644, one line). Never overwrites: an
// existing file at either path is kInvalidArgument and nothing is written.
// Returns the public key.
Result<PublicKey> GenerateKeyFiles(Env* env, const std::string& path);

}  // namespace sync_agent
