#include "common/sync/status_report.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "common/base/json_text.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/mirror/mirror_tree.h"
#include "common/sync/org_follow.h"
#include "common/sync/org_follow_status.h"

namespace sync_agent {
namespace {

std::string Age(int64_t now_ms, int64_t then_ms) {
  return FormatAge(std::chrono::milliseconds(now_ms - then_ms));
}

std::string Iso(int64_t ms) { return ms ? FormatIsoTime(FromUnixMillis(ms)) : ""; }

// "1 damaged, 2 missing, 0 unexpected"
std::string VerifyCountsText(const VerificationRow& v) {
  return std::to_string(v.damaged) + " damaged, " + std::to_string(v.missing) + " missing, " +
         std::to_string(v.unexpected) + " unexpected";
}

// "2h ago by xxh3-128: 12 files, 1.0 GiB hashed, all well"
std::string VerifyText(const VerificationRow& v, int64_t now_ms) {
  std::string o = Age(now_ms, v.finished_at_ms) + " by " + (v.full ? "sha256" : "xxh3-128") + ": " +
                  std::to_string(v.files_checked) + " files, " + FormatBytes(v.bytes_hashed) +
                  " hashed, ";
  uint64_t found = v.missing + v.damaged + v.unexpected;
  if (found == 0) return o + "all well";
  o += VerifyCountsText(v);
  if (v.repaired > 0) o += " (" + std::to_string(v.repaired) + " repaired)";
  return o;
}

void Classify(RepoStatus* r, const StatusReport& rep) {
  if (r->last_run && r->last_run->outcome == RunOutcome::kRunning && !rep.sync_running) {
    r->failing = true;
    r->problem =
        "the last run did not finish: the agent was killed, crashed or could not record its "
        "result; the next run resumes what was downloaded";
  } else if (r->last_run && (r->last_run->outcome == RunOutcome::kFailed ||
                             r->last_run->outcome == RunOutcome::kInterrupted)) {
    r->failing = true;
    r->problem =
        std::string("last run ") + RunOutcomeName(r->last_run->outcome) + ": " + r->last_run->error;
  }
  if (r->last_verify && r->problem.empty()) {
    const VerificationRow& v = *r->last_verify;
    uint64_t found = v.missing + v.damaged + v.unexpected;
    if (found > v.repaired) {
      r->failing = true;
      r->problem = "the last verify found " + VerifyCountsText(v) +
                   " and they were not repaired; run `sync-agent verify --repair`";
    }
  }
  int64_t last_ok = r->last_success ? r->last_success->finished_at_ms : 0;
  if (last_ok == 0) {
    r->stale = true;
    if (r->problem.empty()) r->problem = "never synced successfully";
  } else if (rep.now_ms - last_ok > rep.stale_after_ms) {
    r->stale = true;
    if (r->problem.empty()) {
      r->problem = "no successful check for " +
                   FormatDuration(std::chrono::milliseconds((rep.now_ms - last_ok) / 1000 * 1000)) +
                   " (stale_after " +
                   FormatDuration(std::chrono::milliseconds(rep.stale_after_ms)) + ")";
    }
  }
}

std::string Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "-";
  char buf[16];
  // Rounded down, so that 99.96% does not read as all.
  double tenths = std::floor(1000.0 * static_cast<double>(part) / static_cast<double>(whole));
  std::snprintf(buf, sizeof buf, "%.1f%%", tenths / 10.0);
  return buf;
}

// "95.0% (19.0 MiB of 20.0 MiB changed came from local content, 1.1 MiB downloaded)"
std::string SavingText(const RunRow& r) {
  return Percent(r.changed_bytes_reused, r.changed_bytes) + " (" +
         FormatBytes(r.changed_bytes_reused) + " of " + FormatBytes(r.changed_bytes) +
         " changed came from local content, " + FormatBytes(r.bytes_downloaded) + " downloaded)";
}

// "http://a: ok, 45.2 MiB/s per connection, 12 ms to the first byte, 2 errors in 130 requests"
// "git:             <remote> ref <ref> (tree <id>)": the kind's settings,
// then what the active revision's provenance adds to its id.
std::string OriginText(const RepoStatus& r) {
  std::string line = "  " + r.origin[0].key + ":";
  line.append(line.size() < 19 ? 19 - line.size() : 1, ' ');
  line += r.origin[0].value;
  for (size_t i = 1; i < r.origin.size(); ++i)
    line += " " + r.origin[i].key + " " + r.origin[i].value;
  if (r.active) {
    std::string extra;
    for (const auto& [key, value] : r.active->provenance) {
      if (key == "kind" || value == r.active->revision) continue;
      extra += (extra.empty() ? "" : ", ") + key + " " + value;
    }
    if (!extra.empty()) line += " (" + extra + ")";
  }
  return line + "\n";
}

std::string SourceText(const StatusReport& rep, const SourceHealthRow& h) {
  std::string o = h.url + ": ";
  if (h.consecutive_errors > 0) {
    o += "FAILING (" + std::to_string(h.consecutive_errors) + " errors in a row, last " +
         Age(rep.now_ms, h.last_error_at_ms) + ": " + h.last_error + ")";
    return o;
  }
  o += "ok";
  if (h.throughput_bps > 0) {
    o += ", " + FormatBytes(static_cast<uint64_t>(h.throughput_bps)) + "/s per connection";
  }
  if (h.latency_ms > 0)
    o += ", " + std::to_string(static_cast<uint64_t>(h.latency_ms)) + " ms to the first byte";
  o += ", " + std::to_string(h.errors) + " errors in " + std::to_string(h.requests) + " requests";
  if (h.errors > 0 && !h.last_error.empty()) {
    o += " (last " + Age(rep.now_ms, h.last_error_at_ms) + ": " + h.last_error + ")";
  }
  return o;
}

void AppendRunJson(std::string* o, const RunRow& r) {
  *o += "{\"id\":" + std::to_string(r.id);
  *o += ",\"started_at\":" + JsonQuote(Iso(r.started_at_ms));
  *o += ",\"finished_at\":" + (r.finished_at_ms ? JsonQuote(Iso(r.finished_at_ms)) : "null");
  *o += ",\"outcome\":" + JsonQuote(RunOutcomeName(r.outcome));
  *o += ",\"trigger\":" + JsonQuote(r.trigger);
  *o += ",\"from_revision\":" + JsonQuote(r.from_revision);
  *o += ",\"to_revision\":" + JsonQuote(r.to_revision);
  *o += ",\"source\":" + JsonQuote(r.source);
  *o += ",\"bytes_downloaded\":" + std::to_string(r.bytes_downloaded);
  *o += ",\"bytes_reused\":" + std::to_string(r.bytes_reused);
  *o += ",\"files_downloaded\":" + std::to_string(r.files_downloaded);
  *o += ",\"files_reused\":" + std::to_string(r.files_reused);
  *o += ",\"changed_bytes\":" + std::to_string(r.changed_bytes);
  *o += ",\"changed_bytes_reused\":" + std::to_string(r.changed_bytes_reused);
  *o += ",\"error\":" + (r.error.empty() ? std::string("null") : JsonQuote(r.error));
  *o += "}";
}

void AppendRevisionJson(std::string* o, const RevisionRow& r) {
  *o += "{\"revision\":" + JsonQuote(r.revision);
  *o += ",\"state\":" + JsonQuote(RevisionStateName(r.state));
  *o += ",\"created\":" + JsonQuote(r.created);
  *o += ",\"fetched_at\":" + JsonQuote(Iso(r.fetched_at_ms));
  *o += ",\"activated_at\":" + (r.activated_at_ms ? JsonQuote(Iso(r.activated_at_ms)) : "null");
  *o += ",\"files\":" + std::to_string(r.file_count);
  *o += ",\"bytes\":" + std::to_string(r.total_bytes);
  *o += ",\"source\":" + JsonQuote(r.source);
  *o += ",\"manifest_sha256\":" + JsonQuote(r.manifest_sha256);
  *o += "}";
}

// Reads the repository's served symlink and makes r->active name what it
// serves: the database's active revision lags behind the link when an agent
// was killed between the swap and the database update. db may be null (no
// database yet). Only reads.
Status ReconcileWithServed(Env* env, const std::string& mirror_root, StateDb* db, RepoStatus* r) {
  if (r->active) r->db_revision = r->active->revision;
  MirrorTree mirror(env, mirror_root);
  auto served = mirror.ActiveRevision(r->name);
  if (!served.ok()) {
    if (!served.status().IsNotFound()) {
      r->served_problem = served.status().ToString();
    } else if (r->active) {
      r->served_problem = "nothing is served at " + mirror.LinkPath(r->name) +
                          " although the database records revision " + r->db_revision +
                          " as active; the next run serves it again";
      r->active.reset();
    }
    return Status::OK();
  }
  r->served_revision = *served;
  if (r->active && r->active->revision == *served) return Status::OK();
  r->db_behind = true;
  std::optional<RevisionRow> row;
  if (db != nullptr) {
    SA_ASSIGN_OR_RETURN(row, db->GetRevision(r->name, *served));
  }
  if (!row) {
    row = RevisionRow();
    row->revision = *served;
  }
  row->activated_at_ms = 0;  // not recorded yet
  r->active = std::move(row);
  return Status::OK();
}

// "the next run records it", or the run in progress does.
std::string BehindText(const StatusReport& rep, const RepoStatus& r) {
  return "served revision " + r.served_revision + "; the database still records " +
         (r.db_revision.empty() ? std::string("no active revision") : r.db_revision) +
         " (the agent stopped between the swap and the database update); " +
         (rep.sync_running ? "the run in progress records it" : "the next run records it");
}

}  // namespace

