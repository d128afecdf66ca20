// The TOML configuration (common/config, ParseConfig from text, with every
// source kind's [[repo]] keys). toml++ is Debian's shared library, so the
// fuzzer is guided by our validator's coverage, not by toml++'s.
//
// Invariants: a config that parses keeps every documented rule (ranges,
// stale_after >= interval, absolute directories, one credential at most,
// valid repository names, a source for every repository, served paths that
// stay under the mirror root); one that does not names the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/config.h"
#include "common/manifest/manifest.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

void Check(std::string_view text) {
  const std::string path = "/etc/sync-agent/fuzz.toml";
  Result<Config> parsed = ParseConfig(std::string(text), path);
  if (!parsed.ok()) {
    SA_FUZZ_CHECK(parsed.status().code() == Status::Code::kInvalidArgument);
    SA_FUZZ_CHECK(parsed.status().message().rfind(path, 0) == 0);
    return;
  }
  const Config& c = *parsed;
  SA_FUZZ_CHECK(c.path == path);
  SA_FUZZ_CHECK(!c.state_dir.empty() && c.state_dir.front() == '/');
  SA_FUZZ_CHECK(!c.mirror_root.empty() && c.mirror_root.front() == '/');
  SA_FUZZ_CHECK(c.stale_after >= c.interval);
  SA_FUZZ_CHECK(c.keep_revisions >= 1);
  SA_FUZZ_CHECK(c.connections_per_file >= 1 && c.connections_per_file <= 64);
  SA_FUZZ_CHECK(c.connections_total >= 1 && c.connections_total <= 256);
  SA_FUZZ_CHECK(c.retry_attempts >= 1 && c.retry_attempts <= 20);
  SA_FUZZ_CHECK(c.log_format == "plain" || c.log_format == "json");
  for (const RepoConfig& repo : c.repos) {
    SA_FUZZ_CHECK(IsValidRepoName(repo.name));
    SA_FUZZ_CHECK(repo.source != nullptr);
    SA_FUZZ_CHECK(!repo.source->urls().empty());
    const int credentials = !repo.authorization.empty() + !repo.token.empty() +
                            !repo.token_env.empty() + !repo.token_file.empty();
    SA_FUZZ_CHECK(credentials <= 1);
    SA_FUZZ_CHECK(repo.authorization.find_first_of("\r\n") == std::string::npos);
    // Where it is served: a relative path of the repository name's shape.
    const std::string served = repo.local_name();
    SA_FUZZ_CHECK(CheckRelativePath(served, ManifestLimits{}).empty());
  }
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
