// LogLimiter: lets at most one log line through per interval and counts the lines it held
// back, so a peer that repeats an error cannot grow the log faster than one line per
// interval per kind of error. The caller passes the time (the scheduler's monotonic clock,
// virtual in simulation) and writes the line itself, with the count as a "suppressed"
// attribute.
#pragma once

#include <cstdint>
#include <optional>

#include "runtime/time.h"

namespace quire {

class LogLimiter {
 public:
  explicit LogLimiter(Nanos interval) : interval_(interval) {}

  // The number of lines suppressed since the last one let through, when a line may go out
  // at `now`; nullopt (and one more suppressed) when the last one went out less than the
  // interval ago.
  std::optional<uint64_t> admit(MonoTime now) {
    if (now < next_line_at_) {
      suppressed_++;
      return std::nullopt;
    }
    next_line_at_ = now + interval_;
    uint64_t suppressed = suppressed_;
    suppressed_ = 0;
    return suppressed;
  }

 private:
  Nanos interval_;
  MonoTime next_line_at_{};
  uint64_t suppressed_ = 0;
};

}  // namespace quire
