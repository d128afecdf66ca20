#include "common/stats/stats_report.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/base/json_text.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

std::string Num(double v, const char* fmt = "%.10g") {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}
std::string Num(uint64_t v) { return std::to_string(v); }
// The shortest of %.15g and %.17g that reads back as v exactly.
std::string ExactNum(double v) {
  std::string s = Num(v, "%.15g");
  return std::strtod(s.c_str(), nullptr) == v ? s : Num(v, "%.17g");
}

template <typename T>
std::string JsonOr(const std::optional<T>& v) {
  if (!v) return "null";
  if constexpr (std::is_integral_v<T>) {
    return Num(static_cast<uint64_t>(*v));
  } else {
    return ExactNum(*v);
  }
}

std::string HourName(int64_t hour) { return FormatIsoTime(SystemTime(std::chrono::seconds(hour))); }

// Rows in display order: repositories by name, or hours in time order.
std::vector<std::pair<std::string, const Figures*>> Rows(const DownloadStats& s, StatsGrouping by) {
  std::vector<std::pair<std::string, const Figures*>> rows;
  if (by == StatsGrouping::kByRepo) {
    for (const auto& [name, f] : s.repos()) rows.emplace_back(name, &f);
    std::sort(rows.begin(), rows.end());
  } else {
    for (const auto& [hour, f] : s.hours()) rows.emplace_back(HourName(hour), &f);
  }
  return rows;
}

std::vector<std::pair<std::string, const Figures*>> SortedRepos(const DownloadStats& s) {
  return Rows(s, StatsGrouping::kByRepo);
}

void AppendFiguresJson(std::string* out, const Figures& f) {
  *out += "{\"requests\": " + Num(f.requests) + ", \"bytes\": " + Num(f.bytes) +
          ", \"errors\": " + Num(f.errors) + ", \"error_rate\": " + JsonOr(f.error_rate()) +
          ", \"downloads\": " + JsonOr(f.download_count()) +
          ", \"mean_speed_bps\": " + JsonOr(f.mean_speed_bps()) +
          ", \"slow_share\": " + JsonOr(f.slow_share()) +
          ", \"hit_rate\": " + JsonOr(f.hit_rate()) + "}";
}

void AppendObject(std::string* out,
                  const std::vector<std::pair<std::string, const Figures*>>& rows) {
  *out += "{";
  bool first = true;
  for (const auto& [name, f] : rows) {
    *out += first ? "\n    " : ",\n    ";
    first = false;
    AppendJsonString(out, name);
    *out += ": ";
    AppendFiguresJson(out, *f);
  }
  *out += first ? "}" : "\n  }";
}

std::string Percent(const std::optional<double>& v) {
  return v ? Num(*v * 100, "%.1f") + "%" : "-";
}
std::string Speed(const std::optional<double>& v) {
  return v ? Num(*v / 1e6, "%.1f") + " MB/s" : "-";
}
std::string Count(const std::optional<uint64_t>& v) { return v ? Num(*v) : "-"; }

std::vector<std::string> Cells(const std::string& name, const Figures& f) {
  return {name,
          Num(f.requests),
          FormatBytes(f.bytes),
          Num(f.errors),
          Percent(f.error_rate()),
          Count(f.download_count()),
          Speed(f.mean_speed_bps()),
          Percent(f.slow_share()),
          Percent(f.hit_rate())};
}

const std::vector<std::string> kHeader = {
    "", "requests", "bytes", "errors", "error rate", "downloads", "mean speed", "slow", "hit rate"};

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string MalformedNote(const MalformedLines& m) {
  if (m.count == 0) return "";
  return Num(m.count) + " malformed line" + (m.count == 1 ? "" : "s") +
         " (neither the sync_agent nor the combined format) skipped; the first is " + m.first_file +
         " line " + Num(m.first_line) + ": " + m.first_text;
}

std::string SpeedLabel(double bps) {
  if (bps >= 1e9) return Num(bps / 1e9, "%.3g") + " GB/s";
  if (bps >= 1e6) return Num(bps / 1e6, "%.3g") + " MB/s";
  return Num(bps / 1e3, "%.3g") + " kB/s";
}

