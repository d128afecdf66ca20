// Prometheus metrics of a node, in the text exposition format (0.0.4): what
// `status` knows, as numbers, for node_exporter's textfile collector
// (metrics_textfile) and for a scrape of the daemon (metrics_listen).
//
// Families, each with HELP and TYPE; per repository the label repo="ORG/NAME",
// per source also source="<url as configured, without credentials>":
//   sync_agent_build_info{version}                          gauge 1
//   sync_agent_repos{state="ok"|"failing"|"stale"}          gauge
//   sync_agent_last_run_timestamp_seconds{repo}             gauge
//   sync_agent_last_success_timestamp_seconds{repo}         gauge
//   sync_agent_run_duration_seconds{repo}                   gauge, the last run
//   sync_agent_runs_total{repo,outcome}                     counter
//   sync_agent_downloaded_bytes_total{repo}                 counter
//   sync_agent_reused_bytes_total{repo}                     counter
//   sync_agent_active_revision_info{repo,revision}          gauge 1
//   sync_agent_stale{repo}, sync_agent_failing{repo}        gauge 0/1
//   sync_agent_pinned{repo}                                 gauge 0/1
//   sync_agent_last_verify_timestamp_seconds{repo}          gauge
//   sync_agent_verify_problems{repo}                        gauge, of the last verify
//   sync_agent_source_errors_total{repo,source}             counter
//   sync_agent_source_throughput_bytes_per_second{repo,source} gauge
//   sync_agent_disk_free_bytes{path}, sync_agent_disk_size_bytes{path} gauge
// Every value comes from the database, so counters survive restarts; they
// never go down (runs are never deleted, and merged unchanged checks count
// one each), except when a repository is removed (prune_missing).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/config/config.h"
#include "common/db/state_db.h"
#include "common/sync/status_report.h"

namespace sync_agent {

class Env;

// A label value with \, " and newline escaped as the format requires.
std::string EscapeLabelValue(std::string_view value);

// A source URL fit for a label: its userinfo (user:password@) removed.
std::string SourceLabel(const std::string& url);

// Writes the metrics of report (with totals from db) to out, in pieces.
Status WriteMetrics(StateDb* db, const Config& config, const StatusReport& report,
                    const std::function<void(std::string_view)>& out);

// Builds the report from db and renders it into one string.
Result<std::string> RenderMetrics(Env* env, StateDb* db, const Config& config, int64_t now_ms,
                                  bool sync_running);

// Renders and writes config.metrics_textfile atomically (temporary file,
// fsync, rename; mode 0644). Does nothing when the key is not set.
Status WriteMetricsTextfile(Env* env, StateDb* db, const Config& config, int64_t now_ms);

}  // namespace sync_agent
