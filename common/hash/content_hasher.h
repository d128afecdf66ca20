// Content hashes used across sync-agent: sha256 (OpenSSL) is the identity of
// content and what every download is verified against; xxh3-128 (xxHash) is a
// fast second hash recorded in the manifest for cheap local scrubbing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace sync_agent {

class Env;

struct ContentDigest {
  uint64_t size = 0;
  std::string sha256;    // 64 lowercase hex digits
  std::string xxh3_128;  // 32 lowercase hex digits
};

// Streams bytes into both hashes at once. Not thread safe; one per stream.
class ContentHasher {
 public:
  // kXxh3Only skips sha256 (a scrub at xxh3's speed); sha256 is then "".
  enum class Which { kBoth, kXxh3Only };
  explicit ContentHasher(Which which = Which::kBoth);
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;

  void Update(const void* data, size_t n);
  // Ends the stream; the hasher must not be updated afterwards.
  ContentDigest Finish();
  uint64_t size() const { return size_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  bool sha256_;
  uint64_t size_ = 0;
};

// Hashes a whole file through env, reading in 1 MiB pieces.
Result<ContentDigest> HashFile(Env* env, const std::string& path,
                               ContentHasher::Which which = ContentHasher::Which::kBoth);
// Hashes an in-memory buffer.
ContentDigest HashBytes(std::string_view data);
std::string Sha256Hex(std::string_view data);

bool IsLowerHex(std::string_view s, size_t len);
// n bytes as 2n lowercase hex digits.
std::string LowerHex(const unsigned char* bytes, size_t n);

}  // namespace sync_agent
