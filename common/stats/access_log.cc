#include "common/stats/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sync_agent {
namespace {

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Digits at p (at least one); advances p.
inline bool ScanUint(const char*& p, const char* end, uint64_t* v) {
  if (p == end || !IsDigit(*p)) return false;
  uint64_t n = 0;
  int digits = 0;
  while (p != end && IsDigit(*p)) {
    n = n * 10 + static_cast<uint64_t>(*p++ - '0');
    if (++digits > 19) return false;
  }
  *v = n;
  return true;
}

inline bool Expect(const char*& p, const char* end, char c) {
  if (p == end || *p != c) return false;
  ++p;
  return true;
}

// A quoted field at p. nginx escapes '"' inside values as \x22; a '"'
// preceded by an odd number of backslashes (other writers' \") is part of the
// value too.
inline bool ScanQuoted(const char*& p, const char* end, std::string_view* field) {
  if (!Expect(p, end, '"')) return false;
  const char* start = p;
  for (;;) {
    const char* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (q == nullptr) return false;
    const char* b = q;
    while (b > start && b[-1] == '\\') --b;
    if (((q - b) & 1) == 0) {
      *field = std::string_view(start, static_cast<size_t>(q - start));
      p = q + 1;
      return true;
    }
    p = q + 1;
  }
}

inline int Two(const char* p) {
  if (!IsDigit(p[0]) || !IsDigit(p[1])) return -1;
  return (p[0] - '0') * 10 + (p[1] - '0');
}

int Month(const char* m) {
  static constexpr const char kNames[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  for (int i = 0; i < 12; ++i) {
    if (std::memcmp(m, kNames + 3 * i, 3) == 0) return i + 1;
  }
  return 0;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "02/Dec/2026:20:23:20 +0100" (26 bytes) -> Unix seconds.
bool ParseTimeLocal(const char* t, int64_t* out) {
  if (t[2] != '/' || t[6] != '/' || t[11] != ':' || t[14] != ':' || t[17] != ':' || t[20] != ' ')
    return false;
  const int day = Two(t), month = Month(t + 3), hi = Two(t + 7), lo = Two(t + 9);
  const int hour = Two(t + 12), minute = Two(t + 15), second = Two(t + 18);
  const int oh = Two(t + 22), om = Two(t + 24);
  if (day < 1 || day > 31 || month == 0 || hi < 0 || lo < 0 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60 || oh < 0 || om < 0 ||
      (t[21] != '+' && t[21] != '-'))
    return false;
  const int64_t offset = (oh * 3600 + om * 60) * (t[21] == '-' ? -1 : 1);
  *out = DaysFromCivil(hi * 100 + lo, month, day) * 86400 + hour * 3600 + minute * 60 + second -
         offset;
  return true;
}

// $request_time: "0.123", "12", or "-".
bool ScanSeconds(const char*& p, const char* end, double* out, bool* present) {
  if (p != end && *p == '-') {
    ++p;
    *present = false;
    return true;
  }
  uint64_t whole;
  if (!ScanUint(p, end, &whole)) return false;
  double v = static_cast<double>(whole);
  if (p != end && *p == '.') {
    ++p;
    double scale = 0.1;
    if (p == end || !IsDigit(*p)) return false;
    while (p != end && IsDigit(*p)) {
      v += (*p++ - '0') * scale;
      scale *= 0.1;
    }
  }
  *out = v;
  *present = true;
  return true;
}

}  // namespace

bool ParseAccessLine(std::string_view line, AccessLine* out) {
  const char* p = line.data();
  const char* end = p + line.size();
  // $remote_addr - $remote_user [
  const char* bracket = static_cast<const char*>(std::memchr(p, '[', line.size()));
  if (bracket == nullptr || bracket == p || bracket[-1] != ' ') return false;
  p = bracket + 1;
  if (end - p < 27 || p[26] != ']') return false;
  if (!ParseTimeLocal(p, &out->unix_seconds)) return false;
  p += 27;
  if (!Expect(p, end, ' ')) return false;
  std::string_view request;
  if (!ScanQuoted(p, end, &request)) return false;
  uint64_t status, bytes;
  if (!Expect(p, end, ' ') || !ScanUint(p, end, &status) || status < 100 || status > 999 ||
      !Expect(p, end, ' '))
    return false;
  if (p != end && *p == '-') {  // $body_bytes_sent is never "-", but be lenient
    ++p;
    bytes = 0;
  } else if (!ScanUint(p, end, &bytes)) {
    return false;
  }
  std::string_view referer, agent;
  if (!Expect(p, end, ' ') || !ScanQuoted(p, end, &referer) || !Expect(p, end, ' ') ||
      !ScanQuoted(p, end, &agent))
    return false;
  out->status = static_cast<int>(status);
  out->bytes = bytes;
  out->timed = false;
  out->request_time = 0;
  out->cache = CacheStatus::kAbsent;
  if (p != end) {
    // The sync_agent format's $request_time $upstream_cache_status.
    if (!Expect(p, end, ' ') || !ScanSeconds(p, end, &out->request_time, &out->timed) ||
        !Expect(p, end, ' ') || p == end)
      return false;
    std::string_view cache(p, static_cast<size_t>(end - p));
    // Several upstreams (an internal redirect) give "MISS, HIT": the last answered.
    if (size_t comma = cache.rfind(", "); comma != std::string_view::npos)
      cache.remove_prefix(comma + 2);
    if (cache == "-") {
      out->cache = CacheStatus::kNone;
    } else if (cache == "HIT") {
      out->cache = CacheStatus::kHit;
    } else if (cache.find(' ') == std::string_view::npos) {
      out->cache = CacheStatus::kOther;
    } else {
      return false;
    }
  }
  // "METHOD TARGET PROTOCOL"; anything else ("-", a TLS hello sent to a plain
  // port) is still a request, of no repository.
  out->method = {};
  out->path = {};
  size_t sp = request.find(' ');
  if (sp != std::string_view::npos && sp > 0) {
    out->method = request.substr(0, sp);
    std::string_view target = request.substr(sp + 1);
    size_t last = target.rfind(' ');
    if (last != std::string_view::npos) target = target.substr(0, last);
    size_t q = target.find('?');
    out->path = q == std::string_view::npos ? target : target.substr(0, q);
  }
  return true;
}

bool RepoOfPath(std::string_view path, std::string_view* repo) {
  if (path.size() < 5 || path[0] != '/') return false;
  std::string_view rest = path.substr(1);
  if (rest.compare(0, 9, "datasets/") == 0) rest.remove_prefix(9);
  size_t org_end = rest.find('/');
  if (org_end == 0 || org_end == std::string_view::npos) return false;
  size_t name_end = rest.find('/', org_end + 1);
  if (name_end == std::string_view::npos || name_end == org_end + 1) return false;
  *repo = rest.substr(0, name_end);
  return true;
}

LogReader::~LogReader() {
  if (z_init_) inflateEnd(&z_);
  if (fd_ >= 0) ::close(fd_);
}

bool LogReader::ReadRaw(char* into, size_t cap, size_t* got) {
  for (;;) {
    ssize_t n = ::read(fd_, into, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status_ = PosixError("read " + path_, errno);
      return false;
    }
    *got = static_cast<size_t>(n);
    bytes_read_ += *got;
    return true;
  }
}

Status LogReader::Open(const std::string& path, size_t block_size) {
  path_ = path;
  block_ = block_size == 0 ? kBlock : block_size;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return status_ = PosixError("open " + path, errno);
  cap_ = kMaxLine + block_;
  buf_.reset(new char[cap_]);
  in_.reset(new char[block_]);
  size_t got = 0;
  // Enough bytes to see the magic (a short read from a pipe is possible).
  size_t have = 0;
  do {
    if (!ReadRaw(in_.get() + have, block_ - have, &got)) return status_;
    have += got;
  } while (got > 0 && have < 2 && have < block_);
  if (got == 0) eof_ = true;
  gzip_ = have >= 2 && static_cast<unsigned char>(in_[0]) == 0x1f &&
          static_cast<unsigned char>(in_[1]) == 0x8b;
  if (gzip_) {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) {
      return status_ = Status::IOError("inflate " + path, "zlib could not start");
    }
    z_init_ = true;
    z_.next_in = reinterpret_cast<Bytef*>(in_.get());
    z_.avail_in = static_cast<uInt>(have);
  } else {
    std::memcpy(buf_.get(), in_.get(), have);
    end_ = have;
  }
  return status_;
}

bool LogReader::Fill() {
  char* into = buf_.get() + end_;
  const size_t room = std::min(block_, cap_ - end_);
  if (!gzip_) {
    if (eof_) return false;
    size_t got;
    if (!ReadRaw(into, room, &got)) return false;
    if (got == 0) {
      eof_ = true;
      return false;
    }
    end_ += got;
    return true;
  }
  for (;;) {
    if (z_.avail_in == 0 && !eof_) {
      size_t got;
      if (!ReadRaw(in_.get(), block_, &got)) return false;
      if (got == 0) eof_ = true;
      z_.next_in = reinterpret_cast<Bytef*>(in_.get());
      z_.avail_in = static_cast<uInt>(got);
    }
    if (z_member_done_) {
      if (z_.avail_in == 0 && eof_) return false;
      if (z_.avail_in == 0) continue;
      inflateReset(&z_);  // another gzip member follows (cat a.gz b.gz)
      z_member_done_ = false;
    }
    if (z_.avail_in == 0 && eof_) {
      status_ = Status::Corruption(path_, "the gzip stream is truncated (no end of stream)");
      return false;
    }
    z_.next_out = reinterpret_cast<Bytef*>(into);
    z_.avail_out = static_cast<uInt>(room);
    int rc = inflate(&z_, Z_NO_FLUSH);
    const size_t made = room - z_.avail_out;
    end_ += made;
    if (rc == Z_STREAM_END) {
      z_member_done_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status_ = Status::Corruption(
          path_, std::string("bad gzip data: ") + (z_.msg != nullptr ? z_.msg : "inflate failed"));
      return false;
    }
    if (made > 0) return true;
  }
}

bool LogReader::Next(std::string_view* line) {
  if (fd_ < 0 || !status_.ok()) return false;
  for (;;) {
    const char* s = buf_.get() + begin_;
    const size_t n = end_ - begin_;
    const char* nl = static_cast<const char*>(std::memchr(s, '\n', n));
    if (nl != nullptr) {
      begin_ = static_cast<size_t>(nl + 1 - buf_.get());
      if (skipping_) {
        skipping_ = false;
        continue;
      }
      size_t len = static_cast<size_t>(nl - s);
      if (len > 0 && s[len - 1] == '\r') --len;
      *line = std::string_view(s, len);
      ++line_number_;
      return true;
    }
    if (n >= kMaxLine) {  // an over-long line: return its start, drop the rest
      begin_ = end_;
      if (!skipping_) {
        skipping_ = true;
        *line = std::string_view(s, kMaxLine);
        ++line_number_;
        return true;
      }
    }
    if (begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (!Fill()) {
      if (!status_.ok() || end_ == begin_) return false;
      // The last line has no newline.
      *line = std::string_view(buf_.get() + begin_, end_ - begin_);
      begin_ = end_;
      if (skipping_) return false;
      ++line_number_;
      return true;
    }
  }
}

}  // namespace sync_agent
