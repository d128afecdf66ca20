#include <gtest/gtest.h>

#include <cerrno>
#include <thread>

#include "common/base/cancel.h"
#include "common/base/json_text.h"
#include "common/base/status.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::IOError("open /x", "Permission denied");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "open /x: Permission denied");
  EXPECT_EQ(s.ToString(), "I/O error: open /x: Permission denied");
  EXPECT_EQ(s.WithContext("sync a/b").message(), "sync a/b: open /x: Permission denied");
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().WithContext("x").ToString(), "OK");
}

TEST(StatusTest, PosixErrorMapsErrno) {
  EXPECT_EQ(PosixError("w", ENOSPC).code(), Status::Code::kNoSpace);
  EXPECT_EQ(PosixError("w", EDQUOT).code(), Status::Code::kNoSpace);
  EXPECT_TRUE(PosixError("o", ENOENT).IsNotFound());
  EXPECT_EQ(PosixError("o", EACCES).code(), Status::Code::kIOError);
  EXPECT_NE(PosixError("o", EACCES).message().find("Permission denied"), std::string::npos);
}

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd", std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  SA_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd: 3");
}

TEST(TimeTest, IsoRoundTrip) {
  SystemTime t;
  ASSERT_TRUE(ParseIsoTime("2026-11-25T03:04:05Z", &t));
  EXPECT_EQ(FormatIsoTime(t), "2026-11-25T03:04:05Z");
  ASSERT_TRUE(ParseIsoTime("2026-11-25T03:04:05.250Z", &t));
  EXPECT_EQ(FormatIsoTime(t, true), "2026-11-25T03:04:05.250Z");
  EXPECT_FALSE(ParseIsoTime("2026-11-25 03:04:05", &t));
  EXPECT_FALSE(ParseIsoTime("2026-13-25T03:04:05Z", &t));
  EXPECT_FALSE(ParseIsoTime("2026-11-25T03:04:05Zjunk", &t));
}

// Found by tests/fuzz/manifest (corpus created_year_0226): a year that
// SystemTime's 64-bit nanoseconds cannot hold overflowed a signed multiply
// (undefined behaviour, a trap under UBSan) instead of being refused.
TEST(TimeTest, IsoYearsSystemTimeCannotHoldAreRefused) {
  SystemTime t;
  EXPECT_FALSE(ParseIsoTime("0226-01-01T00:00:00Z", &t));
  EXPECT_FALSE(ParseIsoTime("-999-01-01T00:00:00Z", &t));
  EXPECT_FALSE(ParseIsoTime("1969-12-31T23:59:59Z", &t));
  EXPECT_FALSE(ParseIsoTime("2262-04-12T00:00:00Z", &t));
  EXPECT_FALSE(ParseIsoTime("9999-12-31T23:59:59Z", &t));
  ASSERT_TRUE(ParseIsoTime("1970-01-01T00:00:00Z", &t));
  EXPECT_EQ(ToUnixMillis(t), 0);
  ASSERT_TRUE(ParseIsoTime("2261-12-31T23:59:59.999Z", &t));
  EXPECT_EQ(FormatIsoTime(t, true), "2261-12-31T23:59:59.999Z");
}

TEST(TimeTest, Durations) {
  EXPECT_EQ(ParseDuration("5m")->count(), 300000);
  EXPECT_EQ(ParseDuration("90s")->count(), 90000);
  EXPECT_EQ(ParseDuration("1h30m")->count(), 5400000);
  EXPECT_EQ(ParseDuration("250ms")->count(), 250);
  EXPECT_EQ(ParseDuration("2d")->count(), 172800000);
  EXPECT_EQ(ParseDuration("42")->count(), 42000);
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("5 minutes").ok());
  EXPECT_FALSE(ParseDuration("-5m").ok());
  EXPECT_FALSE(ParseDuration("5x").ok());
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(5400000)), "1h30m");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(250)), "250ms");
}

TEST(TimeTest, Sizes) {
  EXPECT_EQ(*ParseByteSize("50MB"), 50000000u);
  EXPECT_EQ(*ParseByteSize("4GiB"), 4ull << 30);
  EXPECT_EQ(*ParseByteSize("123"), 123u);
  EXPECT_FALSE(ParseByteSize("12 parsecs").ok());
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(12), "12 B");
}

TEST(JsonTextTest, EscapesAndValidatesUtf8) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_TRUE(IsValidUtf8("plain ünïcødé 日本"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));         // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));     // surrogate
  EXPECT_EQ(Utf8ErrorOffset("ab\xe2\x82"), 2u);  // truncated sequence
  // Invalid bytes never reach JSON output raw: each becomes U+FFFD.
  EXPECT_EQ(JsonQuote("ok \xff\xfe \xc0\xaf \xe2\x82 日本"),
            "\"ok \\ufffd\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd 日本\"");
  EXPECT_TRUE(IsValidUtf8(JsonQuote("\xef\xbb\xbf{\"bom\": 1} \x80")));
}

