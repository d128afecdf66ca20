// HubApi: the node's repositories as a Hugging Face Hub, for the clients
// users already have (HF_ENDPOINT / hubUrl: huggingface_hub, transformers,
// transformers.js, @huggingface/hub) and for other nodes ([[repo]] hub = the
// node's URL). Everything is read from what the node holds: the state
// database (revisions, files, the Hub ids computed at sync; see
// common/sync/hub_ids.h) and the mirror tree. Nothing calls upstream.
//
//   GET  /api/{models|datasets}/{repo}[/revision/{rev}]    repo info
//   GET  /api/{t}/{repo}/tree/{rev}[/{path}]?recursive=&expand=&cursor=
//   POST /api/{t}/{repo}/paths-info/{rev}                  JSON or form body
//   HEAD|GET /[datasets/]{repo}/resolve/{rev}/{path}        the file, 200 (no
//        redirect), X-Repo-Commit, ETag = sha256 (LFS) or blob id, X-Linked-Etag,
//        X-Linked-Size, ranges; an empty file answers 200 with
//        "Content-Range: bytes */0" (a 416 breaks @huggingface/hub)
//   HEAD|GET /[datasets/]{repo}/raw/{rev}/{path}            the same, but a Git
//        LFS file answers its pointer text
//
// A revision ({rev}) is "main", "HEAD" or the ref the repository follows
// (the active revision), a retained revision's id or its 40-hex Hub sha;
// "refs%2Fpr%2F1" and unencoded "refs/pr/1" both work. Unknown repositories,
// revisions and paths answer 404 with X-Error-Code RepoNotFound,
// RevisionNotFound or EntryNotFound (the last with X-Repo-Commit). Never an
// X-Xet-* header or the Xet content type: clients stay on plain HTTP.
//
// With accel_redirect_prefix set, file bodies are handed to nginx
// (X-Accel-Redirect to an internal location on the mirror root), which
// sends them at its own speed; the metadata headers come from here.
//
// Thread safety: Handle may be called from many threads at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/http/static_server.h"

namespace sync_agent {

struct HubApiOptions {
  std::string state_dir;    // its state.db is read, never written
  std::string mirror_root;  // files are sent from its revision trees
  // Besides "main" and "HEAD", the refs that name a repository's active
  // revision (by the node's name for it: "org/name", "datasets/org/name"),
  // e.g. the tag a [[repo]] follows.
  std::map<std::string, std::vector<std::string>> refs;
  // When set (e.g. "/_sync_agent_files/"), a file is answered with its
  // headers and "X-Accel-Redirect: <prefix><path under mirror_root>".
  std::string accel_redirect_prefix;
  size_t tree_page_size = 1000;       // entries per tree page
  size_t tree_page_size_expand = 50;  // with expand=true, as huggingface.co
};

class HubApi {
 public:
  explicit HubApi(HubApiOptions options);
  ~HubApi();
  HubApi(const HubApi&) = delete;
  HubApi& operator=(const HubApi&) = delete;

  // The answer to a Hub API request, or nullopt for a request that is not
  // one (the server then serves the mirror tree as plain files).
  std::optional<RoutedResponse> Handle(const RoutedRequest& request);

  struct Snapshot;

 private:
  // What the database says now, rebuilt when it changed (data_version).
  std::shared_ptr<const Snapshot> Current();

  HubApiOptions options_;
  std::mutex mu_;  // db_, snapshot_, version_
  struct Db;
  std::unique_ptr<Db> db_;
  std::shared_ptr<const Snapshot> snapshot_;
  int64_t version_ = -1;
};

}  // namespace sync_agent
