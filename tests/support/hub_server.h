// A Hugging Face Hub for tests, on Poco's HTTP server: two listeners that
// answer the way huggingface.co and its file CDN do, for the parts of the
// protocol a mirror needs.
//
// The hub listener (127.0.0.1, port chosen by the kernel):
//
//   GET /api/{models|datasets}/{repo}[/revision/{rev}][?blobs=true]
//       Repository info at a revision (default "main"; "HEAD" is main):
//       _id, id, sha, private, gated (false, "auto" or "manual"),
//       lastModified, and siblings [{"rfilename": path}] (with size, blobId
//       and lfs {sha256, size, pointerSize} when blobs=true). The siblings
//       list can be truncated on demand, as the real Hub's sometimes is.
//   GET /api/{models|datasets}/{repo}/tree/{rev}[/{path}][?recursive=true&expand=true]
//       A JSON array of {"type": "file"|"directory", "oid", "size", "path"}
//       entries, LFS files with "lfs": {"oid", "size", "pointerSize"} and
//       "xetHash", and with expand "lastCommit": {"id", "title", "date"}.
//       Directories are listed in both modes. At most a page per answer
//       (Options::tree_page_size, at most 50 with expand, as on the Hub); a
//       further page is named by `Link: <absolute url with cursor=...>;
//       rel="next"`. The cursor is opaque.
//   GET /api/{models|datasets}[?author={org}][&limit={n}]
//       The repositories the caller may see (a private one only with its
//       token), of author org when given (compared without case, as on the
//       Hub), ordered by id: {"_id", "id", "modelId" (models), "author",
//       "private", "gated", "likes", "downloads", "tags", "createdAt"}. At
//       most Options::list_page_size per answer (the Hub's 1000), with
//       `Link: <absolute url with cursor=...>; rel="next"` while more
//       follow; limit=n answers the first n (at most 1000) and no Link.
//   POST /api/{models|datasets}/{repo}/paths-info/{rev}
//       The tree entries (as above, lastCommit with expand) of the paths in
//       a JSON body {"paths": [...], "expand": bool} (@huggingface/hub) or a
//       form body paths=a&paths=b&expand=... (huggingface_hub); paths that
//       do not exist are left out.
//   GET|HEAD /{repo}/resolve/{rev}/{path}, /datasets/{repo}/resolve/{rev}/{path}
//       A regular file: 200 with its bytes, ETag "\"<git blob sha1>\"",
//       X-Repo-Commit, Content-Length, Accept-Ranges (Range is honoured); or,
//       with Options::regular_files_via_resolve_cache, what huggingface.co
//       answers today: a 307 to the relative
//       /api/resolve-cache/{models|datasets}/{repo}/{commit}/{path}?...,
//       which answers as above.
//       An LFS file: 302 to the CDN listener (or Options::external_cdn_url), with X-Repo-Commit,
//       X-Linked-Etag "\"<sha256>\"", X-Linked-Size, an ETag (the pointer's
//       blob id), and the Xet headers (X-Xet-Hash, `Link: <...>;
//       rel="xet-auth"`) that a client which does not speak Xet must ignore.
//   GET|HEAD /{repo}/raw/{rev}/{path}
//       As resolve, but an LFS file answers its pointer text.
//
//   A revision is a branch, a tag or a full commit sha, percent-encoded or
//   not ("refs%2Fpr%2F1" and "refs/pr/1" both work); a path may be encoded too.
//   Range: "bytes=a-b", "bytes=a-" and "bytes=-n" give 206 with
//   Content-Range, an unsatisfiable one 416; several ranges, or any range of
//   an empty file, get the whole body (200).
//
//   Errors carry X-Error-Code and X-Error-Message, and {"error": message}:
//     RepoNotFound      an unknown repository, or a private one without its
//                       token: 401 when the request has no Authorization
//                       header, 404 when it has one
//     RevisionNotFound  404
//     EntryNotFound     404 with X-Repo-Commit (a path not in the commit, or
//                       a tree path that is not a directory)
//     GatedRepo         content (resolve, raw) of a gated repository: 401
//                       without a token, 403 with a token not granted
//                       access. Its info and tree stay readable, as on the Hub.
//
// The CDN listener (Options::cdn_host, by default 127.0.0.2: another host
// than the hub's, as cdn-lfs.hf.co is another host than huggingface.co):
//
//   GET|HEAD /repos/<aa>/<bb>/<sha256>?...&Expires=<t>&Signature=<s>&Key-Pair-Id=<k>
//       The object's bytes, with Range as above and an ETag of its own. No
//       Authorization is needed; a URL whose signature is wrong or whose
//       Expires has passed gets 403.
//
// Every request on both listeners is logged with its Authorization header,
// so a test can assert that a token never reaches the CDN.
//
// Thread safety: every method may be called from any thread while the
// listeners serve requests; a change is seen by the requests that arrive
// after it returns. The destructor stops both listeners and waits for the
// requests in progress.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sync_agent::testing {

enum class RepoType { kModel, kDataset };

// The git blob id of content: sha1 over "blob <size>\0" + content, as
// `git hash-object` prints it.
std::string GitBlobId(std::string_view content);
// The Git LFS pointer text git stores for content:
// "version https://git-lfs.github.com/spec/v1\noid sha256:<hex>\nsize <n>\n".
std::string LfsPointerText(std::string_view content);