bool StatusReport::healthy() const {
  return std::none_of(repos.begin(), repos.end(),
                      [](const RepoStatus& r) { return r.configured && (r.stale || r.failing); }) &&
         std::none_of(orgs.begin(), orgs.end(),
                      [](const OrgFollowStatus& o) { return o.failing() || o.stale(); });
}

namespace {

StatusReport ReportHeader(const Config& config, int64_t now_ms) {
  StatusReport rep;
  rep.config_path = config.path;
  rep.state_dir = config.state_dir;
  rep.mirror_root = config.mirror_root;
  rep.now_ms = now_ms;
  rep.stale_after_ms = config.stale_after.count();
  return rep;
}

}  // namespace

StatusReport EmptyStatusReport(Env* env, const Config& config, int64_t now_ms) {
  StatusReport rep = ReportHeader(config, now_ms);
  for (const auto& rc : config.repos) {
    RepoStatus r;
    r.name = rc.local_name();
    Status s = ReconcileWithServed(env, config.mirror_root, nullptr, &r);
    (void)s;  // without a database it cannot fail
    Classify(&r, rep);
    rep.repos.push_back(std::move(r));
  }
  Status s = AnnotateOrgFollows(nullptr, config, &rep);
  (void)s;  // without a database it cannot fail
  return rep;
}

