#include "common/hash/git_ids.h"

#include <openssl/evp.h>

#include <cstdlib>

#include "common/hash/content_hasher.h"

namespace sync_agent {

struct GitBlobHasher::State {
  struct Deleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Deleter> sha1{EVP_MD_CTX_new()};
};

GitBlobHasher::GitBlobHasher(uint64_t size) : state_(new State) {
  if (!state_->sha1 || EVP_DigestInit_ex(state_->sha1.get(), EVP_sha1(), nullptr) != 1) {
    std::abort();  // a few hundred bytes; not recoverable here
  }
  const std::string header = "blob " + std::to_string(size) + std::string(1, '\0');
  EVP_DigestUpdate(state_->sha1.get(), header.data(), header.size());
}

GitBlobHasher::~GitBlobHasher() = default;

void GitBlobHasher::Update(const void* data, size_t n) {
  EVP_DigestUpdate(state_->sha1.get(), data, n);
  received_ += n;
}

std::string GitBlobHasher::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->sha1.get(), md, &len);
  return LowerHex(md, len);
}

std::string GitBlobId(std::string_view content) {
  GitBlobHasher h(content.size());
  h.Update(content.data(), content.size());
  return h.Finish();
}

std::string LfsPointerText(std::string_view sha256, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + std::string(sha256) +
         "\nsize " + std::to_string(size) + "\n";
}

}  // namespace sync_agent
