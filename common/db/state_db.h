// StateDb: the node's memory in SQLite. What the node has (revisions, every
// file version with its hashes, objects in the node's object store), where it
// came from (sources and their poll state), and how each run went.
//
// Opening applies the migrations embedded from schema/migrations in one
// transaction each; a database newer than this binary is refused. The
// database runs in WAL mode so `status` can read while a sync writes.
// A StateDb is used by one thread at a time; separate processes may each open
// their own (SQLite's locking with a busy timeout arbitrates).
//
// The tables and their columns are documented in schema/database.md.
// Timestamps the caller does not pass (started_at, fetched_at, stored_at,
// checked_at, updated_at when 0) are taken from the system clock. Methods that
// take a repository name create the repository row if they write and it does
// not exist yet; readers return nothing for an unknown repository. Each write
// method is one transaction: on failure nothing of it was written.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/source_health.h"
#include "common/base/status.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class SqliteDatabase;  // common/db/sqlite.h

enum class RevisionState { kStaged, kActive, kRetained, kCollected };
const char* RevisionStateName(RevisionState s);

struct RevisionRow {
  int64_t id = 0;
  std::string revision;
  std::string manifest_sha256;
  std::string source;   // where the manifest came from
  std::string created;  // from the manifest
  RevisionState state = RevisionState::kStaged;
  int64_t fetched_at_ms = 0;
  int64_t activated_at_ms = 0;  // 0 if never activated
  uint64_t file_count = 0;
  uint64_t total_bytes = 0;
  Provenance provenance;  // from the manifest (e.g. a git commit and tree)
  std::string hub_sha;    // the Hub API's commit id for it; "" until computed (HubIds)
  // (0007) The signature document as the source served it ("" for none),
  // and the trusted key whose signature verified ("" when none was checked).
  std::string signatures;
  std::string signed_by;
};

struct FileRow {
  std::string path;
  uint64_t size = 0;
  uint32_t mode = 0;
  std::string sha256;
  std::string xxh3_128;   // "" when the source gave none (see objects)
  Provenance provenance;  // from the manifest (e.g. the git blob at the path)
  std::string hub_oid;    // the Hub API's blob id; "" until computed (HubIds)
  bool hub_lfs = false;   // the Hub API shows it as a Git LFS file
};

struct ObjectRow {
  std::string sha256;
  std::string xxh3_128;
  uint64_t size = 0;
};

// One repository's part of a `sync-agent verify` (schema 0008).
struct VerificationRow {
  int64_t id = 0;
  std::string repo;  // "" for the object store as a whole
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  bool full = false;  // sha256 rather than size and xxh3
  uint64_t files_checked = 0;
  uint64_t bytes_hashed = 0;
  uint64_t missing = 0;
  uint64_t damaged = 0;
  uint64_t unexpected = 0;
  uint64_t repaired = 0;
  std::string problems;  // the first problems, one per line
};

// What the last poll of a source saw, for conditional requests.
struct PollState {
  std::string etag;
  std::string last_modified;
  std::string revision;        // revision the pointer named
  std::string pointer_sha256;  // sha256 of the pointer bytes
};

// SourceHealthRow (table source_health) is in common/base/source_health.h.

enum class RunOutcome { kRunning, kUnchanged, kUpdated, kFailed, kInterrupted };
const char* RunOutcomeName(RunOutcome o);

struct RunRow {
  int64_t id = 0;
  std::string repo;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;  // 0 while running (or if the process died)
  RunOutcome outcome = RunOutcome::kRunning;
  std::string trigger;        // "once", "daemon", ...
  std::string from_revision;  // active revision when the run started
  std::string to_revision;    // revision activated by the run, if any
  std::string source;         // source used
  uint64_t bytes_downloaded = 0;
  uint64_t bytes_reused = 0;
  uint64_t files_downloaded = 0;
  uint64_t files_reused = 0;
  std::string error;
  // Contents the run had to build, and of those the bytes that came from
  // local content (delta copies, matched blocks): the delta saving.
  uint64_t changed_bytes = 0;
  uint64_t changed_bytes_reused = 0;
  // Consecutive unchanged checks of the same revision from the same source
  // share one row (schema 0009): how many it stands for, and when the first
  // of them started (started_at_ms and finished_at_ms are the latest's).
  uint64_t checks = 1;
  int64_t first_started_at_ms = 0;
};

