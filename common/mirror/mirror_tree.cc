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

std::string TreesRel(const std::string& repo) { return std::string(kHiddenDir) + "/trees/" + repo; }

std::string StagingRel(const std::string& repo) {
  return std::string(kHiddenDir) + "/staging/" + repo;
}

// "../.sync-agent/trees/org/name/rev" relative to <root>/<org>/.
std::string RelativeTarget(const std::string& repo, const std::string& revision) {
  return UpToRoot(repo) + TreesRel(repo) + "/" + revision;
}

// The name of the new link a swap creates beside the served one, before
// the pid: ".<name>.swap.".
std::string SwapLinkPrefix(const std::string& link) { return "." + BaseName(link) + ".swap."; }

// Whether name has the form of a swap's new link: ".<name>.swap.<digits>".
bool IsSwapLinkName(const std::string& name) {
  const size_t at = name.rfind(".swap.");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) return false;
  const std::string pid = name.substr(at + 6);
  return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

MirrorTree::MirrorTree(Env* env, std::string mirror_root)
    : env_(env), root_(std::move(mirror_root)) {}

std::string MirrorTree::LinkPath(const std::string& repo) const { return JoinPath(root_, repo); }

std::string MirrorTree::TreesDir(const std::string& repo) const { return TreesAt(repo).full(); }

std::string MirrorTree::StagingDir(const std::string& repo) const { return StagingAt(repo).full(); }

std::string MirrorTree::TreePath(const std::string& repo, const std::string& revision) const {
  return JoinPath(TreesDir(repo), revision);
}

RootedPath MirrorTree::TreesAt(const std::string& repo) const { return Below(TreesRel(repo)); }

RootedPath MirrorTree::StagingAt(const std::string& repo) const { return Below(StagingRel(repo)); }

Result<std::string> MirrorTree::ActiveRevision(const std::string& repo) const {
  std::string link = LinkPath(repo);
  // By fds: a symlink planted at <root>/<org> is refused, not followed. The
  // link is read first (one walk, the usual case); only when that fails is
  // it looked at again to say why.
  auto read = env_->ReadLinkAt(LinkAt(repo));
  if (!read.ok()) {
    auto info = env_->LstatAt(LinkAt(repo));
    if (!info.ok()) return info.status();
    if (info->type != FileInfo::Type::kSymlink) {
      return Status::InvalidArgument(
          "mirror path " + link,
          "exists and is not managed by sync-agent (not a symlink); move it away so that "
          "sync-agent can serve this repository there");
    }
    return read.status();
  }
  std::string target = std::move(read).value();
  // Ours only in exactly the form Swap writes: the fixed prefix and one valid
  // revision id, so that "../.sync-agent/trees/org/name/../../x" is not.
  std::string prefix = UpToRoot(repo) + TreesRel(repo) + "/";
  std::string revision = target.rfind(prefix, 0) == 0 ? target.substr(prefix.size()) : "";
  if (!IsValidRevisionId(revision)) {
    return Status::InvalidArgument(
        "mirror path " + link,
        "is a symlink to " + target + ", which sync-agent did not create (it writes " + prefix +
            "<revision>); nothing was changed: move the link away and run again");
  }
  return revision;
}

bool MirrorTree::HasTree(const std::string& repo, const std::string& revision) const {
  auto info = env_->LstatAt(TreesAt(repo).Child(revision));
  return info.ok() && info->type == FileInfo::Type::kDirectory;
}

Status MirrorTree::LinkObject(const RootedPath& object, const RootedPath& dest, bool* linked,
                              AssembleStats* stats) {
  SA_ASSIGN_OR_RETURN(LinkOutcome how, env_->LinkAt(object, dest));
  if (how == LinkOutcome::kTooManyLinks) {
    // Replace the object by a fresh inode with the same verified content;
    // trees that link the old one keep it, new links go to the copy.
    RootedPath fresh = object.Parent().Child("." + BaseName(object.rel) + ".renew");
    Status s = env_->RemoveFileAt(fresh);
    if (!s.ok() && !s.IsNotFound()) return s;
    s = CopyFileTo(env_, object.full(), fresh, 0444);
    if (s.ok()) s = env_->RenameAt(fresh, object);
    if (s.ok()) s = env_->SyncDirAt(object.Parent());
    if (!s.ok()) {
      env_->RemoveFileAt(fresh);
      return s;
    }
    stats->renewed++;
    LogWarning(
        "an object reached the file system's hard-link limit; it was replaced by a fresh "
        "copy that new trees link to",
        {{"object", object.full()}});
    SA_ASSIGN_OR_RETURN(how, env_->LinkAt(object, dest));
  }
  *linked = how == LinkOutcome::kLinked;
  return Status::OK();
}

