#include "common/transfer/progress.h"

#include <unistd.h>

#include <cstdio>

#include "common/base/log.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

constexpr auto kTerminalInterval = std::chrono::seconds(1);
constexpr double kSpeedWeight = 0.3;

}  // namespace

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string TransferProgress::Describe(uint64_t done, uint64_t total, double bytes_per_second) {
  std::string out = FormatBytes(done) + " of " + FormatBytes(total);
  if (total > 0) out += " (" + std::to_string(done * 100 / total) + "%)";
  out += ", " + FormatBytes(static_cast<uint64_t>(bytes_per_second)) + "/s";
  if (bytes_per_second >= 1 && done < total) {
    auto left = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(total - done) / bytes_per_second * 1000));
    out += ", " + FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(left)) + " left";
  }
  return out;
}

TransferProgress::TransferProgress(std::string repo, uint64_t total_bytes, bool terminal,
                                   std::chrono::milliseconds log_interval)
    : repo_(std::move(repo)),
      total_(total_bytes),
      terminal_(terminal),
      interval_(terminal ? std::chrono::duration_cast<std::chrono::milliseconds>(kTerminalInterval)
                         : log_interval),
      thread_([this] { Loop(); }) {}

TransferProgress::~TransferProgress() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (terminal_ && drew_) std::fputs("\r\033[K", stderr);
}

void TransferProgress::Loop() {
  auto last_time = std::chrono::steady_clock::now();
  uint64_t last_done = 0;
  double speed = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
    auto now = std::chrono::steady_clock::now();
    uint64_t d = done();
    double seconds = std::chrono::duration<double>(now - last_time).count();
    double sample = seconds > 0 ? static_cast<double>(d - last_done) / seconds : 0;
    speed = speed == 0 ? sample : speed + kSpeedWeight * (sample - speed);
    last_time = now;
    last_done = d;
    std::string text = Describe(d, total_, speed);
    if (terminal_) {
      std::fprintf(stderr, "\r\033[K%s: %s", repo_.c_str(), text.c_str());
      std::fflush(stderr);
      drew_ = true;
    } else {
      LogInfo("progress", {{"repo", repo_}, {"downloaded", text}});
    }
  }
}

}  // namespace sync_agent
