#include "common/trust/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/fs/env.h"

namespace sync_agent {

namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, EvpPkeyDeleter());
}

// The reason OpenSSL gave for the last failure, and its queue cleared.
std::string OpenSslReason() {
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (rest == 2) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      int d = k >= 4 - pad ? 0 : Base64Value(text[i + k]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | uint32_t(d);
    }
    out += char((v >> 16) & 0xff);
    if (pad < 2) out += char((v >> 8) & 0xff);
    if (pad < 1) out += char(v & 0xff);
    // Canonical only: the bits the padding drops must be zero.
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return std::nullopt;
  }
  return out;
}

Result<PublicKey> PublicKey::FromRaw(const std::array<uint8_t, kEd25519KeyBytes>& raw) {
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
  if (key == nullptr) {
    return Status::InvalidArgument("ed25519 public key", OpenSslReason());
  }
  PublicKey out;
  out.key_ = Share(key);
  out.id_ = std::string(kEd25519KeyPrefix) +
            Base64Encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  return out;
}

Result<PublicKey> PublicKey::Parse(std::string_view id) {
  const std::string what = "public key \"" + std::string(id.substr(0, 80)) + "\"";
  if (id.substr(0, kEd25519KeyPrefix.size()) != kEd25519KeyPrefix) {
    return Status::InvalidArgument(what,
                                   "does not start with \"ed25519:\" (write keys as "
                                   "`sync-agent keygen` prints them)");
  }
  auto raw = Base64Decode(id.substr(kEd25519KeyPrefix.size()));
  if (!raw) return Status::InvalidArgument(what, "is not valid base64 after \"ed25519:\"");
  if (raw->size() != kEd25519KeyBytes) {
    return Status::InvalidArgument(
        what, "holds " + std::to_string(raw->size()) + " bytes; an ed25519 public key is 32");
  }
  std::array<uint8_t, kEd25519KeyBytes> bytes;
  std::copy(raw->begin(), raw->end(), bytes.begin());
  return FromRaw(bytes);
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (!key_ || signature.size() != kEd25519SignatureBytes) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

Result<PrivateKey> PrivateKey::Generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return Status::IOError("generate an ed25519 key", OpenSslReason());
  PrivateKey out;
  out.key_ = Share(key);
  std::array<uint8_t, kEd25519KeyBytes> raw;
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
    return Status::IOError("generate an ed25519 key", OpenSslReason());
  }
  SA_ASSIGN_OR_RETURN(out.public_, PublicKey::FromRaw(raw));
  return out;
}

Result<PrivateKey> PrivateKey::Load(Env* env, const std::string& path) {
  SA_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(env, path, 64 * 1024));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::IOError("read signing key " + path, OpenSslReason());
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return Status::InvalidArgument("signing key " + path,
                                   "is not a PEM private key (" + OpenSslReason() +
                                       "); make one with `sync-agent keygen --out " + path + "`");
  }
  PrivateKey out;
  out.key_ = Share(key);
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument("signing key " + path,
                                   "is not an ed25519 key; sync-agent signs with ed25519 only "
                                   "(`sync-agent keygen --out FILE` makes one)");
  }
  std::array<uint8_t, kEd25519KeyBytes> raw;
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
    return Status::InvalidArgument("signing key " + path, OpenSslReason());
  }
  SA_ASSIGN_OR_RETURN(out.public_, PublicKey::FromRaw(raw));
  return out;
}

Result<std::string> PrivateKey::Sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return Status::IOError("sign with " + public_.id(), OpenSslReason());
  }
  std::string sig(kEd25519SignatureBytes, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != kEd25519SignatureBytes) {
    return Status::IOError("sign with " + public_.id(), OpenSslReason());
  }
  return sig;
}

Result<std::string> PrivateKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::IOError("encode private key", OpenSslReason());
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

namespace {

// Writes data to path without ever replacing a file there: a temporary file
// is written, synced and hard-linked to path (link(2) fails on an existing
// name), then the temporary name is removed.
Status WriteNewFile(Env* env, const std::string& path, std::string_view data, uint32_t mode) {
  const std::string tmp = path + ".tmp-keygen";
  Status s = [&]() -> Status {
    SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, mode));
    SA_RETURN_IF_ERROR(file->Append(data.data(), data.size()));
    SA_RETURN_IF_ERROR(file->Sync());
    SA_RETURN_IF_ERROR(file->Close());
    // The umask may have narrowed the mode; a private key must be exactly 0600.
    SA_RETURN_IF_ERROR(env->Chmod(tmp, mode));
    return env->Link(tmp, path);
  }();
  // The temporary name never outlives the call, whatever failed.
  Status removed = env->RemoveFile(tmp);
  SA_RETURN_IF_ERROR(s);
  SA_RETURN_IF_ERROR(removed);
  return env->SyncDir(DirName(path));
}

}  // namespace

Result<PublicKey> GenerateKeyFiles(Env* env, const std::string& path) {
  const std::string pub_path = path + ".pub";
  for (const std::string& p : {path, pub_path}) {
    if (env->Lstat(p).ok()) {
      return Status::InvalidArgument("keygen " + path,
                                     p + " already exists; keygen never overwrites a key (move it "
                                         "away or choose another --out)");
    }
  }
  SA_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate());
  SA_ASSIGN_OR_RETURN(std::string pem, key.ToPem());
  SA_RETURN_IF_ERROR(WriteNewFile(env, path, pem, 0600));
  Status s = WriteNewFile(env, pub_path, key.public_key().id() + "\n", 0644);
  if (!s.ok()) {
    // Leave no private key without its public half.
    (void)env->RemoveFile(path);
    return s;
  }
  return key.public_key();
}

}  // namespace sync_agent
