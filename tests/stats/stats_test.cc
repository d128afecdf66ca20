// The access log parser, the reader (plain, gzip, lines split across blocks)
// and every figure of DownloadStats, on hand-written lines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/stats/access_log.h"
#include "common/stats/download_stats.h"
#include "common/stats/stats_report.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::sync_agent::testing::ProcessResult;
using ::sync_agent::testing::ReadFile;
using ::sync_agent::testing::RunProcess;
using ::sync_agent::testing::TempDir;
using ::sync_agent::testing::WriteFile;
using ::testing::HasSubstr;

// A sync_agent-format line.
std::string Line(const std::string& request, int status, uint64_t bytes, const std::string& time,
                 const std::string& cache, const std::string& when = "02/Dec/2026:20:23:20 +0000") {
  return "10.0.0.1 - - [" + when + "] \"" + request + "\" " + std::to_string(status) + " " +
         std::to_string(bytes) + " \"-\" \"curl/7.88.1\" " + time + " " + cache;
}
std::string Combined(const std::string& request, int status, uint64_t bytes) {
  return "10.0.0.1 - - [02/Dec/2026:20:23:20 +0000] \"" + request + "\" " + std::to_string(status) +
         " " + std::to_string(bytes) + " \"-\" \"curl/7.88.1\"";
}

TEST(AccessLineTest, ParsesTheSyncAgentFormat) {
  AccessLine l;
  ASSERT_TRUE(ParseAccessLine(
      "192.168.1.2 - alice [02/Dec/2026:21:23:20 +0100] \"GET /acme/llm-7b/model.bin?download=1 "
      "HTTP/1.1\" 206 1048576 \"https://x/\" \"Mozilla \\x22quoted\\x22\" 0.250 HIT",
      &l));
  EXPECT_EQ(l.method, "GET");
  EXPECT_EQ(l.path, "/acme/llm-7b/model.bin");
  EXPECT_EQ(l.status, 206);
  EXPECT_EQ(l.bytes, 1048576u);
  EXPECT_TRUE(l.timed);
  EXPECT_DOUBLE_EQ(l.request_time, 0.25);
  EXPECT_EQ(l.cache, CacheStatus::kHit);
  EXPECT_EQ(l.unix_seconds, 1796243000);  // 2026-12-02T20:23:20Z (date -u -d ... +%s)
}

TEST(AccessLineTest, QuotedFieldsKeepEscapedQuotes) {
  AccessLine l;
  // nginx's \x22, and a backslash-escaped quote as other writers produce.
  ASSERT_TRUE(ParseAccessLine(
      "1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET /a/b/c HTTP/1.1\" 200 5 \"x\\\"y\" "
      "\"ua \\\" with \\\"quotes\\\\\" 0.001 MISS",
      &l));
  EXPECT_EQ(l.cache, CacheStatus::kOther);
  EXPECT_EQ(l.status, 200);
  // A raw quote inside a field ends it, so what follows does not parse.
  EXPECT_FALSE(
      ParseAccessLine("1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET /a/b/c HTTP/1.1\" 200 5 "
                      "\"x\"y\" \"ua\" 0.1 -",
                      &l));
}

TEST(AccessLineTest, CombinedLinesHaveNoTimingOrCacheStatus) {
  AccessLine l;
  ASSERT_TRUE(ParseAccessLine(Combined("HEAD /acme/llm/x HTTP/1.1", 200, 0), &l));
  EXPECT_EQ(l.method, "HEAD");
  EXPECT_FALSE(l.timed);
  EXPECT_EQ(l.cache, CacheStatus::kAbsent);
}

TEST(AccessLineTest, RefusesMalformedLines) {
  AccessLine l;
  for (const std::string& bad : {
           std::string(""),
           std::string("garbage"),
           std::string("1.2.3.4 - - [02/Dec/2026:20:23:20] \"GET / HTTP/1.1\" 200 5 \"-\" \"-\""),
           std::string("1.2.3.4 - - [02/Foo/2026:20:23:20 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" "
                       "\"-\""),
           std::string("1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET / HTTP/1.1\" 2x0 5 \"-\" "
                       "\"-\""),
           std::string("1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" "
                       "\"-\" 0.5"),
           std::string("1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" "
                       "\"-\" abc HIT"),
           std::string("1.2.3.4 - - [02/Dec/2026:20:23:20 +0000] \"GET / HTTP/1.1 200 5 \"-\" "
                       "\"-\""),
       }) {
    EXPECT_FALSE(ParseAccessLine(bad, &l)) << bad;
  }
  // A request that is not "METHOD TARGET PROTOCOL" is a request of no repository.
  ASSERT_TRUE(ParseAccessLine(Line("\\x16\\x03\\x01", 400, 157, "0.001", "-"), &l));
  EXPECT_EQ(l.method, "");
  EXPECT_EQ(l.status, 400);
}

