#include "common/git/git_materialize.h"

#include <functional>
#include <memory>

#include "common/base/log.h"
#include "common/fs/env.h"
#include "common/git/git_cache.h"
#include "common/git/lfs_client.h"
#include "common/source/source.h"
#include "common/store/verifying_sink.h"

namespace sync_agent {
namespace {

constexpr size_t kCopyChunk = 1 << 20;

// A local remote's directory, or "" for a network URL.
std::string LocalRemoteDir(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return url.substr(7);
  if (!url.empty() && url.front() == '/') return url;
  return "";
}

// Writes an LFS object to path through fill, which streams it into the sink
// it is given; the bytes must be the pointer's size and hash to its oid,
// else the file is removed and kCorruption names the object and origin.
Status WriteLfsObject(Env* env, const std::string& path, uint32_t mode, const LfsObject& object,
                      const std::string& origin,
                      const std::function<Status(ObjectSink*)>& fill) {
  SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(path, mode));
  VerifyingSink sink("git lfs object " + object.oid + " from " + origin, object.size, object.oid,
                     [&file](const char* data, size_t n) { return file->Append(data, n); });
  Status s = fill(&sink);
  if (s.ok()) s = file->Sync();
  if (s.ok()) s = file->Close();
  if (s.ok()) s = sink.Verify();
  if (!s.ok()) env->RemoveFile(path);
  return s;
}

Status CopyLocalLfsObject(Env* env, const std::string& remote_dir, const LfsObject& object,
                          const std::string& out_path, uint32_t mode) {
  const std::string rel = "lfs/objects/" + object.oid.substr(0, 2) + "/" + object.oid.substr(2, 2) +
                          "/" + object.oid;
  std::string path;
  for (const std::string& candidate : {JoinPath(remote_dir, ".git/" + rel), JoinPath(remote_dir, rel)}) {
    if (env->Stat(candidate).ok()) {
      path = candidate;
      break;
    }
  }
  if (path.empty()) {
    return Status::NotFound("git lfs object " + object.oid,
                            "missing from the local remote's LFS store (" +
                                JoinPath(remote_dir, ".git/" + rel) + "); run `git lfs fetch` there");
  }
  SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(path));
  return WriteLfsObject(env, out_path, mode, object, path, [&in](ObjectSink* sink) -> Status {
    SA_RETURN_IF_ERROR(sink->Begin(0));
    std::vector<char> buf(kCopyChunk);
    while (true) {
      SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
      if (n == 0) return Status::OK();
      SA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
    }
  });
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
    if (pointer->has_value()) {
      lfs.push_back({path, mode, {(*pointer)->oid, (*pointer)->size}});
      result->lfs_files++;
      result->bytes += (*pointer)->size;
      continue;
    }
    SA_RETURN_IF_ERROR(WriteFileAtomically(env, path, blob, mode));
    result->bytes += blob.size();
  }
  if (lfs.empty()) return Status::OK();

  const std::string local = LocalRemoteDir(url);
  if (!local.empty()) {
    for (const PendingLfs& p : lfs) {
      SA_RETURN_IF_ERROR(CopyLocalLfsObject(env, local, p.object, p.path, p.mode));
    }
    return Status::OK();
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!options.lfs_authorization.empty()) {
    headers.emplace_back("Authorization", options.lfs_authorization);
  }
  LfsClient client(url, options.http, headers);
  std::vector<LfsObject> objects;
  for (const PendingLfs& p : lfs) objects.push_back(p.object);
  SA_ASSIGN_OR_RETURN(auto actions, client.Batch(objects));
  for (size_t i = 0; i < lfs.size(); ++i) {
    if (!actions[i].ok()) return actions[i].status();
    const LfsDownload& action = *actions[i];
    SA_RETURN_IF_ERROR(WriteLfsObject(
        env, lfs[i].path, lfs[i].mode, lfs[i].object, action.href,
        [&](ObjectSink* sink) { return client.Download(lfs[i].object, action, sink); }));
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
