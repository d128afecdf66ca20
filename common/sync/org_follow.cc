#include "common/sync/org_follow.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/base/log.h"
#include "common/fs/env.h"
#include "common/manifest/manifest.h"
#include "common/sync/sync_engine.h"

namespace sync_agent {
namespace {

std::set<std::string> ExplicitNames(const Config& config) {
  std::set<std::string> names;
  for (const RepoConfig& r : config.repos) names.insert(r.local_name());
  return names;
}

std::string Joined(const std::vector<std::string>& v, size_t max_shown = 5) {
  std::string o;
  for (size_t i = 0; i < v.size() && i < max_shown; ++i) o += (i ? ", " : "") + v[i];
  if (v.size() > max_shown) o += " and " + std::to_string(v.size() - max_shown) + " more";
  return o;
}

SourceOptions DiscoveryOptions(Env* env, const Config& config, const CancelFlag* cancel) {
  SourceOptions so;
  so.io_timeout = config.http_timeout;
  so.low_speed_limit = config.http_low_speed_limit;
  so.low_speed_time = config.http_low_speed_time;
  so.manifest_limits = config.manifest_limits;
  so.cancel = cancel;
  so.ca_file = config.ca_file;
  so.env = env;
  so.state_dir = config.state_dir;
  return so;
}

// The names the origin lists for org, from the first source that answers;
// *asked is the URL that answered (or the first one tried).
Result<std::vector<std::string>> Discover(const OrgFollowConfig& org, SourceOptions options,
                                          size_t max_repos, std::string* asked) {
  SA_ASSIGN_OR_RETURN(options.authorization, ResolveAuthorization(org.repo));
  const std::vector<std::string> urls = org.repo.source->urls();
  std::vector<Status> errors;
  for (const std::string& url : urls) {
    if (asked->empty()) *asked = url;
    auto listed = org.repo.source->ListOrganisation(url, org.org, options, max_repos);
    if (listed.ok()) {
      *asked = url;
      return listed;
    }
    errors.push_back(listed.status());
  }
  const std::string context = "discovery of " + org.glob();
  if (errors.size() == 1) return errors[0].WithContext(context);
  std::string all;
  for (const Status& e : errors) all += (all.empty() ? "" : "; ") + e.message();
  return Status::Network(context, "no source answered: " + all);
}

}  // namespace

bool OrgExpansion::failed() const {
  return std::any_of(discoveries.begin(), discoveries.end(),
                     [](const OrgDiscovery& d) { return !d.status.ok(); });
}

RepoConfig FollowedRepoConfig(const OrgFollowConfig& org, const std::string& name) {
  RepoConfig r = org.repo;
  r.name = name;
  return r;
}

OrgExpansion ExpandOrgFollows(Env* env, const Config& config, StateDb* db, SyncEngine* engine,
                              const CancelFlag* cancel, int64_t now_ms) {
  OrgExpansion out;
  out.repos = config.repos;
  std::vector<std::string> globs;
  for (const OrgFollowConfig& org : config.orgs) globs.push_back(org.glob());
  Status forgot = db->ForgetOrgFollowsExcept(globs);
  if (!forgot.ok()) {
    LogWarning("could not forget organisation globs no longer configured",
               {{"error", forgot.ToString()}});
  }
  auto known_rows = db->OrgRepos();
  const std::set<std::string> explicit_names = ExplicitNames(config);
  for (const OrgFollowConfig& org : config.orgs) {
    OrgDiscovery d;
    d.glob = org.glob();
    // What the database says the glob follows, by served name.
    std::map<std::string, OrgRepoRow> known;
    if (known_rows.ok()) {
      for (const OrgRepoRow& r : *known_rows) {
        if (r.glob == d.glob) known[r.repo] = r;
      }
    }
    std::string asked;
    auto listed = known_rows.ok() ? Discover(org, DiscoveryOptions(env, config, cancel),
                                             static_cast<size_t>(config.org_max_repos), &asked)
                                  : Result<std::vector<std::string>>(known_rows.status());
    OrgFollowRow follow;
    follow.glob = d.glob;
    follow.listing_url = asked;
    follow.checked_at_ms = now_ms;
    std::vector<OrgRepoRow> rows;  // the glob's rows after this discovery
    if (!listed.ok()) {
      d.status = listed.status();
      follow.error = d.status.message();
      Status saved = db->SaveOrgDiscovery(follow, nullptr);
      if (!saved.ok()) LogWarning("could not record a discovery", {{"error", saved.ToString()}});
      for (const auto& [repo, row] : known) {
        if (row.missing_since_ms == 0 && !explicit_names.count(repo)) rows.push_back(row);
      }
      LogError("could not list the repositories of an organisation; keeping those already followed",
               {{"glob", d.glob},
                {"followed", std::to_string(rows.size())},
                {"error", d.status.message()}});
    } else {
      follow.ok_at_ms = now_ms;
      d.listed = listed->size();
      std::set<std::string> seen;
      std::vector<std::string> foreign;
      for (const std::string& name : *listed) {
        if (!IsValidRepoName(name) || name.compare(0, org.org.size() + 1, org.org + "/") != 0) {
          foreign.push_back(name);
          continue;
        }
        const std::string repo = FollowedRepoConfig(org, name).local_name();
        if (!OrgRepoSelected(org, name) || explicit_names.count(repo) ||
            !seen.insert(repo).second) {
          continue;
        }
        OrgRepoRow row;
        row.glob = d.glob;
        row.repo = repo;
        row.name = name;
        row.first_seen_ms = now_ms;
        auto it = known.find(repo);
        if (it == known.end()) {
          d.added.push_back(repo);
        } else {
          row.first_seen_ms = it->second.first_seen_ms;
          if (it->second.missing_since_ms != 0) d.returned.push_back(repo);
        }
        rows.push_back(std::move(row));
      }
      if (!foreign.empty()) {
        LogWarning("the origin listed repositories outside the organisation; they are not followed",
                   {{"glob", d.glob}, {"url", asked}, {"names", Joined(foreign)}});
      }
      for (const auto& [repo, row] : known) {
        if (seen.count(repo)) continue;
        // Deselected by include/exclude, or now named by its own [[repo]]:
        // no longer followed, kept as any unconfigured repository.
        if (!OrgRepoSelected(org, row.name) || explicit_names.count(repo)) continue;
        OrgRepoRow gone = row;
        if (gone.missing_since_ms == 0) {
          gone.missing_since_ms = now_ms;
          d.missing.push_back(repo);
        }
        rows.push_back(std::move(gone));
      }
      Status saved = db->SaveOrgDiscovery(follow, &rows);
      if (!saved.ok()) {
        d.status = saved.WithContext("record the discovery of " + d.glob);
      } else if (org.prune_missing) {
        for (const OrgRepoRow& row : rows) {
          if (row.missing_since_ms == 0) continue;
          Status removed = engine->RemoveRepository(row.repo);
          if (removed.ok()) {
            d.pruned.push_back(row.repo);
          } else {
            LogError("could not remove a repository its origin no longer lists",
                     {{"repo", row.repo}, {"error", removed.ToString()}});
            if (d.status.ok()) d.status = removed.WithContext("prune " + row.repo);
          }
        }
      }
      LogInfo("listed the repositories of an organisation",
              {{"glob", d.glob},
               {"url", asked},
               {"listed", std::to_string(d.listed)},
               {"followed", std::to_string(rows.size() - d.pruned.size())},
               {"new", Joined(d.added)},
               {"back", Joined(d.returned)},
               {"missing", Joined(d.missing)},
               {"removed", Joined(d.pruned)}});
    }
    std::sort(rows.begin(), rows.end(),
              [](const OrgRepoRow& a, const OrgRepoRow& b) { return a.repo < b.repo; });
    for (const OrgRepoRow& row : rows) {
      if (row.missing_since_ms == 0) out.repos.push_back(FollowedRepoConfig(org, row.name));
    }
    out.discoveries.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<RepoConfig>> ConfiguredAndFollowedRepos(StateDb* db, const Config& config) {
  std::vector<RepoConfig> repos = config.repos;
  if (config.orgs.empty()) return repos;
  SA_ASSIGN_OR_RETURN(std::vector<OrgRepoRow> rows, db->OrgRepos());
  const std::set<std::string> explicit_names = ExplicitNames(config);
  for (const OrgFollowConfig& org : config.orgs) {
    for (const OrgRepoRow& row : rows) {
      if (row.glob != org.glob() || explicit_names.count(row.repo)) continue;
      repos.push_back(FollowedRepoConfig(org, row.name));
    }
  }
  return repos;
}

}  // namespace sync_agent
