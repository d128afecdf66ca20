#include "common/publish/publisher.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "common/base/json_text.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/publish/org_index_writer.h"
#include "common/publish/publish_lock.h"
#include "common/trust/revision_trust.h"

namespace sync_agent {
namespace {

constexpr uint32_t kDirMode = 0755;  // published trees are served by nginx's workers

struct ScannedFile {
  std::string rel;
  std::string abs;
  uint32_t mode;
};

Status Scan(Env* env, const std::string& root, const std::string& rel,
            std::vector<ScannedFile>* out) {
  std::string dir = rel.empty() ? root : JoinPath(root, rel);
  SA_ASSIGN_OR_RETURN(auto entries, env->ListDir(dir));
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  for (const auto& e : entries) {
    std::string child_rel = rel.empty() ? e.name : rel + "/" + e.name;
    std::string child_abs = JoinPath(root, child_rel);
    if (rel.empty() && e.name == ".git") {
      LogInfo("publish: skipping .git directory", {{"path", child_abs}});
      continue;
    }
    SA_ASSIGN_OR_RETURN(FileInfo linfo, env->Lstat(child_abs));
    FileInfo info = linfo;
    if (linfo.type == FileInfo::Type::kSymlink) {
      auto target = env->Stat(child_abs);
      if (!target.ok()) {
        return Status::InvalidArgument("publish " + child_abs, "symlink points nowhere");
      }
      info = *target;
      if (info.type != FileInfo::Type::kRegular) {
        return Status::InvalidArgument("publish " + child_abs,
                                       "symlink does not point to a regular file");
      }
    }
    if (info.type == FileInfo::Type::kDirectory) {
      SA_RETURN_IF_ERROR(Scan(env, root, child_rel, out));
    } else if (info.type == FileInfo::Type::kRegular) {
      out->push_back({child_rel, child_abs, (info.mode & 0111) ? 0755u : 0644u});
    } else {
      return Status::InvalidArgument("publish " + child_abs,
                                     "not a regular file or directory (socket, FIFO or device)");
    }
  }
  return Status::OK();
}

// Copies src into the object store at dest, verifying that the bytes copied
// hash to the expected digest (the working tree may change under us).
Status CopyIntoStore(Env* env, const std::string& src, const std::string& dest,
                     const ContentDigest& expected) {
  std::string tmp = dest + ".tmp." + std::to_string(::getpid());
  Status s = [&]() -> Status {
    SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(src));
    SA_ASSIGN_OR_RETURN(auto out, env->NewWritableFile(tmp, 0644));
    ContentHasher hasher;
    std::vector<char> buf(1 << 20);
    while (true) {
      SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
      if (n == 0) break;
      hasher.Update(buf.data(), n);
      SA_RETURN_IF_ERROR(out->Append(buf.data(), n));
    }
    ContentDigest got = hasher.Finish();
    if (got.sha256 != expected.sha256) {
      return Status::Corruption("publish " + src, "file changed while it was being published");
    }
    SA_RETURN_IF_ERROR(out->Sync());
    SA_RETURN_IF_ERROR(out->Close());
    SA_RETURN_IF_ERROR(env->Chmod(tmp, 0644));
    return env->Rename(tmp, dest);
  }();
  if (!s.ok()) env->RemoveFile(tmp);
  return s;
}

// What a revision's content is, independent of time, ids and delta files.
std::string ContentFingerprint(const Manifest& m) {
  std::string out;
  for (const ManifestEntry& e : m.files) {
    out += e.path;
    out.push_back('\0');
    out += std::to_string(e.size) + " " + std::to_string(e.mode) + " " + e.sha256 + "\n";
  }
  return Sha256Hex(out);
}

std::string CompactTimestamp(SystemTime t) {
  std::string iso = FormatIsoTime(t);  // 2026-11-25T03:04:05Z
  std::string out;
  for (char c : iso) {
    if (c != '-' && c != ':') out.push_back(c);
  }
  return out;  // 20261125T030405Z
}

}  // namespace

