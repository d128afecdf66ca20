// A range of bytes in a file: [offset, offset + length), and the checks that
// every reader of ranges shares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
};

// kInvalidArgument naming location unless ranges are sorted,
// non-overlapping, non-empty and inside [0, file_size).
Status CheckRangesArgument(const std::string& location, uint64_t file_size,
                           const std::vector<ByteRange>& ranges);

// kCorruption: the file at location has actual bytes where the caller
// expected file_size (it is not the file the manifest describes). how says
// where the size came from, e.g. "Content-Range: bytes 0-9/20".
Status FileSizeMismatch(const std::string& location, uint64_t actual, uint64_t expected,
                        const std::string& how);

}  // namespace sync_agent
