// Helpers for the tests of the real runtime backend.
#pragma once

#include <chrono>
#include <string_view>
#include <utility>

#include "base/log.h"
#include "runtime/real/real_loop.h"
#include "runtime/scheduler.h"
#include "runtime/task.h"

namespace quire::real_test {

inline constexpr NodeId kTestNode = 1;
// Every test drive of the loop ends by this, so a broken test fails instead of hanging.
inline constexpr Nanos kTestTimeout = std::chrono::seconds(30);

// Runs `task` on `loop` until it finishes; false when it did not within `timeout`.
inline bool run_task(RealLoop& loop, Task<void> task, Nanos timeout = kTestTimeout) {
  TaskId id = loop.scheduler().spawn(kTestNode, "test", std::move(task));
  return loop.run_until([&] { return loop.scheduler().is_done(id); }, timeout);
}

// A LogContext for loggers that have no Env behind them.
class FixedLogContext : public LogContext {
 public:
  int64_t log_wall_time_ns() const override { return 0; }
  std::string_view log_task_name() const override { return {}; }
};

}  // namespace quire::real_test
