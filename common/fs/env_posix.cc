// The POSIX Env: the only place that calls open(2), rename(2) and friends.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>

#include "common/fs/env.h"

namespace sync_agent {
namespace {

// Owns a file descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

int OpenRetry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

FileInfo ToFileInfo(const struct stat& st) {
  FileInfo info;
  if (S_ISREG(st.st_mode)) {
    info.type = FileInfo::Type::kRegular;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileInfo::Type::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    info.type = FileInfo::Type::kSymlink;
  }
  info.size = static_cast<uint64_t>(st.st_size);
  info.mode = st.st_mode & 07777;
  info.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  info.inode = st.st_ino;
  info.device = st.st_dev;
  info.nlink = st.st_nlink;
  return info;
}

DirEntry ToDirEntry(const struct dirent& e) {
  DirEntry entry;
  entry.name = e.d_name;
  switch (e.d_type) {
    case DT_REG:
      entry.type = FileInfo::Type::kRegular;
      break;
    case DT_DIR:
      entry.type = FileInfo::Type::kDirectory;
      break;
    case DT_LNK:
      entry.type = FileInfo::Type::kSymlink;
      break;
    default:
      entry.type = FileInfo::Type::kOther;
      break;
  }
  return entry;
}

// Reads every entry but "." and ".." and closes dir.
Result<std::vector<DirEntry>> ReadDirAndClose(DIR* dir, const std::string& path) {
  std::vector<DirEntry> out;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.push_back(ToDirEntry(*e));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return PosixError("list directory " + path, err);
  return out;
}

int OpenAtRetry(int dirfd, const char* name, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::openat(dirfd, name, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// After openat(.., O_NOFOLLOW) of name failed with err: a symlink or a
// non-directory in the way is refused, anything else is the errno.
Status OpenAtError(int dirfd, const std::string& name, const std::string& path, int err,
                   bool want_dir, const char* op) {
  if (err == ELOOP || err == ENOTDIR) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode))
        return RefuseForeignPath(path, "is a symlink", want_dir ? "directory" : "file");
      if (want_dir && !S_ISDIR(st.st_mode))
        return RefuseForeignPath(path, "is not a directory", "directory");
    }
  }
  return PosixError(std::string(op) + " " + path, err);
}

// A RootedPath opened up to its last component: the directory that holds it
// (by fd, every component below the root opened with O_NOFOLLOW) and its name.
struct OpenedParent {
  ScopedFd dir{-1};
  std::string leaf;  // empty when p names the root itself
  std::string path;  // p.full(), for messages
};

Result<std::vector<std::string>> SplitRel(const RootedPath& p) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.rel.size()) {
    size_t j = p.rel.find('/', i);
    if (j == std::string::npos) j = p.rel.size();
    std::string part = p.rel.substr(i, j - i);
    if (part == "." || part == "..") {
      return Status::InvalidArgument(p.full(), "has a '" + part + "' component below " + p.root);
    }
    if (!part.empty()) parts.push_back(std::move(part));
    i = j + 1;
  }
  return parts;
}

