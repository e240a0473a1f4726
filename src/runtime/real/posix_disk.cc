#include "runtime/real/posix_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace quire {

namespace {

// One read or write syscall moves at most this much; Linux caps a transfer just below
// 2 GiB anyway.
constexpr size_t kTransferBytesMax = size_t{1} << 30;

// A task that runs `f` when awaited and returns its result. `f` (with everything it
// captured) is copied into the coroutine frame, so nothing the caller passed by reference
// needs to outlive the call.
template <typename F>
auto deferred(F f) -> Task<decltype(f())> {
  co_return f();
}

Status errno_status(Code code, std::string_view op, const std::string& path, int err) {
  std::string reason = std::error_code(err, std::generic_category()).message();
  return Status(code, fmt::format("{} {}: {}", op, path, reason))
      .with("errno", static_cast<uint64_t>(err));
}

// A missing file or directory (ENOENT, or ENOTDIR: a file where a directory should be) is
// NotFound: an answer, not a failing disk. A full disk or quota (ENOSPC, EDQUOT) is NoSpace:
// the operation changed nothing the caller relies on (a write wrote at most part of its
// bytes, past what the caller treats as written), and it can succeed once space is freed.
// The simulated disk answers the same way.
Status posix_error(std::string_view op, const std::string& path, int err) {
  Code code = Code::kIo;
  if (err == ENOENT || err == ENOTDIR) code = Code::kNotFound;
  if (err == ENOSPC || err == EDQUOT) code = Code::kNoSpace;
  return errno_status(code, op, path, err);
}

// A failed flush is Io whatever its errno, ENOSPC included: the kernel may have dropped the
// dirty pages it could not write, so what the file holds is no longer known.
Status sync_error(std::string_view op, const std::string& path, int err) {
  return errno_status(Code::kIo, op, path, err);
}

// For the operations that find, create or remove a path (open, mkdir, list, rename, unlink):
// permission denied and a read-only file system are InvalidArgument, a directory the node
// cannot use as it is (a configuration problem restarting will not fix), not a failing disk.
Status posix_path_error(std::string_view op, const std::string& path, int err) {
  if (err == EACCES || err == EPERM || err == EROFS) {
    std::string reason = std::error_code(err, std::generic_category()).message();
    return Status(Code::kInvalidArgument, fmt::format("{} {}: {}", op, path, reason))
        .with("errno", static_cast<uint64_t>(err));
  }
  return posix_error(op, path, err);
}

// What a non-regular file is, for messages.
const char* file_kind_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

// Opens a directory for reading its entries or syncing it.
int open_dir(const std::string& path) {
  return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

// The directory a path is in: "/" for "/a", "." for a relative "a".
std::string parent_path(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// fsync of a directory (by its full path), so the entries made in it survive a crash.
Status fsync_dir(const std::string& full) {
  int fd = open_dir(full);
  if (fd < 0) return posix_path_error("open directory", full, errno);
  Status result;
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      result = sync_error("fsync directory", full, errno);
      break;
    }
  }
  ::close(fd);
  return result;
}

// A file descriptor, closed once nothing uses it: a sync on the worker thread holds it
// past the file's end (blocking_worker.h).
struct OwnedFd {
  explicit OwnedFd(int fd_in) : fd(fd_in) {}
  ~OwnedFd() { ::close(fd); }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  const int fd;
};

Status sync_fd(int fd, const std::string& full_path) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return sync_error("fdatasync", full_path, errno);
  }
  return Status();
}

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path, std::string full_path, BlockingWorker* worker)
      : owned_(std::make_shared<OwnedFd>(fd)),
        fd_(fd),
        path_(std::move(path)),
        full_path_(std::move(full_path)),
        worker_(worker) {}
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Task<Result<size_t>> read(uint64_t offset, std::span<uint8_t> out) override {
    return deferred([this, offset, out] { return read_now(offset, out); });
  }
  Task<Status> write(uint64_t offset, ByteView data) override {
    return deferred([this, offset, data] { return write_now(offset, data); });
  }
  Task<Result<uint64_t>> append(ByteView data) override {
    return deferred([this, data] { return append_now(data); });
  }
  // On the worker thread when there is one: the loop serves its network meanwhile.
  Task<Status> sync() override {
    if (worker_ == nullptr) return deferred([this] { return sync_fd(fd_, full_path_); });
    return worker_->run([owned = owned_, path = full_path_] { return sync_fd(owned->fd, path); });
  }
  Task<Status> truncate(uint64_t size) override {
    return deferred([this, size] { return truncate_now(size); });
  }
  Result<uint64_t> size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return posix_error("fstat", full_path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }
  const std::string& path() const override { return path_; }

 private:
  Result<size_t> read_now(uint64_t offset, std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
      size_t want = std::min(out.size() - done, kTransferBytesMax);
      ssize_t n = ::pread(fd_, out.data() + done, want, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_error("pread", full_path_, errno).with("offset", offset + done);
      }
      if (n == 0) break;  // end of file
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status write_now(uint64_t offset, ByteView data) {
    size_t done = 0;
    while (done < data.size()) {
      size_t want = std::min(data.size() - done, kTransferBytesMax);
      ssize_t n = ::pwrite(fd_, data.data() + done, want, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_error("pwrite", full_path_, errno).with("offset", offset + done);
      }
      // pwrite returning 0 for a non-empty buffer would loop forever; call it a full disk.
      if (n == 0) return posix_error("pwrite", full_path_, ENOSPC).with("offset", offset + done);
      done += static_cast<size_t>(n);
    }
    return Status();
  }

  Result<uint64_t> append_now(ByteView data) {
    Result<uint64_t> end = size();
    if (!end.is_ok()) return end;
    Status st = write_now(*end, data);
    if (!st.is_ok()) return st;
    return *end;
  }

  Status truncate_now(uint64_t size) {
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return posix_error("ftruncate", full_path_, errno).with("size", size);
    }
    return Status();
  }

  std::shared_ptr<OwnedFd> owned_;
  int fd_;                  // owned_->fd
  std::string path_;        // relative to the data directory, as the caller named it
  std::string full_path_;   // for error messages
  BlockingWorker* worker_;  // null: sync() blocks the loop
};

}  // namespace

