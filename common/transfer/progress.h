// TransferProgress: how far a run's downloads are, for the operator. On a
// terminal it redraws one status line every second (bytes, percent, speed,
// time left); otherwise (under systemd, in a log) it logs a progress line
// every log_interval. Speed is a moving average over the last few seconds.
//
// Thread safety: Add() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace sync_agent {

class TransferProgress {
 public:
  TransferProgress(std::string repo, uint64_t total_bytes, bool terminal,
                   std::chrono::milliseconds log_interval);
  // Stops reporting; on a terminal, ends the status line.
  ~TransferProgress();
  TransferProgress(const TransferProgress&) = delete;
  TransferProgress& operator=(const TransferProgress&) = delete;

  void Add(uint64_t bytes) { done_.fetch_add(bytes, std::memory_order_relaxed); }
  uint64_t done() const { return done_.load(std::memory_order_relaxed); }

  // "1.2 GiB of 2.6 GiB (45%), 35.1 MiB/s, 1m02s left"
  static std::string Describe(uint64_t done, uint64_t total, double bytes_per_second);

 private:
  void Loop();

  const std::string repo_;
  const uint64_t total_;
  const bool terminal_;
  const std::chrono::milliseconds interval_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool drew_ = false;
  std::thread thread_;
};

// Whether progress should be drawn on the terminal (stderr is one).
bool StderrIsTerminal();

}  // namespace sync_agent
