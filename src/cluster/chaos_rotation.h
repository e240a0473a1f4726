// The real chaos harness's rotation driver: on whichever node is the primary,
// QUIRE.ROTATEKEK <gap-ms> every `rotation_every_ms` (the gap drawn up to
// `rotation_gap_max_ms`), QUIRE.ROTATECMK after every `cmk_every` KEK rotations, and
// QUIRE.CHECKPOINT every `checkpoint_every_ms` and once more shortly before each rotation's
// T2. That last checkpoint is the report's race: taken between T1 and T2 it carries the
// keystore of the previous KEK, and a standby that applies T2 before it picks the
// checkpoint up finds a stale keystore (policy abort: the report's SIGABRT).
// Two threads (the rotation blocks for its gap); every command waits at most kAdminTimeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "cluster/chaos_schedule.h"
#include "cluster/chaos_workload.h"
#include "cluster/stop_signal.h"

namespace quire::cluster {

inline constexpr auto kAdminTimeout = std::chrono::seconds(10);

struct RotationCounts {
  std::atomic<uint64_t> kek_rotations{0};
  std::atomic<uint64_t> kek_failures{0};
  std::atomic<uint64_t> cmk_rotations{0};
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<uint64_t> checkpoints_in_gap{0};
  std::atomic<uint64_t> checkpoint_failures{0};
};

class RotationDriver {
 public:
  RotationDriver(PrimaryLocator& locator, const RealChaosPlan& plan, uint64_t seed)
      : locator_(locator), plan_(plan), seed_(seed) {}
  ~RotationDriver() { stop(); }
  void start();
  void stop();  // waits for both threads (at most kAdminTimeout)
  const RotationCounts& counts() const { return counts_; }

 private:
  void run_rotations();
  void run_checkpoints();

  PrimaryLocator& locator_;
  RealChaosPlan plan_;
  uint64_t seed_;
  StopSignal stop_;
  RotationCounts counts_;
  std::mutex mu_;
  // When the running rotation's T2 is due (the checkpointer aims just before it).
  std::chrono::steady_clock::time_point gap_end_{};
  bool gap_open_ = false;
  uint64_t rotation_id_ = 0;
  std::thread rotator_;
  std::thread checkpointer_;
};

}  // namespace quire::cluster