PosixDisk::PosixDisk(std::string root, BlockingWorker* worker)
    : root_(std::move(root)), worker_(worker) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  if (root_.empty()) root_.push_back('.');
}

Result<std::string> PosixDisk::resolve(std::string_view path, bool allow_root) const {
  if (path.find('\0') != std::string_view::npos) {
    return invalid_argument(fmt::format("path '{}' contains a NUL byte", path));
  }
  if (!path.empty() && path.front() == '/') {
    return invalid_argument(
        fmt::format("path '{}' is absolute; paths are relative to the data directory", path));
  }
  bool names_root = true;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view component = path.substr(start, end - start);
    if (component == "..") {
      return invalid_argument(
          fmt::format("path '{}' has a '..' component; it may not leave the data directory", path));
    }
    if (!component.empty() && component != ".") names_root = false;
    start = end + 1;
  }
  if (names_root) {
    if (!allow_root) {
      return invalid_argument(fmt::format("path '{}' names the data directory itself", path));
    }
    return root_;
  }
  return fmt::format("{}/{}", root_, path);
}

Task<Result<std::unique_ptr<File>>> PosixDisk::open(std::string path, OpenOptions options) {
  return deferred([this, path, options] { return open_now(path, options); });
}
Task<Status> PosixDisk::rename(std::string from, std::string to) {
  return deferred([this, from, to] { return rename_now(from, to); });
}
Task<Status> PosixDisk::unlink(std::string path) {
  return deferred([this, path] { return unlink_now(path); });
}
Task<Status> PosixDisk::make_dirs(std::string path) {
  return deferred([this, path] { return make_dirs_now(path); });
}
Task<Result<std::vector<std::string>>> PosixDisk::list(std::string dir) {
  return deferred([this, dir] { return list_now(dir); });
}
Task<Status> PosixDisk::sync_dir(std::string dir) {
  return deferred([this, dir] { return sync_dir_now(dir); });
}
Task<Result<bool>> PosixDisk::exists(std::string path) {
  return deferred([this, path] { return exists_now(path); });
}
Task<Result<FileStatus>> PosixDisk::file_status(std::string path) {
  return deferred([this, path] { return file_status_now(path); });
}
Task<Result<std::unique_ptr<FileLock>>> PosixDisk::try_lock(std::string path) {
  return deferred([this, path] { return try_lock_now(path); });
}

namespace {
// flock(2) on its own descriptor: the lock goes with the descriptor.
class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }

 private:
  int fd_;
};
}  // namespace

Result<std::unique_ptr<FileLock>> PosixDisk::try_lock_now(const std::string& path) {
  Result<std::string> full = resolve(path, /*allow_root=*/false);
  if (!full.is_ok()) return full.status();
  int fd;
  do {
    fd = ::open(full->c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) return invalid_argument(fmt::format("lock {}: is a symlink", *full));
    return posix_path_error("open", *full, errno);
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return busy(fmt::format("{} is locked by another holder", *full));
    return posix_error("flock", *full, err);
  }
  return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
}

