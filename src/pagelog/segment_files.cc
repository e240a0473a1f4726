#include "pagelog/segment_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "pagelog/segment_format.h"

namespace quire {

namespace {

constexpr const char* kSegmentsDir = "segments";

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symlink";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

// Reads [0, size) of an open regular file; stops early if the file shrank.
Result<Bytes> read_open_file(int fd, const std::string& path, uint64_t size) {
  Bytes bytes(size);
  uint64_t done = 0;
  // Each round reads at least one byte or ends the loop, so it runs at most `size` times.
  while (done < size) {
    ssize_t n = ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    if (n == 0) break;  // shrank under us: scan what there is
    done += static_cast<uint64_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace

Result<std::vector<SegmentFile>> list_segment_files(const std::string& data_dir) {
  std::string dir = data_dir + "/" + kSegmentsDir;
  std::error_code ec;
  std::vector<SegmentFile> out;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return io_error(fmt::format("cannot read {}: {}", dir, ec.message()));
  for (std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto number = parse_segment_file_name(name);
    if (number.is_ok()) out.push_back({*number, name, dir + "/" + name});
  }
  if (ec) return io_error(fmt::format("cannot read {}: {}", dir, ec.message()));
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.number < b.number; });
  return out;
}

Result<Bytes> read_segment_file(const std::string& path) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0)
    return io_error(fmt::format("cannot stat {}: {}", path, std::strerror(errno)));
  if (!S_ISREG(link.st_mode)) {
    return Status(Code::kInvalidArgument, fmt::format("{} is {}; a segment must be a regular file",
                                                      path, file_kind(link.st_mode)));
  }
  // O_NONBLOCK and O_NOFOLLOW: should the path be swapped for a FIFO or a symlink after the
  // check, the open neither blocks nor follows it, and fstat below refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return io_error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  struct stat st {};
  Result<Bytes> out = Bytes();
  if (::fstat(fd, &st) != 0) {
    out = io_error(fmt::format("cannot stat {}: {}", path, std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    out = Status(Code::kInvalidArgument, fmt::format("{} is {}; a segment must be a regular file",
                                                     path, file_kind(st.st_mode)));
  } else if (static_cast<uint64_t>(st.st_size) > kSegmentFileBytesMax) {
    out = io_error(fmt::format("{} holds {} bytes, more than a segment can", path,
                               static_cast<uint64_t>(st.st_size)));
  } else {
    out = read_open_file(fd, path, static_cast<uint64_t>(st.st_size));
  }
  ::close(fd);
  return out;
}

}  // namespace quire
