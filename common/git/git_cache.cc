#include "common/git/git_cache.h"

#include <git2.h>

#include <algorithm>
#include <cstring>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/http/http_text.h"

namespace sync_agent {
namespace {

// libgit2 keeps global state that must be set up once per process.
void InitLibgit2() {
  static const int once = git_libgit2_init();
  (void)once;
}

// An owner for a libgit2 object freed by F.
template <typename T, void (*F)(T*)>
struct GitFree {
  void operator()(T* p) const noexcept { F(p); }
};
template <typename T, void (*F)(T*)>
using GitPtr = std::unique_ptr<T, GitFree<T, F>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;
using CommitPtr = GitPtr<git_commit, git_commit_free>;
using TreePtr = GitPtr<git_tree, git_tree_free>;
using BlobPtr = GitPtr<git_blob, git_blob_free>;
using ObjectPtr = GitPtr<git_object, git_object_free>;
using OdbPtr = GitPtr<git_odb, git_odb_free>;

// libgit2's last error for a failed call, as a Status of the right kind.
Status GitError(int rc, const std::string& context) {
  const git_error* e = git_error_last();
  std::string message =
      e != nullptr && e->message != nullptr ? e->message : "libgit2 error " + std::to_string(rc);
  int klass = e != nullptr ? e->klass : 0;
  if (rc == GIT_ENOTFOUND) return Status::NotFound(context, message);
  if (klass == GIT_ERROR_NET || klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSL ||
      klass == GIT_ERROR_SSH) {
    return Status::Network(context, message);
  }
  return Status::IOError(context, message);
}

std::string OidHex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

bool IsCommitId(std::string_view s) { return IsLowerHex(s, 40); }

constexpr std::string_view kLfsVersion = "version https://git-lfs.github.com/spec/v1\n";
constexpr size_t kLfsMaxPointerBytes = 1024;
constexpr const char* kCacheRefPrefix = "refs/sync-agent/";

}  // namespace

// ---- LFS pointers --------------------------------------------------------

Result<std::optional<LfsPointer>> ParseLfsPointer(std::string_view blob) {
  // Pointer files are small text files starting with the version line; any
  // other blob is content.
  if (blob.size() >= kLfsMaxPointerBytes || blob.substr(0, kLfsVersion.size()) != kLfsVersion) {
    return std::optional<LfsPointer>();
  }
  const std::string context = "git lfs pointer";
  LfsPointer p;
  bool have_oid = false, have_size = false;
  std::string last_key;  // keys after the version line come sorted
  size_t pos = kLfsVersion.size();
  while (pos < blob.size()) {
    size_t eol = blob.find('\n', pos);
    if (eol == std::string_view::npos) {
      return Status::Corruption(
          context, "line at byte " + std::to_string(pos) + " does not end with a newline");
    }
    std::string_view line = blob.substr(pos, eol - pos);
    size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0) {
      return Status::Corruption(context, "line \"" + std::string(line) + "\" is not \"key value\"");
    }
    std::string key(line.substr(0, space));
    std::string_view value = line.substr(space + 1);
    if (key <= last_key) {
      return Status::Corruption(context, "key \"" + key + "\" is out of order or repeated");
    }
    last_key = key;
    if (key == "oid") {
      if (value.substr(0, 7) != "sha256:" || !IsLowerHex(value.substr(7), 64)) {
        return Status::Corruption(context, "oid \"" + std::string(value) +
                                               "\" is not sha256: and 64 lowercase hex digits");
      }
      p.oid = std::string(value.substr(7));
      have_oid = true;
    } else if (key == "size") {
      if (!ParseDecimal(value, &p.size)) {
        return Status::Corruption(context, "size \"" + std::string(value) + "\" is not a number");
      }
      have_size = true;
    }
    pos = eol + 1;
  }
  if (!have_oid || !have_size) {
    return Status::Corruption(context, std::string("has no ") + (have_oid ? "size" : "oid"));
  }
  return std::optional<LfsPointer>(p);
}

Status SetGitCaFile(const std::string& path) {
  InitLibgit2();
  if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, path.c_str(), nullptr) < 0) {
    return GitError(-1, "use CA file " + path + " for git remotes");
  }
  return Status::OK();
}

