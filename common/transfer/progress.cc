#include "common/transfer/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "common/base/log.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

constexpr auto kTerminalInterval = std::chrono::seconds(1);
constexpr double kSpeedWeight = 0.3;

// Repositories of a pass transfer at once, but the terminal has one status
// line: the transfer that claimed it draws it (naming how many others run)
// until it ends, and then the next one to look claims it.
std::atomic<const TransferProgress*> g_line_owner{nullptr};
std::atomic<int> g_on_terminal{0};

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
      thread_([this] { Loop(); }) {
  if (terminal_) g_on_terminal.fetch_add(1);
}

TransferProgress::~TransferProgress() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (terminal_) {
    g_on_terminal.fetch_sub(1);
    const TransferProgress* self = this;
    if (g_line_owner.compare_exchange_strong(self, nullptr) && drew_) {
      std::fputs("\r\033[K", stderr);
    }
  }
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
      const TransferProgress* none = nullptr;
      if (g_line_owner.load() != this && !g_line_owner.compare_exchange_strong(none, this)) {
        continue;  // another transfer's line
      }
      const int others = g_on_terminal.load() - 1;
      std::string more =
          others > 0 ? " (+" + std::to_string(others) + " more repositories transferring)" : "";
      std::fprintf(stderr, "\r\033[K%s: %s%s", repo_.c_str(), text.c_str(), more.c_str());
      std::fflush(stderr);
      drew_ = true;
    } else {
      LogInfo("progress", {{"repo", repo_}, {"downloaded", text}});
    }
  }
}

}  // namespace sync_agent
