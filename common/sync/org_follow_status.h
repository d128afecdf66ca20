// The organisation globs' part of `sync-agent status` (common/sync/
// org_follow.h): which glob follows a repository, which ones their origin
// no longer lists, and each glob's last discovery, in text and JSON.
// Kept apart from status_report.cc, which calls these.
#pragma once

#include <string>

#include "common/base/status.h"
#include "common/sync/status_report.h"

namespace sync_agent {

// Fills rep->orgs from config (and db, when not null) and marks each
// repository of rep->repos that a glob follows; a missing one is not stale.
Status AnnotateOrgFollows(StateDb* db, const Config& config, StatusReport* rep);

// Lines of one repository ("  followed by: ..."), "" for an explicit one.
std::string OrgFollowRepoText(const StatusReport& rep, const RepoStatus& r);
// One block for every glob, "" when there are none.
std::string OrgFollowsText(const StatusReport& rep);
// The repository's fields, each starting with ',': "followed_by",
// "missing_upstream_since".
std::string OrgFollowRepoJson(const RepoStatus& r);
// ",\"orgs\":[...]".
std::string OrgFollowsJson(const StatusReport& rep);

}  // namespace sync_agent
