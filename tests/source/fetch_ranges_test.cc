// Source::FetchRanges: one conformance suite over every source kind (a file
// root, a real nginx, the built-in StaticFileServer), then HttpSource against
// scripted servers for the answers a good server never gives (200 to a Range
// request, only some of the ranges, wrong sizes, truncation, stalls).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/http/byteranges.h"
#include "common/http/static_server.h"
#include "common/source/publish_root_source.h"
#include "tests/support/nginx_server.h"
#include "tests/support/scripted_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using testing::NginxServer;
using testing::RandomBytes;
using testing::Reply;
using testing::Respond;
using testing::Response;
using testing::ScriptedServer;
using ::testing::StartsWith;
using testing::TempDir;

constexpr size_t kMiB = 1 << 20;
constexpr const char* kRepo = "org/model";
// What a source is asked for: content by its sha256, of size bytes (its own
// size unless a test says otherwise).
ContentRef RefOf(const std::string& content, std::optional<uint64_t> size = std::nullopt) {
  return {Sha256Hex(content), size.value_or(content.size()), "r1", "model.bin", {}};
}
const ContentRef kMissing{std::string(64, '0'), 1000, "r1", "missing.bin", {}};

// Checks every call of a RangeSink against the file as it arrives: the data
// must be the file's bytes at that offset. Records which bytes came.
class CheckingSink {
 public:
  explicit CheckingSink(const std::string& content) : content_(content), seen_(content.size()) {}

  RangeSink sink() {
    return [this](uint64_t offset, const char* data, size_t n) -> Status {
      ++calls_;
      bytes_ += n;
      largest_piece_ = std::max(largest_piece_, n);
      if (offset > content_.size() || n > content_.size() - offset ||
          std::memcmp(content_.data() + offset, data, n) != 0) {
        if (wrong_.empty()) wrong_ = std::to_string(n) + " bytes at " + std::to_string(offset);
        return Status::OK();
      }
      std::memset(seen_.data() + offset, 1, n);
      return Status::OK();
    };
  }

  // "" when every byte of ranges arrived and nothing wrong did; else what went wrong.
  std::string Check(const std::vector<ByteRange>& ranges) const {
    if (!wrong_.empty()) return "wrong data: " + wrong_;
    for (const ByteRange& r : ranges) {
      for (uint64_t i = r.offset; i < r.end(); ++i) {
        if (seen_[i] == 0) return "byte " + std::to_string(i) + " never arrived";
      }
    }
    return "";
  }

  size_t calls() const { return calls_; }
  uint64_t bytes() const { return bytes_; }
  size_t largest_piece() const { return largest_piece_; }

 private:
  const std::string& content_;
  std::vector<uint8_t> seen_;
  size_t calls_ = 0;
  uint64_t bytes_ = 0;
  size_t largest_piece_ = 0;
  std::string wrong_;
};

uint64_t TotalLength(const std::vector<ByteRange>& ranges) {
  uint64_t n = 0;
  for (const ByteRange& r : ranges) n += r.length;
  return n;
}

// count ranges of length bytes, every stride bytes from first.
std::vector<ByteRange> Spread(uint64_t first, uint64_t length, uint64_t stride, size_t count) {
  std::vector<ByteRange> out;
  for (size_t i = 0; i < count; ++i) out.push_back({first + i * stride, length});
  return out;
}

// ---------------------------------------------------------------------------
// The conformance suite: the same calls and the same answers from every kind
// of source.

enum class Kind { kFile, kNginx, kStaticServer };

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::kFile:
      return "File";
    case Kind::kNginx:
      return "Nginx";
    case Kind::kStaticServer:
      return "StaticServer";
  }
  return "Unknown";
}

class FetchRangesConformanceTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kNginx && !NginxServer::Available()) {
      GTEST_SKIP() << "/usr/sbin/nginx is not installed";
    }
  }

  // Publishes content as an object of kRepo and starts the source over it.
  void Publish(const std::string& content) {
    content_ = content;
    testing::WriteFile(
        root_.Sub(std::string(kRepo) + "/" + PublishedObjectPath(Sha256Hex(content_))), content_);
    std::string url;
    switch (GetParam()) {
      case Kind::kFile:
        url = "file://" + root_.path();
        break;
      case Kind::kNginx: {
        nginx_ = std::make_unique<NginxServer>(NginxServer::Options{.root = root_.path()});
        std::string error;
        ASSERT_TRUE(nginx_->Start(&error)) << error;
        url = nginx_->url();
        break;
      }
      case Kind::kStaticServer: {
        StaticFileServer::Options options;
        options.root = root_.path();
        static_server_ = std::make_unique<StaticFileServer>(options);
        ASSERT_TRUE(static_server_->Start().ok());
        url = static_server_->url();
        break;
      }
    }
    SourceOptions options;
    options.cancel = &cancel_;
    auto source = MakePublishRootSource(url, kRepo, options);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    source_ = std::move(source).value();
  }

  Status Fetch(const std::vector<ByteRange>& ranges, CheckingSink* sink) {
    return source_->FetchContentRanges(RefOf(content_), ranges, sink->sink());
  }

  // Fetches ranges and expects exactly their bytes, in pieces of at most 1 MiB.
  void ExpectFetched(const std::vector<ByteRange>& ranges) {
    CheckingSink sink(content_);
    Status st = Fetch(ranges, &sink);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(sink.Check(ranges), "");
    // None of these servers merges or repeats ranges.
    EXPECT_EQ(sink.bytes(), TotalLength(ranges));
    EXPECT_LE(sink.largest_piece(), kMiB);
  }

  TempDir root_{/*world_readable=*/true};
  std::string content_;
  CancelFlag cancel_;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<StaticFileServer> static_server_;
  std::unique_ptr<Source> source_;
};

TEST_P(FetchRangesConformanceTest, OneRange) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(100000, 1)));
  ExpectFetched({{1234, 5678}});
}

TEST_P(FetchRangesConformanceTest, FirstAndLastByte) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(100000, 2)));
  ExpectFetched({{0, 1}});
  ExpectFetched({{99999, 1}});
  ExpectFetched({{0, 1}, {99999, 1}});
}

TEST_P(FetchRangesConformanceTest, TheWholeFileAsOneRange) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(3 * kMiB + 17, 3)));
  ExpectFetched({{0, content_.size()}});
}

TEST_P(FetchRangesConformanceTest, AdjacentRanges) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(100000, 4)));
  ExpectFetched({{0, 10}, {10, 10}, {20, 1}, {21, 4000}, {4021, 95979}});
}

TEST_P(FetchRangesConformanceTest, TwoHundredRanges) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(kMiB, 5)));
  std::vector<ByteRange> ranges;
  for (uint64_t i = 0; i < 200; ++i) ranges.push_back({i * 5000 + i % 7, 1 + i * 13 % 4000});
  ExpectFetched(ranges);
}

TEST_P(FetchRangesConformanceTest, TensOfMegabytesInHundredsOfRanges) {
  // 700 ranges of 48 KiB every 56 KiB of a 40 MiB file: 33.6 MB in several
  // requests over HTTP (at most kMaxRangesPerRequest ranges each).
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(40 * kMiB, 6)));
  std::vector<ByteRange> ranges = Spread(1000, 48 << 10, 56 << 10, 700);
  ranges.push_back({content_.size() - 1, 1});
  ExpectFetched(ranges);
}

TEST_P(FetchRangesConformanceTest, NoRangesDoesNothing) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(1000, 7)));
  CheckingSink sink(content_);
  EXPECT_TRUE(Fetch({}, &sink).ok());
  EXPECT_EQ(sink.calls(), 0u);
}

TEST_P(FetchRangesConformanceTest, RangesBreakingTheContractAreInvalid) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(1000, 8)));
  const std::vector<std::pair<std::vector<ByteRange>, std::string>> cases = {
      {{{10, 5}, {0, 5}}, "range 1 (offset 0, length 5) is out of order or overlaps"},
      {{{0, 10}, {5, 10}}, "range 1 (offset 5, length 10) is out of order or overlaps"},
      {{{0, 0}}, "range 0 (offset 0, length 0) is empty"},
      {{{990, 11}}, "range 0 (offset 990, length 11) runs past the end of the file (1000 bytes)"},
      {{{1000, 1}}, "runs past the end"},
      {{{1, UINT64_MAX}}, "runs past the end"},
  };
  for (const auto& [ranges, why] : cases) {
    CheckingSink sink(content_);
    Status st = Fetch(ranges, &sink);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
    EXPECT_THAT(st.message(), StartsWith("ranges of " + source_->ContentLocation(RefOf(content_))));
    EXPECT_THAT(st.message(), HasSubstr(why));
    EXPECT_EQ(sink.calls(), 0u);
  }
}

