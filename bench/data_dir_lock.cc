#include "bench/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace quire::bench {

namespace {

// fsync of a directory, so the entries made in it survive a crash. A file system that
// cannot sync directories (EINVAL) has nothing to sync.
Status sync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return io_error(
        fmt::format("cannot open directory {}: {}", dir.string(), std::strerror(errno)));
  int err = 0;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      err = errno;
      break;
    }
  }
  ::close(fd);
  if (err != 0 && err != EINVAL) {
    return io_error(fmt::format("cannot sync directory {}: {}", dir.string(), std::strerror(err)));
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<DataDirLock>> DataDirLock::acquire(const std::string& dir) {
  std::error_code ec;
  // The directories it creates, and the data directory's own entry even when it existed
  // (a process that made it may have died before syncing it), are synced into their
  // parents: a crash that lost an entry would lose everything synced under it.
  std::filesystem::path full = std::filesystem::absolute(dir, ec).lexically_normal();
  if (ec) return io_error(fmt::format("cannot resolve data directory {}: {}", dir, ec.message()));
  // "d/" names d.
  if (full.has_relative_path() && full.filename().empty()) full = full.parent_path();
  std::filesystem::path first_made;
  for (std::filesystem::path p = full; p.has_relative_path(); p = p.parent_path()) {
    if (std::filesystem::exists(p, ec)) break;
    first_made = p;
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error(fmt::format("cannot create data directory {}: {}", dir, ec.message()));
  std::filesystem::path synced = full;
  if (!first_made.empty()) synced = first_made;
  for (std::filesystem::path p = full;; p = p.parent_path()) {
    if (!p.has_relative_path()) break;
    if (Status st = sync_directory(p.parent_path()); !st.is_ok()) return st;
    if (p == synced) break;
  }
  std::string path = dir + "/" + kFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  // LOCK_NB never sleeps, so there is no EINTR to retry.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return busy(fmt::format("data directory {} is in use by another process (lock {} is held)",
                              dir, path));
    }
    return io_error(fmt::format("cannot lock {}: {}", path, std::strerror(err)));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
  ::close(fd_);
}

}  // namespace quire::bench
