// The agent's configuration file (TOML, default /etc/sync-agent/sync-agent.toml).
// Documented in README.md ("Configuration"). Unknown keys and bad values are
// errors that name the key and, where toml++ knows it, the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

inline constexpr const char* kDefaultConfigPath = "/etc/sync-agent/sync-agent.toml";

struct RepoConfig {
  std::string name;                  // "org/name"
  std::vector<std::string> sources;  // publish roots: http://, https://, file:///abs/path
  // Or a git remote (http://, https://, file:///abs or /abs) and the ref to
  // follow (branch, tag, full ref or commit id). Exactly one of sources and
  // git is set.
  std::string git;
  std::string ref;
  // Sent as the Authorization header to the git remote and its Git LFS
  // server; never logged or shown.
  std::string authorization;
};

struct Config {
  std::string path;  // the file it was read from
  std::string state_dir = "/var/lib/sync-agent";
  std::string mirror_root = "/srv/mirror";
  std::chrono::milliseconds interval{5 * 60 * 1000};
  // A repository is stale when its last successful check is older than this.
  // Default: three intervals.
  std::chrono::milliseconds stale_after{15 * 60 * 1000};
  int keep_revisions = 2;            // revisions kept on disk including the active one (>= 1)
  std::string log_format = "plain";  // "plain" or "json"
  std::chrono::milliseconds http_timeout{60 * 1000};  // per request I/O timeout
  std::vector<RepoConfig> repos;
};

// Parses TOML text. path is used in messages only.
Result<Config> ParseConfig(const std::string& text, const std::string& path);
// Reads and parses a file. kNotFound if it does not exist (message says how to create one).
Result<Config> LoadConfig(const std::string& path);

}  // namespace sync_agent
