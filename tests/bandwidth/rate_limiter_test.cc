// RateLimiter: rates and schedules parse as operators write them, the window
// in force follows the clock (wrapping midnight), and the bucket's pacing
// holds a reader to the cap (checked by the debt it owes, not by timing).
#include "common/bandwidth/rate_limiter.h"

#include <gtest/gtest.h>

#include "common/transfer/progress.h"
#include "common/transfer/source_set.h"

namespace sync_agent {
namespace {

TEST(RateTest, ParsesSizesPerSecondAndBits) {
  EXPECT_EQ(*ParseRate("50MB/s"), 50000000u);
  EXPECT_EQ(*ParseRate("1GiB/s"), 1073741824u);
  EXPECT_EQ(*ParseRate("200Mbit/s"), 25000000u);
  EXPECT_EQ(*ParseRate("800 kbit/s"), 100000u);
  EXPECT_EQ(*ParseRate("unlimited"), kUnlimited);
  for (const char* bad : {"50MB", "fast", "/s", "-5MB/s", "5XB/s", "0bit/s"}) {
    auto r = ParseRate(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().ToString().find("\"50MB/s\""), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(FormatRate(50 << 20), "50.0 MiB/s");
  EXPECT_EQ(FormatRate(kUnlimited), "unlimited");
}

TEST(RateTest, ClockTimes) {
  EXPECT_EQ(*ParseClockTime("00:00"), 0);
  EXPECT_EQ(*ParseClockTime("07:30"), 450);
  EXPECT_EQ(*ParseClockTime("24:00"), 1440);
  for (const char* bad : {"7:30", "25:00", "12:60", "24:01", "ab:cd", "12-30"}) {
    EXPECT_FALSE(ParseClockTime(bad).ok()) << bad;
  }
}

TEST(RateLimiterTest, TheWindowInForceFollowsTheClockAndWrapsMidnight) {
  int minute = 0;
  RateLimiter limiter(10 << 20, {{22 * 60, 6 * 60, kUnlimited}, {12 * 60, 13 * 60, 1 << 20}},
                      [&] { return minute; });
  const std::pair<int, uint64_t> cases[] = {
      {0, kUnlimited},          {5 * 60 + 59, kUnlimited}, {6 * 60, 10 << 20},
      {12 * 60, 1 << 20},       {12 * 60 + 59, 1 << 20},   {13 * 60, 10 << 20},
      {21 * 60 + 59, 10 << 20}, {22 * 60, kUnlimited},     {23 * 60 + 59, kUnlimited}};
  for (const auto& [m, rate] : cases) {
    minute = m;
    EXPECT_EQ(limiter.RateNow(), rate) << m;
  }
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

TEST(RateLimiterTest, ReadersOweTheTimeTheirBytesTakeAtTheCap) {
  RateLimiter limiter(1000, {});
  // The bucket starts empty: 5000 bytes at 1000 B/s are 5 s of waiting, and
  // the next reader queues behind that debt.
  EXPECT_NEAR(Seconds(limiter.Reserve(5000)), 5.0, 0.05);
  EXPECT_NEAR(Seconds(limiter.Reserve(1000)), 6.0, 0.05);
  RateLimiter open(kUnlimited, {});
  EXPECT_EQ(open.Reserve(1ULL << 40).count(), 0);
}

TEST(RateLimiterTest, ANewWindowStartsWithoutTheOldDebtOrCredit) {
  int minute = 0;
  RateLimiter limiter(1000, {{60, 120, kUnlimited}}, [&] { return minute; });
  EXPECT_NEAR(Seconds(limiter.Reserve(3000)), 3.0, 0.05);
  minute = 60;  // unlimited from 01:00
  EXPECT_EQ(limiter.Reserve(1 << 30).count(), 0);
  minute = 120;  // capped again: no credit from the unlimited hour
  EXPECT_NEAR(Seconds(limiter.Reserve(2000)), 2.0, 0.05);
}

TEST(RateLimiterTest, ACancelledReaderStopsWaiting) {
  RateLimiter slow(1000, {});
  CancelFlag cancel;
  cancel.Cancel();
  // 10 MiB at 1000 B/s would be hours; a cancelled reader returns with the
  // debt still owed (a hang here fails the test by its timeout).
  slow.Acquire(10 << 20, &cancel);
  EXPECT_GT(Seconds(slow.Reserve(0)), 10000.0);
}

TEST(BackoffTest, GrowsExponentiallyWithJitterUpToTheMaximum) {
  RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  std::mt19937_64 rng(1);
  EXPECT_EQ(BackoffDelay(p, 0, &rng).count(), 0);
  for (int i = 0; i < 50; ++i) {
    auto d1 = BackoffDelay(p, 1, &rng).count();
    EXPECT_GE(d1, 50);
    EXPECT_LE(d1, 100);
    auto d3 = BackoffDelay(p, 3, &rng).count();
    EXPECT_GE(d3, 200);
    EXPECT_LE(d3, 400);
    auto d10 = BackoffDelay(p, 10, &rng).count();
    EXPECT_GE(d10, 500);
    EXPECT_LE(d10, 1000);
  }
}

TEST(SourceSetTest, PrefersTheFasterSourceSpreadsAndBacksOffAFailingOne) {
  std::vector<SourceHealthStats> stats(2);
  stats[0].url = "http://a";
  stats[1].url = "http://b";
  RetryPolicy retry;
  retry.base_delay = std::chrono::hours(1);  // a failed source stays out for this test
  retry.max_delay = std::chrono::hours(2);
  SourceSet set(stats, nullptr, retry);
  SourceSet::Clock::time_point wait{};
  // Nothing known: both are tried, spread one each.
  auto first = set.Acquire({}, &wait);
  auto second = set.Acquire({}, &wait);
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
  // b measures ten times faster than a.
  set.Release(0, Status::OK(), 1 << 20, std::chrono::milliseconds(5), std::chrono::seconds(1));
  set.Release(1, Status::OK(), 10 << 20, std::chrono::milliseconds(5), std::chrono::seconds(1));
  auto pick = set.Acquire({}, &wait);
  ASSERT_TRUE(pick);
  EXPECT_EQ(*pick, 1u);
  set.Release(1, Status::Network("x", "reset"), 0, {}, std::chrono::milliseconds(1));
  // b backs off: a is used, however slow.
  pick = set.Acquire({}, &wait);
  ASSERT_TRUE(pick);
  EXPECT_EQ(*pick, 0u);
  set.Release(0, Status::OK(), 0, {}, {});
  // With a excluded, nothing is usable until b's backoff ends.
  pick = set.Acquire({true, false}, &wait);
  EXPECT_FALSE(pick);
  EXPECT_GT(wait, SourceSet::Clock::now() + std::chrono::minutes(20));
  auto snapshot = set.Snapshot();
  EXPECT_EQ(snapshot[1].errors, 1u);
  EXPECT_EQ(snapshot[1].consecutive_errors, 1u);
  EXPECT_NE(snapshot[1].last_error.find("reset"), std::string::npos);
  EXPECT_GT(snapshot[1].throughput_bps, snapshot[0].throughput_bps);
}

TEST(ProgressTest, SaysHowFarHowFastAndHowLong) {
  EXPECT_EQ(TransferProgress::Describe(512 << 20, 2048ULL << 20, 64 << 20),
            "512.0 MiB of 2.0 GiB (25%), 64.0 MiB/s, 24s left");
  EXPECT_EQ(TransferProgress::Describe(0, 1 << 20, 0), "0 B of 1.0 MiB (0%), 0 B/s");
  EXPECT_EQ(TransferProgress::Describe(1 << 20, 1 << 20, 5000),
            "1.0 MiB of 1.0 MiB (100%), 4.9 KiB/s");
}

}  // namespace
}  // namespace sync_agent
