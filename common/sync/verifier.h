// Verifier: `sync-agent verify`. Checks what a node serves (the trees its
// symlinks name, and its retained revisions) and what it stores (the object
// store) against its database, by size and xxh3-128, or by sha256 when full.
//
// It reports every file that is missing, damaged (another size, another
// hash, not a regular file, writable) or unexpected (on disk, but listed by
// no revision), each by its path. It never changes anything: repair is
// SyncEngine::Repair, which rebuilds a revision beside the served one and
// swaps it in.
//
// Thread safety: one Run at a time; the caller holds the node's run lock so
// that no sync changes the trees underneath it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/db/state_db.h"

namespace sync_agent {

class Env;

enum class ProblemKind { kMissing, kDamaged, kUnexpected };
const char* ProblemKindName(ProblemKind kind);  // "missing", "damaged", "unexpected"

struct VerifyProblem {
  ProblemKind kind = ProblemKind::kMissing;
  std::string repo;      // the repository it belongs to; "" for the object store
  std::string revision;  // the revision whose tree holds it; "" for the store
  std::string path;      // on disk
  std::string rel_path;  // in the revision ("" for the store, the link or a whole tree)
  std::string detail;    // why, e.g. "size 5, expected 6"
  // The content that belongs at path ("" for an unexpected file).
  std::string sha256;
  uint64_t size = 0;
  std::string ToString() const;  // "damaged: <path> (<repo> <revision> <rel>): <detail>"
};

struct VerifyOptions {
  bool full = false;               // sha256 instead of size and xxh3-128
  std::vector<std::string> repos;  // local names to check
  // Also objects that none of them lists, and files under objects/ that the
  // database does not know (a whole-node verify).
  bool whole_store = true;
};

struct VerifyCounts {
  uint64_t files_checked = 0;
  uint64_t bytes_hashed = 0;
  uint64_t missing = 0;
  uint64_t damaged = 0;
  uint64_t unexpected = 0;
};

struct VerifyReport {
  bool full = false;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  std::vector<VerifyProblem> problems;
  std::map<std::string, VerifyCounts> counts;  // by repository; "" for the store
  VerifyCounts total;
  bool ok() const { return problems.empty(); }
};

class Verifier {
 public:
  Verifier(Env* env, StateDb* db, std::string state_dir, std::string mirror_root);
  // A failure to read the database or list a directory is an error; what is
  // wrong with the files is the report.
  Result<VerifyReport> Run(const VerifyOptions& options);

 private:
  struct Context;
  Status CheckRepo(const std::string& repo, Context* ctx);
  Status CheckTree(const std::string& repo, const RevisionRow& revision, bool served, Context* ctx);
  Status CheckObjects(Context* ctx);
  // Whether the file at path (already lstat'ed as info) holds the content.
  // Hashes each inode once per run.
  Result<std::string> ContentProblem(const std::string& path, uint64_t dev, uint64_t ino,
                                     const std::string& sha256, const std::string& xxh3,
                                     Context* ctx, const std::string& counts_key);

  Env* env_;
  StateDb* db_;
  std::string state_dir_;
  std::string mirror_root_;
};

// The rows a verify records: one per repository in the report, and one for
// the store ("") when objects were checked on their own. repaired: how many
// problems --repair fixed, by repository.
std::vector<VerificationRow> VerificationRows(const VerifyReport& report,
                                              const std::map<std::string, uint64_t>& repaired);

}  // namespace sync_agent
