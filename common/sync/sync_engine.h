// SyncEngine: brings one configured repository on this node to the revision
// its source publishes, as a pipeline of stages that each can fail cleanly:
//
//   poll     cheap, conditional: which revision the source serves; stop if unchanged
//   fetch    the revision's manifest, checked by the source and validated
//   plan     per file: reuse from the object store, or download
//   transfer downloads (resuming partial files), hashing while writing
//   verify   size, sha256 and xxh3-128 of every object before it is stored
//   assemble the complete revision tree beside the served one
//   swap     one atomic rename makes it visible
//   record   SQLite: revision, files, run outcome and counters
//   collect  old revisions beyond keep_revisions, unreferenced objects
//
// Whatever fails, the served tree stays exactly the old revision and the run
// is recorded as failed with the reason; downloaded bytes are kept for the
// next run. The caller holds the RunLock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/bandwidth/rate_limiter.h"
#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/config/config.h"
#include "common/db/state_db.h"
#include "common/http/http_client.h"
#include "common/source/source.h"
#include "common/sync/object_fetcher.h"
#include "common/sync/verifier.h"
#include "common/transfer/chunked_download.h"
#include "common/transfer/source_set.h"

namespace sync_agent {

class Env;
class ObjectStore;

struct SyncEngineOptions {
  std::string state_dir;
  std::string mirror_root;
  int keep_revisions = 2;
  std::chrono::milliseconds io_timeout{60000};
  uint64_t low_speed_limit = 1024;  // bytes/s; 0: no minimum rate
  std::chrono::milliseconds low_speed_time{60000};
  ManifestLimits manifest_limits;
  std::string trigger = "once";  // recorded with each run
  const CancelFlag* cancel = nullptr;
  // Transfers (see Config).
  int connections_per_file = 16;
  int connections_total = 32;
  uint64_t bandwidth_limit = 0;
  std::vector<BandwidthWindow> bandwidth_schedule;
  std::string ca_file;
  std::chrono::milliseconds progress_interval{30000};
  bool progress_on_terminal = false;  // draw a status line instead of logging progress
  RetryPolicy retry;
};

// Makes the Source at one of a repository's URLs. Tests inject faulty sources here.
using SourceFactory = std::function<Result<std::unique_ptr<Source>>(
    const RepoConfig& repo, const std::string& url, const SourceOptions&)>;

struct RepoSyncResult {
  RunOutcome outcome = RunOutcome::kFailed;
  Status status;
  std::string from_revision;
  std::string to_revision;
  RunRow counters;
};

class SyncEngine {
 public:
  // env, db must outlive the engine. A null factory means the repository's
  // SourceSpec::Make.
  SyncEngine(Env* env, StateDb* db, SyncEngineOptions options, SourceFactory factory = nullptr);

  ~SyncEngine();

  // Prepares state_dir and mirror_root, removes partial downloads untouched
  // for 7 days or whose object is in the store already, and marks runs left open by a dead process
  // as interrupted.
  Status Init();
  // Syncs one repository; never throws; records the run. May be called
  // from several threads at once.
  RepoSyncResult SyncRepo(const RepoConfig& repo);

  // A pass over many repositories: BeginPass reads what the database knows
  // of every repository at once and does the node-wide housekeeping every
  // run would do (staging left by killed runs, Hub API ids of older
  // revisions). Within a pass, runs that end at their poll are recorded in
  // batched transactions, and unchanged runs leave collection of old
  // revisions to EndPass, which records what is left of the batch.
  // Call both from one thread, around the SyncRepo calls.
  Status BeginPass();
  Status EndPass();
  // Records a failed run of each repository that could not start because
  // the node refused (Init, BeginPass or the run lock failed, e.g. on a
  // planted symlink), so that `status` reports why instead of the last good
  // run. One transaction; best effort.
  void RecordRefusedRuns(const std::vector<const RepoConfig*>& repos, const Status& why);

  // Repairs what a verify found wrong in repo (the problems of other
  // repositories are ignored): removes stored objects that do not hash to
  // their name, fetches every content the affected revisions lack from the
  // repository's sources (verified like any download), rebuilds each
  // affected revision's tree beside it and puts it in place in one atomic
  // step (MirrorTree::Assemble), and restores a lost served link. Served
  // files are never written in place. The caller holds the run lock.
  struct RepairResult {
    uint64_t problems = 0;  // of this repository, all addressed on success
    uint64_t contents_fetched = 0;
    uint64_t bytes_fetched = 0;
    std::vector<std::string> rebuilt;  // revisions whose trees were rebuilt
  };
  Result<RepairResult> Repair(const RepoConfig& repo, const std::vector<VerifyProblem>& problems);