TEST_P(FetchRangesConformanceTest, MissingFileIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(1000, 9)));
  CheckingSink sink(content_);
  Status st = source_->FetchContentRanges(kMissing, {{0, 10}}, sink.sink());
  EXPECT_EQ(st.code(), Status::Code::kNotFound) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr(source_->ContentLocation(kMissing)));
}

TEST_P(FetchRangesConformanceTest, AFileOfAnotherSizeIsCorruption) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(1000, 10)));
  for (uint64_t expected : {999u, 1001u}) {
    CheckingSink sink(content_);
    Status st = source_->FetchContentRanges(RefOf(content_, expected), {{0, 10}}, sink.sink());
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
    EXPECT_THAT(st.message(),
                StartsWith(source_->ContentLocation(RefOf(content_)) + ": has 1000 bytes"));
    EXPECT_THAT(st.message(), HasSubstr("but " + std::to_string(expected) + " were expected"));
    EXPECT_EQ(sink.calls(), 0u);
  }
}

TEST_P(FetchRangesConformanceTest, SinkErrorIsReturnedAsIs) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(100000, 11)));
  int calls = 0;
  Status st = source_->FetchContentRanges(RefOf(content_), {{0, 10}, {500, 10}},
                                          [&](uint64_t, const char*, size_t) {
                                            ++calls;
                                            return Status::NoSpace("write /mirror/x", "disk full");
                                          });
  EXPECT_EQ(st.code(), Status::Code::kNoSpace);
  EXPECT_EQ(st.message(), "write /mirror/x: disk full");
  EXPECT_EQ(calls, 1);
}

TEST_P(FetchRangesConformanceTest, CancelledBeforeAnyByte) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(100000, 12)));
  cancel_.Cancel();
  CheckingSink sink(content_);
  Status st = Fetch({{0, 10}}, &sink);
  EXPECT_EQ(st.code(), Status::Code::kCancelled) << st.ToString();
  EXPECT_EQ(sink.calls(), 0u);
}

TEST_P(FetchRangesConformanceTest, CancelledBetweenPieces) {
  ASSERT_NO_FATAL_FAILURE(Publish(RandomBytes(8 * kMiB, 13)));
  int calls = 0;
  Status st = source_->FetchContentRanges(RefOf(content_), {{0, content_.size()}},
                                          [&](uint64_t, const char*, size_t) {
                                            ++calls;
                                            cancel_.Cancel();
                                            return Status::OK();
                                          });
  EXPECT_EQ(st.code(), Status::Code::kCancelled) << st.ToString();
  EXPECT_LT(calls, 8);  // stopped within a piece or two, not after all of them
}

INSTANTIATE_TEST_SUITE_P(AllSources, FetchRangesConformanceTest,
                         ::testing::Values(Kind::kFile, Kind::kNginx, Kind::kStaticServer),
                         KindName);

// ---------------------------------------------------------------------------
// Against nginx: how many requests, and what it sent.

class NginxRangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "/usr/sbin/nginx is not installed";
  }

  std::unique_ptr<Source> Start(NginxServer::Options options, const std::string& content) {
    content_ = content;
    testing::WriteFile(
        root_.Sub(std::string(kRepo) + "/" + PublishedObjectPath(Sha256Hex(content_))), content_);
    options.root = root_.path();
    nginx_ = std::make_unique<NginxServer>(options);
    std::string error;
    EXPECT_TRUE(nginx_->Start(&error)) << error;
    auto source = MakePublishRootSource(nginx_->url(), kRepo, {});
    EXPECT_TRUE(source.ok());
    return std::move(source).value();
  }

  // Fetches ranges, expects their bytes, and returns nginx's access log once
  // it has `requests` lines, each of which must be a 206.
  std::vector<testing::AccessLogEntry> FetchAndLog(Source* source,
                                                   const std::vector<ByteRange>& ranges,
                                                   size_t requests) {
    CheckingSink sink(content_);
    Status st = source->FetchContentRanges(RefOf(content_), ranges, sink.sink());
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(sink.Check(ranges), "");
    EXPECT_TRUE(nginx_->WaitForAccessLog(requests));
    auto log = nginx_->ReadAccessLog();
    for (const auto& e : log) EXPECT_EQ(e.status, 206) << e.range;
    return log;
  }

  TempDir root_{/*world_readable=*/true};
  std::string content_;
  std::unique_ptr<NginxServer> nginx_;
};