Result<StatusReport> BuildStatusReport(Env* env, StateDb* db, const Config& config,
                                       const std::string& detail_repo, int64_t now_ms,
                                       bool sync_running) {
  StatusReport rep = ReportHeader(config, now_ms);
  rep.sync_running = sync_running;
  // Configured and followed repositories first, in config order, then those
  // only in the database; maps keep this linear in the number of
  // repositories, and the database's figures are written straight into the
  // report's records.
  SA_ASSIGN_OR_RETURN(const std::vector<RepoConfig> followed,
                      ConfiguredAndFollowedRepos(db, config));
  SA_ASSIGN_OR_RETURN(std::vector<std::string> known, db->RepoNames());
  std::unordered_map<std::string, const RepoConfig*> configured;
  std::vector<std::string> names;
  for (const auto& rc : followed) {
    if (configured.emplace(rc.local_name(), &rc).second) names.push_back(rc.local_name());
  }
  for (auto& name : known) {
    if (!configured.count(name)) names.push_back(std::move(name));
  }
  known.clear();
  rep.repos.reserve(detail_repo.empty() ? names.size() : 1);
  std::unordered_map<std::string, RepoStatus*> by_name;
  for (const auto& name : names) {
    if (!detail_repo.empty() && name != detail_repo) continue;
    RepoStatus& r = rep.repos.emplace_back();
    r.name = name;
    r.configured = false;
    if (auto it = configured.find(name); it != configured.end()) {
      const RepoConfig& rc = *it->second;
      r.configured = true;
      r.kind = rc.source->kind();
      r.origin = rc.source->Describe();
      r.carries_signatures = rc.source->CarriesRevisionSignatures();
      r.trusted_keys = rc.trusted_keys.size();
    }
  }
  for (RepoStatus& r : rep.repos) by_name[r.name] = &r;
  SA_RETURN_IF_ERROR(db->FillSummaries([&](const std::string& name) -> RepoSummary* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }));
  for (RepoStatus& r : rep.repos) {
    SA_RETURN_IF_ERROR(ReconcileWithServed(env, config.mirror_root, db, &r));
    Classify(&r, rep);
    if (!detail_repo.empty()) {
      SA_ASSIGN_OR_RETURN(r.revisions, db->ListRevisions(r.name));
      SA_ASSIGN_OR_RETURN(r.runs, db->RecentRuns(r.name, 20));
      if (r.last_update) {
        SA_ASSIGN_OR_RETURN(r.last_update_files, db->RunFiles(r.last_update->id));
      }
    }
  }
  rep.orgs.clear();
  SA_RETURN_IF_ERROR(AnnotateOrgFollows(db, config, &rep));
  if (!detail_repo.empty() && rep.repos.empty()) {
    return Status::NotFound("repository " + detail_repo,
                            "not in the config and never synced on this node");
  }
  return rep;
}

