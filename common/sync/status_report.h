// StatusReport: what `sync-agent status` tells an operator or a monitor, built
// from the database, the config and the served symlinks. It never writes.
//
// The symlink <mirror_root>/<org>/<name> is the truth about what is served:
// an agent killed between the swap and the database update leaves the
// database naming the previous revision until the next run records the
// served one. The report reads every repository's link and, when the two
// disagree, names the served revision as active and says that the database
// is behind.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/config/config.h"
#include "common/db/state_db.h"

namespace sync_agent {

class Env;

// The database's figures (name, active, last_run, last_success,
// last_update, saving, last_verify, sources: RepoSummary) and what the
// config and the served link add.
struct RepoStatus : RepoSummary {
  bool configured = true;           // false: in the database but no longer in the config
  std::string kind;                 // the source kind ("publish", "git", "hub"); "" if unconfigured
  std::vector<SpecField> origin;    // its settings, as the kind describes them
  bool carries_signatures = false;  // its kind serves revision signatures
  size_t trusted_keys = 0;          // keys one of which must sign each revision
  // active (above) is the revision served, from the symlink when it can be
  // read (then the database's row for it, if any), else the database's.
  std::string served_revision;  // what the symlink names; "" if there is no link
  std::string served_problem;   // why the link could not be read ("" if it could)
  std::string db_revision;      // the database's active revision ("" if none)
  bool db_behind = false;       // the link names another revision than the database
  // Followed by an organisation glob (org_follow_status.h): the glob, and
  // since when its origin no longer lists it (0: it does). A missing one is
  // kept and served but not polled, so it is not reported stale.
  std::string followed_by;
  int64_t missing_since_ms = 0;
  bool stale = false;    // no successful check within stale_after
  bool failing = false;  // the last run failed or was interrupted
  std::string problem;   // one line for humans when stale or failing
  // Details, only for a single-repository report.
  std::vector<RevisionRow> revisions;
  std::vector<RunRow> runs;
  std::vector<RunFileRow> last_update_files;  // how each file of the last update came
};

// An organisation glob of the config and its last discovery.
struct OrgFollowStatus {
  std::string glob;
  std::string kind;               // its source kind
  std::vector<std::string> urls;  // its sources
  bool prune_missing = false;
  std::optional<OrgFollowRow> last;  // nullopt: never discovered
  size_t followed = 0;               // repositories it follows (missing ones too)
  size_t missing = 0;
  bool failing() const { return last && !last->error.empty(); }
  // Never discovered yet: like a repository never synced, not healthy.
  bool stale() const { return !last; }
};

struct StatusReport {
  std::string config_path;
  std::string state_dir;
  std::string mirror_root;
  int64_t now_ms = 0;
  int64_t stale_after_ms = 0;
  bool sync_running = false;
  std::vector<RepoStatus> repos;
  std::vector<OrgFollowStatus> orgs;
  bool healthy() const;  // no repository stale or failing, no discovery failing
};

// detail_repo: when not empty, only that repository, with revisions and runs.
// sync_running: whether an agent holds the run lock now; without one, a run
// still recorded as running was abandoned (the agent was killed or crashed).
// env reads the served symlinks under config.mirror_root (nothing is written).
Result<StatusReport> BuildStatusReport(Env* env, StateDb* db, const Config& config,
                                       const std::string& detail_repo, int64_t now_ms,
                                       bool sync_running);
// A report for a node that has never run (no database yet): every configured
// repository is stale; a served link is still reported.
StatusReport EmptyStatusReport(Env* env, const Config& config, int64_t now_ms);

// Whether the active revision's signature was checked, in one word
// ("verified", "unverified", "signed", "unsigned", "none") and one line.
struct SignatureSummary {
  std::string state;
  std::string text;
};
SignatureSummary SummarizeSignature(const RepoStatus& r);

// Repositories by state: failing first (a failing one may also be stale),
// then stale, else ok; not_configured counts those among them no longer in the config.
struct StatusCounts {
  size_t repos = 0;
  size_t ok = 0;
  size_t failing = 0;
  size_t stale = 0;
  size_t not_configured = 0;
  size_t pinned = 0;  // held at a revision by `sync-agent pin` (counted in the states too)
};
StatusCounts CountStates(const StatusReport& report);

// A report on more repositories than this prints one line for each (after
// the summary); `status ORG/NAME` shows one in full.
constexpr size_t kCompactStatusAbove = 100;

// Several repositories: a summary first (counts by state, the failing and
// stale ones listed with their problems), then each repository.
std::string FormatStatusText(const StatusReport& report, bool detail);
std::string FormatStatusJson(const StatusReport& report, bool detail);
// The same, handed to out in pieces (of about 64 KiB) as they are made.
using StatusOut = std::function<void(std::string_view)>;
void WriteStatusText(const StatusReport& report, bool detail, const StatusOut& out);
void WriteStatusJson(const StatusReport& report, bool detail, const StatusOut& out);

}  // namespace sync_agent