// ---- symlinks ------------------------------------------------------------

bool SymlinkStaysInside(std::string_view path, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  std::vector<std::string_view> parts;
  size_t slash = path.rfind('/');
  std::string_view dir = slash == std::string_view::npos ? "" : path.substr(0, slash);
  auto walk = [&parts](std::string_view s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('/', start);
      if (end == std::string_view::npos) end = s.size();
      std::string_view c = s.substr(start, end - start);
      if (c == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else if (!c.empty() && c != ".") {
        parts.push_back(c);
      }
      start = end + 1;
    }
    return true;
  };
  return walk(dir) && walk(target);
}

// ---- GitCache ------------------------------------------------------------

struct GitCache::Rep {
  RepoPtr repo;
  std::string dir;
  std::vector<std::string> http_headers;
  std::vector<char*> header_ptrs;  // into http_headers, for libgit2
  git_strarray headers() {
    header_ptrs.clear();
    for (std::string& h : http_headers) header_ptrs.push_back(h.data());
    return git_strarray{header_ptrs.data(), header_ptrs.size()};
  }
};

GitCache::GitCache(std::string url, std::unique_ptr<Rep> rep)
    : url_(std::move(url)), rep_(std::move(rep)) {}
GitCache::~GitCache() = default;

Result<std::unique_ptr<GitCache>> GitCache::Open(const std::string& dir, const std::string& url,
                                                 std::vector<std::string> http_headers) {
  InitLibgit2();
  git_repository* raw = nullptr;
  int rc = git_repository_open_bare(&raw, dir.c_str());
  if (rc == GIT_ENOTFOUND) {
    rc = git_repository_init(&raw, dir.c_str(), /*is_bare=*/1);
    if (rc < 0) return GitError(rc, "create git cache " + dir + " for " + url);
  } else if (rc < 0) {
    return GitError(
        rc, "open git cache " + dir + " for " + url + " (move it aside and it is created again)");
  }
  auto rep = std::make_unique<Rep>();
  rep->repo.reset(raw);
  rep->dir = dir;
  rep->http_headers = std::move(http_headers);
  return std::unique_ptr<GitCache>(new GitCache(url, std::move(rep)));
}

namespace {

struct RemoteRef {
  std::string name;    // full ref name as the remote lists it
  std::string commit;  // what it peels to
};

// Lists the remote's refs and finds ref among them: exact full name, then
// refs/heads/<ref>, then refs/tags/<ref> (peeled, for annotated tags).
Result<RemoteRef> FindRemoteRef(git_repository* repo, const std::string& url,
                                const std::string& ref, const git_strarray* headers) {
  git_remote* raw = nullptr;
  int rc = git_remote_create_anonymous(&raw, repo, url.c_str());
  if (rc < 0) return GitError(rc, "git remote " + url);
  RemotePtr remote(raw);
  git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
  rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, headers);
  if (rc < 0) {
    // Whatever libgit2 calls it (an OS error for a refused connection, "not
    // found" for a local path that is no repository), the remote is the
    // problem, not the ref.
    const git_error* e = git_error_last();
    return Status::Network(
        "connect to git remote " + url,
        e != nullptr && e->message != nullptr ? e->message : "libgit2 error " + std::to_string(rc));
  }
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  rc = git_remote_ls(&heads, &count, remote.get());
  if (rc < 0) return GitError(rc, "list refs of git remote " + url);
  std::vector<std::string> wanted;
  if (ref == "HEAD" || ref.rfind("refs/", 0) == 0) {
    wanted = {ref};
  } else {
    wanted = {"refs/heads/" + ref, "refs/tags/" + ref};
  }
  for (const std::string& name : wanted) {
    const git_remote_head* found = nullptr;
    const git_remote_head* peeled = nullptr;
    for (size_t i = 0; i < count; ++i) {
      if (name == heads[i]->name) found = heads[i];
      if (name + "^{}" == heads[i]->name) peeled = heads[i];
    }
    if (found != nullptr) {
      return RemoteRef{name, OidHex(peeled != nullptr ? peeled->oid : found->oid)};
    }
  }
  std::string known;
  size_t listed = 0;
  for (size_t i = 0; i < count && listed < 10; ++i) {
    std::string_view n = heads[i]->name;
    if (n.size() > 3 && n.substr(n.size() - 3) == "^{}") continue;
    known += (known.empty() ? "" : ", ") + std::string(n);
    ++listed;
  }
  return Status::NotFound("git remote " + url,
                          "has no ref \"" + ref + "\" (it has: " +
                              (known.empty() ? std::string("no refs at all") : known) + ")");
}

}  // namespace

