// `sync-agent publish --git`: a commit of a git remote, with its Git LFS
// objects resolved, published as a revision named by the commit id, its
// manifest carrying the commit, tree and blob ids as provenance.
//
// The remote's bare cache and the staging checkout live in a work
// directory beside the publish root (".<root's name>.git-work"); staging
// left by publishes that were killed is removed first.
#pragma once

#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/publish/publisher.h"

namespace sync_agent {

class Env;

struct GitPublishOptions {
  std::string url;  // the remote: a URL, a local path or file://
  std::string ref = "main";
  // Sent as the Authorization header of Git LFS batch requests ("" for none).
  std::string lfs_authorization;
  // repo, out_root, revision (default: the commit id), allow_unchanged and
  // deltas as for a directory; input_dir and provenance are set here.
  PublishOptions publish;
};

struct GitPublishResult {
  PublishResult published;
  std::vector<std::string> warnings;  // e.g. skipped submodules
};

Result<GitPublishResult> PublishGitRevision(Env* env, GitPublishOptions options);

}  // namespace sync_agent
