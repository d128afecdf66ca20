#include "common/base/byte_range.h"

namespace sync_agent {

Status CheckRangesArgument(const std::string& location, uint64_t file_size,
                           const std::vector<ByteRange>& ranges) {
  uint64_t end = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const ByteRange& r = ranges[i];
    std::string which = "range " + std::to_string(i) + " (offset " + std::to_string(r.offset) +
                        ", length " + std::to_string(r.length) + ")";
    if (r.length == 0) return Status::InvalidArgument("ranges of " + location, which + " is empty");
    if (r.offset < end) {
      return Status::InvalidArgument("ranges of " + location,
                                     which + " is out of order or overlaps the one before");
    }
    if (r.offset >= file_size || r.length > file_size - r.offset) {
      return Status::InvalidArgument(
          "ranges of " + location,
          which + " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
    }
    end = r.end();
  }
  return Status::OK();
}

Status FileSizeMismatch(const std::string& location, uint64_t actual, uint64_t expected,
                        const std::string& how) {
  return Status::Corruption(location, "has " + std::to_string(actual) + " bytes (" + how +
                                          ") but " + std::to_string(expected) +
                                          " were expected; the published file is not the one "
                                          "the manifest describes");
}

}  // namespace sync_agent
