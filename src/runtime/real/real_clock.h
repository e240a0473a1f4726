// RealClock: the real process's clocks. The monotonic clock is the loop's CLOCK_MONOTONIC
// timeline (the one deadlines use); wall time is the system clock plus a per-node offset,
// which lets one process run nodes whose clocks disagree.
#pragma once

#include <cstdint>

#include "runtime/env.h"
#include "runtime/real/real_loop.h"

namespace quire {

class RealClock : public Clock {
 public:
  explicit RealClock(const RealLoop& loop, Nanos wall_offset = Nanos(0))
      : loop_(loop), wall_offset_(wall_offset) {}

  // A live reading, never behind the scheduler's now().
  MonoTime monotonic_now() const override { return loop_.now(); }
  // Unix epoch nanoseconds from the system clock, plus the offset.
  int64_t wall_now_ns() const override;

  void set_wall_offset(Nanos offset) { wall_offset_ = offset; }
  Nanos wall_offset() const { return wall_offset_; }

 private:
  const RealLoop& loop_;
  Nanos wall_offset_;
};

}  // namespace quire