// The histogram from the first to the last bucket holding a download (or
// around the threshold when there are none), on a log scale.
std::string HistogramSvg(const DownloadStats& s) {
  const auto& counts = s.speeds().counts;
  const int threshold_bucket = SpeedHistogram::BucketOf(s.slow_below());
  int lo = threshold_bucket, hi = threshold_bucket;
  uint64_t max = 0;
  for (int i = 0; i < SpeedHistogram::kBuckets; ++i) {
    if (counts[static_cast<size_t>(i)] == 0) continue;
    lo = std::min(lo, i);
    hi = std::max(hi, i);
    max = std::max(max, counts[static_cast<size_t>(i)]);
  }
  lo = std::max(0, lo - 1);
  hi = std::min(SpeedHistogram::kBuckets - 1, hi + 1);
  const double w = 1000, h = 300, left = 60, bottom = 40, top = 20;
  const double bw = (w - left - 10) / (hi - lo + 1);
  std::string svg = "<svg id=\"speed-histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    Num(w) + "\" height=\"" + Num(h) + "\" viewBox=\"0 0 " + Num(w) + " " + Num(h) +
                    "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  svg += "<text x=\"" + Num(left) + "\" y=\"14\" font-size=\"13\">downloads by speed (" +
         Num(s.total().downloads) + " downloads, log scale)</text>\n";
  for (int i = lo; i <= hi; ++i) {
    const uint64_t c = counts[static_cast<size_t>(i)];
    const double bh = max == 0 ? 0 : (h - top - bottom) * static_cast<double>(c) / max;
    const double x = left + (i - lo) * bw;
    const bool slow = SpeedHistogram::LowerEdge(i + 1) <= s.slow_below();
    svg += "<rect class=\"bar\" x=\"" + Num(x, "%.1f") + "\" y=\"" + Num(h - bottom - bh, "%.1f") +
           "\" width=\"" + Num(bw - 1, "%.1f") + "\" height=\"" + Num(bh, "%.1f") + "\" fill=\"" +
           (slow ? "#d9822b" : "#2b6cb0") + "\"><title>" +
           SpeedLabel(SpeedHistogram::LowerEdge(i)) + " - " +
           SpeedLabel(SpeedHistogram::LowerEdge(i + 1)) + ": " + Num(c) + "</title></rect>\n";
    if ((i - lo) % 4 == 0) {
      svg += "<text x=\"" + Num(x, "%.1f") + "\" y=\"" + Num(h - bottom + 16) +
             "\" font-size=\"11\">" + SpeedLabel(SpeedHistogram::LowerEdge(i)) + "</text>\n";
    }
  }
  // The threshold's position on the same log scale.
  const double pos =
      std::log10(s.slow_below() / SpeedHistogram::kLowest) * SpeedHistogram::kPerDecade;
  const double tx = left + (pos - lo) * bw;
  svg += "<line id=\"slow-threshold\" x1=\"" + Num(tx, "%.1f") + "\" y1=\"" + Num(top) +
         "\" x2=\"" + Num(tx, "%.1f") + "\" y2=\"" + Num(h - bottom) +
         "\" stroke=\"#c53030\" stroke-width=\"3\" stroke-dasharray=\"6 3\"/>\n";
  svg += "<text x=\"" + Num(tx + 4, "%.1f") + "\" y=\"" + Num(top + 14) +
         "\" font-size=\"12\" fill=\"#c53030\">slow below " + SpeedLabel(s.slow_below()) +
         "</text>\n";
  svg += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(h - bottom) + "\" x2=\"" + Num(w - 10) +
         "\" y2=\"" + Num(h - bottom) + "\" stroke=\"#333\"/>\n</svg>\n";
  return svg;
}

std::string HourlySvgs(const DownloadStats& s) {
  const auto& hours = s.hours();
  const double w = 1000, h = 260, left = 60, bottom = 40, top = 24;
  const size_t n = std::max<size_t>(1, hours.size());
  const double bw = (w - left - 10) / static_cast<double>(n);
  uint64_t max = 1;
  for (const auto& [hour, f] : hours) max = std::max(max, f.requests);
  auto head = [&](const char* id, const std::string& title) {
    return std::string("<svg id=\"") + id + "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           Num(w) + "\" height=\"" + Num(h) + "\" viewBox=\"0 0 " + Num(w) + " " + Num(h) +
           "\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n<text x=\"" + Num(left) +
           "\" y=\"14\" font-size=\"13\">" + title + "</text>\n<line x1=\"" + Num(left) +
           "\" y1=\"" + Num(h - bottom) + "\" x2=\"" + Num(w - 10) + "\" y2=\"" + Num(h - bottom) +
           "\" stroke=\"#333\"/>\n";
  };
  std::string req =
      head("hourly-requests",
           "requests (blue) and errors (red) per hour, UTC; at most " + Num(max) + " requests");
  std::string hit = head("hourly-hit-rate", "cache hit rate per hour, UTC (0 to 100%)");
  std::string points;
  size_t i = 0;
  const double span = h - top - bottom;
  for (const auto& [hour, f] : hours) {
    const double x = left + static_cast<double>(i) * bw;
    const double rh = span * static_cast<double>(f.requests) / static_cast<double>(max);
    const double eh = span * static_cast<double>(f.errors) / static_cast<double>(max);
    const std::string name = HourName(hour);
    req += "<rect class=\"requests\" x=\"" + Num(x, "%.1f") + "\" y=\"" +
           Num(h - bottom - rh, "%.1f") + "\" width=\"" + Num(std::max(1.0, bw - 1), "%.1f") +
           "\" height=\"" + Num(rh, "%.1f") + "\" fill=\"#2b6cb0\"><title>" + name + ": " +
           Num(f.requests) + " requests</title></rect>\n";
    req += "<rect class=\"errors\" x=\"" + Num(x, "%.1f") + "\" y=\"" +
           Num(h - bottom - eh, "%.1f") + "\" width=\"" + Num(std::max(1.0, bw - 1), "%.1f") +
           "\" height=\"" + Num(eh, "%.1f") + "\" fill=\"#c53030\"><title>" + name + ": " +
           Num(f.errors) + " errors</title></rect>\n";
    if (auto r = f.hit_rate()) {
      points += Num(x + bw / 2, "%.1f") + "," + Num(h - bottom - span * *r, "%.1f") + " ";
      hit += "<circle cx=\"" + Num(x + bw / 2, "%.1f") + "\" cy=\"" +
             Num(h - bottom - span * *r, "%.1f") + "\" r=\"4\" fill=\"#2f855a\"><title>" + name +
             ": " + Percent(r) + "</title></circle>\n";
    }
    if (i % std::max<size_t>(1, n / 8) == 0) {
      const std::string label = "<text x=\"" + Num(x, "%.1f") + "\" y=\"" + Num(h - bottom + 16) +
                                "\" font-size=\"11\">" + name.substr(0, 13) + "h</text>\n";
      req += label;
      hit += label;
    }
    ++i;
  }
  if (!points.empty()) {
    hit += "<polyline class=\"hit-rate\" points=\"" + points +
           "\" fill=\"none\" stroke=\"#2f855a\" stroke-width=\"2\"/>\n";
  }
  return req + "</svg>\n" + hit + "</svg>\n";
}

}  // namespace