SignatureSummary SummarizeSignature(const RepoStatus& r) {
  if (!r.configured) return {"", ""};
  if (!r.carries_signatures) {
    return {"none", "none (a " + r.kind + " source carries no revision signatures)"};
  }
  if (r.trusted_keys > 0) {
    if (!r.active) {
      return {"required", "required (one of " + std::to_string(r.trusted_keys) +
                              " trusted_keys); no revision activated yet"};
    }
    if (!r.active->signed_by.empty()) {
      return {"verified", "verified, signed by " + r.active->signed_by + " (created " +
                              r.active->created + ")"};
    }
    return {"unverified",
            "required, but the active revision was activated before trusted_keys were set; "
            "the next revision is checked"};
  }
  if (r.active && !r.active->signatures.empty()) {
    return {"signed", "not required (no trusted_keys); the active revision is signed, unchecked"};
  }
  return {"unsigned", "not required (no trusted_keys); the active revision is unsigned"};
}

StatusCounts CountStates(const StatusReport& rep) {
  StatusCounts c;
  for (const RepoStatus& r : rep.repos) {
    ++c.repos;
    if (!r.configured) ++c.not_configured;
    if (r.pin) ++c.pinned;
    if (r.failing) {
      ++c.failing;
    } else if (r.stale) {
      ++c.stale;
    } else {
      ++c.ok;
    }
  }
  return c;
}

