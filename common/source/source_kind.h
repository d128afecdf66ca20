// Source kinds: each kind of origin (publish roots, git remotes, hubs) reads
// its own keys of a [[repo]] table and makes that repository's sources. The
// config core (common/config) knows no kind; it hands each [[repo]] table to
// the kind whose selector key the table has, through RepoTable. The kinds
// the agent knows are listed in one place, common/registry/source_kinds.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/source/source.h"

namespace sync_agent {

// One line of what a repository's source settings are, for `status`
// ("git" -> "https://...", "ref" -> "main"). Never a credential.
struct SpecField {
  std::string key;
  std::string value;
};

// A parsed [[repo]]'s source settings. Immutable once parsed; shared by
// copies of the config.
class SourceSpec {
 public:
  virtual ~SourceSpec() = default;
  virtual const char* kind() const = 0;
  // The repository's sources, as normalized URLs, in the configured order.
  // They name health records and poll state in the database.
  virtual std::vector<std::string> urls() const = 0;
  // Makes the source at url (one of urls()) for repository repo.
  virtual Result<std::unique_ptr<Source>> Make(const std::string& url, const std::string& repo,
                                               const SourceOptions& options) const = 0;
  // The settings, for status (text and JSON).
  virtual std::vector<SpecField> Describe() const = 0;
  // Where the repository is served under the mirror root, when not at its
  // name (a hub's datasets are served under "datasets/<org>/<name>").
  virtual std::string ServedPath(const std::string& repo) const { return repo; }
  // Whether its sources serve revision signatures (Source::
  // FetchRevisionSignatures), so that trusted_keys can apply to it.
  virtual bool CarriesRevisionSignatures() const { return false; }
  // Following an organisation ([[repo]] name = "ORG/*"): whether the kind
  // can list an organisation's repositories (publish roots by their
  // ORG/index.json, hubs by their API).
  virtual bool ListsOrganisations() const { return false; }
  // The repositories ("org/name", in the order listed) of org at the source
  // at url (one of urls()), as it lists them now. At most max_repos (more is
  // kInvalidArgument naming org_max_repos); each answer read is bounded by
  // options.manifest_limits.max_bytes. Errors name the URL and what to do.
  // Reads only; kUnsupported for kinds that do not list organisations.
  virtual Result<std::vector<std::string>> ListOrganisation(const std::string& url,
                                                            const std::string& org,
                                                            const SourceOptions& options,
                                                            size_t max_repos) const;
};

// A [[repo]] table as the config core lends it to a kind. Errors name the
// config file and the line of the key (or of the table).
class RepoTable {
 public:
  virtual ~RepoTable() = default;
  // The repository's name, as validated by the core ("org/name").
  virtual const std::string& repo_name() const = 0;
  // "[[repo]] \"org/name\"", to begin messages with.
  virtual std::string label() const = 0;
  virtual bool Has(std::string_view key) const = 0;
  // A non-empty string; *out is unchanged when the key is absent.
  virtual Status GetString(std::string_view key, std::string* out) const = 0;
  // An array of strings; *out is unchanged when the key is absent.
  virtual Status GetStringArray(std::string_view key, std::vector<std::string>* out) const = 0;
  // An error at the key's line (the table's when the key is absent).
  virtual Status Error(std::string_view key, std::string_view detail) const = 0;
  // An error at the line of element i of the array at key.
  virtual Status ElementError(std::string_view key, size_t i, std::string_view detail) const = 0;
};

class SourceKind {
 public:
  virtual ~SourceKind() = default;
  virtual const char* name() const = 0;
  // What a repository of this kind comes from, for messages: "publish
  // roots", "a git repository", "a hub".
  virtual const char* description() const = 0;
  // The key that makes a [[repo]] of this kind ("sources", "git", "hub").
  virtual const char* selector() const = 0;
  // Every key the kind reads, its selector included.
  virtual std::vector<std::string> keys() const = 0;
  // Reads the kind's keys (others are the core's or were refused already).
  virtual Result<std::shared_ptr<const SourceSpec>> Parse(const RepoTable& table) const = 0;
};

// Validates a publish root or remote URL and brings it into the one spelling
// that duplicate detection and the database compare: lower-case scheme, no
// trailing slash, "file://" + a normalized absolute path. Returns "" on
// success, else the reason (for kinds' messages).
std::string NormalizeSourceUrl(std::string_view in, std::string* out);
// An absolute path in its canonical spelling (no "//", ".", trailing "/");
// ".." is refused. Returns "" on success, else the reason.
std::string NormalizeAbsolutePath(std::string_view in, std::string* out);
// Whether s has a byte <= 0x20 or 0x7f.
bool HasControlOrSpace(std::string_view s);

}  // namespace sync_agent
