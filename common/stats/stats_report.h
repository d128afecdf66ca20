// DownloadStats (download_stats.h) as a text table, JSON, or one
// self-contained HTML page with inline SVG charts (no external resources).
#pragma once

#include <string>

#include "common/stats/download_stats.h"

namespace sync_agent {

enum class StatsGrouping { kByRepo, kByHour };

// A table with one row per repository (sorted by name) or per hour (UTC),
// then the total, then a note on malformed lines if there were any.
std::string StatsText(const DownloadStats& stats, StatsGrouping by);
// {"repos": {"ORG/NAME": {requests, bytes, errors, error_rate, downloads,
//  mean_speed_bps, slow_share, hit_rate}}, "total": {...}, "slow_below_bps",
//  "malformed": {count, first_file, first_line}} and, by hour, "hours":
// {"2026-12-02T20:00:00Z": {...}}. Ratios without a denominator are null.
std::string StatsJson(const DownloadStats& stats, StatsGrouping by);
// The page: the table (grouped as asked), the speed distribution with the
// slow threshold marked (svg#speed-histogram, line#slow-threshold), and
// requests, errors and hit rate per hour (svg#hourly-requests,
// svg#hourly-hit-rate).
std::string StatsHtml(const DownloadStats& stats, StatsGrouping by);

}  // namespace sync_agent
