// Offline access to a page server's segment files, for the tools that read a data
// directory without a server (`quire pl verify`, `quire pl dump`). Plain POSIX reads; node
// code never uses this: it reaches files only through the Disk seam.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/status.h"

namespace quire {

struct SegmentFile {
  uint64_t number = 0;
  std::string name;
  std::string path;
};

// A segment is at most 64 MiB plus one batch; a file far larger is not one to load whole.
inline constexpr uint64_t kSegmentFileBytesMax = uint64_t{1} << 30;

// The segment files of DATA_DIR/segments, oldest first (names that are not segment names
// are skipped). Io naming the directory when it cannot be read.
Result<std::vector<SegmentFile>> list_segment_files(const std::string& data_dir);

// The whole content of one segment file. Refused with InvalidArgument, before anything is
// read, when the path is not a regular file (a FIFO would block the reader forever, a
// symlink could point anywhere); Io when it cannot be read or is larger than
// kSegmentFileBytesMax. A file that shrinks while being read yields what there was.
Result<Bytes> read_segment_file(const std::string& path);

}  // namespace quire
