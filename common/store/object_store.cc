#include "common/store/object_store.h"

#include <vector>

#include "common/fs/env.h"

namespace sync_agent {

namespace {
// Writeback granularity: each full chunk is pushed to disk while the next one
// arrives, and the one before it is waited for, so dirty memory stays near
// two chunks and the final fsync has little left to do.
constexpr uint64_t kWritebackChunk = 16ULL << 20;
}  // namespace

ObjectStore::ObjectStore(Env* env, std::string state_dir)
    : env_(env), state_dir_(std::move(state_dir)) {}

Status ObjectStore::Init() {
  SA_RETURN_IF_ERROR(env_->CreateDirsAt({state_dir_, "objects"}, 0755));
  return env_->CreateDirsAt({state_dir_, "partial"}, 0700);
}

RootedPath ObjectStore::ObjectAt(const std::string& sha256) const {
  return {state_dir_, "objects/" + sha256.substr(0, 2) + "/" + sha256};
}

RootedPath ObjectStore::PartialAt(const std::string& sha256) const {
  return {state_dir_, "partial/" + sha256 + ".part"};
}

RootedPath ObjectStore::RangesAt(const std::string& sha256) const {
  return {state_dir_, "partial/" + sha256 + ".part.ranges"};
}

bool ObjectStore::Has(const std::string& sha256, uint64_t size) const {
  auto info = env_->LstatAt(ObjectAt(sha256));
  return info.ok() && info->type == FileInfo::Type::kRegular && info->size == size;
}

std::optional<uint64_t> ObjectStore::SizeOf(const std::string& sha256) const {
  auto info = env_->LstatAt(ObjectAt(sha256));
  if (!info.ok() || info->type != FileInfo::Type::kRegular) return std::nullopt;
  return info->size;
}

uint64_t ObjectStore::PartialSize(const std::string& sha256) const {
  auto info = env_->LstatAt(PartialAt(sha256));
  return info.ok() && info->type == FileInfo::Type::kRegular ? info->size : 0;
}

Status ObjectStore::Remove(const std::string& sha256) {
  Status s = env_->RemoveFileAt(ObjectAt(sha256));
  return s.IsNotFound() ? Status::OK() : s;
}

Status ObjectStore::RemovePartial(const std::string& sha256) {
  Status r = env_->RemoveFileAt(RangesAt(sha256));
  if (!r.ok() && !r.IsNotFound()) return r;
  Status s = env_->RemoveFileAt(PartialAt(sha256));
  return s.IsNotFound() ? Status::OK() : s;
}

Status ObjectStore::CommitPartial(const std::string& sha256) {
  RootedPath dest = ObjectAt(sha256);
  SA_RETURN_IF_ERROR(env_->CreateDirsAt(dest.Parent(), 0755));
  SA_RETURN_IF_ERROR(env_->ChmodAt(PartialAt(sha256), 0444));
  SA_RETURN_IF_ERROR(env_->RenameAt(PartialAt(sha256), dest));
  return env_->SyncDirAt(dest.Parent());
}

Status ObjectStore::ImportFile(const std::string& path, const ContentDigest& expected) {
  ObjectDownload dl(this, {expected.sha256, expected.xxh3_128, expected.size}, path);
  SA_RETURN_IF_ERROR(dl.Begin(0));
  SA_ASSIGN_OR_RETURN(auto in, env_->NewSequentialFile(path));
  std::vector<char> buf(1 << 20);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), buf.size()));
    if (n == 0) break;
    SA_RETURN_IF_ERROR(dl.Write(buf.data(), n));
  }
  return dl.Finish();
}

ObjectDownload::ObjectDownload(ObjectStore* store, Expected expected, std::string origin,
                               std::function<void(uint64_t)> progress)
    : store_(store),
      expected_(std::move(expected)),
      origin_(std::move(origin)),
      progress_(std::move(progress)),
      partial_(store->PartialPath(expected_.sha256)),
      partial_at_(store->PartialAt(expected_.sha256)) {}

ObjectDownload::~ObjectDownload() = default;

uint64_t ObjectDownload::ResumeOffset() const {
  uint64_t have = store_->PartialSize(expected_.sha256);
  return have > expected_.size ? 0 : have;
}