namespace {

constexpr size_t kStatusPieceBytes = 64 << 10;

std::string StateWord(const RepoStatus& r) {
  std::string state = r.failing ? "FAILING" : (r.stale ? "STALE" : "ok");
  if (!r.configured) state += " (not in config)";
  if (r.missing_since_ms != 0) state += " (missing upstream)";
  if (r.pin) state += " (pinned)";
  return state;
}

// The lines above the repositories of a report on several: counts by
// state, then every failing and every stale repository with its problem.
std::string SummaryText(const StatusReport& rep) {
  const StatusCounts c = CountStates(rep);
  std::string o = std::to_string(c.repos) + " repositories: " + std::to_string(c.ok) + " ok, " +
                  std::to_string(c.failing) + " failing, " + std::to_string(c.stale) + " stale";
  if (c.not_configured > 0) o += " (" + std::to_string(c.not_configured) + " not in config)";
  if (c.pinned > 0) o += ", " + std::to_string(c.pinned) + " pinned";
  o += "\n";
  for (bool failing : {true, false}) {
    bool any = false;
    for (const RepoStatus& r : rep.repos) {
      if (failing ? !r.failing : (r.failing || !r.stale)) continue;
      if (!any) o += failing ? "failing:\n" : "stale:\n";
      any = true;
      o += "  " + r.name + ": " + r.problem + "\n";
    }
  }
  return o + "\n";
}

std::string PinText(const StatusReport& rep, const RepoStatus& r) {
  std::string o = "to " + r.pin->revision + " since " + Iso(r.pin->pinned_at_ms) + " (" +
                  Age(rep.now_ms, r.pin->pinned_at_ms) + ")";
  if (!r.newest_revision.empty()) {
    o += "; newest fetched " + r.newest_revision + " is held, not served";
  }
  return o + "; `sync-agent unpin " + r.name + "` serves the latest again";
}

// One line for a repository of a large report.
std::string CompactLine(const StatusReport& rep, const RepoStatus& r) {
  std::string o = r.name + ": " + StateWord(r);
  o += "  " + (r.active ? r.active->revision : std::string("(no revision)"));
  if (r.last_run) {
    const RunRow& lr = *r.last_run;
    int64_t when = lr.finished_at_ms ? lr.finished_at_ms : lr.started_at_ms;
    o += std::string("  last run ") + RunOutcomeName(lr.outcome) + " " + Age(rep.now_ms, when);
  } else {
    o += "  never run";
  }
  return o + "\n";
}

}  // namespace