TEST(AccessLineTest, RepositoryByPathPrefix) {
  std::string_view repo;
  ASSERT_TRUE(RepoOfPath("/acme/llm-7b/model.bin", &repo));
  EXPECT_EQ(repo, "acme/llm-7b");
  ASSERT_TRUE(RepoOfPath("/datasets/acme/corpus/part-0.parquet", &repo));
  EXPECT_EQ(repo, "acme/corpus");
  ASSERT_TRUE(RepoOfPath("/acme/llm-7b/", &repo));
  EXPECT_EQ(repo, "acme/llm-7b");
  EXPECT_FALSE(RepoOfPath("/acme/llm-7b", &repo));
  EXPECT_FALSE(RepoOfPath("/robots.txt", &repo));
  EXPECT_FALSE(RepoOfPath("//x/y", &repo));
  EXPECT_FALSE(RepoOfPath("/a//y", &repo));
  EXPECT_FALSE(RepoOfPath("", &repo));
}

TEST(DownloadStatsTest, EveryFigure) {
  DownloadStats s;  // slow below 10 MB/s
  const std::string file = "hand.log";
  uint64_t n = 0;
  auto add = [&](const std::string& line) { s.AddLine(line, file, ++n); };
  // Downloads: 20 MB/s and 5 MB/s (slow).
  add(Line("GET /acme/llm/a.bin HTTP/1.1", 200, 20000000, "1.000", "MISS"));
  add(Line("GET /acme/llm/a.bin HTTP/1.1", 206, 2500000, "0.500", "HIT"));
  // Not downloads: under 1 MiB, HEAD, 304, request_time 0, 404 (an error).
  add(Line("GET /acme/llm/config.json HTTP/1.1", 200, 1048575, "0.010", "HIT"));
  add(Line("HEAD /acme/llm/a.bin HTTP/1.1", 200, 0, "0.001", "-"));
  add(Line("GET /acme/llm/a.bin HTTP/1.1", 304, 0, "0.001", "REVALIDATED"));
  add(Line("GET /acme/llm/b.bin HTTP/1.1", 200, 2000000, "0.000", "HIT"));
  add(Line("GET /acme/llm/missing HTTP/1.1", 404, 150, "0.001", "MISS"));
  // A dataset, and a line of no repository, both errors.
  add(Line("GET /datasets/acme/corpus/x HTTP/1.1", 500, 10, "0.002", "-"));
  add(Line("GET /favicon.ico HTTP/1.1", 404, 20, "0.001", "-"));
  add("not a log line");

  const Figures& llm = s.repos().at("acme/llm");
  EXPECT_EQ(llm.requests, 7u);
  EXPECT_EQ(llm.bytes, 20000000u + 2500000 + 1048575 + 2000000 + 150);
  EXPECT_EQ(llm.errors, 1u);
  EXPECT_DOUBLE_EQ(*llm.error_rate(), 1.0 / 7);
  EXPECT_EQ(*llm.download_count(), 2u);
  EXPECT_DOUBLE_EQ(*llm.mean_speed_bps(), (20e6 + 5e6) / 2);
  EXPECT_DOUBLE_EQ(*llm.slow_share(), 0.5);
  // MISS, HIT, HIT, REVALIDATED, HIT, MISS (the HEAD has "-"): 3 HITs of 6.
  EXPECT_DOUBLE_EQ(*llm.hit_rate(), 3.0 / 6);

  const Figures& corpus = s.repos().at("acme/corpus");
  EXPECT_EQ(corpus.requests, 1u);
  EXPECT_DOUBLE_EQ(*corpus.error_rate(), 1.0);
  EXPECT_EQ(*corpus.download_count(), 0u);
  EXPECT_FALSE(corpus.mean_speed_bps().has_value());
  EXPECT_FALSE(corpus.slow_share().has_value());
  EXPECT_FALSE(corpus.hit_rate().has_value());  // only "-"

  EXPECT_EQ(s.repos().size(), 2u);
  EXPECT_EQ(s.total().requests, 9u);
  EXPECT_EQ(s.total().errors, 3u);
  EXPECT_EQ(s.total().bytes, llm.bytes + 10 + 20);
  EXPECT_EQ(s.malformed().count, 1u);
  EXPECT_EQ(s.malformed().first_file, "hand.log");
  EXPECT_EQ(s.malformed().first_line, 10u);

  // The threshold moves the slow share; the histogram holds both downloads.
  DownloadStats strict(30e6);
  strict.AddLine(Line("GET /acme/llm/a.bin HTTP/1.1", 200, 20000000, "1.000", "MISS"), file, 1);
  EXPECT_DOUBLE_EQ(*strict.total().slow_share(), 1.0);
  uint64_t in_histogram = 0;
  for (uint64_t c : s.speeds().counts) in_histogram += c;
  EXPECT_EQ(in_histogram, 2u);
  EXPECT_EQ(s.speeds().counts[static_cast<size_t>(SpeedHistogram::BucketOf(20e6))], 1u);
}

