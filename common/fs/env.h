// The file system seam. Every file the engine writes or reads goes through an
// Env, so tests can inject ENOSPC, failed fsync, short writes and crashes by
// wrapping the real one (EnvWrapper) without root. Env::Default() is the POSIX
// implementation; it is thread safe, and so must be any wrapper.
//
// Files are opened with O_CLOEXEC; EINTR is retried; errno becomes a Status in
// PosixError(). Objects returned by an Env are owned by the caller.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace sync_agent {

// Reads a file from the start, or from an offset, in order.
class SequentialFile {
 public:
  SequentialFile() = default;
  SequentialFile(const SequentialFile&) = delete;
  SequentialFile& operator=(const SequentialFile&) = delete;
  virtual ~SequentialFile() = default;
  // Reads up to n bytes; 0 means end of file.
  virtual Result<size_t> Read(void* buf, size_t n) = 0;
  virtual Status Skip(uint64_t n) = 0;
};

// Positional reads; safe to call from several threads at once.
class RandomAccessFile {
 public:
  RandomAccessFile() = default;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset; fewer only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) const = 0;
};

// Bytes in memory seen as a RandomAccessFile (an in-memory delta or basis).
// Does not own them: they must outlive it.
class StringFile final : public RandomAccessFile {
 public:
  explicit StringFile(std::string_view bytes) : bytes_(bytes) {}
  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) const override {
    if (offset >= bytes_.size()) return size_t{0};
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, bytes_.size() - offset));
    std::memcpy(buf, bytes_.data() + offset, k);
    return k;
  }

 private:
  std::string_view bytes_;
};

// Appends to a file. Data is durable only after Sync() returned OK.
class WritableFile {
 public:
  WritableFile() = default;
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;
  virtual ~WritableFile() = default;  // closes without syncing
  virtual Status Append(const void* data, size_t n) = 0;
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Hints for streaming large files: start writing [offset, offset+length)
  // back to disk now, or wait until that range is on disk. They bound dirty
  // memory and leave little for Sync() to do; neither makes data durable.
  virtual Status StartWriteback(uint64_t offset, uint64_t length) { return Status::OK(); }
  virtual Status WaitWriteback(uint64_t offset, uint64_t length) { return Status::OK(); }
  // Bytes in the file (the initial size plus what was appended).
  virtual uint64_t Size() const = 0;
};

// Positional writes into a file that already has its place on disk; safe to
// call from several threads at once for different ranges. Data is durable
// only after Sync() returned OK.
class RandomWriteFile {
 public:
  RandomWriteFile() = default;
  RandomWriteFile(const RandomWriteFile&) = delete;
  RandomWriteFile& operator=(const RandomWriteFile&) = delete;
  virtual ~RandomWriteFile() = default;  // closes without syncing
  virtual Status WriteAt(uint64_t offset, const void* data, size_t n) = 0;
  // Writes [offset, offset+length) back to disk and waits for it: cheaper than
  // Sync() (no journal commit), so the range survives a killed process and
  // most crashes, but durability still needs Sync().
  virtual Status WaitWriteback(uint64_t offset, uint64_t length) { return Status::OK(); }
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
};

struct FileInfo {
  enum class Type { kRegular, kDirectory, kSymlink, kOther };
  Type type = Type::kOther;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits only
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  uint64_t device = 0;
  uint64_t nlink = 0;
};

// A path below a directory the operator configured (mirror_root, state_dir).
// The root is trusted as configured: it may be, or pass through, a symlink.
// No component of rel is: the *At operations of Env open each one with
// O_NOFOLLOW from the directory fd of the one before (openat, mkdirat,
// unlinkat, renameat, linkat, symlinkat), so a symlink planted anywhere below
// the root, or a file where a directory belongs, is refused with
// kInvalidArgument naming it, and nothing is written, changed or removed
// through it. rel is relative; "." and ".." components are refused.
struct RootedPath {
  std::string root;
  std::string rel;
  std::string full() const;  // root/rel, for messages and path-based reads
  RootedPath Child(std::string_view name) const;
  RootedPath Parent() const;  // the root itself for a one-component rel
};

// How NewWritableFileAt opens the file. Every kind creates a missing file and
// refuses one that is a symlink, not a regular file, or has other hard links.
enum class WriteOpen {
  kTruncate,   // empties an existing file
  kAppend,     // keeps its content, appends after it
  kCreateNew,  // O_EXCL: fails with kIOError if the name exists
};

// What LinkAt did. The file system limits a copy works around are outcomes,
// not errors, so that a caller can copy instead (and count why).
enum class LinkOutcome {
  kLinked,
  kCrossDevice,   // EXDEV: the two paths are on different file systems
  kTooManyLinks,  // EMLINK: the file has as many hard links as the file system allows
  kNotSupported,  // EPERM: the file system has no hard links
};

