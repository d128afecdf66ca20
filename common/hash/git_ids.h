// The ids git gives content, which Hugging Face hubs use as file ids: a blob
// id is the sha1 of "blob <size>\0" followed by the content; a Git LFS file
// is stored as a small pointer text (git-lfs docs/spec.md, version 1) whose
// blob id stands for the large content in the tree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sync_agent {

// The blob id of content of a size known before the first byte. Not thread
// safe; one per stream.
class GitBlobHasher {
 public:
  explicit GitBlobHasher(uint64_t size);
  ~GitBlobHasher();
  GitBlobHasher(const GitBlobHasher&) = delete;
  GitBlobHasher& operator=(const GitBlobHasher&) = delete;

  void Update(const void* data, size_t n);
  // 40 lowercase hex digits. The bytes given must add up to size (else the
  // id is of another header and will not match).
  std::string Finish();
  uint64_t received() const { return received_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t received_ = 0;
};

std::string GitBlobId(std::string_view content);

// "version https://git-lfs.github.com/spec/v1\noid sha256:<hex>\nsize <n>\n".
std::string LfsPointerText(std::string_view sha256, uint64_t size);

}  // namespace sync_agent