Result<PublishResult> PublishDirectory(Env* env, const PublishOptions& opt) {
  if (!IsValidRepoName(opt.repo)) {
    return Status::InvalidArgument("repository name " + JsonQuote(opt.repo),
                                   "use org/name with letters, digits, '.', '_' and '-'");
  }
  if (!opt.revision.empty() && !IsValidRevisionId(opt.revision)) {
    return Status::InvalidArgument("revision " + JsonQuote(opt.revision),
                                   "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  auto in_info = env->Stat(opt.input_dir);
  if (!in_info.ok() || in_info->type != FileInfo::Type::kDirectory) {
    return Status::InvalidArgument("publish " + opt.input_dir, "not a directory");
  }
  std::string repo_dir = JoinPath(opt.out_root, opt.repo);
  SA_RETURN_IF_ERROR(CreateDirs(env, JoinPath(repo_dir, "objects"), kDirMode));
  SA_RETURN_IF_ERROR(CreateDirs(env, JoinPath(repo_dir, "revisions"), kDirMode));
  PublishLock lock;
  SA_RETURN_IF_ERROR(lock.Acquire(JoinPath(repo_dir, ".publish.lock")));

  // The previous revision, if any, becomes the parent.
  RevisionPointer previous;
  bool has_previous = false;
  {
    auto body = ReadFileToString(env, JoinPath(repo_dir, kPointerName), 64 * 1024);
    if (body.ok()) {
      auto p = ParsePointer(*body);
      if (!p.ok()) return p.status().WithContext("publish: the current latest pointer is broken");
      previous = std::move(p).value();
      has_previous = true;
    } else if (!body.status().IsNotFound()) {
      return body.status();
    }
  }

  std::vector<ScannedFile> files;
  SA_RETURN_IF_ERROR(Scan(env, opt.input_dir, "", &files));
  std::sort(files.begin(), files.end(),
            [](const ScannedFile& a, const ScannedFile& b) { return a.rel < b.rel; });

  PublishResult result;
  Manifest& m = result.manifest;
  m.repo = opt.repo;
  ManifestLimits limits;
  std::set<std::string> touched_dirs;
  for (const ScannedFile& f : files) {
    std::string why = CheckRelativePath(f.rel, limits);
    if (!why.empty()) return Status::InvalidArgument("publish " + f.abs, why);
    SA_ASSIGN_OR_RETURN(ContentDigest d, HashFile(env, f.abs));
    std::string object = JoinPath(repo_dir, PublishedObjectPath(d.sha256));
    auto existing = env->Stat(object);
    if (existing.ok() && existing->size == d.size) {
      result.objects_reused++;
      result.bytes_reused += d.size;
    } else {
      SA_RETURN_IF_ERROR(CreateDirs(env, DirName(object), kDirMode));
      SA_RETURN_IF_ERROR(CopyIntoStore(env, f.abs, object, d));
      touched_dirs.insert(DirName(object));
      result.objects_written++;
      result.bytes_written += d.size;
    }
    ManifestEntry entry;
    entry.path = f.rel;
    entry.size = d.size;
    entry.mode = f.mode;
    entry.sha256 = d.sha256;
    entry.xxh3_128 = d.xxh3_128;
    auto provenance = opt.file_provenance.find(f.rel);
    if (provenance != opt.file_provenance.end()) {
      entry.provenance = provenance->second;
    }
    m.files.push_back(std::move(entry));
  }
  // Object renames must be durable before a manifest names them.
  for (const std::string& dir : touched_dirs) SA_RETURN_IF_ERROR(env->SyncDir(dir));
  SA_RETURN_IF_ERROR(env->SyncDir(JoinPath(repo_dir, "objects")));

  // The previous revisions along the parent chain, newest first: for the
  // unchanged check and as bases for deltas. A missing or broken old
  // manifest only ends the chain.
  std::vector<Manifest> history;
  for (std::string rev = has_previous ? previous.revision : "";
       !rev.empty() && static_cast<int>(history.size()) < std::max(1, opt.deltas.delta_depth);) {
    auto text =
        ReadFileToString(env, JoinPath(repo_dir, PublishedManifestPath(rev)), kMaxManifestBytes);
    if (!text.ok()) break;
    auto parsed = ParseManifest(*text);
    if (!parsed.ok()) break;
    rev = parsed->parent;
    history.push_back(std::move(parsed).value());
  }
  if (!history.empty() && !opt.allow_unchanged && opt.revision.empty() &&
      ContentFingerprint(history.front()) == ContentFingerprint(m)) {
    result.unchanged = true;
    result.manifest = history.front();
    // An index written by an older publisher (or never) is brought up to date.
    if (opt.write_org_index) SA_RETURN_IF_ERROR(WriteOrgIndex(env, opt.out_root, OrgOf(opt.repo)));
    return result;
  }
  SA_RETURN_IF_ERROR(AddDeltaInfo(env, repo_dir, history, opt.deltas, &m, &result.delta_stats));

  SystemTime now = std::chrono::system_clock::now();
  m.created = FormatIsoTime(now);
  m.parent = has_previous ? previous.revision : "";
  m.provenance = opt.provenance;
  m.revision = opt.revision;
  if (m.revision.empty()) {
    // Time, then content: ids sort by publication and differ when content does.
    std::string base = CompactTimestamp(now) + "-" + ContentFingerprint(m).substr(0, 12);
    m.revision = base;
    for (int n = 2; FileExists(env, JoinPath(repo_dir, PublishedManifestPath(m.revision))); ++n) {
      m.revision = base + "-" + std::to_string(n);
    }
  }
  if (has_previous && m.revision == previous.revision) {
    return Status::InvalidArgument("revision " + JsonQuote(m.revision),
                                   "is already the latest published revision");
  }
  SA_RETURN_IF_ERROR(ValidateManifest(m));

  std::string manifest_text = SerializeManifest(m);
  std::string manifest_rel = PublishedManifestPath(m.revision);
  std::string manifest_path = JoinPath(repo_dir, manifest_rel);
  if (FileExists(env, manifest_path)) {
    return Status::InvalidArgument("revision " + JsonQuote(m.revision),
                                   "was published before (" + manifest_path + " exists)");
  }
  SA_RETURN_IF_ERROR(WriteFileAtomically(env, manifest_path, manifest_text, 0644));
  if (!opt.sign_keys.empty()) {
    RevisionStatement statement{m.repo, m.revision, Sha256Hex(manifest_text), m.created};
    SA_ASSIGN_OR_RETURN(RevisionSignatures sigs, SignRevision(statement, opt.sign_keys));
    SA_RETURN_IF_ERROR(
        WriteFileAtomically(env, JoinPath(repo_dir, PublishedRevisionSignaturesPath(m.revision)),
                            SerializeRevisionSignatures(sigs), 0644));
  }

  RevisionPointer pointer;
  pointer.repo = m.repo;
  pointer.revision = m.revision;
  pointer.manifest = manifest_rel;
  pointer.manifest_sha256 = Sha256Hex(manifest_text);
  pointer.published = FormatIsoTime(std::chrono::system_clock::now());
  // HTTP servers derive validators from mtime and size (nginx's ETag is
  // "<mtime seconds>-<size>"), and two pointers often have the same size. A
  // pointer written within the same second as the previous one would keep its
  // ETag, and nodes polling with If-None-Match would miss the new revision. So
  // the new pointer's mtime is always at least a second past the old one's.
  std::string pointer_path = JoinPath(repo_dir, kPointerName);
  int64_t mtime_ns = static_cast<int64_t>(ToUnixMillis(std::chrono::system_clock::now())) * 1000000;
  auto old_pointer = env->Stat(pointer_path);
  if (old_pointer.ok()) {
    int64_t old_sec = old_pointer->mtime_ns / 1000000000;
    if (mtime_ns / 1000000000 <= old_sec) mtime_ns = (old_sec + 1) * 1000000000;
  }
  SA_RETURN_IF_ERROR(
      WriteFileAtomically(env, pointer_path, SerializePointer(pointer), 0644, mtime_ns));
  // After the pointer: a node that finds the repository in the index finds
  // its latest revision too.
  if (opt.write_org_index) SA_RETURN_IF_ERROR(WriteOrgIndex(env, opt.out_root, OrgOf(opt.repo)));
  return result;
}

}  // namespace sync_agent
