// MaterializeGitRevision: writes the files of one commit of a git remote,
// with Git LFS pointers resolved to their objects, into a plain directory,
// so that the publisher can publish it like any model directory (revision id
// = commit id). Regular blobs come from the bare cache; LFS objects from the
// remote's LFS store for a local remote, else through the LFS batch API.
// Every LFS object is checked against its oid (sha256) and size before it is
// kept. Submodules are skipped with a warning; symlinks whose target leaves
// the repository fail the call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/http/http_client.h"

namespace sync_agent {

class Env;

struct GitMaterializeOptions {
  std::string cache_dir;          // the bare cache of this remote (created if missing)
  std::string lfs_authorization;  // sent as Authorization to the LFS batch endpoint
  HttpClientOptions http;
};

struct GitMaterializeResult {
  std::string commit;
  std::string tree_id;
  uint64_t files = 0;
  uint64_t lfs_files = 0;
  uint64_t bytes = 0;
  std::vector<std::string> warnings;  // one line each (skipped submodules)
  struct File {
    std::string path;
    std::string blob;  // the blob in the tree (an LFS file's pointer blob)
    bool lfs = false;
  };
  std::vector<File> written;  // regular and LFS files (not symlinks)
};

// out_dir must not exist; it is created and filled. On failure it is removed.
Result<GitMaterializeResult> MaterializeGitRevision(Env* env, const std::string& url,
                                                    const std::string& ref,
                                                    const std::string& out_dir,
                                                    const GitMaterializeOptions& options);

}  // namespace sync_agent
