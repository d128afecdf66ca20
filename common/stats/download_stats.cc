#include "common/stats/download_stats.h"

#include <cmath>

#include "common/bandwidth/rate_limiter.h"

namespace sync_agent {

Result<double> ParseSlowBelow(std::string_view text) {
  auto rate = ParseRate(text);
  if (!rate.ok() || *rate == kUnlimited) {
    return Status::InvalidArgument(
        "--slow-below \"" + std::string(text) + "\" is not a speed",
        "use a number with a unit per second: B/s, kB/s, MB/s, GB/s (decimal), KiB/s, MiB/s, "
        "GiB/s (binary) or kbit/s, Mbit/s, Gbit/s, e.g. 10MB/s");
  }
  return static_cast<double>(*rate);
}

std::optional<double> Figures::error_rate() const {
  if (requests == 0) return std::nullopt;
  return static_cast<double>(errors) / static_cast<double>(requests);
}
std::optional<uint64_t> Figures::download_count() const {
  if (timed == 0) return std::nullopt;
  return downloads;
}
std::optional<double> Figures::mean_speed_bps() const {
  if (downloads == 0) return std::nullopt;
  return speed_sum / static_cast<double>(downloads);
}
std::optional<double> Figures::slow_share() const {
  if (downloads == 0) return std::nullopt;
  return static_cast<double>(slow) / static_cast<double>(downloads);
}
std::optional<double> Figures::hit_rate() const {
  if (cache_lines == 0) return std::nullopt;
  return static_cast<double>(hits) / static_cast<double>(cache_lines);
}

int SpeedHistogram::BucketOf(double bps) {
  if (!(bps > kLowest)) return 0;
  int b = static_cast<int>(std::floor(std::log10(bps / kLowest) * kPerDecade));
  return b >= kBuckets ? kBuckets - 1 : b;
}

double SpeedHistogram::LowerEdge(int bucket) {
  return kLowest * std::pow(10.0, static_cast<double>(bucket) / kPerDecade);
}

void DownloadStats::AddTo(const AccessLine& line, bool download, double speed, Figures* f) {
  f->requests++;
  f->bytes += line.bytes;
  if (line.status >= 400) f->errors++;
  if (line.timed) f->timed++;
  if (download) {
    f->downloads++;
    f->speed_sum += speed;
    if (speed < slow_below_) f->slow++;
  }
  if (line.cache == CacheStatus::kHit || line.cache == CacheStatus::kOther) {
    f->cache_lines++;
    if (line.cache == CacheStatus::kHit) f->hits++;
  }
}

void DownloadStats::Add(const AccessLine& line) {
  const bool download = line.timed && line.request_time > 0 && line.bytes >= kMinDownloadBytes &&
                        (line.status == 200 || line.status == 206) && line.method == "GET";
  const double speed = download ? static_cast<double>(line.bytes) / line.request_time : 0;
  if (download) speeds_.Add(speed);
  AddTo(line, download, speed, &total_);
  std::string_view repo;
  if (RepoOfPath(line.path, &repo)) {
    auto it = repos_.find(repo);
    if (it == repos_.end()) it = repos_.emplace(std::string(repo), Figures{}).first;
    AddTo(line, download, speed, &it->second);
  }
  const int64_t hour = line.unix_seconds - ((line.unix_seconds % 3600) + 3600) % 3600;
  if (hour != last_hour_) {
    last_hour_ = hour;
    last_hour_figures_ = &hours_[hour];
  }
  AddTo(line, download, speed, last_hour_figures_);
}

void DownloadStats::AddLine(std::string_view line, const std::string& file, uint64_t line_number) {
  AccessLine parsed;
  if (ParseAccessLine(line, &parsed)) {
    Add(parsed);
    return;
  }
  if (malformed_.count++ == 0) {
    malformed_.first_file = file;
    malformed_.first_line = line_number;
    malformed_.first_text = std::string(line.substr(0, 200));
  }
}

Status DownloadStats::AddFile(const std::string& path, size_t block_size) {
  LogReader reader;
  SA_RETURN_IF_ERROR(reader.Open(path, block_size));
  std::string_view line;
  while (reader.Next(&line)) AddLine(line, path, reader.line_number());
  return reader.status();
}

}  // namespace sync_agent
