#include "common/store/pipelined_sink.h"

#include <algorithm>
#include <cstring>

namespace sync_agent {

PipelinedSink::PipelinedSink(ObjectSink* inner, size_t buffers, size_t buffer_bytes)
    : inner_(inner), buffer_bytes_(buffer_bytes) {
  for (size_t i = 0; i < std::max<size_t>(buffers, 2); ++i) {
    auto b = std::make_unique<Buffer>();
    b->data.resize(buffer_bytes_);
    free_.push_back(std::move(b));
  }
  worker_ = std::thread([this] { Work(); });
}

PipelinedSink::~PipelinedSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
    pending_.clear();
  }
  cv_.notify_all();
  worker_.join();
}

void PipelinedSink::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return quit_ || !pending_.empty(); });
    if (quit_) return;
    std::unique_ptr<Buffer> b = std::move(pending_.front());
    pending_.pop_front();
    busy_ = true;
    bool skip = !error_.ok();
    lock.unlock();
    Status s = skip ? Status::OK() : inner_->Write(b->data.data(), b->used);
    lock.lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) error_ = s;
    b->used = 0;
    free_.push_back(std::move(b));
    cv_.notify_all();
  }
}

Status PipelinedSink::Enqueue() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(std::move(filling_));
  cv_.notify_all();
  return error_;
}

Status PipelinedSink::Write(const char* data, size_t n) {
  while (n > 0) {
    if (!filling_) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !free_.empty() || !error_.ok(); });
      if (!error_.ok()) return error_;
      filling_ = std::move(free_.front());
      free_.pop_front();
    }
    size_t take = std::min(n, buffer_bytes_ - filling_->used);
    std::memcpy(filling_->data.data() + filling_->used, data, take);
    filling_->used += take;
    data += take;
    n -= take;
    if (filling_->used == buffer_bytes_) SA_RETURN_IF_ERROR(Enqueue());
  }
  return Status::OK();
}

Status PipelinedSink::Drain() {
  if (filling_ && filling_->used > 0) {
    Status s = Enqueue();
    if (!s.ok()) return s;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return pending_.empty() && !busy_; });
  if (filling_) {
    free_.push_back(std::move(filling_));
  }
  return error_;
}

Status PipelinedSink::Begin(uint64_t offset) {
  SA_RETURN_IF_ERROR(Drain());
  return inner_->Begin(offset);
}

}  // namespace sync_agent
