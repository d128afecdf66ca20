#include "common/publish/git_publisher.h"

#include <signal.h>

#include <cerrno>

#include "common/fs/env.h"
#include "common/git/git_cache.h"
#include "common/git/git_materialize.h"
#include "common/http/http_text.h"

namespace sync_agent {
namespace {

// Removes the staging directories ("staging.<pid>") that publishes killed
// before their clean-up left in a git work directory.
void RemoveDeadStaging(Env* env, const std::string& work) {
  auto entries = env->ListDir(work);
  if (!entries.ok()) return;
  for (const auto& e : *entries) {
    if (e.name.rfind("staging.", 0) != 0) continue;
    uint64_t pid = 0;
    if (!ParseDecimal(std::string_view(e.name).substr(8), &pid) || pid == 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      RemoveTree(env, JoinPath(work, e.name));
    }
  }
}

}  // namespace

Result<GitPublishResult> PublishGitRevision(Env* env, GitPublishOptions options) {
  std::string out = options.publish.out_root;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  const std::string work = JoinPath(DirName(out), "." + BaseName(out) + ".git-work");
  GitMaterializeOptions g;
  g.cache_dir = JoinPath(work, "cache/" + GitCacheName(options.url));
  g.lfs_authorization = options.lfs_authorization;
  const std::string staging = JoinPath(work, "staging." + std::to_string(::getpid()));
  RemoveDeadStaging(env, work);
  RemoveTree(env, staging);
  SA_RETURN_IF_ERROR(CreateDirs(env, DirName(g.cache_dir), 0700));
  auto m = MaterializeGitRevision(env, options.url, options.ref, staging, g);
  if (!m.ok()) {
    RemoveTree(env, staging);
    return m.status();
  }
  PublishOptions& opt = options.publish;
  opt.input_dir = staging;
  if (opt.revision.empty()) opt.revision = m->commit;
  opt.provenance = {{"kind", "git"}, {"commit", m->commit}, {"tree", m->tree_id}};
  for (const auto& f : m->written) {
    Provenance& p = opt.file_provenance[f.path];
    p["blob"] = f.blob;
    if (f.lfs) p["lfs"] = "true";
  }
  auto r = PublishDirectory(env, opt);
  RemoveTree(env, staging);
  SA_RETURN_IF_ERROR(r.status());
  return GitPublishResult{std::move(r).value(), m->warnings};
}

}  // namespace sync_agent
