#include "common/transfer/source_set.h"

#include <algorithm>

#include "common/base/time_util.h"

namespace sync_agent {
namespace {

// Weight of the newest sample in the moving averages.
constexpr double kEwmaWeight = 0.3;
// Requests shorter than this say little about a source's speed.
constexpr auto kMinTimedRequest = std::chrono::milliseconds(50);
// Speed assumed for a source nothing is known of yet.
constexpr double kUnknownSpeed = -1;

double Ewma(double old_value, double sample) {
  return old_value <= 0 ? sample : old_value + kEwmaWeight * (sample - old_value);
}

}  // namespace

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, uint32_t failures,
                                       std::mt19937_64* rng) {
  if (failures == 0) return std::chrono::milliseconds(0);
  uint64_t d = static_cast<uint64_t>(policy.base_delay.count());
  for (uint32_t i = 1; i < failures && d < static_cast<uint64_t>(policy.max_delay.count()); ++i) {
    d *= 2;
  }
  d = std::min<uint64_t>(d, static_cast<uint64_t>(policy.max_delay.count()));
  std::uniform_int_distribution<uint64_t> pick(d / 2, d);
  return std::chrono::milliseconds(pick(*rng));
}

SourceSet::SourceSet(std::vector<SourceHealthStats> sources, Opener opener, RetryPolicy retry)
    : opener_(std::move(opener)),
      retry_(retry),
      stats_(std::move(sources)),
      active_(stats_.size(), 0),
      backoff_until_(stats_.size(), Clock::time_point()),
      failed_this_run_(stats_.size(), false),
      rng_(std::random_device{}()) {}

std::optional<size_t> SourceSet::Acquire(const std::vector<bool>& excluded,
                                         Clock::time_point* wait_until) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  std::optional<size_t> best;
  double best_score = 0;
  std::optional<Clock::time_point> soonest;
  for (size_t i = 0; i < stats_.size(); ++i) {
    if (i < excluded.size() && excluded[i]) continue;
    // A source that failed max_attempts times in a row is given up on.
    if (stats_[i].consecutive_errors >= static_cast<uint32_t>(retry_.max_attempts) &&
        failed_this_run_[i]) {
      continue;
    }
    if (backoff_until_[i] > now) {
      if (!soonest || backoff_until_[i] < *soonest) soonest = backoff_until_[i];
      continue;
    }
    // Expected speed of one more request here: known sources by their
    // measured speed; unknown ones as the best known, so that they get tried.
    double speed = stats_[i].throughput_bps > 0 ? stats_[i].throughput_bps : kUnknownSpeed;
    if (speed == kUnknownSpeed) {
      speed = 1;
      for (const auto& s : stats_) speed = std::max(speed, s.throughput_bps);
    }
    double score = speed / static_cast<double>(active_[i] + 1);
    if (!best || score > best_score * 1.0000001) {
      best = i;
      best_score = score;
    }
  }
  if (best) {
    active_[*best]++;
    return best;
  }
  if (soonest) *wait_until = *soonest;
  return std::nullopt;
}

void SourceSet::Release(size_t i, const Status& status, uint64_t bytes, Clock::duration first_byte,
                        Clock::duration total) {
  std::lock_guard<std::mutex> lock(mu_);
  active_[i]--;
  SourceHealthStats& s = stats_[i];
  s.requests++;
  s.bytes += bytes;
  if (status.IsCancelled()) return;
  if (status.ok()) {
    s.consecutive_errors = 0;
    s.last_ok_at_ms = NowMs();
    if (bytes > 0) {
      s.latency_ms =
          Ewma(s.latency_ms, std::chrono::duration<double, std::milli>(first_byte).count());
    }
    if (total >= kMinTimedRequest && bytes > 0) {
      s.throughput_bps = Ewma(s.throughput_bps, static_cast<double>(bytes) /
                                                    std::chrono::duration<double>(total).count());
    }
    return;
  }
  s.errors++;
  s.last_error = status.ToString();
  s.last_error_at_ms = NowMs();
  if (bytes > 0) {
    // It served before it broke (a dropped or stalled connection): the
    // source works, so it is used again at once.
    s.consecutive_errors = 0;
    return;
  }
  s.consecutive_errors++;
  failed_this_run_[i] = true;
  backoff_until_[i] = Clock::now() + BackoffDelay(retry_, s.consecutive_errors, &rng_);
}

std::vector<SourceHealthStats> SourceSet::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sync_agent
