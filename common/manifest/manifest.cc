#include "common/manifest/manifest.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "common/base/json_text.h"
#include "common/base/time_util.h"
#include "common/hash/content_hasher.h"

namespace sync_agent {
namespace {

using Poco::JSON::Object;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsValidNameComponent(std::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), IsNameChar);
}

std::string EntryLabel(size_t index, std::string_view path) {
  return "manifest files[" + std::to_string(index) + "] " + JsonQuote(path);
}

// Converts Poco parse errors and type mismatches into one Status.
Status Malformed(std::string_view what, std::string_view detail) {
  return Status::InvalidArgument(what, detail);
}

Result<Object::Ptr> ParseObject(std::string_view json, std::string_view what) {
  // Poco would report bad UTF-8 as an unterminated string; say what it is.
  size_t bad = Utf8ErrorOffset(json);
  if (bad != std::string_view::npos) {
    return Malformed(what, "text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  }
  // Poco wraps a whole number beyond 2^64 - 1 silently; refuse it first.
  JsonNumberOverflow big;
  if (FindJsonNumberOverflow(json, &big)) return Malformed(what, DescribeJsonNumberOverflow(big));
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var v = parser.parse(std::string(json));
    if (v.type() != typeid(Object::Ptr)) {
      return Malformed(what, "top level is not a JSON object");
    }
    return v.extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Malformed(what, "not valid JSON: " + e.displayText());
  } catch (const std::exception& e) {
    return Malformed(what, std::string("not valid JSON: ") + e.what());
  }
}

Result<std::string> GetString(const Object::Ptr& obj, const std::string& key, std::string_view what,
                              bool required = true) {
  if (!obj->has(key) || obj->isNull(key)) {
    if (!required) return std::string();
    return Malformed(what, "missing \"" + key + "\"");
  }
  Poco::Dynamic::Var v = obj->get(key);
  if (!v.isString()) return Malformed(what, "\"" + key + "\" is not a string");
  return v.extract<std::string>();
}

Result<uint64_t> GetUnsigned(const Object::Ptr& obj, const std::string& key,
                             std::string_view what) {
  if (!obj->has(key)) return Malformed(what, "missing \"" + key + "\"");
  Poco::Dynamic::Var v = obj->get(key);
  // Poco counts true and false as integers (1 and 0).
  if (v.type() == typeid(bool))
    return Malformed(what, "\"" + key + "\" is true or false, not a whole number");
  if (!v.isInteger()) return Malformed(what, "\"" + key + "\" is not a whole number");
  try {
    if (v.isSigned()) {
      Poco::Int64 i = v.convert<Poco::Int64>();
      if (i < 0) return Malformed(what, "\"" + key + "\" is negative");
      return static_cast<uint64_t>(i);
    }
    return static_cast<uint64_t>(v.convert<Poco::UInt64>());
  } catch (const Poco::Exception& e) {
    return Malformed(what, "\"" + key + "\" is out of range");
  }
}

Status CheckKnownKeys(const Object::Ptr& obj, std::initializer_list<std::string_view> known,
                      std::string_view what) {
  for (const auto& [k, v] : *obj) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return Malformed(what, "unknown key " + JsonQuote(k));
    }
  }
  return Status::OK();
}

Status CheckFormat(std::string_view what, uint64_t got, int want) {
  if (got == static_cast<uint64_t>(want)) return Status::OK();
  return Status::Unsupported(
      std::string(what) + " format " + std::to_string(got),
      "this sync-agent reads format " + std::to_string(want) + "; upgrade sync-agent");
}