Status MirrorTree::Assemble(const std::string& repo, const Manifest& manifest,
                            const std::function<RootedPath(const std::string&)>& object_path,
                            AssembleStats* stats) {
  RootedPath staging_dir = StagingAt(repo);
  SA_RETURN_IF_ERROR(env_->CreateDirsAt(staging_dir, 0755));
  RootedPath staging = staging_dir.Child(manifest.revision + "." + std::to_string(::getpid()));
  SA_RETURN_IF_ERROR(env_->RemoveTreeAt(staging));
  SA_RETURN_IF_ERROR(env_->CreateDirsAt(staging, 0755));

  Status s = [&]() -> Status {
    std::set<std::string> dirs;  // rel paths
    dirs.insert(staging.rel);
    for (const ManifestEntry& e : manifest.files) {
      RootedPath dest = staging.Child(e.path);
      RootedPath parent = dest.Parent();
      if (dirs.insert(parent.rel).second) SA_RETURN_IF_ERROR(env_->CreateDirsAt(parent, 0755));
      RootedPath object = object_path(e.sha256);
      // Objects are 0444; executables need their own inode with 0555.
      bool linked = false;
      if (e.mode == 0644) SA_RETURN_IF_ERROR(LinkObject(object, dest, &linked, stats));
      if (linked) {
        stats->linked++;
      } else {
        // Another file system, or one without hard links: a copy.
        SA_RETURN_IF_ERROR(CopyFileTo(env_, object.full(), dest, e.mode == 0755 ? 0555 : 0444));
        stats->copied++;
      }
      KillPoint("assemble-file");  // test-only: staging holds part of the tree
    }
    // Directory entries must be durable before the tree becomes visible.
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      SA_RETURN_IF_ERROR(env_->SyncDirAt(Below(*it)));
    }
    RootedPath final_path = TreesAt(repo).Child(manifest.revision);
    SA_RETURN_IF_ERROR(env_->CreateDirsAt(TreesAt(repo), 0755));
    if (env_->LstatAt(final_path).ok()) {
      // A tree that may be served (verify --repair rebuilds the active
      // revision): the new one takes its place in one step, and readers
      // going through the symlink see the old or the new tree, never none.
      // (CreateDirsAt has just checked every directory above both.)
      Status ex = env_->Exchange(staging.full(), final_path.full());
      if (ex.ok()) {
        SA_RETURN_IF_ERROR(env_->SyncDirAt(TreesAt(repo)));
        return env_->RemoveTreeAt(staging);  // now the old tree
      }
      if (ex.code() != Status::Code::kUnsupported) return ex;
    }
    SA_RETURN_IF_ERROR(env_->RemoveTreeAt(final_path));
    SA_RETURN_IF_ERROR(env_->RenameAt(staging, final_path));
    return env_->SyncDirAt(TreesAt(repo));
  }();
  if (!s.ok()) env_->RemoveTreeAt(staging);
  // The repository's staging directory, empty now unless another assembly
  // runs: left behind, thousands of them would cost the next pass's
  // CleanAllStaging a removal each.
  if (s.ok()) {
    auto left = env_->ListDirAt(staging_dir);
    if (left.ok() && left->empty()) env_->RemoveTreeAt(staging_dir);
  }
  return s;
}

Status MirrorTree::Swap(const std::string& repo, const std::string& revision) {
  if (!HasTree(repo, revision)) {
    return Status::NotFound("swap " + repo, "no assembled tree for revision " + revision);
  }
  std::string link = LinkPath(repo);
  auto info = env_->LstatAt(LinkAt(repo));
  if (!info.ok() && !info.status().IsNotFound()) return info.status();
  if (info.ok() && info->type != FileInfo::Type::kSymlink) {
    return Status::InvalidArgument(
        "mirror path " + link,
        "exists and is not managed by sync-agent (not a symlink); move it away");
  }
  RootedPath parent = LinkAt(repo).Parent();
  SA_RETURN_IF_ERROR(env_->CreateDirsAt(parent, 0755));
  RootedPath tmp = parent.Child(SwapLinkPrefix(link) + std::to_string(::getpid()));
  env_->RemoveFileAt(tmp);  // a leftover of a killed run, if any
  SA_RETURN_IF_ERROR(env_->SymlinkAt(RelativeTarget(repo, revision), tmp));
  KillPoint("swap-link");  // test-only: the new link exists beside the served one
  Status s = env_->RenameAt(tmp, LinkAt(repo));  // the one atomic step readers can observe
  if (!s.ok()) {
    env_->RemoveFileAt(tmp);
    return s;
  }
  KillPoint("swapped");  // test-only: renamed, the directory not yet synced
  return env_->SyncDirAt(parent);
}

