#include "common/git/git_materialize.h"

#include <memory>

#include "common/base/byte_sink.h"
#include "common/base/log.h"
#include "common/fs/env.h"
#include "common/git/git_cache.h"
#include "common/git/lfs_client.h"
#include "common/git/lfs_reader.h"
#include "common/store/verifying_sink.h"

namespace sync_agent {
namespace {

// Writes an LFS object to path; the bytes must be the pointer's size and
// hash to its oid, else the file is removed and kCorruption names the object
// and where it came from.
Status WriteLfsObject(Env* env, LfsReader* reader, const std::string& path, uint32_t mode,
                      const LfsObject& object) {
  SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(path, mode));
  VerifyingSink sink("git lfs object " + object.oid + " from " + reader->Location(object),
                     object.size, object.oid,
                     [&file](const char* data, size_t n) { return file->Append(data, n); });
  Status s = reader->Read(object, 0, &sink);
  if (s.ok()) s = file->Sync();
  if (s.ok()) s = file->Close();
  if (s.ok()) s = sink.Verify();
  if (!s.ok()) env->RemoveFile(path);
  return s;
}

struct PendingLfs {
  std::string path;  // in out_dir
  uint32_t mode;
  LfsObject object;
};

Status Fill(Env* env, const std::string& url, const std::string& ref, const std::string& out_dir,
            const GitMaterializeOptions& options, GitMaterializeResult* result) {
  SA_ASSIGN_OR_RETURN(auto cache, GitCache::Open(options.cache_dir, url));
  SA_ASSIGN_OR_RETURN(result->commit, cache->Fetch(ref));
  SA_ASSIGN_OR_RETURN(GitTree tree, cache->ReadTree(result->commit));
  result->tree_id = tree.tree_id;
  SA_RETURN_IF_ERROR(CreateDirs(env, out_dir, 0755));

  std::vector<PendingLfs> lfs;
  for (const GitTreeEntry& e : tree.entries) {
    const std::string path = JoinPath(out_dir, e.path);
    if (e.kind == GitTreeEntry::Kind::kSubmodule) {
      result->warnings.push_back("skipped submodule " + e.path + " (commit " + e.id + ")");
      continue;
    }
    SA_RETURN_IF_ERROR(CreateDirs(env, DirName(path), 0755));
    if (e.kind == GitTreeEntry::Kind::kSymlink) {
      SA_RETURN_IF_ERROR(env->Symlink(e.target, path));
      continue;
    }
    const uint32_t mode = e.kind == GitTreeEntry::Kind::kExecutable ? 0755 : 0644;
    SA_ASSIGN_OR_RETURN(std::string blob, cache->ReadBlob(e.id, e.size));
    auto pointer = ParseLfsPointer(blob);
    if (!pointer.ok()) return pointer.status().WithContext(e.path + " at " + result->commit);
    result->files++;
    result->written.push_back({e.path, e.id, pointer->has_value()});
    if (pointer->has_value()) {
      lfs.push_back({path, mode, {(*pointer)->oid, (*pointer)->size}});
      result->lfs_files++;
      result->bytes += (*pointer)->size;
      continue;
    }
    SA_RETURN_IF_ERROR(WriteFileAtomically(env, path, blob, mode));
    result->bytes += blob.size();
  }
  LfsReader reader(env, url, options.http, options.lfs_authorization);
  for (const PendingLfs& p : lfs) {
    SA_RETURN_IF_ERROR(WriteLfsObject(env, &reader, p.path, p.mode, p.object));
  }
  return Status::OK();
}

}  // namespace

Result<GitMaterializeResult> MaterializeGitRevision(Env* env, const std::string& url,
                                                    const std::string& ref,
                                                    const std::string& out_dir,
                                                    const GitMaterializeOptions& options) {
  if (env->Stat(out_dir).ok()) {
    return Status::InvalidArgument("materialize " + url + " " + ref, out_dir + " already exists");
  }
  GitMaterializeResult result;
  Status s = Fill(env, url, ref, out_dir, options, &result);
  if (!s.ok()) {
    RemoveTree(env, out_dir);
    return s.WithContext("git " + url + " " + ref);
  }
  return result;
}

}  // namespace sync_agent
