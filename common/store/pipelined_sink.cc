#include "common/store/pipelined_sink.h"

#include <algorithm>
#include <cstring>

#include "common/store/object_store.h"

namespace sync_agent {

PipelinedSink::PipelinedSink(ObjectSink* inner, size_t buffers, size_t buffer_bytes)
    : PipelinedSink([inner](uint64_t offset) { return inner->Begin(offset); },
                    {[inner](const char* data, size_t n) { return inner->Write(data, n); }},
                    buffers, buffer_bytes) {}

PipelinedSink::PipelinedSink(ObjectDownload* download, size_t buffers, size_t buffer_bytes)
    : PipelinedSink([download](uint64_t offset) { return download->Begin(offset); },
                    {[download](const char* data, size_t n) { return download->Hash(data, n); },
                     [download](const char* data, size_t n) { return download->Store(data, n); }},
                    buffers, buffer_bytes) {}

PipelinedSink::PipelinedSink(BeginFn begin, std::vector<StageFn> stages, size_t buffers,
                             size_t buffer_bytes)
    : begin_(std::move(begin)), buffer_bytes_(buffer_bytes) {
  for (size_t i = 0; i < std::max<size_t>(buffers, 2); ++i) {
    auto b = std::make_unique<Buffer>();
    b->data.resize(buffer_bytes_);
    free_.push_back(b.get());
    buffers_.push_back(std::move(b));
  }
  for (StageFn& fn : stages) {
    auto stage = std::make_unique<Stage>();
    stage->fn = std::move(fn);
    stages_.push_back(std::move(stage));
  }
  for (auto& stage : stages_) {
    Stage* s = stage.get();
    s->worker = std::thread([this, s] { Work(s); });
  }
}

PipelinedSink::~PipelinedSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
    for (auto& stage : stages_) stage->pending.clear();
  }
  cv_.notify_all();
  for (auto& stage : stages_) stage->worker.join();
}

bool PipelinedSink::Idle() const {
  return std::all_of(stages_.begin(), stages_.end(),
                     [](const auto& s) { return s->pending.empty() && !s->busy; });
}

void PipelinedSink::Work(Stage* stage) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return quit_ || !stage->pending.empty(); });
    if (quit_) return;
    Buffer* b = stage->pending.front();
    stage->pending.pop_front();
    stage->busy = true;
    bool skip = !error_.ok();
    lock.unlock();
    Status s = skip ? Status::OK() : stage->fn(b->data.data(), b->used);
    lock.lock();
    stage->busy = false;
    if (!s.ok() && error_.ok()) error_ = s;
    if (--b->stages_left == 0) {
      b->used = 0;
      free_.push_back(b);
    }
    cv_.notify_all();
  }
}

Status PipelinedSink::Enqueue() {
  std::lock_guard<std::mutex> lock(mu_);
  filling_->stages_left = stages_.size();
  for (auto& stage : stages_) stage->pending.push_back(filling_);
  filling_ = nullptr;
  cv_.notify_all();
  return error_;
}

Status PipelinedSink::Write(const char* data, size_t n) {
  while (n > 0) {
    if (filling_ == nullptr) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !free_.empty() || !error_.ok(); });
      if (!error_.ok()) return error_;
      filling_ = free_.front();
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
  // After an error too: a stage may still be inside its function, and the
  // caller may look at what the stages wrote once Drain returns.
  if (filling_ != nullptr && filling_->used > 0) Enqueue();  // its error is returned below
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return Idle(); });
  if (filling_ != nullptr) {
    free_.push_back(filling_);
    filling_ = nullptr;
  }
  return error_;
}

Status PipelinedSink::Begin(uint64_t offset) {
  SA_RETURN_IF_ERROR(Drain());
  return begin_(offset);
}

}  // namespace sync_agent
