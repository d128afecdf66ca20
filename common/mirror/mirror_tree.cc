#include "common/mirror/mirror_tree.h"

#include <unistd.h>

#include <set>

#include "common/base/kill_point.h"
#include "common/base/log.h"
#include "common/fs/env.h"

namespace sync_agent {
namespace {

constexpr const char* kHiddenDir = ".sync-agent";

// The way from the symlink's directory back up to the root: "../" for
// <root>/<org>/<name>, "../../" for <root>/datasets/<org>/<name>.
std::string UpToRoot(const std::string& repo) {
  std::string up;
  for (char c : repo) {
    if (c == '/') up += "../";
  }
  return up;
}

// "../.sync-agent/trees/org/name/rev" relative to <root>/<org>/.
std::string RelativeTarget(const std::string& repo, const std::string& revision) {
  return UpToRoot(repo) + kHiddenDir + "/trees/" + repo + "/" + revision;
}

// The name of the new link a swap creates beside the served one, before
// the pid: ".<name>.swap.".
std::string SwapLinkPrefix(const std::string& link) { return "." + BaseName(link) + ".swap."; }

}  // namespace

MirrorTree::MirrorTree(Env* env, std::string mirror_root)
    : env_(env), root_(std::move(mirror_root)) {}

std::string MirrorTree::LinkPath(const std::string& repo) const { return JoinPath(root_, repo); }

std::string MirrorTree::TreesDir(const std::string& repo) const {
  return JoinPath(JoinPath(JoinPath(root_, kHiddenDir), "trees"), repo);
}

std::string MirrorTree::StagingDir(const std::string& repo) const {
  return JoinPath(JoinPath(JoinPath(root_, kHiddenDir), "staging"), repo);
}

std::string MirrorTree::TreePath(const std::string& repo, const std::string& revision) const {
  return JoinPath(TreesDir(repo), revision);
}

Result<std::string> MirrorTree::ActiveRevision(const std::string& repo) const {
  std::string link = LinkPath(repo);
  auto info = env_->Lstat(link);
  if (!info.ok()) return info.status();
  if (info->type != FileInfo::Type::kSymlink) {
    return Status::InvalidArgument(
        "mirror path " + link,
        "exists and is not managed by sync-agent (not a symlink); move it away so that "
        "sync-agent can serve this repository there");
  }
  SA_ASSIGN_OR_RETURN(std::string target, env_->ReadLink(link));
  std::string prefix = UpToRoot(repo) + kHiddenDir + "/trees/" + repo + "/";
  if (target.rfind(prefix, 0) != 0 || target.size() == prefix.size()) {
    return Status::InvalidArgument(
        "mirror path " + link,
        "is a symlink to " + target + ", which sync-agent did not create; move it away");
  }
  return target.substr(prefix.size());
}

bool MirrorTree::HasTree(const std::string& repo, const std::string& revision) const {
  auto info = env_->Lstat(TreePath(repo, revision));
  return info.ok() && info->type == FileInfo::Type::kDirectory;
}

Status MirrorTree::Assemble(const std::string& repo, const Manifest& manifest,
                            const std::function<std::string(const std::string&)>& object_path,
                            AssembleStats* stats) {
  std::string staging_dir = StagingDir(repo);
  SA_RETURN_IF_ERROR(CreateDirs(env_, staging_dir, 0755));
  std::string staging = JoinPath(staging_dir, manifest.revision + "." + std::to_string(::getpid()));
  SA_RETURN_IF_ERROR(sync_agent::RemoveTree(env_, staging));
  SA_RETURN_IF_ERROR(env_->CreateDir(staging, 0755));

  Status s = [&]() -> Status {
    std::set<std::string> dirs;
    dirs.insert(staging);
    for (const ManifestEntry& e : manifest.files) {
      std::string dest = JoinPath(staging, e.path);
      std::string parent = DirName(dest);
      if (dirs.insert(parent).second) SA_RETURN_IF_ERROR(CreateDirs(env_, parent, 0755));
      std::string object = object_path(e.sha256);
      // Objects are 0444; executables need their own inode with 0555.
      bool linked = false;
      if (e.mode == 0644) {
        Status ls = env_->Link(object, dest);
        if (ls.ok()) {
          linked = true;
        } else if (ls.code() == Status::Code::kNoSpace || ls.IsNotFound()) {
          return ls;
        }
        // EXDEV (another file system) or EMLINK (link limit): fall back to a copy.
      }
      if (linked) {
        stats->linked++;
      } else {
        SA_RETURN_IF_ERROR(CopyFile(env_, object, dest, e.mode == 0755 ? 0555 : 0444));
        stats->copied++;
      }
      KillPoint("assemble-file");  // test-only: staging holds part of the tree
    }
    // Directory entries must be durable before the tree becomes visible.
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) SA_RETURN_IF_ERROR(env_->SyncDir(*it));
    std::string final_path = TreePath(repo, manifest.revision);
    SA_RETURN_IF_ERROR(CreateDirs(env_, TreesDir(repo), 0755));
    if (env_->Lstat(final_path).ok()) {
      // A tree that may be served (verify --repair rebuilds the active
      // revision): the new one takes its place in one step, and readers
      // going through the symlink see the old or the new tree, never none.
      Status ex = env_->Exchange(staging, final_path);
      if (ex.ok()) {
        SA_RETURN_IF_ERROR(env_->SyncDir(TreesDir(repo)));
        return sync_agent::RemoveTree(env_, staging);  // now the old tree
      }
      if (ex.code() != Status::Code::kUnsupported) return ex;
      SA_RETURN_IF_ERROR(sync_agent::RemoveTree(env_, final_path));
    }
    SA_RETURN_IF_ERROR(env_->Rename(staging, final_path));
    return env_->SyncDir(TreesDir(repo));
  }();
  if (!s.ok()) sync_agent::RemoveTree(env_, staging);
  return s;
}

