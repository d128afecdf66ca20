// The metrics renderer's escaping and labels (common/sync/metrics.h); the
// families themselves are checked through the binary with promtool
// (tests/integration/metrics_test.cc).
#include "common/sync/metrics.h"

#include <gtest/gtest.h>

namespace sync_agent {
namespace {

TEST(MetricsLabelTest, BackslashQuoteAndNewlineAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("acme/llm-7b"), "acme/llm-7b");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue(""), "");
}

TEST(MetricsLabelTest, ASourceLabelCarriesNoCredentials) {
  EXPECT_EQ(SourceLabel("https://user:secret@origin.example/models"),
            "https://origin.example/models");
  EXPECT_EQ(SourceLabel("https://token@origin.example"), "https://origin.example");
  EXPECT_EQ(SourceLabel("https://origin.example/a@b"), "https://origin.example/a@b");
  EXPECT_EQ(SourceLabel("file:///srv/publish"), "file:///srv/publish");
  EXPECT_EQ(SourceLabel("not a url"), "not a url");
}

}  // namespace
}  // namespace sync_agent