// A run that ended at its poll (unchanged, or failed before anything was
// fetched): recorded with the other such runs of a pass in one transaction.
struct FinishedRun {
  RunRow row;                           // repo, trigger, times, outcome, source, error
  std::vector<SourceHealthRow> health;  // the repository's sources, as learnt
  std::optional<std::pair<std::string, PollState>> poll_state;  // source url and what it served
};

// What a pass needs to know of one repository before polling it.
// An operator's pin of a repository to one revision (`sync-agent pin`).
struct PinRow {
  std::string revision;
  int64_t pinned_at_ms = 0;
};

struct RepoPassState {
  std::string active_revision;  // "" for none
  std::optional<PinRow> pin;
  std::vector<std::pair<std::string, PollState>> polls;  // by source url
  std::vector<SourceHealthRow> health;
};

// How one file of an updated run was obtained (table run_files).
struct RunFileRow {
  std::string path;
  std::string sha256;
  uint64_t size = 0;
  std::string method;        // "reuse", "delta", "ranges", "whole"
  std::string basis_sha256;  // delta, ranges: the local content used
  uint64_t bytes_fetched = 0;
  uint64_t bytes_reused = 0;
  std::string note;  // why a cheaper method was not used
};

// Sums over a repository's runs, for the saving status shows.
struct SavingTotals {
  uint64_t runs = 0;  // runs that had changed content
  uint64_t changed_bytes = 0;
  uint64_t changed_bytes_reused = 0;
  uint64_t bytes_downloaded = 0;
};

struct PartialTransfer {
  std::string sha256;
  std::string url;
  uint64_t size = 0;            // expected final size
  uint64_t bytes_received = 0;  // as last recorded (the file on disk is the truth)
  int64_t updated_at_ms = 0;
};

// (0010) An organisation glob's last discovery (table org_follows).
struct OrgFollowRow {
  std::string glob;         // "ORG/*" or "datasets/ORG/*"
  std::string listing_url;  // what was asked
  int64_t checked_at_ms = 0;
  int64_t ok_at_ms = 0;  // last success; 0: never
  std::string error;     // "" when the last discovery answered
};

// (0010) A repository an organisation glob follows (table org_repos).
struct OrgRepoRow {
  std::string glob;
  std::string repo;  // as served ("ORG/NAME", "datasets/ORG/NAME")
  std::string name;  // "ORG/NAME"
  int64_t first_seen_ms = 0;
  int64_t missing_since_ms = 0;  // 0 while the origin lists it
};

struct RepoSummary {
  std::string name;
  std::optional<RevisionRow> active;
  std::optional<RunRow> last_run;
  std::optional<RunRow> last_success;          // last run with outcome unchanged or updated
  std::optional<RunRow> last_update;           // last run with outcome updated
  SavingTotals saving;                         // over all updated runs
  std::optional<VerificationRow> last_verify;  // the latest verify of it
  std::vector<SourceHealthRow> sources;        // what the agent learnt of each source
  std::optional<PinRow> pin;                   // set while an operator pins it
  std::string newest_revision;                 // the last one fetched, if not the active one
};

// What every run of a repository added up to (for counters: rows are never
// removed, and merged unchanged checks count once each).
struct RunTotals {
  std::map<std::string, uint64_t> runs;  // by outcome name, "running" excluded
  uint64_t bytes_downloaded = 0;
  uint64_t bytes_reused = 0;
};

class StateDb {
 public:
  ~StateDb();
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;

  // Opens (creating if needed) the database at path and applies pending migrations.
  // The directory must exist (kNotFound naming it otherwise). A file that is not
  // a database fails with kCorruption; a database written by a newer sync-agent
  // (user_version above LatestSchemaVersion()) with kUnsupported, untouched.
  static Result<std::unique_ptr<StateDb>> Open(const std::string& path);
  // Opens an existing database without migrating or writing (for `status`).
  // kNotFound if the file does not exist; kUnsupported if its schema is newer
  // than this binary's or it has none (version 0). One written by an older
  // sync-agent is read from a copy migrated in memory (the file is migrated
  // by the next Open()). Every write method fails.
  static Result<std::unique_ptr<StateDb>> OpenReadOnly(const std::string& path);

  int SchemaVersion() const;
  // The file's own version when OpenReadOnly migrated a copy in memory, else
  // SchemaVersion().
  int OnDiskSchemaVersion() const {
    return on_disk_schema_version_ != 0 ? on_disk_schema_version_ : schema_version_;
  }
  // Changes whenever another connection commits (PRAGMA data_version): a
  // reader keeps what it built from the database until this moves.
  Result<int64_t> DataVersion();
  static int LatestSchemaVersion();

