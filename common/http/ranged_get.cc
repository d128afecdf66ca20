#include "common/http/ranged_get.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string_view>

#include "common/http/byteranges.h"

namespace sync_agent {
namespace {

// A Range header stays below this size: servers limit header lines (nginx
// and Apache to 8 KiB by default).
constexpr size_t kMaxRangeHeaderBytes = 4096;

// The longest prefix of ranges that one request may ask for.
std::vector<ByteRange> FirstRequestRanges(const std::vector<ByteRange>& ranges) {
  std::vector<ByteRange> out;
  size_t header_bytes = std::string_view("bytes=").size();
  for (const ByteRange& r : ranges) {
    size_t spec = std::to_string(r.offset).size() + std::to_string(r.end() - 1).size() + 2;
    if (!out.empty() &&
        (out.size() == kMaxRangesPerRequest || header_bytes + spec > kMaxRangeHeaderBytes)) {
      break;
    }
    out.push_back(r);
    header_bytes += spec;
  }
  return out;
}

uint64_t TotalLength(const std::vector<ByteRange>& ranges) {
  uint64_t n = 0;
  for (const ByteRange& r : ranges) n += r.length;
  return n;
}

// The parts of ranges (sorted, disjoint) that no range of covered overlaps.
std::vector<ByteRange> Subtract(const std::vector<ByteRange>& ranges,
                                std::vector<ByteRange> covered) {
  std::sort(covered.begin(), covered.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  size_t c = 0;
  for (const ByteRange& r : ranges) {
    uint64_t pos = r.offset;
    // Covered ranges ending at or before pos cannot matter to this or later ranges.
    while (c < covered.size() && covered[c].end() <= pos) ++c;
    for (size_t k = c; k < covered.size() && covered[k].offset < r.end() && pos < r.end(); ++k) {
      if (covered[k].offset > pos) out.push_back({pos, covered[k].offset - pos});
      pos = std::max(pos, std::min(covered[k].end(), r.end()));
    }
    if (pos < r.end()) out.push_back({pos, r.end() - pos});
  }
  return out;
}

// "bytes 0-9, 20-29 and 3 more ranges" for messages.
std::string DescribeRanges(const std::vector<ByteRange>& ranges) {
  constexpr size_t kShown = 3;
  if (ranges.empty()) return "no ranges";
  std::string out = "bytes ";
  for (size_t i = 0; i < ranges.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ranges[i].offset) + "-" + std::to_string(ranges[i].end() - 1);
  }
  if (ranges.size() > kShown) {
    out += " and " + std::to_string(ranges.size() - kShown) + " more ranges";
  }
  return out;
}

// Reads one answer to a range request and passes the file bytes in it to the
// sink: a 206 with one Content-Range, or a 206 multipart/byteranges body.
// Records which ranges the answer holds.
class RangeAnswer {
 public:
  RangeAnswer(const std::string& url, uint64_t file_size, const RangeSink& sink)
      : url_(url), ctx_("GET " + url), file_size_(file_size), sink_(sink) {}

  // The headers are in: decides how to read the body, or refuses it.
  Status Begin(const HttpResponse& r) {
    delivered_.clear();
    parser_.reset();
    if (r.status == 200) {
      return Status::Unsupported(url_ + " ignores Range requests (answered 200)",
                                 "its body, the whole file, was not read");
    }
    auto type_it = r.headers.find("content-type");
    std::optional<MediaType> type =
        type_it == r.headers.end() ? std::nullopt : ParseMediaType(type_it->second);
    if (type && type->type == "multipart/byteranges") {
      const std::string* boundary = type->Parameter("boundary");
      if (boundary == nullptr || boundary->empty()) {
        return Status::Unsupported(ctx_, "answered 206 with Content-Type '" + type_it->second +
                                             "', which has no boundary");
      }
      parser_ = std::make_unique<ByteRangesParser>(
          ctx_, *boundary, [this](const ContentRange& part) { return Part(part); }, sink_);
      return Status::OK();
    }
    if (!r.range_first || !r.range_last) {
      auto it = r.headers.find("content-range");
      return Status::Unsupported(
          ctx_, "answered 206 without a usable Content-Range (" +
                    (it == r.headers.end() ? std::string("none") : "'" + it->second + "'") +
                    ") and not as multipart/byteranges");
    }
    single_ = ContentRange{r.range_first, r.range_last, r.range_total};
    SA_RETURN_IF_ERROR(Part(single_));
    if (r.content_length && *r.content_length != single_.AsByteRange().length) {
      return Status::Unsupported(ctx_,
                                 "answered 206 with Content-Range: " + single_.ToString() +
                                     " but Content-Length: " + std::to_string(*r.content_length));
    }
    next_offset_ = *single_.first;
    remaining_ = single_.AsByteRange().length;
    return Status::OK();
  }

  Status Body(const char* data, size_t n) {
    if (parser_) return parser_->Feed(data, n);
    if (n > remaining_) {
      return Status::Unsupported(ctx_, "answered 206 with more bytes than its Content-Range: " +
                                           single_.ToString() + " holds");
    }
    SA_RETURN_IF_ERROR(sink_(next_offset_, data, n));
    next_offset_ += n;
    remaining_ -= n;
    return Status::OK();
  }

