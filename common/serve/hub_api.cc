#include "common/serve/hub_api.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <openssl/evp.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "common/base/json_text.h"
#include "common/db/state_db.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/http/http_text.h"
#include "common/mirror/mirror_tree.h"

namespace sync_agent {
namespace {

// One entry of a revision's tree as the Hub shows it.
struct TreeEntry {
  bool dir = false;
  std::string path;
  std::string oid;  // blob id, or the git tree id of a directory
  uint64_t size = 0;
  const FileRow* file = nullptr;  // files only
};

struct RevView {
  RevisionRow row;
  std::vector<FileRow> files;                       // sorted by path
  std::vector<TreeEntry> entries;                   // files and directories, sorted by path
  std::unordered_map<std::string, size_t> by_path;  // into entries
};

struct RepoView {
  std::string name;  // the hub id: "org/name"
  bool dataset = false;
  std::vector<std::unique_ptr<RevView>> revisions;  // active and retained, on disk
  const RevView* active = nullptr;
  std::vector<std::string> refs;  // names of the active revision
};

std::string Sha1Raw(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string RawToHex(const std::string& raw) {
  return LowerHex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string HexToRaw(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(HexDigitValue(hex[i]) * 16 + HexDigitValue(hex[i + 1])));
  }
  return out;
}

// The files and directories of a revision, directories with their git tree
// ids (as git would compute them from the files' blob ids), so that a
// client comparing oids sees what a git checkout of the revision would have.
void BuildEntries(RevView* rev) {
  struct Dir {
    std::map<std::string, std::pair<bool, std::string>> children;  // name -> (is dir, raw id)
  };
  std::map<std::string, Dir> dirs;  // by path ("" for the root)
  dirs[""];
  for (const FileRow& f : rev->files) {
    std::string parent;
    size_t start = 0;
    for (size_t slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', start)) {
      std::string dir = f.path.substr(0, slash);
      dirs[parent].children[dir.substr(parent.empty() ? 0 : parent.size() + 1)] = {true, ""};
      dirs[dir];
      parent = dir;
      start = slash + 1;
    }
    dirs[parent].children[f.path.substr(start)] = {false, HexToRaw(f.hub_oid)};
  }
  // Deepest first, so that a directory's children have their ids.
  std::map<std::string, std::string> tree_ids;
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const std::string& path = it->first;
    // git sorts tree entries by name, a directory's name as if it ended in '/'.
    std::vector<std::pair<std::string, std::string>> sorted;  // sort key, entry bytes
    for (const auto& [name, child] : it->second.children) {
      std::string child_path = path.empty() ? name : path + "/" + name;
      std::string id = child.first ? tree_ids[child_path] : child.second;
      sorted.push_back(
          {child.first ? name + "/" : name,
           std::string(child.first ? "40000 " : "100644 ") + name + std::string(1, '\0') + id});
    }
    std::sort(sorted.begin(), sorted.end());
    std::string body;
    for (const auto& s : sorted) body += s.second;
    tree_ids[path] = Sha1Raw("tree " + std::to_string(body.size()) + std::string(1, '\0') + body);
  }
  for (const auto& [path, raw] : tree_ids) {
    if (path.empty()) continue;
    rev->entries.push_back({true, path, RawToHex(raw), 0, nullptr});
  }
  for (const FileRow& f : rev->files) {
    rev->entries.push_back({false, f.path, f.hub_oid, f.size, &f});
  }
  std::sort(rev->entries.begin(), rev->entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  for (size_t i = 0; i < rev->entries.size(); ++i) rev->by_path[rev->entries[i].path] = i;
}

std::string Iso(const std::string& created) {
  return created.empty() ? "1970-01-01T00:00:00Z" : created;
}

std::string LfsJson(const FileRow& f) {
  return "{\"oid\":\"" + f.sha256 + "\",\"size\":" + std::to_string(f.size) +
         ",\"pointerSize\":" + std::to_string(LfsPointerText(f.sha256, f.size).size()) + "}";
}

std::string EntryJson(const TreeEntry& e, const RevView& rev, bool expand) {
  std::string o = "{\"type\":" + std::string(e.dir ? "\"directory\"" : "\"file\"") + ",\"oid\":\"" +
                  e.oid + "\",\"size\":" + std::to_string(e.size) +
                  ",\"path\":" + JsonQuote(e.path);
  if (e.file != nullptr && e.file->hub_lfs) o += ",\"lfs\":" + LfsJson(*e.file);
  if (expand) {
    o += ",\"lastCommit\":{\"id\":\"" + rev.row.hub_sha +
         "\",\"title\":" + JsonQuote("sync-agent revision " + rev.row.revision) +
         ",\"date\":" + JsonQuote(Iso(rev.row.created)) + "}";
  }
  return o + "}";
}

RoutedResponse Json(int status, std::string body) {
  RoutedResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "application/json";
  return r;
}

RoutedResponse HubError(int status, const std::string& code, const std::string& message) {
  RoutedResponse r = Json(status, "{\"error\":" + JsonQuote(message) + "}");
  r.headers.push_back({"X-Error-Code", code});
  r.headers.push_back({"X-Error-Message", message});
  return r;
}

// Headers a browser client (transformers.js) must be allowed to read.
void AddCors(RoutedResponse* r) {
  r->headers.push_back({"Access-Control-Allow-Origin", "*"});
  r->headers.push_back(
      {"Access-Control-Expose-Headers",
       "X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, Content-Range, Accept-Ranges, "
       "X-Error-Code, X-Error-Message, Link"});
}

// "a=1&b=2" -> pairs, percent-decoded ('+' is a space in forms).
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= q.size() && !q.empty()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string_view::npos) amp = q.size();
    std::string part(q.substr(pos, amp - pos));
    std::replace(part.begin(), part.end(), '+', ' ');
    size_t eq = part.find('=');
    std::string key, value;
    PercentDecode(part.substr(0, eq), &key);
    if (eq != std::string::npos) PercentDecode(part.substr(eq + 1), &value);
    if (!key.empty()) out.push_back({key, value});
    pos = amp + 1;
  }
  return out;
}

