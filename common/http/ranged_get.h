// Ranged downloads over HTTP, shared by every source kind that reads content
// from a URL (publish roots, Git LFS, hubs and their CDNs).
//
// Thread safety: as the HttpClient passed in (one thread at a time).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/byte_sink.h"
#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/http/http_client.h"

namespace sync_agent {

// The status for an answer that is not what a download wanted: kNotFound for
// 404 and 410, kNetwork otherwise; the message names the URL and the status.
Status StatusForHttp(const std::string& what, const std::string& url, const HttpResponse& r);

// Where and how to GET: the URL, extra headers (an Authorization that a
// redirect must not carry is better given as HttpClientOptions::authorization),
// and the stop flag.
struct RangedGetRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  const CancelFlag* cancel = nullptr;
};

// Streams the file at request.url from offset to its end into sink, with
// "Range: bytes=<offset>-" when offset > 0. sink->Begin() gets the offset the
// data starts at (0 when the server ignores Range and sends the whole file).
// A 416 to a resumed download means the sink holds the whole file already:
// Begin(offset), no data, OK (the caller verifies it). Other statuses:
// StatusForHttp.
Status GetFromOffset(HttpClient* client, const RangedGetRequest& request, uint64_t offset,
                     ObjectSink* sink);

// Fetches ranges of the file at request.url, whose size is file_size, as
// Source::FetchContentRanges describes (common/source/source.h): one Range
// header for many ranges, multipart/byteranges or single parts, follow-up
// requests for what the server left out, kUnsupported for a server that
// does not serve ranges usably, kCorruption for a file of another size.
Status GetRanges(HttpClient* client, const RangedGetRequest& request, uint64_t file_size,
                 const std::vector<ByteRange>& ranges, const RangeSink& sink);

}  // namespace sync_agent
