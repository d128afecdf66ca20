#include "common/config/config.h"

#include <fnmatch.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/json_text.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/manifest/manifest.h"
#include "common/registry/source_kinds.h"
#include "common/source/source_kind.h"
#include "common/trust/ed25519.h"

namespace sync_agent {
namespace {

constexpr uint64_t kMaxConfigBytes = 1 << 20;
constexpr int64_t kMinKeepRevisions = 1;
constexpr int64_t kMaxKeepRevisions = 100;
// Below one second a timer or a socket timeout is a typo, not a setting.
constexpr std::chrono::milliseconds kMinInterval{1000};
constexpr std::chrono::milliseconds kMinHttpTimeout{1000};

// "host:port" or "[v6]:port" into its parts; why it is wrong, or "".
std::string ParseHostPort(const std::string& text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return "must be HOST:PORT, e.g. \"127.0.0.1:9464\"";
  std::string h = text.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return "has no port number after the last ':'";
  }
  int n = std::stoi(p);
  if (n < 1 || n > 65535) return "port must be between 1 and 65535";
  *host = h;
  *port = n;
  return "";
}

constexpr const char* kTopLevelKeys[] = {"state_dir",
                                         "mirror_root",
                                         "interval",
                                         "stale_after",
                                         "keep_revisions",
                                         "log_format",
                                         "http_timeout",
                                         "connections_per_file",
                                         "connections_total",
                                         "bandwidth_limit",
                                         "bandwidth_schedule",
                                         "ca_file",
                                         "progress_interval",
                                         "retry_attempts",
                                         "serve_max_connections",
                                         "serve_max_connections_per_address",
                                         "serve_request_timeout",
                                         "serve_keep_alive_timeout",
                                         "http_low_speed_limit",
                                         "http_low_speed_time",
                                         "trusted_keys",
                                         "manifest_max_files",
                                         "manifest_max_bytes",
                                         "prune_missing",
                                         "org_max_repos",
                                         "metrics_textfile",
                                         "metrics_listen",
                                         "repo"};
// The [[repo]] keys of the core (the name first); each source kind adds its own.
constexpr const char* kRepoCoreKeys[] = {
    "name",         "authorization",     "token", "token_env", "token_file",
    "trusted_keys", "accept_rollback_to"};
// Keys only an organisation table ("ORG/*") has: globs on repository names,
// the followed hub repositories' file globs, and what a missing one becomes.
constexpr const char* kOrgKeys[] = {"include_files", "exclude_files", "prune_missing"};
// An organisation table's keys that a kind reads under another name.
constexpr std::pair<const char*, const char*> kOrgKindKeys[] = {{"include", "include_files"},
                                                                {"exclude", "exclude_files"}};
constexpr const char* kScheduleKeys[] = {"from", "to", "limit"};
constexpr const char* kCredentialKeys[] = {"authorization", "token", "token_env", "token_file"};

const char* TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Walks a parsed document and checks every rule. Errors are kInvalidArgument
// with the message "<path>:<line>: <what is wrong>"; the first error wins.
class ConfigValidator {
 public:
  explicit ConfigValidator(const std::string& path) : path_(path) {}

