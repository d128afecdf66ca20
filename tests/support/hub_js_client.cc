#include "tests/support/hub_js_client.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "common/base/json_text.h"
#include "common/hash/content_hasher.h"

namespace sync_agent::testing {
namespace {

constexpr int kMinNodeMajor = 18;  // @huggingface/hub's "engines"

std::string JsDir() { return std::string(SA_SOURCE_DIR) + "/tests/js"; }

// The first executable `name` on PATH, as a shell finds it; "" if none.
// RunProcess takes a path, and Node lives in /usr/bin or /usr/local/bin
// depending on where it came from.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr && *path != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return "";
    dirs.remove_prefix(colon + 1);
  }
}

std::string CheckJson(const HubJsCheck& check) {
  std::string out =
      "{\"hubUrl\":" + JsonQuote(check.hub_url) + ",\"repo\":" + JsonQuote(check.repo);
  out += ",\"type\":" + std::string(check.type == RepoType::kDataset ? "\"dataset\"" : "\"model\"");
  if (check.revision) out += ",\"revision\":" + JsonQuote(*check.revision);
  if (check.sha) out += ",\"sha\":" + JsonQuote(*check.sha);
  if (check.access_token) out += ",\"accessToken\":" + JsonQuote(*check.access_token);
  out += ",\"cacheDir\":" + JsonQuote(check.cache_dir);
  out += ",\"timeoutMs\":" + std::to_string(check.timeout.count() * 1000);
  out += ",\"expect\":{";
  bool first = true;
  for (const auto& [path, content] : check.files) {
    if (!first) out += ',';
    first = false;
    out += JsonQuote(path) + ":{\"sha256\":" + JsonQuote(Sha256Hex(content)) +
           ",\"size\":" + std::to_string(content.size()) + "}";
  }
  out += "},\"missing\":[";
  first = true;
  for (const std::string& path : check.missing) {
    if (!first) out += ',';
    first = false;
    out += JsonQuote(path);
  }
  out += "]}";
  return out;
}

}  // namespace

bool HubJsClientAvailable(std::string* why) {
  std::string reason;
  const std::string node = FindOnPath("node");
  if (node.empty()) {
    reason = "node is not on PATH (scripts/test installs it: apt-get install nodejs npm)";
  } else {
    const ProcessResult version = RunProcess({node, "--version"});
    // Node answers "v20.20.2".
    const int major = version.out.size() > 1 ? std::atoi(version.out.c_str() + 1) : 0;
    if (version.exit_code != 0 || major < kMinNodeMajor) {
      reason = node + " --version says \"" + version.out + "\"; @huggingface/hub needs Node " +
               std::to_string(kMinNodeMajor) + " or later";
    } else if (!PathExists(JsDir() + "/node_modules/@huggingface/hub/package.json")) {
      reason = "@huggingface/hub is not installed in " + JsDir() +
               " (run scripts/test, or npm ci --prefix " + JsDir() + ")";
    }
  }
  if (why != nullptr) *why = reason;
  return reason.empty();
}

ProcessResult RunHubJsClient(const HubJsCheck& check) {
  return RunProcess({FindOnPath("node"), JsDir() + "/hub_client_check.mjs", CheckJson(check)});
}

}  // namespace sync_agent::testing
