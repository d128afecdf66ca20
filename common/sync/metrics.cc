#include "common/sync/metrics.h"

#include <sys/statvfs.h>

#include <cinttypes>
#include <cstdio>

#include "common/fs/env.h"

namespace sync_agent {
namespace {

constexpr size_t kPieceBytes = 64 << 10;
constexpr const char* kOutcomes[] = {"unchanged", "updated", "failed", "interrupted"};

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
  return buf;
}

std::string Number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

class Writer {
 public:
  explicit Writer(const std::function<void(std::string_view)>& out) : out_(out) {}
  ~Writer() { Flush(); }

  void Family(const char* name, const char* type, const char* help) {
    o_ += "# HELP ";
    o_ += name;
    o_ += ' ';
    o_ += help;
    o_ += "\n# TYPE ";
    o_ += name;
    o_ += ' ';
    o_ += type;
    o_ += '\n';
  }
  // name{labels} value; labels are pairs of name and raw value.
  void Sample(const char* name, std::initializer_list<std::pair<const char*, std::string>> labels,
              const std::string& value) {
    o_ += name;
    if (labels.size() > 0) {
      o_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) o_ += ',';
        first = false;
        o_ += k;
        o_ += "=\"";
        o_ += EscapeLabelValue(v);
        o_ += '"';
      }
      o_ += '}';
    }
    o_ += ' ';
    o_ += value;
    o_ += '\n';
    if (o_.size() >= kPieceBytes) Flush();
  }
  void Flush() {
    if (o_.empty()) return;
    out_(o_);
    o_.clear();
  }

 private:
  const std::function<void(std::string_view)>& out_;
  std::string o_;
};

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string SourceLabel(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t end = url.find_first_of("/?#", host);
  size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

Status WriteMetrics(StateDb* db, const Config& config, const StatusReport& report,
                    const std::function<void(std::string_view)>& out) {
  SA_ASSIGN_OR_RETURN(auto totals, db->AllRunTotals());
  Writer w(out);
  w.Family("sync_agent_build_info", "gauge", "The running sync-agent's version; always 1.");
  w.Sample("sync_agent_build_info", {{"version", SA_VERSION}}, "1");

  const StatusCounts counts = CountStates(report);
  w.Family("sync_agent_repos", "gauge",
           "Repositories on this node by state (failing first, then stale, else ok).");
  w.Sample("sync_agent_repos", {{"state", "ok"}}, std::to_string(counts.ok));
  w.Sample("sync_agent_repos", {{"state", "failing"}}, std::to_string(counts.failing));
  w.Sample("sync_agent_repos", {{"state", "stale"}}, std::to_string(counts.stale));

  // One family at a time, as the format requires, each over every repository.
  using Each = std::function<void(const RepoStatus&)>;
  auto family = [&](const char* name, const char* type, const char* help, const Each& each) {
    w.Family(name, type, help);
    for (const RepoStatus& r : report.repos) each(r);
  };
  auto when = [](const RunRow& run) {
    return run.finished_at_ms != 0 ? run.finished_at_ms : run.started_at_ms;
  };
  family("sync_agent_last_run_timestamp_seconds", "gauge",
         "When the repository's last run ended (Unix time).", [&](const RepoStatus& r) {
           if (r.last_run) {
             w.Sample("sync_agent_last_run_timestamp_seconds", {{"repo", r.name}},
                      Seconds(when(*r.last_run)));
           }
         });
  family("sync_agent_last_success_timestamp_seconds", "gauge",
         "When the repository's last successful run (updated or unchanged) ended (Unix time).",
         [&](const RepoStatus& r) {
           if (r.last_success) {
             w.Sample("sync_agent_last_success_timestamp_seconds", {{"repo", r.name}},
                      Seconds(when(*r.last_success)));
           }
         });
  family("sync_agent_run_duration_seconds", "gauge", "How long the repository's last run took.",
         [&](const RepoStatus& r) {
           if (r.last_run && r.last_run->finished_at_ms >= r.last_run->started_at_ms &&
               r.last_run->finished_at_ms != 0) {
             w.Sample("sync_agent_run_duration_seconds", {{"repo", r.name}},
                      Seconds(r.last_run->finished_at_ms - r.last_run->started_at_ms));
           }
         });
  const RunTotals none;
  auto totals_of = [&](const RepoStatus& r) -> const RunTotals& {
    auto it = totals.find(r.name);
    return it == totals.end() ? none : it->second;
  };
  family("sync_agent_runs_total", "counter",
         "Runs of the repository by outcome; each unchanged check counts once.",
         [&](const RepoStatus& r) {
           const RunTotals& t = totals_of(r);
           for (const char* outcome : kOutcomes) {
             auto it = t.runs.find(outcome);
             w.Sample("sync_agent_runs_total", {{"repo", r.name}, {"outcome", outcome}},
                      std::to_string(it == t.runs.end() ? 0 : it->second));
           }
         });
  family("sync_agent_downloaded_bytes_total", "counter",
         "Bytes the repository's runs downloaded from its sources.", [&](const RepoStatus& r) {
           w.Sample("sync_agent_downloaded_bytes_total", {{"repo", r.name}},
                    std::to_string(totals_of(r).bytes_downloaded));
         });
  family("sync_agent_reused_bytes_total", "counter",
         "Bytes of the repository's updates that came from content the node already had.",
         [&](const RepoStatus& r) {
           w.Sample("sync_agent_reused_bytes_total", {{"repo", r.name}},
                    std::to_string(totals_of(r).bytes_reused));
         });
  family("sync_agent_active_revision_info", "gauge",
         "The revision the node serves for the repository; always 1.", [&](const RepoStatus& r) {
           if (r.active) {
             w.Sample("sync_agent_active_revision_info",
                      {{"repo", r.name}, {"revision", r.active->revision}}, "1");
           }
         });
  family("sync_agent_stale", "gauge",
         "1 when the repository had no successful check within stale_after.",
         [&](const RepoStatus& r) {
           w.Sample("sync_agent_stale", {{"repo", r.name}}, r.stale ? "1" : "0");
         });
  family("sync_agent_failing", "gauge",
         "1 when the repository's last run failed or was interrupted, or a verify found damage.",
         [&](const RepoStatus& r) {
           w.Sample("sync_agent_failing", {{"repo", r.name}}, r.failing ? "1" : "0");
         });
  family("sync_agent_pinned", "gauge",
         "1 while an operator pins the repository to a revision (sync-agent pin).",
         [&](const RepoStatus& r) {
           w.Sample("sync_agent_pinned", {{"repo", r.name}}, r.pin ? "1" : "0");
         });
  family("sync_agent_last_verify_timestamp_seconds", "gauge",
         "When the last verify of the repository ended (Unix time).", [&](const RepoStatus& r) {
           if (r.last_verify) {
             w.Sample("sync_agent_last_verify_timestamp_seconds", {{"repo", r.name}},
                      Seconds(r.last_verify->finished_at_ms));
           }
         });
  family("sync_agent_verify_problems", "gauge",
         "Missing, damaged and unexpected files the last verify of the repository found.",
         [&](const RepoStatus& r) {
           if (r.last_verify) {
             const VerificationRow& v = *r.last_verify;
             w.Sample("sync_agent_verify_problems", {{"repo", r.name}},
                      std::to_string(v.missing + v.damaged + v.unexpected));
           }
         });
  family("sync_agent_source_errors_total", "counter",
         "Failed requests to each source of the repository.", [&](const RepoStatus& r) {
           for (const SourceHealthRow& h : r.sources) {
             w.Sample("sync_agent_source_errors_total",
                      {{"repo", r.name}, {"source", SourceLabel(h.url)}}, std::to_string(h.errors));
           }
         });
  family("sync_agent_source_throughput_bytes_per_second", "gauge",
         "The measured throughput of each source of the repository, per connection.",
         [&](const RepoStatus& r) {
           for (const SourceHealthRow& h : r.sources) {
             w.Sample("sync_agent_source_throughput_bytes_per_second",
                      {{"repo", r.name}, {"source", SourceLabel(h.url)}},
                      Number(static_cast<double>(h.throughput_bps)));
           }
         });

  w.Family("sync_agent_disk_free_bytes", "gauge",
           "Bytes available to the agent on the file system of mirror_root and of state_dir.");
  std::vector<std::pair<std::string, struct statvfs>> disks;
  for (const std::string& path : {config.mirror_root, config.state_dir}) {
    struct statvfs st;
    if (::statvfs(path.c_str(), &st) == 0) disks.emplace_back(path, st);
  }
  for (const auto& [path, st] : disks) {
    w.Sample("sync_agent_disk_free_bytes", {{"path", path}},
             std::to_string(static_cast<uint64_t>(st.f_bavail) * st.f_frsize));
  }
  w.Family("sync_agent_disk_size_bytes", "gauge",
           "Size of the file system of mirror_root and of state_dir.");
  for (const auto& [path, st] : disks) {
    w.Sample("sync_agent_disk_size_bytes", {{"path", path}},
             std::to_string(static_cast<uint64_t>(st.f_blocks) * st.f_frsize));
  }
  return Status::OK();
}

Result<std::string> RenderMetrics(Env* env, StateDb* db, const Config& config, int64_t now_ms,
                                  bool sync_running) {
  SA_ASSIGN_OR_RETURN(StatusReport report,
                      BuildStatusReport(env, db, config, "", now_ms, sync_running));
  std::string text;
  SA_RETURN_IF_ERROR(
      WriteMetrics(db, config, report, [&](std::string_view piece) { text.append(piece); }));
  return text;
}

Status WriteMetricsTextfile(Env* env, StateDb* db, const Config& config, int64_t now_ms) {
  if (config.metrics_textfile.empty()) return Status::OK();
  const std::string context = "write metrics_textfile " + config.metrics_textfile;
  auto text = RenderMetrics(env, db, config, now_ms, /*sync_running=*/false);
  if (!text.ok()) return text.status().WithContext(context);
  Status s = WriteFileAtomically(env, config.metrics_textfile, *text, 0644);
  if (!s.ok()) return s.WithContext(context);
  return Status::OK();
}

}  // namespace sync_agent
