#include "tests/support/hub_server.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "common/base/json_text.h"
#include "common/base/time_util.h"
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/http/http_text.h"

namespace sync_agent::testing {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr size_t kMaxExpandedTreePage = 50;  // the Hub's page size when expand=true
constexpr size_t kMaxListPage = 1000;        // the Hub's largest page of a repository list

std::string Hex(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 15]);
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* raw) {
  if (hex.size() % 2 != 0) return false;
  raw->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    size_t hi = kHexDigits.find(hex[i]);
    size_t lo = kHexDigits.find(hex[i + 1]);
    if (hi == std::string_view::npos || lo == std::string_view::npos) return false;
    raw->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string RawDigest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // A digest of a buffer fails only when OpenSSL cannot allocate; a test cannot go on.
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) std::abort();
  return std::string(reinterpret_cast<const char*>(out), len);
}

// The raw (20-byte) id git gives an object of this kind and body.
std::string GitObjectRawId(std::string_view kind, std::string_view body) {
  std::string text(kind);
  text += ' ';
  text += std::to_string(body.size());
  text.push_back('\0');
  text.append(body);
  return RawDigest(EVP_sha1(), text);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string GitBlobId(std::string_view content) { return sync_agent::GitBlobId(content); }

std::string LfsPointerText(std::string_view content) {
  return sync_agent::LfsPointerText(Sha256Hex(content), content.size());
}

struct HubServer::State {
  struct StoredFile {
    std::string content;
    bool lfs = false;
    std::string sha256;
    std::string blob_id;      // git blob id of what git holds: the content, or its LFS pointer
    size_t pointer_size = 0;  // LFS files only
  };
  struct CommitRecord {
    std::string sha;
    std::string parent;  // "" for a root commit
    std::string message;
    std::string tree_id;
    SystemTime time;
    std::map<std::string, StoredFile> files;
  };
  struct RepoRecord {
    std::string object_id;  // the "_id" field: 24 hex digits
    SystemTime created;
    std::map<std::string, CommitRecord> commits;  // by sha
    std::map<std::string, std::string> branches;  // name -> sha
    std::map<std::string, std::string> tags;
    std::optional<std::string> private_token;
    std::optional<std::string> gate_token;
    std::string gate_mode;
  };

  mutable std::mutex mu;
  Options options;
  std::string hub_url;
  std::string cdn_url;
  std::string signing_secret;
  std::map<std::pair<RepoType, std::string>, RepoRecord> repos;
  std::map<std::string, std::string> lfs_objects;  // sha256 -> bytes
  // sha256 -> the paths that held it in any commit, so faults keyed by path reach the CDN.
  std::map<std::string, std::set<std::string>> lfs_paths;
  int rate_limited_left = 0;
  int rate_limit_retry_after = 0;
  int unavailable_left = 0;
  int unavailable_retry_after = 0;
  std::set<std::string> wrong_bytes;
  std::map<std::string, size_t> cut_off;
  std::optional<size_t> siblings_limit;
  std::vector<Request> requests;

  RepoRecord& RepoFor(RepoType type, const std::string& id) {
    RepoRecord& repo = repos[{type, id}];
    if (repo.object_id.empty()) {
      std::string kind = type == RepoType::kModel ? "model " : "dataset ";
      repo.object_id = Hex(RawDigest(EVP_sha1(), kind + id)).substr(0, 24);
      repo.created = std::chrono::system_clock::now();
    }
    return repo;
  }
};

namespace {

using State = HubServer::State;
using StoredFile = State::StoredFile;
using CommitRecord = State::CommitRecord;
using RepoRecord = State::RepoRecord;

// The raw git tree id of directory dir ("" for the root) of files.
std::string TreeRawId(const std::map<std::string, StoredFile>& files, const std::string& dir) {
  const std::string prefix = dir.empty() ? "" : dir + "/";
  std::map<std::string, bool> children;  // name -> is a directory
  for (auto it = files.lower_bound(prefix); it != files.end() && StartsWith(it->first, prefix);
       ++it) {
    std::string rest = it->first.substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      children[rest] = false;
    } else {
      children[rest.substr(0, slash)] = true;
    }
  }
  // Git orders a tree's entries by name, a directory's name compared as if it ended in "/".
  std::vector<std::pair<std::string, bool>> ordered(children.begin(), children.end());
  auto sort_key = [](const std::pair<std::string, bool>& e) {
    return e.second ? e.first + "/" : e.first;
  };
  std::sort(ordered.begin(), ordered.end(),
            [&](const auto& a, const auto& b) { return sort_key(a) < sort_key(b); });
  std::string body;
  for (const auto& [name, is_directory] : ordered) {
    body += is_directory ? "40000 " : "100644 ";
    body += name;
    body.push_back('\0');
    if (is_directory) {
      body += TreeRawId(files, prefix + name);
    } else {
      std::string raw;
      Unhex(files.at(prefix + name).blob_id, &raw);
      body += raw;
    }
  }
  return GitObjectRawId("tree", body);
}

bool HasDirectory(const std::map<std::string, StoredFile>& files, const std::string& dir) {
  if (dir.empty()) return true;
  auto it = files.lower_bound(dir + "/");
  return it != files.end() && StartsWith(it->first, dir + "/");
}

// What a commit holds at path: the file's blob id, a directory's tree id, or "" for nothing.
std::string EntrySignature(const CommitRecord& commit, const std::string& path, bool directory) {
  if (directory) {
    return HasDirectory(commit.files, path) ? Hex(TreeRawId(commit.files, path)) : "";
  }
  auto it = commit.files.find(path);
  return it == commit.files.end() ? "" : it->second.blob_id;
}

// The newest commit, from `from` back, in which path last changed.
const CommitRecord& LastChange(const RepoRecord& repo, const CommitRecord& from,
                               const std::string& path, bool directory) {
  const CommitRecord* current = &from;
  const std::string signature = EntrySignature(from, path, directory);
  while (!current->parent.empty()) {
    auto parent = repo.commits.find(current->parent);
    if (parent == repo.commits.end() ||
        EntrySignature(parent->second, path, directory) != signature) {
      break;
    }
    current = &parent->second;
  }
  return *current;
}

// One answer, built under the state's lock and sent after it is released.
struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  std::optional<size_t> cut_after;  // send only this many body bytes, then close
};

Reply PlainReply(int status, const std::string& text) {
  Reply reply;
  reply.status = status;
  reply.content_type = "text/plain; charset=utf-8";
  reply.body = text;
  return reply;
}

