#include "runtime/real/real_loop.h"

#include <csignal>
#include <cstdlib>

#include <gtest/gtest.h>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "real_test_support.h"
#include "runtime/executor.h"
#include "runtime/real/real_clock.h"
#include "runtime/sync.h"

namespace quire {
namespace {

using real_test::kTestNode;
using real_test::kTestTimeout;
using real_test::run_task;

class RealLoopTest : public ::testing::Test {
 protected:
  void TearDown() override { loop.scheduler().destroy_node(kTestNode); }

  // Sleeps `d` and reports how long it took on the loop's timeline, measured from the
  // instant the sleep was based on.
  Task<void> timed_sleep(Nanos d, Nanos* elapsed, Status* result) {
    MonoTime start = exec.now();
    *result = co_await exec.sleep(d);
    *elapsed = loop.now() - start;
  }

  RealLoop loop;
  Executor exec{loop.scheduler(), kTestNode};
};

TEST_F(RealLoopTest, SleepWaitsAtLeastTheRequestedTime) {
  for (Nanos d : {Nanos(0), Nanos(std::chrono::microseconds(300)),
                  Nanos(std::chrono::milliseconds(20)), Nanos(std::chrono::milliseconds(60))}) {
    Nanos elapsed{-1};
    Status result = Status(Code::kIo, "not run");
    ASSERT_TRUE(run_task(loop, timed_sleep(d, &elapsed, &result)));
    EXPECT_TRUE(result.is_ok()) << result.to_string();
    EXPECT_GE(elapsed, d);
    EXPECT_LT(elapsed, std::chrono::seconds(5));
  }
}

TEST_F(RealLoopTest, SchedulerTimeFollowsTheMonotonicClock) {
  MonoTime before = loop.now();
  Nanos elapsed{};
  Status result;
  ASSERT_TRUE(run_task(loop, timed_sleep(std::chrono::milliseconds(10), &elapsed, &result)));
  EXPECT_GE(loop.scheduler().now(), before + std::chrono::milliseconds(10));
  EXPECT_LE(loop.scheduler().now(), loop.now());
}

TEST_F(RealLoopTest, RunUntilReturnsFalseAtTheTimeout) {
  MonoTime start = loop.now();
  EXPECT_FALSE(loop.run_until([] { return false; }, std::chrono::milliseconds(30)));
  Nanos elapsed = loop.now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(30));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(RealLoopTest, RunUntilReturnsTrueWithoutWaitingWhenAlreadyDone) {
  MonoTime start = loop.now();
  EXPECT_TRUE(loop.run_until([] { return true; }, std::chrono::seconds(10)));
  EXPECT_LT(loop.now() - start, std::chrono::seconds(1));
}

Task<void> stop_after(Executor& exec, RealLoop& loop, Nanos d, bool* fired) {
  Status st = co_await exec.sleep(d);
  if (!st.is_ok()) co_return;
  *fired = true;
  loop.stop();
}

TEST_F(RealLoopTest, StopFromATaskEndsRun) {
  bool stopped = false;
  bool backstop = false;
  exec.spawn("stop", stop_after(exec, loop, std::chrono::milliseconds(10), &stopped));
  // Only there so a broken stop() fails the test rather than hanging it.
  exec.spawn("backstop", stop_after(exec, loop, kTestTimeout, &backstop));
  loop.run();
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(backstop);
}

TEST_F(RealLoopTest, StopEndsRunUntilEarly) {
  bool stopped = false;
  exec.spawn("stop", stop_after(exec, loop, std::chrono::milliseconds(10), &stopped));
  MonoTime start = loop.now();
  EXPECT_FALSE(loop.run_until([] { return false; }, kTestTimeout));
  EXPECT_TRUE(stopped);
  EXPECT_LT(loop.now() - start, std::chrono::seconds(5));
  // The stop was consumed: the next run goes on until its own condition.
  EXPECT_FALSE(loop.run_until([] { return false; }, std::chrono::milliseconds(5)));
  EXPECT_EQ(loop.stop_signal(), 0);
}

Task<void> raise_signal(Executor& exec, int signal) {
  (void)co_await exec.sleep(std::chrono::milliseconds(5));
  std::raise(signal);
}

TEST_F(RealLoopTest, WatchedSignalStopsTheLoop) {
  ASSERT_TRUE(loop.watch_signals().is_ok());
  ASSERT_TRUE(loop.watch_signals().is_ok());  // a second call changes nothing
  for (int signal : {SIGTERM, SIGINT}) {
    exec.spawn("raise", raise_signal(exec, signal));
    MonoTime start = loop.now();
    EXPECT_FALSE(loop.run_until([] { return false; }, kTestTimeout));
    EXPECT_EQ(loop.stop_signal(), signal);
    EXPECT_LT(loop.now() - start, std::chrono::seconds(5));
  }
}

Task<void> yield_until(Executor& exec, const bool* flag, uint64_t limit, uint64_t* yields) {
  while (!*flag && *yields < limit) {
    (void)co_await exec.yield();
    ++*yields;
  }
}

Task<void> set_after(Executor& exec, Nanos d, bool* flag) {
  (void)co_await exec.sleep(d);
  *flag = true;
}

// A task that keeps yielding must not keep timers (or I/O) from ever running.
TEST_F(RealLoopTest, YieldingTaskDoesNotStarveTimers) {
  bool flag = false;
  uint64_t yields = 0;
  constexpr uint64_t kYieldsMax = 50'000'000;
  exec.spawn("timer", set_after(exec, std::chrono::milliseconds(5), &flag));
  ASSERT_TRUE(run_task(loop, yield_until(exec, &flag, kYieldsMax, &yields)));
  EXPECT_TRUE(flag);
  EXPECT_LT(yields, kYieldsMax);
}

// Works `steps` steps of `step` each on the CPU, yielding between them; *done counts the
// steps finished.
Task<void> busy_steps(RealLoop& loop, Executor& exec, int steps, Nanos step, int* done) {
  for (int i = 0; i < steps; i++) {
    const MonoTime until = loop.now() + step;
    while (loop.now() < until) {
    }
    *done = i + 1;
    (void)co_await exec.yield();
  }
}

// A task that works in steps and yields between them resumes within the loop's turn; the
// turn still ends after kTurnTimeMax, so the network (an Asio handler) runs between its
// steps, not after all of them (a standby's reads waited out a 22-65 ms ingest prune).
TEST_F(RealLoopTest, ATaskWorkingInYieldingStepsLetsTheNetworkRunBetweenThem) {
  int done = 0;
  int ran_at = -1;
  asio::post(loop.io(), [&] { ran_at = done; });
  ASSERT_TRUE(run_task(loop, busy_steps(loop, exec, 20, std::chrono::milliseconds(2), &done)));
  EXPECT_EQ(done, 20);
  ASSERT_GE(ran_at, 0);
  EXPECT_LE(ran_at, 2);  // one step is more than a turn's time
}

Task<void> idle_wait(Executor& exec, RealLoop& loop, Nanos max_wait, Nanos* waited) {
  const MonoTime start = loop.now();
  (void)co_await exec.yield_idle(max_wait);
  *waited = loop.now() - start;
}

// On a quiet loop an idle wait resumes at once, not at its deadline.
TEST_F(RealLoopTest, AnIdleWaitOnAQuietLoopResumesAtOnce) {
  Nanos waited{-1};
  ASSERT_TRUE(run_task(loop, idle_wait(exec, loop, std::chrono::seconds(5), &waited)));
  EXPECT_GE(waited, Nanos(0));
  EXPECT_LT(waited, std::chrono::seconds(1));
}

// A task that keeps the loop busy in yielding steps: an idle wait does not resume between
// its steps, only at its own deadline (short) or once the busy task is done (long).
TEST_F(RealLoopTest, AnIdleWaitWaitsForTheBusyTaskOrItsDeadline) {
  for (const bool short_deadline : {true, false}) {
    int done = 0;
    Nanos waited{-1};
    int done_when_idle_ran = -1;
    const Nanos max_wait =
        short_deadline ? Nanos(std::chrono::milliseconds(10)) : Nanos(std::chrono::seconds(5));
    auto idle = [&]() -> Task<void> {
      co_await idle_wait(exec, loop, max_wait, &waited);
      done_when_idle_ran = done;
    };
    auto idle_task = idle();
    exec.spawn("idle", std::move(idle_task));
    ASSERT_TRUE(run_task(loop, busy_steps(loop, exec, 40, std::chrono::milliseconds(1), &done)));
    ASSERT_TRUE(loop.run_until([&] { return done_when_idle_ran >= 0; }, kTestTimeout));
    if (short_deadline) {
      EXPECT_GE(waited, std::chrono::milliseconds(10));
      EXPECT_LT(done_when_idle_ran, 40);  // it did not wait for the busy task
    } else {
      EXPECT_EQ(done_when_idle_ran, 40);
      EXPECT_LT(waited, std::chrono::seconds(5));
    }
  }
}

Task<void> wait_on(WaitQueue& q, Deadline deadline, Status* result) {
  *result = co_await q.wait(deadline);
}

TEST_F(RealLoopTest, WaitDeadlineFiresOnTheRealClock) {
  WaitQueue q(loop.scheduler());
  Status result;
  MonoTime start = loop.now();
  ASSERT_TRUE(run_task(loop, wait_on(q, loop.now() + std::chrono::milliseconds(20), &result)));
  EXPECT_EQ(result.code(), Code::kDeadlineExceeded);
  EXPECT_GE(loop.now() - start, std::chrono::milliseconds(20));
}

TEST(RealClockTest, MonotonicIsTheLoopTimelineAndWallCarriesTheOffset) {
  RealLoop loop;
  RealClock clock(loop);
  MonoTime a = clock.monotonic_now();
  MonoTime b = clock.monotonic_now();
  EXPECT_LE(a, b);
  EXPECT_GE(a, loop.scheduler().now());

  auto system_ns = [] {
    return std::chrono::duration_cast<Nanos>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  int64_t before = system_ns();
  int64_t wall = clock.wall_now_ns();
  int64_t after = system_ns();
  EXPECT_GE(wall, before);
  EXPECT_LE(wall, after);

  clock.set_wall_offset(std::chrono::hours(1));
  EXPECT_EQ(clock.wall_offset(), std::chrono::hours(1));
  before = system_ns();
  wall = clock.wall_now_ns();
  after = system_ns();
  int64_t hour_ns = std::chrono::duration_cast<Nanos>(std::chrono::hours(1)).count();
  EXPECT_GE(wall, before + hour_ns);
  EXPECT_LE(wall, after + hour_ns);
}

}  // namespace
}  // namespace quire
