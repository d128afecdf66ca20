// PipelinedSink: runs the work of an ObjectSink on other threads. The
// transfer thread only copies received bytes into one of a few buffers;
// workers consume them. On a 2-core node this overlaps the network (or a
// delta being applied) with sha256 and disk I/O instead of doing them one
// after the other.
//
// A sink may be split into stages that each see every byte, in order, on a
// thread of their own: ObjectDownload hashes on one and writes on another,
// so neither waits for the other. A buffer is reused once every stage is done
// with it.
//
// The first error of any stage is returned by the next Write() or by Drain(),
// which waits for everything queued. Begin() drains the queue and calls the
// begin function on the caller's thread. Not thread safe: one transfer thread
// per PipelinedSink.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/base/byte_sink.h"
#include "common/base/status.h"

namespace sync_agent {

class ObjectDownload;

class PipelinedSink final : public ObjectSink {
 public:
  using StageFn = std::function<Status(const char* data, size_t n)>;
  using BeginFn = std::function<Status(uint64_t offset)>;

  // One stage: inner's Write. inner must outlive this object. buffers *
  // buffer_bytes bounds the memory used.
  explicit PipelinedSink(ObjectSink* inner, size_t buffers = 4, size_t buffer_bytes = 1 << 20);
  // Two stages: download's Hash and Store.
  explicit PipelinedSink(ObjectDownload* download, size_t buffers = 4,
                         size_t buffer_bytes = 1 << 20);
  PipelinedSink(BeginFn begin, std::vector<StageFn> stages, size_t buffers, size_t buffer_bytes);
  ~PipelinedSink() override;  // waits for the workers; drops unconsumed data
  PipelinedSink(const PipelinedSink&) = delete;
  PipelinedSink& operator=(const PipelinedSink&) = delete;

  Status Begin(uint64_t offset) override;
  Status Write(const char* data, size_t n) override;
  // Waits until every queued byte went through every stage (after an error too:
  // no stage is still running when it returns); the first error, if any.
  Status Drain();

 private:
  struct Buffer {
    std::vector<char> data;
    size_t used = 0;
    size_t stages_left = 0;  // guarded by mu_
  };
  struct Stage {
    StageFn fn;
    std::deque<Buffer*> pending;  // guarded by mu_
    bool busy = false;            // guarded by mu_
    std::thread worker;
  };
  void Work(Stage* stage);
  Status Enqueue();
  bool Idle() const;  // requires mu_

  BeginFn begin_;
  size_t buffer_bytes_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Buffer*> free_;   // guarded by mu_
  bool quit_ = false;          // guarded by mu_
  Status error_;               // first stage error; guarded by mu_
  Buffer* filling_ = nullptr;  // transfer thread only
};

}  // namespace sync_agent