  Result<Config> Validate(const toml::table& root) {
    Config config;
    config.path = path_;
    // Mistakes are reported together: the first of the top-level keys, and
    // the first of each [[repo]] table.
    std::vector<Status> errors;
    Status top = [&]() -> Status {
      SA_RETURN_IF_ERROR(CheckKnownKeys(root, kTopLevelKeys, ""));

      SA_RETURN_IF_ERROR(GetDirectory(root, "state_dir", &config.state_dir));
      SA_RETURN_IF_ERROR(GetDirectory(root, "mirror_root", &config.mirror_root));
      SA_RETURN_IF_ERROR(CheckDisjoint(root, config));

      SA_RETURN_IF_ERROR(GetDuration(root, "interval", kMinInterval, &config.interval));
      bool has_stale_after = root.contains("stale_after");
      SA_RETURN_IF_ERROR(
          GetDuration(root, "stale_after", std::chrono::milliseconds(1), &config.stale_after));
      if (!has_stale_after) {
        config.stale_after = 3 * config.interval;
      } else if (config.stale_after < config.interval) {
        return Error(root.get("stale_after")->source(),
                     "\"stale_after\" (" + FormatDuration(config.stale_after) +
                         ") must not be shorter than \"interval\" (" +
                         FormatDuration(config.interval) +
                         "), or every repository would be reported stale between checks");
      }
      SA_RETURN_IF_ERROR(GetDuration(root, "http_timeout", kMinHttpTimeout, &config.http_timeout));
      if (const toml::node* node = root.get("http_low_speed_limit")) {
        // "0" turns the minimum off (ParseRate reads it as kUnlimited, 0).
        SA_RETURN_IF_ERROR(
            GetRate(*node, "http_low_speed_limit", "", &config.http_low_speed_limit));
      }
      SA_RETURN_IF_ERROR(
          GetDuration(root, "http_low_speed_time", kMinHttpTimeout, &config.http_low_speed_time));

      if (const toml::node* node = root.get("keep_revisions")) {
        const auto* value = node->as_integer();
        if (value == nullptr) return TypeError("keep_revisions", "", *node, "an integer");
        int64_t n = value->get();
        if (n < kMinKeepRevisions || n > kMaxKeepRevisions) {
          return Error(node->source(), "\"keep_revisions\" must be between " +
                                           std::to_string(kMinKeepRevisions) + " and " +
                                           std::to_string(kMaxKeepRevisions) + ", not " +
                                           std::to_string(n));
        }
        config.keep_revisions = static_cast<int>(n);
      }

      if (const toml::node* node = root.get("log_format")) {
        const auto* value = node->as_string();
        if (value == nullptr) return TypeError("log_format", "", *node, "a string");
        LogFormat unused;
        if (!ParseLogFormat(value->get(), &unused)) {
          return Error(node->source(), "\"log_format\" must be \"plain\" or \"json\", not " +
                                           JsonQuote(value->get()));
        }
        config.log_format = value->get();
      }

      SA_RETURN_IF_ERROR(GetInt(root, "connections_per_file", 1, 64, &config.connections_per_file));
      SA_RETURN_IF_ERROR(GetInt(root, "connections_total", 1, 256, &config.connections_total));
      SA_RETURN_IF_ERROR(GetInt(root, "retry_attempts", 1, 20, &config.retry_attempts));
      {
        int max_files = static_cast<int>(config.manifest_limits.max_files);
        SA_RETURN_IF_ERROR(GetInt(root, "manifest_max_files", 1, 10000000, &max_files));
        config.manifest_limits.max_files = static_cast<uint64_t>(max_files);
      }
      if (const toml::node* node = root.get("manifest_max_bytes")) {
        const auto* value = node->as_string();
        if (value == nullptr)
          return TypeError("manifest_max_bytes", "", *node, "a size such as \"128MiB\"");
        auto size = ParseByteSize(value->get());
        if (!size.ok() || *size < 4096) {
          return Error(node->source(),
                       "\"manifest_max_bytes\" must be a size of at least 4KiB such "
                       "as \"128MiB\", not " +
                           JsonQuote(value->get()));
        }
        config.manifest_limits.max_bytes = *size;
      }
      if (const toml::node* node = root.get("bandwidth_limit")) {
        SA_RETURN_IF_ERROR(GetRate(*node, "bandwidth_limit", "", &config.bandwidth_limit));
      }
      if (const toml::node* node = root.get("bandwidth_schedule")) {
        SA_RETURN_IF_ERROR(GetSchedule(*node, &config.bandwidth_schedule));
      }
      if (root.contains("ca_file")) {
        SA_RETURN_IF_ERROR(GetDirectory(root, "ca_file", &config.ca_file));
        if (!Env::Default()->Stat(config.ca_file).ok()) {
          return Error(root.get("ca_file")->source(),
                       "\"ca_file\" " + JsonQuote(config.ca_file) +
                           " does not exist; give a PEM file of CA certificates");
        }
      }
      SA_RETURN_IF_ERROR(
          GetDuration(root, "progress_interval", kMinInterval, &config.progress_interval));
      // Prometheus: a file for node_exporter's textfile collector, and an
      // address where the daemon answers GET /metrics.
      SA_RETURN_IF_ERROR(GetDirectory(root, "metrics_textfile", &config.metrics_textfile));
      if (!config.metrics_textfile.empty() && config.metrics_textfile.size() > 5 &&
          config.metrics_textfile.compare(config.metrics_textfile.size() - 5, 5, ".prom") != 0) {
        return Error(root.get("metrics_textfile")->source(),
                     "\"metrics_textfile\" " + JsonQuote(config.metrics_textfile) +
                         " must end in .prom (node_exporter's textfile collector reads only "
                         "*.prom files)");
      }
      if (const toml::node* node = root.get("metrics_listen")) {
        const auto* value = node->as_string();
        if (value == nullptr) return TypeError("metrics_listen", "", *node, "a string (HOST:PORT)");
        std::string why = ParseHostPort(value->get(), &config.metrics_host, &config.metrics_port);
        if (!why.empty()) {
          return Error(node->source(), "\"metrics_listen\" " + JsonQuote(value->get()) + " " + why);
        }
      }

      SA_RETURN_IF_ERROR(GetTrustedKeys(root, "", &config.trusted_keys));
      SA_RETURN_IF_ERROR(GetBool(root, "prune_missing", "", &config.prune_missing));
      SA_RETURN_IF_ERROR(GetInt(root, "org_max_repos", 1, 10000000, &config.org_max_repos));
      SA_RETURN_IF_ERROR(
          GetOptionalInt(root, "serve_max_connections", 1, 1000000, &config.serve_max_connections));
      SA_RETURN_IF_ERROR(GetOptionalInt(root, "serve_max_connections_per_address", 0, 1000000,
                                        &config.serve_max_connections_per_address));
      SA_RETURN_IF_ERROR(GetOptionalDuration(root, "serve_request_timeout", kMinHttpTimeout,
                                             &config.serve_request_timeout));
      SA_RETURN_IF_ERROR(GetOptionalDuration(root, "serve_keep_alive_timeout", kMinHttpTimeout,
                                             &config.serve_keep_alive_timeout));

      return Status::OK();
    }();
    if (!top.ok()) errors.push_back(top);
    if (const toml::node* node = root.get("repo")) {
      GetRepos(*node, config, &config.repos, &config.orgs, &errors);
    }
    if (errors.size() == 1) return errors[0];
    if (!errors.empty()) {
      std::string all;
      for (const Status& e : errors) all += (all.empty() ? "" : "\n") + e.message();
      return Status::InvalidArgument(all + "\n(" + std::to_string(errors.size()) + " mistakes in " +
                                     path_ + ")");
    }
    return config;
  }

