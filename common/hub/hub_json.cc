#include "common/hub/hub_json.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <optional>

#include "common/base/json_text.h"
#include "common/hash/content_hasher.h"

namespace sync_agent {
namespace {

using Poco::JSON::Object;

// text as JSON whose top level is a T (Object or Array), named shape in the
// error; what names the text.
template <typename T>
Result<typename T::Ptr> ParseJsonAs(const std::string& text, const std::string& what,
                                    const char* shape) {
  JsonNumberOverflow big;
  if (FindJsonNumberOverflow(text, &big))
    return Status::InvalidArgument(what, DescribeJsonNumberOverflow(big));
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var v = parser.parse(text);
    if (v.type() != typeid(typename T::Ptr)) {
      return Status::InvalidArgument(what, std::string("is not a JSON ") + shape);
    }
    return v.extract<typename T::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument(what, "is not valid JSON: " + e.displayText());
  }
}

std::string StringField(const Object::Ptr& o, const std::string& key) {
  if (o.isNull() || !o->has(key) || o->isNull(key)) return "";
  Poco::Dynamic::Var v = o->get(key);
  return v.isString() ? v.extract<std::string>() : "";
}

// A non-negative whole number field, or nullopt.
std::optional<uint64_t> SizeField(const Object::Ptr& o, const std::string& key) {
  if (o.isNull() || !o->has(key)) return std::nullopt;
  Poco::Dynamic::Var v = o->get(key);
  if (v.type() == typeid(bool) || !v.isInteger()) return std::nullopt;  // Poco counts true as 1
  try {
    if (v.isSigned()) {
      Poco::Int64 i = v.convert<Poco::Int64>();
      if (i < 0) return std::nullopt;
      return static_cast<uint64_t>(i);
    }
    return static_cast<uint64_t>(v.convert<Poco::UInt64>());
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

}  // namespace

Result<HubRevisionInfo> ParseHubRevisionInfo(const std::string& text, const std::string& context,
                                             const std::string& url) {
  SA_ASSIGN_OR_RETURN(Object::Ptr info,
                      ParseJsonAs<Object>(text, "repository info from " + url, "object"));
  HubRevisionInfo out;
  out.sha = StringField(info, "sha");
  if (!IsLowerHex(out.sha, 40)) {
    return Status::InvalidArgument(
        context, "the answer to " + url + " has no commit \"sha\" of 40 hex digits");
  }
  out.last_modified = StringField(info, "lastModified");
  return out;
}

Result<std::vector<HubTreeFile>> ParseHubTreePage(
    const std::string& text, const std::string& context, const std::string& url,
    const std::function<bool(const std::string& path)>& selected) {
  SA_ASSIGN_OR_RETURN(auto entries,
                      ParseJsonAs<Poco::JSON::Array>(text, "tree page from " + url, "array"));
  std::vector<HubTreeFile> files;
  for (size_t i = 0; i < entries->size(); ++i) {
    Object::Ptr e = entries->getObject(static_cast<unsigned>(i));
    const std::string what = "tree entry " + std::to_string(i) + " from " + url;
    if (e.isNull()) return Status::InvalidArgument(context, what + " is not an object");
    const std::string type = StringField(e, "type");
    if (type == "directory") continue;
    if (type != "file") {
      return Status::InvalidArgument(context, what + " has type " + JsonQuote(type) +
                                                  "; only files and directories are mirrored");
    }
    HubTreeFile f;
    f.path = StringField(e, "path");
    f.blob = StringField(e, "oid");
    auto size = SizeField(e, "size");
    if (!IsLowerHex(f.blob, 40) || !size) {
      return Status::InvalidArgument(
          context, what + " (" + JsonQuote(f.path) + ") has no 40-hex \"oid\" or no \"size\"");
    }
    f.size = *size;
    if (!selected(f.path)) continue;
    Object::Ptr lfs = e->has("lfs") ? e->getObject("lfs") : nullptr;
    if (!lfs.isNull()) {
      f.lfs = true;
      f.lfs_sha256 = StringField(lfs, "oid");
      if (f.lfs_sha256.rfind("sha256:", 0) == 0) f.lfs_sha256 = f.lfs_sha256.substr(7);
      auto lfs_size = SizeField(lfs, "size");
      if (!IsLowerHex(f.lfs_sha256, 64) || !lfs_size) {
        return Status::InvalidArgument(context, what + " (" + JsonQuote(f.path) +
                                                    ") has an \"lfs\" without a sha256 oid "
                                                    "and a size");
      }
      f.lfs_size = *lfs_size;
    }
    files.push_back(std::move(f));
  }
  return files;
}

Result<std::vector<std::string>> ParseHubRepoListPage(const std::string& text,
                                                      const std::string& context,
                                                      const std::string& url) {
  SA_ASSIGN_OR_RETURN(auto entries, ParseJsonAs<Poco::JSON::Array>(
                                        text, "repository list page from " + url, "array"));
  std::vector<std::string> ids;
  ids.reserve(entries->size());
  for (size_t i = 0; i < entries->size(); ++i) {
    Object::Ptr e = entries->getObject(static_cast<unsigned>(i));
    const std::string what = "repository list entry " + std::to_string(i) + " from " + url;
    if (e.isNull()) return Status::InvalidArgument(context, what + " is not an object");
    std::string id = StringField(e, "id");
    if (id.empty()) id = StringField(e, "modelId");
    if (id.empty()) {
      return Status::InvalidArgument(context, what + " has no \"id\" (\"org/name\")");
    }
    ids.push_back(std::move(id));
  }
  return ids;
}

}  // namespace sync_agent
