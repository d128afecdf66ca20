// Where fetched bytes go: the interfaces between those that read content (a
// source, a delta, a local copy) and those that keep it (the object store, a
// verifying buffer). Kept here, below both, so that neither depends on the
// other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "common/base/status.h"

namespace sync_agent {

// Receives an object's bytes. The writer calls Begin() once before any data
// with the offset the data starts at: the requested offset when the writer
// honours it, 0 when it sends the whole object again (the sink must then
// discard what it had).
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  virtual Status Begin(uint64_t offset) = 0;
  virtual Status Write(const char* data, size_t n) = 0;
};

// Receives ranged data: n bytes of the file starting at offset.
using RangeSink = std::function<Status(uint64_t offset, const char* data, size_t n)>;

}  // namespace sync_agent