std::string StatsText(const DownloadStats& s, StatsGrouping by) {
  std::vector<std::vector<std::string>> table = {kHeader};
  table[0][0] = by == StatsGrouping::kByRepo ? "repository" : "hour (UTC)";
  for (const auto& [name, f] : Rows(s, by)) table.push_back(Cells(name, *f));
  table.push_back(Cells("total", s.total()));
  std::vector<size_t> widths(kHeader.size(), 0);
  for (const auto& row : table)
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  std::string out;
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      const std::string pad(widths[c] - cell.size(), ' ');
      out += c == 0 ? cell + pad : "  " + pad + cell;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  out += "downloads: GET 200/206 of at least 1 MiB with a request time; slow: below " +
         SpeedLabel(s.slow_below()) + "\n";
  if (s.malformed().count > 0) out += MalformedNote(s.malformed()) + "\n";
  return out;
}

std::string StatsJson(const DownloadStats& s, StatsGrouping by) {
  std::string out = "{\n  \"repos\": ";
  AppendObject(&out, SortedRepos(s));
  if (by == StatsGrouping::kByHour) {
    out += ",\n  \"hours\": ";
    AppendObject(&out, Rows(s, StatsGrouping::kByHour));
  }
  out += ",\n  \"total\": ";
  AppendFiguresJson(&out, s.total());
  out += ",\n  \"slow_below_bps\": " + ExactNum(s.slow_below());
  const MalformedLines& m = s.malformed();
  out += ",\n  \"malformed\": {\"count\": " + Num(m.count);
  if (m.count > 0) {
    out += ", \"first_file\": ";
    AppendJsonString(&out, m.first_file);
    out += ", \"first_line\": " + Num(m.first_line);
  }
  out += "}\n}\n";
  return out;
}

std::string StatsHtml(const DownloadStats& s, StatsGrouping by) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>sync-agent download statistics</title>\n<style>\n"
      "body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }\n"
      "table { border-collapse: collapse; margin-bottom: 24px; }\n"
      "th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }\n"
      "th:first-child, td:first-child { text-align: left; }\n"
      "tr.total td { font-weight: bold; background: #eef; }\n"
      "svg { display: block; margin-bottom: 24px; border: 1px solid #ddd; }\n"
      "</style>\n</head>\n<body>\n<h1>Download statistics</h1>\n<table id=\"figures\">\n<tr>";
  std::vector<std::string> header = kHeader;
  header[0] = by == StatsGrouping::kByRepo ? "repository" : "hour (UTC)";
  for (const std::string& h : header) out += "<th>" + HtmlEscape(h) + "</th>";
  out += "</tr>\n";
  auto row = [&](const std::string& name, const Figures& f, const char* cls) {
    out += std::string("<tr class=\"") + cls + "\">";
    for (const std::string& c : Cells(name, f)) out += "<td>" + HtmlEscape(c) + "</td>";
    out += "</tr>\n";
  };
  for (const auto& [name, f] : Rows(s, by)) row(name, *f, "row");
  row("total", s.total(), "total");
  out +=
      "</table>\n<p>Downloads are GET 200/206 responses of at least 1 MiB with a request time; "
      "slow means below " +
      SpeedLabel(s.slow_below()) + ". Lines of no repository count in the total only.</p>\n";
  if (s.malformed().count > 0) out += "<p>" + HtmlEscape(MalformedNote(s.malformed())) + "</p>\n";
  out += "<h2>Download speeds</h2>\n" + HistogramSvg(s) + "<h2>Per hour</h2>\n" + HourlySvgs(s) +
         "</body>\n</html>\n";
  return out;
}

}  // namespace sync_agent
