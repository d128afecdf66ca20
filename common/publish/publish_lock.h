// PublishLock: an exclusive flock(2) on a lock file in a publish root, held
// for the object's lifetime, so that publishers of the same repository (or
// writers of the same organisation index) take turns. The lock file is
// created if needed (mode 0644) and never removed; the lock goes with the
// process if it dies.
#pragma once

#include <string>

#include "common/base/status.h"

namespace sync_agent {

class PublishLock {
 public:
  PublishLock() = default;
  PublishLock(const PublishLock&) = delete;
  PublishLock& operator=(const PublishLock&) = delete;
  ~PublishLock();
  // Waits for the lock (EINTR retried). Fails naming path.
  Status Acquire(const std::string& path);

 private:
  int fd_ = -1;
};

}  // namespace sync_agent
