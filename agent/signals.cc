#include "agent/signals.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/base/log.h"

namespace sync_agent {

struct SignalWatcher::Impl {
  sigset_t set;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool quit = false;
};

SignalWatcher::SignalWatcher() : impl_(new Impl) {
  sigemptyset(&impl_->set);
  sigaddset(&impl_->set, SIGTERM);
  sigaddset(&impl_->set, SIGINT);
  sigaddset(&impl_->set, SIGHUP);
  sigaddset(&impl_->set, SIGUSR1);  // used internally to wake the watcher on exit
  pthread_sigmask(SIG_BLOCK, &impl_->set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  impl_->thread = std::thread([this] {
    while (true) {
      int sig = 0;
      if (sigwait(&impl_->set, &sig) != 0) continue;
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (sig == SIGUSR1 && impl_->quit) return;
      if (sig == SIGTERM || sig == SIGINT) {
        if (stop_.cancelled()) {
          LogWarning("second stop signal; stopping now");
        } else {
          LogInfo(sig == SIGTERM ? "SIGTERM: stopping after the current step"
                                 : "SIGINT: stopping after the current step");
          stop_.Cancel();
        }
      } else if (sig == SIGHUP) {
        LogInfo("SIGHUP: reloading the configuration");
        reload_ = true;
      }
      impl_->cv.notify_all();
    }
  });
}

SignalWatcher::~SignalWatcher() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->quit = true;
  }
  pthread_kill(impl_->thread.native_handle(), SIGUSR1);
  impl_->thread.join();
  delete impl_;
}

void SignalWatcher::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [this] { return stop_.cancelled() || reload_.load(); });
}

}  // namespace sync_agent
