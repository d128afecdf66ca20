// nginx access log lines in the sync_agent format (scripts/nginx-mirror.conf.example)
// or plain `combined`, and a streaming reader of plain or gzip'd log files.
//
//   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//   "$http_referer" "$http_user_agent" $request_time $upstream_cache_status
//
// The sync_agent format is combined plus the last two fields. Parsing scans
// the line by hand and allocates nothing: the views point into the line.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace sync_agent {

enum class CacheStatus : uint8_t {
  kAbsent,  // a combined line: no $upstream_cache_status field
  kNone,    // "-": not answered through a cache
  kHit,     // "HIT"
  kOther,   // MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED
};

struct AccessLine {
  std::string_view method;  // "GET"; empty when $request is not "METHOD URI PROTO"
  std::string_view path;    // the request target without its query string
  int status = 0;
  uint64_t bytes = 0;        // $body_bytes_sent
  int64_t unix_seconds = 0;  // $time_local converted to UTC
  bool timed = false;        // has $request_time (the sync_agent format)
  double request_time = 0;   // seconds, when timed
  CacheStatus cache = CacheStatus::kAbsent;
};

// Parses one line (without its newline). Returns false when the line is in
// neither format; *out is then unspecified.
bool ParseAccessLine(std::string_view line, AccessLine* out);

// "/ORG/NAME/..." or "/datasets/ORG/NAME/..." -> "ORG/NAME" (a view into
// path). Returns false for any other path.
bool RepoOfPath(std::string_view path, std::string_view* repo);

// Reads a log file line by line in large blocks, inflating it when it starts
// with the gzip magic bytes (whatever its name), concatenated gzip members
// included. Memory is bounded by the block sizes; a line longer than
// kMaxLine is returned cut to kMaxLine bytes (and will not parse).
// Not thread safe.
class LogReader {
 public:
  static constexpr size_t kBlock = 1 << 20;
  static constexpr size_t kMaxLine = 1 << 20;

  LogReader() = default;
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Opens path; fails with the path and errno's message. block_size is for
  // tests (a line split across reads); 0 means kBlock.
  Status Open(const std::string& path, size_t block_size = 0);
  // The next line without its "\n" (and without a "\r" before it), valid until
  // the next call. Returns false at the end of the file or on an error: see
  // status().
  bool Next(std::string_view* line);
  const Status& status() const { return status_; }
  uint64_t line_number() const { return line_number_; }  // of the last line returned
  uint64_t bytes_read() const { return bytes_read_; }    // from the file (compressed)
  bool gzip() const { return gzip_; }

 private:
  // Appends more decoded bytes after end_; false at EOF or error.
  bool Fill();
  bool ReadRaw(char* into, size_t cap, size_t* got);

  std::string path_;
  int fd_ = -1;
  bool gzip_ = false;
  bool eof_ = false;
  size_t block_ = kBlock;
  std::unique_ptr<char[]> buf_;  // decoded bytes: [begin_, end_) not yet returned
  size_t cap_ = 0, begin_ = 0, end_ = 0;
  std::unique_ptr<char[]> in_;  // compressed input
  z_stream z_{};
  bool z_init_ = false;
  bool z_member_done_ = false;
  bool skipping_ = false;  // inside the rest of an over-long line
  Status status_;
  uint64_t line_number_ = 0;
  uint64_t bytes_read_ = 0;
};

}  // namespace sync_agent