// An error as the Hub words it: X-Error-Code (when code is not empty),
// X-Error-Message and a JSON body {"error": message}.
Reply HubError(int status, const std::string& code, const std::string& message) {
  Reply reply;
  reply.status = status;
  if (!code.empty()) reply.headers.emplace_back("X-Error-Code", code);
  reply.headers.emplace_back("X-Error-Message", message);
  reply.body = "{\"error\":" + JsonQuote(message) + "}";
  return reply;
}

struct Caller {
  std::string method;
  std::string token;  // from "Authorization: Bearer <token>"; "" when none
  bool authenticated = false;
  std::string range;
  std::string content_type;
  std::string body;
};

Caller CallerOf(const Poco::Net::HTTPServerRequest& req) {
  Caller caller;
  caller.method = req.getMethod();
  const std::string authorization = req.get("Authorization", "");
  if (AsciiLower(authorization.substr(0, 7)) == "bearer ") {
    caller.token = std::string(TrimWhitespace(authorization.substr(7)));
  }
  caller.authenticated = !caller.token.empty();
  caller.range = req.get("Range", "");
  caller.content_type = req.get("Content-Type", "");
  return caller;
}

struct Target {
  std::string raw_path;
  std::vector<std::string> segments;  // raw (still percent-encoded), empty ones dropped
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::string raw_query;
};

// Throws Poco::SyntaxException on a malformed percent-encoding.
std::string Decode(const std::string& s, bool plus_as_space = false) {
  std::string out;
  Poco::URI::decode(s, out, plus_as_space);
  return out;
}

// "a=1&b=2" (a query, or an application/x-www-form-urlencoded body), decoded.
std::vector<std::pair<std::string, std::string>> ParseQuery(const std::string& raw) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t amp = raw.find('&', start);
    if (amp == std::string::npos) amp = raw.size();
    std::string item = raw.substr(start, amp - start);
    size_t eq = item.find('=');
    if (!item.empty()) {
      out.emplace_back(Decode(item.substr(0, eq), true),
                       eq == std::string::npos ? "" : Decode(item.substr(eq + 1), true));
    }
    start = amp + 1;
  }
  return out;
}

Target ParseTarget(const std::string& uri) {
  Target target;
  size_t question = uri.find('?');
  target.raw_path = uri.substr(0, question);
  if (question != std::string::npos) target.raw_query = uri.substr(question + 1);
  size_t start = 0;
  while (start <= target.raw_path.size()) {
    size_t slash = target.raw_path.find('/', start);
    if (slash == std::string::npos) slash = target.raw_path.size();
    if (slash > start) target.segments.push_back(target.raw_path.substr(start, slash - start));
    start = slash + 1;
  }
  target.query = ParseQuery(target.raw_query);
  return target;
}

// A boolean query parameter: "true", "True" (Python requests) or "1".
bool QueryFlag(const Target& target, const std::string& name) {
  for (const auto& [key, value] : target.query) {
    if (key == name) return AsciiLower(value) == "true" || value == "1";
  }
  return false;
}

std::string QueryValue(const Target& target, const std::string& name) {
  for (const auto& [key, value] : target.query) {
    if (key == name) return value;
  }
  return "";
}

std::string JoinDecoded(const std::vector<std::string>& segments, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += '/';
    out += Decode(segments[i]);
  }
  return out;
}

// A URL path that names a repository: "<repo>/<op>/<rest...>", where the
// repository id is "org/name" or a legacy single "name".
struct RepoPath {
  std::string repo;
  std::string op;
  std::vector<std::string> rest;  // raw segments after op
};

std::optional<RepoPath> SplitRepoPath(const std::vector<std::string>& segments, size_t first,
                                      std::initializer_list<std::string_view> ops) {
  for (size_t id_length : {2, 1}) {
    size_t op_at = first + id_length;
    if (op_at >= segments.size()) continue;
    if (std::find(ops.begin(), ops.end(), segments[op_at]) == ops.end()) continue;
    RepoPath path;
    path.repo = JoinDecoded(segments, first, op_at);
    path.op = segments[op_at];
    path.rest.assign(segments.begin() + static_cast<std::ptrdiff_t>(op_at) + 1, segments.end());
    return path;
  }
  return std::nullopt;
}

const CommitRecord* FindCommit(const RepoRecord& repo, const std::string& revision) {
  const std::string rev = revision == "HEAD" ? "main" : revision;
  std::string sha = rev;
  if (auto branch = repo.branches.find(rev); branch != repo.branches.end()) {
    sha = branch->second;
  } else if (auto tag = repo.tags.find(rev); tag != repo.tags.end()) {
    sha = tag->second;
  }
  auto commit = repo.commits.find(sha);
  return commit == repo.commits.end() ? nullptr : &commit->second;
}

// Splits rest into a revision and the path after it. Clients encode the
// revision as one segment ("refs%2Fpr%2F1"), but some send it raw: a raw
// "refs/<kind>/<name>" is taken whole, and otherwise the longest run of
// segments naming a branch or tag wins over a single segment.
void SplitRevision(const RepoRecord* repo, const std::vector<std::string>& rest,
                   std::string* revision, std::string* path) {
  size_t taken = rest.empty() ? 0 : 1;
  if (rest.size() >= 3 && rest[0] == "refs") {
    taken = 3;
  } else if (repo != nullptr) {
    for (size_t n = rest.size(); n > 1; --n) {
      std::string candidate = JoinDecoded(rest, 0, n);
      if (repo->branches.count(candidate) || repo->tags.count(candidate)) {
        taken = n;
        break;
      }
    }
  }
  *revision = JoinDecoded(rest, 0, taken);
  *path = JoinDecoded(rest, taken, rest.size());
}

const char* KindWord(RepoType type) { return type == RepoType::kModel ? "model" : "dataset"; }

// The repository as the caller may see it; nullptr with *error set when it
// does not exist for them (unknown, or private without its token).
const RepoRecord* VisibleRepo(const State& state, RepoType type, const std::string& id,
                              const Caller& caller, Reply* error) {
  auto it = state.repos.find({type, id});
  const RepoRecord* repo = it == state.repos.end() ? nullptr : &it->second;
  if (repo != nullptr && repo->private_token && caller.token != *repo->private_token) {
    repo = nullptr;
  }
  if (repo == nullptr) {
    // The Hub does not tell an anonymous caller whether the repository exists.
    *error = caller.authenticated ? HubError(404, "RepoNotFound", "Repository not found")
                                  : HubError(401, "RepoNotFound", "Invalid username or password.");
  }
  return repo;
}

