#include "common/publish/org_index_writer.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/base/json_text.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/manifest/manifest.h"
#include "common/publish/publish_lock.h"

namespace sync_agent {

std::string OrgOf(const std::string& repo) { return repo.substr(0, repo.find('/')); }

Status WriteOrgIndex(Env* env, const std::string& out_root, const std::string& org) {
  if (!IsValidOrgName(org)) {
    return Status::InvalidArgument("organisation index of " + JsonQuote(org),
                                   "not an organisation name");
  }
  const std::string dir = JoinPath(out_root, org);
  PublishLock lock;
  SA_RETURN_IF_ERROR(lock.Acquire(JoinPath(dir, ".index.lock")));
  SA_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, env->ListDir(dir));
  OrgIndex index;
  index.org = org;
  for (const DirEntry& e : entries) {
    const std::string repo = org + "/" + e.name;
    if (!IsValidRepoName(repo)) continue;  // ".index.lock", ...
    FileInfo::Type type = e.type;
    if (type == FileInfo::Type::kOther) {
      auto info = env->Stat(JoinPath(dir, e.name));
      if (info.ok()) type = info->type;
    }
    if (type != FileInfo::Type::kDirectory) continue;  // "index.json"
    const std::string pointer_path = JoinPath(JoinPath(dir, e.name), kPointerName);
    auto body = ReadFileToString(env, pointer_path, 64 * 1024);
    if (!body.ok()) {
      if (!body.status().IsNotFound() && body.status().code() != Status::Code::kInvalidArgument) {
        return body.status().WithContext("organisation index " + JoinPath(dir, kOrgIndexName));
      }
      continue;  // not a published repository (or not a directory)
    }
    auto pointer = ParsePointer(*body);
    if (!pointer.ok() || pointer->repo != repo) {
      LogWarning("left out of the organisation index: its latest pointer is broken",
                 {{"pointer", pointer_path},
                  {"error", pointer.ok() ? "names " + pointer->repo : pointer.status().message()}});
      continue;
    }
    index.repos.push_back(repo);
  }
  std::sort(index.repos.begin(), index.repos.end());
  index.updated = FormatIsoTime(std::chrono::system_clock::now());
  return WriteFileAtomically(env, JoinPath(dir, kOrgIndexName), SerializeOrgIndex(index), 0644);
}

}  // namespace sync_agent
