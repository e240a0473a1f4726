// A simulated node's clock: the monotonic clock is the world's virtual timeline; wall time
// starts at a fixed epoch and carries the node's offset and drift, which the nemesis may
// change (clock skew).
#pragma once

#include <cstdint>

#include "runtime/env.h"
#include "runtime/scheduler.h"

namespace quire {

// 2026-01-01T00:00:00Z: where every simulated wall clock starts.
inline constexpr int64_t kSimWallEpochNs = 1767225600LL * 1'000'000'000LL;

class SimClock : public Clock {
 public:
  explicit SimClock(const Scheduler& s) : s_(s) {}
  MonoTime monotonic_now() const override { return s_.now(); }
  int64_t wall_now_ns() const override {
    int64_t mono = s_.now().ns;
    auto drift = static_cast<int64_t>(static_cast<double>(mono) * drift_ppm_ / 1e6);
    return kSimWallEpochNs + mono + drift + offset_ns_;
  }
  void set_offset_ns(int64_t offset) { offset_ns_ = offset; }
  void set_drift_ppm(double ppm) { drift_ppm_ = ppm; }
  int64_t offset_ns() const { return offset_ns_; }
  double drift_ppm() const { return drift_ppm_; }

 private:
  const Scheduler& s_;
  int64_t offset_ns_ = 0;
  double drift_ppm_ = 0;
};

}  // namespace quire