struct DirEntry {
  std::string name;
  FileInfo::Type type = FileInfo::Type::kOther;  // from d_type; kOther when unknown
};

class Env {
 public:
  Env() = default;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never deleted.
  static Env* Default();

  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  // Creates or truncates.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                uint32_t mode) = 0;
  // Opens for appending, creating the file if it does not exist.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                                  uint32_t mode) = 0;
  // Opens for positional writes, creating the file if it does not exist
  // (never truncating it).
  virtual Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFile(const std::string& path,
                                                                      uint32_t mode) = 0;

  virtual Result<FileInfo> Stat(const std::string& path) = 0;   // follows symlinks
  virtual Result<FileInfo> Lstat(const std::string& path) = 0;  // does not
  virtual Result<std::vector<DirEntry>> ListDir(const std::string& path) = 0;

  virtual Status CreateDir(const std::string& path, uint32_t mode) = 0;  // OK if it exists
  virtual Status RemoveFile(const std::string& path) = 0;                // also removes symlinks
  virtual Status RemoveDir(const std::string& path) = 0;                 // empty directories only
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Swaps two existing paths (files or directories) in one atomic step
  // (renameat2 RENAME_EXCHANGE): readers see one or the other, never neither.
  // kUnsupported where the file system cannot (the caller falls back).
  virtual Status Exchange(const std::string& a, const std::string& b) = 0;
  virtual Status Link(const std::string& existing, const std::string& link) = 0;
  virtual Status Symlink(const std::string& target, const std::string& link) = 0;
  virtual Result<std::string> ReadLink(const std::string& path) = 0;
  virtual Status Chmod(const std::string& path, uint32_t mode) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Sets the modification time (nanoseconds since the epoch).
  virtual Status SetModTime(const std::string& path, int64_t mtime_ns) = 0;
  // fsync() of a directory, so that renames and creations in it are durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Bytes available to an unprivileged user on the file system holding path.
  virtual Result<uint64_t> FreeSpace(const std::string& path) = 0;

  // Below a trusted root (see RootedPath): what the agent writes or removes
  // under mirror_root and state_dir goes through these.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFileAt(const RootedPath& p,
                                                                  uint32_t mode, WriteOpen how) = 0;
  virtual Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFileAt(const RootedPath& p,
                                                                        uint32_t mode) = 0;
  virtual Result<FileInfo> LstatAt(const RootedPath& p) = 0;  // kNotFound if it is missing
  virtual Result<std::string> ReadLinkAt(const RootedPath& p) = 0;
  virtual Result<std::vector<DirEntry>> ListDirAt(const RootedPath& p) = 0;
  // Creates p and every missing directory between the root and p (and the
  // root itself, as configured, if it is missing).
  virtual Status CreateDirsAt(const RootedPath& p, uint32_t mode) = 0;
  // Removes a file or a symlink (never what a symlink points to).
  virtual Status RemoveFileAt(const RootedPath& p) = 0;
  // Removes p recursively by directory fds; OK if it does not exist. A
  // symlink inside is removed itself, never crossed.
  virtual Status RemoveTreeAt(const RootedPath& p) = 0;
  virtual Status RenameAt(const RootedPath& from, const RootedPath& to) = 0;
  // A hard link at link to the regular file existing (refused if existing
  // is a symlink).
  virtual Result<LinkOutcome> LinkAt(const RootedPath& existing, const RootedPath& link) = 0;
  virtual Status SymlinkAt(const std::string& target, const RootedPath& link) = 0;
  virtual Status ChmodAt(const RootedPath& p, uint32_t mode) = 0;
  virtual Status TruncateAt(const RootedPath& p, uint64_t size) = 0;
  virtual Status SyncDirAt(const RootedPath& p) = 0;
};

