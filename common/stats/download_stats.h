// Download statistics over nginx access log lines (access_log.h), per
// repository, per hour (UTC) and in total, as issue 13 defines them:
//   requests   lines; bytes: sum of $body_bytes_sent
//   errors     lines with status >= 400; error_rate = errors / requests
//   downloads  GET lines with status 200 or 206, >= 1 MiB sent and
//              $request_time > 0; each one's speed is bytes / request_time
//   mean_speed_bps  mean of the downloads' speeds
//   slow_share      share of downloads slower than the threshold
//   hit_rate        HIT / lines whose $upstream_cache_status is not "-"
// A ratio whose denominator is 0 is null (std::nullopt), and so are the
// download and hit figures of a group that has only `combined` lines.
// Lines of no repository count in the total only.
//
// Memory is constant in the number of lines: one Figures per repository and
// per hour, and a fixed histogram of speeds. Not thread safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/status.h"
#include "common/stats/access_log.h"

namespace sync_agent {

inline constexpr uint64_t kMinDownloadBytes = 1 << 20;
inline constexpr double kDefaultSlowBelow = 10e6;  // 10 MB/s

// "10MB/s", "80Mbit/s", "500kB/s", "1GiB/s", "2000000B/s" -> bytes per second.
Result<double> ParseSlowBelow(std::string_view text);

struct Figures {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t timed = 0;  // lines with $request_time (the sync_agent format)
  uint64_t downloads = 0;
  double speed_sum = 0;  // bytes per second, summed over downloads
  uint64_t slow = 0;
  uint64_t cache_lines = 0;  // $upstream_cache_status not "-"
  uint64_t hits = 0;

  std::optional<double> error_rate() const;
  std::optional<uint64_t> download_count() const;  // null without timed lines
  std::optional<double> mean_speed_bps() const;
  std::optional<double> slow_share() const;
  std::optional<double> hit_rate() const;
};

// Download speeds in log-spaced buckets: kPerDecade per factor of ten from
// kLowest B/s; below and above go to the first and last bucket.
struct SpeedHistogram {
  static constexpr int kPerDecade = 8;
  static constexpr double kLowest = 1e3;           // 1 kB/s
  static constexpr int kBuckets = 8 * kPerDecade;  // up to 100 GB/s
  std::array<uint64_t, kBuckets> counts{};
  static int BucketOf(double bps);
  static double LowerEdge(int bucket);  // B/s
  void Add(double bps) { counts[static_cast<size_t>(BucketOf(bps))]++; }
};

struct MalformedLines {
  uint64_t count = 0;
  std::string first_file;  // where the first one was
  uint64_t first_line = 0;
  std::string first_text;  // its first 200 bytes
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class DownloadStats {
 public:
  explicit DownloadStats(double slow_below_bps = kDefaultSlowBelow) : slow_below_(slow_below_bps) {}

  // Adds one log line; a line that does not parse is counted in malformed().
  void AddLine(std::string_view line, const std::string& file, uint64_t line_number);
  void Add(const AccessLine& line);

  // Reads every line of a plain or gzip'd log. Fails only when the file cannot
  // be read (the status names it); lines added before that stay counted.
  Status AddFile(const std::string& path, size_t block_size = 0);

  double slow_below() const { return slow_below_; }
  const Figures& total() const { return total_; }
  const std::unordered_map<std::string, Figures, TransparentHash, std::equal_to<>>& repos() const {
    return repos_;
  }
  // Keyed by the hour's Unix time (seconds, a multiple of 3600).
  const std::map<int64_t, Figures>& hours() const { return hours_; }
  const SpeedHistogram& speeds() const { return speeds_; }
  const MalformedLines& malformed() const { return malformed_; }

 private:
  void AddTo(const AccessLine& line, bool download, double speed, Figures* f);

  double slow_below_;
  Figures total_;
  std::unordered_map<std::string, Figures, TransparentHash, std::equal_to<>> repos_;
  std::map<int64_t, Figures> hours_;
  int64_t last_hour_ = INT64_MIN;
  Figures* last_hour_figures_ = nullptr;
  SpeedHistogram speeds_;
  MalformedLines malformed_;
};

}  // namespace sync_agent
