// sync-agent stats: download statistics from nginx access logs.
#include <cstdio>
#include <string>
#include <vector>

#include "agent/args.h"
#include "agent/commands.h"
#include "common/fs/env.h"
#include "common/stats/download_stats.h"
#include "common/stats/stats_report.h"

namespace sync_agent {

int CmdStats(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent stats LOG... [--json] [--html FILE] [--by repo|hour] [--slow-below RATE]\n"
      "Reads nginx access logs, plain or gzip'd, in the sync_agent log_format of\n"
      "scripts/nginx-mirror.conf.example (combined + $request_time\n"
      "$upstream_cache_status) or plain combined (then speed and hit figures are\n"
      "null), and prints per repository and in total: requests, bytes, errors\n"
      "(status >= 400) and error_rate; downloads (GET 200/206, >= 1 MiB,\n"
      "request_time > 0), their mean speed and the share slower than --slow-below;\n"
      "hit_rate = HIT / lines with a cache status other than \"-\". A line belongs\n"
      "to ORG/NAME when its path starts with /ORG/NAME/ or /datasets/ORG/NAME/;\n"
      "other lines count in the total only. Lines in neither format are counted\n"
      "as malformed and skipped. Exits 0, 2 on bad usage, 1 if a log cannot be read.";
  std::vector<OptionSpec> specs = {
      {"json", false, "", "print JSON instead of a table"},
      {"html", true, "FILE", "also write a self-contained HTML report with charts"},
      {"by", true, "repo|hour", "rows per repository (default) or per hour, UTC"},
      {"slow-below", true, "RATE", "slow download threshold (default 10MB/s; also MiB/s, Mbit/s)"},
      {"help", false, "", "show this help"}};
  ParsedArgs parsed;
  std::string error;
  auto fail_usage = [&](const std::string& msg) {
    std::fprintf(stderr, "sync-agent: %s\n%s\noptions:\n%s", msg.c_str(), usage.c_str(),
                 FormatOptions(specs).c_str());
    return kExitUsage;
  };
  if (!ParseArgs(args, specs, &parsed, &error)) return fail_usage(error);
  if (parsed.Has("help")) {
    std::printf("%s\noptions:\n%s", usage.c_str(), FormatOptions(specs).c_str());
    return kExitOk;
  }
  if (parsed.positional.empty()) return fail_usage("stats needs at least one LOG file");
  StatsGrouping by = StatsGrouping::kByRepo;
  const std::string by_text = parsed.Get("by", "repo");
  if (by_text == "hour") {
    by = StatsGrouping::kByHour;
  } else if (by_text != "repo") {
    return fail_usage("--by must be \"repo\" or \"hour\", not \"" + by_text + "\"");
  }
  double slow_below = kDefaultSlowBelow;
  if (parsed.Has("slow-below")) {
    auto r = ParseSlowBelow(parsed.Get("slow-below"));
    if (!r.ok()) return fail_usage(r.status().message());
    slow_below = *r;
  }
  if (parsed.Has("html") && parsed.Get("html").empty()) return fail_usage("--html needs a FILE");
  DownloadStats stats(slow_below);
  for (const std::string& log : parsed.positional) {
    Status s = stats.AddFile(log);
    if (!s.ok()) {
      std::fprintf(stderr, "sync-agent: cannot read the log %s: %s\n", log.c_str(),
                   s.ToString().c_str());
      return kExitFailed;
    }
  }
  const std::string out = parsed.Has("json") ? StatsJson(stats, by) : StatsText(stats, by);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (parsed.Has("json") && stats.malformed().count > 0) {
    const MalformedLines& m = stats.malformed();
    std::fprintf(stderr,
                 "sync-agent: skipped %llu malformed lines; the first is %s line %llu: %s\n",
                 static_cast<unsigned long long>(m.count), m.first_file.c_str(),
                 static_cast<unsigned long long>(m.first_line), m.first_text.c_str());
  }
  if (parsed.Has("html")) {
    const std::string path = parsed.Get("html");
    Status s = WriteFileAtomically(Env::Default(), path, StatsHtml(stats, by));
    if (!s.ok()) {
      std::fprintf(stderr, "sync-agent: cannot write the HTML report: %s\n", s.ToString().c_str());
      return kExitFailed;
    }
  }
  return kExitOk;
}

}  // namespace sync_agent