Result<ScopedFd> OpenRoot(const std::string& root) {
  // The operator's choice: followed if it is a symlink.
  int fd = OpenRetry(root.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return PosixError("open directory " + root, errno);
  return ScopedFd(fd);
}

// Opens the directory named by the first n parts, each with O_NOFOLLOW;
// with create, makes the missing ones (mode).
Result<ScopedFd> WalkDirs(const RootedPath& p, const std::vector<std::string>& parts, size_t n,
                          bool create, mode_t mode) {
  SA_ASSIGN_OR_RETURN(ScopedFd dir, OpenRoot(p.root));
  std::string path = p.root;
  for (size_t i = 0; i < n; ++i) {
    path = JoinPath(path, parts[i]);
    if (create && ::mkdirat(dir.get(), parts[i].c_str(), mode) != 0 && errno != EEXIST) {
      return PosixError("create directory " + path, errno);
    }
    int fd = OpenAtRetry(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) return OpenAtError(dir.get(), parts[i], path, errno, true, "open directory");
    dir = ScopedFd(fd);
  }
  return dir;
}

Result<OpenedParent> OpenParent(const RootedPath& p, bool create = false, mode_t mode = 0755) {
  SA_ASSIGN_OR_RETURN(auto parts, SplitRel(p));
  OpenedParent out;
  out.path = p.full();
  size_t n = parts.empty() ? 0 : parts.size() - 1;
  SA_ASSIGN_OR_RETURN(out.dir, WalkDirs(p, parts, n, create, mode));
  if (!parts.empty()) out.leaf = parts.back();
  return out;
}

// Opens the directory p itself.
Result<ScopedFd> OpenDirAt(const RootedPath& p, bool create = false, mode_t mode = 0755) {
  SA_ASSIGN_OR_RETURN(auto parts, SplitRel(p));
  return WalkDirs(p, parts, parts.size(), create, mode);
}

Status NeedLeaf(const OpenedParent& o) {
  if (o.leaf.empty()) return Status::InvalidArgument(o.path, "names the root, not a file below it");
  return Status::OK();
}

// Opens the regular file o.leaf with O_NOFOLLOW; refuses anything else, and
// (for writing) a file with other hard links, which may be someone else's.
Result<ScopedFd> OpenFileAt(const OpenedParent& o, int flags, mode_t mode) {
  SA_RETURN_IF_ERROR(NeedLeaf(o));
  int fd = OpenAtRetry(o.dir.get(), o.leaf.c_str(), flags | O_NOFOLLOW | O_NONBLOCK, mode);
  if (fd < 0) return OpenAtError(o.dir.get(), o.leaf, o.path, errno, false, "open");
  ScopedFd guard(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return PosixError("stat " + o.path, errno);
  if (!S_ISREG(st.st_mode)) return RefuseForeignPath(o.path, "is not a regular file", "file");
  if ((flags & O_ACCMODE) != O_RDONLY && st.st_nlink > 1) {
    return RefuseForeignPath(o.path, "has other hard links", "file");
  }
  // O_NONBLOCK only kept a planted FIFO from blocking the open.
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    return PosixError("fcntl " + o.path, errno);
  }
  return ScopedFd(guard.release());
}

// Removes name in dirfd recursively without following or crossing a symlink.
Status RemoveEntryAt(int dirfd, const std::string& name, const std::string& path) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::OK();
    return PosixError("stat " + path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = OpenAtRetry(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd >= 0) {
      ScopedFd child(fd);
      // The stream owns a copy of the fd; entries are removed through child.
      int list_fd = ::dup(fd);
      if (list_fd < 0) return PosixError("dup " + path, errno);
      DIR* dir = ::fdopendir(list_fd);
      if (dir == nullptr) {
        int err = errno;
        ::close(list_fd);
        return PosixError("list directory " + path, err);
      }
      SA_ASSIGN_OR_RETURN(auto entries, ReadDirAndClose(dir, path));
      for (const DirEntry& e : entries) {
        SA_RETURN_IF_ERROR(RemoveEntryAt(child.get(), e.name, JoinPath(path, e.name)));
      }
      if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return PosixError("remove directory " + path, errno);
      }
      return Status::OK();
    }
    // Replaced by a symlink or a file since the stat: remove that itself.
    if (errno != ELOOP && errno != ENOTDIR) return PosixError("open directory " + path, errno);
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return PosixError("remove " + path, errno);
  }
  return Status::OK();
}

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Result<size_t> Read(void* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_.get(), buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return PosixError("read " + path_, errno);
    }
  }
  Status Skip(uint64_t n) override {
    if (::lseek(fd_.get(), static_cast<off_t>(n), SEEK_CUR) < 0) {
      return PosixError("seek " + path_, errno);
    }
    return Status::OK();
  }

 private:
  std::string path_;
  ScopedFd fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) const override {
    size_t done = 0;
    char* p = static_cast<char*>(buf);
    while (done < n) {
      ssize_t r = ::pread(fd_.get(), p + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("read " + path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

 private:
  std::string path_;
  ScopedFd fd_;
};

// fdatasync, sync_file_range and close of a file opened for writing, shared
// by the writable file kinds.
Status SyncFd(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return PosixError("fsync " + path, errno);
  return Status::OK();
}

Status SyncFdRange(int fd, const std::string& path, uint64_t offset, uint64_t length,
                   unsigned int flags, const char* what) {
  if (::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(length), flags) !=
      0) {
    // Some file systems do not support it; it is only a hint there.
    if (errno == EINVAL || errno == ENOSYS || errno == ESPIPE) return Status::OK();
    return PosixError(std::string(what) + path, errno);
  }
  return Status::OK();
}

constexpr unsigned int kWaitWriteback =
    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;

// Closes *fd once; later calls do nothing.
Status CloseFd(int* fd, const std::string& path) {
  if (*fd < 0) return Status::OK();
  int f = *fd;
  *fd = -1;
  if (::close(f) != 0) return PosixError("close " + path, errno);
  return Status::OK();
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Append(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write " + path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      size_ += static_cast<uint64_t>(w);
    }
    return Status::OK();
  }
  Status Sync() override { return SyncFd(fd_, path_); }
  Status StartWriteback(uint64_t offset, uint64_t length) override {
    return SyncFdRange(fd_, path_, offset, length, SYNC_FILE_RANGE_WRITE, "start writeback of ");
  }
  Status WaitWriteback(uint64_t offset, uint64_t length) override {
    return SyncFdRange(fd_, path_, offset, length, kWaitWriteback, "write back ");
  }
  Status Close() override { return CloseFd(&fd_, path_); }
  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixRandomWriteFile final : public RandomWriteFile {
 public:
  PosixRandomWriteFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomWriteFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status WriteAt(uint64_t offset, const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write " + path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
    return Status::OK();
  }
  Status WaitWriteback(uint64_t offset, uint64_t length) override {
    return SyncFdRange(fd_, path_, offset, length, kWaitWriteback, "write back ");
  }
  Status Sync() override { return SyncFd(fd_, path_); }
  Status Close() override { return CloseFd(&fd_, path_); }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY);
    if (fd < 0) return PosixError("open " + path, errno);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY);
    if (fd < 0) return PosixError("open " + path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        uint32_t mode) override {
    int fd = OpenRetry(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return PosixError("create " + path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, 0));
  }
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFile(const std::string& path,
                                                              uint32_t mode) override {
    int fd = OpenRetry(path.c_str(), O_WRONLY | O_CREAT, mode);
    if (fd < 0) return PosixError("open " + path, errno);
    return std::unique_ptr<RandomWriteFile>(new PosixRandomWriteFile(path, fd));
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          uint32_t mode) override {
    int fd = OpenRetry(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, mode);
    if (fd < 0) return PosixError("open " + path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return PosixError("stat " + path, err);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }
  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat " + path, errno);
    return ToFileInfo(st);
  }
  Result<FileInfo> Lstat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return PosixError("stat " + path, errno);
    return ToFileInfo(st);
  }
  Result<std::vector<DirEntry>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return PosixError("list directory " + path, errno);
    return ReadDirAndClose(dir, path);
  }
  Status CreateDir(const std::string& path, uint32_t mode) override {
    if (::mkdir(path.c_str(), mode) != 0) {
      if (errno == EEXIST) {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
        return Status::IOError("create directory " + path, "a file of that name is in the way");
      }
      return PosixError("create directory " + path, errno);
    }
    return Status::OK();
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("remove " + path, errno);
    return Status::OK();
  }
  Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return PosixError("remove directory " + path, errno);
    return Status::OK();
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename " + from + " to " + to, errno);
    }
    return Status::OK();
  }
  Status Exchange(const std::string& a, const std::string& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
      int err = errno;
      if (err == EINVAL || err == ENOSYS) {
        return Status::Unsupported("exchange " + a + " and " + b,
                                   "the file system cannot swap paths atomically");
      }
      return PosixError("exchange " + a + " and " + b, err);
    }
    return Status::OK();
  }
  Status Link(const std::string& existing, const std::string& link) override {
    if (::link(existing.c_str(), link.c_str()) != 0) {
      return PosixError("hard link " + existing + " to " + link, errno);
    }
    return Status::OK();
  }
  Status Symlink(const std::string& target, const std::string& link) override {
    if (::symlink(target.c_str(), link.c_str()) != 0) {
      return PosixError("symlink " + link + " -> " + target, errno);
    }
    return Status::OK();
  }
  Result<std::string> ReadLink(const std::string& path) override {
    std::string buf(4096, '\0');
    ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return PosixError("read link " + path, errno);
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  Status Chmod(const std::string& path, uint32_t mode) override {
    if (::chmod(path.c_str(), mode) != 0) return PosixError("chmod " + path, errno);
    return Status::OK();
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return PosixError("truncate " + path, errno);
    }
    return Status::OK();
  }
  Status SetModTime(const std::string& path, int64_t mtime_ns) override {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(mtime_ns / 1000000000);
    times[1].tv_nsec = static_cast<long>(mtime_ns % 1000000000);
    if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
      return PosixError("set modification time of " + path, errno);
    }
    return Status::OK();
  }
  Status SyncDir(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PosixError("open directory " + path, errno);
    ScopedFd guard(fd);
    if (::fsync(fd) != 0) return PosixError("fsync directory " + path, errno);
    return Status::OK();
  }
  Result<uint64_t> FreeSpace(const std::string& path) override {
    struct statvfs vfs;
    if (::statvfs(path.c_str(), &vfs) != 0) return PosixError("statvfs " + path, errno);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFileAt(const RootedPath& p, uint32_t mode,
                                                          WriteOpen how) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    int flags = O_WRONLY | O_CREAT;
    if (how == WriteOpen::kAppend) flags |= O_APPEND;
    if (how == WriteOpen::kCreateNew) flags |= O_EXCL;
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenFileAt(o, flags, mode));
    // Emptied only once it is known to be our own file.
    if (how == WriteOpen::kTruncate && ::ftruncate(fd.get(), 0) != 0) {
      return PosixError("truncate " + o.path, errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return PosixError("stat " + o.path, errno);
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(o.path, fd.release(), static_cast<uint64_t>(st.st_size)));
  }
  Result<std::unique_ptr<RandomWriteFile>> NewRandomWriteFileAt(const RootedPath& p,
                                                                uint32_t mode) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenFileAt(o, O_WRONLY | O_CREAT, mode));
    return std::unique_ptr<RandomWriteFile>(new PosixRandomWriteFile(o.path, fd.release()));
  }
  Result<FileInfo> LstatAt(const RootedPath& p) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    struct stat st;
    int rc = o.leaf.empty() ? ::fstat(o.dir.get(), &st)
                            : ::fstatat(o.dir.get(), o.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return PosixError("stat " + o.path, errno);
    return ToFileInfo(st);
  }
  Result<std::string> ReadLinkAt(const RootedPath& p) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    SA_RETURN_IF_ERROR(NeedLeaf(o));
    std::string buf(4096, '\0');
    ssize_t n = ::readlinkat(o.dir.get(), o.leaf.c_str(), buf.data(), buf.size());
    if (n < 0) return PosixError("read link " + o.path, errno);
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  Result<std::vector<DirEntry>> ListDirAt(const RootedPath& p) override {
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenDirAt(p));
    DIR* dir = ::fdopendir(fd.get());
    if (dir == nullptr) return PosixError("list directory " + p.full(), errno);
    fd.release();  // owned by dir now
    return ReadDirAndClose(dir, p.full());
  }
  Status CreateDirsAt(const RootedPath& p, uint32_t mode) override {
    // The root is the operator's: made as configured, symlinks followed.
    SA_RETURN_IF_ERROR(CreateDirs(this, p.root, mode));
    return OpenDirAt(p, true, mode).status();
  }
  Status RemoveFileAt(const RootedPath& p) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    SA_RETURN_IF_ERROR(NeedLeaf(o));
    if (::unlinkat(o.dir.get(), o.leaf.c_str(), 0) != 0) {
      return PosixError("remove " + o.path, errno);
    }
    return Status::OK();
  }
  Status RemoveTreeAt(const RootedPath& p) override {
    auto o = OpenParent(p);
    if (!o.ok()) return o.status().IsNotFound() ? Status::OK() : o.status();
    SA_RETURN_IF_ERROR(NeedLeaf(*o));
    return RemoveEntryAt(o->dir.get(), o->leaf, o->path);
  }
  Status RenameAt(const RootedPath& from, const RootedPath& to) override {
    SA_ASSIGN_OR_RETURN(OpenedParent f, OpenParent(from));
    SA_ASSIGN_OR_RETURN(OpenedParent t, OpenParent(to));
    SA_RETURN_IF_ERROR(NeedLeaf(f));
    SA_RETURN_IF_ERROR(NeedLeaf(t));
    if (::renameat(f.dir.get(), f.leaf.c_str(), t.dir.get(), t.leaf.c_str()) != 0) {
      return PosixError("rename " + f.path + " to " + t.path, errno);
    }
    return Status::OK();
  }
  Result<LinkOutcome> LinkAt(const RootedPath& existing, const RootedPath& link) override {
    SA_ASSIGN_OR_RETURN(OpenedParent e, OpenParent(existing));
    SA_ASSIGN_OR_RETURN(OpenedParent l, OpenParent(link));
    SA_RETURN_IF_ERROR(NeedLeaf(e));
    SA_RETURN_IF_ERROR(NeedLeaf(l));
    struct stat st;
    if (::fstatat(e.dir.get(), e.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return PosixError("stat " + e.path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
      return RefuseForeignPath(
          e.path, S_ISLNK(st.st_mode) ? "is a symlink" : "is not a regular file", "file");
    }
    // Flags 0: linkat never follows a symlink that replaced the file since.
    if (::linkat(e.dir.get(), e.leaf.c_str(), l.dir.get(), l.leaf.c_str(), 0) == 0) {
      return LinkOutcome::kLinked;
    }
    switch (errno) {
      case EXDEV:
        return LinkOutcome::kCrossDevice;
      case EMLINK:
        return LinkOutcome::kTooManyLinks;
      case EPERM:
        return LinkOutcome::kNotSupported;
      default:
        return PosixError("hard link " + e.path + " to " + l.path, errno);
    }
  }
  Status SymlinkAt(const std::string& target, const RootedPath& link) override {
    SA_ASSIGN_OR_RETURN(OpenedParent l, OpenParent(link));
    SA_RETURN_IF_ERROR(NeedLeaf(l));
    if (::symlinkat(target.c_str(), l.dir.get(), l.leaf.c_str()) != 0) {
      return PosixError("symlink " + l.path + " -> " + target, errno);
    }
    return Status::OK();
  }
  Status ChmodAt(const RootedPath& p, uint32_t mode) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenFileAt(o, O_RDONLY, 0));
    if (::fchmod(fd.get(), mode) != 0) return PosixError("chmod " + o.path, errno);
    return Status::OK();
  }
  Status TruncateAt(const RootedPath& p, uint64_t size) override {
    SA_ASSIGN_OR_RETURN(OpenedParent o, OpenParent(p));
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenFileAt(o, O_WRONLY, 0));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return PosixError("truncate " + o.path, errno);
    }
    return Status::OK();
  }
  Status SyncDirAt(const RootedPath& p) override {
    SA_ASSIGN_OR_RETURN(ScopedFd fd, OpenDirAt(p));
    if (::fsync(fd.get()) != 0) return PosixError("fsync directory " + p.full(), errno);
    return Status::OK();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace sync_agent