class HubServer {
 public:
  struct Options {
    // The CDN listener's address; any 127/8 address works on Linux.
    std::string cdn_host = "127.0.0.2";
    // Entries per tree page. The Hub answers 1000 per page (50 with expand=true,
    // which caps any page size set here).
    size_t tree_page_size = 1000;
    // Repositories per page of GET /api/models (and datasets).
    size_t list_page_size = 1000;
    // How long a redirect's signed CDN URL stays valid.
    std::chrono::seconds cdn_url_lifetime{3600};
    // Resolve of a regular file answers a relative 307 to its resolve-cache
    // URL (huggingface.co since 2025) instead of the bytes.
    bool regular_files_via_resolve_cache = false;
    // When set ("http://127.0.0.2:8090"), LFS redirects go there instead of
    // to the built-in CDN listener, which a benchmark replaces with nginx
    // serving <root>/repos/<aa>/<bb>/<sha256> (the query is ignored there).
    std::string external_cdn_url;
  };

  struct File {
    std::string content;
    bool lfs = false;  // stored as an LFS object (served by the CDN) instead of a git blob
  };

  // One request as a listener saw it.
  struct Request {
    std::string listener;       // "hub" or "cdn"
    std::string method;         // "GET", "HEAD", ...
    std::string target;         // path and query as sent
    std::string authorization;  // the Authorization header; "" when absent
    std::string range;          // the Range header; "" when absent
    int status = 0;             // the status answered
  };

  // Starts both listeners. Throws (a Poco exception) if one cannot listen,
  // for example when cdn_host is not a local address: call CanListenOn first
  // to skip a test instead.
  HubServer();
  explicit HubServer(Options options);
  ~HubServer();
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  // True if a TCP socket can listen on host (port 0). On false, *why (when
  // not null) says what failed.
  static bool CanListenOn(const std::string& host, std::string* why);

  std::string url() const;      // "http://127.0.0.1:<port>"
  std::string cdn_url() const;  // "http://<cdn_host>:<port>"

  // Repositories. A repository exists from its first commit; repo is an id
  // such as "org/name". The same id names two repositories, one per type.

  // Makes a commit on branch (created if new, from main's head or from
  // nothing) whose files are exactly `files` (paths without a leading "/";
  // a file not listed is gone). Returns the commit's sha: the id of a real
  // git commit over a real git tree (LFS files as their pointers), so tree
  // oids can be checked against git.
  std::string Commit(const std::string& repo, RepoType type, const std::string& branch,
                     const std::map<std::string, File>& files, const std::string& message);
  // Points tag at sha (any string; an unknown sha makes the tag a revision
  // that is not found).
  void Tag(const std::string& repo, RepoType type, const std::string& tag, const std::string& sha);
  // Moves an existing or new branch to sha (a force-push); sha must be a
  // commit of the repository.
  void ResetBranch(const std::string& repo, RepoType type, const std::string& branch,
                   const std::string& sha);
  // The commit branch points at; "" if none.
  std::string Head(const std::string& repo, RepoType type, const std::string& branch) const;

  // Deletes the repository (every branch, tag and commit), as deleting it on
  // the Hub does: it is no longer listed and its API answers RepoNotFound.
  void DeleteRepo(const std::string& repo, RepoType type);

  // Access. Tokens are compared with the "Bearer <token>" of requests.

  // Only requests with this token see the repository (info, tree and
  // resolve); to others it does not exist.
  void SetPrivate(const std::string& repo, RepoType type, const std::string& token);
  // The repository's files need granted_token; its info and tree do not.
  // mode is "auto" or "manual", as the info's "gated" field reports it.
  void SetGated(const std::string& repo, RepoType type, const std::string& granted_token,
                const std::string& mode = "manual");

  // Faults, on the hub listener unless said otherwise.

  // The next n requests get 429 with Retry-After and the Hub's RateLimit
  // and RateLimit-Policy headers.
  void RateLimitNext(int n, int retry_after_seconds);
  // The next n requests (after any rate-limited ones) get 503 with Retry-After.
  void ServiceUnavailableNext(int n, int retry_after_seconds);
  // Downloads of the file (key: a path in any commit, or an LFS sha256) get
  // other bytes of the same length, from the hub or the CDN.
  void ServeWrongBytes(const std::string& key);
  // The next GET of the file's bytes (key as above) sends only n body bytes,
  // then closes the connection; later downloads are whole again.
  void CutOffNextDownload(const std::string& key, size_t n);
  // Info answers list at most max_listed siblings; nullopt lists them all.
  void TruncateSiblings(std::optional<size_t> max_listed);
  void SetTreePageSize(size_t n);  // as Options::tree_page_size; 0 counts as 1
  void SetListPageSize(size_t n);  // as Options::list_page_size; 0 counts as 1

  // The request log of both listeners, in arrival order.
  std::vector<Request> requests() const;
  void ClearRequests();

  struct State;

 private:
  std::shared_ptr<State> state_;
  struct Listeners;
  std::unique_ptr<Listeners> listeners_;
};

}  // namespace sync_agent::testing
