// `sync-agent stats` through the binary: on the access log that a real nginx
// (a caching proxy in front of a file server, logging in the sync_agent
// format of scripts/nginx-mirror.conf.example) wrote for requests curl made,
// and its --html page rendered by a real headless Chromium.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/nginx_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kCurl = "/usr/bin/curl";
constexpr const char* kChromium = "/usr/bin/chromium";

// The log_format line shipped in scripts/nginx-mirror.conf.example.
std::string ShippedLogFormat() {
  std::istringstream in(
      ReadFile(std::string(SA_SOURCE_DIR) + "/scripts/nginx-mirror.conf.example"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("log_format sync_agent ", 0) == 0) return line;
  }
  return "";
}

size_t CountLines(const std::string& path) {
  const std::string text = ReadFile(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

Poco::JSON::Object::Ptr ParseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

class StatsNginxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    if (::access(kCurl, X_OK) != 0) GTEST_SKIP() << kCurl << " is not installed";
    format_ = ShippedLogFormat();
    ASSERT_FALSE(format_.empty())
        << "scripts/nginx-mirror.conf.example has no log_format sync_agent";
    WriteFile(root_.Sub("acme/llm/model.bin"), RandomBytes(3 << 20, 1), 0644);
    WriteFile(root_.Sub("datasets/acme/corpus/part-0.parquet"), RandomBytes(3 << 19, 2), 0644);
    MakeDirs(state_.Sub("cache"));
    ::chmod(state_.Sub("cache").c_str(), 0777);  // nginx's workers (nobody when root) write it
    log_ = state_.Sub("mirror.access.log");
    // A file server on a second port, and the mirror in front of it: a
    // proxy cache (so $upstream_cache_status is HIT or MISS), rate limited
    // so every large response takes a measurable $request_time.
    const int origin_port = FreeLoopbackPort();
    blocks_ = format_ + "\n" + "  proxy_cache_path " + state_.Sub("cache") +
              " keys_zone=mirror:1m max_size=64m;\n" +
              "  server {\n    listen 127.0.0.1:" + std::to_string(origin_port) + ";\n    root " +
              root_.path() +
              ";\n  }\n"
              "  server {\n    listen 127.0.0.1:@PORT@;\n    access_log " +
              log_ + " sync_agent;\n    limit_rate 16m;\n    location / {\n      proxy_pass " +
              "http://127.0.0.1:" + std::to_string(origin_port) +
              ";\n      proxy_cache mirror;\n      proxy_cache_valid 200 10m;\n"
              // The files do not depend on the query: one cache entry per path.
              "      proxy_cache_key $uri;\n    }\n  }\n";
  }

  // One request; adds what curl received to bytes_ and waits for its log line.
  void Get(const std::string& path, const std::string& want_status,
           const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {kCurl,       "-sS", "-o",
                                     "/dev/null", "-w",  "%{http_code} %{size_download}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(server_->url() + path);
    const size_t before = CountLines(log_);
    ProcessResult r = RunProcess(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream out(r.out);
    std::string status;
    uint64_t size = 0;
    out >> status >> size;
    ASSERT_EQ(status, want_status) << path;
    bytes_ += size;
    // nginx logs after the response (and after storing it in the cache).
    ASSERT_TRUE(WaitFor([&] { return CountLines(log_) > before; }, std::chrono::seconds(10)))
        << server_->ErrorLog();
  }

  TempDir root_{/*world_readable=*/true};
  TempDir state_{/*world_readable=*/true};
  std::string format_, blocks_, log_;
  std::unique_ptr<NginxServer> server_;
  uint64_t bytes_ = 0;
};

TEST_F(StatsNginxTest, CountsWhatTheRequestsDidInNginxsOwnLog) {
  server_ = std::make_unique<NginxServer>(
      NginxServer::Options{.root = root_.path(), .http_blocks = blocks_});
  std::string error;
  ASSERT_TRUE(server_->Start(&error)) << error;

  Get("/acme/llm/model.bin", "200");                             // MISS, download
  Get("/acme/llm/model.bin?download=true", "200");               // HIT, download
  Get("/acme/llm/model.bin", "206", {"-r", "0-99"});             // HIT, 100 bytes
  Get("/acme/llm/model.bin", "206", {"-r", "1048576-3145727"});  // HIT, 2 MiB download
  Get("/acme/llm/model.bin", "200", {"-I"});                     // HEAD, HIT
  Get("/acme/llm/missing.bin", "404");                           // MISS, error
  Get("/datasets/acme/corpus/part-0.parquet", "200");            // MISS, download
  Get("/robots.txt", "404");                                     // no repository
  const uint64_t llm_bytes_without_404 = 2 * (3 << 20) + 100 + (2 << 20);

  ProcessResult r = RunProcess({SA_AGENT_BINARY, "stats", "--json", log_});
  ASSERT_EQ(r.exit_code, 0) << r.err << "\n" << ReadFile(log_);
  EXPECT_EQ(r.err, "");
  auto json = ParseJson(r.out);
  auto total = json->getObject("total");
  EXPECT_EQ(total->getValue<uint64_t>("requests"), 8u) << ReadFile(log_);
  EXPECT_EQ(total->getValue<uint64_t>("bytes"), bytes_);
  EXPECT_EQ(total->getValue<uint64_t>("errors"), 2u);
  EXPECT_DOUBLE_EQ(total->getValue<double>("error_rate"), 2.0 / 8);
  EXPECT_EQ(total->getValue<uint64_t>("downloads"), 4u);
  EXPECT_GT(total->getValue<double>("mean_speed_bps"), 0);
  // MISS HIT HIT HIT HIT MISS MISS MISS.
  EXPECT_DOUBLE_EQ(total->getValue<double>("hit_rate"), 4.0 / 8) << ReadFile(log_);

  auto repos = json->getObject("repos");
  EXPECT_EQ(repos->size(), 2u);
  auto llm = repos->getObject("acme/llm");
  ASSERT_TRUE(llm) << r.out;
  EXPECT_EQ(llm->getValue<uint64_t>("requests"), 6u);
  EXPECT_GT(llm->getValue<uint64_t>("bytes"), llm_bytes_without_404);  // plus the 404 page
  EXPECT_EQ(llm->getValue<uint64_t>("errors"), 1u);
  EXPECT_EQ(llm->getValue<uint64_t>("downloads"), 3u);
  EXPECT_DOUBLE_EQ(llm->getValue<double>("hit_rate"), 4.0 / 6);
  auto corpus = repos->getObject("acme/corpus");
  ASSERT_TRUE(corpus) << r.out;
  EXPECT_EQ(corpus->getValue<uint64_t>("requests"), 1u);
  EXPECT_EQ(corpus->getValue<uint64_t>("bytes"), uint64_t{3} << 19);
  EXPECT_EQ(corpus->getValue<uint64_t>("downloads"), 1u);
  EXPECT_DOUBLE_EQ(corpus->getValue<double>("hit_rate"), 0.0);
  EXPECT_TRUE(corpus->isNull("slow_share") == false);

  // Per hour: the same requests, and "repos" and "total" stay.
  r = RunProcess({SA_AGENT_BINARY, "stats", "--json", "--by", "hour", log_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json = ParseJson(r.out);
  uint64_t in_hours = 0;
  auto hours = json->getObject("hours");
  for (const auto& [name, value] : *hours) {
    in_hours += value.extract<Poco::JSON::Object::Ptr>()->getValue<uint64_t>("requests");
  }
  EXPECT_EQ(in_hours, 8u);
  EXPECT_TRUE(json->has("repos"));
  EXPECT_TRUE(json->has("total"));

  // The rotated log, gzip'd by logrotate, gives the same figures.
  ASSERT_EQ(RunProcess({"/bin/sh", "-c", "gzip -c " + log_ + " > " + log_ + ".1.gz"}).exit_code, 0);
  ProcessResult gz = RunProcess({SA_AGENT_BINARY, "stats", "--json", log_ + ".1.gz"});
  ASSERT_EQ(gz.exit_code, 0) << gz.err;
  EXPECT_EQ(ParseJson(gz.out)->getObject("total")->getValue<uint64_t>("bytes"), bytes_);
}

TEST(StatsCliTest, ExitCodesAndMessages) {
  TempDir dir;
  WriteFile(dir.Sub("a.log"),
            "1.2.3.4 - - [02/Dec/2026:20:00:00 +0000] \"GET /a/b/c HTTP/1.1\" 200 5 \"-\" \"-\"\n"
            "this is not a log line\n");
  ProcessResult r = RunProcess({SA_AGENT_BINARY, "stats", dir.Sub("a.log")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("a/b"));
  EXPECT_THAT(r.out, HasSubstr("1 malformed line"));
  EXPECT_THAT(r.out, HasSubstr(dir.Sub("a.log") + " line 2"));
  r = RunProcess({SA_AGENT_BINARY, "stats", dir.Sub("missing.log")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir.Sub("missing.log")));
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
  r = RunProcess({SA_AGENT_BINARY, "stats"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("at least one LOG"));
  r = RunProcess({SA_AGENT_BINARY, "stats", dir.Sub("a.log"), "--slow-below", "fast"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--slow-below \"fast\" is not a speed"));
  r = RunProcess({SA_AGENT_BINARY, "stats", dir.Sub("a.log"), "--by", "day"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--by must be"));
  r = RunProcess({SA_AGENT_BINARY, "--help"});
  EXPECT_THAT(r.out, HasSubstr("stats LOG..."));
}

// A PNG's size and its RGB(A) pixels: IHDR, the IDAT stream inflated with
// zlib, and the five row filters undone. 8-bit RGB or RGBA only.
struct Png {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes per pixel
};
bool DecodePng(const std::string& data, Png* png, std::string* why) {
  static const char kMagic[] = "\x89PNG\r\n\x1a\n";
  if (data.size() < 8 || std::memcmp(data.data(), kMagic, 8) != 0) {
    *why = "no PNG signature";
    return false;
  }
  auto be32 = [&](size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  };
  std::string idat;
  int channels = 0;
  for (size_t at = 8; at + 8 <= data.size();) {
    const uint32_t len = be32(at);
    const std::string type = data.substr(at + 4, 4);
    if (at + 12 + len > data.size()) break;
    if (type == "IHDR") {
      png->width = be32(at + 8);
      png->height = be32(at + 12);
      const int depth = data[at + 16], color = data[at + 17];
      if (depth != 8 || (color != 2 && color != 6) || data[at + 20] != 0) {
        *why = "not 8-bit RGB(A) without interlace";
        return false;
      }
      channels = color == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      idat += data.substr(at + 8, len);
    }
    at += 12 + len;
  }
  if (channels == 0 || idat.empty()) {
    *why = "no IHDR or IDAT";
    return false;
  }
  const size_t stride = png->width * static_cast<size_t>(channels);
  std::vector<uint8_t> raw((stride + 1) * png->height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_len != raw.size()) {
    *why = "IDAT does not inflate to the image size";
    return false;
  }
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  png->rgb.reserve(size_t{png->width} * png->height * 3);
  for (uint32_t y = 0; y < png->height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= static_cast<size_t>(channels) ? cur[i - channels] : 0;
      const int b = prev[i];
      const int c = i >= static_cast<size_t>(channels) ? prev[i - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          *why = "bad filter " + std::to_string(filter);
          return false;
      }
      cur[i] = static_cast<uint8_t>(in[i] + pred);
    }
    for (uint32_t x = 0; x < png->width; ++x) {
      for (int k = 0; k < 3; ++k) png->rgb.push_back(cur[x * static_cast<size_t>(channels) + k]);
    }
    std::swap(prev, cur);
  }
  return true;
}

TEST(StatsHtmlTest, ChromiumRendersTheReportWithItsCharts) {
  if (::access(kChromium, X_OK) != 0) GTEST_SKIP() << kChromium << " is not installed";
  TempDir dir;
  // Downloads over three hours, slow and fast, hits and misses, errors.
  std::string log;
  for (int i = 0; i < 60; ++i) {
    char line[400];
    std::snprintf(line, sizeof line,
                  "10.0.0.%d - - [02/Dec/2026:%02d:%02d:00 +0000] \"GET /acme/llm/w%d.bin "
                  "HTTP/1.1\" %d %d \"-\" \"curl/7.88.1\" %.3f %s\n",
                  i % 200, 10 + i / 20, i % 60, i, i % 9 == 0 ? 404 : 200,
                  i % 9 == 0 ? 150 : (4 << 20) * (1 + i % 5), 0.05 + 0.1 * (i % 7),
                  i % 3 == 0 ? "MISS" : "HIT");
    log += line;
  }
  WriteFile(dir.Sub("access.log"), log);
  const std::string html = dir.Sub("report.html");
  ProcessResult r = RunProcess(
      {SA_AGENT_BINARY, "stats", dir.Sub("access.log"), "--html", html, "--slow-below", "50MB/s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = ReadFile(html);
  EXPECT_THAT(page, HasSubstr("<svg id=\"speed-histogram\""));
  EXPECT_THAT(page, HasSubstr("<line id=\"slow-threshold\""));
  EXPECT_THAT(page, HasSubstr("slow below 50 MB/s"));
  EXPECT_THAT(page, HasSubstr("<svg id=\"hourly-requests\""));
  EXPECT_THAT(page, HasSubstr("<svg id=\"hourly-hit-rate\""));
  EXPECT_THAT(page, HasSubstr("<polyline class=\"hit-rate\""));
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);

  const std::string shot = dir.Sub("report.png");
  r = RunProcess({kChromium, "--headless", "--no-sandbox", "--disable-gpu",
                  "--user-data-dir=" + dir.Sub("profile"), "--screenshot=" + shot,
                  "--window-size=1200,1600", "file://" + html},
                 {{"HOME", dir.path()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Png png;
  std::string why;
  ASSERT_TRUE(DecodePng(ReadFile(shot), &png, &why)) << why << "\n" << r.err;
  EXPECT_EQ(png.width, 1200u);
  EXPECT_EQ(png.height, 1600u);
  // Not blank: many colours, among them the threshold's red (#c53030) and
  // the bars' blue (#2b6cb0), which only the SVG charts draw.
  std::set<uint32_t> colours;
  bool red = false, blue = false;
  auto near = [](const uint8_t* p, int r0, int g0, int b0) {
    return std::abs(p[0] - r0) < 12 && std::abs(p[1] - g0) < 12 && std::abs(p[2] - b0) < 12;
  };
  for (size_t i = 0; i + 2 < png.rgb.size(); i += 3) {
    const uint8_t* p = &png.rgb[i];
    colours.insert((uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]);
    red = red || near(p, 0xc5, 0x30, 0x30);
    blue = blue || near(p, 0x2b, 0x6c, 0xb0);
  }
  EXPECT_GT(colours.size(), 8u);
  EXPECT_TRUE(red) << "the slow threshold marker is not drawn";
  EXPECT_TRUE(blue) << "no bars are drawn";
}

}  // namespace
}  // namespace sync_agent::testing
