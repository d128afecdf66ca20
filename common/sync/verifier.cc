#include "common/sync/verifier.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>

#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/mirror/mirror_tree.h"
#include "common/store/object_store.h"

namespace sync_agent {

namespace {

// The problems kept in the database per repository (the report has all).
constexpr size_t kProblemsRecorded = 20;

std::string Octal(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

const char* TypeName(FileInfo::Type type) {
  switch (type) {
    case FileInfo::Type::kRegular:
      return "a regular file";
    case FileInfo::Type::kDirectory:
      return "a directory";
    case FileInfo::Type::kSymlink:
      return "a symlink";
    case FileInfo::Type::kOther:
      break;
  }
  return "a special file";
}

}  // namespace

const char* ProblemKindName(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::kMissing:
      return "missing";
    case ProblemKind::kDamaged:
      return "damaged";
    case ProblemKind::kUnexpected:
      return "unexpected";
  }
  return "?";
}

std::string VerifyProblem::ToString() const {
  std::string o = std::string(ProblemKindName(kind)) + ": " + path;
  if (!repo.empty()) {
    o += " (" + repo;
    if (!revision.empty()) o += " revision " + revision;
    if (!rel_path.empty()) o += " " + rel_path;
    o += ")";
  }
  if (!detail.empty()) o += ": " + detail;
  return o;
}

struct Verifier::Context {
  VerifyOptions options;
  VerifyReport report;
  std::unique_ptr<MirrorTree> mirror;
  std::unique_ptr<ObjectStore> store;
  // What each inode hashed to this run, by (device, inode).
  std::map<std::pair<uint64_t, uint64_t>, ContentDigest> hashed;
  // Objects the checked revisions list: sha256 -> (repo, size, xxh3).
  struct Wanted {
    std::string repo;
    uint64_t size = 0;
    std::string xxh3;
  };
  std::map<std::string, Wanted> wanted;