  // Removes a repository from the node (prune_missing): its served link and
  // trees (MirrorTree::RemoveRepository), then its database rows, then the
  // stored objects no remaining revision references; objects other
  // repositories list stay. Killed half way, the next call finishes it. The
  // caller holds the run lock.
  Status RemoveRepository(const std::string& local_name);

 private:
  struct RunContext;
  struct Pass {
    std::map<std::string, RepoPassState> known;  // read-only during the pass
    std::mutex mu;
    std::vector<FinishedRun> finished;  // guarded by mu; not yet written
    // A run went past its poll: the store may have changed, or a killed
    // run's objects may be on disk unrecorded (see SweepOrphanObjects).
    std::atomic<bool> wrote{false};
  };
  // One of the few repositories that may transfer at once, waited for.
  class UpdateSlot {
   public:
    UpdateSlot(SyncEngine* engine, const CancelFlag* cancel);
    ~UpdateSlot();
    bool held() const { return held_; }

   private:
    SyncEngine* engine_;
    bool held_ = false;
  };

  // Contents being fetched by a run of this process, by sha256: two
  // repositories that need the same content at once share one partial
  // file, so the second waits for the first and then finds it stored.
  class ContentClaim {
   public:
    ContentClaim(SyncEngine* engine, const std::string& sha256, const CancelFlag* cancel);
    ~ContentClaim();
    bool held() const { return held_; }

   private:
    SyncEngine* engine_;
    std::string sha256_;
    bool held_ = false;
  };

  Status Reconcile(const std::string& repo, bool clean_staging);
  Status ReconcileInPass(const std::string& repo, RunContext* ctx);
  // Reads the repository's pin into ctx, first serving the pinned revision
  // if the served link names another (see common/sync/pin.h).
  Status LoadPin(RunContext* ctx);
  // Removes files under <state_dir>/objects named as objects that no row of
  // the database knows, neither the objects table nor a revision's files (left by a run killed
  // between storing and recording one, or by a lost database). Only while no run is in flight: a
  // run stores an object before it records it.
  Status SweepOrphanObjects();
  const RepoPassState* KnownState(const std::string& repo) const;
  // Makes the run's sync_runs row, once it goes past its poll.
  Status BeginRecording(RunContext* ctx);
  void AddFinishedRun(FinishedRun run);
  Status FlushFinishedRuns(std::vector<FinishedRun> runs);
  std::vector<SourceHealthRow> HealthRows(RunContext* ctx);
  void BackfillHubIds(const std::string& repo, ObjectStore* store);
  Status ExpirePartials();
  Status RunStages(const RepoConfig& repo, RunContext* ctx);
  Status Poll(const RepoConfig& repo, RunContext* ctx);
  // The options every source of the repository is made with, into ctx.
  Status PrepareSources(const RepoConfig& repo, RunContext* ctx);
  // Fetches the revision's signatures; with trusted_keys, verifies them and
  // refuses a rollback. Fails naming the repository and revision.
  Status CheckTrust(const RepoConfig& repo, RunContext* ctx);
  // The other sources that serve the revision being synced, for transfers.
  void FindMirrors(const RepoConfig& repo, RunContext* ctx);
  void SaveHealth(RunContext* ctx);
  Status Transfer(RunContext* ctx);
  Result<std::vector<LocalCandidate>> Candidates(RunContext* ctx, const ManifestEntry& entry);
  static std::vector<RunFileRow> RunFiles(const RunContext& ctx);
  // Removes repo's revisions beyond keep_revisions and, outside a pass,
  // unreferenced objects (a pass sweeps objects once at its end, when no
  // run can be planning to reuse one).
  Status Collect(const std::string& repo, const std::string& keep_target);
  Status SweepObjects();
  // Collect, with a failure logged (the served revision stays live).
  void CollectOrWarn(const std::string& repo, const std::string& keep_target);

  Env* env_;
  StateDb* db_;
  SyncEngineOptions options_;
  SourceFactory factory_;
  RateLimiter limiter_;      // shared by every transfer of the process
  ConnectionBudget budget_;  // connections_total: polls and transfers
  // Kept-alive connections handed from one repository's sources to the next.
  SharedConnections connections_;
  std::unique_ptr<Pass> pass_;  // set between BeginPass and EndPass
  std::mutex update_mu_;
  std::condition_variable update_cv_;
  int updating_ = 0;                         // guarded by update_mu_
  std::unordered_set<std::string> claimed_;  // guarded by update_mu_ (ContentClaim)
};

}  // namespace sync_agent
