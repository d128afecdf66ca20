#include "common/hash/content_hasher.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <vector>

#include "common/fs/env.h"

namespace sync_agent {
namespace {

struct EvpCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct Xxh3Deleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

}  // namespace

struct ContentHasher::State {
  std::unique_ptr<EVP_MD_CTX, EvpCtxDeleter> sha{EVP_MD_CTX_new()};
  std::unique_ptr<XXH3_state_t, Xxh3Deleter> xxh{XXH3_createState()};
};

ContentHasher::ContentHasher(Which which) : state_(new State), sha256_(which == Which::kBoth) {
  // Allocation failure of a few hundred bytes is not recoverable here.
  if (!state_->sha || !state_->xxh ||
      EVP_DigestInit_ex(state_->sha.get(), EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
  XXH3_128bits_reset(state_->xxh.get());
}

ContentHasher::~ContentHasher() = default;

void ContentHasher::Update(const void* data, size_t n) {
  if (sha256_) EVP_DigestUpdate(state_->sha.get(), data, n);
  XXH3_128bits_update(state_->xxh.get(), data, n);
  size_ += n;
}

ContentDigest ContentHasher::Finish() {
  ContentDigest d;
  d.size = size_;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->sha.get(), md, &len);
  if (sha256_) d.sha256 = LowerHex(md, len);
  XXH128_hash_t h = XXH3_128bits_digest(state_->xxh.get());
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  d.xxh3_128 = LowerHex(canon.digest, sizeof canon.digest);
  return d;
}

Result<ContentDigest> HashFile(Env* env, const std::string& path, ContentHasher::Which which) {
  SA_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  ContentHasher hasher(which);
  std::vector<char> buf(1 << 20);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
    if (n == 0) break;
    hasher.Update(buf.data(), n);
  }
  return hasher.Finish();
}

ContentDigest HashBytes(std::string_view data) {
  ContentHasher hasher;
  hasher.Update(data.data(), data.size());
  return hasher.Finish();
}

std::string Sha256Hex(std::string_view data) { return HashBytes(data).sha256; }

std::string LowerHex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

bool IsLowerHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace sync_agent