Result<std::unique_ptr<File>> PosixDisk::open_now(const std::string& path, OpenOptions options) {
  Result<std::string> full = resolve(path, /*allow_root=*/false);
  if (!full.is_ok()) return full.status();
  int flags = O_RDWR | O_CLOEXEC;
  if (options.create) flags |= O_CREAT;
  if (options.create && options.exclusive) flags |= O_EXCL;
  if (!options.follow_symlink) flags |= O_NOFOLLOW;
  int fd;
  do {
    fd = ::open(full->c_str(), flags, static_cast<mode_t>(options.mode & 0777));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EEXIST && options.create && options.exclusive) {
      return invalid_argument(
          fmt::format("open {}: exists and exclusive creation was asked", *full));
    }
    if (errno == EISDIR) return invalid_argument(fmt::format("open {}: is a directory", *full));
    if (errno == ELOOP && !options.follow_symlink) {
      return invalid_argument(fmt::format("open {}: is a symlink", *full));
    }
    if (errno == ENXIO) return invalid_argument(fmt::format("open {}: is a socket", *full));
    return posix_path_error("open", *full, errno);
  }
  // Only regular files: reading a FIFO or a device could block the node forever. Opening
  // read-write never blocks on a FIFO (Linux), so the check can follow the open.
  struct stat st;
  Status refused;
  if (::fstat(fd, &st) != 0) {
    refused = posix_error("fstat", *full, errno);
  } else if (!S_ISREG(st.st_mode)) {
    refused = invalid_argument(
        fmt::format("open {}: is {}, not a regular file", *full, file_kind_name(st.st_mode)));
  }
  if (!refused.is_ok()) {
    ::close(fd);
    return refused;
  }
  return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path, std::move(*full), worker_));
}

Status PosixDisk::rename_now(const std::string& from, const std::string& to) {
  Result<std::string> full_from = resolve(from, /*allow_root=*/false);
  if (!full_from.is_ok()) return full_from.status();
  Result<std::string> full_to = resolve(to, /*allow_root=*/false);
  if (!full_to.is_ok()) return full_to.status();
  if (::rename(full_from->c_str(), full_to->c_str()) != 0) {
    return posix_path_error("rename", fmt::format("{} -> {}", *full_from, *full_to), errno);
  }
  return Status();
}

Status PosixDisk::unlink_now(const std::string& path) {
  Result<std::string> full = resolve(path, /*allow_root=*/false);
  if (!full.is_ok()) return full.status();
  if (::unlink(full->c_str()) != 0) return posix_path_error("unlink", *full, errno);
  return Status();
}

Status PosixDisk::make_dirs_now(const std::string& path) {
  Result<std::string> full = resolve(path, /*allow_root=*/true);
  if (!full.is_ok()) return full.status();
  // mkdir -p: every prefix that ends before a '/', then the whole path. Each must end up a
  // directory; one that exists is fine (even where we may not write, say "/home"). One
  // this call creates is synced into its parent: a crash that lost its entry would lose
  // whatever is later synced inside it. The whole path's entry is synced even when it
  // existed, in case a process that made it died before its sync.
  const std::string& p = *full;
  for (size_t end = p.find('/', 1);; end = p.find('/', end + 1)) {
    std::string prefix = p.substr(0, end);
    const bool last = end == std::string::npos;
    bool made = false;
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0) {
      int err = errno;
      struct stat st;
      if (::stat(prefix.c_str(), &st) != 0) return posix_path_error("mkdir", prefix, err);
      if (!S_ISDIR(st.st_mode)) {
        return invalid_argument(fmt::format("mkdir {}: a file is in the way", prefix));
      }
    } else {
      made = !prefix.empty();
    }
    if (made || (last && !prefix.empty())) QUIRE_RETURN_IF_ERROR(fsync_dir(parent_path(prefix)));
    if (last) break;
  }
  return Status();
}

Result<std::vector<std::string>> PosixDisk::list_now(const std::string& dir) {
  Result<std::string> full = resolve(dir, /*allow_root=*/true);
  if (!full.is_ok()) return full.status();
  int fd = open_dir(*full);
  if (fd < 0) return posix_path_error("opendir", *full, errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return posix_error("fdopendir", *full, err);
  }
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      int err = errno;
      ::closedir(d);
      if (err != 0) return posix_error("readdir", *full, err);
      break;
    }
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixDisk::sync_dir_now(const std::string& dir) {
  Result<std::string> full = resolve(dir, /*allow_root=*/true);
  if (!full.is_ok()) return full.status();
  return fsync_dir(*full);
}

Result<bool> PosixDisk::exists_now(const std::string& path) {
  Result<std::string> full = resolve(path, /*allow_root=*/true);
  if (!full.is_ok()) return full.status();
  struct stat st;
  if (::stat(full->c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return posix_error("stat", *full, errno);
}

Result<FileStatus> PosixDisk::file_status_now(const std::string& path) {
  Result<std::string> full = resolve(path, /*allow_root=*/true);
  if (!full.is_ok()) return full.status();
  struct stat st;
  if (::lstat(full->c_str(), &st) != 0) return posix_error("lstat", *full, errno);
  FileKind kind = FileKind::kOther;
  if (S_ISREG(st.st_mode)) kind = FileKind::kRegular;
  if (S_ISDIR(st.st_mode)) kind = FileKind::kDirectory;
  if (S_ISLNK(st.st_mode)) kind = FileKind::kSymlink;
  return FileStatus{kind, static_cast<uint32_t>(st.st_mode & 0777)};
}

}  // namespace quire
