#include "common/sync/hub_ids.h"

#include <unordered_map>
#include <vector>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/hash/git_ids.h"
#include "common/store/object_store.h"

namespace sync_agent {
namespace {

Result<std::string> BlobIdOfObject(ObjectStore* store, const std::string& sha256, uint64_t size) {
  const std::string path = store->ObjectPath(sha256);
  SA_ASSIGN_OR_RETURN(auto file, store->env()->NewSequentialFile(path));
  GitBlobHasher hasher(size);
  std::vector<char> buf(1 << 20);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
    if (n == 0) break;
    hasher.Update(buf.data(), n);
  }
  if (hasher.received() != size) {
    return Status::Corruption(path, "has " + std::to_string(hasher.received()) +
                                        " bytes; the database says " + std::to_string(size));
  }
  return hasher.Finish();
}

}  // namespace

Status RecordHubIds(StateDb* db, ObjectStore* store, const RevisionRow& revision) {
  SA_ASSIGN_OR_RETURN(std::vector<FileRow> files, db->RevisionFiles(revision.id));
  auto commit = revision.provenance.find("commit");
  const std::string hub_sha = commit != revision.provenance.end() && IsLowerHex(commit->second, 40)
                                  ? commit->second
                                  : revision.manifest_sha256.substr(0, 40);
  std::vector<StateDb::HubFileId> ids;
  std::unordered_map<std::string, std::string> by_content;  // sha256 -> blob id
  for (const FileRow& f : files) {
    auto blob = f.provenance.find("blob");
    if (blob != f.provenance.end()) {
      ids.push_back({f.path, blob->second, f.provenance.count("lfs") > 0});
    } else if (f.size >= kHubLfsMinBytes) {
      ids.push_back({f.path, GitBlobId(LfsPointerText(f.sha256, f.size)), true});
    } else {
      auto known = by_content.find(f.sha256);
      if (known == by_content.end()) {
        SA_ASSIGN_OR_RETURN(std::string id, BlobIdOfObject(store, f.sha256, f.size));
        known = by_content.emplace(f.sha256, std::move(id)).first;
      }
      ids.push_back({f.path, known->second, false});
    }
  }
  return db->SetHubIds(revision.id, hub_sha, ids);
}

}  // namespace sync_agent