TEST_F(NginxRangesTest, TwoHundredRangesGoInOneRequest) {
  auto source = Start({}, RandomBytes(kMiB, 20));
  std::vector<ByteRange> ranges = Spread(7, 100, 5000, 200);
  auto log = FetchAndLog(source.get(), ranges, 1);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].range, FormatRangeHeader(ranges));
}

TEST_F(NginxRangesTest, MoreRangesThanOneRequestTakesAreSplit) {
  auto source = Start({}, RandomBytes(kMiB, 21));
  std::vector<ByteRange> ranges = Spread(0, 10, 2000, 450);
  auto log = FetchAndLog(source.get(), ranges, 3);
  ASSERT_EQ(log.size(), 3u);
  const std::vector<ByteRange> first(ranges.begin(), ranges.begin() + kMaxRangesPerRequest);
  EXPECT_EQ(log[0].range, FormatRangeHeader(first));
}

TEST_F(NginxRangesTest, ServerAnsweringRangesWith200IsUnsupportedAndNotDownloaded) {
  // max_ranges 1: nginx answers a request for several ranges with the whole file.
  auto source = Start({.multi_range_ok = false}, RandomBytes(64 * kMiB, 22));
  CheckingSink sink(content_);
  Status st = source->FetchContentRanges(RefOf(content_), {{0, 10}, {100, 10}}, sink.sink());
  const std::string url = source->ContentLocation(RefOf(content_));
  EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
  EXPECT_THAT(st.message(), StartsWith(url + " ignores Range requests (answered 200)"));
  EXPECT_EQ(sink.calls(), 0u);
  ASSERT_TRUE(nginx_->WaitForAccessLog(1));
  auto log = nginx_->ReadAccessLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].status, 200);
  // The connection was closed after the headers: nginx got out what the
  // socket buffers held, far from the 64 MiB.
  EXPECT_LT(log[0].bytes_sent, content_.size() / 2);

  // One range at a time it does serve.
  CheckingSink one(content_);
  ASSERT_TRUE(source->FetchContentRanges(RefOf(content_), {{100, 10}}, one.sink()).ok());
  EXPECT_EQ(one.Check({{100, 10}}), "");
}

// ---------------------------------------------------------------------------
// HttpSource against scripted answers.

class ScriptedRangesTest : public ::testing::Test {
 protected:
  ScriptedRangesTest() : content_(RandomBytes(10000, 30)) {}

  // Serves the object through handler, which gets the request and the ranges it asks for.
  void Serve(std::function<Reply(const std::string&, const std::vector<ByteRange>&)> handler,
             SourceOptions options = {}) {
    server_ = std::make_unique<ScriptedServer>([handler](const std::string& request, int, int) {
      return handler(request, testing::RequestedRanges(request));
    });
    options.cancel = &cancel_;
    auto source = MakePublishRootSource(server_->Url(""), kRepo, options);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    source_ = std::move(source).value();  // throws (and fails the test) when not ok
    url_ = source_->ContentLocation(RefOf(content_));
  }

  Status Fetch(const std::vector<ByteRange>& ranges, CheckingSink* sink) {
    return source_->FetchContentRanges(RefOf(content_), ranges, sink->sink());
  }

  // A 206 with one part: range r of the content.
  std::string SinglePart(const ByteRange& r) const {
    return Response(206, content_.substr(r.offset, r.length),
                    "Content-Range: bytes " + std::to_string(r.offset) + "-" +
                        std::to_string(r.end() - 1) + "/" + std::to_string(content_.size()) +
                        "\r\n");
  }
  // A 206 multipart/byteranges answer holding ranges.
  std::string Multipart(const std::vector<ByteRange>& ranges) const {
    return Response(206, testing::MultipartBody("XyZ", content_, ranges),
                    "Content-Type: multipart/byteranges; boundary=XyZ\r\n");
  }

  const std::string content_;
  CancelFlag cancel_;
  std::unique_ptr<ScriptedServer> server_;
  std::unique_ptr<Source> source_;
  std::string url_;
  const std::vector<ByteRange> five_ = {{0, 10}, {100, 50}, {2000, 1}, {5000, 2000}, {9999, 1}};
};

