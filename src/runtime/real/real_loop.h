// RealLoop: the one event loop of a real process. It joins two loops into one thread: the
// Scheduler (tasks, wait slots, deadlines) on a CLOCK_MONOTONIC timeline, and an Asio
// io_context (sockets, signals) that sleeps in epoll until the scheduler's next event.
//
// Everything created on a loop (environments, listeners, connections, tasks) must be
// destroyed before the loop. Every method must be called from the loop's own thread.
#pragma once

#include <functional>
#include <memory>

#include "base/status.h"
#include "runtime/scheduler.h"
#include "runtime/time.h"

namespace asio {
class io_context;
}  // namespace asio

namespace quire {

class RealLoop {
 public:
  // The longest the loop sleeps in epoll without looking at the clock again.
  static constexpr Nanos kIdleWaitMax = std::chrono::milliseconds(100);
  // Scheduler events run per turn before the loop polls the network again, so a task
  // that keeps yielding cannot starve I/O.
  static constexpr size_t kEventsPerTurnMax = 4096;
  // And the longest a turn runs events before it polls the network: a task that works in
  // steps and yields between them (a retention drop, an ingest prune) resumes within the
  // same turn, so without this bound the network waited for all its steps.
  static constexpr Nanos kTurnTimeMax = std::chrono::milliseconds(1);

  RealLoop();
  ~RealLoop();
  RealLoop(const RealLoop&) = delete;
  RealLoop& operator=(const RealLoop&) = delete;

  Scheduler& scheduler();
  // The Asio context the loop polls. Code that includes Asio to use it must be compiled with
  // the runtime's ASIO_STANDALONE and ASIO_NO_DEPRECATED, or the two disagree on its layout.
  asio::io_context& io();

  // CLOCK_MONOTONIC, in nanoseconds since the loop was created: the scheduler's timeline.
  // Never behind scheduler().now().
  MonoTime now() const;

  // Runs tasks and I/O until stop() is called. Not reentrant: never call it from a task.
  void run();
  // Runs until done() returns true (true), or until `timeout` passes or stop() is called
  // (false). done() is checked before the first turn and after every turn.
  bool run_until(const std::function<bool()>& done, Nanos timeout);
  // Makes the running (or else the next) run()/run_until() return after its current turn.
  // Call it from a task or an Asio handler on the loop's thread.
  void stop();
  bool stop_requested() const { return stop_requested_; }

  // Makes SIGINT and SIGTERM call stop() (through Asio, so no work happens in the signal
  // handler), and ignores SIGPIPE. Unavailable when the signals cannot be watched.
  Status watch_signals();
  // The last signal that stopped the loop, or 0.
  int stop_signal() const { return stop_signal_; }

 private:
  struct Io;

  // Runs the scheduler events that are due (at most kEventsPerTurnMax, and none started
  // after kTurnTimeMax), then every ready Asio handler; then, when nothing is due, wakes
  // one idle wait (Executor::yield_idle).
  void run_ready();
  // Sleeps in epoll until I/O, the scheduler's next event, `wake_by` or kIdleWaitMax,
  // whichever comes first; runs at most one Asio handler.
  void wait_for_events(MonoTime wake_by);
  void arm_signal_wait();

  // Declared first so it is destroyed last: the scheduler's tasks may still own sockets.
  std::unique_ptr<Io> io_;
  Scheduler scheduler_;
  bool stop_requested_ = false;
  int stop_signal_ = 0;
};

}  // namespace quire