std::optional<Reply> GateRefusal(const State& state, const RepoRecord& repo, RepoType type,
                                 const std::string& id, const Caller& caller) {
  if (!repo.gate_token || caller.token == *repo.gate_token) return std::nullopt;
  const std::string what = std::string("Access to ") + KindWord(type) + " " + id + " is restricted";
  if (!caller.authenticated) {
    return HubError(401, "GatedRepo",
                    what +
                        ". You must have access to it and be authenticated to access it. "
                        "Please log in.");
  }
  const std::string page = state.hub_url + (type == RepoType::kDataset ? "/datasets/" : "/") + id;
  return HubError(
      403, "GatedRepo",
      what + " and you are not in the authorized list. Visit " + page + " to ask for access.");
}

Reply RevisionNotFound(const std::string& revision) {
  return HubError(404, "RevisionNotFound", "Invalid rev id: " + revision);
}

Reply EntryNotFound(const CommitRecord& commit) {
  Reply reply = HubError(404, "EntryNotFound", "Entry not found");
  reply.headers.emplace_back("X-Repo-Commit", commit.sha);
  return reply;
}

std::string IsoTime(SystemTime t) { return FormatIsoTime(t, /*millis=*/true); }

// GET /api/{type}s/{repo}[/revision/{rev}]
Reply RepoInfo(const State& state, RepoType type, const std::string& id, const RepoRecord& repo,
               const CommitRecord& commit, bool blobs) {
  std::string out = "{\"_id\":" + JsonQuote(repo.object_id) + ",\"id\":" + JsonQuote(id);
  if (type == RepoType::kModel) out += ",\"modelId\":" + JsonQuote(id);
  size_t slash = id.find('/');
  if (slash != std::string::npos) out += ",\"author\":" + JsonQuote(id.substr(0, slash));
  out += ",\"sha\":" + JsonQuote(commit.sha);
  out += ",\"lastModified\":" + JsonQuote(IsoTime(commit.time));
  out += ",\"createdAt\":" + JsonQuote(IsoTime(repo.created));
  out += std::string(",\"private\":") + (repo.private_token ? "true" : "false");
  out += ",\"disabled\":false";
  out += ",\"gated\":" + (repo.gate_token ? JsonQuote(repo.gate_mode) : std::string("false"));
  out += ",\"downloads\":0,\"likes\":0,\"tags\":[],\"siblings\":[";
  size_t listed = 0;
  for (const auto& [path, file] : commit.files) {
    if (state.siblings_limit && listed == *state.siblings_limit) break;
    if (listed++ > 0) out += ',';
    out += "{\"rfilename\":" + JsonQuote(path);
    if (blobs) {
      out += ",\"size\":" + std::to_string(file.content.size());
      out += ",\"blobId\":" + JsonQuote(file.blob_id);
      if (file.lfs) {
        out += ",\"lfs\":{\"sha256\":" + JsonQuote(file.sha256) +
               ",\"size\":" + std::to_string(file.content.size()) +
               ",\"pointerSize\":" + std::to_string(file.pointer_size) + "}";
      }
    }
    out += '}';
  }
  out += "]}";
  Reply reply;
  reply.body = std::move(out);
  return reply;
}

std::string FakeXetHash(const StoredFile& file) { return Sha256Hex("xet " + file.sha256); }

struct TreeEntry {
  std::string path;
  bool directory = false;
};