void WriteStatusText(const StatusReport& rep, bool detail, const StatusOut& out) {
  std::string o;
  // Handed on every kStatusPieceBytes, so that thousands of repositories
  // never sit in one string.
  auto flush = [&](size_t at_least) {
    if (o.size() >= at_least) {
      out(o);
      o.clear();
    }
  };
  if (rep.repos.empty() && rep.orgs.empty()) {
    o += "no repositories configured in " + rep.config_path + "\n";
    return flush(0);
  }
  if (rep.repos.size() > 1) o += SummaryText(rep);
  if (rep.repos.size() > kCompactStatusAbove) {
    for (const auto& r : rep.repos) {
      o += CompactLine(rep, r);
      flush(kStatusPieceBytes);
    }
    o += "\n(one line per repository above " + std::to_string(kCompactStatusAbove) +
         "; `sync-agent status ORG/NAME` shows one in full)\n";
    o += OrgFollowsText(rep);
    return flush(0);
  }
  for (const auto& r : rep.repos) {
    flush(kStatusPieceBytes);
    o += r.name + ": " + StateWord(r) + "\n";
    o += OrgFollowRepoText(rep, r);
    if (r.active && r.db_behind) {
      o += "  active revision: " + r.active->revision + " (served";
      if (r.active->file_count > 0) {
        o += ", " + std::to_string(r.active->file_count) + " files, " +
             FormatBytes(r.active->total_bytes);
      }
      o += ")\n  database:        behind: " + BehindText(rep, r) + "\n";
    } else if (r.active) {
      o += "  active revision: " + r.active->revision + " (activated " +
           Age(rep.now_ms, r.active->activated_at_ms) + ", " +
           std::to_string(r.active->file_count) + " files, " + FormatBytes(r.active->total_bytes) +
           ")\n";
    } else {
      o += "  active revision: none\n";
    }
    if (!r.served_problem.empty()) o += "  served tree:     " + r.served_problem + "\n";
    if (r.pin) o += "  pinned:          " + PinText(rep, r) + "\n";
    if (!r.origin.empty()) o += OriginText(r);
    if (r.configured) o += "  signature:       " + SummarizeSignature(r).text + "\n";
    if (r.last_verify) o += "  last verify:     " + VerifyText(*r.last_verify, rep.now_ms) + "\n";
    if (r.last_run) {
      const RunRow& lr = *r.last_run;
      int64_t when = lr.finished_at_ms ? lr.finished_at_ms : lr.started_at_ms;
      o += std::string("  last run:        ") + RunOutcomeName(lr.outcome) + " " +
           Age(rep.now_ms, when) + " (" + Iso(when) + ")";
      if (lr.checks > 1) {
        o += ", " + std::to_string(lr.checks) + " checks since " + Iso(lr.first_started_at_ms);
      }
      if (lr.outcome == RunOutcome::kUpdated) {
        o += ", downloaded " + FormatBytes(lr.bytes_downloaded) +
             ", files already here: " + std::to_string(lr.files_reused) + " (" +
             FormatBytes(lr.bytes_reused) + ")";
      }
      o += "\n";
      if (!lr.error.empty()) o += "  last error:      " + lr.error + "\n";
    } else {
      o += "  last run:        never\n";
    }
    if (r.last_success) {
      o += "  last success:    " + Age(rep.now_ms, r.last_success->finished_at_ms) + "\n";
    }
    if (r.last_update && r.last_update->changed_bytes > 0) {
      o += "  delta saving:    last update " + SavingText(*r.last_update) + "\n";
      if (r.saving.runs > 1) {
        o += "                   all " + std::to_string(r.saving.runs) + " updates " +
             Percent(r.saving.changed_bytes_reused, r.saving.changed_bytes) + " (" +
             FormatBytes(r.saving.changed_bytes_reused) + " of " +
             FormatBytes(r.saving.changed_bytes) + " of changed files from local content)\n";
      }
    }
    for (const SourceHealthRow& h : r.sources)
      o += "  source:          " + SourceText(rep, h) + "\n";
    if (r.stale || r.failing) o += "  problem:         " + r.problem + "\n";
    if (detail) {
      o += "  revisions:\n";
      for (const auto& rv : r.revisions) {
        o += "    " + rv.revision + "  " + RevisionStateName(rv.state) + "  " +
             std::to_string(rv.file_count) + " files  " + FormatBytes(rv.total_bytes);
        if (rv.activated_at_ms) o += "  activated " + Iso(rv.activated_at_ms);
        o += "\n";
      }
      o += "  recent runs:\n";
      for (const auto& run : r.runs) {
        o += "    " + Iso(run.started_at_ms) + "  " + RunOutcomeName(run.outcome) + "  " +
             (run.to_revision.empty() ? "-" : run.to_revision) + "  down " +
             FormatBytes(run.bytes_downloaded) + "  already here " + FormatBytes(run.bytes_reused);
        if (run.changed_bytes > 0) o += "  saving " + SavingText(run);
        if (!run.error.empty()) o += "  error: " + run.error;
        o += "\n";
      }
      if (!r.last_update_files.empty()) {
        o += "  files of the last update (method, downloaded, from local content):\n";
        for (const auto& f : r.last_update_files) {
          if (f.method == "reuse") continue;
          o += "    " + f.path + "  " + f.method + "  " + FormatBytes(f.bytes_fetched) + "  " +
               FormatBytes(f.bytes_reused) + " of " + FormatBytes(f.size);
          if (!f.note.empty()) o += "  (" + f.note + ")";
          o += "\n";
        }
      }
    }
  }
  o += OrgFollowsText(rep);
  flush(0);
}

