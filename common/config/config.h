// The agent's configuration file (TOML, default /etc/sync-agent/sync-agent.toml).
// Documented in README.md ("Configuration"). Unknown keys and bad values are
// errors that name the key and, where toml++ knows it, the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bandwidth/rate_limiter.h"
#include "common/base/status.h"
#include "common/manifest/manifest.h"
#include "common/source/source_kind.h"

namespace sync_agent {

inline constexpr const char* kDefaultConfigPath = "/etc/sync-agent/sync-agent.toml";

struct RepoConfig {
  std::string name;  // "org/name"
  // Where it comes from, as its source kind read it from the [[repo]] table
  // (publish roots, a git remote, a hub; common/registry/source_kinds.h).
  // Never null in a parsed config.
  std::shared_ptr<const SourceSpec> source;
  // The node's name for it: where it is served under the mirror root and
  // its key in the database. name, or "datasets/<name>" for a hub's dataset.
  std::string local_name() const { return source ? source->ServedPath(name) : name; }
  // Sent as the Authorization header to every source's own origin (http(s)
  // publish roots, a git remote and its Git LFS server, a hub); never
  // logged or shown.
  // At most one of authorization, token, token_env and token_file is set;
  // a token is sent as "Bearer <token>" (see ResolveAuthorization).
  std::string authorization;
  std::string token;
  std::string token_env;   // name of an environment variable holding the token
  std::string token_file;  // absolute path of a file holding the token
  // Public keys ("ed25519:<base64>") one of which must have signed every
  // revision before it is fetched (schema/signature_format.md): the
  // [[repo]]'s own trusted_keys, else the top-level ones for kinds that
  // carry signatures (publish roots). Empty: signatures are recorded but
  // not required.
  std::vector<std::string> trusted_keys;
  bool trusted_keys_set = false;  // the [[repo]] sets its own (maybe empty) list
  // An older revision (by signed creation time) the operator accepts
  // activating despite rollback protection; "" for none.
  std::string accept_rollback_to;
};

// A [[repo]] table whose name is "ORG/*": every repository of an
// organisation that its hub or publish roots list (expanded each pass by
// common/sync/org_follow.h). README.md, "Following an organisation".
struct OrgFollowConfig {
  std::string org;
  // The settings of every repository it follows: name "ORG/*" here, each
  // expanded copy gets "ORG/NAME". For a hub, include_files and
  // exclude_files are the copies' file globs (HubRepoSettings include and
  // exclude).
  RepoConfig repo;
  // Globs (fnmatch) on repository names: one without '/' matches NAME, one
  // with '/' matches ORG/NAME. Empty include: every repository.
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  // Remove a followed repository that its origin no longer lists (its
  // served tree, its rows, then its unreferenced objects); false keeps it,
  // marked missing.
  bool prune_missing = false;
  int line = 0;  // of its [[repo]] table, for messages
  // How the database and status name it: "ORG/*", or "datasets/ORG/*" for
  // a hub's datasets (the served path of the glob).
  std::string glob() const { return repo.local_name(); }
};

// Whether the organisation table follows repo ("ORG/NAME") by its include
// and exclude globs.
bool OrgRepoSelected(const OrgFollowConfig& org, const std::string& repo);

// The Authorization header value for a repository's sources ("" for none):
// authorization as is, or "Bearer " and the token from the config, the
// environment variable or the file (read now; trailing newlines dropped).
// A missing variable or an unreadable or empty file is kInvalidArgument
// naming it, never showing the token.
Result<std::string> ResolveAuthorization(const RepoConfig& repo);

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
  // Prometheus metrics: written atomically after every pass ("" for none),
  // and served by the daemon at http://metrics_host:metrics_port/metrics
  // (port 0: not served).
  std::string metrics_textfile;
  std::string metrics_host;
  int metrics_port = 0;
  std::chrono::milliseconds http_timeout{60 * 1000};  // per request I/O timeout
  // A body slower than this many bytes/s on average over http_low_speed_time
  // fails its request (0: no minimum).
  uint64_t http_low_speed_limit = 1024;
  std::chrono::milliseconds http_low_speed_time{60 * 1000};
  // Transfers: requests at once for one file, and for the whole agent.
  int connections_per_file = 16;
  int connections_total = 32;
  // Bytes per second for all transfers together (0: unlimited), and daily
  // windows with their own limit.
  uint64_t bandwidth_limit = 0;
  std::vector<BandwidthWindow> bandwidth_schedule;
  std::string ca_file;  // CA certificates for https sources; empty: the system's
  // Attempts of one transfer (a range, a file) before the run fails; a
  // source that fails this many times in a row is left for the run.
  int retry_attempts = 6;
  // How often a run that is not on a terminal logs its progress.
  std::chrono::milliseconds progress_interval{30 * 1000};
  // What a manifest may hold (manifest_max_files, manifest_max_bytes).
  ManifestLimits manifest_limits;
  // trusted_keys at the top level: the default of every publish-root [[repo]].
  std::vector<std::string> trusted_keys;
  // `serve --config`: limits of the built-in server against hostile and
  // slow clients; unset keeps the server's defaults (StaticFileServer::Options).
  std::optional<int> serve_max_connections;
  std::optional<int> serve_max_connections_per_address;  // 0: no cap
  std::optional<std::chrono::milliseconds> serve_request_timeout;
  std::optional<std::chrono::milliseconds> serve_keep_alive_timeout;
  std::vector<RepoConfig> repos;
  // [[repo]] tables named "ORG/*", in file order. A repository that a
  // [[repo]] in repos names is not followed by a glob (the explicit table
  // wins).
  std::vector<OrgFollowConfig> orgs;
  bool prune_missing = false;  // the default of each organisation table
  // At most this many repositories per organisation listing.
  int org_max_repos = 100000;
};

// Parses TOML text. path is used in messages only.
Result<Config> ParseConfig(const std::string& text, const std::string& path);
// Reads and parses a file. kNotFound if it does not exist (message says how to create one).
Result<Config> LoadConfig(const std::string& path);

}  // namespace sync_agent
