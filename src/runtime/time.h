// Time as the runtime sees it: durations in nanoseconds and instants on the scheduler's
// monotonic timeline (virtual in simulation, CLOCK_MONOTONIC in real mode).
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>

namespace quire {

using Nanos = std::chrono::nanoseconds;

// Whole microseconds, for log attributes and reports.
inline int64_t to_micros(Nanos d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}
using namespace std::chrono_literals;

// An instant on the monotonic timeline, in nanoseconds since the timeline's origin.
struct MonoTime {
  int64_t ns = 0;

  static constexpr MonoTime never() { return MonoTime{std::numeric_limits<int64_t>::max()}; }
  constexpr bool is_never() const { return ns == std::numeric_limits<int64_t>::max(); }
  constexpr auto operator<=>(const MonoTime&) const = default;

  // Saturates at never(), so `now + huge` never wraps into the past.
  constexpr MonoTime operator+(Nanos d) const {
    if (is_never()) return never();
    int64_t dn = d.count();
    if (dn > 0 && ns > std::numeric_limits<int64_t>::max() - dn) return never();
    return MonoTime{ns + dn};
  }
  constexpr Nanos operator-(MonoTime other) const { return Nanos(ns - other.ns); }
  constexpr double seconds() const { return static_cast<double>(ns) / 1e9; }
};

// A deadline is an instant; MonoTime::never() means "wait as long as it takes".
using Deadline = MonoTime;

}  // namespace quire
