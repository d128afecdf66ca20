#include "common/publish/publish_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace sync_agent {

PublishLock::~PublishLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status PublishLock::Acquire(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return PosixError("open lock " + path, errno);
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return PosixError("lock " + path, errno);
  return Status::OK();
}

}  // namespace sync_agent
