// The simulated disk of one node. It outlives the node's crashes: a restarted node gets
// the same SimDiskStore back, holding whatever the crash left.
//
// Every file has a durable image and a volatile view (what reads see), plus the list of
// writes and truncates since its last sync. The directory has a durable namespace and a
// volatile one, made durable per directory by sync_dir(). A crash resolves the unsynced
// state by a mode: lose all of it, keep all of it, or keep a random subset in which every
// 512-byte sector holds a state it really had at some moment since the last sync (a torn
// write) and the size is one the file really had. A failed fsync resolves the file's
// unsynced writes the same random way into the durable image while reads keep seeing the
// volatile view, as Linux does after a writeback error.
//
// Permission bits belong to the file (its inode): set at creation from OpenOptions, kept
// across a rename, and lasting as long as the file does, crashes included. A directory has
// them too (0755 from make_dirs; the data directory itself always 0755). Of all the bits, only
// a directory's owner-write bit (0200) is enforced, as the kernel does for a process without
// CAP_DAC_OVERRIDE: without it, creating a file, removing or renaming one, or making a
// directory in it is refused with InvalidArgument ("permission denied"), as PosixDisk reports
// EACCES.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/env.h"
#include "runtime/sim/sim_random.h"

namespace quire {

enum class UnsyncedOnCrash : uint8_t { kLose, kKeep, kRandomSubset };
inline constexpr size_t kSimSectorBytes = 512;

struct DiskFaults {
  double read_eio = 0;
  double write_eio = 0;
  double sync_eio = 0;
  Nanos latency_min = 2us;
  Nanos latency_max = 20us;
  Nanos sync_latency_min = 100us;
  Nanos sync_latency_max = 300us;
  uint64_t capacity_bytes = 0;  // 0: unlimited
};

struct SimDiskStats {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t syncs = 0;
  uint64_t injected_eio = 0;
  uint64_t crashes = 0;
  uint64_t bits_flipped = 0;
};

class SimDiskStore {
 public:
  // Called with every byte range a write or append puts on the disk, torn or not.
  using WriteObserver =
      std::function<void(const std::string& path, uint64_t offset, ByteView data)>;

  // The durable state alone, for putting an old disk back ("restart stale").
  struct Snapshot {
    std::map<std::string, Bytes> files;
    std::set<std::string> dirs;
    std::map<std::string, uint32_t> modes;      // per file; a file missing here gets 0644
    std::map<std::string, uint32_t> dir_modes;  // per directory; one missing here gets 0755
  };

  SimDiskStore(uint64_t seed, std::string name);

  void set_faults(const DiskFaults& f) { faults_ = f; }
  const DiskFaults& faults() const { return faults_; }
  void set_write_observer(WriteObserver o) { observer_ = std::move(o); }
  const SimDiskStats& stats() const { return stats_; }

  // The node-facing Disk. `exec` is the running incarnation's executor (for latency).
  std::unique_ptr<Disk> make_disk(Executor& exec);

  // Resolves every unsynced write and directory change by `mode`; afterwards the volatile
  // view equals the durable image.
  void crash(UnsyncedOnCrash mode);
  // Replaces the disk with an empty one (a server restarted on a new disk).
  void wipe();
  Snapshot snapshot() const;
  void restore(const Snapshot& s);
  // Flips one bit of the file's durable image and volatile view. False if out of range.
  bool flip_bit(const std::string& path, uint64_t offset, int bit);
  // chmod by an operator, durable at once: sets the permission bits (mode & 0777) of the
  // file or directory the volatile namespace names. False when there is no such file or
  // directory.
  bool set_permissions(const std::string& path, uint32_t mode);

  // Inspection for checkers and tests: no latency, no faults.
  std::optional<Bytes> durable_content(const std::string& path) const;
  std::optional<Bytes> current_content(const std::string& path) const;
  std::vector<std::string> current_files() const;
  std::vector<std::string> durable_files() const;

  // Used by the node-facing types.
  struct Inode {
    Bytes durable;
    Bytes current;
    uint32_t mode = 0644;  // permission bits
    struct Op {
      bool truncate = false;
      uint64_t offset = 0;  // for a truncate: the new size
      Bytes data;
    };
    std::vector<Op> pending;
  };
  struct NsOp {
    enum Kind : uint8_t { kCreate, kUnlink, kRename, kMkdir } kind;
    std::string path;
    std::string to;
    uint64_t inode = 0;
  };
  struct Namespace {
    std::map<std::string, uint64_t> files;
    std::set<std::string> dirs;
  };

  Random& rng() { return rng_; }
  SimDiskStats& mutable_stats() { return stats_; }
  Inode* inode(uint64_t id);
  Namespace& current_ns() { return current_; }
  // A directory's permission bits, and whether the node may change its entries.
  uint32_t dir_mode(const std::string& dir) const;
  bool dir_writable(const std::string& dir) const { return (dir_mode(dir) & 0200) != 0; }
  uint64_t new_inode(uint32_t mode);
  void record_ns(NsOp op);
  void sync_dir(const std::string& dir);
  void resolve_randomly(Inode& inode);
  uint64_t used_bytes() const;
  void observe(const std::string& path, uint64_t offset, ByteView data) {
    if (observer_) observer_(path, offset, data);
  }

 private:
  void apply_ns(Namespace& ns, const NsOp& op);
  void collect_garbage();

  SimRandom rng_;
  std::string name_;
  DiskFaults faults_;
  WriteObserver observer_;
  SimDiskStats stats_;
  std::map<uint64_t, Inode> inodes_;
  uint64_t next_inode_ = 1;
  Namespace current_;
  Namespace durable_;
  std::vector<NsOp> pending_ns_;
  // Directories whose bits an operator changed; the rest have 0755.
  std::map<std::string, uint32_t> dir_modes_;
};

// The parent directory of a relative path ("" for the data directory itself).
std::string parent_dir(const std::string& path);

}  // namespace quire
