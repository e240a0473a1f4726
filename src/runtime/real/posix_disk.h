// PosixDisk: a node's files in a real process, rooted at its data directory.
//
// Paths are relative to the data directory; an absolute path or a ".." component is
// InvalidArgument, so a path from the network cannot reach outside it. Operations are
// plain blocking POSIX calls (O_CLOEXEC, EINTR and short transfers handled) that run when
// the returned task is awaited and complete without suspending it, except a file's sync:
// given a BlockingWorker, fdatasync runs on its thread and the task waits for it, unless
// the disk has been quick (SyncPlacement below).
//
// Errors, as the simulated disk reports them: a missing file or directory is NotFound;
// create+exclusive on an existing file, opening a directory as a file, make_dirs through a
// file, and open, rename, unlink, make_dirs or list refused for permission (EACCES, EPERM) or
// a read-only file system (EROFS) are InvalidArgument; anything else the kernel refuses is Io.
// Messages name the operation, the path and the system's reason; errno failures carry field
// "errno".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"
#include "runtime/real/blocking_worker.h"
#include "runtime/time.h"

namespace quire {

// SyncPlacement: where a real file's fdatasync runs. On the BlockingWorker the loop goes on
// serving its network while a sync waits (a page server's read, the next write), at the
// price of two thread hand-offs per sync; on a quick disk the hand-offs cost more than the
// sync itself (docs/figures.md, "Syncs on the loop while the disk is quick"). So a sync runs
// on the loop once the last `quick_run` syncs each took at most `on_loop_max`, and on the
// worker from the first slower one until the disk has been quick for `quick_run` syncs
// again. A disk that stalls now and then stops its loop at most once per `quick_run` syncs,
// for one sync; a disk that is slow more often than that stays on the worker. The first
// `quick_run` syncs run on the worker. `on_loop_max` zero keeps every sync on the worker.
// Durations are measured around fdatasync alone (on the thread that runs it).
class SyncPlacement {
 public:
  struct Options {
    Nanos on_loop_max = 1ms;
    uint32_t quick_run = 32;
  };
  struct Stats {
    uint64_t on_loop = 0;    // syncs run on the loop
    uint64_t on_worker = 0;  // syncs run on the worker
    uint64_t moves = 0;      // changes of place, either way
    Nanos slowest_on_loop{0};
  };

  explicit SyncPlacement(Options options) : options_(options) {}

  bool on_loop() const { return on_loop_; }
  // Records a sync that ran where on_loop() said; true when the next one runs elsewhere.
  bool record(Nanos took);
  const Stats& stats() const { return stats_; }
  const Options& options() const { return options_; }

 private:
  Options options_;
  bool on_loop_ = false;
  uint32_t quick_ = 0;  // quick syncs in a row, at most quick_run
  Stats stats_;
};

class PosixDisk : public Disk {
 public:
  // Log id of the line a change of SyncPlacement writes (at most one per 10 s).
  static constexpr uint32_t kLogSyncPlacement = 10003;

  // `root` is the data directory. It need not exist yet: make_dirs("") creates it.
  // `worker` (may be null: every sync blocks the loop) runs file syncs where `placement`
  // says; it and `log` (may be null) must outlive every file opened here.
  explicit PosixDisk(std::string root, BlockingWorker* worker = nullptr, Logger* log = nullptr,
                     SyncPlacement::Options placement = {});

  const std::string& root() const { return root_; }
  // Where this disk's file syncs have run (only with a worker).
  SyncPlacement::Stats sync_placement() const;
  // Replaces the placement's options (and starts its count over); call before the first sync.
  void set_sync_placement(SyncPlacement::Options options);

  struct Syncs;  // the placement and its log, shared with the files (posix_disk.cc)

  Task<Result<std::unique_ptr<File>>> open(std::string path, OpenOptions options) override;
  Task<Status> rename(std::string from, std::string to) override;
  Task<Status> unlink(std::string path) override;
  Task<Status> make_dirs(std::string path) override;
  Task<Result<std::vector<std::string>>> list(std::string dir) override;
  Task<Status> sync_dir(std::string dir) override;
  Task<Result<bool>> exists(std::string path) override;
  Task<Result<FileStatus>> file_status(std::string path) override;

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

  std::string root_;
  BlockingWorker* worker_;
  std::shared_ptr<Syncs> syncs_;
};

}  // namespace quire
