#include "runtime/scheduler.h"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/executor.h"
#include "runtime/sync.h"

namespace quire {
namespace {

struct Harness {
  Scheduler s;
  Executor exec{s, 1};
  Executor other{s, 2};
  void run() {
    while (s.run_next()) {
    }
  }
};

Task<void> record_after(Executor& exec, Nanos d, std::vector<std::string>& out, std::string name) {
  Status st = co_await exec.sleep(d);
  out.push_back(name + (st.is_ok() ? "" : ":" + std::string(code_name(st.code()))));
}

TEST(Scheduler, SameTimeRunsInSpawnOrderAndTimersByTime) {
  Harness h;
  std::vector<std::string> out;
  h.exec.spawn("a", record_after(h.exec, 20ms, out, "a"));
  h.exec.spawn("b", record_after(h.exec, 10ms, out, "b"));
  h.exec.spawn("c", record_after(h.exec, 10ms, out, "c"));
  h.exec.spawn("d", record_after(h.exec, 0ms, out, "d"));
  h.run();
  EXPECT_EQ(out, (std::vector<std::string>{"d", "b", "c", "a"}));
  EXPECT_EQ(h.s.now().ns, Nanos(20ms).count());
  EXPECT_EQ(h.s.live_tasks(), 0u);
}

Task<int> add_one(int x) {
  co_return x + 1;
}

Task<int> chain(int depth) {
  int v = 0;
  for (int i = 0; i < depth; ++i) v = co_await add_one(v);
  co_return v;
}

Task<void> store(Task<int> t, int& out) {
  out = co_await std::move(t);
}

// A million awaits in a row that complete without suspending: the awaiting coroutine
// continues in place each time, so the stack does not grow, in every build (the sanitizer
// build has no tail calls to lean on).
constexpr int kChainDepth = 1'000'000;

TEST(Scheduler, AwaitingTasksReturnsValuesWithoutGrowingTheStack) {
  Harness h;
  int result = -1;
  h.exec.spawn("chain", store(chain(kChainDepth), result));
  h.run();
  EXPECT_EQ(result, kChainDepth);
}

Task<void> sleep_then(Executor& exec, Nanos d, Status& out) {
  out = co_await exec.sleep(d);
}

TEST(Scheduler, CancelEndsTheCurrentWaitWithCancelled) {
  Harness h;
  Status st;
  TaskId id = h.exec.spawn("sleeper", sleep_then(h.exec, 10s, st));
  h.s.run_due();  // starts and parks
  EXPECT_FALSE(h.s.is_done(id));
  h.exec.cancel(id);
  h.run();
  EXPECT_EQ(st.code(), Code::kCancelled);
  EXPECT_TRUE(h.s.is_done(id));
  // The stale 10 s timer never ran anything, and time did not jump to it.
  EXPECT_LT(h.s.now().ns, Nanos(10s).count());
}

TEST(Scheduler, CancelBeforeStartIsSeenAtTheFirstWait) {
  Harness h;
  Status st;
  TaskId id = h.exec.spawn("sleeper", sleep_then(h.exec, 1s, st));
  h.exec.cancel(id);
  h.run();
  EXPECT_EQ(st.code(), Code::kCancelled);
}

Task<void> wait_on(WaitQueue& q, Deadline d, Status& out, MonoTime& when, Scheduler& s) {
  out = co_await q.wait(d);
  when = s.now();
}

TEST(Scheduler, DeadlineEndsAWaitAtExactlyTheDeadline) {
  Harness h;
  WaitQueue q(h.s);
  Status st;
  MonoTime when;
  h.exec.spawn("waiter", wait_on(q, MonoTime{} + 250ms, st, when, h.s));
  h.run();
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(when.ns, Nanos(250ms).count());
  EXPECT_TRUE(st.retriable());
}

TEST(Scheduler, NotifyBeatsTheDeadlineAndTheTimerIsIgnored) {
  Harness h;
  WaitQueue q(h.s);
  Status st = cancelled("unset");
  MonoTime when;
  h.exec.spawn("waiter", wait_on(q, MonoTime{} + 250ms, st, when, h.s));
  h.s.post_at(kWorldNode, MonoTime{} + 100ms, [&] { q.notify_all(); });
  h.run();
  EXPECT_TRUE(st.is_ok());
  EXPECT_EQ(when.ns, Nanos(100ms).count());
}

Task<void> joiner(Executor& exec, TaskId target, Deadline d, Status& out, MonoTime& when) {
  out = co_await exec.join(target, d);
  when = exec.now();
}

TEST(Scheduler, JoinWaitsForCompletionOrDeadline) {
  Harness h;
  Status slept, joined, timed_out;
  MonoTime joined_at, timed_out_at;
  TaskId t = h.exec.spawn("worker", sleep_then(h.exec, 300ms, slept));
  h.exec.spawn("join", joiner(h.exec, t, Deadline::never(), joined, joined_at));
  h.exec.spawn("join-short", joiner(h.exec, t, MonoTime{} + 100ms, timed_out, timed_out_at));
  h.run();
  EXPECT_TRUE(joined.is_ok());
  EXPECT_EQ(joined_at.ns, Nanos(300ms).count());
  EXPECT_EQ(timed_out.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(timed_out_at.ns, Nanos(100ms).count());
}

struct Tracker {
  int* destroyed;
  ~Tracker() { ++*destroyed; }
};

Task<void> inner_forever(Executor& exec, int* destroyed, int* resumed) {
  Tracker t{destroyed};
  while (true) {
    Status st = co_await exec.sleep(1ms);
    ++*resumed;
    if (!st.is_ok()) co_return;
  }
}

Task<void> outer_forever(Executor& exec, int* destroyed, int* resumed) {
  Tracker t{destroyed};
  co_await inner_forever(exec, destroyed, resumed);
}

TEST(Scheduler, DestroyNodeDestroysEveryFrameWithoutResumingAndSparesOtherNodes) {
  Harness h;
  int destroyed = 0, resumed = 0, other_resumed = 0, other_destroyed = 0;
  h.exec.spawn("a", outer_forever(h.exec, &destroyed, &resumed));
  h.exec.spawn("b", outer_forever(h.exec, &destroyed, &resumed));
  h.other.spawn("c", outer_forever(h.other, &other_destroyed, &other_resumed));
  Status joined = cancelled("unset");
  MonoTime joined_at;
  // A task on node 2 joins a task of node 1 that will die.
  TaskId victim = h.exec.spawn("victim", outer_forever(h.exec, &destroyed, &resumed));
  h.other.spawn("joiner", joiner(h.other, victim, Deadline::never(), joined, joined_at));
  while (h.s.now() < MonoTime{} + 10ms) h.s.run_next();
  int resumed_before = resumed;
  h.s.destroy_node(1);
  EXPECT_EQ(destroyed, 6);  // two frames per task, three tasks
  EXPECT_EQ(h.s.live_tasks(1), 0u);
  EXPECT_EQ(resumed, resumed_before);  // destroyed, not resumed with an error
  int other_before = other_resumed;
  while (h.s.now() < MonoTime{} + 20ms) h.s.run_next();
  EXPECT_EQ(resumed, resumed_before);  // stale timers of node 1 did nothing
  EXPECT_GT(other_resumed, other_before);
  EXPECT_TRUE(joined.is_ok());
  EXPECT_EQ(h.s.live_tasks(2), 1u);
  h.s.destroy_node(2);
  EXPECT_EQ(other_destroyed, 2);
}

Task<void> locker(AsyncMutex& mu, Executor& exec, std::vector<int>& order, int id) {
  Status st = co_await mu.lock();
  if (!st.is_ok()) co_return;
  MutexGuard g(mu);
  order.push_back(id);
  (void)co_await exec.sleep(1ms);
}

TEST(Scheduler, MutexIsFifoAndExclusive) {
  Harness h;
  AsyncMutex mu(h.s);
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) h.exec.spawn("locker", locker(mu, h.exec, order, i));
  h.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(mu.locked());
  EXPECT_EQ(h.s.now().ns, Nanos(5ms).count());  // one after another
}

Task<void> lock_with_deadline(AsyncMutex& mu, Deadline d, Status& out) {
  out = co_await mu.lock(d);
}

TEST(Scheduler, MutexWaitHonoursDeadlineAndSkipsTimedOutWaiters) {
  Harness h;
  AsyncMutex mu(h.s);
  std::vector<int> order;
  Status late;
  h.exec.spawn("holder", locker(mu, h.exec, order, 0));
  h.exec.spawn("impatient", lock_with_deadline(mu, MonoTime{} + 500us, late));
  h.exec.spawn("patient", locker(mu, h.exec, order, 1));
  h.run();
  EXPECT_EQ(late.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_FALSE(mu.locked());
}

Task<void> wait_event(Event& e, Status& out) {
  out = co_await e.wait();
}

TEST(Scheduler, EventIsLatched) {
  Harness h;
  Event e(h.s);
  Status before = cancelled("unset"), after = cancelled("unset");
  h.exec.spawn("before", wait_event(e, before));
  h.s.run_due();
  e.set();
  h.exec.spawn("after", wait_event(e, after));
  h.run();
  EXPECT_TRUE(before.is_ok());
  EXPECT_TRUE(after.is_ok());
}

Task<void> noisy(Executor& exec, uint64_t seed, int rounds) {
  uint64_t x = seed;
  for (int i = 0; i < rounds; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    (void)co_await exec.sleep(Nanos((x >> 33) % 1000));
  }
}

uint64_t run_noisy(uint64_t seed) {
  Harness h;
  for (int i = 0; i < 20; ++i) h.exec.spawn("n", noisy(h.exec, seed * 100 + i, 100));
  h.run();
  EXPECT_GE(h.s.events_run(), 2000u);
  return h.s.trace_hash();
}

TEST(Scheduler, TraceHashIsAFunctionOfTheSchedule) {
  EXPECT_EQ(run_noisy(1), run_noisy(1));
  EXPECT_NE(run_noisy(1), run_noisy(2));
}

Task<void> throws() {
  throw std::runtime_error("boom");
  co_return;
}

// SlotQueue against a std::deque model: the same slots in the same order under any mix of
// pushes, pops, erasures and take-alls, and a queue that never empties stays bounded.
// Yields `n` times, recording each turn.
Task<void> yield_steps(Executor& exec, int n, std::vector<std::string>& out, std::string name) {
  for (int i = 0; i < n; i++) {
    (void)co_await exec.yield();
    out.push_back(name + std::to_string(i));
  }
}

Task<void> idle_then(Executor& exec, Nanos max_wait, std::vector<std::string>& out,
                     std::string name, MonoTime* at = nullptr) {
  Status st = co_await exec.yield_idle(max_wait);
  if (at) *at = exec.now();
  out.push_back(name + (st.is_ok() ? "" : ":" + std::string(code_name(st.code()))));
}

// A driver that offers the idle waits a turn whenever nothing is due (as SimWorld and
// RealLoop do).
void run_with_idle(Scheduler& s) {
  while (true) {
    s.wake_idle();
    if (!s.run_next()) break;
  }
}

TEST(Scheduler, AnIdleWaitResumesOnlyOnceNothingElseIsDueInItsOrder) {
  Harness h;
  std::vector<std::string> out;
  MonoTime at = MonoTime::never();
  h.exec.spawn("idle-a", idle_then(h.exec, 1s, out, "idle-a", &at));
  h.exec.spawn("busy-b", yield_steps(h.exec, 3, out, "b"));
  h.exec.spawn("idle-c", idle_then(h.exec, 1s, out, "idle-c"));
  h.other.spawn("busy-d", yield_steps(h.other, 2, out, "d"));
  run_with_idle(h.s);
  // Every regular step first, then the idle waits one at a time, oldest first; none waited
  // for its deadline.
  EXPECT_EQ(out, (std::vector<std::string>{"b0", "d0", "b1", "d1", "b2", "idle-a", "idle-c"}));
  EXPECT_EQ(at, MonoTime{});
  EXPECT_EQ(h.s.idle_waiters(), 0u);
}

TEST(Scheduler, AnIdleWaitEndsAtItsMaxWaitWhenTheLoopIsNeverIdle) {
  Harness h;
  std::vector<std::string> out;
  MonoTime at = MonoTime::never();
  h.exec.spawn("idle", idle_then(h.exec, 5ms, out, "idle", &at));
  h.run();  // a driver that never offers idle turns: only the deadline ends the wait
  EXPECT_EQ(out, (std::vector<std::string>{"idle"}));
  EXPECT_EQ(at, MonoTime{} + 5ms);
  // Its entry is left behind, ended; offering an idle turn now wakes nothing.
  EXPECT_FALSE(h.s.wake_idle());
  EXPECT_EQ(h.s.idle_waiters(), 0u);
}

Task<void> idle_steps(Executor& exec, int n, Nanos max_wait, size_t* most, Scheduler& s) {
  for (int i = 0; i < n; i++) {
    (void)co_await exec.yield_idle(max_wait);
    *most = std::max(*most, s.idle_waiters());
  }
}

// A loop that is never idle: every idle wait ends at its deadline, and the ended ones do
// not pile up in the scheduler.
TEST(Scheduler, IdleWaitsEndedByTheirDeadlinesDoNotAccumulate) {
  Harness h;
  size_t most = 0;
  h.exec.spawn("a", idle_steps(h.exec, 1000, 2ms, &most, h.s));
  h.exec.spawn("b", idle_steps(h.exec, 1000, 2ms, &most, h.s));
  h.run();  // never offers an idle turn
  EXPECT_EQ(h.s.now(), MonoTime{} + 2000ms);
  EXPECT_LE(most, 3u);
}

TEST(Scheduler, WakeIdleSkipsCancelledAndCrashedWaits) {
  Harness h;
  std::vector<std::string> out;
  TaskId cancelled = h.exec.spawn("idle-cancelled", idle_then(h.exec, 1s, out, "cancelled"));
  h.other.spawn("idle-crashed", idle_then(h.other, 1s, out, "crashed"));
  h.exec.spawn("idle-live", idle_then(h.exec, 1s, out, "live"));
  h.s.run_due();  // all three park
  EXPECT_EQ(h.s.idle_waiters(), 3u);
  h.exec.cancel(cancelled);
  h.s.run_due();
  EXPECT_EQ(out, (std::vector<std::string>{"cancelled:Cancelled"}));
  h.s.destroy_node(2);
  EXPECT_TRUE(h.s.wake_idle());   // the live one, past the two ended waits
  EXPECT_FALSE(h.s.wake_idle());  // its resumption is due now: no idle turn
  h.s.run_due();
  EXPECT_EQ(out, (std::vector<std::string>{"cancelled:Cancelled", "live"}));
  EXPECT_EQ(h.s.idle_waiters(), 0u);
}

TEST(SlotQueue, MatchesADequeAndStaysBoundedWhenItNeverEmpties) {
  SlotQueue q;
  std::deque<uint32_t> model;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  uint32_t next = 0;
  for (int step = 0; step < 200000; step++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const uint64_t op = x % 100;
    const bool pushed = op < 55 || model.size() < 2;
    if (pushed) {  // pushes outnumber pops: the queue rarely empties
      q.push_back(SlotRef{next, 0});
      model.push_back(next++);
    } else if (op < 97) {
      ASSERT_FALSE(q.empty());
      EXPECT_EQ(q.pop_front().index, model.front());
      model.pop_front();
    } else if (op < 99) {
      const uint32_t mod = static_cast<uint32_t>(x >> 32) % 5 + 2;
      q.erase_if([mod](SlotRef r) { return r.index % mod == 0; });
      std::erase_if(model, [mod](uint32_t i) { return i % mod == 0; });
    } else {
      std::vector<SlotRef> all = q.take_all();
      ASSERT_EQ(all.size(), model.size());
      for (size_t i = 0; i < all.size(); i++) EXPECT_EQ(all[i].index, model[i]);
      model.clear();
      EXPECT_TRUE(q.empty());
    }
    ASSERT_EQ(q.size(), model.size());
    ASSERT_EQ(q.empty(), model.empty());
    // After a push the vector holds at most twice the waiters (pops alone never grow it).
    if (pushed) {
      ASSERT_LE(q.footprint(), 2 * q.size()) << "at step " << step;
    }
  }
}

TEST(SlotQueue, AnEmptiedQueueHoldsNothing) {
  SlotQueue q;
  for (uint32_t i = 0; i < 100; i++) q.push_back(SlotRef{i, 0});
  for (uint32_t i = 0; i < 100; i++) EXPECT_EQ(q.pop_front().index, i);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.footprint(), 0u);
}

TEST(SchedulerDeathTest, AnExceptionEscapingATaskIsABug) {
  EXPECT_DEATH(
      {
        Harness h;
        h.exec.spawn("thrower", throws());
        h.run();
      },
      "uncaught exception in task 'thrower': boom");
}

}  // namespace
}  // namespace quire