  // The response is complete: OK if it held everything it announced.
  Status End() const {
    if (parser_) return parser_->Finish();
    if (remaining_ > 0) {
      return Status::Network(ctx_, "the 206 body ended " + std::to_string(remaining_) +
                                       " bytes before the end of its Content-Range");
    }
    return Status::OK();
  }

  // The ranges of the file the answer held (once End() returned OK).
  const std::vector<ByteRange>& delivered() const { return delivered_; }

 private:
  // A part's Content-Range must describe a range of this very file.
  Status Part(const ContentRange& range) {
    if (range.total && *range.total != file_size_) {
      return FileSizeMismatch(url_, *range.total, file_size_, "Content-Range: " + range.ToString());
    }
    if (*range.last >= file_size_) {
      return Status::Unsupported(ctx_, "sent Content-Range: " + range.ToString() +
                                           ", past the end of the " + std::to_string(file_size_) +
                                           "-byte file");
    }
    delivered_.push_back(range.AsByteRange());
    return Status::OK();
  }

  const std::string& url_;
  const std::string ctx_;
  const uint64_t file_size_;
  const RangeSink& sink_;
  std::unique_ptr<ByteRangesParser> parser_;
  std::vector<ByteRange> delivered_;
  ContentRange single_;       // single part: its Content-Range
  uint64_t next_offset_ = 0;  // single part: the file offset of the next body byte
  uint64_t remaining_ = 0;    // single part: body bytes still to come
};

}  // namespace

Status StatusForHttp(const std::string& what, const std::string& url, const HttpResponse& r) {
  std::string detail = "HTTP " + std::to_string(r.status) + " " + r.reason + " from " + url;
  if (r.status == 404 || r.status == 410) return Status::NotFound(what, detail);
  return Status::Network(what, detail);
}

Status GetFromOffset(HttpClient* client, const RangedGetRequest& request, uint64_t offset,
                     ObjectSink* sink) {
  HttpRequest req;
  req.url = request.url;
  req.headers = request.headers;
  req.cancel = request.cancel;
  if (offset > 0) req.range_first = offset;
  req.on_headers = [&](const HttpResponse& r) -> Status {
    if (r.status == 206) {
      uint64_t first = r.range_first.value_or(0);
      if (first != offset) {
        return Status::Network("GET " + req.url, "server answered a range request for byte " +
                                                     std::to_string(offset) + " from byte " +
                                                     std::to_string(first));
      }
      return sink->Begin(first);
    }
    return sink->Begin(0);  // 200: the server ignored Range and sends everything
  };
  SA_ASSIGN_OR_RETURN(HttpResponse resp,
                      client->Send(req, [&](const char* data, size_t n) -> Status {
                        return sink->Write(data, n);
                      }));
  if (resp.status == 416 && offset > 0) {
    // What we hold is already the whole object (or more): the caller verifies it.
    return sink->Begin(offset);
  }
  if (resp.status != 200 && resp.status != 206) {
    return StatusForHttp("download", req.url, resp);
  }
  return Status::OK();
}

Status GetRanges(HttpClient* client, const RangedGetRequest& request, uint64_t file_size,
                 const std::vector<ByteRange>& ranges, const RangeSink& sink) {
  const std::string& url = request.url;
  SA_RETURN_IF_ERROR(CheckRangesArgument(url, file_size, ranges));
  // Each request asks for the first ranges still missing; each answer must
  // bring something new, so this ends.
  std::vector<ByteRange> missing = ranges;
  while (!missing.empty()) {
    if (request.cancel != nullptr && request.cancel->load()) {
      return Status::Cancelled("GET " + url, "stop requested");
    }
    HttpRequest req;
    req.url = url;
    req.headers = request.headers;
    req.cancel = request.cancel;
    req.ranges = FirstRequestRanges(missing);
    RangeAnswer answer(url, file_size, sink);
    req.on_headers = [&](const HttpResponse& r) { return answer.Begin(r); };
    SA_ASSIGN_OR_RETURN(HttpResponse resp, client->Send(req, [&](const char* data, size_t n) {
      return answer.Body(data, n);
    }));
    if (resp.status == 416 && resp.range_total && *resp.range_total != file_size) {
      return FileSizeMismatch(
          url, *resp.range_total, file_size,
          "HTTP 416 with Content-Range: bytes */" + std::to_string(*resp.range_total));
    }
    if (resp.status != 206) {
      return StatusForHttp("fetch " + DescribeRanges(req.ranges), url, resp);
    }
    SA_RETURN_IF_ERROR(answer.End());
    std::vector<ByteRange> still_missing = Subtract(missing, answer.delivered());
    if (TotalLength(still_missing) == TotalLength(missing)) {
      return Status::Unsupported(
          "GET " + url, "asked for " + DescribeRanges(req.ranges) + ", the server sent " +
                            DescribeRanges(answer.delivered()) +
                            ": none of the requested bytes; it does not serve ranges usably");
    }
    missing = std::move(still_missing);
  }
  return Status::OK();
}

}  // namespace sync_agent