Result<std::string> GitCache::ResolveRemote(const std::string& ref) {
  if (IsCommitId(ref)) return ref;
  git_strarray headers = rep_->headers();
  SA_ASSIGN_OR_RETURN(RemoteRef found, FindRemoteRef(rep_->repo.get(), url_, ref, &headers));
  return found.commit;
}

Result<std::string> GitCache::Fetch(const std::string& ref, const CancelFlag* cancel) {
  git_repository* repo = rep_->repo.get();
  std::vector<std::string> specs;
  std::string local;
  git_strarray headers = rep_->headers();
  if (IsCommitId(ref)) {
    // A commit id: fetch every branch and tag, then look for it.
    specs = {std::string("+refs/heads/*:") + kCacheRefPrefix + "refs/heads/*",
             std::string("+refs/tags/*:") + kCacheRefPrefix + "refs/tags/*"};
  } else {
    SA_ASSIGN_OR_RETURN(RemoteRef found, FindRemoteRef(repo, url_, ref, &headers));
    local = kCacheRefPrefix + found.name;
    specs = {"+" + found.name + ":" + local};
  }
  git_remote* raw = nullptr;
  int rc = git_remote_create_anonymous(&raw, repo, url_.c_str());
  if (rc < 0) return GitError(rc, "git remote " + url_);
  RemotePtr remote(raw);
  std::vector<char*> spec_ptrs;
  for (std::string& s : specs) spec_ptrs.push_back(s.data());
  git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  options.custom_headers = headers;
  options.callbacks.payload = const_cast<CancelFlag*>(cancel);
  options.callbacks.transfer_progress = [](const git_indexer_progress*, void* payload) -> int {
    auto* stop = static_cast<const CancelFlag*>(payload);
    return stop != nullptr && stop->load() ? -1 : 0;
  };
  rc = git_remote_fetch(remote.get(), &refspecs, &options, nullptr);
  if (rc < 0 && cancel != nullptr && cancel->load()) {
    return Status::Cancelled("fetch " + ref + " from git remote " + url_, "stop requested");
  }
  if (rc < 0) return GitError(rc, "fetch " + ref + " from git remote " + url_);

  git_object* obj = nullptr;
  std::string spec = IsCommitId(ref) ? ref : local;
  rc = git_revparse_single(&obj, repo, (spec + "^{commit}").c_str());
  if (rc < 0) {
    if (rc == GIT_ENOTFOUND && IsCommitId(ref)) {
      return Status::NotFound("git remote " + url_,
                              "commit " + ref + " is on none of its branches or tags");
    }
    return GitError(rc, "read " + ref + " fetched from " + url_);
  }
  ObjectPtr commit(obj);
  return OidHex(*git_object_id(commit.get()));
}

bool GitCache::HasCommit(const std::string& commit_id) {
  git_oid oid;
  if (!IsCommitId(commit_id) || git_oid_fromstr(&oid, commit_id.c_str()) < 0) return false;
  git_commit* raw = nullptr;
  if (git_commit_lookup(&raw, rep_->repo.get(), &oid) < 0) return false;
  git_commit_free(raw);
  return true;
}