void WriteStatusJson(const StatusReport& rep, bool detail, const StatusOut& out) {
  std::string o = "{\"healthy\":" + std::string(rep.healthy() ? "true" : "false");
  o += ",\"sync_running\":" + std::string(rep.sync_running ? "true" : "false");
  o += ",\"now\":" + JsonQuote(Iso(rep.now_ms));
  o += ",\"config\":" + JsonQuote(rep.config_path);
  o += ",\"state_dir\":" + JsonQuote(rep.state_dir);
  o += ",\"mirror_root\":" + JsonQuote(rep.mirror_root);
  o += ",\"stale_after_seconds\":" + std::to_string(rep.stale_after_ms / 1000);
  const StatusCounts c = CountStates(rep);
  o += ",\"summary\":{\"repos\":" + std::to_string(c.repos) + ",\"ok\":" + std::to_string(c.ok) +
       ",\"failing\":" + std::to_string(c.failing) + ",\"stale\":" + std::to_string(c.stale) +
       ",\"not_configured\":" + std::to_string(c.not_configured) +
       ",\"pinned\":" + std::to_string(c.pinned) + "}";
  o += ",\"repos\":[";
  bool first = true;
  for (const auto& r : rep.repos) {
    if (o.size() >= kStatusPieceBytes) {
      out(o);
      o.clear();
    }
    if (!first) o += ",";
    first = false;
    o += "{\"name\":" + JsonQuote(r.name);
    o += ",\"configured\":" + std::string(r.configured ? "true" : "false");
    o += ",\"stale\":" + std::string(r.stale ? "true" : "false");
    o += ",\"failing\":" + std::string(r.failing ? "true" : "false");
    o += ",\"problem\":" + (r.problem.empty() ? std::string("null") : JsonQuote(r.problem));
    o += OrgFollowRepoJson(r);
    if (r.active) {
      o += ",\"active_revision\":" + JsonQuote(r.active->revision);
      o += ",\"activated_at\":" +
           (r.active->activated_at_ms ? JsonQuote(Iso(r.active->activated_at_ms)) : "null");
    } else {
      o += ",\"active_revision\":null,\"activated_at\":null";
    }
    auto quoted_or_null = [](const std::string& v) {
      return v.empty() ? std::string("null") : JsonQuote(v);
    };
    o += ",\"pinned\":";
    if (r.pin) {
      o += "{\"revision\":" + JsonQuote(r.pin->revision) +
           ",\"since\":" + JsonQuote(Iso(r.pin->pinned_at_ms)) +
           ",\"newest_revision\":" + quoted_or_null(r.newest_revision) + "}";
    } else {
      o += "null";
    }
    o += ",\"served_revision\":" + quoted_or_null(r.served_revision);
    o += ",\"served_problem\":" + quoted_or_null(r.served_problem);
    o += ",\"database_revision\":" + quoted_or_null(r.db_revision);
    o += ",\"database_behind\":" + std::string(r.db_behind ? "true" : "false");
    o += ",\"database_note\":" + (r.db_behind ? JsonQuote(BehindText(rep, r)) : "null");
    o += ",\"origin\":{\"kind\":" + (r.kind.empty() ? std::string("null") : JsonQuote(r.kind));
    for (const SpecField& f : r.origin) o += "," + JsonQuote(f.key) + ":" + JsonQuote(f.value);
    o += "},\"provenance\":" + (r.active ? ProvenanceToJson(r.active->provenance) : "null");
    if (r.configured) {
      o += ",\"signature\":{\"required\":" + std::string(r.trusted_keys > 0 ? "true" : "false");
      o += ",\"state\":" + JsonQuote(SummarizeSignature(r).state);
      o += ",\"signed_by\":" + (r.active && !r.active->signed_by.empty()
                                    ? JsonQuote(r.active->signed_by)
                                    : std::string("null"));
      o += "}";
    }
    o += ",\"last_run\":";
    if (r.last_run) {
      AppendRunJson(&o, *r.last_run);
    } else {
      o += "null";
    }
    o += ",\"saving\":{\"updates\":" + std::to_string(r.saving.runs) +
         ",\"changed_bytes\":" + std::to_string(r.saving.changed_bytes) +
         ",\"changed_bytes_reused\":" + std::to_string(r.saving.changed_bytes_reused) +
         ",\"bytes_downloaded\":" + std::to_string(r.saving.bytes_downloaded) + "}";
    o += ",\"sources\":[";
    for (size_t i = 0; i < r.sources.size(); ++i) {
      const SourceHealthRow& h = r.sources[i];
      o += i ? ",{" : "{";
      o += "\"url\":" + JsonQuote(h.url);
      o += ",\"requests\":" + std::to_string(h.requests);
      o += ",\"errors\":" + std::to_string(h.errors);
      o += ",\"consecutive_errors\":" + std::to_string(h.consecutive_errors);
      o += ",\"bytes\":" + std::to_string(h.bytes);
      o += ",\"throughput_bps\":" + std::to_string(static_cast<uint64_t>(h.throughput_bps));
      o += ",\"latency_ms\":" + std::to_string(static_cast<uint64_t>(h.latency_ms));
      o += ",\"last_error\":" +
           (h.last_error.empty() ? std::string("null") : JsonQuote(h.last_error));
      o += ",\"last_error_at\":" +
           (h.last_error_at_ms ? JsonQuote(Iso(h.last_error_at_ms)) : std::string("null"));
      o += ",\"last_ok_at\":" +
           (h.last_ok_at_ms ? JsonQuote(Iso(h.last_ok_at_ms)) : std::string("null"));
      o += "}";
    }
    o += "]";
    o += ",\"last_update\":";
    if (r.last_update) {
      AppendRunJson(&o, *r.last_update);
    } else {
      o += "null";
    }
    o += ",\"last_verify\":";
    if (r.last_verify) {
      const VerificationRow& v = *r.last_verify;
      o += "{\"finished_at\":" + JsonQuote(Iso(v.finished_at_ms));
      o += ",\"full\":" + std::string(v.full ? "true" : "false");
      o += ",\"files_checked\":" + std::to_string(v.files_checked);
      o += ",\"bytes_hashed\":" + std::to_string(v.bytes_hashed);
      o += ",\"missing\":" + std::to_string(v.missing);
      o += ",\"damaged\":" + std::to_string(v.damaged);
      o += ",\"unexpected\":" + std::to_string(v.unexpected);
      o += ",\"repaired\":" + std::to_string(v.repaired);
      o += ",\"problems\":" + (v.problems.empty() ? std::string("null") : JsonQuote(v.problems));
      o += "}";
    } else {
      o += "null";
    }
    o += ",\"last_success_at\":" +
         (r.last_success ? JsonQuote(Iso(r.last_success->finished_at_ms)) : "null");
    if (detail) {
      o += ",\"revisions\":[";
      for (size_t i = 0; i < r.revisions.size(); ++i) {
        if (i) o += ",";
        AppendRevisionJson(&o, r.revisions[i]);
      }
      o += "],\"last_update_files\":[";
      for (size_t i = 0; i < r.last_update_files.size(); ++i) {
        const RunFileRow& f = r.last_update_files[i];
        if (i) o += ",";
        o += "{\"path\":" + JsonQuote(f.path) + ",\"sha256\":" + JsonQuote(f.sha256) +
             ",\"size\":" + std::to_string(f.size) + ",\"method\":" + JsonQuote(f.method) +
             ",\"basis_sha256\":" +
             (f.basis_sha256.empty() ? std::string("null") : JsonQuote(f.basis_sha256)) +
             ",\"bytes_fetched\":" + std::to_string(f.bytes_fetched) +
             ",\"bytes_reused\":" + std::to_string(f.bytes_reused) +
             ",\"note\":" + (f.note.empty() ? std::string("null") : JsonQuote(f.note)) + "}";
      }
      o += "],\"runs\":[";
      for (size_t i = 0; i < r.runs.size(); ++i) {
        if (i) o += ",";
        AppendRunJson(&o, r.runs[i]);
      }
      o += "]";
    }
    o += "}";
  }
  o += "]" + OrgFollowsJson(rep) + "}\n";
  out(o);
}

std::string FormatStatusText(const StatusReport& rep, bool detail) {
  std::string o;
  WriteStatusText(rep, detail, [&](std::string_view piece) { o += piece; });
  return o;
}

std::string FormatStatusJson(const StatusReport& rep, bool detail) {
  std::string o;
  WriteStatusJson(rep, detail, [&](std::string_view piece) { o += piece; });
  return o;
}

}  // namespace sync_agent
