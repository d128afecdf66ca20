// A range of bytes in a file: [offset, offset + length).
#pragma once

#include <cstdint>

namespace sync_agent {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
};

}  // namespace sync_agent
