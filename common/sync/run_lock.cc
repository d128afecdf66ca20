#include "common/sync/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/fs/env.h"

namespace sync_agent {

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// O_NOFOLLOW: a symlink planted at the lock's path is refused, so nothing
// is ever written through it into someone else's file.
Result<int> OpenLockFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) return RefuseForeignPath(path, "is a symlink", "lock file");
    return PosixError("open lock file " + path, err);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    ::close(fd);
    return RefuseForeignPath(path, "is not a regular file of its own", "lock file");
  }
  return fd;
}

}  // namespace

Status RunLock::TryAcquire(const std::string& state_dir) {
  std::string path = state_dir + "/lock";
  SA_ASSIGN_OR_RETURN(int fd, OpenLockFile(path));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return Status::Busy("another sync-agent run" +
                              (holder.empty() ? std::string() : " (pid " + holder + ")") +
                              " holds " + path,
                          "wait for it to finish; this run changed nothing");
    }
    return PosixError("lock " + path, err);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    if (::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The pid is informational only.
    }
  }
  fd_ = fd;
  return Status::OK();
}

bool RunLock::IsHeldByAnyone(const std::string& state_dir) {
  std::string path = state_dir + "/lock";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the shared lock if we got it
  return held;
}

SwapLock::~SwapLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

Status SwapLock::Acquire(const std::string& state_dir) {
  std::string path = state_dir + "/swap.lock";
  SA_ASSIGN_OR_RETURN(int fd, OpenLockFile(path));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    ::close(fd);
    return PosixError("lock " + path, err);
  }
  fd_ = fd;
  return Status::OK();
}

}  // namespace sync_agent
