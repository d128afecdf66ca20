#include "common/sync/pin.h"

#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/mirror/mirror_tree.h"
#include "common/sync/run_lock.h"

namespace sync_agent {
namespace {

constexpr size_t kMinPrefix = 4;

bool Held(const RevisionRow& r) {
  return r.state == RevisionState::kActive || r.state == RevisionState::kRetained;
}

// Swaps repo's served link to revision and records it active. The caller
// holds the SwapLock.
Status Serve(Env* env, StateDb* db, const PinPaths& paths, const std::string& repo,
             const std::string& revision, int64_t now_ms) {
  MirrorTree mirror(env, paths.mirror_root);
  SA_RETURN_IF_ERROR(mirror.Swap(repo, revision));
  return db->ActivateRevision(repo, revision, now_ms);
}

}  // namespace

std::string DescribeHeldRevisions(const std::vector<RevisionRow>& revisions) {
  std::string out;
  for (const RevisionRow& r : revisions) {
    if (!Held(r)) continue;
    if (!out.empty()) out += ", ";
    out += r.revision + " (" + RevisionStateName(r.state) + ")";
  }
  return out.empty() ? "none" : out;
}

Result<PinResult> PinRevision(Env* env, StateDb* db, const PinPaths& paths, const std::string& repo,
                              const std::string& revision, int64_t now_ms) {
  const std::string context = "pin " + repo + " to " + revision;
  SA_ASSIGN_OR_RETURN(std::vector<std::string> names, db->RepoNames());
  bool known = false;
  for (const std::string& n : names) known = known || n == repo;
  if (!known) {
    return Status::NotFound(context, "this node has no repository " + repo +
                                         " (its state database has never synced it); "
                                         "`sync-agent status` lists the repositories it holds");
  }
  SA_ASSIGN_OR_RETURN(std::vector<RevisionRow> revisions, db->ListRevisions(repo));
  MirrorTree mirror(env, paths.mirror_root);
  // An exact name, else a unique prefix of a held one.
  std::vector<const RevisionRow*> matches;
  for (const RevisionRow& r : revisions) {
    if (r.revision == revision) {
      matches = {&r};
      break;
    }
    if (revision.size() >= kMinPrefix && r.revision.compare(0, revision.size(), revision) == 0 &&
        Held(r)) {
      matches.push_back(&r);
    }
  }
  const std::string held = "; it holds: " + DescribeHeldRevisions(revisions);
  if (matches.size() > 1) {
    return Status::InvalidArgument(context, "the prefix names " + std::to_string(matches.size()) +
                                                " revisions; give more of it" + held);
  }
  if (matches.empty() || !Held(*matches[0]) || !mirror.HasTree(repo, matches[0]->revision)) {
    std::string why =
        matches.empty() ? "the node does not hold that revision"
        : !Held(*matches[0])
            ? std::string("the node no longer holds that revision (it is ") +
                  RevisionStateName(matches[0]->state) + ")"
            : "its tree is missing from the mirror (run `sync-agent verify " + repo + " --repair`)";
    return Status::NotFound(context, why + held);
  }
  PinResult result;
  result.revision = matches[0]->revision;
  SwapLock lock;
  SA_RETURN_IF_ERROR(lock.Acquire(paths.state_dir));
  SA_ASSIGN_OR_RETURN(result.previous_pin, db->GetPin(repo));
  auto served = mirror.ActiveRevision(repo);
  if (served.ok()) {
    result.was_serving = *served;
  } else if (!served.status().IsNotFound()) {
    return served.status().WithContext(context);
  }
  // The pin first: a pin killed before its swap is completed by the next run (ApplyPin).
  SA_RETURN_IF_ERROR(db->SetPin(repo, result.revision, now_ms));
  if (result.was_serving != result.revision) {
    SA_RETURN_IF_ERROR(Serve(env, db, paths, repo, result.revision, now_ms));
    result.swapped = true;
  } else {
    SA_RETURN_IF_ERROR(db->ActivateRevision(repo, result.revision, now_ms));
  }
  return result;
}

Result<std::optional<PinRow>> Unpin(StateDb* db, const std::string& repo) {
  return db->ClearPin(repo);
}

Result<std::string> ApplyPin(Env* env, StateDb* db, const PinPaths& paths,
                             const std::string& repo) {
  SwapLock lock;
  SA_RETURN_IF_ERROR(lock.Acquire(paths.state_dir));
  SA_ASSIGN_OR_RETURN(std::optional<PinRow> pin, db->GetPin(repo));
  if (!pin) return std::string();
  MirrorTree mirror(env, paths.mirror_root);
  auto served = mirror.ActiveRevision(repo);
  if (served.ok() && *served == pin->revision) return std::string();
  if (!mirror.HasTree(repo, pin->revision)) {
    return Status::NotFound("serve the pinned revision " + pin->revision + " of " + repo,
                            "its tree is missing from the mirror; run `sync-agent verify " + repo +
                                " --repair`, or `sync-agent unpin " + repo + "`");
  }
  SA_RETURN_IF_ERROR(Serve(env, db, paths, repo, pin->revision, NowMs()));
  return pin->revision;
}

}  // namespace sync_agent
