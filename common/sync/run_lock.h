// RunLock: one sync at a time per state directory. A second agent (a timer
// run while an operator runs --once) gets kBusy naming the holder's pid
// instead of corrupting anything. The lock is an flock(2), so it is released
// by the kernel when the holder dies, even by SIGKILL.
#pragma once

#include <string>

#include "common/base/status.h"

namespace sync_agent {

class RunLock {
 public:
  RunLock() = default;
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // Takes <state_dir>/lock without waiting.
  Status TryAcquire(const std::string& state_dir);
  bool held() const { return fd_ >= 0; }
  // True if some process holds the lock of state_dir right now (a sync is
  // running). Takes and drops a shared lock; never blocks; needs no write access.
  static bool IsHeldByAnyone(const std::string& state_dir);

 private:
  int fd_ = -1;
};

// SwapLock: serialises changes of the revision a repository serves (a run's
// swap, `sync-agent pin`) across processes and threads, so that a pin made
// while a sync transfers is seen by that sync before it swaps. It is held
// for a swap's few system calls and database writes; Acquire waits for it.
// An flock(2) on <state_dir>/swap.lock, one open file per holder.
class SwapLock {
 public:
  SwapLock() = default;
  ~SwapLock();
  SwapLock(const SwapLock&) = delete;
  SwapLock& operator=(const SwapLock&) = delete;

  Status Acquire(const std::string& state_dir);

 private:
  int fd_ = -1;
};

}  // namespace sync_agent