// The repository name and revision id shared by manifests and pointers.
Status CheckRepoAndRevision(std::string_view what, const std::string& repo,
                            const std::string& revision) {
  if (!IsValidRepoName(repo)) {
    return Status::InvalidArgument(std::string(what) + " repo " + JsonQuote(repo),
                                   "not of the form org/name");
  }
  if (!IsValidRevisionId(revision)) {
    return Status::InvalidArgument(std::string(what) + " revision " + JsonQuote(revision),
                                   "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  return Status::OK();
}

// The optional "signature" object and "deltas" array of a file entry.
Status ParseDeltaInfo(const Object::Ptr& f, const std::string& what, ManifestEntry* e) {
  if (f->has("signature")) {
    Object::Ptr sig = f->getObject("signature");
    std::string swhat = what + " signature";
    if (sig.isNull()) return Malformed(swhat, "is not an object");
    SA_RETURN_IF_ERROR(CheckKnownKeys(sig, {"block_len", "strong_len", "size", "sha256"}, swhat));
    SA_ASSIGN_OR_RETURN(uint64_t block_len, GetUnsigned(sig, "block_len", swhat));
    SA_ASSIGN_OR_RETURN(uint64_t strong_len, GetUnsigned(sig, "strong_len", swhat));
    if (block_len < 256 || block_len > (16u << 20)) {
      return Malformed(swhat, "block_len " + std::to_string(block_len) + " is outside 256..16M");
    }
    if (strong_len < 8 || strong_len > 32) {
      return Malformed(swhat, "strong_len " + std::to_string(strong_len) + " is outside 8..32");
    }
    e->signature.block_len = static_cast<uint32_t>(block_len);
    e->signature.strong_len = static_cast<uint32_t>(strong_len);
    SA_ASSIGN_OR_RETURN(e->signature.size, GetUnsigned(sig, "size", swhat));
    SA_ASSIGN_OR_RETURN(e->signature.sha256, GetString(sig, "sha256", swhat));
    if (!IsLowerHex(e->signature.sha256, 64)) {
      return Malformed(swhat, "sha256 is not 64 lowercase hex digits");
    }
  }
  if (f->has("deltas")) {
    Poco::JSON::Array::Ptr deltas = f->getArray("deltas");
    if (deltas.isNull()) return Malformed(what, "\"deltas\" is not an array");
    if (deltas->size() > 64) return Malformed(what, "lists more than 64 deltas");
    for (size_t d = 0; d < deltas->size(); ++d) {
      std::string dwhat = what + " deltas[" + std::to_string(d) + "]";
      Object::Ptr obj = deltas->getObject(static_cast<unsigned>(d));
      if (obj.isNull()) return Malformed(dwhat, "is not an object");
      SA_RETURN_IF_ERROR(CheckKnownKeys(obj, {"from", "size", "sha256"}, dwhat));
      DeltaRef ref;
      SA_ASSIGN_OR_RETURN(ref.from_sha256, GetString(obj, "from", dwhat));
      SA_ASSIGN_OR_RETURN(ref.size, GetUnsigned(obj, "size", dwhat));
      SA_ASSIGN_OR_RETURN(ref.sha256, GetString(obj, "sha256", dwhat));
      if (!IsLowerHex(ref.from_sha256, 64) || !IsLowerHex(ref.sha256, 64)) {
        return Malformed(dwhat, "\"from\" and \"sha256\" must be 64 lowercase hex digits");
      }
      if (ref.from_sha256 == e->sha256) return Malformed(dwhat, "is a delta from itself");
      e->deltas.push_back(std::move(ref));
    }
  }
  return Status::OK();
}

constexpr size_t kMaxProvenanceEntries = 16;
constexpr size_t kMaxProvenanceKey = 32;
constexpr size_t kMaxProvenanceValue = 256;

// A "provenance" object of strings, if present.
Status ParseProvenanceOf(const Object::Ptr& obj, const std::string& what, Provenance* out) {
  if (!obj->has("provenance")) return Status::OK();
  const std::string pwhat = what + " provenance";
  Object::Ptr p = obj->getObject("provenance");
  if (p.isNull()) return Malformed(pwhat, "is not an object");
  for (const auto& [key, value] : *p) {
    if (!value.isString()) return Malformed(pwhat, JsonQuote(key) + " is not a string");
    (*out)[key] = value.extract<std::string>();
  }
  return Status::OK();
}

// Manifests written by sync-agent 0.1's `publish --git` carry their git ids
// in "git" objects; they are read into the generic record.
Status ParseLegacyGitRevision(const Object::Ptr& obj, Provenance* out) {
  if (!obj->has("git")) return Status::OK();
  Object::Ptr git = obj->getObject("git");
  if (git.isNull()) return Malformed("manifest", "\"git\" is not an object");
  SA_RETURN_IF_ERROR(CheckKnownKeys(git, {"commit", "tree"}, "manifest git"));
  SA_ASSIGN_OR_RETURN(std::string commit, GetString(git, "commit", "manifest git"));
  SA_ASSIGN_OR_RETURN(std::string tree, GetString(git, "tree", "manifest git"));
  (*out)["kind"] = "git";
  (*out)["commit"] = commit;
  (*out)["tree"] = tree;
  return Status::OK();
}

Status ParseLegacyGitFile(const Object::Ptr& f, const std::string& what, Provenance* out) {
  if (!f->has("git")) return Status::OK();
  Object::Ptr git = f->getObject("git");
  if (git.isNull()) return Malformed(what, "\"git\" is not an object");
  SA_RETURN_IF_ERROR(CheckKnownKeys(git, {"blob", "lfs"}, what + " git"));
  SA_ASSIGN_OR_RETURN(std::string blob, GetString(git, "blob", what + " git"));
  (*out)["blob"] = blob;
  if (git->has("lfs")) {
    Poco::Dynamic::Var lfs = git->get("lfs");
    if (!lfs.isBoolean()) return Malformed(what, "git lfs is not true or false");
    if (lfs.extract<bool>()) (*out)["lfs"] = "true";
  }
  return Status::OK();
}

bool IsProvenanceKey(std::string_view k) {
  return !k.empty() && k.size() <= kMaxProvenanceKey && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsProvenanceValue(std::string_view v) {
  return !v.empty() && v.size() <= kMaxProvenanceValue &&
         std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

std::string ProvenanceToJson(const Provenance& provenance) {
  std::string out = "{";
  for (const auto& [key, value] : provenance) {
    if (out.size() > 1) out += ", ";
    out += JsonQuote(key) + ": " + JsonQuote(value);
  }
  return out + "}";
}

Result<Provenance> ParseProvenanceJson(std::string_view json, std::string_view what) {
  Provenance out;
  if (json.empty()) return out;
  SA_ASSIGN_OR_RETURN(Object::Ptr obj, ParseObject(json, what));
  for (const auto& [key, value] : *obj) {
    if (!value.isString()) return Malformed(what, JsonQuote(key) + " is not a string");
    out[key] = value.extract<std::string>();
  }
  SA_RETURN_IF_ERROR(ValidateProvenance(out, what));
  return out;
}

Status ValidateProvenance(const Provenance& provenance, std::string_view what) {
  if (provenance.size() > kMaxProvenanceEntries) {
    return Status::InvalidArgument(
        what, "has more than " + std::to_string(kMaxProvenanceEntries) + " entries");
  }
  for (const auto& [key, value] : provenance) {
    if (!IsProvenanceKey(key)) {
      return Status::InvalidArgument(
          what, "key " + JsonQuote(key) + " is not 1-32 characters of [a-z0-9_]");
    }
    if (!IsProvenanceValue(value)) {
      return Status::InvalidArgument(what,
                                     JsonQuote(key) + " is not 1-256 printable ASCII characters");
    }
    if ((key == "commit" || key == "tree" || key == "blob") && !IsLowerHex(value, 40)) {
      return Status::InvalidArgument(what, JsonQuote(key) + " " + JsonQuote(value) +
                                               " is not a git id of 40 lowercase hex digits");
    }
    if (key == "lfs" && value != "true") {
      return Status::InvalidArgument(what, "\"lfs\" must be \"true\" when present");
    }
  }
  if (provenance.count("lfs") && !provenance.count("blob")) {
    return Status::InvalidArgument(what, "a Git LFS file (\"lfs\") needs its pointer's \"blob\"");
  }
  return Status::OK();
}

uint64_t Manifest::TotalBytes() const {
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  return total;
}

bool IsValidRepoName(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) return false;
  return IsValidNameComponent(name.substr(0, slash), 96) &&
         IsValidNameComponent(name.substr(slash + 1), 96);
}

bool IsValidOrgName(std::string_view org) { return IsValidNameComponent(org, 96); }

bool IsValidRevisionId(std::string_view id) { return IsValidNameComponent(id, 128); }

std::string CheckRelativePath(std::string_view path, const ManifestLimits& limits) {
  if (path.empty()) return "path is empty";
  if (path.size() > limits.max_path_bytes) {
    return "path is longer than " + std::to_string(limits.max_path_bytes) + " bytes";
  }
  if (path.front() == '/') return "path is absolute";
  if (path.back() == '/') return "path ends with '/'";
  if (!IsValidUtf8(path)) return "path is not valid UTF-8";
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return "path contains a control character";
    if (c == '\\') return "path contains a backslash";
  }
  size_t depth = 0;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(start, end - start);
    if (comp.empty()) return "path contains an empty component ('//')";
    if (comp == ".") return "path contains a '.' component";
    if (comp == "..") return "path contains a '..' component";
    if (comp.size() > limits.max_component_bytes) {
      return "a path component is longer than " + std::to_string(limits.max_component_bytes) +
             " bytes";
    }
    if (++depth > limits.max_depth) {
      return "path is nested deeper than " + std::to_string(limits.max_depth) + " directories";
    }
    start = end + 1;
  }
  return "";
}

Status ValidateManifest(const Manifest& m, const ManifestLimits& limits) {
  SA_RETURN_IF_ERROR(CheckFormat("manifest", static_cast<uint64_t>(m.format), kManifestFormat));
  SA_RETURN_IF_ERROR(CheckRepoAndRevision("manifest", m.repo, m.revision));
  if (!m.parent.empty() && !IsValidRevisionId(m.parent)) {
    return Status::InvalidArgument("manifest parent " + JsonQuote(m.parent),
                                   "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  SA_RETURN_IF_ERROR(ValidateProvenance(m.provenance, "manifest provenance"));
  if (m.files.size() > limits.max_files) {
    return Status::InvalidArgument(
        "manifest", "lists " + std::to_string(m.files.size()) + " files, more than the limit of " +
                        std::to_string(limits.max_files) + " (manifest_max_files)");
  }
  std::unordered_set<std::string_view> paths;
  paths.reserve(m.files.size() * 2);
  uint64_t total = 0;
  for (size_t i = 0; i < m.files.size(); ++i) {
    const ManifestEntry& e = m.files[i];
    std::string why = CheckRelativePath(e.path, limits);
    if (!why.empty()) return Status::InvalidArgument(EntryLabel(i, e.path), why);
    if (!paths.insert(e.path).second) {
      return Status::InvalidArgument(EntryLabel(i, e.path), "path is listed twice");
    }
    if (e.size > limits.max_file_size) {
      return Status::InvalidArgument(EntryLabel(i, e.path),
                                     "size " + std::to_string(e.size) + " is beyond the limit of " +
                                         std::to_string(limits.max_file_size) + " bytes");
    }
    total += e.size;
    if (total > limits.max_total_size) {
      return Status::InvalidArgument(
          EntryLabel(i, e.path),
          "total size passes the limit of " + std::to_string(limits.max_total_size) + " bytes");
    }
    if (e.mode != 0644 && e.mode != 0755) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%04o", e.mode);
      return Status::InvalidArgument(EntryLabel(i, e.path),
                                     std::string("mode ") + buf + " is not 0644 or 0755");
    }
    if (!IsLowerHex(e.sha256, 64)) {
      return Status::InvalidArgument(EntryLabel(i, e.path),
                                     "sha256 is not 64 lowercase hex digits");
    }
    if (!e.xxh3_128.empty() && !IsLowerHex(e.xxh3_128, 32)) {
      return Status::InvalidArgument(EntryLabel(i, e.path),
                                     "xxh3_128 is not 32 lowercase hex digits");
    }
    SA_RETURN_IF_ERROR(ValidateProvenance(e.provenance, EntryLabel(i, e.path) + " provenance"));
  }
  // A path that is a file must not also be a directory of another path.
  for (size_t i = 0; i < m.files.size(); ++i) {
    std::string_view p = m.files[i].path;
    for (size_t pos = p.find('/'); pos != std::string_view::npos; pos = p.find('/', pos + 1)) {
      if (paths.count(p.substr(0, pos))) {
        return Status::InvalidArgument(
            EntryLabel(i, p),
            "its directory " + JsonQuote(p.substr(0, pos)) + " is also listed as a file");
      }
    }
  }
  return Status::OK();
}

std::string SerializeManifest(const Manifest& m) {
  std::string out = "{\n";
  out += "  \"format\": " + std::to_string(m.format) + ",\n";
  out += "  \"repo\": " + JsonQuote(m.repo) + ",\n";
  out += "  \"revision\": " + JsonQuote(m.revision) + ",\n";
  out += "  \"created\": " + JsonQuote(m.created) + ",\n";
  if (!m.parent.empty()) out += "  \"parent\": " + JsonQuote(m.parent) + ",\n";
  if (!m.provenance.empty()) out += "  \"provenance\": " + ProvenanceToJson(m.provenance) + ",\n";
  out += "  \"file_count\": " + std::to_string(m.files.size()) + ",\n";
  out += "  \"total_size\": " + std::to_string(m.TotalBytes()) + ",\n";
  out += "  \"files\": [";
  for (size_t i = 0; i < m.files.size(); ++i) {
    const ManifestEntry& e = m.files[i];
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", e.mode);
    out += i ? ",\n    {" : "\n    {";
    out += "\"path\": " + JsonQuote(e.path);
    out += ", \"size\": " + std::to_string(e.size);
    out += ", \"mode\": \"" + std::string(mode) + "\"";
    out += ", \"sha256\": \"" + e.sha256 + "\"";
    if (!e.xxh3_128.empty()) out += ", \"xxh3_128\": \"" + e.xxh3_128 + "\"";
    if (!e.provenance.empty()) out += ", \"provenance\": " + ProvenanceToJson(e.provenance);
    if (e.signature.present()) {
      out += ", \"signature\": {\"block_len\": " + std::to_string(e.signature.block_len) +
             ", \"strong_len\": " + std::to_string(e.signature.strong_len) +
             ", \"size\": " + std::to_string(e.signature.size) + ", \"sha256\": \"" +
             e.signature.sha256 + "\"}";
    }
    if (!e.deltas.empty()) {
      out += ", \"deltas\": [";
      for (size_t d = 0; d < e.deltas.size(); ++d) {
        out += d ? ", " : "";
        out += "{\"from\": \"" + e.deltas[d].from_sha256 +
               "\", \"size\": " + std::to_string(e.deltas[d].size) + ", \"sha256\": \"" +
               e.deltas[d].sha256 + "\"}";
      }
      out += "]";
    }
    out += "}";
  }
  out += m.files.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Result<Manifest> ParseManifest(std::string_view json, const ManifestLimits& limits) {
  // Refused before a DOM is built: a document tree costs many times its text.
  if (json.size() > limits.max_bytes) {
    return Status::InvalidArgument("manifest",
                                   "is " + FormatBytes(json.size()) + ", more than the limit of " +
                                       FormatBytes(limits.max_bytes) + " (manifest_max_bytes)");
  }
  size_t listed = CountTopLevelArrayElements(json, "files", limits.max_files);
  if (listed > limits.max_files) {
    return Status::InvalidArgument("manifest", "lists more than the limit of " +
                                                   std::to_string(limits.max_files) +
                                                   " files (manifest_max_files); refused before "
                                                   "parsing");
  }
  SA_ASSIGN_OR_RETURN(Object::Ptr obj, ParseObject(json, "manifest"));
  Manifest m;
  {
    SA_ASSIGN_OR_RETURN(uint64_t format, GetUnsigned(obj, "format", "manifest"));
    SA_RETURN_IF_ERROR(CheckFormat("manifest", format, kManifestFormat));
    m.format = static_cast<int>(format);
  }
  SA_RETURN_IF_ERROR(CheckKnownKeys(obj,
                                    {"format", "repo", "revision", "created", "parent",
                                     "provenance", "git", "file_count", "total_size", "files"},
                                    "manifest"));
  SA_ASSIGN_OR_RETURN(m.repo, GetString(obj, "repo", "manifest"));
  SA_ASSIGN_OR_RETURN(m.revision, GetString(obj, "revision", "manifest"));
  SA_ASSIGN_OR_RETURN(m.created, GetString(obj, "created", "manifest"));
  SA_ASSIGN_OR_RETURN(m.parent, GetString(obj, "parent", "manifest", false));
  SA_RETURN_IF_ERROR(ParseProvenanceOf(obj, "manifest", &m.provenance));
  SA_RETURN_IF_ERROR(ParseLegacyGitRevision(obj, &m.provenance));
  SystemTime created;
  if (!ParseIsoTime(m.created, &created)) {
    return Status::InvalidArgument("manifest created " + JsonQuote(m.created),
                                   "not an ISO-8601 UTC time such as 2026-01-31T12:00:00Z "
                                   "(years " +
                                       std::to_string(kMinIsoYear) + " to " +
                                       std::to_string(kMaxIsoYear) + ")");
  }
  if (!obj->has("files")) return Malformed("manifest", "missing \"files\"");
  Poco::JSON::Array::Ptr files = obj->getArray("files");
  if (files.isNull()) return Malformed("manifest", "\"files\" is not an array");
  if (files->size() > limits.max_files) {
    return Status::InvalidArgument(
        "manifest", "lists " + std::to_string(files->size()) + " files, more than the limit of " +
                        std::to_string(limits.max_files) + " (manifest_max_files)");
  }
  m.files.reserve(files->size());
  for (size_t i = 0; i < files->size(); ++i) {
    std::string what = "manifest files[" + std::to_string(i) + "]";
    Object::Ptr f = files->getObject(static_cast<unsigned>(i));
    if (f.isNull()) return Malformed(what, "not an object");
    ManifestEntry e;
    SA_ASSIGN_OR_RETURN(e.path, GetString(f, "path", what));
    what = EntryLabel(i, e.path);
    SA_RETURN_IF_ERROR(CheckKnownKeys(
        f,
        {"path", "size", "mode", "sha256", "xxh3_128", "signature", "deltas", "provenance", "git"},
        what));
    SA_ASSIGN_OR_RETURN(e.size, GetUnsigned(f, "size", what));
    SA_ASSIGN_OR_RETURN(std::string mode, GetString(f, "mode", what));
    char* end = nullptr;
    unsigned long mode_value = std::strtoul(mode.c_str(), &end, 8);
    if (mode.empty() || *end != '\0' || mode_value > 07777) {
      return Malformed(what, "mode " + JsonQuote(mode) + " is not an octal number");
    }
    e.mode = static_cast<uint32_t>(mode_value);
    SA_ASSIGN_OR_RETURN(e.sha256, GetString(f, "sha256", what));
    SA_ASSIGN_OR_RETURN(e.xxh3_128, GetString(f, "xxh3_128", what, false));
    SA_RETURN_IF_ERROR(ParseProvenanceOf(f, what, &e.provenance));
    SA_RETURN_IF_ERROR(ParseLegacyGitFile(f, what, &e.provenance));
    SA_RETURN_IF_ERROR(ParseDeltaInfo(f, what, &e));
    m.files.push_back(std::move(e));
  }
  if (obj->has("file_count")) {
    SA_ASSIGN_OR_RETURN(uint64_t count, GetUnsigned(obj, "file_count", "manifest"));
    if (count != m.files.size()) {
      return Malformed("manifest", "file_count " + std::to_string(count) + " does not match the " +
                                       std::to_string(m.files.size()) + " files listed");
    }
  }
  SA_RETURN_IF_ERROR(ValidateManifest(m, limits));
  if (obj->has("total_size")) {
    SA_ASSIGN_OR_RETURN(uint64_t total, GetUnsigned(obj, "total_size", "manifest"));
    if (total != m.TotalBytes()) {
      return Malformed("manifest", "total_size " + std::to_string(total) +
                                       " does not match the sum of file sizes " +
                                       std::to_string(m.TotalBytes()));
    }
  }
  return m;
}

std::string SerializePointer(const RevisionPointer& p) {
  std::string out = "{\n";
  out += "  \"format\": " + std::to_string(p.format) + ",\n";
  out += "  \"repo\": " + JsonQuote(p.repo) + ",\n";
  out += "  \"revision\": " + JsonQuote(p.revision) + ",\n";
  out += "  \"manifest\": " + JsonQuote(p.manifest) + ",\n";
  out += "  \"manifest_sha256\": " + JsonQuote(p.manifest_sha256) + ",\n";
  out += "  \"published\": " + JsonQuote(p.published) + "\n";
  out += "}\n";
  return out;
}

Result<RevisionPointer> ParsePointer(std::string_view json) {
  if (json.size() > 64 * 1024) {
    return Status::InvalidArgument("revision pointer", "larger than 64 KiB");
  }
  SA_ASSIGN_OR_RETURN(Object::Ptr obj, ParseObject(json, "revision pointer"));
  RevisionPointer p;
  SA_ASSIGN_OR_RETURN(uint64_t format, GetUnsigned(obj, "format", "revision pointer"));
  SA_RETURN_IF_ERROR(CheckFormat("revision pointer", format, kPointerFormat));
  p.format = static_cast<int>(format);
  SA_ASSIGN_OR_RETURN(p.repo, GetString(obj, "repo", "revision pointer"));
  SA_ASSIGN_OR_RETURN(p.revision, GetString(obj, "revision", "revision pointer"));
  SA_ASSIGN_OR_RETURN(p.manifest, GetString(obj, "manifest", "revision pointer"));
  SA_ASSIGN_OR_RETURN(p.manifest_sha256, GetString(obj, "manifest_sha256", "revision pointer"));
  SA_ASSIGN_OR_RETURN(p.published, GetString(obj, "published", "revision pointer", false));
  SA_RETURN_IF_ERROR(CheckRepoAndRevision("revision pointer", p.repo, p.revision));
  if (p.manifest != PublishedManifestPath(p.revision)) {
    return Status::InvalidArgument("revision pointer manifest " + JsonQuote(p.manifest),
                                   "expected " + JsonQuote(PublishedManifestPath(p.revision)));
  }
  if (!IsLowerHex(p.manifest_sha256, 64)) {
    return Status::InvalidArgument("revision pointer manifest_sha256",
                                   "not 64 lowercase hex digits");
  }
  return p;
}

std::string SerializeRevisionSignatures(const RevisionSignatures& sigs) {
  std::string out = "{\n";
  out += "  \"format\": " + std::to_string(sigs.format) + ",\n";
  out += "  \"repo\": " + JsonQuote(sigs.repo) + ",\n";
  out += "  \"revision\": " + JsonQuote(sigs.revision) + ",\n";
  out += "  \"manifest_sha256\": " + JsonQuote(sigs.manifest_sha256) + ",\n";
  out += "  \"created\": " + JsonQuote(sigs.created) + ",\n";
  out += "  \"signatures\": [";
  for (size_t i = 0; i < sigs.signatures.size(); i++) {
    out += i == 0 ? "\n" : ",\n";
    out += "    {\"key\": " + JsonQuote(sigs.signatures[i].key) +
           ", \"signature\": " + JsonQuote(sigs.signatures[i].signature) + "}";
  }
  out += sigs.signatures.empty() ? "]\n" : "\n  ]\n";
  out += "}\n";
  return out;
}

Result<RevisionSignatures> ParseRevisionSignatures(std::string_view json) {
  const std::string what = "revision signatures";
  if (json.size() > 64 * 1024) return Status::InvalidArgument(what, "larger than 64 KiB");
  SA_ASSIGN_OR_RETURN(Object::Ptr obj, ParseObject(json, what));
  SA_RETURN_IF_ERROR(CheckKnownKeys(
      obj, {"format", "repo", "revision", "manifest_sha256", "created", "signatures"}, what));
  RevisionSignatures sigs;
  SA_ASSIGN_OR_RETURN(uint64_t format, GetUnsigned(obj, "format", what));
  SA_RETURN_IF_ERROR(CheckFormat(what, format, kRevisionSignaturesFormat));
  sigs.format = static_cast<int>(format);
  SA_ASSIGN_OR_RETURN(sigs.repo, GetString(obj, "repo", what));
  SA_ASSIGN_OR_RETURN(sigs.revision, GetString(obj, "revision", what));
  SA_ASSIGN_OR_RETURN(sigs.manifest_sha256, GetString(obj, "manifest_sha256", what));
  SA_ASSIGN_OR_RETURN(sigs.created, GetString(obj, "created", what));
  SA_RETURN_IF_ERROR(CheckRepoAndRevision(what, sigs.repo, sigs.revision));
  if (!IsLowerHex(sigs.manifest_sha256, 64)) {
    return Status::InvalidArgument(what + " manifest_sha256", "not 64 lowercase hex digits");
  }
  SystemTime created;
  if (!ParseIsoTime(sigs.created, &created)) {
    return Status::InvalidArgument(what + " created " + JsonQuote(sigs.created),
                                   "not an ISO-8601 UTC time");
  }
  if (!obj->has("signatures") || !obj->isArray("signatures")) {
    return Malformed(what, "\"signatures\" is missing or not an array");
  }
  Poco::JSON::Array::Ptr list = obj->getArray("signatures");
  if (list->size() > kMaxRevisionSignatures) {
    return Malformed(what, "lists " + std::to_string(list->size()) + " signatures; at most " +
                               std::to_string(kMaxRevisionSignatures) + " are read");
  }
  for (size_t i = 0; i < list->size(); i++) {
    const std::string swhat = what + " signatures[" + std::to_string(i) + "]";
    if (!list->isObject(i)) return Malformed(swhat, "is not an object");
    Object::Ptr entry = list->getObject(i);
    SA_RETURN_IF_ERROR(CheckKnownKeys(entry, {"key", "signature"}, swhat));
    RevisionSignature sig;
    SA_ASSIGN_OR_RETURN(sig.key, GetString(entry, "key", swhat));
    SA_ASSIGN_OR_RETURN(sig.signature, GetString(entry, "signature", swhat));
    if (sig.key.size() > 128 || sig.signature.size() > 256) {
      return Malformed(swhat, "key or signature is too long to be ed25519");
    }
    sigs.signatures.push_back(std::move(sig));
  }
  return sigs;
}

std::string SerializeOrgIndex(const OrgIndex& index) {
  std::string out = "{\n";
  out += "  \"format\": " + std::to_string(index.format) + ",\n";
  out += "  \"org\": " + JsonQuote(index.org) + ",\n";
  out += "  \"updated\": " + JsonQuote(index.updated) + ",\n";
  out += "  \"repos\": [";
  for (size_t i = 0; i < index.repos.size(); i++) {
    out += i == 0 ? "\n" : ",\n";
    out += "    {\"name\": " + JsonQuote(index.repos[i]) + "}";
  }
  out += index.repos.empty() ? "]\n" : "\n  ]\n";
  out += "}\n";
  return out;
}

Result<OrgIndex> ParseOrgIndex(std::string_view json, const std::string& org,
                               const std::string& what_in, size_t max_repos, uint64_t max_bytes) {
  const std::string what = "organisation index " + what_in;
  if (json.size() > max_bytes) {
    return Status::InvalidArgument(
        what, "is " + std::to_string(json.size()) + " bytes, larger than manifest_max_bytes (" +
                  std::to_string(max_bytes) + "); raise manifest_max_bytes if it is right");
  }
  // Counted before parsing: a hostile index costs one scan, not a DOM.
  if (CountTopLevelArrayElements(json, "repos", max_repos + 1) > max_repos) {
    return Status::InvalidArgument(what, "lists more than " + std::to_string(max_repos) +
                                             " repositories (org_max_repos); raise "
                                             "org_max_repos if the organisation is that large");
  }
  SA_ASSIGN_OR_RETURN(Object::Ptr obj, ParseObject(json, what));
  SA_RETURN_IF_ERROR(CheckKnownKeys(obj, {"format", "org", "updated", "repos"}, what));
  OrgIndex index;
  SA_ASSIGN_OR_RETURN(uint64_t format, GetUnsigned(obj, "format", what));
  SA_RETURN_IF_ERROR(CheckFormat(what, format, kOrgIndexFormat));
  index.format = static_cast<int>(format);
  SA_ASSIGN_OR_RETURN(index.org, GetString(obj, "org", what));
  SA_ASSIGN_OR_RETURN(index.updated, GetString(obj, "updated", what, false));
  if (index.org != org) {
    return Status::InvalidArgument(
        what, "describes organisation " + JsonQuote(index.org) + ", expected " + JsonQuote(org));
  }
  if (!obj->has("repos") || !obj->isArray("repos")) {
    return Malformed(what, "\"repos\" is missing or not an array");
  }
  Poco::JSON::Array::Ptr list = obj->getArray("repos");
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < list->size(); i++) {
    const std::string rwhat = what + " repos[" + std::to_string(i) + "]";
    if (!list->isObject(i)) return Malformed(rwhat, "is not an object");
    Object::Ptr entry = list->getObject(i);
    SA_RETURN_IF_ERROR(CheckKnownKeys(entry, {"name"}, rwhat));
    SA_ASSIGN_OR_RETURN(std::string name, GetString(entry, "name", rwhat));
    if (!IsValidRepoName(name) || name.compare(0, org.size() + 1, org + "/") != 0) {
      return Malformed(rwhat, "name " + JsonQuote(name) + " is not of the form " + org + "/<name>");
    }
    if (!seen.insert(name).second) return Malformed(rwhat, "lists " + name + " a second time");
    index.repos.push_back(std::move(name));
  }
  return index;
}

std::string PublishedObjectPath(std::string_view sha256) {
  return "objects/" + std::string(sha256.substr(0, 2)) + "/" + std::string(sha256);
}

std::string PublishedSignaturePath(std::string_view content_sha256, uint32_t block_len) {
  return "signatures/" + std::string(content_sha256.substr(0, 2)) + "/" +
         std::string(content_sha256) + "-" + std::to_string(block_len) + ".sig";
}

std::string PublishedDeltaPath(std::string_view from_sha256, std::string_view to_sha256) {
  return "deltas/" + std::string(to_sha256.substr(0, 2)) + "/" + std::string(from_sha256) + "-" +
         std::string(to_sha256) + ".delta";
}

std::string PublishedManifestPath(std::string_view revision) {
  return "revisions/" + std::string(revision) + ".json";
}

std::string PublishedRevisionSignaturesPath(std::string_view revision) {
  return "revisions/" + std::string(revision) + ".sig";
}

}  // namespace sync_agent
