#include "common/source/source_kind.h"

#include <algorithm>
#include <cctype>

#include "common/base/json_text.h"

namespace sync_agent {

Result<std::vector<std::string>> SourceSpec::ListOrganisation(const std::string& url,
                                                              const std::string& org,
                                                              const SourceOptions& /*options*/,
                                                              size_t /*max_repos*/) const {
  return Status::Unsupported("source " + url, std::string("a ") + kind() +
                                                  " source cannot list the repositories of " + org +
                                                  "; name each repository in a [[repo]]");
}

// NormalizeAbsolutePath: turns an absolute path into its canonical spelling: no repeated slashes,
// no
// "." components, no trailing slash (except for "/" itself). ".." is refused
// rather than resolved, because resolving it lexically is wrong when a
// component is a symlink. Returns an empty string on success, else the reason.
std::string NormalizeAbsolutePath(std::string_view in, std::string* out) {
  if (in.empty() || in.front() != '/') return "must be an absolute path (starting with '/')";
  std::string result;
  size_t i = 0;
  while (i < in.size()) {
    while (i < in.size() && in[i] == '/') ++i;
    size_t end = in.find('/', i);
    if (end == std::string_view::npos) end = in.size();
    std::string_view component = in.substr(i, end - i);
    i = end;
    if (component.empty() || component == ".") continue;
    if (component == "..") return "must not contain \"..\"";
    result += '/';
    result += component;
  }
  *out = result.empty() ? "/" : result;
  return {};
}

bool HasControlOrSpace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

std::string NormalizeSourceUrl(std::string_view in, std::string* out) {
  constexpr const char* kForm = "use http://host/path, https://host/path or file:///absolute/path";
  if (in.empty()) return "it is empty";
  if (!IsValidUtf8(in) || HasControlOrSpace(in)) {
    return "it contains a space or control character";
  }
  size_t sep = in.find("://");
  if (sep == std::string_view::npos) return kForm;
  std::string scheme(in.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view rest = in.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return "it must not contain a query ('?') or fragment ('#'); it names a directory";
  }
  if (scheme == "file") {
    if (rest.empty() || rest.front() != '/') {
      return "file:// must be followed by an absolute path, e.g. file:///data/published";
    }
    std::string path;
    std::string why = NormalizeAbsolutePath(rest, &path);
    if (!why.empty()) return "the path " + why;
    *out = "file://" + path;
    return {};
  }
  if (scheme != "http" && scheme != "https") return kForm;
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.empty()) return "there is no host name after " + scheme + "://";
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  *out = scheme + "://" + std::string(authority) + std::string(path);
  return {};
}

}  // namespace sync_agent
