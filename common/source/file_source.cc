// FileSource: a publish root on a local (or network-mounted) file system.
#include <algorithm>
#include <vector>

#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/source/source_impl.h"

namespace sync_agent {
namespace {

// FetchRanges hands data to its sink in pieces of at most this size.
constexpr uint64_t kRangePieceBytes = 1 << 20;

}  // namespace

FileSource::FileSource(std::string root, std::string dir, Env* env, SourceOptions options)
    : root_(std::move(root)), dir_(std::move(dir)), env_(env), options_(options) {}

Result<PointerFetch> FileSource::FetchPointer(const std::string& repo,
                                              const PointerValidators* prev) {
  std::string path = JoinPath(JoinPath(dir_, repo), kPointerName);
  auto body = ReadFileToString(env_, path, 64 * 1024);
  if (!body.ok()) {
    if (body.status().IsNotFound()) {
      return Status::NotFound("source " + root_,
                              "no published revision of " + repo + " (" + path +
                                  " does not exist); run `sync-agent publish` on the origin");
    }
    return body.status();
  }
  PointerFetch fetch;
  fetch.validators.pointer_sha256 = Sha256Hex(*body);
  if (prev != nullptr && prev->pointer_sha256 == fetch.validators.pointer_sha256) {
    fetch.not_modified = true;
    return fetch;
  }
  fetch.body = std::move(body).value();
  return fetch;
}

Result<std::string> FileSource::FetchManifest(const std::string& repo,
                                              const std::string& revision) {
  std::string path = JoinPath(JoinPath(dir_, repo), PublishedManifestPath(revision));
  auto body = ReadFileToString(env_, path, kMaxManifestBytes);
  if (!body.ok()) return body.status().WithContext("source " + root_);
  return body;
}

std::string FileSource::FileLocation(const std::string& repo, const std::string& rel_path) const {
  return JoinPath(JoinPath(dir_, repo), rel_path);
}

Status FileSource::FetchRanges(const std::string& repo, const std::string& rel_path,
                               uint64_t file_size, const std::vector<ByteRange>& ranges,
                               const RangeSink& sink) {
  const std::string path = FileLocation(repo, rel_path);
  SA_RETURN_IF_ERROR(CheckRangesArgument(path, file_size, ranges));
  if (ranges.empty()) return Status::OK();
  SA_ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(path));
  SA_ASSIGN_OR_RETURN(FileInfo info, env_->Stat(path));
  if (info.type != FileInfo::Type::kRegular) {
    return Status::IOError("read ranges of " + path, "not a regular file");
  }
  if (info.size != file_size) return FileSizeMismatch(path, info.size, file_size, "on disk");

  uint64_t longest = 0;
  for (const ByteRange& r : ranges) longest = std::max(longest, r.length);
  std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(longest, kRangePieceBytes)));
  for (const ByteRange& r : ranges) {
    for (uint64_t pos = r.offset; pos < r.end();) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        return Status::Cancelled("read ranges of " + path, "stop requested");
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.end() - pos));
      SA_ASSIGN_OR_RETURN(size_t n, file->ReadAt(pos, buf.data(), want));
      if (n == 0) {
        // Published files are replaced by rename, never rewritten: one that
        // shrinks under us is not the file we checked.
        return Status::Corruption(path, "ended at byte " + std::to_string(pos) +
                                            " while reading; it had " + std::to_string(file_size) +
                                            " bytes when opened");
      }
      SA_RETURN_IF_ERROR(sink(pos, buf.data(), n));
      pos += n;
    }
  }
  return Status::OK();
}

Status FileSource::FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                             ObjectSink* sink) {
  std::string path = FileLocation(repo, rel_path);
  SA_ASSIGN_OR_RETURN(auto file, env_->NewSequentialFile(path));
  SA_RETURN_IF_ERROR(file->Skip(offset));
  SA_RETURN_IF_ERROR(sink->Begin(offset));
  std::vector<char> buf(1 << 20);
  while (true) {
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::Cancelled("read " + path, "stop requested");
    }
    SA_ASSIGN_OR_RETURN(size_t n, file->Read(buf.data(), buf.size()));
    if (n == 0) break;
    SA_RETURN_IF_ERROR(sink->Write(buf.data(), n));
  }
  return Status::OK();
}

}  // namespace sync_agent