TEST(DownloadStatsTest, CombinedOnlyGivesNullSpeedAndHitFigures) {
  DownloadStats s;
  s.AddLine(Combined("GET /acme/llm/a.bin HTTP/1.1", 200, 50000000), "c.log", 1);
  s.AddLine(Combined("GET /acme/llm/b HTTP/1.1", 404, 10), "c.log", 2);
  const Figures& f = s.repos().at("acme/llm");
  EXPECT_EQ(f.requests, 2u);
  EXPECT_DOUBLE_EQ(*f.error_rate(), 0.5);
  EXPECT_FALSE(f.download_count().has_value());
  EXPECT_FALSE(f.mean_speed_bps().has_value());
  EXPECT_FALSE(f.hit_rate().has_value());
  const std::string json = StatsJson(s, StatsGrouping::kByRepo);
  EXPECT_THAT(json, HasSubstr("\"acme/llm\": {\"requests\": 2, \"bytes\": 50000010, \"errors\": 1, "
                              "\"error_rate\": 0.5, \"downloads\": null, \"mean_speed_bps\": null, "
                              "\"slow_share\": null, \"hit_rate\": null}"));
}

TEST(DownloadStatsTest, EmptyInputHasNullRatios) {
  DownloadStats s;
  EXPECT_FALSE(s.total().error_rate().has_value());
  EXPECT_THAT(StatsJson(s, StatsGrouping::kByHour),
              HasSubstr("\"total\": {\"requests\": 0, \"bytes\": 0, \"errors\": 0, \"error_rate\": "
                        "null, \"downloads\": null"));
}

TEST(DownloadStatsTest, HoursAreUtcFromTheOffset) {
  DownloadStats s;
  s.AddLine(Line("GET /a/b/c HTTP/1.1", 200, 1, "0.1", "-", "02/Dec/2026:23:59:59 -0130"), "f", 1);
  s.AddLine(Line("GET /a/b/c HTTP/1.1", 200, 1, "0.1", "-", "03/Dec/2026:01:10:00 +0000"), "f", 2);
  ASSERT_EQ(s.hours().size(), 1u);
  EXPECT_EQ(s.hours().begin()->first, 1796259600);  // 2026-12-03T01:00:00Z
  EXPECT_THAT(StatsJson(s, StatsGrouping::kByHour), HasSubstr("\"2026-12-03T01:00:00Z\": {"));
}

TEST(SlowBelowTest, Units) {
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("10MB/s"), 10e6);
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("80Mbit/s"), 10e6);
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("500kB/s"), 500e3);
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("2GB/s"), 2e9);
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("1MiB/s"), 1048576);
  EXPECT_DOUBLE_EQ(*ParseSlowBelow("1234B/s"), 1234);
  for (const char* bad : {"", "10", "fast", "10MB", "0B/s", "unlimited", "-5MB/s"}) {
    auto r = ParseSlowBelow(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("is not a speed")) << bad;
  }
}

class LogReaderTest : public ::testing::Test {
 protected:
  std::string Lines(int n) {
    std::string text;
    for (int i = 0; i < n; ++i) {
      text += Line("GET /org" + std::to_string(i % 3) + "/m/f HTTP/1.1", i % 5 == 0 ? 404 : 200,
                   static_cast<uint64_t>(i) * 1000, "0.010", i % 2 ? "HIT" : "MISS") +
              "\n";
    }
    return text;
  }
  TempDir dir_;
};

TEST_F(LogReaderTest, ALineSplitAcrossBlocksIsReadWhole) {
  const std::string text = Lines(50) + "garbage\r\n" + Lines(1).substr(0, 40);  // no final newline
  WriteFile(dir_.Sub("a.log"), text);
  DownloadStats whole;
  ASSERT_TRUE(whole.AddFile(dir_.Sub("a.log")).ok());
  EXPECT_EQ(whole.total().requests, 50u);
  EXPECT_EQ(whole.malformed().count, 2u);  // "garbage" and the cut last line
  EXPECT_EQ(whole.malformed().first_line, 51u);
  for (size_t block : {1, 2, 7, 113, 4096}) {
    DownloadStats s;
    ASSERT_TRUE(s.AddFile(dir_.Sub("a.log"), block).ok()) << block;
    EXPECT_EQ(s.total().requests, whole.total().requests) << block;
    EXPECT_EQ(s.total().bytes, whole.total().bytes) << block;
    EXPECT_EQ(s.total().hits, whole.total().hits) << block;
    EXPECT_EQ(s.malformed().count, 2u) << block;
    EXPECT_EQ(s.repos().size(), 3u) << block;
  }
}