TEST_F(ScriptedRangesTest, ServerSendingOnlyTheFirstRangeIsAskedForTheRest) {
  Serve([&](const std::string&, const std::vector<ByteRange>& asked) {
    return Respond(SinglePart(asked.at(0)));
  });
  CheckingSink sink(content_);
  ASSERT_TRUE(Fetch(five_, &sink).ok());
  EXPECT_EQ(sink.Check(five_), "");
  EXPECT_EQ(sink.bytes(), TotalLength(five_));
  auto requests = server_->requests();
  ASSERT_EQ(requests.size(), five_.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<ByteRange> rest(five_.begin() + static_cast<std::ptrdiff_t>(i), five_.end());
    EXPECT_THAT(requests[i], HasSubstr("\r\nRange: " + FormatRangeHeader(rest) + "\r\n"));
  }
  EXPECT_EQ(server_->connections(), 1);  // all on one kept-alive connection
}

TEST_F(ScriptedRangesTest, MultipartWithSomePartsMissingIsCompletedByFollowUps) {
  // Answers with every other range asked for, and the first part cut short:
  // the follow-ups ask for what is left, including the tail of a range.
  Serve([&](const std::string&, const std::vector<ByteRange>& asked) {
    std::vector<ByteRange> some;
    for (size_t i = 0; i < asked.size(); i += 2) some.push_back(asked[i]);
    if (some[0].length > 1) some[0].length /= 2;
    return Respond(some.size() == 1 ? SinglePart(some[0]) : Multipart(some));
  });
  CheckingSink sink(content_);
  ASSERT_TRUE(Fetch(five_, &sink).ok());
  EXPECT_EQ(sink.Check(five_), "");
  auto requests = server_->requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_THAT(requests[1], HasSubstr("\r\nRange: bytes=5-9,100-149,5000-6999\r\n"));
}

TEST_F(ScriptedRangesTest, MergedRangesInOnePartAreOneRequest) {
  Serve([&](const std::string&, const std::vector<ByteRange>&) {
    return Respond(SinglePart({0, 150}));
  });
  CheckingSink sink(content_);
  const std::vector<ByteRange> two = {{0, 10}, {100, 50}};
  ASSERT_TRUE(Fetch(two, &sink).ok());
  EXPECT_EQ(sink.Check(two), "");
  EXPECT_EQ(sink.bytes(), 150u);  // the bytes between came too
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(ScriptedRangesTest, AnswerWithNothingNewStopsTheFollowUps) {
  Serve([&](const std::string&, const std::vector<ByteRange>&) {
    return Respond(SinglePart({0, 10}));
  });
  CheckingSink sink(content_);
  Status st = Fetch({{0, 10}, {100, 50}, {200, 5}}, &sink);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
  EXPECT_EQ(st.message(), "GET " + url_ +
                              ": asked for bytes 100-149, 200-204, the server sent bytes 0-9: "
                              "none of the requested bytes; it does not serve ranges usably");
  EXPECT_EQ(server_->requests().size(), 2u);
}

TEST_F(ScriptedRangesTest, Answer200IsUnsupportedAndItsBodyIsNotRead) {
  const std::string big(8 * kMiB, 'x');
  Serve([&](const std::string&, const std::vector<ByteRange>&) {
    return Respond(Response(200, big));
  });
  CheckingSink sink(content_);
  Status st = Fetch(five_, &sink);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported);
  EXPECT_EQ(st.message(), url_ +
                              " ignores Range requests (answered 200): its body, the whole file, "
                              "was not read");
  EXPECT_EQ(sink.calls(), 0u);
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(ScriptedRangesTest, ChunkedMultipartWithPreambleAndQuotedBoundaryInTinyWrites) {
  Serve([&](const std::string&, const std::vector<ByteRange>& asked) {
    std::string body = "preamble\r\n" + testing::MultipartBody("a b:c", content_, asked);
    std::string wire =
        "HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: Multipart/ByteRanges; BOUNDARY=\"a b:c\"\r\n\r\n";
    for (size_t i = 0; i < body.size(); i += 1000) {
      std::string chunk = body.substr(i, 1000);
      char hex[16];
      std::snprintf(hex, sizeof hex, "%zx", chunk.size());
      wire += std::string(hex) + "\r\n" + chunk + "\r\n";
    }
    wire += "0\r\n\r\n";
    Reply reply;
    for (size_t i = 0; i < wire.size(); i += 333) reply.writes.push_back(wire.substr(i, 333));
    return reply;
  });
  CheckingSink sink(content_);
  Status st = Fetch(five_, &sink);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sink.Check(five_), "");
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(ScriptedRangesTest, PartOfAnotherSizedFileIsCorruption) {
  Serve([&](const std::string&, const std::vector<ByteRange>&) {
    return Respond(Response(206, std::string(10, 'a'), "Content-Range: bytes 0-9/12345\r\n"));
  });
  CheckingSink sink(content_);
  Status st = Fetch({{0, 10}}, &sink);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_EQ(st.message(), url_ +
                              ": has 12345 bytes (Content-Range: bytes 0-9/12345) but 10000 "
                              "were expected; the published file is not the one the manifest "
                              "describes");
  EXPECT_EQ(sink.calls(), 0u);
}

TEST_F(ScriptedRangesTest, AnswersThatAreNotRangesOfThisFileAreUnsupported) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Response(206, "0123456789", "Content-Range: bytes 9995-10004/*\r\n"),
       "sent Content-Range: bytes 9995-10004/*, past the end of the 10000-byte file"},
      {Response(206, "0123456789"), "answered 206 without a usable Content-Range (none)"},
      {Response(206, "0123456789", "Content-Range: bytes 0-9\r\n"),
       "answered 206 without a usable Content-Range ('bytes 0-9')"},
      {Response(206, "0123456789", "Content-Range: bytes 0-19/10000\r\n"),
       "answered 206 with Content-Range: bytes 0-19/10000 but Content-Length: 10"},
      {Response(206, "x", "Content-Type: multipart/byteranges\r\n"),
       "answered 206 with Content-Type 'multipart/byteranges', which has no boundary"},
      {Response(206, "<html>oops</html>", "Content-Type: multipart/byteranges; boundary=q\r\n"),
       "not a multipart/byteranges body: no delimiter line '--q'"},
  };
  for (const auto& [answer, why] : cases) {
    Serve([&](const std::string&, const std::vector<ByteRange>&) { return Respond(answer); });
    CheckingSink sink(content_);
    Status st = Fetch({{0, 10}, {100, 10}}, &sink);
    EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
    EXPECT_THAT(st.message(), StartsWith("GET " + url_ + ": " + why));
    EXPECT_EQ(sink.calls(), 0u);
  }
}