Status MirrorTree::Swap(const std::string& repo, const std::string& revision) {
  if (!HasTree(repo, revision)) {
    return Status::NotFound("swap " + repo, "no assembled tree for revision " + revision);
  }
  std::string link = LinkPath(repo);
  auto info = env_->Lstat(link);
  if (info.ok() && info->type != FileInfo::Type::kSymlink) {
    return Status::InvalidArgument(
        "mirror path " + link,
        "exists and is not managed by sync-agent (not a symlink); move it away");
  }
  std::string parent = DirName(link);
  SA_RETURN_IF_ERROR(CreateDirs(env_, parent, 0755));
  std::string tmp = JoinPath(parent, SwapLinkPrefix(link) + std::to_string(::getpid()));
  env_->RemoveFile(tmp);
  SA_RETURN_IF_ERROR(env_->Symlink(RelativeTarget(repo, revision), tmp));
  KillPoint("swap-link");              // test-only: the new link exists beside the served one
  Status s = env_->Rename(tmp, link);  // the one atomic step readers can observe
  if (!s.ok()) {
    env_->RemoveFile(tmp);
    return s;
  }
  KillPoint("swapped");  // test-only: renamed, the directory not yet synced
  return env_->SyncDir(parent);
}

Status MirrorTree::RemoveTree(const std::string& repo, const std::string& revision) {
  std::string path = TreePath(repo, revision);
  // Files are read-only; directories need write permission to unlink entries,
  // which they have (0755, owned by us).
  return sync_agent::RemoveTree(env_, path);
}

Result<std::vector<std::string>> MirrorTree::ListTrees(const std::string& repo) const {
  auto entries = env_->ListDir(TreesDir(repo));
  if (!entries.ok()) {
    if (entries.status().IsNotFound()) return std::vector<std::string>{};
    return entries.status();
  }
  std::vector<std::string> out;
  for (const auto& e : *entries) {
    if (e.type == FileInfo::Type::kDirectory) out.push_back(e.name);
  }
  return out;
}

Status MirrorTree::CleanStaging(const std::string& repo) {
  SA_RETURN_IF_ERROR(sync_agent::RemoveTree(env_, StagingDir(repo)));
  const std::string link = LinkPath(repo);
  const std::string prefix = SwapLinkPrefix(link);
  auto entries = env_->ListDir(DirName(link));
  if (!entries.ok()) return entries.status().IsNotFound() ? Status::OK() : entries.status();
  for (const auto& e : *entries) {
    if (e.name.rfind(prefix, 0) != 0) continue;
    std::string path = JoinPath(DirName(link), e.name);
    auto info = env_->Lstat(path);
    if (info.ok() && info->type == FileInfo::Type::kSymlink) {
      SA_RETURN_IF_ERROR(env_->RemoveFile(path));
    }
  }
  return Status::OK();
}

}  // namespace sync_agent
