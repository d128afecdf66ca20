// SourceSet: the sources of one repository that serve the revision being
// synced, and what the agent knows of their health. Transfers ask it which
// source to use for their next request and tell it how the request went; it
// prefers the source expected to be fastest per connection, spreads
// concurrent requests across sources of similar speed, and backs a failing
// source off (exponential delay with jitter) so that requests go elsewhere
// meanwhile. Health carries over between runs through SQLite (the engine
// loads and saves SourceHealthStats).
//
// Thread safety: every method may be called from any thread. Each thread
// opens its own Source objects (a Source is one connection's state).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/base/source_health.h"
#include "common/base/status.h"
#include "common/source/source.h"

namespace sync_agent {

// What is known of one source, over this run and earlier ones.
using SourceHealthStats = SourceHealthRow;

struct RetryPolicy {
  // Attempts for one piece of work (a range, a file) before the run fails.
  int max_attempts = 6;
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{30000};
};

// The delay before attempt n (n >= 1 failures so far): uniformly random in
// [d/2, d] with d = min(max_delay, base_delay * 2^(n-1)) ("equal jitter").
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, uint32_t failures,
                                       std::mt19937_64* rng);

class SourceSet {
 public:
  using Opener = std::function<Result<std::unique_ptr<Source>>(const std::string& url)>;
  using Clock = std::chrono::steady_clock;

  // sources: in the configured order, with what earlier runs learnt.
  SourceSet(std::vector<SourceHealthStats> sources, Opener opener, RetryPolicy retry = {});

  size_t size() const { return stats_.size(); }
  const std::string& url(size_t i) const { return stats_[i].url; }
  const RetryPolicy& retry() const { return retry_; }
  // A new Source for source i, for the calling thread.
  Result<std::unique_ptr<Source>> Open(size_t i) const { return opener_(stats_[i].url); }

  // The source for the next request, among those not excluded: not backing
  // off, not given up on (max_attempts failures in a row, the last in this
  // run), and the highest expected throughput per request in flight (unknown
  // speeds count as equal, the configured order breaks ties). Marks it busy
  // until Release. When every usable source is backing off, *wait_until says
  // when the first is back; nullopt with *wait_until unset means none is
  // usable at all.
  std::optional<size_t> Acquire(const std::vector<bool>& excluded, Clock::time_point* wait_until);
  // How a request to source i went: bytes received, time to the first byte
  // and in all. A failure (any status but OK and kCancelled) that received
  // nothing backs the source off; one that received bytes first (a dropped
  // or stalled connection) is counted as an error but not held against it.
  void Release(size_t i, const Status& status, uint64_t bytes, Clock::duration first_byte,
               Clock::duration total);

  std::vector<SourceHealthStats> Snapshot() const;

 private:
  const Opener opener_;
  const RetryPolicy retry_;
  mutable std::mutex mu_;
  std::vector<SourceHealthStats> stats_;
  std::vector<int> active_;
  std::vector<Clock::time_point> backoff_until_;
  std::vector<bool> failed_this_run_;
  std::mt19937_64 rng_;
};

}  // namespace sync_agent
