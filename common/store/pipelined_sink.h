// PipelinedSink: runs another ObjectSink on a second thread. The transfer
// thread only copies received bytes into one of a few buffers; the worker
// hashes and writes them. On a 2-core node this overlaps the network with
// sha256 and disk I/O instead of doing them one after the other.
//
// Ordering is kept. An error from the inner sink is returned by the next
// Write() or by Finish(), which waits for everything queued. Begin() drains
// the queue and calls the inner Begin() on the caller's thread. Not thread
// safe: one transfer thread per PipelinedSink.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/source/source.h"

namespace sync_agent {

class PipelinedSink final : public ObjectSink {
 public:
  // inner must outlive this object. buffers * buffer_bytes bounds the memory used.
  explicit PipelinedSink(ObjectSink* inner, size_t buffers = 4, size_t buffer_bytes = 1 << 20);
  ~PipelinedSink() override;  // waits for the worker; drops unwritten data
  PipelinedSink(const PipelinedSink&) = delete;
  PipelinedSink& operator=(const PipelinedSink&) = delete;

  Status Begin(uint64_t offset) override;
  Status Write(const char* data, size_t n) override;
  // Waits until every queued byte went to the inner sink; its first error, if any.
  Status Drain();

 private:
  struct Buffer {
    std::vector<char> data;
    size_t used = 0;
  };
  void Work();
  Status Enqueue();

  ObjectSink* inner_;
  size_t buffer_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Buffer>> free_;     // guarded by mu_
  std::deque<std::unique_ptr<Buffer>> pending_;  // guarded by mu_
  bool busy_ = false;                            // worker holds a buffer; guarded by mu_
  bool quit_ = false;                            // guarded by mu_
  Status error_;                                 // first inner error; guarded by mu_
  std::unique_ptr<Buffer> filling_;              // transfer thread only
  std::thread worker_;
};

}  // namespace sync_agent
