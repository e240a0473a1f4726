#include "cluster/tmpfs_disks.h"

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

constexpr uint64_t kPageBytes = 4096;

Status errno_status(const std::string& what, int err) {
  return Status(
             Code::kUnavailable,
             fmt::format("{}: {}", what, std::error_code(err, std::generic_category()).message()))
      .with("errno", static_cast<uint64_t>(err));
}

// Bytes the file system holds now.
Result<uint64_t> used_bytes(const std::string& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return errno_status("statvfs " + dir, errno);
  return static_cast<uint64_t>(s.f_blocks - s.f_bfree) * s.f_frsize;
}

}  // namespace

Result<std::unique_ptr<TmpfsDisks>> TmpfsDisks::mount(std::vector<std::string> dirs,
                                                      uint64_t size_bytes) {
  std::unique_ptr<TmpfsDisks> disks(new TmpfsDisks({}, size_bytes));
  for (const std::string& dir : dirs) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Status(Code::kInvalidArgument, fmt::format("cannot create {}: {}", dir, ec.message()));
    // Mounted as root: never through a symbolic link, which could put the tmpfs over any
    // directory of the machine.
    if (std::filesystem::is_symlink(std::filesystem::symlink_status(dir, ec)) ||
        !std::filesystem::is_directory(std::filesystem::symlink_status(dir, ec))) {
      return Status(Code::kInvalidArgument,
                    fmt::format("{} is not a directory of its own (a symbolic link?): no tmpfs "
                                "is mounted there",
                                dir));
    }
    const std::string options = fmt::format("size={},mode=0755", size_bytes);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      return errno_status("mount a tmpfs on " + dir + " (needs root with CAP_SYS_ADMIN)", errno);
    }
    disks->dirs_.push_back(dir);  // from here on the destructor unmounts it
  }
  return disks;
}

TmpfsDisks::~TmpfsDisks() {
  if (!leave_mounted_) unmount_all();
}

void TmpfsDisks::unmount_all() {
  for (const std::string& dir : dirs_) {
    if (::umount2(dir.c_str(), 0) != 0) (void)::umount2(dir.c_str(), MNT_DETACH);
  }
  dirs_.clear();
}

Status TmpfsDisks::resize(size_t index, uint64_t bytes) {
  if (index >= dirs_.size()) return Status(Code::kInvalidArgument, "no such disk");
  const std::string options = fmt::format("size={}", bytes);
  if (::mount("tmpfs", dirs_[index].c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
              options.c_str()) != 0) {
    return errno_status(fmt::format("resize the tmpfs on {} to {} bytes", dirs_[index], bytes),
                        errno);
  }
  return Status::ok();
}

Result<uint64_t> TmpfsDisks::fill(size_t index, uint64_t room_bytes) {
  if (index >= dirs_.size()) return Status(Code::kInvalidArgument, "no such disk");
  // The server writes meanwhile: a size below what it holds by then is refused (EINVAL),
  // so a second try leaves more room.
  Status last;
  for (uint64_t extra : {uint64_t{0}, uint64_t{64} << 10}) {
    auto used = used_bytes(dirs_[index]);
    if (!used.is_ok()) return used.status();
    const uint64_t size = (*used + room_bytes + extra + kPageBytes - 1) / kPageBytes * kPageBytes;
    last = resize(index, std::max(size, kPageBytes));
    if (last.is_ok()) return *used;
  }
  return last;
}

Status TmpfsDisks::grow(size_t index) {
  return resize(index, size_bytes_);
}

Status TmpfsDisks::grow_all() {
  Status first;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    Status st = grow(i);
    if (!st.is_ok() && first.is_ok()) first = std::move(st);
  }
  return first;
}

}  // namespace quire::cluster
