#include "common/sync/sync_engine.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/base/json_text.h"
#include "common/base/kill_point.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/mirror/mirror_tree.h"
#include "common/store/object_store.h"
#include "common/sync/hub_ids.h"
#include "common/sync/object_fetcher.h"
#include "common/sync/pin.h"
#include "common/sync/run_lock.h"
#include "common/sync/sync_plan.h"
#include "common/transfer/progress.h"
#include "common/trust/revision_trust.h"

namespace sync_agent {
namespace {

// Partial-transfer progress is written to SQLite at most this often.
constexpr uint64_t kProgressRecordBytes = 64ULL << 20;
// A file of this size in state_dir is given back when a run fails for lack of
// space, so that SQLite can still record the failure.
constexpr uint64_t kReserveBytes = 8ULL << 20;
constexpr const char* kReserveName = "reserve";
// Partial downloads untouched this long belong to revisions nobody needs any more.
constexpr int64_t kPartialExpiryMs = 7LL * 24 * 3600 * 1000;
// Free space kept beyond what a run needs.
constexpr uint64_t kFreeSpaceMargin = 16ULL << 20;
// Files downloaded at once (each may use several connections for its chunks).
constexpr size_t kMaxFilesAtOnce = 4;
// Runs of a pass that ended at their poll are written in transactions of this many.
constexpr size_t kFinishedRunsPerTransaction = 512;
// Repositories of a pass that transfer at once (their files share connections_total).
constexpr int kMaxUpdatesAtOnce = 4;

// What the node holds, from the database, for sources that list contents by
// git blob id.
class DbHeldContent final : public HeldContent {
 public:
  explicit DbHeldContent(StateDb* db) : db_(db) {}
  std::optional<HeldDigest> FindByBlob(const std::string& blob) const override {
    auto row = db_->FindObjectByBlob(blob);
    if (!row.ok() || !row->has_value()) return std::nullopt;  // not known: it is fetched
    return HeldDigest{(*row)->sha256, (*row)->xxh3_128, (*row)->size};
  }

 private:
  StateDb* db_;
};

}  // namespace

struct SyncEngine::RunContext {
  explicit RunContext(const CancelFlag* process_stop) : stop(process_stop) {}