// The entries under dir ("" for the root): its children, or with recursive
// all its descendants, directories included; ordered by path.
std::vector<TreeEntry> ListTree(const CommitRecord& commit, const std::string& dir,
                                bool recursive) {
  const std::string prefix = dir.empty() ? "" : dir + "/";
  std::set<std::string> directories;
  std::vector<TreeEntry> entries;
  for (auto it = commit.files.lower_bound(prefix);
       it != commit.files.end() && StartsWith(it->first, prefix); ++it) {
    std::string rest = it->first.substr(prefix.size());
    for (size_t slash = rest.find('/'); slash != std::string::npos;
         slash = rest.find('/', slash + 1)) {
      directories.insert(prefix + rest.substr(0, slash));
      if (!recursive) break;
    }
    if (recursive || rest.find('/') == std::string::npos) entries.push_back({it->first, false});
  }
  for (const std::string& d : directories) entries.push_back({d, true});
  std::sort(entries.begin(), entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  return entries;
}

std::string TreeEntryJson(const RepoRecord& repo, const CommitRecord& commit,
                          const TreeEntry& entry, bool expand) {
  std::string out;
  if (entry.directory) {
    out = "{\"type\":\"directory\",\"oid\":" + JsonQuote(Hex(TreeRawId(commit.files, entry.path))) +
          ",\"size\":0,\"path\":" + JsonQuote(entry.path);
  } else {
    const StoredFile& file = commit.files.at(entry.path);
    out = "{\"type\":\"file\",\"oid\":" + JsonQuote(file.blob_id) +
          ",\"size\":" + std::to_string(file.content.size()) + ",\"path\":" + JsonQuote(entry.path);
    if (file.lfs) {
      out += ",\"lfs\":{\"oid\":" + JsonQuote(file.sha256) +
             ",\"size\":" + std::to_string(file.content.size()) +
             ",\"pointerSize\":" + std::to_string(file.pointer_size) + "}";
      out += ",\"xetHash\":" + JsonQuote(FakeXetHash(file));
    }
  }
  if (expand) {
    const CommitRecord& last = LastChange(repo, commit, entry.path, entry.directory);
    out += ",\"lastCommit\":{\"id\":" + JsonQuote(last.sha) +
           ",\"title\":" + JsonQuote(last.message.substr(0, last.message.find('\n'))) +
           ",\"date\":" + JsonQuote(IsoTime(last.time)) + "}";
  }
  out += '}';
  return out;
}

// The query of target without its cursor, and the cursor after: for the
// Link of the next page.
std::string NextPageLink(const State& state, const Target& target, const std::string& cursor) {
  std::string query;
  size_t start_item = 0;
  while (start_item < target.raw_query.size()) {
    size_t amp = target.raw_query.find('&', start_item);
    if (amp == std::string::npos) amp = target.raw_query.size();
    std::string item = target.raw_query.substr(start_item, amp - start_item);
    if (!item.empty() && !StartsWith(item, "cursor=")) query += item + "&";
    start_item = amp + 1;
  }
  query += "cursor=" + Hex(cursor);
  return "<" + state.hub_url + target.raw_path + "?" + query + ">; rel=\"next\"";
}

// GET /api/{type}s/{repo}/tree/{rev}[/{path}]: one page, and a Link to the next.
Reply TreePage(const State& state, const Target& target, const RepoRecord& repo,
               const CommitRecord& commit, const std::string& dir) {
  if (!HasDirectory(commit.files, dir)) return EntryNotFound(commit);
  const bool expand = QueryFlag(target, "expand");
  const std::vector<TreeEntry> entries = ListTree(commit, dir, QueryFlag(target, "recursive"));
  size_t page_size = std::max<size_t>(1, state.options.tree_page_size);
  if (expand) page_size = std::min(page_size, kMaxExpandedTreePage);

  // The cursor is the hex of the last path served; clients treat it as opaque.
  size_t start = 0;
  const std::string cursor = QueryValue(target, "cursor");
  if (!cursor.empty()) {
    std::string after;
    if (!Unhex(cursor, &after)) return HubError(400, "", "Invalid cursor");
    start = static_cast<size_t>(
        std::upper_bound(entries.begin(), entries.end(), after,
                         [](const std::string& p, const TreeEntry& e) { return p < e.path; }) -
        entries.begin());
  }
  const size_t end = std::min(entries.size(), start + page_size);
  Reply reply;
  reply.body = "[";
  for (size_t i = start; i < end; ++i) {
    if (i > start) reply.body += ',';
    reply.body += TreeEntryJson(repo, commit, entries[i], expand);
  }
  reply.body += "]";
  if (end < entries.size()) {
    reply.headers.emplace_back("Link", NextPageLink(state, target, entries[end - 1].path));
  }
  return reply;
}

bool IsWrongBytes(const State& state, const std::string& path, const std::string& sha256) {
  return state.wrong_bytes.count(path) || state.wrong_bytes.count(sha256);
}

// Takes a pending cut-off for any of keys (a GET consumes it).
std::optional<size_t> TakeCutOff(State& state, const Caller& caller,
                                 const std::vector<std::string>& keys) {
  if (caller.method != "GET") return std::nullopt;
  for (const std::string& key : keys) {
    auto it = state.cut_off.find(key);
    if (it != state.cut_off.end()) {
      size_t n = it->second;
      state.cut_off.erase(it);
      return n;
    }
  }
  return std::nullopt;
}

struct ByteRangeRequest {
  enum class Kind { kWhole, kPart, kUnsatisfiable } kind = Kind::kWhole;
  size_t first = 0;
  size_t last = 0;  // inclusive
};

// "bytes=a-b", "bytes=a-" and "bytes=-n" against a body of size bytes. A
// header that is missing, malformed or asks for several ranges gets the
// whole body, as RFC 9110 allows.
ByteRangeRequest ParseRange(std::string_view header, size_t size) {
  ByteRangeRequest request;
  // An empty body is sent whole: no range of it is satisfiable, and a 416
  // would fail clients that probe every file with "bytes=0-0".
  if (size == 0) return request;
  header = TrimWhitespace(header);
  if (AsciiLower(header.substr(0, 6)) != "bytes=" || header.find(',') != std::string_view::npos) {
    return request;
  }
  std::string_view spec = header.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return request;
  std::string_view a = TrimWhitespace(spec.substr(0, dash));
  std::string_view b = TrimWhitespace(spec.substr(dash + 1));
  uint64_t first = 0;
  uint64_t last = 0;
  if (a.empty()) {
    uint64_t suffix = 0;
    if (!ParseDecimal(b, &suffix)) return request;
    if (suffix == 0) {
      request.kind = ByteRangeRequest::Kind::kUnsatisfiable;
      return request;
    }
    first = suffix >= size ? 0 : size - suffix;
    last = size - 1;
  } else {
    if (!ParseDecimal(a, &first)) return request;
    if (b.empty()) {
      last = size - 1;
    } else if (!ParseDecimal(b, &last) || last < first) {
      return request;
    }
    if (first >= size) {
      request.kind = ByteRangeRequest::Kind::kUnsatisfiable;
      return request;
    }
    last = std::min<uint64_t>(last, size - 1);
  }
  request.kind = ByteRangeRequest::Kind::kPart;
  request.first = static_cast<size_t>(first);
  request.last = static_cast<size_t>(last);
  return request;
}

// Content (or, with wrong, other bytes of its size) with Range honoured.
Reply ServeBytes(const std::string& content, bool wrong, const Caller& caller,
                 std::optional<size_t> cut_after) {
  std::string bytes = content;
  if (wrong && !bytes.empty()) bytes[bytes.size() / 2] ^= 0x5a;
  Reply reply;
  reply.content_type = "application/octet-stream";
  reply.headers.emplace_back("Accept-Ranges", "bytes");
  const ByteRangeRequest range = ParseRange(caller.range, bytes.size());
  switch (range.kind) {
    case ByteRangeRequest::Kind::kWhole:
      reply.body = std::move(bytes);
      break;
    case ByteRangeRequest::Kind::kPart:
      reply.status = 206;
      reply.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                      std::to_string(range.last) + "/" +
                                                      std::to_string(bytes.size()));
      reply.body = bytes.substr(range.first, range.last - range.first + 1);
      break;
    case ByteRangeRequest::Kind::kUnsatisfiable:
      reply.status = 416;
      reply.content_type = "text/plain; charset=utf-8";
      reply.headers.emplace_back("Content-Range", "bytes */" + std::to_string(bytes.size()));
      return reply;
  }
  reply.cut_after = cut_after;
  return reply;
}

std::string CdnSignature(const State& state, const std::string& sha256,
                         const std::string& expires) {
  return Hex(RawDigest(EVP_sha256(), state.signing_secret + "|" + sha256 + "|" + expires));
}

// s percent-encoded for a query value or a path segment.
std::string UrlEncode(const std::string& s) {
  std::string out;
  Poco::URI::encode(s, "!#$&'()*+,/:;=?@[]\"% ", out);
  return out;
}

// A file path percent-encoded with its slashes kept.
std::string UrlEncodePath(const std::string& path) {
  std::string out;
  Poco::URI::encode(path, "!#$&'()*+,:;=?@[]\"% ", out);
  return out;
}