  // Repositories.
  Result<int64_t> EnsureRepo(const std::string& name);
  Result<std::vector<std::string>> RepoNames();

  // Pins (table pins). SetPin replaces any pin of the repository; ClearPin
  // returns the pin it removed, if there was one.
  Result<std::optional<PinRow>> GetPin(const std::string& repo);
  Status SetPin(const std::string& repo, const std::string& revision, int64_t now_ms);
  Result<std::optional<PinRow>> ClearPin(const std::string& repo);

  // Poll state per (repo, source).
  Result<std::optional<PollState>> GetPollState(const std::string& repo, const std::string& source);
  Status SetPollState(const std::string& repo, const std::string& source, const PollState& s);

  // Source health of a repository, in no particular order.
  Result<std::vector<SourceHealthRow>> SourceHealth(const std::string& repo);
  // Replaces the rows of these sources.
  Status SaveSourceHealth(const std::string& repo, const std::vector<SourceHealthRow>& rows);

  // Runs. BeginRun returns the run id; FinishRun sets finished_at, outcome and counters.
  Result<int64_t> BeginRun(const std::string& repo, const std::string& trigger,
                           const std::string& from_revision, int64_t started_at_ms = 0);
  // FinishRun records finished_at (the clock when 0), outcome (not kRunning),
  // to_revision, source, the counters and error; trigger and from_revision keep
  // what BeginRun recorded. kNotFound for an unknown run id.
  Status FinishRun(int64_t run_id, const RunRow& result);
  // Runs left 'running' by a process that died: mark them interrupted, with
  // reason as their error; finished_at stays unset. Call only while holding the
  // agent's lock, so that no other process has a run in progress.
  Status CloseAbandonedRuns(const std::string& reason);
  // Newest first (by id, i.e. start order); limit <= 0 means all.
  Result<std::vector<RunRow>> RecentRuns(const std::string& repo, int limit);
  // Replaces the run's file rows with these (one transaction).
  Status RecordRunFiles(int64_t run_id, const std::vector<RunFileRow>& files);
  // Sorted by path.
  Result<std::vector<RunFileRow>> RunFiles(int64_t run_id);
  // Totals over the repository's updated runs.
  Result<SavingTotals> Saving(const std::string& repo);

  // Revisions. RecordRevision inserts the revision (state staged) and all its
  // files in one transaction; recording the same revision again is a no-op
  // that returns the existing id, except that a collected revision becomes
  // staged again (its objects are wanted again). Recording a revision id again
  // with a different manifest_sha256 fails with kCorruption; a manifest whose
  // repo is set and differs from repo fails with kInvalidArgument.
  Result<int64_t> RecordRevision(const std::string& repo, const Manifest& manifest,
                                 const std::string& manifest_sha256, const std::string& source);
  // The Hub API's names for a revision and its files (schema 0006), computed
  // at sync: the revision's hub_sha and, by path, each file's blob id and
  // whether it is shown as Git LFS. One transaction; kNotFound for an
  // unknown revision id.
  struct HubFileId {
    std::string path;
    std::string oid;
    bool lfs = false;
  };
  Status SetHubIds(int64_t revision_id, const std::string& hub_sha,
                   const std::vector<HubFileId>& files);
  // The revision's signature document and the key that verified it (either
  // may be ""), as fetched before its objects (schema 0007). kNotFound for
  // an unknown revision id.
  Status SetRevisionSignatures(int64_t revision_id, const std::string& signatures,
                               const std::string& signed_by);
  // Makes revision the active one (sets activated_at); the previously active
  // one becomes retained. One transaction. Activating the active revision is a
  // no-op; a collected one is refused (kInvalidArgument); an unknown one kNotFound.
  Status ActivateRevision(const std::string& repo, const std::string& revision, int64_t now_ms);
  // Any state but kActive (use ActivateRevision); the active revision cannot be
  // collected. kNotFound for an unknown revision.
  Status SetRevisionState(const std::string& repo, const std::string& revision,
                          RevisionState state);
  Result<std::optional<RevisionRow>> GetRevision(const std::string& repo,
                                                 const std::string& revision);
  Result<std::optional<RevisionRow>> ActiveRevision(const std::string& repo);
  // Newest first (by fetched_at, then id).
  Result<std::vector<RevisionRow>> ListRevisions(const std::string& repo);
  // Sorted by path. kNotFound for an unknown revision id.
  Result<std::vector<FileRow>> RevisionFiles(int64_t revision_id);