bool Truthy(const std::string& v) {
  std::string l = AsciiLower(v);
  return l == "1" || l == "true" || l == "yes";
}

std::string Join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < parts.size(); ++i) out += (i > from ? "/" : "") + parts[i];
  return out;
}

}  // namespace

struct HubApi::Snapshot {
  int64_t version = 0;
  std::map<std::string, std::unique_ptr<RepoView>> repos;  // by the node's name
};

struct HubApi::Db {
  std::unique_ptr<StateDb> state;
};

HubApi::HubApi(HubApiOptions options) : options_(std::move(options)), db_(new Db) {}
HubApi::~HubApi() = default;

std::shared_ptr<const HubApi::Snapshot> HubApi::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_->state) {
    // The node may not have synced yet; try again on the next request.
    auto opened = StateDb::OpenReadOnly(JoinPath(options_.state_dir, "state.db"));
    if (!opened.ok()) {
      return snapshot_ ? snapshot_ : std::make_shared<Snapshot>();
    }
    db_->state = std::move(opened).value();
  }
  auto version = db_->state->DataVersion();
  if (!version.ok()) {
    return snapshot_ ? snapshot_ : std::make_shared<Snapshot>();
  }
  if (snapshot_ && *version == version_) return snapshot_;

  auto snap = std::make_shared<Snapshot>();
  snap->version = *version;
  MirrorTree mirror(Env::Default(), options_.mirror_root);
  auto names = db_->state->RepoNames();
  if (names.ok()) {
    for (const std::string& name : *names) {
      auto view = std::make_unique<RepoView>();
      view->dataset = name.rfind("datasets/", 0) == 0;
      view->name = view->dataset ? name.substr(9) : name;
      view->refs = {"main", "HEAD"};
      auto it = options_.refs.find(name);
      if (it != options_.refs.end()) {
        view->refs.insert(view->refs.end(), it->second.begin(), it->second.end());
      }
      auto revisions = db_->state->ListRevisions(name);
      if (!revisions.ok()) continue;
      for (const RevisionRow& r : *revisions) {
        if (r.state != RevisionState::kActive && r.state != RevisionState::kRetained) continue;
        if (r.hub_sha.empty() || !mirror.HasTree(name, r.revision)) continue;
        auto files = db_->state->RevisionFiles(r.id);
        if (!files.ok()) continue;
        auto rev = std::make_unique<RevView>();
        rev->row = r;
        rev->files = std::move(files).value();
        if (std::any_of(rev->files.begin(), rev->files.end(),
                        [](const FileRow& f) { return f.hub_oid.empty(); })) {
          continue;  // ids not computed yet
        }
        BuildEntries(rev.get());
        if (r.state == RevisionState::kActive) view->active = rev.get();
        view->revisions.push_back(std::move(rev));
      }
      snap->repos[name] = std::move(view);
    }
  }
  snapshot_ = snap;
  version_ = *version;
  return snapshot_;
}