// The 302 the Hub answers for an LFS file: to a signed CDN URL, with the
// file's identity in X-Linked-* headers and Xet headers a plain client ignores.
Reply RedirectToCdn(const State& state, RepoType type, const std::string& id,
                    const CommitRecord& commit, const std::string& path, const StoredFile& file) {
  const auto now = std::chrono::system_clock::now();
  const std::string expires = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() +
      state.options.cdn_url_lifetime.count());
  const std::string name = path.substr(path.rfind('/') + 1);
  const std::string disposition =
      "attachment; filename*=UTF-8''" + UrlEncode(name) + "; filename=\"" + name + "\";";
  const std::string& cdn =
      state.options.external_cdn_url.empty() ? state.cdn_url : state.options.external_cdn_url;
  const std::string location =
      cdn + "/repos/" + file.sha256.substr(0, 2) + "/" + file.sha256.substr(2, 2) + "/" +
      file.sha256 + "?response-content-disposition=" + UrlEncode(disposition) +
      "&Expires=" + expires + "&Signature=" + CdnSignature(state, file.sha256, expires) +
      "&Key-Pair-Id=KHUBSERVERTEST";
  Reply reply = PlainReply(302, "Found. Redirecting to " + location);
  reply.headers = {
      {"Location", location},
      {"X-Repo-Commit", commit.sha},
      {"X-Linked-Etag", "\"" + file.sha256 + "\""},
      {"X-Linked-Size", std::to_string(file.content.size())},
      {"ETag", "\"" + file.blob_id + "\""},
      {"X-Xet-Hash", FakeXetHash(file)},
      {"Link", "<" + state.hub_url + "/api/" + KindWord(type) + "s/" + id + "/xet-read-token/" +
                   commit.sha + ">; rel=\"xet-auth\""},
  };
  return reply;
}

// The 307 huggingface.co answers for a regular file: a relative redirect to
// its resolve-cache, pinned to the commit.
Reply RedirectToResolveCache(RepoType type, const std::string& id, const std::string& revision,
                             const CommitRecord& commit, const std::string& path,
                             const StoredFile& file) {
  const std::string prefix = type == RepoType::kDataset ? "/datasets/" : "/";
  const std::string location = std::string("/api/resolve-cache/") + KindWord(type) + "s/" + id +
                               "/" + commit.sha + "/" + UrlEncodePath(path) + "?" +
                               UrlEncode(prefix + id + "/resolve/" + revision + "/" + path) +
                               "=&etag=" + UrlEncode("\"" + file.blob_id + "\"");
  Reply reply = PlainReply(307, "Temporary Redirect. Redirecting to " + location);
  reply.headers = {
      {"Location", location}, {"X-Repo-Commit", commit.sha}, {"Accept-Ranges", "bytes"}};
  return reply;
}

// The bytes git holds for a file at a commit: 200 or 206.
Reply ServeGitFile(State& state, const CommitRecord& commit, const std::string& path,
                   const StoredFile& file, const Caller& caller) {
  // raw of an LFS file is its pointer, as git holds it.
  const std::string bytes = file.lfs ? LfsPointerText(file.content) : file.content;
  const bool wrong = !file.lfs && IsWrongBytes(state, path, file.sha256);
  Reply reply =
      ServeBytes(bytes, wrong, caller,
                 file.lfs ? std::nullopt : TakeCutOff(state, caller, {path, file.sha256}));
  reply.headers.emplace_back("ETag", "\"" + file.blob_id + "\"");
  reply.headers.emplace_back("X-Repo-Commit", commit.sha);
  return reply;
}

// GET|HEAD /{repo}/resolve|raw/{rev}/{path}, with the repository and
// revision already found.
Reply ResolveFile(State& state, RepoType type, const std::string& id, const std::string& op,
                  const std::string& revision, const CommitRecord& commit, const std::string& path,
                  const Caller& caller) {
  auto it = commit.files.find(path);
  if (it == commit.files.end()) return EntryNotFound(commit);
  const StoredFile& file = it->second;
  if (op == "resolve") {
    if (file.lfs) return RedirectToCdn(state, type, id, commit, path, file);
    if (state.options.regular_files_via_resolve_cache) {
      return RedirectToResolveCache(type, id, revision, commit, path, file);
    }
  }
  return ServeGitFile(state, commit, path, file, caller);
}

// A pending 429 or 503 fault, consumed by this request.
std::optional<Reply> Throttle(State& state, bool api) {
  if (state.rate_limited_left > 0) {
    --state.rate_limited_left;
    const std::string group = api ? "api" : "resolvers";
    const std::string seconds = std::to_string(state.rate_limit_retry_after);
    Reply reply = HubError(429, "", "Too Many Requests");
    reply.headers.emplace_back("Retry-After", seconds);
    reply.headers.emplace_back("RateLimit", "\"" + group + "\";r=0;t=" + seconds);
    // The Hub's anonymous quotas per 5-minute window: 500 API calls, 3000 resolves.
    reply.headers.emplace_back("RateLimit-Policy", "\"fixed window\";\"" + group +
                                                       "\";q=" + (api ? "500" : "3000") + ";w=300");
    return reply;
  }
  if (state.unavailable_left > 0) {
    --state.unavailable_left;
    Reply reply = PlainReply(503, "Service Unavailable");
    reply.headers.emplace_back("Retry-After", std::to_string(state.unavailable_retry_after));
    return reply;
  }
  return std::nullopt;
}

