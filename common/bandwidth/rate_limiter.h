// RateLimiter: the agent's bandwidth cap, shared by every connection of a
// process: a token bucket refilled at the rate in force now, which is the
// configured bandwidth_limit or, inside a window of the time-of-day schedule,
// that window's limit. Readers call Acquire() after each read with the bytes
// they got; it sleeps them as long as the cap requires. The bucket holds at
// most 100 ms of bytes, so a pause does not turn into a burst.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/cancel.h"
#include "common/base/status.h"

namespace sync_agent {

// 0 bytes per second means no cap.
inline constexpr uint64_t kUnlimited = 0;

// "50MB/s", "200Mbit/s", "1GiB/s" or "unlimited": bytes per second (0 for
// unlimited). Units as ParseByteSize; a "bit" unit (kbit, Mbit, Gbit) divides by 8.
Result<uint64_t> ParseRate(std::string_view text);
std::string FormatRate(uint64_t bytes_per_second);

// A daily window [start, end) in minutes after local midnight; end <= start
// wraps past midnight ("22:00" to "06:00").
struct BandwidthWindow {
  int start_minute = 0;
  int end_minute = 0;
  uint64_t bytes_per_second = kUnlimited;
};
// "HH:MM" (00:00 to 24:00) -> minutes after midnight.
Result<int> ParseClockTime(std::string_view text);

class RateLimiter {
 public:
  // Minutes after local midnight now; tests pass their own clock.
  using MinuteOfDay = std::function<int()>;

  RateLimiter(uint64_t default_rate, std::vector<BandwidthWindow> schedule,
              MinuteOfDay minute_of_day = nullptr);

  // The cap in force now (kUnlimited when none).
  uint64_t RateNow() const;
  // Accounts for n bytes that were just read, sleeping while the cap is
  // exceeded. Returns early when *cancel becomes true.
  void Acquire(size_t n, const CancelFlag* cancel = nullptr);
  // Accounts for n bytes and returns how long the reader must wait (zero
  // when within the cap); Acquire is Reserve and a sleep.
  std::chrono::steady_clock::duration Reserve(size_t n);

 private:
  uint64_t RateAt(int minute) const;

  uint64_t default_rate_;
  std::vector<BandwidthWindow> schedule_;
  MinuteOfDay minute_of_day_;
  mutable std::mutex mu_;
  double tokens_ = 0;  // may go negative: the debt the next readers wait off
  std::chrono::steady_clock::time_point last_;
  uint64_t last_rate_ = kUnlimited;
};

}  // namespace sync_agent
