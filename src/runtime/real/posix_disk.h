// PosixDisk: a node's files in a real process, rooted at its data directory.
//
// Paths are relative to the data directory; an absolute path or a ".." component is
// InvalidArgument, so a path from the network cannot reach outside it. Operations are
// plain blocking POSIX calls (O_CLOEXEC, EINTR and short transfers handled) that run when
// the returned task is awaited and complete without suspending it, except a file's sync:
// given a BlockingWorker, fdatasync runs on its thread and the task waits for it.
//
// Errors, as the simulated disk reports them: a missing file or directory is NotFound;
// create+exclusive on an existing file, opening a directory as a file, make_dirs through a
// file, and open, rename, unlink, make_dirs or list refused for permission (EACCES, EPERM) or
// a read-only file system (EROFS) are InvalidArgument; anything else the kernel refuses is Io.
// Messages name the operation, the path and the system's reason; errno failures carry field
// "errno".
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/env.h"
#include "runtime/real/blocking_worker.h"

namespace quire {

class PosixDisk : public Disk {
 public:
  // `root` is the data directory. It need not exist yet: make_dirs("") creates it.
  // `worker` (may be null) runs file syncs and must outlive every file opened here.
  explicit PosixDisk(std::string root, BlockingWorker* worker = nullptr);

  const std::string& root() const { return root_; }

  Task<Result<std::unique_ptr<File>>> open(std::string path, OpenOptions options) override;
  Task<Status> rename(std::string from, std::string to) override;
  Task<Status> unlink(std::string path) override;
  Task<Status> make_dirs(std::string path) override;
  Task<Result<std::vector<std::string>>> list(std::string dir) override;
  Task<Status> sync_dir(std::string dir) override;
  Task<Result<bool>> exists(std::string path) override;
  Task<Result<FileStatus>> file_status(std::string path) override;
  Task<Result<std::unique_ptr<FileLock>>> try_lock(std::string path) override;

  // The absolute (or root-relative) path of `path`, or InvalidArgument when it is absolute,
  // has a ".." component or a NUL byte, or (unless `allow_root`) names the root itself.
  Result<std::string> resolve(std::string_view path, bool allow_root) const;

 private:
  Result<std::unique_ptr<File>> open_now(const std::string& path, OpenOptions options);
  Status rename_now(const std::string& from, const std::string& to);
  Status unlink_now(const std::string& path);
  Status make_dirs_now(const std::string& path);
  Result<std::vector<std::string>> list_now(const std::string& dir);
  Status sync_dir_now(const std::string& dir);
  Result<bool> exists_now(const std::string& path);
  Result<FileStatus> file_status_now(const std::string& path);
  Result<std::unique_ptr<FileLock>> try_lock_now(const std::string& path);

  std::string root_;
  BlockingWorker* worker_;
};

}  // namespace quire
