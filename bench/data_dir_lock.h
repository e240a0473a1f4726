// DataDirLock: at most one process at a time runs on a data directory. acquire() creates
// the directory when missing and takes an exclusive flock on DIR/LOCK without waiting. The
// lock lasts until the object is destroyed or the process ends in any way (the kernel
// drops it on kill -9 too), so a stale LOCK file never blocks a restart.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

namespace quire::bench {

class DataDirLock {
 public:
  static constexpr const char* kFileName = "LOCK";

  // Busy, naming the directory, when another process holds the lock; Io when the
  // directory or the lock file cannot be created or locked.
  static Result<std::unique_ptr<DataDirLock>> acquire(const std::string& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace quire::bench
