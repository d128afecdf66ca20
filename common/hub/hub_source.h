// HubSource: a repository on a Hugging Face-compatible hub (huggingface.co, a
// mirror of it, another sync-agent node) as a Source. A revision is a hub
// commit; its id is the commit sha.
//
//   Poll           GET /api/{models|datasets}/{repo}/revision/{ref}: the
//                  commit sha. The sha the last poll saw is not_modified
//                  (nothing else is requested).
//   FetchRevision  GET /api/.../tree/{sha}?recursive=true, following the
//                  Link rel="next" pages to the end (siblings may be short
//                  and are not used). A Git LFS entry gives the content's
//                  sha256 and size; a regular file only its git blob id, so
//                  a regular file the node does not hold (HeldContent) is
//                  downloaded here, checked against its blob id and kept in
//                  a spool under state_dir until the engine takes it.
//                  include/exclude globs pick the files.
//   FetchContent   GET /{repo}/resolve/{sha}/{path}: the hub redirects large
//                  files to its CDN; the redirect is resolved once per file
//                  and connection, and the CDN URL is used for the whole
//                  file and for ranges (parallel chunks, resume). Xet
//                  headers are ignored: a plain GET gives the whole file.
//
// The token (SourceOptions::authorization) goes to the hub's own origin
// only, never to a CDN host after a cross-origin redirect. 429 and 503 are
// waited out as Retry-After (or the RateLimit header's t=) says, a few times.
// X-Error-Code answers (RepoNotFound, RevisionNotFound, EntryNotFound,
// GatedRepo) and 401/403 become messages that say what to do.
//
// Thread safety: one thread at a time; Fork() for others.
//
// The [[repo]] keys of this kind (HubKind): hub = "https://huggingface.co",
// ref = "main", type = "model" | "dataset", include = [...], exclude = [...].
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "common/source/source.h"
#include "common/source/source_kind.h"

namespace sync_agent {

struct HubRepoSettings {
  std::string hub;  // the hub's URL, normalized (no trailing slash)
  std::string ref = "main";
  std::string type = "model";        // "model" or "dataset"
  std::vector<std::string> include;  // globs on paths (fnmatch, '*' crosses '/'); empty: all
  std::vector<std::string> exclude;
};

// Whether path is picked by the include and exclude globs.
bool HubPathSelected(const HubRepoSettings& settings, const std::string& path);

class HubSource final : public Source {
 public:
  HubSource(std::string repo, HubRepoSettings settings, SourceOptions options);
  ~HubSource() override;

  const std::string& url() const override { return settings_.hub; }
  const std::string& repo() const override { return repo_; }
  Result<PollResult> Poll(const PollValidators* prev) override;
  Result<RevisionListing> FetchRevision(const PollResult& poll) override;
  Status FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) override;
  Status FetchContentRanges(const ContentRef& content, const std::vector<ByteRange>& ranges,
                            const RangeSink& sink) override;
  std::string ContentLocation(const ContentRef& content) const override;
  // LFS files from the CDN; regular files are small and come from the spool.
  bool ChunksHelp(const ContentRef& content) const override;
  std::unique_ptr<Source> Fork() const override;
  // The ids ("org/name") GET /api/{models|datasets}?author={org} lists,
  // following the Link rel="next" pages to the end: at most max_repos
  // (more is kInvalidArgument naming org_max_repos), each page at most
  // manifest_max_bytes. The ids are as the hub gave them (unchecked).
  Result<std::vector<std::string>> ListAuthorRepos(const std::string& org, size_t max_repos);

 private:
  // "/api/models/org/name" or "/api/datasets/org/name".
  std::string ApiPath() const;
  // The resolve URL of path at revision.
  std::string ResolveUrl(const std::string& revision, const std::string& path) const;
  std::string Context() const;
  // Sends an API or resolve request to the hub, waiting out 429 and 503.
  Result<HttpResponse> SendToHub(HttpRequest request, const BodySink& sink,
                                 std::string* body = nullptr);
  // Where the bytes of an LFS file are: the CDN URL the resolve redirects to
  // (cached per path), or the resolve URL when the hub serves them itself.
  Result<std::string> ContentUrl(const ContentRef& content, bool refresh);
  // The client for a URL: the hub's own, or the one without the token.
  HttpClient* ClientFor(const std::string& url);
  // A regular file's spool copy, downloaded and checked against its blob id
  // if not there yet; *digest gets its sha256 and xxh3.
  Result<std::string> Spool(const std::string& revision, const std::string& path,
                            const std::string& blob, uint64_t size, struct ContentDigest* digest);
  std::string SpoolPath(const std::string& blob) const;
  // The spool copy of a regular file's content, read now if it is missing.
  Result<std::string> SpoolOf(const ContentRef& content);

  std::string repo_;
  HubRepoSettings settings_;
  SourceOptions options_;
  HttpClient client_;      // to the hub: carries the token
  HttpClient cdn_client_;  // to hosts the hub redirects to: never the token
  std::string spool_dir_;
  // Where an LFS file's bytes are, by revision and path. Fork() copies it
  // while this source's thread may add to it: hence the lock.
  mutable std::mutex urls_mu_;
  std::map<std::string, std::string> content_urls_;
  std::string last_modified_;  // of the polled revision
};

class HubSpec final : public SourceSpec {
 public:
  explicit HubSpec(HubRepoSettings settings) : settings_(std::move(settings)) {}
  const char* kind() const override { return "hub"; }
  std::vector<std::string> urls() const override { return {settings_.hub}; }
  Result<std::unique_ptr<Source>> Make(const std::string& url, const std::string& repo,
                                       const SourceOptions& options) const override;
  std::vector<SpecField> Describe() const override;
  std::string ServedPath(const std::string& repo) const override {
    return settings_.type == "dataset" ? "datasets/" + repo : repo;
  }
  // GET /api/{models|datasets}?author=ORG (HubSource::ListAuthorRepos).
  bool ListsOrganisations() const override { return true; }
  Result<std::vector<std::string>> ListOrganisation(const std::string& url, const std::string& org,
                                                    const SourceOptions& options,
                                                    size_t max_repos) const override;
  const HubRepoSettings& settings() const { return settings_; }

 private:
  HubRepoSettings settings_;
};

// `hub = "https://huggingface.co"`, with ref, type, include and exclude.
class HubKind final : public SourceKind {
 public:
  const char* name() const override { return "hub"; }
  const char* description() const override { return "a hub repository"; }
  const char* selector() const override { return "hub"; }
  std::vector<std::string> keys() const override {
    return {"hub", "ref", "type", "include", "exclude"};
  }
  Result<std::shared_ptr<const SourceSpec>> Parse(const RepoTable& table) const override;
};

}  // namespace sync_agent