 private:
  std::string Where(const toml::source_region& region) const {
    if (region.begin.line == 0) return path_;
    return path_ + ":" + std::to_string(region.begin.line);
  }

  Status Error(const toml::source_region& region, std::string_view detail) const {
    return Status::InvalidArgument(Where(region), detail);
  }

  // in is "" for the top level or "[[repo]]".
  Status TypeError(std::string_view key, std::string_view in, const toml::node& node,
                   std::string_view expected) const {
    std::string what = JsonQuote(key);
    if (!in.empty()) what += " in " + std::string(in);
    return Error(node.source(),
                 what + " must be " + std::string(expected) + ", not " + TypeName(node.type()));
  }

  Status CheckKnownKeys(const toml::table& table, std::span<const char* const> known,
                        std::string_view in) const {
    return CheckKnownKeys(table, std::vector<std::string>(known.begin(), known.end()), in);
  }

  Status CheckKnownKeys(const toml::table& table, const std::vector<std::string>& known,
                        std::string_view in) const {
    // The table iterates in key order; report the unknown key that comes first in the file.
    const toml::key* first = nullptr;
    for (const auto& [key, value] : table) {
      bool is_known = std::find(known.begin(), known.end(), key.str()) != known.end();
      if (!is_known && (first == nullptr || key.source().begin.line < first->source().begin.line)) {
        first = &key;
      }
    }
    if (first == nullptr) return Status::OK();
    std::string detail = "unknown key " + JsonQuote(first->str());
    if (!in.empty()) detail += " in " + std::string(in);
    for (const std::string& k : known) {
      if (EditDistance(first->str(), k) <= 2) {
        detail += "; did you mean \"" + k + "\"?";
        break;
      }
    }
    detail += " (known keys: ";
    for (size_t i = 0; i < known.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += known[i];
    }
    detail += ")";
    return Error(first->source(), detail);
  }

  // An absolute path (a directory or a file) under key.
  Status GetDirectory(const toml::table& root, const char* key, std::string* out) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return Status::OK();
    const auto* value = node->as_string();
    if (value == nullptr) return TypeError(key, "", *node, "a string (an absolute path)");
    std::string why = NormalizeAbsolutePath(value->get(), out);
    if (!why.empty()) {
      return Error(node->source(), JsonQuote(key) + " " + JsonQuote(value->get()) + " " + why);
    }
    return Status::OK();
  }

  // The database and staging area must never be served, and the agent prunes
  // the mirror tree: neither directory may hold the other.
  Status CheckDisjoint(const toml::table& root, const Config& config) const {
    const std::string& a = config.state_dir;
    const std::string& b = config.mirror_root;
    auto inside = [](const std::string& inner, const std::string& outer) {
      if (outer == "/") return true;
      return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
             inner[outer.size()] == '/';
    };
    std::string problem;
    if (a == b) {
      problem = "are the same directory";
    } else if (inside(a, b)) {
      problem = "overlap: state_dir is inside mirror_root";
    } else if (inside(b, a)) {
      problem = "overlap: mirror_root is inside state_dir";
    }
    if (problem.empty()) return Status::OK();
    const toml::node* node = root.get("mirror_root");
    if (node == nullptr) node = root.get("state_dir");
    toml::source_region region = node != nullptr ? node->source() : toml::source_region{};
    return Error(region, "state_dir " + JsonQuote(a) + " and mirror_root " + JsonQuote(b) + " " +
                             problem + "; they must be separate directories");
  }

