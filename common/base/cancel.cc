#include "common/base/cancel.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace sync_agent {

CancelFlag::CancelFlag(const CancelFlag* parent) : parent_(parent) {
  if (parent_ != nullptr) parent_->AddChild(this);
}

CancelFlag::~CancelFlag() {
  if (parent_ != nullptr) parent_->RemoveChild(this);
}

void CancelFlag::AddChild(CancelFlag* child) const {
  std::lock_guard<std::mutex> lock(mu_);
  children_.push_back(child);
  // Registered under the lock, so a concurrent Cancel either sees the child
  // or has already set the flag read here.
  if (cancelled()) child->Cancel();
}

void CancelFlag::RemoveChild(CancelFlag* child) const {
  std::lock_guard<std::mutex> lock(mu_);
  children_.erase(std::remove(children_.begin(), children_.end(), child), children_.end());
}

void CancelFlag::Cancel() {
  // Children are cancelled under this flag's lock, so none can be destroyed
  // (RemoveChild takes the lock) while it is being cancelled. Locks are
  // always taken parent first, then child.
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  cv_.notify_all();
  for (Hook* h : hooks_) h->on_cancel_();
  for (CancelFlag* c : children_) c->Cancel();
}

CancelFlag::Hook::Hook(const CancelFlag* flag, std::function<void()> on_cancel)
    : flag_(flag), on_cancel_(std::move(on_cancel)) {
  if (flag_ == nullptr) return;
  std::lock_guard<std::mutex> lock(flag_->mu_);
  flag_->hooks_.push_back(this);
  if (flag_->cancelled()) on_cancel_();
}

CancelFlag::Hook::~Hook() {
  if (flag_ == nullptr) return;
  std::lock_guard<std::mutex> lock(flag_->mu_);
  auto& hooks = flag_->hooks_;
  hooks.erase(std::remove(hooks.begin(), hooks.end(), this), hooks.end());
}

bool CancelFlag::WaitUntil(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_until(lock, deadline, [this] { return cancelled(); });
}

bool PauseUntil(std::chrono::steady_clock::time_point deadline, const CancelFlag* cancel) {
  if (cancel != nullptr) return cancel->WaitUntil(deadline);
  std::this_thread::sleep_until(deadline);
  return true;
}

}  // namespace sync_agent
