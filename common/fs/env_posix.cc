// The POSIX Env: the only place that calls open(2), rename(2) and friends.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2

#include "common/fs/env.h"

namespace sync_agent {
namespace {

// Owns a file descriptor.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
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
    std::vector<DirEntry> out;
    errno = 0;
    while (struct dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      DirEntry entry;
      entry.name = std::move(name);
      switch (e->d_type) {
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
      out.push_back(std::move(entry));
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return PosixError("list directory " + path, err);
    return out;
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
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace sync_agent
