// ObjectStore: the node's content-addressed store under <state_dir>.
//
//   <state_dir>/objects/<ab>/<sha256>   verified content, read-only (0444)
//   <state_dir>/partial/<sha256>.part   a download in progress, resumable
//
// An object enters the store only after its bytes hashed to the expected
// sha256 and size; it is then hard-linked into mirror trees. Thread safe as
// long as two callers do not work on the same sha256 at once.
//
// state_dir is trusted as configured (it may be a symlink); everything below
// it is written and removed by directory fds with O_NOFOLLOW (Env's *At
// operations), so a symlink planted at objects/<ab>, partial or
// partial/<sha256>.part is refused with an error naming it, never followed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/base/byte_sink.h"
#include "common/base/status.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"

namespace sync_agent {

class ObjectStore {
 public:
  ObjectStore(Env* env, std::string state_dir);
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  Status Init();  // creates the directories
  Env* env() const { return env_; }

  std::string ObjectPath(const std::string& sha256) const { return ObjectAt(sha256).full(); }
  std::string PartialPath(const std::string& sha256) const { return PartialAt(sha256).full(); }
  // The same below state_dir, for writing and removing.
  RootedPath ObjectAt(const std::string& sha256) const;
  RootedPath PartialAt(const std::string& sha256) const;
  RootedPath RangesAt(const std::string& sha256) const;
  // True if the object file exists with this size (no content read).
  bool Has(const std::string& sha256, uint64_t size) const;
  // The stored object's size, if the object is present.
  std::optional<uint64_t> SizeOf(const std::string& sha256) const;
  // Which chunks of a download in parallel ranges are complete
  // ("<partial>.ranges", see common/transfer/chunked_download.h).
  std::string RangesPath(const std::string& sha256) const { return RangesAt(sha256).full(); }
  // Bytes already downloaded for sha256 (0 if none).
  uint64_t PartialSize(const std::string& sha256) const;
  Status Remove(const std::string& sha256);
  Status RemovePartial(const std::string& sha256);
  // Moves the verified partial file of sha256 into the store, read-only and
  // durable.
  Status CommitPartial(const std::string& sha256);
  // Adds an existing local file (copying it) after verifying its digest.
  Status ImportFile(const std::string& path, const ContentDigest& expected);

 private:
  Env* env_;
  std::string state_dir_;
};

// An ObjectSink that writes one object's download into the store's partial
// file, hashing as it writes. Resumes: Begin(offset) with offset equal to the
// partial size continues it (re-hashing the bytes on disk once); Begin(0)
// starts over. Finish() verifies size, sha256 and xxh3-128 (when expected
// has one) and moves the file
// into the store; on a mismatch the partial file is deleted (its bytes are
// wrong) and kCorruption names the object and where it came from.
class ObjectDownload final : public ObjectSink {
 public:
  struct Expected {
    std::string sha256;
    std::string xxh3_128;
    uint64_t size = 0;
  };
  // progress is called after every write with the bytes now on disk.
  ObjectDownload(ObjectStore* store, Expected expected, std::string origin,
                 std::function<void(uint64_t)> progress = nullptr);
  ~ObjectDownload() override;

  // Where the next request should start: the partial size (capped at size).
  uint64_t ResumeOffset() const;
  Status Begin(uint64_t offset) override;
  // Hash(data) then Store(data).
  Status Write(const char* data, size_t n) override;
  // The two halves of Write, which PipelinedSink runs on two threads: each
  // must see every byte in order; they may run concurrently with each other.
  Status Hash(const char* data, size_t n);
  Status Store(const char* data, size_t n);
  Status Finish();
  // After a successful Finish: what the object hashed to (its xxh3-128 is
  // how a git source's LFS object gets one).
  const ContentDigest& digest() const { return digest_; }
  uint64_t bytes_written() const { return bytes_written_; }  // this session only
  uint64_t resumed_from() const { return resumed_from_; }

 private:
  ObjectStore* store_;
  Expected expected_;
  std::string origin_;
  std::function<void(uint64_t)> progress_;
  std::string partial_;
  RootedPath partial_at_;
  std::unique_ptr<WritableFile> file_;
  std::unique_ptr<ContentHasher> hasher_;
  uint64_t bytes_written_ = 0;
  uint64_t stored_ = 0;  // bytes in the partial file (Store's count)
  uint64_t resumed_from_ = 0;
  bool begun_ = false;
  ContentDigest digest_;
  // Streaming writeback: the chunk being filled starts at chunk_start_; the
  // previous chunk, already being written back, at prev_chunk_start_.
  uint64_t chunk_start_ = 0;
  uint64_t prev_chunk_start_ = 0;
  bool have_prev_chunk_ = false;
};

}  // namespace sync_agent