// GET /api/{type}s[?author=ORG][&limit=N]: the repositories the caller may
// see (private ones with their token only), ordered by id, a page of
// Options::list_page_size at most (the Hub's 1000) with a Link to the next;
// limit=N returns at most N in all, as on the Hub.
Reply ListRequest(const State& state, const Target& target, const Caller& caller) {
  const RepoType type = target.segments[1] == "models" ? RepoType::kModel : RepoType::kDataset;
  const std::string author = AsciiLower(QueryValue(target, "author"));
  size_t limit = SIZE_MAX;
  const std::string limit_text = QueryValue(target, "limit");
  if (!limit_text.empty()) {
    uint64_t n = 0;
    if (!ParseDecimal(limit_text, &n)) return HubError(400, "", "Invalid limit");
    limit = static_cast<size_t>(n);
  }
  const std::string cursor_hex = QueryValue(target, "cursor");
  std::string after;
  if (!cursor_hex.empty() && !Unhex(cursor_hex, &after)) {
    return HubError(400, "", "Invalid cursor");
  }
  // With limit, the first limit repositories are the whole answer.
  const size_t page_size = limit != SIZE_MAX ? std::min<size_t>(limit, kMaxListPage)
                                             : std::max<size_t>(1, state.options.list_page_size);
  Reply reply;
  reply.body = "[";
  size_t listed = 0;
  std::string last;
  bool more = false;
  for (const auto& [key, repo] : state.repos) {
    const auto& [repo_type, id] = key;
    if (repo_type != type || (!cursor_hex.empty() && id <= after)) continue;
    if (repo.private_token && caller.token != *repo.private_token) continue;
    const std::string org = id.substr(0, id.find('/'));
    if (!author.empty() && AsciiLower(org) != author) continue;
    if (listed == page_size) {
      more = limit == SIZE_MAX;  // with limit, the first N are all there is
      break;
    }
    if (listed++ > 0) reply.body += ',';
    reply.body += "{\"_id\":" + JsonQuote(repo.object_id) + ",\"id\":" + JsonQuote(id);
    if (type == RepoType::kModel) reply.body += ",\"modelId\":" + JsonQuote(id);
    reply.body += ",\"author\":" + JsonQuote(org);
    reply.body += std::string(",\"private\":") + (repo.private_token ? "true" : "false");
    reply.body +=
        ",\"gated\":" + (repo.gate_token ? JsonQuote(repo.gate_mode) : std::string("false"));
    reply.body += ",\"likes\":0,\"downloads\":0,\"tags\":[]";
    reply.body += ",\"createdAt\":" + JsonQuote(IsoTime(repo.created)) + "}";
    last = id;
  }
  reply.body += "]";
  if (more) reply.headers.emplace_back("Link", NextPageLink(state, target, last));
  return reply;
}

// GET /api/{type}s/{repo}[/revision/{rev}] and /api/{type}s/{repo}/tree/{rev}[/{path}].
Reply ApiRequest(State& state, const Target& target, const Caller& caller) {
  const auto& segments = target.segments;
  const RepoType type = segments[1] == "models" ? RepoType::kModel : RepoType::kDataset;
  std::optional<RepoPath> path = SplitRepoPath(segments, 2, {"revision", "tree"});
  if (!path && segments.size() <= 4) {
    path = RepoPath{JoinDecoded(segments, 2, segments.size()), /*op=*/"", /*rest=*/{}};
  }
  if (!path) return PlainReply(404, "Not Found");
  Reply error;
  const RepoRecord* repo = VisibleRepo(state, type, path->repo, caller, &error);
  if (repo == nullptr) return error;
  std::string revision = "main";
  std::string rest_path;
  if (!path->op.empty()) SplitRevision(repo, path->rest, &revision, &rest_path);
  if (revision.empty()) return PlainReply(404, "Not Found");
  const CommitRecord* commit = FindCommit(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);
  if (path->op == "tree") return TreePage(state, target, *repo, *commit, rest_path);
  if (!rest_path.empty()) return PlainReply(404, "Not Found");
  return RepoInfo(state, type, path->repo, *repo, *commit, QueryFlag(target, "blobs"));
}

// GET|HEAD /api/resolve-cache/{type}s/{repo}/{commit}/{path}: what a regular
// file's 307 points at. The repository id is the segments before the first
// full commit sha.
Reply ResolveCacheRequest(State& state, const Target& target, const Caller& caller) {
  const auto& segments = target.segments;
  const RepoType type = segments[2] == "models" ? RepoType::kModel : RepoType::kDataset;
  size_t sha_at = 4;
  while (sha_at < segments.size() && !IsLowerHex(segments[sha_at], 40)) ++sha_at;
  if (sha_at + 1 >= segments.size()) return PlainReply(404, "Not Found");
  const std::string id = JoinDecoded(segments, 3, sha_at);
  Reply error;
  const RepoRecord* repo = VisibleRepo(state, type, id, caller, &error);
  if (repo == nullptr) return error;
  if (auto refusal = GateRefusal(state, *repo, type, id, caller)) return *refusal;
  const CommitRecord* commit = FindCommit(*repo, segments[sha_at]);
  if (commit == nullptr) return RevisionNotFound(segments[sha_at]);
  const std::string path = JoinDecoded(segments, sha_at + 1, segments.size());
  auto file = commit->files.find(path);
  if (file == commit->files.end()) return EntryNotFound(*commit);
  return ServeGitFile(state, *commit, path, file->second, caller);
}

// GET|HEAD /[datasets/]{repo}/resolve|raw/{rev}/{path}.
Reply ResolveRequest(State& state, const Target& target, const Caller& caller) {
  const auto& segments = target.segments;
  const bool dataset = !segments.empty() && segments[0] == "datasets";
  const RepoType type = dataset ? RepoType::kDataset : RepoType::kModel;
  std::optional<RepoPath> path = SplitRepoPath(segments, dataset ? 1 : 0, {"resolve", "raw"});
  if (!path) return PlainReply(404, "Not Found");
  Reply error;
  const RepoRecord* repo = VisibleRepo(state, type, path->repo, caller, &error);
  if (repo == nullptr) return error;
  if (auto refusal = GateRefusal(state, *repo, type, path->repo, caller)) return *refusal;
  std::string revision;
  std::string file_path;
  SplitRevision(repo, path->rest, &revision, &file_path);
  const CommitRecord* commit = FindCommit(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);
  return ResolveFile(state, type, path->repo, path->op, revision, *commit, file_path, caller);
}

