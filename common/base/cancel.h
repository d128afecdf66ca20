// CancelFlag: a stop request that threads look at and wait on.
//
// A flag may have a parent: it then counts as cancelled as soon as the parent
// is, and a wait on it wakes when the parent is cancelled. The agent has one
// root flag, set when SIGTERM or SIGINT arrives; each repository's run has a
// child of it that the run also sets to stop its other transfers after one
// failed. Waits use a condition variable, so a stop acts at once instead of
// at the end of a polling slice, and an idle wait costs nothing.
//
// Thread safety: every method may be called from any thread. A flag must
// outlive its children.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace sync_agent {

class CancelFlag {
 public:
  CancelFlag() = default;
  // Cancelled whenever parent is (which may be null: no parent).
  explicit CancelFlag(const CancelFlag* parent);
  ~CancelFlag();
  CancelFlag(const CancelFlag&) = delete;
  CancelFlag& operator=(const CancelFlag&) = delete;

  // Cancels this flag and its children, and wakes every waiter. Idempotent.
  void Cancel();
  // Whether this flag or an ancestor has been cancelled.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // The same, named as std::atomic<bool>'s reader so that `flag->load()` reads naturally.
  bool load() const { return cancelled(); }

  // Waits until the deadline passes (true) or the flag is cancelled (false).
  bool WaitUntil(std::chrono::steady_clock::time_point deadline) const;
  template <typename Rep, typename Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) const {
    return WaitUntil(std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
  }

  // Calls a function once when the flag is cancelled, for a waiter on
  // another condition variable that must also wake on a stop. The function
  // runs in the cancelling thread with the flag's lock held, and may take
  // the waiter's mutex: create the Hook before taking that mutex, never
  // while holding it. It runs at once when the flag is cancelled already.
  // A null flag makes an inert hook.
  class Hook {
   public:
    Hook(const CancelFlag* flag, std::function<void()> on_cancel);
    ~Hook();
    Hook(const Hook&) = delete;
    Hook& operator=(const Hook&) = delete;

   private:
    friend class CancelFlag;
    const CancelFlag* flag_;
    std::function<void()> on_cancel_;
  };

 private:
  void AddChild(CancelFlag* child) const;
  void RemoveChild(CancelFlag* child) const;

  const CancelFlag* parent_ = nullptr;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<CancelFlag*> children_;  // guarded by mu_
  mutable std::vector<Hook*> hooks_;           // guarded by mu_
};

// Waits until deadline unless cancel (which may be null) is cancelled first.
// Returns false when cancelled. For backoff and Retry-After waits.
bool PauseUntil(std::chrono::steady_clock::time_point deadline, const CancelFlag* cancel);

}  // namespace sync_agent