  Status GetDuration(const toml::table& root, const char* key, std::chrono::milliseconds min,
                     std::chrono::milliseconds* out) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return Status::OK();
    const auto* value = node->as_string();
    if (value == nullptr) return TypeError(key, "", *node, "a duration string such as \"5m\"");
    Result<std::chrono::milliseconds> d = ParseDuration(value->get());
    if (!d.ok()) return Error(node->source(), JsonQuote(key) + ": " + d.status().message());
    if (*d < min) {
      return Error(node->source(), JsonQuote(key) + " must be at least " + FormatDuration(min) +
                                       ", not " + JsonQuote(value->get()));
    }
    *out = *d;
    return Status::OK();
  }

  Status GetOptionalDuration(const toml::table& root, const char* key,
                             std::chrono::milliseconds min,
                             std::optional<std::chrono::milliseconds>* out) const {
    if (!root.contains(key)) return Status::OK();
    std::chrono::milliseconds d{0};
    SA_RETURN_IF_ERROR(GetDuration(root, key, min, &d));
    *out = d;
    return Status::OK();
  }

  // trusted_keys: an array of "ed25519:<base64>" public keys, each checked.
  Status GetTrustedKeys(const toml::table& table, const std::string& label,
                        std::vector<std::string>* out) const {
    const toml::node* node = table.get("trusted_keys");
    if (node == nullptr) return Status::OK();
    const std::string in = label.empty() ? "" : " in " + label;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      return TypeError("trusted_keys", label, *node,
                       "an array of public keys such as [\"ed25519:...\"]");
    }
    for (const toml::node& element : *array) {
      const auto* value = element.as_string();
      if (value == nullptr) {
        return TypeError("trusted_keys", label, element, "an array of strings \"ed25519:...\"");
      }
      auto key = PublicKey::Parse(value->get());
      if (!key.ok()) {
        return Error(element.source(), "\"trusted_keys\"" + in + ": " + key.status().message());
      }
      out->push_back(key->id());
    }
    return Status::OK();
  }

  // trusted_keys and accept_rollback_to of one [[repo]], after its source.
  Status GetTrust(const toml::table& table, const std::vector<std::string>& top,
                  RepoConfig* repo) const {
    const std::string label = "[[repo]] " + JsonQuote(repo->name);
    const bool carries = repo->source->CarriesRevisionSignatures();
    if (table.contains("trusted_keys")) {
      if (!carries) {
        return Error(table.get("trusted_keys")->source(),
                     label + " \"trusted_keys\": a " + std::string(repo->source->kind()) +
                         " source carries no revision signatures (publish roots do); remove "
                         "trusted_keys from this [[repo]]");
      }
      SA_RETURN_IF_ERROR(GetTrustedKeys(table, label, &repo->trusted_keys));
      repo->trusted_keys_set = true;
    } else if (carries) {
      repo->trusted_keys = top;
    }
    SA_RETURN_IF_ERROR(GetString(table, "accept_rollback_to", label, &repo->accept_rollback_to));
    if (!repo->accept_rollback_to.empty() && !IsValidRevisionId(repo->accept_rollback_to)) {
      return Error(table.get("accept_rollback_to")->source(),
                   label +
                       " \"accept_rollback_to\" is not a revision id (1-128 characters of "
                       "[A-Za-z0-9._-])");
    }
    return Status::OK();
  }

  // Each [[repo]]'s first mistake goes to errors; the valid ones to out, or
  // to orgs for an organisation table ("ORG/*").
  void GetRepos(const toml::node& node, const Config& config, std::vector<RepoConfig>* out,
                std::vector<OrgFollowConfig>* orgs, std::vector<Status>* errors) const {
    const toml::array* array = node.as_array();
    // An empty array ("repo = []") is not an array of tables to toml++, but it is zero repos.
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
      errors->push_back(TypeError("repo", "", node, "an array of tables (write each as [[repo]])"));
      return;
    }
    std::map<std::string, uint32_t> first_line;  // repo name -> line of its [[repo]]
    for (const toml::node& element : *array) {
      const toml::table& table = *element.as_table();
      RepoConfig repo;
      OrgFollowConfig org;
      bool is_org = false;
      Status s = [&]() -> Status {
        SA_RETURN_IF_ERROR(CheckKnownKeys(table, RepoKeys(), "[[repo]]"));

        const toml::node* name = table.get("name");
        if (name == nullptr) return Error(table.source(), "[[repo]] has no \"name\"");
        const auto* name_value = name->as_string();
        if (name_value == nullptr) return TypeError("name", "[[repo]]", *name, "a string");
        repo.name = name_value->get();
        SA_ASSIGN_OR_RETURN(is_org, IsOrgGlob(*name, repo.name));
        if (!is_org && !IsValidRepoName(repo.name)) {
          return Error(name->source(),
                       "[[repo]] name " + JsonQuote(repo.name) +
                           " is not of the form org/name (each part 1-96 characters of "
                           "[A-Za-z0-9._-], not starting with '.')");
        }
        if (!is_org) {
          for (const char* key : kOrgKeys) {
            if (!table.contains(key)) continue;
            return Error(table.get(key)->source(),
                         "[[repo]] " + JsonQuote(repo.name) + " \"" + key +
                             "\" is only for an organisation table (name = \"ORG/*\"); remove it");
          }
        }
        SA_RETURN_IF_ERROR(GetCredentials(table, &repo));
        SA_ASSIGN_OR_RETURN(repo.source, GetSourceSpec(table, repo.name, is_org));
        if (is_org && !repo.source->ListsOrganisations()) {
          return Error(name->source(), "[[repo]] " + JsonQuote(repo.name) + ": a " +
                                           std::string(repo.source->kind()) +
                                           " source cannot list an organisation's repositories; "
                                           "\"ORG/*\" works with \"hub\" or \"sources\" "
                                           "(publish roots), else name each repository");
        }
        SA_RETURN_IF_ERROR(GetTrust(table, config.trusted_keys, &repo));
        if (is_org) SA_RETURN_IF_ERROR(GetOrgSettings(table, config, repo, &org));
        // A model and a dataset may share a name; two of either may not.
        auto [it, inserted] = first_line.emplace(repo.local_name(), name->source().begin.line);
        if (!inserted) {
          return Error(name->source(), "duplicate [[repo]] name " + JsonQuote(repo.name) +
                                           " (first defined on line " + std::to_string(it->second) +
                                           ")");
        }
        return Status::OK();
      }();
      if (!s.ok()) {
        errors->push_back(std::move(s));
      } else if (is_org) {
        org.repo = std::move(repo);
        org.line = static_cast<int>(table.source().begin.line);
        orgs->push_back(std::move(org));
      } else {
        out->push_back(std::move(repo));
      }
    }
  }

  // Whether name is an organisation glob "ORG/*"; any other '*' (or '?',
  // '[') in a name is an error that says what a glob may be.
  Result<bool> IsOrgGlob(const toml::node& node, const std::string& name) const {
    if (name.find_first_of("*?[") == std::string::npos) return false;
    const size_t slash = name.find('/');
    const std::string org = name.substr(0, slash);
    const std::string rest = slash == std::string::npos ? "" : name.substr(slash + 1);
    if (slash != std::string::npos && rest == "*" && IsValidOrgName(org)) return true;
    std::string why;
    if (slash == std::string::npos || org.find_first_of("*?[") != std::string::npos) {
      why =
          "the organisation cannot be a glob; \"ORG/*\" follows every repository of one "
          "organisation: write one [[repo]] per organisation";
    } else if (!IsValidOrgName(org)) {
      why = "the organisation " + JsonQuote(org) + " is not 1-96 characters of [A-Za-z0-9._-]";
    } else {
      why = "only \"" + org +
            "/*\" is a glob name; to follow some of its repositories write "
            "name = \"" +
            org + "/*\" and include = [" + JsonQuote(rest) + "]";
    }
    return Error(node.source(), "[[repo]] name " + JsonQuote(name) + ": " + why);
  }

  // include, exclude (globs on repository names) and prune_missing of an
  // organisation table.
  Status GetOrgSettings(const toml::table& table, const Config& config, const RepoConfig& repo,
                        OrgFollowConfig* org) const {
    const std::string label = "[[repo]] " + JsonQuote(repo.name);
    org->org = repo.name.substr(0, repo.name.find('/'));
    org->prune_missing = config.prune_missing;
    SA_RETURN_IF_ERROR(GetBool(table, "prune_missing", label, &org->prune_missing));
    for (const char* key : {"include", "exclude"}) {
      std::vector<std::string>& globs = std::string(key) == "include" ? org->include : org->exclude;
      const toml::node* node = table.get(key);
      if (node == nullptr) continue;
      const toml::array* array = node->as_array();
      if (array == nullptr) {
        return TypeError(key, label, *node, "an array of globs on repository names");
      }
      for (const toml::node& element : *array) {
        const auto* value = element.as_string();
        if (value == nullptr) return TypeError(key, label, element, "an array of strings");
        const std::string& g = value->get();
        if (g.empty() || HasControlOrSpace(g)) {
          return Error(element.source(), label + " " + key + " glob " + JsonQuote(g) +
                                             " is empty or has a space or control character");
        }
        const size_t slash = g.find('/');
        if (slash != std::string::npos &&
            (g.compare(0, slash, org->org) != 0 || g.find('/', slash + 1) != std::string::npos)) {
          return Error(element.source(), label + " " + key + " glob " + JsonQuote(g) +
                                             " can never match: a glob with '/' matches \"" +
                                             org->org + "/NAME\", one without matches NAME");
        }
        globs.push_back(g);
      }
    }
    return Status::OK();
  }

  Status GetBool(const toml::table& table, const char* key, const std::string& label,
                 bool* out) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return Status::OK();
    const auto* value = node->as_boolean();
    if (value == nullptr) return TypeError(key, label, *node, "true or false");
    *out = value->get();
    return Status::OK();
  }

  Status GetInt(const toml::table& root, const char* key, int min, int max, int* out) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return Status::OK();
    const auto* value = node->as_integer();
    if (value == nullptr) return TypeError(key, "", *node, "an integer");
    int64_t n = value->get();
    if (n < min || n > max) {
      return Error(node->source(), JsonQuote(key) + " must be between " + std::to_string(min) +
                                       " and " + std::to_string(max) + ", not " +
                                       std::to_string(n));
    }
    *out = static_cast<int>(n);
    return Status::OK();
  }

  Status GetOptionalInt(const toml::table& root, const char* key, int min, int max,
                        std::optional<int>* out) const {
    if (!root.contains(key)) return Status::OK();
    int n = 0;
    SA_RETURN_IF_ERROR(GetInt(root, key, min, max, &n));
    *out = n;
    return Status::OK();
  }

  // in is "" for the top level or the table's label.
  Status GetRate(const toml::node& node, const char* key, std::string_view in,
                 uint64_t* out) const {
    const auto* value = node.as_string();
    if (value == nullptr) {
      return TypeError(key, in, node, "a string such as \"50MB/s\" or \"unlimited\"");
    }
    auto rate = ParseRate(value->get());
    if (!rate.ok()) return Error(node.source(), JsonQuote(key) + ": " + rate.status().message());
    *out = *rate;
    return Status::OK();
  }

  Status GetSchedule(const toml::node& node, std::vector<BandwidthWindow>* out) const {
    const toml::array* array = node.as_array();
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
      return TypeError("bandwidth_schedule", "", node,
                       "an array of tables (write each as [[bandwidth_schedule]])");
    }
    for (const toml::node& element : *array) {
      const toml::table& table = *element.as_table();
      SA_RETURN_IF_ERROR(CheckKnownKeys(table, kScheduleKeys, "[[bandwidth_schedule]]"));
      BandwidthWindow w;
      for (const char* key : {"from", "to"}) {
        const toml::node* n = table.get(key);
        if (n == nullptr) {
          return Error(table.source(), std::string("[[bandwidth_schedule]] has no \"") + key +
                                           "\" (a time of day such as \"22:00\")");
        }
        const auto* v = n->as_string();
        if (v == nullptr) return TypeError(key, "[[bandwidth_schedule]]", *n, "a string \"HH:MM\"");
        auto minute = ParseClockTime(v->get());
        if (!minute.ok()) {
          return Error(n->source(), "[[bandwidth_schedule]] \"" + std::string(key) +
                                        "\": " + minute.status().message());
        }
        (std::string(key) == "from" ? w.start_minute : w.end_minute) = *minute % 1440;
      }
      if (w.start_minute == w.end_minute) {
        return Error(table.source(),
                     "[[bandwidth_schedule]] \"from\" and \"to\" are the same "
                     "time; use bandwidth_limit for the whole day");
      }
      const toml::node* limit = table.get("limit");
      if (limit == nullptr) {
        return Error(table.source(),
                     "[[bandwidth_schedule]] has no \"limit\" (such as \"10MB/s\" or "
                     "\"unlimited\")");
      }
      SA_RETURN_IF_ERROR(GetRate(*limit, "limit", "[[bandwidth_schedule]]", &w.bytes_per_second));
      out->push_back(w);
    }
    return Status::OK();
  }

  Status GetString(const toml::table& table, const char* key, const std::string& label,
                   std::string* out) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return Status::OK();
    const auto* value = node->as_string();
    if (value == nullptr) return TypeError(key, label, *node, "a string");
    if (value->get().empty()) return Error(node->source(), label + " \"" + key + "\" is empty");
    *out = value->get();
    return Status::OK();
  }

  Status GetCredentials(const toml::table& table, RepoConfig* repo) const {
    const std::string label = "[[repo]] " + JsonQuote(repo->name);
    const toml::node* first = nullptr;
    for (const char* key : kCredentialKeys) {
      const toml::node* n = table.get(key);
      if (n == nullptr) continue;
      if (first != nullptr) {
        return Error(n->source(), label +
                                      " sets more than one of authorization, token, "
                                      "token_env and token_file; keep one");
      }
      first = n;
    }
    SA_RETURN_IF_ERROR(GetString(table, "authorization", label, &repo->authorization));
    SA_RETURN_IF_ERROR(GetString(table, "token", label, &repo->token));
    SA_RETURN_IF_ERROR(GetString(table, "token_env", label, &repo->token_env));
    if (table.contains("token_file")) {
      SA_RETURN_IF_ERROR(GetDirectory(table, "token_file", &repo->token_file));
    }
    for (const char* key : {"authorization", "token"}) {
      const std::string& v = std::string(key) == "token" ? repo->token : repo->authorization;
      if (v.find_first_of("\r\n") != std::string::npos) {
        return Error(table.get(key)->source(),
                     label + " \"" + key + "\" must be one line (an HTTP header value)");
      }
    }
    return Status::OK();
  }

  // A [[repo]] table lent to a source kind, with this file's error spelling.
  class TomlRepoTable final : public RepoTable {
   public:
    // In an organisation table the kind's keys include and exclude are
    // include_files and exclude_files (org_keys).
    TomlRepoTable(const ConfigValidator& v, const toml::table& table, const std::string& name,
                  bool org_keys)
        : v_(v),
          table_(table),
          name_(name),
          label_("[[repo]] " + JsonQuote(name)),
          org_keys_(org_keys) {}
    const std::string& repo_name() const override { return name_; }
    std::string label() const override { return label_; }
    bool Has(std::string_view key) const override { return table_.contains(Key(key)); }
    Status GetString(std::string_view key, std::string* out) const override {
      key = Key(key);
      const toml::node* node = table_.get(key);
      if (node == nullptr) return Status::OK();
      const auto* value = node->as_string();
      if (value == nullptr) return v_.TypeError(key, label_, *node, "a string");
      if (value->get().empty()) {
        return v_.Error(node->source(), label_ + " " + JsonQuote(key) + " is empty");
      }
      *out = value->get();
      return Status::OK();
    }
    Status GetStringArray(std::string_view key, std::vector<std::string>* out) const override {
      key = Key(key);
      const toml::node* node = table_.get(key);
      if (node == nullptr) return Status::OK();
      const toml::array* array = node->as_array();
      if (array == nullptr) return v_.TypeError(key, label_, *node, "an array of strings");
      std::vector<std::string> values;
      for (const toml::node& element : *array) {
        const auto* value = element.as_string();
        if (value == nullptr) return v_.TypeError(key, label_, element, "an array of strings");
        values.push_back(value->get());
      }
      *out = std::move(values);
      return Status::OK();
    }
    Status Error(std::string_view key, std::string_view detail) const override {
      const toml::node* node = table_.get(Key(key));
      return v_.Error(node != nullptr ? node->source() : table_.source(), detail);
    }
    Status ElementError(std::string_view key, size_t i, std::string_view detail) const override {
      const toml::node* node = table_.get(Key(key));
      const toml::array* array = node != nullptr ? node->as_array() : nullptr;
      if (array == nullptr || i >= array->size()) return Error(key, detail);
      return v_.Error((*array)[i].source(), detail);
    }

   private:
    std::string_view Key(std::string_view key) const {
      if (!org_keys_) return key;
      for (const auto& [kind_key, table_key] : kOrgKindKeys) {
        if (key == kind_key) return table_key;
      }
      return key;
    }

    const ConfigValidator& v_;
    const toml::table& table_;
    const std::string& name_;
    const std::string label_;
    const bool org_keys_;
  };

  // Every [[repo]] key: the core's and each kind's.
  // In the order messages list them: the name, each kind's, the credentials.
  static std::vector<std::string> RepoKeys() {
    std::vector<std::string> keys = {kRepoCoreKeys[0]};
    for (const SourceKind* kind : BuiltinSourceKinds()) {
      for (const std::string& k : kind->keys()) {
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
      }
    }
    keys.insert(keys.end(), std::begin(kRepoCoreKeys) + 1, std::end(kRepoCoreKeys));
    keys.insert(keys.end(), std::begin(kOrgKeys), std::end(kOrgKeys));
    return keys;
  }

  // The kind whose selector the table has parses its keys; keys of other
  // kinds are refused, naming the kinds they belong to.
  // In an organisation table (org), include and exclude are the core's
  // globs on names and include_files and exclude_files the kind's include
  // and exclude.
  Result<std::shared_ptr<const SourceSpec>> GetSourceSpec(const toml::table& table,
                                                          const std::string& name, bool org) const {
    const std::string label = "[[repo]] " + JsonQuote(name);
    const auto& kinds = BuiltinSourceKinds();
    std::vector<std::pair<const SourceKind*, const toml::node*>> chosen;
    for (const SourceKind* kind : kinds) {
      if (const toml::node* n = table.get(kind->selector())) chosen.push_back({kind, n});
    }
    std::sort(chosen.begin(), chosen.end(), [](const auto& a, const auto& b) {
      return a.second->source().begin.line < b.second->source().begin.line;
    });
    std::string selectors;
    std::string froms;
    for (size_t i = 0; i < kinds.size(); ++i) {
      const char* sep = i == 0 ? "" : (i + 1 == kinds.size() ? " or " : ", ");
      selectors += sep + JsonQuote(kinds[i]->selector());
      froms += sep + std::string(kinds[i]->description()) + " (" + kinds[i]->selector() + ")";
    }
    if (chosen.empty()) {
      return Error(table.source(),
                   label + " has no \"sources\"; say where it comes from with " + selectors);
    }
    if (chosen.size() > 1) {
      return Error(chosen[1].second->source(),
                   label + " has both " + JsonQuote(chosen[0].first->selector()) + " and " +
                       JsonQuote(chosen[1].first->selector()) + "; a repository comes from " +
                       froms);
    }
    const SourceKind* kind = chosen[0].first;
    const std::vector<std::string> own = kind->keys();
    for (const auto& [key, value] : table) {
      const std::string given(key.str());
      std::string k = given;
      if (org) {
        if (k == "include" || k == "exclude" || k == "prune_missing") continue;
        for (const auto& [kind_key, table_key] : kOrgKindKeys) {
          if (k == table_key) k = kind_key;
        }
      }
      if (std::find(own.begin(), own.end(), k) != own.end()) continue;
      if (std::find(std::begin(kRepoCoreKeys), std::end(kRepoCoreKeys), k) !=
          std::end(kRepoCoreKeys)) {
        continue;
      }
      std::string owners;
      std::string adds;
      for (const SourceKind* other : kinds) {
        auto keys = other->keys();
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) continue;
        owners += (owners.empty() ? "" : " or ") + std::string(other->description());
        adds += (adds.empty() ? "" : " or ") + JsonQuote(other->selector());
      }
      return Error(value.source(), label + " " + JsonQuote(given) + " belongs to " + owners +
                                       "; add " + adds + " or remove it");
    }
    TomlRepoTable view(*this, table, name, org);
    return kind->Parse(view);
  }

  const std::string& path_;
};

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& path) {
  toml::table root;
  // The Debian build of toml++ is a shared library compiled with exceptions
  // (namespace toml::v3::ex); both modes are handled so the code does not
  // depend on that packaging choice.
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const toml::source_position& pos = e.source().begin;
    return Status::InvalidArgument(
        path + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column), e.description());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path, std::string("cannot parse TOML: ") + e.what());
  }