Result<GitTree> GitCache::ReadTree(const std::string& commit_id) {
  git_repository* repo = rep_->repo.get();
  const std::string context = "read tree of commit " + commit_id + " from " + url_;
  git_oid oid;
  if (!IsCommitId(commit_id) || git_oid_fromstr(&oid, commit_id.c_str()) < 0) {
    return Status::InvalidArgument(context, "not a 40-hex commit id");
  }
  git_commit* raw_commit = nullptr;
  int rc = git_commit_lookup(&raw_commit, repo, &oid);
  if (rc < 0) return GitError(rc, context);
  CommitPtr commit(raw_commit);
  git_tree* raw_tree = nullptr;
  rc = git_commit_tree(&raw_tree, commit.get());
  if (rc < 0) return GitError(rc, context);
  TreePtr tree(raw_tree);
  git_odb* raw_odb = nullptr;
  rc = git_repository_odb(&raw_odb, repo);
  if (rc < 0) return GitError(rc, context);
  OdbPtr odb(raw_odb);

  GitTree out;
  out.commit = commit_id;
  out.tree_id = OidHex(*git_tree_id(tree.get()));
  out.commit_time = static_cast<int64_t>(git_commit_time(commit.get()));
  if (git_commit_parentcount(commit.get()) > 0) {
    out.parent = OidHex(*git_commit_parent_id(commit.get(), 0));
  }
  struct Walk {
    GitCache* self;
    git_odb* odb;
    GitTree* out;
    Status status;
  } walk{this, odb.get(), &out, Status::OK()};
  auto visit = [](const char* root, const git_tree_entry* entry, void* payload) -> int {
    auto* w = static_cast<Walk*>(payload);
    git_filemode_t mode = git_tree_entry_filemode(entry);
    if (mode == GIT_FILEMODE_TREE) return 0;  // descend
    GitTreeEntry e;
    e.path = std::string(root) + git_tree_entry_name(entry);
    e.id = OidHex(*git_tree_entry_id(entry));
    switch (mode) {
      case GIT_FILEMODE_BLOB:
        e.kind = GitTreeEntry::Kind::kFile;
        break;
      case GIT_FILEMODE_BLOB_EXECUTABLE:
        e.kind = GitTreeEntry::Kind::kExecutable;
        break;
      case GIT_FILEMODE_LINK:
        e.kind = GitTreeEntry::Kind::kSymlink;
        break;
      case GIT_FILEMODE_COMMIT:
        e.kind = GitTreeEntry::Kind::kSubmodule;
        w->out->entries.push_back(std::move(e));
        return 0;
      default:
        w->status = Status::Unsupported("tree entry " + e.path,
                                        "unknown file mode " + std::to_string(mode));
        return -1;
    }
    size_t len = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    int rc = git_odb_read_header(&len, &type, w->odb, git_tree_entry_id(entry));
    if (rc < 0) {
      w->status = GitError(rc, "read blob " + e.id + " (" + e.path + ")");
      return -1;
    }
    e.size = len;
    if (e.kind == GitTreeEntry::Kind::kSymlink) {
      auto target = w->self->ReadBlob(e.id, 4096);
      if (!target.ok()) {
        w->status = target.status();
        return -1;
      }
      e.target = *target;
      if (!SymlinkStaysInside(e.path, e.target)) {
        w->status = Status::InvalidArgument(
            "symlink " + e.path, "points to \"" + e.target + "\", outside the repository");
        return -1;
      }
    }
    w->out->entries.push_back(std::move(e));
    return 0;
  };
  rc = git_tree_walk(tree.get(), GIT_TREEWALK_PRE, visit, &walk);
  if (!walk.status.ok()) return walk.status.WithContext(context);
  if (rc < 0) return GitError(rc, context);
  std::sort(out.entries.begin(), out.entries.end(),
            [](const GitTreeEntry& a, const GitTreeEntry& b) { return a.path < b.path; });
  return out;
}

Result<std::string> GitCache::ReadBlob(const std::string& blob_id, uint64_t max_bytes) {
  const std::string context = "read blob " + blob_id + " from the cache of " + url_;
  git_oid oid;
  if (git_oid_fromstr(&oid, blob_id.c_str()) < 0) {
    return Status::InvalidArgument(context, "not a 40-hex object id");
  }
  git_blob* raw = nullptr;
  int rc = git_blob_lookup(&raw, rep_->repo.get(), &oid);
  if (rc < 0) return GitError(rc, context);
  BlobPtr blob(raw);
  uint64_t size = static_cast<uint64_t>(git_blob_rawsize(blob.get()));
  if (size > max_bytes) {
    return Status::InvalidArgument(context, std::to_string(size) + " bytes, more than the " +
                                                std::to_string(max_bytes) + " allowed");
  }
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
  return std::string(data, size);
}

std::string GitCacheName(const std::string& url) { return Sha256Hex(url).substr(0, 16); }

}  // namespace sync_agent