  std::string repo;
  int64_t started_at_ms = 0;
  // The run's row in sync_runs, made when the run goes past its poll (0 before).
  int64_t run_id = 0;
  // What an unchanged poll saw that the database does not know yet.
  std::optional<PollState> record_poll;
  // Set when the run must stop: a stop request of the process (its parent),
  // or a failed transfer that makes the others pointless. Every source and
  // transfer of the run watches it.
  CancelFlag stop;
  SourceOptions source_options;
  DbHeldContent held{nullptr};                    // the database's, set by Poll
  std::vector<std::string> urls;                  // the repository's sources, as configured
  std::map<std::string, SourceHealthRow> health;  // by url
  std::unique_ptr<SourceSet> sources;             // those serving the revision being synced
  std::unique_ptr<Source> source;
  std::string source_url;
  PollResult poll;
  Manifest manifest;
  std::string manifest_sha256;
  std::string signatures;  // the revision's signature document as served ("" for none)
  std::string signed_by;   // the trusted key that signed it ("" when none was required)
  SyncPlan plan;
  std::string active_revision;  // what the symlink named at the start
  std::optional<PinRow> pin;    // the operator's pin, as the run started
  std::string held_back;        // fetched (or held) but not served: the repository is pinned
  ObjectStore* store = nullptr;
  MirrorTree* mirror = nullptr;
  bool unchanged = false;
  RunRow counters;
  // How each fetched content was obtained, by sha256.
  std::unordered_map<std::string, FetchOutcome> outcomes;
  // Local contents that may share blocks with new ones (see Candidates).
  bool candidates_loaded = false;
  std::unordered_map<std::string, std::vector<LocalCandidate>> by_path;
  std::unordered_map<std::string, std::vector<LocalCandidate>> by_name;
};

SyncEngine::SyncEngine(Env* env, StateDb* db, SyncEngineOptions options, SourceFactory factory)
    : env_(env),
      db_(db),
      options_(std::move(options)),
      factory_(std::move(factory)),
      limiter_(options_.bandwidth_limit, options_.bandwidth_schedule),
      budget_(options_.connections_total),
      connections_(static_cast<size_t>(std::max(1, options_.connections_total))) {
  if (!factory_) {
    factory_ = [](const RepoConfig& repo, const std::string& url, const SourceOptions& o) {
      return repo.source->Make(url, repo.name, o);
    };
  }
}

SyncEngine::~SyncEngine() = default;

Status SyncEngine::Init() {
  SA_RETURN_IF_ERROR(CreateDirs(env_, options_.state_dir, 0755));
  SA_RETURN_IF_ERROR(CreateDirs(env_, options_.mirror_root, 0755));
  ObjectStore store(env_, options_.state_dir);
  SA_RETURN_IF_ERROR(store.Init());
  const RootedPath reserve{options_.state_dir, kReserveName};
  auto info = env_->LstatAt(reserve);
  if (info.ok() && info->type != FileInfo::Type::kRegular) {
    // Planted by someone else: refused (NewWritableFileAt would say so too).
    return RefuseForeignPath(
        reserve.full(),
        info->type == FileInfo::Type::kSymlink ? "is a symlink" : "is not a regular file",
        "reserve file");
  }
  if (!info.ok() || info->size != kReserveBytes) {
    Status rs = [&]() -> Status {
      SA_ASSIGN_OR_RETURN(auto f, env_->NewWritableFileAt(reserve, 0600, WriteOpen::kTruncate));
      std::string zeros(1 << 20, '\0');
      for (uint64_t i = 0; i < kReserveBytes / zeros.size(); ++i) {
        SA_RETURN_IF_ERROR(f->Append(zeros.data(), zeros.size()));
      }
      SA_RETURN_IF_ERROR(f->Sync());
      return f->Close();
    }();
    if (!rs.ok()) {
      env_->RemoveFileAt(reserve);
      LogWarning("could not set aside reserve space in state_dir", {{"error", rs.ToString()}});
    }
  }
  SA_RETURN_IF_ERROR(ExpirePartials());
  return db_->CloseAbandonedRuns("the agent stopped during the run (killed or crashed)");
}

Status SyncEngine::ExpirePartials() {
  // By fds: a symlink planted at partial is refused, never listed through.
  const RootedPath dir{options_.state_dir, "partial"};
  SA_ASSIGN_OR_RETURN(auto entries, env_->ListDirAt(dir));
  ObjectStore store(env_, options_.state_dir);
  int64_t now_ns = NowMs() * 1000000;
  for (const auto& e : entries) {
    std::string path = dir.Child(e.name).full();
    std::string sha = e.name.substr(0, e.name.find('.'));
    // A run killed after an object entered the store but before its ranges
    // record was removed leaves the record; nothing would read it again.
    const bool stored = store.SizeOf(sha).has_value();
    auto info = env_->LstatAt(dir.Child(e.name));
    if (!stored && (!info.ok() || now_ns - info->mtime_ns < kPartialExpiryMs * 1000000)) continue;
    SA_RETURN_IF_ERROR(env_->RemoveFileAt(dir.Child(e.name)));
    SA_RETURN_IF_ERROR(db_->RemovePartial(sha));
    LogInfo(stored ? "removed what is left of a download whose object is in the store"
                   : "removed a partial download untouched for 7 days",
            {{"file", path}});
  }
  return Status::OK();
}

void SyncEngine::RecordRefusedRuns(const std::vector<const RepoConfig*>& repos, const Status& why) {
  std::vector<FinishedRun> runs;
  const int64_t now = NowMs();
  for (const RepoConfig* repo : repos) {
    FinishedRun run;
    run.row.repo = repo->local_name();
    run.row.trigger = options_.trigger;
    run.row.started_at_ms = now;
    run.row.finished_at_ms = now;
    run.row.outcome = RunOutcome::kFailed;
    run.row.error = why.ToString();
    runs.push_back(std::move(run));
  }
  FlushFinishedRuns(std::move(runs));
}

void SyncEngine::BackfillHubIds(const std::string& repo, ObjectStore* store) {
  // Revisions synced before the node served the Hub API (schema 0006).
  auto revisions = db_->ListRevisions(repo);
  if (!revisions.ok()) return;
  for (const RevisionRow& r : *revisions) {
    if (!r.hub_sha.empty()) continue;
    if (r.state != RevisionState::kActive && r.state != RevisionState::kRetained) continue;
    Status s = RecordHubIds(db_, store, r);
    if (!s.ok()) {
      LogWarning("could not compute the Hub API ids of a revision",
                 {{"repo", repo}, {"revision", r.revision}, {"error", s.ToString()}});
    }
  }
}

Status SyncEngine::Reconcile(const std::string& repo, bool clean_staging) {
  MirrorTree mirror(env_, options_.mirror_root);
  if (clean_staging) SA_RETURN_IF_ERROR(mirror.CleanStaging(repo));
  auto served = mirror.ActiveRevision(repo);
  if (!served.ok()) {
    if (served.status().IsNotFound()) return Status::OK();
    return served.status();
  }
  // The symlink is the truth about what is served: an agent killed between
  // the swap and the database update left the database one step behind.
  SA_ASSIGN_OR_RETURN(auto active, db_->ActiveRevision(repo));
  if (active && active->revision == *served) return Status::OK();
  SA_ASSIGN_OR_RETURN(auto row, db_->GetRevision(repo, *served));
  if (row) {
    LogWarning("database was behind the served tree; recording the served revision as active",
               {{"repo", repo}, {"revision", *served}});
    return db_->ActivateRevision(repo, *served, NowMs());
  }
  LogWarning("served revision is not in the database", {{"repo", repo}, {"revision", *served}});
  return Status::OK();
}

Status SyncEngine::ReconcileInPass(const std::string& repo, RunContext* ctx) {
  auto served = ctx->mirror->ActiveRevision(repo);
  if (!served.ok()) return served.status().IsNotFound() ? Status::OK() : served.status();
  ctx->active_revision = *served;
  const RepoPassState* known = KnownState(repo);
  if (known != nullptr && known->active_revision == *served) return Status::OK();
  return Reconcile(repo, /*clean_staging=*/false);
}

const RepoPassState* SyncEngine::KnownState(const std::string& repo) const {
  if (!pass_) return nullptr;
  auto it = pass_->known.find(repo);
  return it == pass_->known.end() ? nullptr : &it->second;
}

Status SyncEngine::BeginPass() {
  auto pass = std::make_unique<Pass>();
  SA_ASSIGN_OR_RETURN(pass->known, db_->LoadPassState());
  // What every run would otherwise do for itself: staging left by a killed
  // run, and Hub API ids of revisions synced by older versions.
  MirrorTree mirror(env_, options_.mirror_root);
  SA_RETURN_IF_ERROR(mirror.CleanAllStaging());
  ObjectStore store(env_, options_.state_dir);
  SA_ASSIGN_OR_RETURN(auto missing_ids, db_->RevisionsWithoutHubIds());
  for (const auto& [repo, r] : missing_ids) {
    Status s = RecordHubIds(db_, &store, r);
    if (!s.ok()) {
      LogWarning("could not compute the Hub API ids of a revision",
                 {{"repo", repo}, {"revision", r.revision}, {"error", s.ToString()}});
    }
  }
  pass_ = std::move(pass);
  return Status::OK();
}

Status SyncEngine::FlushFinishedRuns(std::vector<FinishedRun> runs) {
  Status s = db_->RecordFinishedRuns(runs);
  if (!s.ok()) {
    LogError("could not record runs in the database",
             {{"runs", std::to_string(runs.size())}, {"error", s.ToString()}});
  }
  return s;
}

void SyncEngine::AddFinishedRun(FinishedRun run) {
  if (!pass_) {
    FlushFinishedRuns({std::move(run)});
    return;
  }
  std::vector<FinishedRun> batch;
  {
    std::lock_guard<std::mutex> lock(pass_->mu);
    pass_->finished.push_back(std::move(run));
    if (pass_->finished.size() < kFinishedRunsPerTransaction) return;
    batch.swap(pass_->finished);
  }
  FlushFinishedRuns(std::move(batch));
}

Status SyncEngine::EndPass() {
  if (!pass_) return Status::OK();
  std::vector<FinishedRun> batch;
  {
    std::lock_guard<std::mutex> lock(pass_->mu);
    batch.swap(pass_->finished);
  }
  Status s = FlushFinishedRuns(std::move(batch));
  // Unchanged runs do not collect; a lowered keep_revisions takes effect
  // here (still in the pass, so that Collect leaves the objects to the one
  // sweep below).
  auto over = db_->ReposWithMoreRevisionsThan(options_.keep_revisions);
  if (over.ok()) {
    for (const std::string& repo : *over) {
      auto active = db_->ActiveRevision(repo);
      if (active.ok() && *active) CollectOrWarn(repo, (*active)->revision);
    }
  }
  const bool wrote = pass_->wrote.load();
  pass_.reset();
  Status swept = SweepObjects();
  if (swept.ok() && wrote) swept = SweepOrphanObjects();
  if (!swept.ok()) {
    LogWarning("could not remove unreferenced objects", {{"error", swept.ToString()}});
  }
  return s;
}

RepoSyncResult SyncEngine::SyncRepo(const RepoConfig& repo) {
  RepoSyncResult result;
  RunContext ctx(options_.cancel);
  ctx.repo = repo.local_name();
  ObjectStore store(env_, options_.state_dir);
  MirrorTree mirror(env_, options_.mirror_root);
  ctx.store = &store;
  ctx.mirror = &mirror;
  ctx.started_at_ms = NowMs();
  const auto start = std::chrono::steady_clock::now();

  // A mirror tree the agent refuses (a planted symlink) fails the run, and
  // the run is recorded so that status shows why.
  Status s;
  if (pass_) {
    s = ReconcileInPass(ctx.repo, &ctx);
  } else {
    s = db_->EnsureRepo(ctx.repo).status();
    if (s.ok()) s = Reconcile(ctx.repo, /*clean_staging=*/true);
    if (s.ok()) BackfillHubIds(ctx.repo, &store);
    auto served = mirror.ActiveRevision(ctx.repo);
    if (served.ok()) ctx.active_revision = *served;
  }
  if (s.ok()) s = LoadPin(&ctx);
  result.from_revision = ctx.active_revision;
  if (s.ok()) s = RunStages(repo, &ctx);
  if (s.ok() && ctx.stop.load() && options_.cancel != nullptr && options_.cancel->load()) {
    s = Status::Cancelled("sync " + ctx.repo, "stop requested");
  }

  RunRow& row = ctx.counters;
  row.repo = ctx.repo;
  row.trigger = options_.trigger;
  row.started_at_ms = ctx.started_at_ms;
  row.source = ctx.source_url;
  row.from_revision = ctx.active_revision;
  if (!s.ok()) {
    row.outcome = s.IsCancelled() ? RunOutcome::kInterrupted : RunOutcome::kFailed;
    row.error = s.ToString();
  } else if (ctx.unchanged) {
    row.outcome = RunOutcome::kUnchanged;
    row.to_revision = ctx.active_revision;
  } else {
    row.outcome = RunOutcome::kUpdated;
    row.to_revision = ctx.manifest.revision;
  }
  if (s.code() == Status::Code::kNoSpace) {
    // Give SQLite room to record why the run failed.
    env_->RemoveFileAt({options_.state_dir, kReserveName});
  }
  if (ctx.run_id == 0) {
    // The run ended at its poll: nothing on disk changed, so it is recorded
    // with the pass's other such runs.
    FinishedRun finished;
    row.finished_at_ms = NowMs();
    finished.row = row;
    finished.health = HealthRows(&ctx);
    if (ctx.record_poll) finished.poll_state = {ctx.source_url, *ctx.record_poll};
    AddFinishedRun(std::move(finished));
  } else {
    SaveHealth(&ctx);
    if (row.outcome == RunOutcome::kUpdated) {
      Status fs = db_->RecordRunFiles(ctx.run_id, RunFiles(ctx));
      if (!fs.ok()) {
        LogError("could not record the run's files in the database", {{"error", fs.ToString()}});
      }
      KillPoint("run-files");  // the run's files recorded, its outcome not yet
    }
    Status fs = db_->FinishRun(ctx.run_id, row);
    if (!fs.ok()) {
      LogError("could not record the run in the database", {{"error", fs.ToString()}});
      if (s.ok()) s = fs;
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  if (s.ok()) {
    if (!ctx.held_back.empty()) {
      LogInfo("pinned: keeping the pinned revision served",
              {{"repo", ctx.repo},
               {"serving", ctx.active_revision},
               {"held", ctx.held_back},
               {"downloaded", FormatBytes(row.bytes_downloaded)},
               {"unpin with", "sync-agent unpin " + ctx.repo}});
    } else if (ctx.unchanged) {
      LogInfo("up to date", {{"repo", ctx.repo}, {"revision", ctx.active_revision}});
    } else {
      LogInfo("updated", {{"repo", ctx.repo},
                          {"from", ctx.active_revision.empty() ? "(none)" : ctx.active_revision},
                          {"to", ctx.manifest.revision},
                          {"downloaded", FormatBytes(row.bytes_downloaded)},
                          {"reused", FormatBytes(row.bytes_reused)},
                          {"changed", FormatBytes(row.changed_bytes)},
                          {"changed_reused", FormatBytes(row.changed_bytes_reused)},
                          {"took", FormatDuration(std::chrono::milliseconds(ms))}});
    }
  } else {
    LogError("sync failed", {{"repo", ctx.repo}, {"error", s.ToString()}});
  }
  result.outcome = row.outcome;
  result.status = s;
  result.to_revision = row.to_revision;
  result.counters = row;
  return result;
}

SyncEngine::UpdateSlot::UpdateSlot(SyncEngine* engine, const CancelFlag* cancel) : engine_(engine) {
  CancelFlag::Hook wake(cancel, [engine] {
    std::lock_guard<std::mutex> lock(engine->update_mu_);
    engine->update_cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(engine_->update_mu_);
  engine_->update_cv_.wait(lock, [&] {
    return engine_->updating_ < kMaxUpdatesAtOnce || (cancel != nullptr && cancel->load());
  });
  if (engine_->updating_ >= kMaxUpdatesAtOnce) return;
  ++engine_->updating_;
  held_ = true;
}

SyncEngine::UpdateSlot::~UpdateSlot() {
  if (!held_) return;
  {
    std::lock_guard<std::mutex> lock(engine_->update_mu_);
    --engine_->updating_;
  }
  engine_->update_cv_.notify_all();  // shared with ContentClaim
}

SyncEngine::ContentClaim::ContentClaim(SyncEngine* engine, const std::string& sha256,
                                       const CancelFlag* cancel)
    : engine_(engine), sha256_(sha256) {
  CancelFlag::Hook wake(cancel, [engine] {
    std::lock_guard<std::mutex> lock(engine->update_mu_);
    engine->update_cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(engine_->update_mu_);
  engine_->update_cv_.wait(lock, [&] {
    return !engine_->claimed_.count(sha256_) || (cancel != nullptr && cancel->load());
  });
  held_ = engine_->claimed_.insert(sha256_).second;
}

SyncEngine::ContentClaim::~ContentClaim() {
  if (!held_) return;
  {
    std::lock_guard<std::mutex> lock(engine_->update_mu_);
    engine_->claimed_.erase(sha256_);
  }
  engine_->update_cv_.notify_all();
}

Status SyncEngine::BeginRecording(RunContext* ctx) {
  if (pass_) pass_->wrote.store(true);
  SA_RETURN_IF_ERROR(db_->EnsureRepo(ctx->repo).status());
  SA_ASSIGN_OR_RETURN(ctx->run_id, db_->BeginRun(ctx->repo, options_.trigger, ctx->active_revision,
                                                 ctx->started_at_ms));
  return Status::OK();
}

namespace {

// One poll of a source, in its health record.
void NotePoll(SourceHealthRow* h, const Status& s) {
  h->requests++;
  if (s.ok()) {
    h->consecutive_errors = 0;
    h->last_ok_at_ms = NowMs();
  } else if (!s.IsCancelled()) {
    h->errors++;
    h->consecutive_errors++;
    h->last_error = s.ToString();
    h->last_error_at_ms = NowMs();
  }
}

}  // namespace

Status SyncEngine::PrepareSources(const RepoConfig& repo, RunContext* ctx) {
  SourceOptions& so = ctx->source_options;
  so.io_timeout = options_.io_timeout;
  so.low_speed_limit = options_.low_speed_limit;
  so.low_speed_time = options_.low_speed_time;
  so.manifest_limits = options_.manifest_limits;
  so.cancel = &ctx->stop;
  so.ca_file = options_.ca_file;
  so.limiter = &limiter_;
  so.connections = &connections_;
  so.env = env_;
  so.state_dir = options_.state_dir;
  ctx->held = DbHeldContent(db_);
  so.held = &ctx->held;
  SA_ASSIGN_OR_RETURN(so.authorization, ResolveAuthorization(repo));
  ctx->urls = repo.source->urls();
  return Status::OK();
}

Status SyncEngine::Poll(const RepoConfig& repo, RunContext* ctx) {
  SA_RETURN_IF_ERROR(PrepareSources(repo, ctx));
  const SourceOptions& so = ctx->source_options;
  const RepoPassState* pass_state = KnownState(ctx->repo);
  std::vector<SourceHealthRow> known;
  if (pass_state != nullptr) {
    known = pass_state->health;
  } else if (!pass_) {
    SA_ASSIGN_OR_RETURN(known, db_->SourceHealth(ctx->repo));
  }
  for (const std::string& url : ctx->urls) ctx->health[url].url = url;
  for (SourceHealthRow& row : known) {
    if (ctx->health.count(row.url)) ctx->health[row.url] = std::move(row);
  }
  // The healthiest source first: those that failed last time go last, the
  // faster before the slower, else the configured order.
  std::vector<std::string> order = ctx->urls;
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    const SourceHealthRow& ha = ctx->health[a];
    const SourceHealthRow& hb = ctx->health[b];
    if ((ha.consecutive_errors > 0) != (hb.consecutive_errors > 0))
      return hb.consecutive_errors > 0;
    return ha.throughput_bps > hb.throughput_bps;
  });

  // Each poll holds one of connections_total while it runs.
  if (!budget_.Acquire(&ctx->stop)) return Status::Cancelled("poll " + ctx->repo, "stop requested");
  struct Release {
    ConnectionBudget* budget;
    ~Release() { budget->Release(); }
  } release{&budget_};
  // The first source that answers wins; the others are fallbacks.
  Status last_error;
  for (const std::string& url : order) {
    auto source = factory_(repo, url, so);
    if (!source.ok()) {
      last_error = source.status();
      continue;
    }
    std::optional<PollState> prev;
    if (pass_state != nullptr) {
      for (const auto& [source, state] : pass_state->polls) {
        if (source == url) prev = state;
      }
    } else if (!pass_) {
      SA_ASSIGN_OR_RETURN(prev, db_->GetPollState(ctx->repo, url));
    }
    PollValidators validators;
    // Pinned, the last poll may have seen a revision that is held but not
    // served: still the last thing seen, so still worth a conditional poll.
    bool have_prev = prev.has_value() && !ctx->active_revision.empty() &&
                     (prev->revision == ctx->active_revision ||
                      (ctx->pin && ctx->mirror->HasTree(ctx->repo, prev->revision)));
    if (have_prev) validators = {prev->etag, prev->last_modified, prev->pointer_sha256};
    auto fetched = (*source)->Poll(have_prev ? &validators : nullptr);
    NotePoll(&ctx->health[url], fetched.status());
    if (!fetched.ok()) {
      if (fetched.status().IsCancelled()) return fetched.status();
      if (order.size() > 1) {
        LogWarning("source failed, trying the next",
                   {{"repo", ctx->repo}, {"source", url}, {"error", fetched.status().ToString()}});
      }
      last_error = fetched.status();
      continue;
    }
    ctx->source = std::move(source).value();
    ctx->source_url = url;
    ctx->poll = std::move(fetched).value();
    break;
  }
  if (!ctx->source) {
    if (order.size() > 1) {
      return last_error.WithContext("no source of " + ctx->repo + " answered; last error");
    }
    return last_error;
  }
  return Status::OK();
}

void SyncEngine::FindMirrors(const RepoConfig& repo, RunContext* ctx) {
  std::vector<SourceHealthRow> usable = {ctx->health[ctx->source_url]};
  for (const std::string& url : ctx->urls) {
    if (url == ctx->source_url || ctx->stop.load()) continue;
    // The source must serve the same revision with the same content.
    auto poll = [&]() -> Result<PollResult> {
      SA_ASSIGN_OR_RETURN(auto source, factory_(repo, url, ctx->source_options));
      return source->Poll(nullptr);
    }();
    NotePoll(&ctx->health[url], poll.status());
    if (!poll.ok()) {
      LogWarning("source not used for this run",
                 {{"repo", ctx->repo}, {"source", url}, {"error", poll.status().ToString()}});
      continue;
    }
    if (poll->revision != ctx->poll.revision || poll->fingerprint != ctx->poll.fingerprint) {
      // Never mixed in: its files may belong to another revision.
      LogInfo("source serves another revision; not used for this run",
              {{"repo", ctx->repo},
               {"source", url},
               {"serves", poll->revision},
               {"syncing", ctx->poll.revision}});
      continue;
    }
    usable.push_back(ctx->health[url]);
  }
  SourceOptions so = ctx->source_options;
  SourceFactory factory = factory_;
  const Source* primary = ctx->source.get();
  const std::string primary_url = ctx->source_url;
  ctx->sources = std::make_unique<SourceSet>(
      usable,
      [factory, so, primary, primary_url,
       &repo](const std::string& url) -> Result<std::unique_ptr<Source>> {
        // The polled source knows the revision being synced: its forks serve it.
        if (url == primary_url) return primary->Fork();
        return factory(repo, url, so);
      },
      options_.retry);
}

std::vector<SourceHealthRow> SyncEngine::HealthRows(RunContext* ctx) {
  if (ctx->sources) {
    for (SourceHealthRow& row : ctx->sources->Snapshot()) ctx->health[row.url] = std::move(row);
  }
  std::vector<SourceHealthRow> rows;
  for (auto& [url, row] : ctx->health) rows.push_back(row);
  return rows;
}

void SyncEngine::SaveHealth(RunContext* ctx) {
  if (ctx->health.empty()) return;
  Status s = db_->SaveSourceHealth(ctx->repo, HealthRows(ctx));
  if (!s.ok()) {
    LogWarning("could not record source health", {{"repo", ctx->repo}, {"error", s.ToString()}});
  }
}

// KillPoint names a test-only SIGKILL point (common/base/kill_point.h) for the
// kill matrix; each says which stage is done and which is not.
Status SyncEngine::RunStages(const RepoConfig& repo, RunContext* ctx) {
  SA_RETURN_IF_ERROR(Poll(repo, ctx));
  KillPoint("polled");

  // Unchanged: in a pass, old revisions are collected once at its end (EndPass).
  if (ctx->poll.not_modified) {
    ctx->unchanged = true;
    if (!pass_) CollectOrWarn(ctx->repo, ctx->active_revision);
    return Status::OK();
  }
  PollState poll{ctx->poll.validators.etag, ctx->poll.validators.last_modified, ctx->poll.revision,
                 ctx->poll.validators.digest};
  if (ctx->poll.revision == ctx->active_revision &&
      ctx->mirror->HasTree(ctx->repo, ctx->active_revision)) {
    ctx->unchanged = true;
    ctx->record_poll = poll;
    if (!pass_) CollectOrWarn(ctx->repo, ctx->active_revision);
    return Status::OK();
  }
  if (ctx->pin && ctx->mirror->HasTree(ctx->repo, ctx->poll.revision)) {
    // Pinned, and the origin's revision is held already: nothing to do
    // until unpinned.
    SA_ASSIGN_OR_RETURN(auto held, db_->GetRevision(ctx->repo, ctx->poll.revision));
    if (held && held->state == RevisionState::kRetained) {
      ctx->unchanged = true;
      ctx->record_poll = poll;
      ctx->held_back = ctx->poll.revision;
      return Status::OK();
    }
  }

  // From here on the run may write: it is recorded as running first, so
  // that one killed part way is found and closed as interrupted.
  SA_RETURN_IF_ERROR(BeginRecording(ctx));
  UpdateSlot slot(this, &ctx->stop);
  if (!slot.held()) return Status::Cancelled("sync " + ctx->repo, "stop requested");

  // The manifest: checked by the source and validated before any disk write.
  SA_ASSIGN_OR_RETURN(RevisionListing listing, ctx->source->FetchRevision(ctx->poll));
  if (listing.manifest.repo != repo.name || listing.manifest.revision != ctx->poll.revision) {
    return Status::InvalidArgument("manifest from " + ctx->source_url,
                                   "describes " + listing.manifest.repo + " revision " +
                                       listing.manifest.revision + ", expected " + repo.name +
                                       " revision " + ctx->poll.revision);
  }
  ctx->manifest = std::move(listing.manifest);
  ctx->manifest_sha256 = std::move(listing.manifest_sha256);
  // Signatures and rollback protection, before anything is recorded or fetched.
  SA_RETURN_IF_ERROR(CheckTrust(repo, ctx));
  SA_ASSIGN_OR_RETURN(
      int64_t revision_id,
      db_->RecordRevision(ctx->repo, ctx->manifest, ctx->manifest_sha256, ctx->source_url));
  SA_RETURN_IF_ERROR(db_->SetRevisionSignatures(revision_id, ctx->signatures, ctx->signed_by));
  FindMirrors(repo, ctx);

  // Plan and check space before transferring anything.
  ctx->plan = PlanSync(ctx->manifest, *ctx->store);
  uint64_t have_partial = 0;
  for (const ObjectFetch& f : ctx->plan.fetches) {
    have_partial += PartialBytesHeld(ctx->store, f.sha256, f.size);
  }
  uint64_t need = ctx->plan.bytes_to_fetch - have_partial;
  auto free_space = env_->FreeSpace(options_.state_dir);
  if (free_space.ok() && need + kFreeSpaceMargin > *free_space) {
    return Status::NoSpace("sync " + ctx->repo + " revision " + ctx->manifest.revision,
                           "needs " + FormatBytes(need) + " more in " + options_.state_dir +
                               " but only " + FormatBytes(*free_space) +
                               " are free; free space or move state_dir");
  }
  LogInfo("syncing", {{"repo", ctx->repo},
                      {"revision", ctx->manifest.revision},
                      {"files", std::to_string(ctx->manifest.files.size())},
                      {"to_download", FormatBytes(ctx->plan.bytes_to_fetch)},
                      {"reused", FormatBytes(ctx->plan.bytes_reused)}});
  ctx->counters.bytes_reused = ctx->plan.bytes_reused;
  ctx->counters.files_reused = ctx->plan.files_reused;
  KillPoint("planned");

  SA_RETURN_IF_ERROR(Transfer(ctx));
  KillPoint("transferred");
  if (options_.cancel && options_.cancel->load()) {
    return Status::Cancelled("sync " + ctx->repo, "stop requested");
  }
  // The names the Hub API will give it, while its contents are at hand.
  SA_ASSIGN_OR_RETURN(auto recorded, db_->GetRevision(ctx->repo, ctx->manifest.revision));
  if (!recorded)
    return Status::NotFound("sync " + ctx->repo, "the revision vanished from the database");
  SA_RETURN_IF_ERROR(RecordHubIds(db_, ctx->store, *recorded));
  KillPoint("hub-ids");

  // Assemble beside the served revision, then swap.
  AssembleStats stats;
  ObjectStore* store = ctx->store;
  SA_RETURN_IF_ERROR(ctx->mirror->Assemble(
      ctx->repo, ctx->manifest, [store](const std::string& sha) { return store->ObjectAt(sha); },
      &stats));
  if (stats.copied > 0) {
    LogInfo(
        "some files were copied instead of hard-linked (executable, another file system or one "
        "without hard links)",
        {{"repo", ctx->repo}, {"copied", std::to_string(stats.copied)}});
  }
  if (stats.renewed > 0) {
    LogWarning("objects at the file system's hard-link limit were copied afresh in the store",
               {{"repo", ctx->repo}, {"renewed", std::to_string(stats.renewed)}});
  }
  if (options_.cancel && options_.cancel->load()) {
    ctx->mirror->RemoveTree(ctx->repo, ctx->manifest.revision);
    return Status::Cancelled("sync " + ctx->repo, "stop requested");
  }
  KillPoint("assembled");
  {
    // The pin is read again under the lock that `sync-agent pin` takes: a
    // pin made while this run transferred holds.
    SwapLock swap_lock;
    SA_RETURN_IF_ERROR(swap_lock.Acquire(options_.state_dir));
    SA_ASSIGN_OR_RETURN(ctx->pin, db_->GetPin(ctx->repo));
    if (ctx->pin && ctx->pin->revision != ctx->manifest.revision) {
      SA_RETURN_IF_ERROR(
          db_->SetRevisionState(ctx->repo, ctx->manifest.revision, RevisionState::kRetained));
      ctx->held_back = ctx->manifest.revision;
    } else {
      SA_RETURN_IF_ERROR(ctx->mirror->Swap(ctx->repo, ctx->manifest.revision));
      KillPoint("swap-done");  // served, the database not yet told (Reconcile, status)
      SA_RETURN_IF_ERROR(db_->ActivateRevision(ctx->repo, ctx->manifest.revision, NowMs()));
      KillPoint("activated");
    }
  }
  SA_RETURN_IF_ERROR(db_->SetPollState(ctx->repo, ctx->source_url, poll));
  KillPoint("poll-state");

  CollectOrWarn(ctx->repo, ctx->held_back.empty() ? ctx->manifest.revision : ctx->active_revision);
  KillPoint("collected");
  return Status::OK();
}

Status SyncEngine::LoadPin(RunContext* ctx) {
  if (pass_) {
    const RepoPassState* known = KnownState(ctx->repo);
    if (known == nullptr || !known->pin) return Status::OK();  // a pin made mid-pass: at the swap
  }
  // Re-read under the swap lock: the pass's snapshot may be older than an unpin.
  SA_ASSIGN_OR_RETURN(std::string swapped,
                      ApplyPin(env_, db_, {options_.mirror_root, options_.state_dir}, ctx->repo));
  if (!swapped.empty()) {
    LogWarning("served the pinned revision, which the served link did not name",
               {{"repo", ctx->repo}, {"revision", swapped}, {"was", ctx->active_revision}});
    ctx->active_revision = swapped;
  }
  SA_ASSIGN_OR_RETURN(ctx->pin, db_->GetPin(ctx->repo));
  return Status::OK();
}

Result<SyncEngine::RepairResult> SyncEngine::Repair(const RepoConfig& repo,
                                                    const std::vector<VerifyProblem>& problems) {
  RunContext ctx(options_.cancel);
  ctx.repo = repo.local_name();
  ObjectStore store(env_, options_.state_dir);
  MirrorTree mirror(env_, options_.mirror_root);
  SA_RETURN_IF_ERROR(store.Init());
  RepairResult out;
  std::set<std::string> suspects;   // contents the store may hold wrong
  std::set<std::string> revisions;  // trees to rebuild
  for (const VerifyProblem& p : problems) {
    if (p.repo != ctx.repo) continue;
    out.problems++;
    if (!p.sha256.empty()) suspects.insert(p.sha256);
    if (!p.revision.empty()) revisions.insert(p.revision);
  }
  // A stored object that does not hash to its name is removed; trees keep
  // their inode until they are rebuilt below.
  for (const std::string& sha : suspects) {
    const std::string path = store.ObjectPath(sha);
    if (!env_->Lstat(path).ok()) continue;
    auto digest = HashFile(env_, path);
    if (digest.ok() && digest->sha256 == sha) continue;
    LogWarning("removing a damaged object from the store", {{"repo", ctx.repo}, {"object", path}});
    SA_RETURN_IF_ERROR(store.Remove(sha));
  }
  // Everything the rebuilt revisions list must be in the store: fetch what is not.
  std::map<std::string, Manifest> manifests;
  std::map<std::string, ContentRef> refetch;
  std::map<std::string, std::string> refetch_xxh3;
  for (const std::string& revision : revisions) {
    SA_ASSIGN_OR_RETURN(auto row, db_->GetRevision(ctx.repo, revision));
    if (!row) {
      return Status::NotFound("repair " + ctx.repo,
                              "revision " + revision + " is not in the database");
    }
    Manifest& m = manifests[revision];
    m.repo = repo.name;
    m.revision = revision;
    m.created = row->created;
    m.provenance = row->provenance;
    SA_ASSIGN_OR_RETURN(auto files, db_->RevisionFiles(row->id));
    for (const FileRow& f : files) {
      ManifestEntry e;
      e.path = f.path;
      e.size = f.size;
      e.mode = f.mode;
      e.sha256 = f.sha256;
      e.xxh3_128 = f.xxh3_128;
      e.provenance = f.provenance;
      if (!store.Has(f.sha256, f.size) && !refetch.count(f.sha256)) {
        refetch[f.sha256] = ContentOf(m, e);
        refetch_xxh3[f.sha256] = f.xxh3_128;
      }
      m.files.push_back(std::move(e));
    }
  }
  if (!refetch.empty()) SA_RETURN_IF_ERROR(PrepareSources(repo, &ctx));
  for (const auto& [sha, ref] : refetch) {
    Status last;
    bool fetched = false;
    for (const std::string& url : ctx.urls) {
      if (options_.cancel && options_.cancel->load()) {
        return Status::Cancelled("repair " + ctx.repo, "stop requested");
      }
      auto source = factory_(repo, url, ctx.source_options);
      if (!source.ok()) {
        last = source.status();
        continue;
      }
      ObjectDownload dl(&store, {sha, refetch_xxh3[sha], ref.size},
                        (*source)->ContentLocation(ref) + " (" + ref.path + ")");
      Status st = (*source)->FetchContent(ref, 0, &dl);
      if (st.ok()) st = dl.Finish();
      if (st.ok()) {
        SA_RETURN_IF_ERROR(db_->PutObject({sha, dl.digest().xxh3_128, ref.size}));
        out.contents_fetched++;
        out.bytes_fetched += dl.bytes_written();
        fetched = true;
        break;
      }
      last = st;
    }
    if (!fetched) {
      return last.WithContext("repair " + ctx.repo + ": no source gave " + ref.path + " (" + sha +
                              ") of revision " + ref.revision);
    }
  }
  // Rebuild each revision beside its tree and put it in its place in one
  // step; the served link is made again if it was lost.
  SA_ASSIGN_OR_RETURN(auto active, db_->ActiveRevision(ctx.repo));
  for (const auto& [revision, m] : manifests) {
    AssembleStats stats;
    SA_RETURN_IF_ERROR(mirror.Assemble(
        ctx.repo, m, [&store](const std::string& sha) { return store.ObjectAt(sha); }, &stats));
    auto linked = mirror.ActiveRevision(ctx.repo);
    if (active && active->revision == revision && (!linked.ok() || *linked != revision)) {
      SA_RETURN_IF_ERROR(mirror.Swap(ctx.repo, revision));
    }
    out.rebuilt.push_back(revision);
  }
  return out;
}

Status SyncEngine::CheckTrust(const RepoConfig& repo, RunContext* ctx) {
  const std::string revision = ctx->manifest.revision;
  auto fetched = ctx->source->FetchRevisionSignatures(ctx->poll);
  std::optional<std::string> doc;
  if (fetched.ok()) {
    doc = std::move(fetched).value();
  } else if (fetched.status().code() != Status::Code::kUnsupported || !repo.trusted_keys.empty()) {
    // A source that fails to answer is not a source that has none.
    return fetched.status();
  }
  ctx->signatures = doc.value_or("");
  if (repo.trusted_keys.empty()) return Status::OK();

  SA_ASSIGN_OR_RETURN(auto trusted, ParseTrustedKeys(repo.trusted_keys, "[[repo]] " + repo.name));
  RevisionStatement statement{ctx->manifest.repo, revision, ctx->manifest_sha256,
                              ctx->manifest.created};
  SA_ASSIGN_OR_RETURN(SignatureVerdict verdict,
                      VerifyRevisionSignatures(doc, statement, trusted,
                                               ctx->source->RevisionSignaturesLocation(revision)));
  ctx->signed_by = verdict.key;

  // Rollback protection: never an older revision than the one served, by
  // the creation time its signature vouches for, unless the operator says so.
  if (ctx->active_revision.empty() || ctx->active_revision == revision) return Status::OK();
  SA_ASSIGN_OR_RETURN(auto active, db_->GetRevision(ctx->repo, ctx->active_revision));
  if (!active) return Status::OK();
  SystemTime active_created;
  SystemTime new_created;
  if (!ParseIsoTime(active->created, &active_created) ||
      !ParseIsoTime(ctx->manifest.created, &new_created) || new_created >= active_created) {
    return Status::OK();
  }
  if (repo.accept_rollback_to == revision) {
    LogWarning("activating an older revision, as accept_rollback_to allows",
               {{"repo", ctx->repo},
                {"revision", revision},
                {"created", ctx->manifest.created},
                {"active", ctx->active_revision},
                {"active_created", active->created}});
    return Status::OK();
  }
  return Status::InvalidArgument(
      ctx->repo + " revision " + revision + " is a rollback",
      "it was created " + ctx->manifest.created + ", before the active revision " +
          ctx->active_revision + " (created " + active->created + "); " + ctx->source_url +
          " may be replaying an old revision. Nothing was changed. If the origin really went "
          "back, set accept_rollback_to = " +
          JsonQuote(revision) + " in this [[repo]]");
}

void SyncEngine::CollectOrWarn(const std::string& repo, const std::string& keep_target) {
  // Unchanged runs collect too: a run killed after its swap left the old
  // revisions and objects behind, and nothing else would remove them before
  // the next update. (Database queries and one directory listing.)
  if (keep_target.empty()) return;
  Status cs = Collect(repo, keep_target);
  if (!cs.ok()) {
    // The revision is live; a failed clean-up is retried next run.
    LogWarning("could not collect old revisions", {{"repo", repo}, {"error", cs.ToString()}});
  }
}

Result<std::vector<LocalCandidate>> SyncEngine::Candidates(RunContext* ctx,
                                                           const ManifestEntry& entry) {
  // The same path in the served and retained revisions (newest first), then
  // the same file name anywhere in the served one (a renamed directory).
  if (!ctx->candidates_loaded) {
    ctx->candidates_loaded = true;
    SA_ASSIGN_OR_RETURN(auto revisions, db_->ListRevisions(ctx->repo));
    std::sort(revisions.begin(), revisions.end(), [](const RevisionRow& a, const RevisionRow& b) {
      if ((a.state == RevisionState::kActive) != (b.state == RevisionState::kActive)) {
        return a.state == RevisionState::kActive;
      }
      return a.activated_at_ms > b.activated_at_ms;
    });
    for (const RevisionRow& r : revisions) {
      if (r.state != RevisionState::kActive && r.state != RevisionState::kRetained) continue;
      SA_ASSIGN_OR_RETURN(auto files, db_->RevisionFiles(r.id));
      for (const FileRow& f : files) {
        ctx->by_path[f.path].push_back({f.sha256, "the same path in revision " + r.revision});
        if (r.state == RevisionState::kActive) {
          std::string name = f.path.substr(f.path.rfind('/') + 1);
          ctx->by_name[name].push_back({f.sha256, f.path + " in revision " + r.revision});
        }
      }
    }
  }
  std::vector<LocalCandidate> out;
  auto add = [&](const std::vector<LocalCandidate>* list) {
    if (list == nullptr) return;
    for (const LocalCandidate& c : *list) {
      bool seen = std::any_of(out.begin(), out.end(),
                              [&](const LocalCandidate& o) { return o.sha256 == c.sha256; });
      if (!seen && c.sha256 != entry.sha256) out.push_back(c);
    }
  };
  auto p = ctx->by_path.find(entry.path);
  add(p == ctx->by_path.end() ? nullptr : &p->second);
  auto n = ctx->by_name.find(entry.path.substr(entry.path.rfind('/') + 1));
  add(n == ctx->by_name.end() ? nullptr : &n->second);
  return out;
}

Status SyncEngine::Transfer(RunContext* ctx) {
  const std::vector<ObjectFetch>& fetches = ctx->plan.fetches;
  if (fetches.empty()) return Status::OK();
  // Local candidates come from the database: read them here, on one thread.
  std::vector<std::vector<LocalCandidate>> candidates;
  for (const ObjectFetch& f : fetches) {
    SA_ASSIGN_OR_RETURN(auto c, Candidates(ctx, ctx->manifest.files[f.entry]));
    candidates.push_back(std::move(c));
  }
  TransferProgress progress(ctx->repo, ctx->plan.bytes_to_fetch, options_.progress_on_terminal,
                            options_.progress_interval);
  std::mutex mu;  // db_, ctx->counters, ctx->outcomes, first_error
  Status first_error;
  std::atomic<size_t> next{0};

  // Several files at once (the largest first), each with its own connection;
  // large files take more connections for their chunks.
  auto work = [&](bool primary) {
    std::unique_ptr<Source> own;
    Source* source = primary ? ctx->source.get() : nullptr;
    while (!ctx->stop.load()) {
      const size_t i = next.fetch_add(1);
      if (i >= fetches.size()) return;
      const ObjectFetch& f = fetches[i];
      const ManifestEntry& entry = ctx->manifest.files[f.entry];
      if (source == nullptr) {
        own = ctx->source->Fork();
        source = own.get();
      }
      ContentClaim claim(this, f.sha256, &ctx->stop);
      if (!claim.held()) return;  // stopped
      if (ctx->store->SizeOf(f.sha256).has_value()) {
        // Another repository's run stored it while this one waited.
        std::lock_guard<std::mutex> lock(mu);
        ctx->counters.bytes_reused += f.size;
        ctx->counters.files_reused++;
        progress.Add(f.size);
        continue;
      }
      const ContentRef content = ContentOf(ctx->manifest, entry);
      std::string origin = source->ContentLocation(content);
      uint64_t last_recorded = 0;
      std::atomic<uint64_t> counted{0};
      PartialTransfer partial{f.sha256, origin, f.size, 0, 0};
      ObjectFetcherOptions fo;
      fo.cancel = &ctx->stop;
      fo.progress = [&](uint64_t on_disk) {
        if (on_disk - last_recorded >= kProgressRecordBytes) {
          last_recorded = on_disk;
          partial.bytes_received = on_disk;
          partial.updated_at_ms = NowMs();
          std::lock_guard<std::mutex> lock(mu);
          db_->UpsertPartial(partial);
        }
      };
      fo.on_bytes = [&](uint64_t n) {
        counted.fetch_add(n);
        progress.Add(n);
      };
      fo.sources = ctx->sources.get();
      fo.budget = &budget_;
      fo.connections_per_file = options_.connections_per_file;
      fo.retry = options_.retry;
      ObjectFetcher fetcher(ctx->store, source, ctx->repo, std::move(fo));
      auto got = fetcher.Fetch(f, entry, content, candidates[i]);
      // Content built from local bytes counts as done too.
      if (got.ok() && counted.load() < f.size) progress.Add(f.size - counted.load());

      std::lock_guard<std::mutex> lock(mu);
      if (!got.ok()) {
        partial.bytes_received = PartialBytesHeld(ctx->store, f.sha256, f.size);
        partial.updated_at_ms = NowMs();
        if (partial.bytes_received > 0) db_->UpsertPartial(partial);
        // The first failure is the run's; the others stop because of it.
        if (first_error.ok()) {
          first_error = got.status().WithContext(ctx->repo + " " + JsonQuote(f.first_path));
        }
        ctx->stop.Cancel();
        return;
      }
      const FetchOutcome& o = *got;
      ctx->counters.bytes_downloaded += o.bytes_fetched;
      ctx->counters.files_downloaded++;
      if (!ctx->active_revision.empty()) {  // a first sync changes nothing
        ctx->counters.changed_bytes += f.size;
        ctx->counters.changed_bytes_reused += o.bytes_reused;
      }
      if (o.method != FetchMethod::kWhole) {
        LogInfo("built from local content", {{"repo", ctx->repo},
                                             {"path", f.first_path},
                                             {"method", FetchMethodName(o.method)},
                                             {"fetched", FormatBytes(o.bytes_fetched)},
                                             {"reused", FormatBytes(o.bytes_reused)},
                                             {"of", FormatBytes(f.size)}});
      }
      ctx->outcomes.emplace(f.sha256, o);
      Status s = db_->PutObject({f.sha256, o.xxh3_128.empty() ? f.xxh3_128 : o.xxh3_128, f.size});
      if (s.ok()) s = db_->RemovePartial(f.sha256);
      if (!s.ok()) {
        if (first_error.ok()) first_error = s;
        ctx->stop.Cancel();
        return;
      }
    }
  };
  const size_t files_at_once =
      std::min<size_t>({kMaxFilesAtOnce, fetches.size(),
                        static_cast<size_t>(std::max(1, options_.connections_total))});
  std::vector<std::thread> threads;
  for (size_t t = 1; t < files_at_once; ++t) threads.emplace_back(work, false);
  work(true);
  for (auto& t : threads) t.join();
  if (!first_error.ok()) {
    if (first_error.IsCancelled() && options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled("sync " + ctx->repo, "stop requested");
    }
    return first_error;
  }
  if (ctx->stop.load()) return Status::Cancelled("sync " + ctx->repo, "stop requested");
  return Status::OK();
}

std::vector<RunFileRow> SyncEngine::RunFiles(const RunContext& ctx) {
  std::vector<RunFileRow> rows;
  std::unordered_set<std::string> attributed;  // contents whose fetch is on a row already
  for (const ManifestEntry& e : ctx.manifest.files) {
    RunFileRow row{e.path, e.sha256, e.size, "reuse", "", 0, e.size, ""};
    auto it = ctx.outcomes.find(e.sha256);
    if (it != ctx.outcomes.end() && attributed.insert(e.sha256).second) {
      const FetchOutcome& o = it->second;
      row.method = FetchMethodName(o.method);
      row.basis_sha256 = o.basis_sha256;
      row.bytes_fetched = o.bytes_fetched;
      row.bytes_reused = o.bytes_reused;
      row.note = o.note;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Status SyncEngine::Collect(const std::string& repo, const std::string& keep_target) {
  SA_ASSIGN_OR_RETURN(auto revisions, db_->ListRevisions(repo));
  // Keep the active revision and the most recently activated retained ones.
  std::vector<RevisionRow> live;
  for (const auto& r : revisions) {
    if (r.state == RevisionState::kActive || r.state == RevisionState::kRetained) live.push_back(r);
  }
  std::sort(live.begin(), live.end(), [](const RevisionRow& a, const RevisionRow& b) {
    if (a.state != b.state) return a.state == RevisionState::kActive;
    return a.activated_at_ms > b.activated_at_ms;
  });
  std::unordered_set<std::string> keep;
  for (size_t i = 0; i < live.size() && static_cast<int>(i) < options_.keep_revisions; ++i) {
    keep.insert(live[i].revision);
  }
  keep.insert(keep_target);
  // Pinned: the pinned revision, and the newest fetched, which an unpin
  // serves without fetching it again.
  SA_ASSIGN_OR_RETURN(auto pin, db_->GetPin(repo));
  if (pin) {
    keep.insert(pin->revision);
    const RevisionRow* newest = nullptr;
    for (const RevisionRow& r : live) {
      if (newest == nullptr || r.fetched_at_ms > newest->fetched_at_ms) newest = &r;
    }
    if (newest != nullptr) keep.insert(newest->revision);
  }
  MirrorTree mirror(env_, options_.mirror_root);
  for (const auto& r : revisions) {
    if (keep.count(r.revision) || r.state == RevisionState::kCollected) continue;
    SA_RETURN_IF_ERROR(mirror.RemoveTree(repo, r.revision));
    KillPoint("collect-tree");  // the tree is gone, the database still keeps it
    SA_RETURN_IF_ERROR(db_->SetRevisionState(repo, r.revision, RevisionState::kCollected));
    LogInfo("collected old revision", {{"repo", repo}, {"revision", r.revision}});
  }
  // Trees on disk that the database does not keep (left by a lost database).
  SA_ASSIGN_OR_RETURN(auto trees, mirror.ListTrees(repo));
  for (const auto& t : trees) {
    if (!keep.count(t)) SA_RETURN_IF_ERROR(mirror.RemoveTree(repo, t));
  }
  return pass_ ? Status::OK() : SweepObjects();
}

Status SyncEngine::SweepObjects() {
  ObjectStore store(env_, options_.state_dir);
  SA_ASSIGN_OR_RETURN(auto unreferenced, db_->UnreferencedObjects());
  for (const auto& sha : unreferenced) {
    SA_RETURN_IF_ERROR(store.Remove(sha));
    KillPoint("collect-object");  // the file is gone, the database still lists it
    SA_RETURN_IF_ERROR(db_->RemoveObject(sha));
  }
  return Status::OK();
}

namespace {

bool IsObjectName(const std::string& name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Status SyncEngine::SweepOrphanObjects() {
  SA_ASSIGN_OR_RETURN(std::vector<ObjectRow> rows, db_->AllObjects());
  std::unordered_set<std::string> known;
  known.reserve(rows.size());
  for (ObjectRow& r : rows) known.insert(std::move(r.sha256));
  rows.clear();
  ObjectStore store(env_, options_.state_dir);
  const RootedPath root{options_.state_dir, "objects"};
  auto prefixes = env_->ListDirAt(root);
  if (prefixes.status().IsNotFound()) return Status::OK();
  SA_RETURN_IF_ERROR(prefixes.status());
  uint64_t removed = 0;
  uint64_t bytes = 0;
  for (const DirEntry& d : *prefixes) {
    if (d.name.size() != 2) continue;
    auto names = env_->ListDirAt(root.Child(d.name));
    if (!names.ok()) continue;  // not a directory of ours: verify reports it
    for (const DirEntry& n : *names) {
      if (!IsObjectName(n.name) || n.name.compare(0, 2, d.name) != 0) continue;
      if (known.count(n.name)) continue;
      // Content a revision lists, stored but not recorded: kept for that revision.
      SA_ASSIGN_OR_RETURN(bool listed, db_->IsContentReferenced(n.name));
      if (listed) continue;
      auto info = env_->LstatAt(store.ObjectAt(n.name));
      if (!info.ok() || info->type != FileInfo::Type::kRegular) continue;
      SA_RETURN_IF_ERROR(store.Remove(n.name));
      ++removed;
      bytes += info->size;
    }
  }
  if (removed > 0) {
    LogInfo("removed objects that no database row knows",
            {{"objects", std::to_string(removed)}, {"bytes", FormatBytes(bytes)}});
  }
  return Status::OK();
}

Status SyncEngine::RemoveRepository(const std::string& local_name) {
  MirrorTree mirror(env_, options_.mirror_root);
  // Served view first: once the rows are gone nothing would name the trees.
  SA_RETURN_IF_ERROR(mirror.RemoveRepository(local_name));
  SA_RETURN_IF_ERROR(db_->DeleteRepo(local_name));
  SA_RETURN_IF_ERROR(SweepObjects());
  LogInfo("removed a repository its origin no longer lists (prune_missing)",
          {{"repo", local_name}});
  return Status::OK();
}

}  // namespace sync_agent
