// VerifyingSink: receives a file whose size and sha256 are known in advance
// (a published signature or delta, a Git LFS object), hashes it while it
// arrives, refuses bytes past the expected size, and hands the bytes on.
// Verify() then says whether what arrived is exactly that file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/base/byte_sink.h"
#include "common/base/status.h"
#include "common/hash/content_hasher.h"

namespace sync_agent {

class VerifyingSink final : public ObjectSink {
 public:
  using Out = std::function<Status(const char* data, size_t n)>;
  // what names the file in errors ("delta http://..."); out receives the bytes.
  VerifyingSink(std::string what, uint64_t size, std::string sha256, Out out);

  // Only a download from the start, once: a source may not resume it.
  Status Begin(uint64_t offset) override;
  Status Write(const char* data, size_t n) override;
  // kCorruption unless exactly size bytes with that sha256 arrived.
  Status Verify();
  uint64_t received() const { return hasher_.size(); }

 private:
  std::string what_;
  uint64_t size_;
  std::string sha256_;
  Out out_;
  ContentHasher hasher_;
  bool begun_ = false;
};

}  // namespace sync_agent