  void Add(VerifyProblem p) {
    VerifyCounts& c = report.counts[p.repo];
    uint64_t& n = p.kind == ProblemKind::kMissing   ? c.missing
                  : p.kind == ProblemKind::kDamaged ? c.damaged
                                                    : c.unexpected;
    n++;
    report.problems.push_back(std::move(p));
  }
};

Verifier::Verifier(Env* env, StateDb* db, std::string state_dir, std::string mirror_root)
    : env_(env), db_(db), state_dir_(std::move(state_dir)), mirror_root_(std::move(mirror_root)) {}

Result<VerifyReport> Verifier::Run(const VerifyOptions& options) {
  Context ctx;
  ctx.options = options;
  ctx.report.full = options.full;
  ctx.report.started_at_ms = NowMs();
  ctx.mirror = std::make_unique<MirrorTree>(env_, mirror_root_);
  ctx.store = std::make_unique<ObjectStore>(env_, state_dir_);
  for (const std::string& repo : options.repos) {
    ctx.report.counts[repo];  // every repository checked has a row, clean or not
    SA_RETURN_IF_ERROR(CheckRepo(repo, &ctx));
  }
  SA_RETURN_IF_ERROR(CheckObjects(&ctx));
  for (const auto& [repo, c] : ctx.report.counts) {
    ctx.report.total.files_checked += c.files_checked;
    ctx.report.total.bytes_hashed += c.bytes_hashed;
    ctx.report.total.missing += c.missing;
    ctx.report.total.damaged += c.damaged;
    ctx.report.total.unexpected += c.unexpected;
  }
  ctx.report.finished_at_ms = NowMs();
  return std::move(ctx.report);
}

Status Verifier::CheckRepo(const std::string& repo, Context* ctx) {
  SA_ASSIGN_OR_RETURN(auto revisions, db_->ListRevisions(repo));
  SA_ASSIGN_OR_RETURN(auto active, db_->ActiveRevision(repo));
  // The files on disk are the truth: the served revision is the one the
  // link names (the database may lag behind a killed run by one swap).
  std::string served;
  auto linked = ctx->mirror->ActiveRevision(repo);
  if (linked.ok()) {
    served = *linked;
  } else if (linked.status().IsNotFound()) {
    if (active) {
      VerifyProblem p;
      p.kind = ProblemKind::kMissing;
      p.repo = repo;
      p.revision = active->revision;
      p.path = ctx->mirror->LinkPath(repo);
      p.detail = "the served link is gone; the database's active revision is " + active->revision;
      ctx->Add(std::move(p));
      served = active->revision;
    }
  } else {
    VerifyProblem p;
    p.kind = ProblemKind::kDamaged;
    p.repo = repo;
    p.path = ctx->mirror->LinkPath(repo);
    p.detail = linked.status().message();
    ctx->Add(std::move(p));
  }
  for (const RevisionRow& rev : revisions) {
    bool is_served = rev.revision == served;
    if (!is_served && rev.state != RevisionState::kRetained &&
        rev.state != RevisionState::kActive) {
      continue;
    }
    // A retained revision whose tree was collected is fine; a served one is not.
    if (!is_served && !ctx->mirror->HasTree(repo, rev.revision)) continue;
    SA_RETURN_IF_ERROR(CheckTree(repo, rev, is_served, ctx));
  }
  return Status::OK();
}

Result<std::string> Verifier::ContentProblem(const std::string& path, uint64_t dev, uint64_t ino,
                                             const std::string& sha256, const std::string& xxh3,
                                             Context* ctx, const std::string& counts_key) {
  // xxh3 where the database has it, sha256 when asked to or when it has none.
  bool by_sha = ctx->options.full || xxh3.empty();
  auto key = std::make_pair(dev, ino);
  auto it = ctx->hashed.find(key);
  if (it == ctx->hashed.end() || (by_sha && it->second.sha256.empty())) {
    SA_ASSIGN_OR_RETURN(ContentDigest d, HashFile(env_, path,
                                                  by_sha ? ContentHasher::Which::kBoth
                                                         : ContentHasher::Which::kXxh3Only));
    ctx->report.counts[counts_key].bytes_hashed += d.size;
    it = ctx->hashed.insert_or_assign(key, std::move(d)).first;
  }
  const ContentDigest& d = it->second;
  if (by_sha) {
    if (d.sha256 != sha256) return "sha256 " + d.sha256 + ", expected " + sha256;
  } else if (d.xxh3_128 != xxh3) {
    return "xxh3-128 " + d.xxh3_128 + ", expected " + xxh3 + " (the bytes changed on disk)";
  }
  return std::string();
}

Status Verifier::CheckTree(const std::string& repo, const RevisionRow& revision, bool served,
                           Context* ctx) {
  const std::string tree = ctx->mirror->TreePath(repo, revision.revision);
  auto tree_info = env_->Lstat(tree);
  if (!tree_info.ok() || tree_info->type != FileInfo::Type::kDirectory) {
    VerifyProblem p;
    p.kind = tree_info.ok() ? ProblemKind::kDamaged : ProblemKind::kMissing;
    p.repo = repo;
    p.revision = revision.revision;
    p.path = tree;
    p.detail =
        tree_info.ok()
            ? std::string("is ") + TypeName(tree_info->type) + ", not the revision's directory"
            : (served ? "the served revision's tree is gone" : "the revision's tree is gone");
    ctx->Add(std::move(p));
    return Status::OK();
  }
  SA_ASSIGN_OR_RETURN(auto files, db_->RevisionFiles(revision.id));
  std::set<std::string> expected;  // files and the directories above them
  for (const FileRow& f : files) {
    expected.insert(f.path);
    for (size_t slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      expected.insert(f.path.substr(0, slash));
    }
  }
  for (const FileRow& f : files) {
    VerifyProblem p;
    p.repo = repo;
    p.revision = revision.revision;
    p.rel_path = f.path;
    p.path = JoinPath(tree, f.path);
    p.sha256 = f.sha256;
    p.size = f.size;
    std::string xxh3 = f.xxh3_128;
    if (xxh3.empty()) {
      SA_ASSIGN_OR_RETURN(auto obj, db_->GetObject(f.sha256));
      if (obj) xxh3 = obj->xxh3_128;
    }
    auto& w = ctx->wanted[f.sha256];
    if (w.repo.empty()) w = {repo, f.size, xxh3};
    auto info = env_->Lstat(p.path);
    ctx->report.counts[repo].files_checked++;
    if (!info.ok()) {
      p.kind = ProblemKind::kMissing;
      p.detail = info.status().IsNotFound() ? "not on disk" : info.status().message();
      ctx->Add(std::move(p));
      continue;
    }
    p.kind = ProblemKind::kDamaged;
    if (info->type != FileInfo::Type::kRegular) {
      p.detail = std::string("is ") + TypeName(info->type) + ", expected a file";
    } else if (info->size != f.size) {
      p.detail = "size " + std::to_string(info->size) + ", expected " + std::to_string(f.size);
    } else if (uint32_t want = f.mode == 0755 ? 0555 : 0444; (info->mode & 0777) != want) {
      p.detail = "mode " + Octal(info->mode) + ", expected " + Octal(want) +
                 " (served files are read-only)";
    } else {
      SA_ASSIGN_OR_RETURN(
          p.detail, ContentProblem(p.path, info->device, info->inode, f.sha256, xxh3, ctx, repo));
    }
    if (!p.detail.empty()) ctx->Add(std::move(p));
  }
  // Anything else in the tree: report the topmost unexpected entry.
  std::vector<std::string> dirs = {""};
  while (!dirs.empty()) {
    std::string rel = dirs.back();
    dirs.pop_back();
    SA_ASSIGN_OR_RETURN(auto entries, env_->ListDir(rel.empty() ? tree : JoinPath(tree, rel)));
    for (const DirEntry& e : entries) {
      std::string child = rel.empty() ? e.name : rel + "/" + e.name;
      if (!expected.count(child)) {
        VerifyProblem p;
        p.kind = ProblemKind::kUnexpected;
        p.repo = repo;
        p.revision = revision.revision;
        p.rel_path = child;
        p.path = JoinPath(tree, child);
        p.detail = "listed by no file of the revision";
        ctx->Add(std::move(p));
        continue;
      }
      auto info = env_->Lstat(JoinPath(tree, child));
      if (info.ok() && info->type == FileInfo::Type::kDirectory) dirs.push_back(child);
    }
  }
  return Status::OK();
}

Status Verifier::CheckObjects(Context* ctx) {
  std::map<std::string, Context::Wanted> objects = ctx->wanted;
  if (ctx->options.whole_store) {
    SA_ASSIGN_OR_RETURN(auto all, db_->AllObjects());
    for (const ObjectRow& o : all) {
      auto& w = objects[o.sha256];
      w.size = o.size;
      if (w.xxh3.empty()) w.xxh3 = o.xxh3_128;
    }
  }
  for (const auto& [sha, want] : objects) {
    VerifyProblem p;
    p.repo = want.repo;
    p.path = ctx->store->ObjectPath(sha);
    p.sha256 = sha;
    p.size = want.size;
    p.detail.clear();
    ctx->report.counts[want.repo].files_checked++;
    auto info = env_->Lstat(p.path);
    if (!info.ok()) {
      p.kind = ProblemKind::kMissing;
      p.detail = "object " + sha + " is not in the store";
      ctx->Add(std::move(p));
      continue;
    }
    p.kind = ProblemKind::kDamaged;
    if (info->type != FileInfo::Type::kRegular) {
      p.detail = std::string("is ") + TypeName(info->type) + ", expected a file";
    } else if (info->size != want.size) {
      p.detail = "size " + std::to_string(info->size) + ", expected " + std::to_string(want.size);
    } else {
      SA_ASSIGN_OR_RETURN(p.detail, ContentProblem(p.path, info->device, info->inode, sha,
                                                   want.xxh3, ctx, want.repo));
    }
    if (!p.detail.empty()) ctx->Add(std::move(p));
  }
  if (!ctx->options.whole_store) return Status::OK();
  // Files under objects/ that no row knows.
  const std::string root = JoinPath(state_dir_, "objects");
  auto listed = env_->ListDir(root);
  if (listed.status().IsNotFound()) return Status::OK();  // every object was reported missing
  SA_ASSIGN_OR_RETURN(auto prefixes, std::move(listed));
  for (const DirEntry& d : prefixes) {
    const std::string dir = JoinPath(root, d.name);
    auto info = env_->Lstat(dir);
    std::vector<DirEntry> names;
    if (info.ok() && info->type == FileInfo::Type::kDirectory) {
      SA_ASSIGN_OR_RETURN(names, env_->ListDir(dir));
    } else {
      names.push_back({"", FileInfo::Type::kOther});
    }
    for (const DirEntry& n : names) {
      const std::string path = n.name.empty() ? dir : JoinPath(dir, n.name);
      bool known = !n.name.empty() && objects.count(n.name) &&
                   d.name == n.name.substr(0, std::min<size_t>(2, n.name.size()));
      if (known) continue;
      VerifyProblem p;
      p.kind = ProblemKind::kUnexpected;
      p.path = path;
      p.detail = "in the object store but not in the database";
      ctx->Add(std::move(p));
    }
  }
  return Status::OK();
}

std::vector<VerificationRow> VerificationRows(const VerifyReport& report,
                                              const std::map<std::string, uint64_t>& repaired) {
  std::vector<VerificationRow> rows;
  for (const auto& [repo, c] : report.counts) {
    VerificationRow row;
    row.repo = repo;
    row.started_at_ms = report.started_at_ms;
    row.finished_at_ms = report.finished_at_ms;
    row.full = report.full;
    row.files_checked = c.files_checked;
    row.bytes_hashed = c.bytes_hashed;
    row.missing = c.missing;
    row.damaged = c.damaged;
    row.unexpected = c.unexpected;
    auto it = repaired.find(repo);
    if (it != repaired.end()) row.repaired = it->second;
    size_t kept = 0;
    for (const VerifyProblem& p : report.problems) {
      if (p.repo == repo && kept++ < kProblemsRecorded) row.problems += p.ToString() + "\n";
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace sync_agent
