#include "common/sync/org_follow_status.h"

#include <algorithm>

#include "common/base/json_text.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

std::string Iso(int64_t ms) { return ms ? FormatIsoTime(FromUnixMillis(ms)) : ""; }
std::string Age(int64_t now_ms, int64_t then_ms) {
  return FormatAge(std::chrono::milliseconds(now_ms - then_ms));
}
std::string QuotedOrNull(const std::string& v) { return v.empty() ? "null" : JsonQuote(v); }

}  // namespace

Status AnnotateOrgFollows(StateDb* db, const Config& config, StatusReport* rep) {
  std::vector<OrgFollowRow> follows;
  std::vector<OrgRepoRow> rows;
  if (db != nullptr && !config.orgs.empty()) {
    SA_ASSIGN_OR_RETURN(follows, db->OrgFollows());
    SA_ASSIGN_OR_RETURN(rows, db->OrgRepos());
  }
  for (const OrgFollowConfig& org : config.orgs) {
    OrgFollowStatus o;
    o.glob = org.glob();
    o.kind = org.repo.source->kind();
    o.urls = org.repo.source->urls();
    o.prune_missing = org.prune_missing;
    for (const OrgFollowRow& f : follows) {
      if (f.glob == o.glob) o.last = f;
    }
    for (const OrgRepoRow& row : rows) {
      if (row.glob != o.glob) continue;
      for (RepoStatus& r : rep->repos) {
        // An explicit [[repo]] of the same name wins (it is not followed).
        if (r.name != row.repo || !r.followed_by.empty()) continue;
        const bool is_explicit =
            std::any_of(config.repos.begin(), config.repos.end(),
                        [&](const RepoConfig& c) { return c.local_name() == row.repo; });
        if (is_explicit) continue;
        r.followed_by = o.glob;
        r.missing_since_ms = row.missing_since_ms;
        ++o.followed;
        if (row.missing_since_ms == 0) continue;
        ++o.missing;
        // Not polled any more: its age is no fault of the node.
        if (r.stale && !r.failing) {
          r.stale = false;
          r.problem.clear();
        }
      }
    }
    rep->orgs.push_back(std::move(o));
  }
  return Status::OK();
}

std::string OrgFollowRepoText(const StatusReport& rep, const RepoStatus& r) {
  if (r.followed_by.empty()) return "";
  std::string o = "  followed by:     " + r.followed_by + "\n";
  if (r.missing_since_ms != 0) {
    o += "  upstream:        missing upstream since " + Iso(r.missing_since_ms) + " (" +
         Age(rep.now_ms, r.missing_since_ms) + "); kept, set prune_missing = true to remove it\n";
  }
  return o;
}

std::string OrgFollowsText(const StatusReport& rep) {
  std::string o;
  for (const OrgFollowStatus& g : rep.orgs) {
    std::string urls;
    for (const std::string& u : g.urls) urls += (urls.empty() ? "" : ", ") + u;
    o += "organisation " + g.glob + ": " +
         (g.failing() ? "DISCOVERY FAILING" : (g.stale() ? "NEVER DISCOVERED" : "ok")) + "\n";
    o += "  origin:          " + g.kind + " " + urls + "\n";
    o += "  follows:         " + std::to_string(g.followed) + " repositories";
    if (g.missing > 0) o += ", " + std::to_string(g.missing) + " missing upstream";
    o += g.prune_missing ? " (prune_missing: removed when missing)\n" : "\n";
    if (!g.last) {
      o += "  last discovery:  never (the next sync lists the organisation)\n";
      continue;
    }
    o += "  last discovery:  " + Age(rep.now_ms, g.last->checked_at_ms) + " (" +
         Iso(g.last->checked_at_ms) + ")" +
         (g.last->listing_url.empty() ? "" : " from " + g.last->listing_url) + "\n";
    if (g.failing()) {
      o += "  last success:    " +
           (g.last->ok_at_ms ? Age(rep.now_ms, g.last->ok_at_ms) : std::string("never")) + "\n";
      o += "  problem:         discovery failed: " + g.last->error +
           "; the repositories already followed are kept and synced\n";
    }
  }
  return o;
}

std::string OrgFollowRepoJson(const RepoStatus& r) {
  return ",\"followed_by\":" + QuotedOrNull(r.followed_by) +
         ",\"missing_upstream_since\":" + QuotedOrNull(Iso(r.missing_since_ms));
}

std::string OrgFollowsJson(const StatusReport& rep) {
  std::string o = ",\"orgs\":[";
  for (size_t i = 0; i < rep.orgs.size(); ++i) {
    const OrgFollowStatus& g = rep.orgs[i];
    o += i ? ",{" : "{";
    o += "\"glob\":" + JsonQuote(g.glob) + ",\"kind\":" + JsonQuote(g.kind) + ",\"urls\":[";
    for (size_t j = 0; j < g.urls.size(); ++j) o += (j ? "," : "") + JsonQuote(g.urls[j]);
    o += "],\"prune_missing\":" + std::string(g.prune_missing ? "true" : "false");
    o += ",\"followed\":" + std::to_string(g.followed);
    o += ",\"missing\":" + std::to_string(g.missing);
    o += ",\"failing\":" + std::string(g.failing() ? "true" : "false");
    o += ",\"checked_at\":" + QuotedOrNull(g.last ? Iso(g.last->checked_at_ms) : "");
    o += ",\"ok_at\":" + QuotedOrNull(g.last ? Iso(g.last->ok_at_ms) : "");
    o += ",\"listing_url\":" + QuotedOrNull(g.last ? g.last->listing_url : "");
    o += ",\"error\":" + QuotedOrNull(g.last ? g.last->error : "") + "}";
  }
  return o + "]";
}

}  // namespace sync_agent
