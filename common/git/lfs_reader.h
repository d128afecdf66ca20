// LfsReader: reads the Git LFS objects of one git remote, from wherever the
// remote keeps them: its own LFS store when the remote is a local path
// (".git/lfs/objects/..", or "lfs/objects/.." of a bare repository), else
// the Git LFS batch API at the remote's LFS endpoint (one batch request per
// object, right before its download, so that short-lived hrefs do not expire
// while earlier objects are still being downloaded).
//
// Bytes are not verified here: callers hand a sink that checks sha256 and
// size (VerifyingSink, ObjectDownload). Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/base/status.h"
#include "common/git/lfs_client.h"
#include "common/http/http_client.h"

namespace sync_agent {

class Env;
class ObjectSink;

// A local remote's directory ("/path" or "file:///path"), or "" for a network URL.
std::string LocalGitRemoteDir(const std::string& url);

class LfsReader {
 public:
  // authorization, when not empty, is sent as the Authorization header of
  // batch requests (downloads carry the headers the server returns).
  LfsReader(Env* env, std::string git_url, HttpClientOptions http, std::string authorization);

  // Streams object from offset to its end into sink: Begin(offset) when the
  // source honours the offset, Begin(0) when it sends the whole object.
  // kNotFound when the object is missing (in the local store, or on the LFS
  // server), kNetwork for transport and server errors, naming which.
  Status Read(const LfsObject& object, uint64_t offset, ObjectSink* sink);

  // Streams bytes [range.offset, range.end()) of object into sink (offset,
  // data, n). kUnsupported when the LFS server does not answer ranges.
  Status ReadRange(const LfsObject& object, ByteRange range,
                   const std::function<Status(uint64_t, const char*, size_t)>& sink);

  // Whether objects come from the remote's LFS store on this machine.
  bool local() const { return !local_dir_.empty(); }

  // Where objects are read from, for messages and records.
  std::string Location(const LfsObject& object) const;

 private:
  Status ReadLocal(const LfsObject& object, uint64_t offset, ObjectSink* sink);
  Result<std::string> LocalPath(const LfsObject& object);
  // One batch request for the object's download action.
  Result<LfsDownload> Action(const LfsObject& object);

  Env* env_;
  std::string url_;
  std::string local_dir_;  // "" for a network remote
  LfsClient client_;
};

}  // namespace sync_agent