// The body of a paths-info POST: JSON {"paths": [...], "expand": bool}, as
// huggingface.js sends it, or the form paths=a&paths=b&expand=True that
// huggingface_hub sends. False if it is neither.
bool ParsePathsInfoBody(const Caller& caller, std::vector<std::string>* paths, bool* expand) {
  if (AsciiLower(caller.content_type).rfind("application/json", 0) == 0) {
    try {
      Poco::JSON::Parser parser;
      Poco::JSON::Object::Ptr body = parser.parse(caller.body).extract<Poco::JSON::Object::Ptr>();
      Poco::JSON::Array::Ptr list = body->getArray("paths");
      if (list.isNull()) return false;
      for (size_t i = 0; i < list->size(); ++i) paths->push_back(list->getElement<std::string>(i));
      *expand = body->has("expand") && body->getValue<bool>("expand");
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }
  Target form;
  form.query = ParseQuery(caller.body);
  for (const auto& [key, value] : form.query) {
    if (key == "paths") paths->push_back(value);
  }
  *expand = QueryFlag(form, "expand");
  return true;
}

// POST /api/{type}s/{repo}/paths-info/{rev}: the tree entry (as the tree
// lists it) of each asked path that is a file or a directory; the others
// are left out, as on the Hub.
Reply PathsInfoRequest(const State& state, const Target& target, const Caller& caller) {
  const auto& segments = target.segments;
  const RepoType type = segments[1] == "models" ? RepoType::kModel : RepoType::kDataset;
  std::optional<RepoPath> path = SplitRepoPath(segments, 2, {"paths-info"});
  if (!path) return PlainReply(405, "Method Not Allowed");
  Reply error;
  const RepoRecord* repo = VisibleRepo(state, type, path->repo, caller, &error);
  if (repo == nullptr) return error;
  std::string revision;
  std::string rest;
  SplitRevision(repo, path->rest, &revision, &rest);
  if (revision.empty() || !rest.empty()) return PlainReply(404, "Not Found");
  const CommitRecord* commit = FindCommit(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);
  std::vector<std::string> paths;
  bool expand = false;
  if (!ParsePathsInfoBody(caller, &paths, &expand)) {
    return HubError(400, "", "Expected {\"paths\": [...]} or a form with paths");
  }
  Reply reply;
  reply.body = "[";
  bool first = true;
  for (const std::string& p : paths) {
    const bool file = commit->files.count(p) > 0;
    if (!file && (p.empty() || !HasDirectory(commit->files, p))) continue;
    if (!first) reply.body += ',';
    first = false;
    reply.body += TreeEntryJson(*repo, *commit, {p, /*directory=*/!file}, expand);
  }
  reply.body += "]";
  return reply;
}

Reply AnswerHub(State& state, const Target& target, const Caller& caller) {
  const auto& segments = target.segments;
  const bool api = !segments.empty() && segments[0] == "api";
  if (auto throttled = Throttle(state, api)) return *throttled;
  if (api && caller.method == "POST" && segments.size() >= 5 &&
      (segments[1] == "models" || segments[1] == "datasets")) {
    return PathsInfoRequest(state, target, caller);
  }
  if (caller.method != "GET" && caller.method != "HEAD") {
    return PlainReply(405, "Method Not Allowed");
  }
  if (!api) return ResolveRequest(state, target, caller);
  if (segments.size() >= 6 && segments[1] == "resolve-cache" &&
      (segments[2] == "models" || segments[2] == "datasets")) {
    return ResolveCacheRequest(state, target, caller);
  }
  if (segments.size() == 2 && (segments[1] == "models" || segments[1] == "datasets")) {
    return ListRequest(state, target, caller);
  }
  if (segments.size() >= 3 && (segments[1] == "models" || segments[1] == "datasets")) {
    return ApiRequest(state, target, caller);
  }
  return PlainReply(404, "Not Found");
}

// GET|HEAD /repos/<aa>/<bb>/<sha256>?...&Expires=<t>&Signature=<s>
Reply AnswerCdn(State& state, const Target& target, const Caller& caller) {
  if (caller.method != "GET" && caller.method != "HEAD") {
    return PlainReply(405, "Method Not Allowed");
  }
  const auto& segments = target.segments;
  if (segments.size() != 4 || segments[0] != "repos") return PlainReply(404, "Not Found");
  const std::string& sha256 = segments[3];
  const std::string expires = QueryValue(target, "Expires");
  uint64_t expires_at = 0;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (QueryValue(target, "Signature") != CdnSignature(state, sha256, expires) ||
      !ParseDecimal(expires, &expires_at) || expires_at < static_cast<uint64_t>(now)) {
    Reply reply = PlainReply(403,
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied"
                             "</Code><Message>Access denied</Message></Error>");
    reply.content_type = "application/xml";
    return reply;
  }
  auto object = state.lfs_objects.find(sha256);
  if (object == state.lfs_objects.end()) return PlainReply(404, "NoSuchKey");
  std::vector<std::string> keys = {sha256};
  const auto& paths = state.lfs_paths[sha256];
  keys.insert(keys.end(), paths.begin(), paths.end());
  bool wrong = false;
  for (const std::string& key : keys) wrong = wrong || state.wrong_bytes.count(key) > 0;
  Reply reply = ServeBytes(object->second, wrong, caller, TakeCutOff(state, caller, keys));
  // The CDN's own ETag, unrelated to the Hub's ids.
  reply.headers.emplace_back("ETag", "\"" + Sha256Hex("cdn " + sha256) + "\"");
  return reply;
}

void Send(const Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
          const Reply& reply) {
  resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
  for (const auto& [name, value] : reply.headers) resp.add(name, value);
  resp.setContentType(reply.content_type);
  resp.setContentLength64(static_cast<Poco::Int64>(reply.body.size()));
  const bool head = req.getMethod() == "HEAD";
  if (reply.cut_after && !head) {
    resp.setKeepAlive(false);
    std::ostream& out = resp.send();
    out.write(reply.body.data(),
              static_cast<std::streamsize>(std::min(*reply.cut_after, reply.body.size())));
    out.flush();
    // Returning with the body short and keep-alive off makes Poco close the connection.
    return;
  }
  std::ostream& out = resp.send();
  if (!head) out.write(reply.body.data(), static_cast<std::streamsize>(reply.body.size()));
}

class ListenerHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  ListenerHandler(std::shared_ptr<State> state, bool cdn) : state_(std::move(state)), cdn_(cdn) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    std::string body;
    Poco::StreamCopier::copyToString(req.stream(), body);
    Caller caller = CallerOf(req);
    caller.body = std::move(body);
    Reply reply;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      try {
        const Target target = ParseTarget(req.getURI());
        reply = cdn_ ? AnswerCdn(*state_, target, caller) : AnswerHub(*state_, target, caller);
      } catch (const Poco::SyntaxException& e) {
        reply = HubError(400, "", "Malformed URL: " + e.displayText());
      }
      state_->requests.push_back({cdn_ ? "cdn" : "hub", req.getMethod(), req.getURI(),
                                  req.get("Authorization", ""), caller.range, reply.status});
    }
    Send(req, resp, reply);
  }

 private:
  std::shared_ptr<State> state_;
  bool cdn_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  HandlerFactory(std::shared_ptr<State> state, bool cdn) : state_(std::move(state)), cdn_(cdn) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ListenerHandler(state_, cdn_);
  }

 private:
  std::shared_ptr<State> state_;
  bool cdn_;
};

// Each listener has its own threads: clients keep connections alive (16
// and more at once for parallel chunks), and a pool shared with the other
// listener, or Poco's default of 16, would leave new connections waiting.
constexpr int kListenerThreads = 96;

