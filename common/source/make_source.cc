#include "common/git/git_source.h"
#include "common/source/source_impl.h"

namespace sync_agent {

Result<std::unique_ptr<Source>> MakeSource(const std::string& url, Env* env,
                                           const SourceOptions& options) {
  std::string root = url;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (!options.git.ref.empty()) {
    return std::unique_ptr<Source>(new GitSource(root, env, options));
  }
  if (root.rfind("http://", 0) == 0 || root.rfind("https://", 0) == 0) {
    return std::unique_ptr<Source>(new HttpSource(root, options));
  }
  if (root.rfind("file://", 0) == 0) {
    std::string dir = root.substr(7);
    if (dir.empty() || dir[0] != '/') {
      return Status::InvalidArgument("source " + url,
                                     "a file source needs an absolute path: file:///path");
    }
    return std::unique_ptr<Source>(new FileSource(root, dir, env, options));
  }
  return Status::InvalidArgument("source " + url,
                                 "unsupported scheme; use http://, https:// or file:///");
}

}  // namespace sync_agent