#else
  toml::parse_result result = toml::parse(text, std::string_view(path));
  if (!result) {
    const toml::source_position& pos = result.error().source().begin;
    return Status::InvalidArgument(
        path + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column),
        result.error().description());
  }
  root = std::move(result).table();
#endif
  return ConfigValidator(path).Validate(root);
}

Result<Config> LoadConfig(const std::string& path) {
  Result<std::string> text = ReadFileToString(Env::Default(), path, kMaxConfigBytes);
  if (!text.ok()) {
    const Status& s = text.status();
    if (s.IsNotFound()) {
      return Status::NotFound("config file " + path + " does not exist",
                              "create it; README.md, section \"Configuration\", describes the "
                              "format and has an example");
    }
    if (s.code() == Status::Code::kInvalidArgument) return s;  // larger than the limit
    return Status::IOError("cannot read config file " + path, s.message());
  }
  return ParseConfig(*text, path);
}

bool OrgRepoSelected(const OrgFollowConfig& org, const std::string& repo) {
  const std::string short_name = repo.substr(repo.find('/') + 1);
  auto matches = [&](const std::vector<std::string>& globs) {
    return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
      const std::string& subject = g.find('/') == std::string::npos ? short_name : repo;
      return ::fnmatch(g.c_str(), subject.c_str(), 0) == 0;
    });
  };
  if (!org.include.empty() && !matches(org.include)) return false;
  return !matches(org.exclude);
}

Result<std::string> ResolveAuthorization(const RepoConfig& repo) {
  const std::string context = "credentials of " + repo.name;
  std::string token = repo.token;
  if (!repo.token_env.empty()) {
    const char* value = std::getenv(repo.token_env.c_str());
    if (value == nullptr || *value == '\0') {
      return Status::InvalidArgument(context, "token_env names " + repo.token_env +
                                                  ", which is not set in the agent's environment");
    }
    token = value;
  } else if (!repo.token_file.empty()) {
    auto text = ReadFileToString(Env::Default(), repo.token_file, 64 * 1024);
    if (!text.ok()) {
      return text.status().WithContext(context + ": token_file");
    }
    token = *text;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) {
      return Status::InvalidArgument(context, "token_file " + repo.token_file + " is empty");
    }
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument(context, "the token is more than one line");
  }
  if (!token.empty()) return "Bearer " + token;
  return repo.authorization;
}

}  // namespace sync_agent