TEST(JsonTextTest, FindsWholeNumbersNoUint64Holds) {
  JsonNumberOverflow big;
  // The largest uint64_t, fractions, exponents and numbers inside strings pass.
  EXPECT_FALSE(
      FindJsonNumberOverflow(R"({"a": 18446744073709551615, "b": -9223372036854775808})", &big));
  EXPECT_FALSE(FindJsonNumberOverflow(R"({"a": 123456789012345678901234.5, "b": 1e400})", &big));
  EXPECT_FALSE(FindJsonNumberOverflow(
      R"({"a": "99999999999999999999999", "b\"99999999999999999999": 1})", &big));
  EXPECT_FALSE(FindJsonNumberOverflow(R"({"a": 000000000000000000000001})", &big));

  ASSERT_TRUE(FindJsonNumberOverflow(R"({"x": "s", "file_count": 18446744073709551616})", &big));
  EXPECT_EQ(big.key, "file_count");
  EXPECT_EQ(big.literal, "18446744073709551616");
  EXPECT_EQ(big.offset, 25u);
  EXPECT_EQ(DescribeJsonNumberOverflow(big),
            "\"file_count\" is 18446744073709551616, beyond the largest whole number (2^64 - 1), "
            "at byte 25");

  ASSERT_TRUE(FindJsonNumberOverflow(R"({"files": [{"size": 1}, -18446744073709551617]})", &big));
  EXPECT_EQ(big.key, "");  // an array element has no key of its own
  EXPECT_EQ(big.literal, "-18446744073709551617");
  EXPECT_EQ(DescribeJsonNumberOverflow(big).rfind("a number is -18446744073709551617", 0), 0u);
}

// Found by tests/fuzz/json_text: a literal longer than the 40 bytes quoted
// was cut without a sign of it, so 24 leading zeros and 30 digits read as a
// 16-digit number said to be beyond 2^64 - 1.
TEST(JsonTextTest, ALongNumberIsQuotedAsCut) {
  const std::string digits = std::string(24, '0') + "123456789012345678901234567890";
  JsonNumberOverflow big;
  ASSERT_TRUE(FindJsonNumberOverflow("{\"size\": " + digits + "}", &big));
  EXPECT_EQ(big.literal, digits.substr(0, 40) + "...");
  EXPECT_EQ(
      DescribeJsonNumberOverflow(big).rfind("\"size\" is " + digits.substr(0, 40) + "...,", 0), 0u);
  // 40 bytes exactly are quoted whole.
  ASSERT_TRUE(FindJsonNumberOverflow("[" + std::string(40, '9') + "]", &big));
  EXPECT_EQ(big.literal, std::string(40, '9'));
}

}  // namespace
}  // namespace sync_agent

namespace sync_agent {
namespace {

TEST(CancelFlagTest, AParentsCancelReachesItsChildrenButNotTheOtherWay) {
  CancelFlag root;
  CancelFlag child(&root);
  CancelFlag grandchild(&child);
  CancelFlag sibling(&root);
  sibling.Cancel();
  EXPECT_TRUE(sibling.cancelled());
  EXPECT_FALSE(root.cancelled());
  EXPECT_FALSE(child.cancelled());
  root.Cancel();
  EXPECT_TRUE(child.cancelled());
  EXPECT_TRUE(grandchild.load());
  // A flag made under a cancelled parent starts cancelled.
  CancelFlag late(&root);
  EXPECT_TRUE(late.cancelled());
}

TEST(CancelFlagTest, AWaitEndsWhenAnAncestorIsCancelledFromAnotherThread) {
  CancelFlag root;
  bool waited_out = true;
  std::thread waiter;
  {
    CancelFlag child(&root);
    waiter = std::thread([&] { waited_out = child.WaitFor(std::chrono::hours(1)); });
    // The waiter may or may not be waiting yet; either way the cancel ends
    // its wait (a hang here fails the test by its timeout).
    root.Cancel();
    waiter.join();
  }
  EXPECT_FALSE(waited_out);
  // A child that went away first is no longer reached.
  CancelFlag root2;
  { CancelFlag gone(&root2); }
  root2.Cancel();
  EXPECT_TRUE(root2.WaitFor(std::chrono::milliseconds(0)) == false);
}

TEST(CancelFlagTest, AHookRunsOnceWhenAnAncestorIsCancelledAndNotAfterItIsGone) {
  CancelFlag root;
  CancelFlag child(&root);
  int calls = 0;
  int gone_calls = 0;
  CancelFlag::Hook hook(&child, [&] { ++calls; });
  {
    CancelFlag::Hook gone(&child, [&] { ++gone_calls; });
  }
  CancelFlag::Hook inert(nullptr, [&] { ++calls; });
  EXPECT_EQ(calls, 0);
  root.Cancel();
  root.Cancel();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(gone_calls, 0);
  // On a flag cancelled already, the hook runs at once.
  CancelFlag::Hook late(&child, [&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

TEST(CancelFlagTest, AnUncancelledWaitLastsUntilItsDeadline) {
  CancelFlag flag;
  EXPECT_TRUE(flag.WaitUntil(std::chrono::steady_clock::now()));
  EXPECT_TRUE(flag.WaitFor(std::chrono::milliseconds(1)));
  EXPECT_FALSE(flag.cancelled());
}

TEST(PauseUntilTest, ADeadlinePassedReturnsAndAStopRequestEndsThePause) {
  CancelFlag cancel;
  EXPECT_TRUE(PauseUntil(std::chrono::steady_clock::now(), &cancel));
  EXPECT_TRUE(PauseUntil(std::chrono::steady_clock::now() - std::chrono::seconds(1), nullptr));
  // A pause of an hour that a stop request has already ended.
  cancel.Cancel();
  EXPECT_FALSE(PauseUntil(std::chrono::steady_clock::now() + std::chrono::hours(1), &cancel));
}

}  // namespace
}  // namespace sync_agent