// Forwards every call to another Env; tests override what they need.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& p) override {
    return target_->NewSequentialFile(p);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& p) override {
    return target_->NewRandomAccessFile(p);
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p,
                                                        uint32_t mode) override {
    return target_->NewWritableFile(p, mode);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& p,
                                                          uint32_t mode) override {
    return target_->NewAppendableFile(p, mode);
  }
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFile(const std::string& p,
                                                              uint32_t mode) override {
    return target_->NewRandomWriteFile(p, mode);
  }
  Result<FileInfo> Stat(const std::string& p) override { return target_->Stat(p); }
  Result<FileInfo> Lstat(const std::string& p) override { return target_->Lstat(p); }
  Result<std::vector<DirEntry>> ListDir(const std::string& p) override {
    return target_->ListDir(p);
  }
  Status CreateDir(const std::string& p, uint32_t mode) override {
    return target_->CreateDir(p, mode);
  }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status RemoveDir(const std::string& p) override { return target_->RemoveDir(p); }
  Status Exchange(const std::string& a, const std::string& b) override {
    return target_->Exchange(a, b);
  }
  Status Rename(const std::string& f, const std::string& t) override {
    return target_->Rename(f, t);
  }
  Status Link(const std::string& e, const std::string& l) override { return target_->Link(e, l); }
  Status Symlink(const std::string& t, const std::string& l) override {
    return target_->Symlink(t, l);
  }
  Result<std::string> ReadLink(const std::string& p) override { return target_->ReadLink(p); }
  Status Chmod(const std::string& p, uint32_t mode) override { return target_->Chmod(p, mode); }
  Status Truncate(const std::string& p, uint64_t size) override {
    return target_->Truncate(p, size);
  }
  Status SetModTime(const std::string& p, int64_t ns) override {
    return target_->SetModTime(p, ns);
  }
  Status SyncDir(const std::string& p) override { return target_->SyncDir(p); }
  Result<uint64_t> FreeSpace(const std::string& p) override { return target_->FreeSpace(p); }
  Result<std::unique_ptr<WritableFile>> NewWritableFileAt(const RootedPath& p, uint32_t mode,
                                                          WriteOpen how) override {
    return target_->NewWritableFileAt(p, mode, how);
  }
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFileAt(const RootedPath& p,
                                                                uint32_t mode) override {
    return target_->NewRandomWriteFileAt(p, mode);
  }
  Result<FileInfo> LstatAt(const RootedPath& p) override { return target_->LstatAt(p); }
  Result<std::string> ReadLinkAt(const RootedPath& p) override { return target_->ReadLinkAt(p); }
  Result<std::vector<DirEntry>> ListDirAt(const RootedPath& p) override {
    return target_->ListDirAt(p);
  }
  Status CreateDirsAt(const RootedPath& p, uint32_t mode) override {
    return target_->CreateDirsAt(p, mode);
  }
  Status RemoveFileAt(const RootedPath& p) override { return target_->RemoveFileAt(p); }
  Status RemoveTreeAt(const RootedPath& p) override { return target_->RemoveTreeAt(p); }
  Status RenameAt(const RootedPath& f, const RootedPath& t) override {
    return target_->RenameAt(f, t);
  }
  Result<LinkOutcome> LinkAt(const RootedPath& e, const RootedPath& l) override {
    return target_->LinkAt(e, l);
  }
  Status SymlinkAt(const std::string& t, const RootedPath& l) override {
    return target_->SymlinkAt(t, l);
  }
  Status ChmodAt(const RootedPath& p, uint32_t mode) override { return target_->ChmodAt(p, mode); }
  Status TruncateAt(const RootedPath& p, uint64_t size) override {
    return target_->TruncateAt(p, size);
  }
  Status SyncDirAt(const RootedPath& p) override { return target_->SyncDirAt(p); }

 private:
  Env* target_;
};

// Helpers built on any Env.

// Creates path and every missing parent.
Status CreateDirs(Env* env, const std::string& path, uint32_t mode = 0755);
// Removes path recursively; OK if it does not exist. Does not follow symlinks.
Status RemoveTree(Env* env, const std::string& path);
// Reads a whole file; fails with kInvalidArgument if it is larger than max_bytes.
Result<std::string> ReadFileToString(Env* env, const std::string& path, uint64_t max_bytes);
// The durable-write recipe: write to a temporary file in the same directory,
// fsync it, rename it over path, fsync the directory. Readers see the old or
// the new content, never a mix. On failure the temporary file is removed.
// With mtime_ns >= 0 the new file gets that modification time before it is
// renamed into place.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data,
                           uint32_t mode = 0644, int64_t mtime_ns = -1);
// Copies a file's content (used when a hard link is not possible).
Status CopyFile(Env* env, const std::string& from, const std::string& to, uint32_t mode);
// The same into a new file below a trusted root (WriteOpen::kCreateNew).
Status CopyFileTo(Env* env, const std::string& from, const RootedPath& to, uint32_t mode);
bool FileExists(Env* env, const std::string& path);
// The error for something below a trusted root that sync-agent did not put
// there: "<path>: is a symlink where sync-agent expects its own directory;
// refusing to follow it, nothing was written or removed through it. ...".
Status RefuseForeignPath(const std::string& path, std::string_view what_it_is,
                         std::string_view expected);

// Path helpers (pure string operations).
std::string JoinPath(std::string_view a, std::string_view b);
std::string DirName(std::string_view path);
std::string BaseName(std::string_view path);

}  // namespace sync_agent