TEST_F(ScriptedRangesTest, ChunkedSinglePartLongerThanItsRangeIsUnsupported) {
  Serve([&](const std::string&, const std::vector<ByteRange>&) {
    return Respond(
        "HTTP/1.1 206 X\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes 0-9/10000\r\n\r\n"
        "c\r\n0123456789ab\r\n0\r\n\r\n");
  });
  CheckingSink sink(content_);
  Status st = Fetch({{0, 10}}, &sink);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("more bytes than its Content-Range: bytes 0-9/10000 holds"));
}

TEST_F(ScriptedRangesTest, TruncatedAnswersAreNetworkErrors) {
  // Bodies that end when the connection closes: the cut is only visible in
  // the multipart framing or against the Content-Range.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP/1.1 206 X\r\nContent-Type: multipart/byteranges; boundary=XyZ\r\n\r\n" +
           testing::MultipartBody("XyZ", content_, {{0, 10}, {100, 10}}).substr(0, 150),
       "multipart/byteranges body cut off"},
      {"HTTP/1.1 206 X\r\nContent-Range: bytes 0-9/10000\r\n\r\n01234",
       "the 206 body ended 5 bytes before the end of its Content-Range"},
  };
  for (const auto& [answer, why] : cases) {
    Serve([&](const std::string&, const std::vector<ByteRange>&) {
      return Respond(answer, /*close_after=*/true);
    });
    CheckingSink sink(content_);
    Status st = Fetch({{0, 10}, {100, 10}}, &sink);
    EXPECT_EQ(st.code(), Status::Code::kNetwork) << st.ToString();
    EXPECT_THAT(st.message(), StartsWith("GET " + url_ + ": "));
    EXPECT_THAT(st.message(), HasSubstr(why));
  }
}