namespace {

const RevView* FindRevision(const RepoView& repo, const std::string& rev) {
  if (std::find(repo.refs.begin(), repo.refs.end(), rev) != repo.refs.end()) return repo.active;
  for (const auto& r : repo.revisions) {
    if (r->row.revision == rev || r->row.hub_sha == rev) return r.get();
  }
  return nullptr;
}

// Splits segments into a revision and the path after it: the longest run of
// leading segments that names a revision (unencoded "refs/pr/1"), else the
// first segment alone.
std::pair<std::string, std::string> SplitRevision(const RepoView* repo,
                                                  const std::vector<std::string>& segs,
                                                  size_t from) {
  if (from >= segs.size()) return {"main", ""};
  if (repo != nullptr) {
    for (size_t to = segs.size(); to > from + 1; --to) {
      std::string rev = Join(segs, from, to);
      if (FindRevision(*repo, rev) != nullptr) return {rev, Join(segs, to, segs.size())};
    }
  }
  return {segs[from], Join(segs, from + 1, segs.size())};
}

std::string InfoJson(const RepoView& repo, const RevView& rev, bool blobs) {
  const std::string& name = repo.name;
  std::string o = "{\"_id\":\"" + rev.row.hub_sha.substr(0, 24) + "\",\"id\":" + JsonQuote(name);
  if (!repo.dataset) o += ",\"modelId\":" + JsonQuote(name);
  o += ",\"author\":" + JsonQuote(name.substr(0, name.find('/')));
  o += ",\"sha\":\"" + rev.row.hub_sha + "\"";
  o += ",\"lastModified\":" + JsonQuote(Iso(rev.row.created));
  o += ",\"createdAt\":" + JsonQuote(Iso(rev.row.created));
  o += ",\"private\":false,\"gated\":false,\"disabled\":false,\"downloads\":0,\"likes\":0";
  o += ",\"tags\":[],\"siblings\":[";
  for (size_t i = 0; i < rev.files.size(); ++i) {
    const FileRow& f = rev.files[i];
    o += (i ? ",{" : "{") + std::string("\"rfilename\":") + JsonQuote(f.path);
    if (blobs) {
      o += ",\"size\":" + std::to_string(f.size) + ",\"blobId\":\"" + f.hub_oid + "\"";
      if (f.hub_lfs) {
        o += ",\"lfs\":{\"sha256\":\"" + f.sha256 + "\",\"size\":" + std::to_string(f.size) +
             ",\"pointerSize\":" + std::to_string(LfsPointerText(f.sha256, f.size).size()) + "}";
      }
    }
    o += "}";
  }
  return o + "]}";
}

// The paths of a paths-info body: JSON {"paths": [...]} or a form
// "paths=a&paths=b" (huggingface_hub sends the form, @huggingface/hub JSON).
bool ParsePathsInfoBody(const std::string& body, const std::string& content_type,
                        std::vector<std::string>* paths, bool* expand) {
  if (AsciiLower(content_type).find("json") != std::string::npos ||
      (!body.empty() && body.front() == '{')) {
    try {
      Poco::JSON::Parser parser;
      Poco::Dynamic::Var v = parser.parse(body);
      if (v.type() != typeid(Poco::JSON::Object::Ptr)) return false;
      auto o = v.extract<Poco::JSON::Object::Ptr>();
      auto array = o->getArray("paths");
      if (array.isNull()) {
        if (!o->has("paths") || !o->get("paths").isString()) return false;
        paths->push_back(o->get("paths").extract<std::string>());
      } else {
        for (size_t i = 0; i < array->size(); ++i) {
          Poco::Dynamic::Var p = array->get(static_cast<unsigned>(i));
          if (!p.isString()) return false;
          paths->push_back(p.extract<std::string>());
        }
      }
      if (o->has("expand")) {
        Poco::Dynamic::Var e = o->get("expand");
        *expand =
            e.isBoolean() ? e.extract<bool>() : e.isString() && Truthy(e.extract<std::string>());
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }
  for (const auto& [key, value] : ParseQuery(body)) {
    if (key == "paths" || key == "paths[]") paths->push_back(value);
    if (key == "expand") *expand = Truthy(value);
  }
  return true;
}

}  // namespace

std::optional<RoutedResponse> HubApi::Handle(const RoutedRequest& request) {
  const std::string& target = request.target;
  const size_t qmark = target.find('?');
  const std::string path = target.substr(0, qmark);
  const auto query = ParseQuery(
      qmark == std::string::npos ? std::string_view() : std::string_view(target).substr(qmark + 1));
  auto param = [&query](const std::string& key) -> std::string {
    for (const auto& [k, v] : query) {
      if (k == key) return v;
    }
    return "";
  };
  // Split on '/', then decode each segment: an encoded slash stays inside
  // its segment ("refs%2Fpr%2F1" is one revision).
  std::vector<std::string> segs;
  for (size_t pos = 1; pos <= path.size();) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string seg;
    if (!PercentDecode(std::string_view(path).substr(pos, slash - pos), &seg)) {
      return HubError(400, "BadRequest", "malformed percent-encoding in " + path);
    }
    if (!seg.empty() || slash < path.size()) segs.push_back(seg);
    pos = slash + 1;
  }
  // Neither "." nor ".." ever names a repository, a revision or a path.
  for (const std::string& s : segs) {
    if (s == ".." || s == ".") return HubError(400, "BadRequest", "bad path " + path);
  }

  bool api = segs.size() >= 4 && segs[0] == "api" && (segs[1] == "models" || segs[1] == "datasets");
  bool dataset = false;
  size_t repo_at = 0;
  std::string action;  // "info", "revision", "tree", "paths-info", "resolve", "raw"
  size_t after = 0;    // first segment after the action
  if (api) {
    dataset = segs[1] == "datasets";
    repo_at = 2;
    if (segs.size() == 4) {
      action = "info";
    } else {
      action = segs[4];
      after = 5;
    }
  } else {
    dataset = !segs.empty() && segs[0] == "datasets";
    repo_at = dataset ? 1 : 0;
    if (segs.size() < repo_at + 4) return std::nullopt;
    action = segs[repo_at + 2];
    after = repo_at + 3;
    if (action != "resolve" && action != "raw") return std::nullopt;
  }
  const std::string repo_id = segs[repo_at] + "/" + segs[repo_at + 1];
  const std::string local = (dataset ? "datasets/" : "") + repo_id;

  std::shared_ptr<const Snapshot> snap = Current();
  auto found = snap->repos.find(local);
  const RepoView* repo = found == snap->repos.end() ? nullptr : found->second.get();
  auto finish = [](RoutedResponse r) {
    AddCors(&r);
    return std::optional<RoutedResponse>(std::move(r));
  };
  if (repo == nullptr || repo->active == nullptr) {
    return finish(HubError(
        404, "RepoNotFound",
        std::string(dataset ? "Dataset" : "Repository") + " " + repo_id + " is not on this node"));
  }
  const bool post = request.method == "POST";
  if ((post && action != "paths-info") || (!post && action == "paths-info") ||
      (request.method != "GET" && request.method != "HEAD" && request.method != "POST")) {
    RoutedResponse r = HubError(405, "MethodNotAllowed", request.method + " " + path);
    r.headers.push_back({"Allow", action == "paths-info" ? "POST" : "GET, HEAD"});
    return finish(std::move(r));
  }

  std::string rev_name = "main";
  std::string sub;
  if (action == "revision" || action == "paths-info") {
    rev_name = Join(segs, after, segs.size());
    if (rev_name.empty()) rev_name = "main";
  } else if (action == "tree" || action == "resolve" || action == "raw") {
    std::tie(rev_name, sub) = SplitRevision(repo, segs, after);
  } else if (action != "info") {
    return finish(HubError(404, "EntryNotFound", "no such endpoint: " + path));
  }
  const RevView* rev = FindRevision(*repo, rev_name);
  if (rev == nullptr) {
    return finish(HubError(404, "RevisionNotFound",
                           "Invalid rev id: " + rev_name + " (not a revision this node holds)"));
  }

  if (action == "info" || action == "revision") {
    return finish(Json(200, InfoJson(*repo, *rev, Truthy(param("blobs")))));
  }

  if (action == "tree") {
    const bool recursive = Truthy(param("recursive"));
    const bool expand = Truthy(param("expand"));
    std::vector<const TreeEntry*> listed;
    if (!sub.empty()) {
      auto at = rev->by_path.find(sub);
      if (at == rev->by_path.end() || !rev->entries[at->second].dir) {
        RoutedResponse r = HubError(404, "EntryNotFound",
                                    "no directory " + sub + " in revision " + rev->row.revision);
        r.headers.push_back({"X-Repo-Commit", rev->row.hub_sha});
        return finish(std::move(r));
      }
    }
    const std::string prefix = sub.empty() ? "" : sub + "/";
    for (const TreeEntry& e : rev->entries) {
      if (e.path.compare(0, prefix.size(), prefix) != 0) continue;
      if (!recursive && e.path.find('/', prefix.size()) != std::string::npos) continue;
      listed.push_back(&e);
    }
    const size_t page =
        std::max<size_t>(1, expand ? options_.tree_page_size_expand : options_.tree_page_size);
    uint64_t cursor = 0;
    if (!param("cursor").empty() && !ParseDecimal(param("cursor"), &cursor)) {
      return finish(HubError(400, "BadRequest", "bad cursor"));
    }
    std::string body = "[";
    size_t end = std::min<size_t>(listed.size(), static_cast<size_t>(cursor) + page);
    for (size_t i = static_cast<size_t>(std::min<uint64_t>(cursor, listed.size())); i < end; ++i) {
      if (body.size() > 1) body += ",";
      body += EntryJson(*listed[i], *rev, expand);
    }
    body += "]";
    RoutedResponse r = Json(200, std::move(body));
    if (end < listed.size()) {
      // An absolute link to this node, as clients parse it.
      std::string next =
          request.base_url + "/api/" + (dataset ? "datasets/" : "models/") + repo_id + "/tree/" +
          PercentEncode(rev_name) + (sub.empty() ? "" : "/" + PercentEncode(sub, true)) +
          "?recursive=" + (recursive ? "true" : "false") +
          "&expand=" + (expand ? "true" : "false") + "&cursor=" + std::to_string(end);
      r.headers.push_back({"Link", "<" + next + ">; rel=\"next\""});
    }
    return finish(std::move(r));
  }

  if (action == "paths-info") {
    std::vector<std::string> paths;
    bool expand = false;
    auto ct = request.headers.find("content-type");
    if (!ParsePathsInfoBody(request.body, ct == request.headers.end() ? "" : ct->second, &paths,
                            &expand)) {
      return finish(
          HubError(400, "BadRequest", "paths-info wants {\"paths\": [...]} or a form with paths="));
    }
    std::string body = "[";
    std::set<std::string> seen;
    for (const std::string& p : paths) {
      auto at = rev->by_path.find(p);
      if (at == rev->by_path.end() || !seen.insert(p).second) continue;
      if (body.size() > 1) body += ",";
      body += EntryJson(rev->entries[at->second], *rev, expand);
    }
    return finish(Json(200, body + "]"));
  }

  // resolve and raw
  auto at = rev->by_path.find(sub);
  if (sub.empty() || at == rev->by_path.end() || rev->entries[at->second].dir) {
    RoutedResponse r =
        HubError(404, "EntryNotFound", sub + " does not exist in revision " + rev->row.revision);
    r.headers.push_back({"X-Repo-Commit", rev->row.hub_sha});
    return finish(std::move(r));
  }
  const FileRow& f = *rev->entries[at->second].file;
  RoutedResponse r;
  r.headers.push_back({"X-Repo-Commit", rev->row.hub_sha});
  r.headers.push_back({"Accept-Ranges", "bytes"});
  if (action == "raw" && f.hub_lfs) {
    r.status = 200;
    r.content_type = "text/plain; charset=utf-8";
    r.body = LfsPointerText(f.sha256, f.size);
    r.headers.push_back({"ETag", "\"" + f.hub_oid + "\""});
    return finish(std::move(r));
  }
  const std::string etag = "\"" + (f.hub_lfs ? f.sha256 : f.hub_oid) + "\"";
  r.headers.push_back({"X-Linked-Etag", etag});
  r.headers.push_back({"X-Linked-Size", std::to_string(f.size)});
  if (f.size == 0) {
    // A 416 to "Range: bytes=0-0" would break @huggingface/hub.
    r.status = 200;
    r.content_type = "application/octet-stream";
    r.headers.push_back({"ETag", etag});
    r.headers.push_back({"Content-Range", "bytes */0"});
    return finish(std::move(r));
  }
  MirrorTree mirror(Env::Default(), options_.mirror_root);
  const std::string file = mirror.TreePath(local, rev->row.revision) + "/" + f.path;
  if (!options_.accel_redirect_prefix.empty()) {
    std::string rel = file.substr(options_.mirror_root.size() + 1);
    r.status = 200;
    r.headers.push_back({"ETag", etag});
    r.headers.push_back(
        {"X-Accel-Redirect", options_.accel_redirect_prefix + PercentEncode(rel, true)});
    r.content_type = "application/octet-stream";
    return finish(std::move(r));
  }
  r.file = file;
  r.etag = etag;
  return finish(std::move(r));
}

}  // namespace sync_agent
