#include "common/git/lfs_reader.h"

#include <vector>

#include "common/base/byte_sink.h"
#include "common/fs/env.h"

namespace sync_agent {
namespace {

constexpr size_t kCopyChunk = 1 << 20;

std::vector<std::pair<std::string, std::string>> AuthHeaders(const std::string& authorization) {
  if (authorization.empty()) return {};
  return {{"Authorization", authorization}};
}

std::string LocalObjectRel(const std::string& oid) {
  return "lfs/objects/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid;
}

}  // namespace

std::string LocalGitRemoteDir(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return url.substr(7);
  if (!url.empty() && url.front() == '/') return url;
  return "";
}

LfsReader::LfsReader(Env* env, std::string git_url, HttpClientOptions http,
                     std::string authorization)
    : env_(env),
      url_(std::move(git_url)),
      local_dir_(LocalGitRemoteDir(url_)),
      client_(url_, std::move(http), AuthHeaders(authorization)) {}

std::string LfsReader::Location(const LfsObject& object) const {
  if (!local_dir_.empty()) return JoinPath(local_dir_, ".git/" + LocalObjectRel(object.oid));
  return client_.endpoint() + " object " + object.oid;
}

Result<LfsDownload> LfsReader::Action(const LfsObject& object) {
  SA_ASSIGN_OR_RETURN(auto actions, client_.Batch({object}));
  if (actions.size() != 1) {
    return Status::Corruption(
        "git lfs batch request to " + client_.endpoint(),
        "answered for " + std::to_string(actions.size()) + " objects, one was asked");
  }
  return actions[0];
}

Status LfsReader::Read(const LfsObject& object, uint64_t offset, ObjectSink* sink) {
  if (!local_dir_.empty()) return ReadLocal(object, offset, sink);
  SA_ASSIGN_OR_RETURN(LfsDownload action, Action(object));
  return client_.Download(object, action, offset, sink);
}

Result<std::string> LfsReader::LocalPath(const LfsObject& object) {
  const std::string rel = LocalObjectRel(object.oid);
  for (const std::string& candidate :
       {JoinPath(local_dir_, ".git/" + rel), JoinPath(local_dir_, rel)}) {
    if (env_->Stat(candidate).ok()) return candidate;
  }
  return Status::NotFound("git lfs object " + object.oid,
                          "missing from the local remote's LFS store (" +
                              JoinPath(local_dir_, ".git/" + rel) + "); run `git lfs fetch` there");
}

Status LfsReader::ReadLocal(const LfsObject& object, uint64_t offset, ObjectSink* sink) {
  SA_ASSIGN_OR_RETURN(std::string path, LocalPath(object));
  SA_ASSIGN_OR_RETURN(auto in, env_->NewSequentialFile(path));
  SA_ASSIGN_OR_RETURN(FileInfo info, env_->Stat(path));
  if (offset > info.size) offset = 0;  // not this object's prefix; start over
  SA_RETURN_IF_ERROR(in->Skip(offset));
  SA_RETURN_IF_ERROR(sink->Begin(offset));
  std::vector<char> buf(kCopyChunk);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
    if (n == 0) return Status::OK();
    SA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
  }
}

Status LfsReader::ReadRange(const LfsObject& object, ByteRange range,
                            const std::function<Status(uint64_t, const char*, size_t)>& sink) {
  if (local_dir_.empty()) {
    SA_ASSIGN_OR_RETURN(LfsDownload action, Action(object));
    return client_.DownloadRange(object, action, range, sink);
  }
  SA_ASSIGN_OR_RETURN(std::string path, LocalPath(object));
  SA_ASSIGN_OR_RETURN(auto in, env_->NewRandomAccessFile(path));
  std::vector<char> buf(kCopyChunk);
  for (uint64_t at = range.offset; at < range.end();) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), range.end() - at));
    SA_ASSIGN_OR_RETURN(size_t n, in->ReadAt(at, buf.data(), want));
    if (n == 0) {
      return Status::Corruption("git lfs object " + object.oid,
                                path + " is shorter than the pointer's size");
    }
    SA_RETURN_IF_ERROR(sink(at, buf.data(), n));
    at += n;
  }
  return Status::OK();
}

}  // namespace sync_agent