Status ObjectDownload::Begin(uint64_t offset) {
  Env* env = store_->env();
  file_.reset();
  hasher_ = std::make_unique<ContentHasher>();
  uint64_t have = store_->PartialSize(expected_.sha256);
  if (offset > have || offset > expected_.size) {
    return Status::Network("download " + origin_, "source resumed at byte " +
                                                      std::to_string(offset) + " but only " +
                                                      std::to_string(have) + " are on disk");
  }
  if (offset == 0) {
    // Starting over: a record of parallel chunks no longer describes the file.
    Status r = env->RemoveFileAt(store_->RangesAt(expected_.sha256));
    if (!r.ok() && !r.IsNotFound()) return r;
    SA_ASSIGN_OR_RETURN(file_, env->NewWritableFileAt(partial_at_, 0600, WriteOpen::kTruncate));
  } else {
    // Opened (and so checked to be our own file) before anything is read or cut.
    SA_ASSIGN_OR_RETURN(auto append, env->NewWritableFileAt(partial_at_, 0600, WriteOpen::kAppend));
    if (have > offset) SA_RETURN_IF_ERROR(env->TruncateAt(partial_at_, offset));
    // Re-hash what is on disk so the final digest covers the whole object.
    SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(partial_));
    std::vector<char> buf(1 << 20);
    uint64_t left = offset;
    while (left > 0) {
      SA_ASSIGN_OR_RETURN(size_t n, in->Read(buf.data(), std::min<uint64_t>(buf.size(), left)));
      if (n == 0) return Status::IOError("read " + partial_, "shorter than expected");
      hasher_->Update(buf.data(), n);
      left -= n;
    }
    file_ = std::move(append);
  }
  resumed_from_ = offset;
  stored_ = offset;
  chunk_start_ = offset;
  have_prev_chunk_ = false;
  begun_ = true;
  return Status::OK();
}

Status ObjectDownload::Write(const char* data, size_t n) {
  SA_RETURN_IF_ERROR(Hash(data, n));
  return Store(data, n);
}

Status ObjectDownload::Hash(const char* data, size_t n) {
  if (!begun_) return Status::IOError("download " + origin_, "data before Begin");
  if (hasher_->size() + n > expected_.size) {
    return Status::Corruption("download " + origin_, "source sent more than the " +
                                                         std::to_string(expected_.size) +
                                                         " bytes the manifest lists");
  }
  hasher_->Update(data, n);
  return Status::OK();
}

Status ObjectDownload::Store(const char* data, size_t n) {
  if (!begun_) return Status::IOError("download " + origin_, "data before Begin");
  if (stored_ + n > expected_.size) {
    return Status::Corruption("download " + origin_, "source sent more than the " +
                                                         std::to_string(expected_.size) +
                                                         " bytes the manifest lists");
  }
  Status s = file_->Append(data, n);
  if (!s.ok()) return s;
  bytes_written_ += n;
  stored_ += n;
  uint64_t end = stored_;
  if (end - chunk_start_ >= kWritebackChunk) {
    SA_RETURN_IF_ERROR(file_->StartWriteback(chunk_start_, end - chunk_start_));
    if (have_prev_chunk_) {
      SA_RETURN_IF_ERROR(file_->WaitWriteback(prev_chunk_start_, chunk_start_ - prev_chunk_start_));
    }
    prev_chunk_start_ = chunk_start_;
    have_prev_chunk_ = true;
    chunk_start_ = end;
  }
  if (progress_) progress_(end);
  return Status::OK();
}

Status ObjectDownload::Finish() {
  if (!begun_) return Status::IOError("download " + origin_, "finished before Begin");
  SA_RETURN_IF_ERROR(file_->Sync());
  SA_RETURN_IF_ERROR(file_->Close());
  file_.reset();
  uint64_t got_size = hasher_->size();
  ContentDigest d = hasher_->Finish();
  if (got_size != expected_.size) {
    return Status::Network("download " + origin_, "got " + std::to_string(got_size) + " of " +
                                                      std::to_string(expected_.size) + " bytes");
  }
  if (d.sha256 != expected_.sha256 ||
      (!expected_.xxh3_128.empty() && d.xxh3_128 != expected_.xxh3_128)) {
    store_->RemovePartial(expected_.sha256);
    return Status::Corruption("download " + origin_, "content hashes to sha256 " + d.sha256 +
                                                         ", the manifest says " + expected_.sha256 +
                                                         "; the source serves wrong bytes");
  }
  digest_ = d;
  return store_->CommitPartial(expected_.sha256);
}

}  // namespace sync_agent