std::unique_ptr<Poco::Net::HTTPServer> StartListener(std::shared_ptr<State> state, bool cdn,
                                                     const Poco::Net::ServerSocket& socket,
                                                     Poco::ThreadPool* threads) {
  auto* params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setMaxThreads(kListenerThreads);
  auto server = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(std::move(state), cdn),
                                                        *threads, socket, params);
  server->start();
  return server;
}

}  // namespace

struct HubServer::Listeners {
  // Declared before the servers, which use them, so that they outlive them.
  Poco::ThreadPool hub_threads{2, kListenerThreads};
  Poco::ThreadPool cdn_threads{2, kListenerThreads};
  std::unique_ptr<Poco::Net::HTTPServer> hub;
  std::unique_ptr<Poco::Net::HTTPServer> cdn;
};

HubServer::HubServer() : HubServer(Options()) {}

HubServer::HubServer(Options options)
    : state_(std::make_shared<State>()), listeners_(std::make_unique<Listeners>()) {
  state_->options = std::move(options);
  std::random_device random;
  state_->signing_secret = std::to_string(random()) + std::to_string(random());
  Poco::Net::ServerSocket hub_socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  Poco::Net::ServerSocket cdn_socket(Poco::Net::SocketAddress(state_->options.cdn_host, 0));
  state_->hub_url = "http://127.0.0.1:" + std::to_string(hub_socket.address().port());
  state_->cdn_url =
      "http://" + state_->options.cdn_host + ":" + std::to_string(cdn_socket.address().port());
  listeners_->hub = StartListener(state_, /*cdn=*/false, hub_socket, &listeners_->hub_threads);
  listeners_->cdn = StartListener(state_, /*cdn=*/true, cdn_socket, &listeners_->cdn_threads);
}

HubServer::~HubServer() {
  // Each stop waits out its listener's poll interval; in parallel that is paid once.
  std::thread cdn_stopper([this] { listeners_->cdn->stopAll(true); });
  listeners_->hub->stopAll(true);
  cdn_stopper.join();
}

bool HubServer::CanListenOn(const std::string& host, std::string* why) {
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(host, 0));
    return true;
  } catch (const Poco::Exception& e) {
    if (why != nullptr) *why = e.displayText();
    return false;
  }
}

std::string HubServer::url() const { return state_->hub_url; }
std::string HubServer::cdn_url() const { return state_->cdn_url; }

std::string HubServer::Commit(const std::string& repo, RepoType type, const std::string& branch,
                              const std::map<std::string, File>& files,
                              const std::string& message) {
  std::lock_guard<std::mutex> lock(state_->mu);
  RepoRecord& record = state_->RepoFor(type, repo);
  CommitRecord commit;
  commit.message = message;
  commit.time = std::chrono::system_clock::now();
  if (auto head = record.branches.find(branch); head != record.branches.end()) {
    commit.parent = head->second;
  } else if (auto main = record.branches.find("main"); main != record.branches.end()) {
    commit.parent = main->second;
  }
  for (const auto& [path, file] : files) {
    StoredFile stored;
    stored.content = file.content;
    stored.lfs = file.lfs;
    stored.sha256 = Sha256Hex(file.content);
    if (file.lfs) {
      const std::string pointer = LfsPointerText(file.content);
      stored.blob_id = GitBlobId(pointer);
      stored.pointer_size = pointer.size();
      state_->lfs_objects[stored.sha256] = file.content;
      state_->lfs_paths[stored.sha256].insert(path);
    } else {
      stored.blob_id = GitBlobId(file.content);
    }
    commit.files.emplace(path, std::move(stored));
  }
  commit.tree_id = Hex(TreeRawId(commit.files, ""));
  const std::string signature = "Hub Server <hub-server@example.invalid> " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   commit.time.time_since_epoch())
                                                   .count()) +
                                " +0000\n";
  std::string text = "tree " + commit.tree_id + "\n";
  if (!commit.parent.empty()) text += "parent " + commit.parent + "\n";
  text += "author " + signature + "committer " + signature + "\n" + message + "\n";
  commit.sha = Hex(GitObjectRawId("commit", text));
  const std::string sha = commit.sha;
  record.commits[sha] = std::move(commit);
  record.branches[branch] = sha;
  return sha;
}

void HubServer::Tag(const std::string& repo, RepoType type, const std::string& tag,
                    const std::string& sha) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->RepoFor(type, repo).tags[tag] = sha;
}

void HubServer::ResetBranch(const std::string& repo, RepoType type, const std::string& branch,
                            const std::string& sha) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->RepoFor(type, repo).branches[branch] = sha;
}

std::string HubServer::Head(const std::string& repo, RepoType type,
                            const std::string& branch) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->repos.find({type, repo});
  if (it == state_->repos.end()) return "";
  auto head = it->second.branches.find(branch);
  return head == it->second.branches.end() ? "" : head->second;
}

void HubServer::SetPrivate(const std::string& repo, RepoType type, const std::string& token) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->RepoFor(type, repo).private_token = token;
}

void HubServer::SetGated(const std::string& repo, RepoType type, const std::string& granted_token,
                         const std::string& mode) {
  std::lock_guard<std::mutex> lock(state_->mu);
  RepoRecord& record = state_->RepoFor(type, repo);
  record.gate_token = granted_token;
  record.gate_mode = mode;
}

void HubServer::RateLimitNext(int n, int retry_after_seconds) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rate_limited_left = n;
  state_->rate_limit_retry_after = retry_after_seconds;
}

void HubServer::ServiceUnavailableNext(int n, int retry_after_seconds) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->unavailable_left = n;
  state_->unavailable_retry_after = retry_after_seconds;
}

void HubServer::ServeWrongBytes(const std::string& key) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->wrong_bytes.insert(key);
}

void HubServer::CutOffNextDownload(const std::string& key, size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->cut_off[key] = n;
}

void HubServer::TruncateSiblings(std::optional<size_t> max_listed) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->siblings_limit = max_listed;
}

void HubServer::SetListPageSize(size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->options.list_page_size = n;
}

void HubServer::DeleteRepo(const std::string& repo, RepoType type) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->repos.erase({type, repo});
}

void HubServer::SetTreePageSize(size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->options.tree_page_size = n;
}

std::vector<HubServer::Request> HubServer::requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->requests;
}

void HubServer::ClearRequests() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->requests.clear();
}

}  // namespace sync_agent::testing