Status MirrorTree::RemoveTree(const std::string& repo, const std::string& revision) {
  // Files are read-only; directories need write permission to unlink entries,
  // which they have (0755, owned by us).
  return env_->RemoveTreeAt(TreesAt(repo).Child(revision));
}

Result<std::vector<std::string>> MirrorTree::ListTrees(const std::string& repo) const {
  auto entries = env_->ListDirAt(TreesAt(repo));
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

Status MirrorTree::RemoveRepository(const std::string& repo) {
  auto served = ActiveRevision(repo);
  if (served.ok()) {
    SA_RETURN_IF_ERROR(env_->RemoveFileAt(LinkAt(repo)));
    SA_RETURN_IF_ERROR(env_->SyncDirAt(LinkAt(repo).Parent()));
  } else if (!served.status().IsNotFound()) {
    return served.status();
  }
  SA_RETURN_IF_ERROR(CleanStaging(repo));
  return env_->RemoveTreeAt(TreesAt(repo));
}

Status MirrorTree::CleanStaging(const std::string& repo) {
  SA_RETURN_IF_ERROR(env_->RemoveTreeAt(StagingAt(repo)));
  // Temporary links of a swap killed before its rename.
  const std::string link = LinkPath(repo);
  const std::string prefix = SwapLinkPrefix(link);
  const RootedPath parent = LinkAt(repo).Parent();
  auto entries = env_->ListDirAt(parent);
  if (!entries.ok()) return entries.status().IsNotFound() ? Status::OK() : entries.status();
  for (const auto& e : *entries) {
    if (e.name.rfind(prefix, 0) != 0) continue;
    auto info = env_->LstatAt(parent.Child(e.name));
    if (info.ok() && info->type == FileInfo::Type::kSymlink) {
      SA_RETURN_IF_ERROR(env_->RemoveFileAt(parent.Child(e.name)));
    }
  }
  return Status::OK();
}

Status MirrorTree::RemoveSwapLinksIn(const RootedPath& dir) {
  auto entries = env_->ListDirAt(dir);
  if (!entries.ok()) return entries.status().IsNotFound() ? Status::OK() : entries.status();
  for (const auto& e : *entries) {
    if (!IsSwapLinkName(e.name)) continue;
    auto info = env_->LstatAt(dir.Child(e.name));
    if (info.ok() && info->type == FileInfo::Type::kSymlink) {
      SA_RETURN_IF_ERROR(env_->RemoveFileAt(dir.Child(e.name)));
    }
  }
  return Status::OK();
}

Status MirrorTree::CleanAllStaging() {
  // staging/<org> (or staging/datasets) that is a symlink is refused, as a
  // run's own CleanStaging would refuse it on its way to staging/<org>/<name>.
  const RootedPath staging = Below(std::string(kHiddenDir) + "/staging");
  auto staged = env_->ListDirAt(staging);
  if (!staged.ok() && !staged.status().IsNotFound()) return staged.status();
  if (staged.ok()) {
    for (const auto& e : *staged) {
      auto info = env_->LstatAt(staging.Child(e.name));
      if (info.ok() && info->type == FileInfo::Type::kSymlink) {
        return RefuseForeignPath(staging.Child(e.name).full(), "is a symlink", "directory");
      }
      SA_RETURN_IF_ERROR(env_->RemoveTreeAt(staging.Child(e.name)));
    }
  }
  // <org>/ and datasets/<org>/ directories, each listed once.
  auto orgs = env_->ListDirAt(Below(""));
  if (!orgs.ok()) return orgs.status().IsNotFound() ? Status::OK() : orgs.status();
  for (const auto& org : *orgs) {
    if (org.name.empty() || org.name[0] == '.') continue;
    auto info = env_->LstatAt(Below(org.name));
    if (!info.ok() || info->type != FileInfo::Type::kDirectory) continue;
    if (org.name == "datasets") {
      auto data_orgs = env_->ListDirAt(Below(org.name));
      if (!data_orgs.ok()) continue;
      for (const auto& d : *data_orgs) {
        if (d.name.empty() || d.name[0] == '.') continue;
        auto dinfo = env_->LstatAt(Below(org.name + "/" + d.name));
        if (dinfo.ok() && dinfo->type == FileInfo::Type::kDirectory) {
          SA_RETURN_IF_ERROR(RemoveSwapLinksIn(Below(org.name + "/" + d.name)));
        }
      }
    }
    SA_RETURN_IF_ERROR(RemoveSwapLinksIn(Below(org.name)));
  }
  return Status::OK();
}

}  // namespace sync_agent