TEST_F(ScriptedRangesTest, ErrorStatusesNameTheUrlAndStatus) {
  struct Case {
    std::string answer;
    Status::Code code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {Response(404, "no"), Status::Code::kNotFound, "HTTP 404 X from "},
      {Response(500, "oops"), Status::Code::kNetwork, "HTTP 500 X from "},
      {Response(416, "", "Content-Range: bytes */10000\r\n"), Status::Code::kNetwork,
       "HTTP 416 X from "},
      {Response(416, "", "Content-Range: bytes */777\r\n"), Status::Code::kCorruption,
       "has 777 bytes (HTTP 416 with Content-Range: bytes */777) but 10000 were expected"},
  };
  for (const Case& c : cases) {
    Serve([&](const std::string&, const std::vector<ByteRange>&) { return Respond(c.answer); });
    CheckingSink sink(content_);
    Status st = Fetch({{0, 10}, {100, 10}}, &sink);
    EXPECT_EQ(st.code(), c.code) << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr(c.message));
    EXPECT_THAT(st.message(), HasSubstr(url_));
    EXPECT_EQ(sink.calls(), 0u);
  }
}

TEST_F(ScriptedRangesTest, StalledServerTimesOut) {
  SourceOptions options;
  options.io_timeout = std::chrono::milliseconds(200);
  Serve(
      [&](const std::string&, const std::vector<ByteRange>&) {
        Reply r;
        r.hang = true;
        return r;
      },
      options);
  CheckingSink sink(content_);
  Status st = Fetch(five_, &sink);
  EXPECT_EQ(st.code(), Status::Code::kNetwork) << st.ToString();
  EXPECT_THAT(st.message(), StartsWith("GET " + url_ + ": "));
  EXPECT_THAT(st.message(), HasSubstr("timed out"));
}

TEST_F(ScriptedRangesTest, CancelledBetweenFollowUpRequests) {
  Serve([&](const std::string&, const std::vector<ByteRange>& asked) {
    return Respond(SinglePart(asked.at(0)));
  });
  CheckingSink checking(content_);
  RangeSink inner = checking.sink();
  Status st = source_->FetchContentRanges(RefOf(content_), five_,
                                          [&](uint64_t offset, const char* data, size_t n) {
                                            cancel_.Cancel();
                                            return inner(offset, data, n);
                                          });
  EXPECT_EQ(st.code(), Status::Code::kCancelled) << st.ToString();
  EXPECT_EQ(server_->requests().size(), 1u);
  EXPECT_EQ(checking.Check({five_[0]}), "");
}

// ---------------------------------------------------------------------------
// FileSource specifics.

TEST(FileSourceRangesTest, PiecesAreAtMostOneMebibyteAndInOrder) {
  TempDir root;
  const std::string content = RandomBytes(3 * kMiB + 5, 40);
  testing::WriteFile(root.Sub(std::string(kRepo) + "/" + PublishedObjectPath(Sha256Hex(content))),
                     content);
  auto source = MakePublishRootSource("file://" + root.path(), kRepo, {});
  ASSERT_TRUE(source.ok());
  std::vector<std::pair<uint64_t, size_t>> calls;
  const std::vector<ByteRange> ranges = {{1, 2 * kMiB + 3}, {3 * kMiB, 5}};
  ASSERT_TRUE((*source)
                  ->FetchContentRanges(RefOf(content), ranges,
                                       [&](uint64_t offset, const char* data, size_t n) {
                                         EXPECT_EQ(std::string(data, n), content.substr(offset, n));
                                         calls.emplace_back(offset, n);
                                         return Status::OK();
                                       })
                  .ok());
  const std::vector<std::pair<uint64_t, size_t>> expected = {
      {1, kMiB}, {1 + kMiB, kMiB}, {1 + 2 * kMiB, 3}, {3 * kMiB, 5}};
  EXPECT_EQ(calls, expected);
}

TEST(FileSourceRangesTest, ADirectoryIsNotAFile) {
  TempDir root;
  const ContentRef dir{std::string(64, 'd'), 10, "r1", "dir", {}};
  testing::MakeDirs(root.Sub(std::string(kRepo) + "/" + PublishedObjectPath(dir.sha256)));
  auto source = MakePublishRootSource("file://" + root.path(), kRepo, {});
  ASSERT_TRUE(source.ok());
  Status st = (*source)->FetchContentRanges(
      dir, {{0, 1}}, [](uint64_t, const char*, size_t) { return Status::OK(); });
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(),
              HasSubstr(root.Sub(std::string(kRepo) + "/" + PublishedObjectPath(dir.sha256))));
}

}  // namespace
}  // namespace sync_agent