  // The node's object store index. PutObject inserts or updates (keeping the
  // first stored_at); removing an absent object or partial is not an error.
  Status PutObject(const ObjectRow& object);
  Result<std::optional<ObjectRow>> GetObject(const std::string& sha256);
  // True if a file of a revision not collected lists the content.
  Result<bool> IsContentReferenced(const std::string& sha256);
  // RunTotals of every repository, by name, in one query.
  Result<std::map<std::string, RunTotals>> AllRunTotals();
  Status RemoveObject(const std::string& sha256);
  // A stored object that a file of some revision was listed with under this
  // git blob id (provenance "blob", not a Git LFS pointer), or nullopt.
  Result<std::optional<ObjectRow>> FindObjectByBlob(const std::string& blob);
  // Objects that no revision in state staged, active or retained references.
  Result<std::vector<std::string>> UnreferencedObjects();
  Result<std::vector<ObjectRow>> AllObjects();

  // Verifications (schema 0008). The latest of a repository, and its latest
  // full one (nullopt when there is none).
  Result<int64_t> RecordVerification(const VerificationRow& row);
  Result<std::optional<VerificationRow>> LastVerification(const std::string& repo, bool full_only);

  // Partial downloads that can be resumed.
  Status UpsertPartial(const PartialTransfer& p);
  Result<std::optional<PartialTransfer>> GetPartial(const std::string& sha256);
  Status RemovePartial(const std::string& sha256);
  Result<std::vector<PartialTransfer>> ListPartials();

  // Organisation globs (schema 0010; implemented in state_db_orgs.cc).
  // Every glob's last discovery, sorted by glob.
  Result<std::vector<OrgFollowRow>> OrgFollows();
  // The repositories globs follow, sorted by glob and repo.
  Result<std::vector<OrgRepoRow>> OrgRepos();
  // Records a discovery of follow.glob (the row replaced; a failed one, with
  // follow.error set, keeps the previous ok_at_ms) and, when repos is not
  // null, replaces the glob's followed repositories by *repos. One
  // transaction.
  Status SaveOrgDiscovery(const OrgFollowRow& follow, const std::vector<OrgRepoRow>* repos);
  // Forgets every glob not in globs, with its followed rows (their
  // repositories stay, as unconfigured ones).
  Status ForgetOrgFollowsExcept(const std::vector<std::string>& globs);
  // Deletes the repository and everything recorded of it (revisions, files,
  // runs, poll state, health, verifications, followed rows). Objects stay
  // in the objects table until collected (UnreferencedObjects). Unknown: OK.
  Status DeleteRepo(const std::string& name);

  // Everything `status` shows, per repository known to the database, sorted by
  // name, read from one consistent snapshot.
  Result<std::vector<RepoSummary>> Summaries();
  // The same figures written into the summaries find returns (by name;
  // null: not wanted), so that a caller with its own records of thousands
  // of repositories needs no second copy of them.
  Status FillSummaries(const std::function<RepoSummary*(const std::string& name)>& find);

  // Passes over many repositories (schema 0009). Every repository's active
  // revision, poll state and source health, in three queries.
  Result<std::map<std::string, RepoPassState>> LoadPassState();
  // Records runs that ended at their poll, in one transaction. An unchanged
  // run that follows an unchanged run of the same revision from the same
  // source is merged into that row (checks + 1).
  Status RecordFinishedRuns(const std::vector<FinishedRun>& runs);
  // Active and retained revisions that have no Hub API ids yet (older
  // databases), of every repository, with the repository's name.
  Result<std::vector<std::pair<std::string, RevisionRow>>> RevisionsWithoutHubIds();
  // Repositories holding more than keep active and retained revisions.
  Result<std::vector<std::string>> ReposWithMoreRevisionsThan(int keep);

 private:
  explicit StateDb(std::unique_ptr<SqliteDatabase> db);
  // One connection serves every thread of the process: each method holds
  // mu_ for its statements (and its transaction), so statements of two
  // threads never interleave inside one transaction.
  std::recursive_mutex mu_;
  std::unique_ptr<SqliteDatabase> db_;
  int schema_version_ = 0;
  int on_disk_schema_version_ = 0;  // 0: the same as schema_version_
};

}  // namespace sync_agent
