// Full disks for the real chaos harness (`quire chaos real --disk-full`): each page
// server's data directory becomes a tmpfs of its own, which the nemesis shrinks to what it
// holds (plus a little room) for a while and then grows back. The kernel then answers the
// page server's writes with ENOSPC, as a real full disk would. Needs mount(2): root with
// CAP_SYS_ADMIN. Real-only tooling, like the fault proxies; node code never sees it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace quire::cluster {

class TmpfsDisks {
 public:
  // Mounts a tmpfs of `size_bytes` on each directory (created when missing, and empty).
  // On failure nothing stays mounted.
  static Result<std::unique_ptr<TmpfsDisks>> mount(std::vector<std::string> dirs,
                                                   uint64_t size_bytes);
  ~TmpfsDisks();  // unmounts every one (lazily when still busy)
  TmpfsDisks(const TmpfsDisks&) = delete;
  TmpfsDisks& operator=(const TmpfsDisks&) = delete;

  // Shrinks disk `index` to the bytes it holds plus `room_bytes`; returns what it held.
  Result<uint64_t> fill(size_t index, uint64_t room_bytes);
  // Gives disk `index` its whole size back.
  Status grow(size_t index);
  Status grow_all();
  // Unmounts every disk now (the processes using them must be gone).
  void unmount_all();
  // Leaves the disks mounted for good (a cluster kept running); growing and filling them
  // still works until this object goes.
  void leave_mounted() { leave_mounted_ = true; }
  size_t size() const { return dirs_.size(); }

 private:
  TmpfsDisks(std::vector<std::string> dirs, uint64_t size_bytes)
      : dirs_(std::move(dirs)), size_bytes_(size_bytes) {}
  Status resize(size_t index, uint64_t bytes);

  std::vector<std::string> dirs_;  // mounted ones only
  uint64_t size_bytes_;
  bool leave_mounted_ = false;
};

}  // namespace quire::cluster