TEST_F(LogReaderTest, GzipIsDetectedByItsMagicBytesNotItsName) {
  const std::string text = Lines(200);
  WriteFile(dir_.Sub("plain.log"), text);
  WriteFile(dir_.Sub("part1"), text.substr(0, 5000));
  WriteFile(dir_.Sub("part2"), text.substr(5000));
  // Two gzip members in one file (`cat a.gz b.gz`), named without .gz.
  ProcessResult r =
      RunProcess({"/bin/sh", "-c",
                  "cd " + dir_.path() + " && gzip -c part1 > rotated && gzip -c part2 >> rotated"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  DownloadStats plain, gz;
  ASSERT_TRUE(plain.AddFile(dir_.Sub("plain.log")).ok());
  for (size_t block : {0, 3, 100}) {
    DownloadStats s;
    Status st = s.AddFile(dir_.Sub("rotated"), block);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(s.total().requests, 200u);
    EXPECT_EQ(s.total().bytes, plain.total().bytes);
    EXPECT_EQ(s.total().errors, plain.total().errors);
    EXPECT_EQ(s.malformed().count, 0u);
  }
  LogReader reader;
  ASSERT_TRUE(reader.Open(dir_.Sub("rotated")).ok());
  EXPECT_TRUE(reader.gzip());
}

TEST_F(LogReaderTest, TruncatedGzipAndMissingFilesAreErrorsThatNameTheFile) {
  WriteFile(dir_.Sub("a"), Lines(300));
  ASSERT_EQ(RunProcess({"/bin/gzip", dir_.Sub("a")}).exit_code, 0);
  const std::string gz = ReadFile(dir_.Sub("a.gz"));
  WriteFile(dir_.Sub("cut.gz"), gz.substr(0, gz.size() / 2));
  DownloadStats s;
  Status st = s.AddFile(dir_.Sub("cut.gz"));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr(dir_.Sub("cut.gz")));
  EXPECT_THAT(st.message(), HasSubstr("truncated"));
  st = s.AddFile(dir_.Sub("nope.log"));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("nope.log"));
  EXPECT_THAT(st.message(), HasSubstr("No such file or directory"));
}

TEST_F(LogReaderTest, AnOverLongLineIsOneMalformedLine) {
  std::string text = Lines(2) + std::string(LogReader::kMaxLine * 2 + 5, 'x') + "\n" + Lines(3);
  WriteFile(dir_.Sub("long.log"), text);
  DownloadStats s;
  ASSERT_TRUE(s.AddFile(dir_.Sub("long.log")).ok());
  EXPECT_EQ(s.total().requests, 5u);
  EXPECT_EQ(s.malformed().count, 1u);
  EXPECT_EQ(s.malformed().first_line, 3u);
}

TEST(StatsReportTest, TextAndHtmlNameEveryRepository) {
  DownloadStats s;
  s.AddLine(Line("GET /acme/<b>/a.bin HTTP/1.1", 200, 20000000, "1.000", "MISS"), "f", 1);
  s.AddLine(Line("GET /zeta/m/a.bin HTTP/1.1", 200, 20000000, "4.000", "HIT"), "f", 2);
  const std::string text = StatsText(s, StatsGrouping::kByRepo);
  EXPECT_LT(text.find("acme/<b>"), text.find("zeta/m"));
  EXPECT_THAT(text, HasSubstr("total"));
  const std::string html = StatsHtml(s, StatsGrouping::kByRepo);
  EXPECT_THAT(html, HasSubstr("acme/&lt;b&gt;"));
  EXPECT_THAT(html, HasSubstr("<svg id=\"speed-histogram\""));
  EXPECT_THAT(html, HasSubstr("<line id=\"slow-threshold\""));
  EXPECT_THAT(html, HasSubstr("<svg id=\"hourly-requests\""));
  EXPECT_THAT(html, HasSubstr("<svg id=\"hourly-hit-rate\""));
  EXPECT_EQ(html.find("http://", html.find("<body")), html.find("http://www.w3.org/2000/svg"))
      << "the page must not load anything";
}

}  // namespace
}  // namespace sync_agent
