// TransferWatch's rules with time passed in: no test here waits.
#include "common/http/transfer_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

namespace sync_agent {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = TransferWatch::Clock;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

TransferLimits Limits() {
  TransferLimits l;
  l.stall_timeout = milliseconds(10000);
  l.head_timeout = milliseconds(3000);
  l.low_speed_bytes_per_second = 1000;
  l.low_speed_time = milliseconds(2000);
  return l;
}

TEST(TransferWatchTest, TheHeadMustBeCompleteInTime) {
  TransferWatch w(Limits(), nullptr, "GET http://h/x");
  w.StartHead(t0);
  for (int i = 1; i <= 29; ++i) {
    w.Received(1, t0 + milliseconds(100 * i));  // never silent for long
    ASSERT_TRUE(w.Check(t0 + milliseconds(100 * i)).ok()) << i;
  }
  Status s = w.Check(t0 + milliseconds(3000));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNetwork);
  EXPECT_EQ(s.message(),
            "GET http://h/x: the response head (status line and headers) was not complete 3s "
            "after the request (http_timeout); 29 bytes of it arrived: the server is too slow "
            "or hostile");
}

TEST(TransferWatchTest, SilenceIsAStall) {
  TransferLimits no_rate = Limits();
  no_rate.low_speed_bytes_per_second = 0;
  TransferWatch quiet(no_rate, nullptr, "GET http://h/y");
  quiet.StartHead(t0);
  uint64_t received = 7;
  quiet.StartBody(t0, &received, 100);
  EXPECT_TRUE(quiet.Check(t0 + milliseconds(9999)).ok());
  Status s = quiet.Check(t0 + milliseconds(10000));
  EXPECT_EQ(s.message(),
            "GET http://h/y: timed out after 10s without data (http_timeout); received 7 of "
            "100 bytes");
}

TEST(TransferWatchTest, TheBodyMustKeepTheMinimumRateOverEachWindow) {
  TransferWatch w(Limits(), nullptr, "GET http://h/x");
  w.StartHead(t0);
  uint64_t received = 0;
  w.StartBody(t0, &received, std::nullopt);
  // 2000 bytes in the first 2 s window: exactly the minimum.
  w.Received(1000, t0 + milliseconds(500));
  w.Received(1000, t0 + milliseconds(1500));
  received = 2000;
  EXPECT_TRUE(w.Check(t0 + milliseconds(1999)).ok());
  EXPECT_TRUE(w.Check(t0 + milliseconds(2000)).ok());
  // The next window starts afresh: 1999 bytes are one short.
  w.Received(1999, t0 + milliseconds(3000));
  received = 3999;
  EXPECT_TRUE(w.Check(t0 + milliseconds(3999)).ok());
  Status s = w.Check(t0 + milliseconds(4000));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNetwork);
  EXPECT_THAT(s.message(), HasSubstr("GET http://h/x: the body arrived slower than 1000 B/s over "
                                     "2s (2.0 KiB in that time; received 3999 of ? bytes)"));
  EXPECT_THAT(s.message(), HasSubstr("lower http_low_speed_limit or raise http_low_speed_time"));
}

TEST(TransferWatchTest, TimeInTheBandwidthCapDoesNotCount) {
  TransferWatch w(Limits(), nullptr, "GET http://h/x");
  w.StartHead(t0);
  w.StartBody(t0, nullptr, std::nullopt);
  // 100 bytes, then 20 s held by the agent's own cap: neither a stall nor slow.
  w.Received(100, t0 + milliseconds(100));
  w.Paused(std::chrono::seconds(20), t0 + milliseconds(20100));
  EXPECT_TRUE(w.Check(t0 + milliseconds(20200)).ok());
  EXPECT_FALSE(w.Check(t0 + milliseconds(22100)).ok());  // then 2 s of the server's own time
}

TEST(TransferWatchTest, NoMinimumRateWhenTheLimitIsZero) {
  TransferLimits l = Limits();
  l.low_speed_bytes_per_second = 0;
  TransferWatch w(l, nullptr, "GET http://h/x");
  w.StartHead(t0);
  w.StartBody(t0, nullptr, std::nullopt);
  for (int i = 1; i <= 100; ++i) {
    w.Received(1, t0 + std::chrono::seconds(i));
    ASSERT_TRUE(w.Check(t0 + std::chrono::seconds(i)).ok()) << i;
  }
}

TEST(TransferWatchTest, TheStopFlagAndTheDeadlineEndTheRequest) {
  CancelFlag stop;
  TransferLimits l = Limits();
  l.deadline = t0 + milliseconds(5000);
  l.deadline_what = "5s, the time this request may take";
  TransferWatch w(l, &stop, "GET http://h/x");
  w.StartHead(t0);
  EXPECT_TRUE(w.Check(t0).ok());
  stop.Cancel();
  Status s = w.Check(t0 + milliseconds(1));
  EXPECT_TRUE(s.IsCancelled());
  EXPECT_EQ(s.message(), "GET http://h/x: cancelled while waiting for the response");
  // The same deadline on a request nobody stops.
  CancelFlag running;
  TransferWatch d(l, &running, "GET http://h/x");
  d.StartHead(t0);
  uint64_t received = 10;
  d.StartBody(t0 + milliseconds(100), &received, 50);
  for (int i = 1; i <= 49; ++i) d.Received(100, t0 + milliseconds(100 * i));
  s = d.Check(t0 + milliseconds(5000));
  EXPECT_EQ(s.message(),
            "GET http://h/x: did not complete within 5s, the time this request may take; "
            "received 10 of 50 bytes");
}

}  // namespace
}  // namespace sync_agent
