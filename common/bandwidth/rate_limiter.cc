#include "common/bandwidth/rate_limiter.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/base/time_util.h"

namespace sync_agent {
namespace {

constexpr double kBurstSeconds = 0.1;
constexpr double kMinBurstBytes = 64 * 1024;

int LocalMinuteOfDay() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_hour * 60 + local.tm_min;
}

}  // namespace

Result<uint64_t> ParseRate(std::string_view text) {
  std::string t(text);
  std::string lower;
  for (char c : t) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "unlimited" || lower == "0") return kUnlimited;
  auto bad = [&] {
    return Status::InvalidArgument("bad rate \"" + t + "\"",
                                   "use a size per second such as \"50MB/s\", \"200Mbit/s\" or "
                                   "\"unlimited\"");
  };
  if (lower.size() < 3 || lower.compare(lower.size() - 2, 2, "/s") != 0) return bad();
  std::string amount = t.substr(0, t.size() - 2);
  std::string amount_lower = lower.substr(0, lower.size() - 2);
  bool bits = false;
  if (amount_lower.size() > 3 && amount_lower.compare(amount_lower.size() - 3, 3, "bit") == 0) {
    bits = true;
    amount = amount.substr(0, amount.size() - 3);
  }
  auto size = ParseByteSize(amount);
  if (!size.ok()) return bad();
  uint64_t rate = bits ? *size / 8 : *size;
  if (rate == 0) return bad();
  return rate;
}

std::string FormatRate(uint64_t bytes_per_second) {
  if (bytes_per_second == kUnlimited) return "unlimited";
  return FormatBytes(bytes_per_second) + "/s";
}

Result<int> ParseClockTime(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("bad time of day \"" + std::string(text) + "\"",
                                   "use HH:MM, 00:00 to 24:00");
  };
  if (text.size() != 5 || text[2] != ':') return bad();
  for (size_t i : {0, 1, 3, 4}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad();
  }
  int h = (text[0] - '0') * 10 + (text[1] - '0');
  int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return bad();
  return h * 60 + m;
}

RateLimiter::RateLimiter(uint64_t default_rate, std::vector<BandwidthWindow> schedule,
                         MinuteOfDay minute_of_day)
    : default_rate_(default_rate),
      schedule_(std::move(schedule)),
      minute_of_day_(minute_of_day ? std::move(minute_of_day) : MinuteOfDay(LocalMinuteOfDay)),
      last_(std::chrono::steady_clock::now()),
      last_rate_(RateNow()) {}

uint64_t RateLimiter::RateAt(int minute) const {
  for (const BandwidthWindow& w : schedule_) {
    bool inside = w.start_minute < w.end_minute ? minute >= w.start_minute && minute < w.end_minute
                                                : minute >= w.start_minute || minute < w.end_minute;
    if (inside) return w.bytes_per_second;
  }
  return default_rate_;
}

uint64_t RateLimiter::RateNow() const { return RateAt(minute_of_day_()); }

std::chrono::steady_clock::duration RateLimiter::Reserve(size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t rate = RateNow();
  const auto now = std::chrono::steady_clock::now();
  if (rate == kUnlimited) {
    tokens_ = 0;
    last_ = now;
    last_rate_ = rate;
    return std::chrono::steady_clock::duration::zero();
  }
  if (rate != last_rate_) {
    tokens_ = std::min(tokens_, 0.0);  // a new window starts without credit
    last_rate_ = rate;
  }
  const double burst = std::max(kMinBurstBytes, static_cast<double>(rate) * kBurstSeconds);
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst, tokens_ + elapsed * static_cast<double>(rate));
  last_ = now;
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return std::chrono::steady_clock::duration::zero();
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(-tokens_ / static_cast<double>(rate)));
}

void RateLimiter::Acquire(size_t n, const CancelFlag* cancel) {
  const auto wait = Reserve(n);
  if (wait == std::chrono::steady_clock::duration::zero()) return;
  // Pacing: the wait is for tokens that only time brings, ended early by a stop.
  PauseUntil(std::chrono::steady_clock::now() + wait, cancel);
}

}  // namespace sync_agent
