// Signal handling for the agent. SIGTERM and SIGINT request a stop (transfers
// notice within one read); SIGHUP requests a config reload. Signals are
// blocked in every thread and taken by one watcher thread with sigwait(), so
// no work happens in a signal handler.
#pragma once

#include <atomic>
#include <chrono>

#include "common/base/cancel.h"

namespace sync_agent {

class SignalWatcher {
 public:
  // Blocks the signals in the calling thread (call before starting threads)
  // and starts the watcher.
  SignalWatcher();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  const CancelFlag* stop_flag() const { return &stop_; }
  bool stop_requested() const { return stop_.cancelled(); }
  // True once per SIGHUP.
  bool TakeReload() { return reload_.exchange(false); }
  // Sleeps until the timeout passes, a stop is requested or SIGHUP arrives.
  void WaitFor(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  Impl* impl_;
  CancelFlag stop_;
  std::atomic<bool> reload_{false};
};

}  // namespace sync_agent
