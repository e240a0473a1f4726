// Scheduler: the single-threaded event loop under both worlds.
//
// Events are ordered by (time, sequence number), so ties resolve in a fixed order and a
// simulated run is a pure function of its seed. The simulated world advances time to the
// next event; the real world runs the events that are due and sleeps in epoll until the
// next one. Everything else in the runtime (sleep, waits, network and disk completions)
// is built on two things: tasks, and wait slots.
//
// A task is a spawned root coroutine owned by a node. A wait slot is where a parked task
// waits; slots are referenced by (index, generation), so a wake-up or timer that arrives
// after the wait ended, or after the node crashed, finds a newer generation and does
// nothing. That is what lets a node's tasks be destroyed as a unit at any moment without
// leaving dangling pointers behind.
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <type_traits>
#include <vector>

#include "base/status.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace quire {

// Identifies a node within one process (a simulated world, or a real process). Node 0 is
// the world itself: its callbacks never die with a node.
using NodeId = uint32_t;
inline constexpr NodeId kWorldNode = 0;

struct SlotRef {
  uint32_t index = UINT32_MAX;
  uint64_t gen = 0;
  bool valid() const { return index != UINT32_MAX; }
};

struct TaskId {
  uint32_t index = UINT32_MAX;
  uint64_t gen = 0;
  bool valid() const { return index != UINT32_MAX; }
};

struct TaskRecord {
  uint64_t gen = 0;
  uint64_t serial = 0;  // unique per scheduler, in spawn order
  uint32_t index = 0;   // position in the scheduler's record table
  std::string name;
  NodeId node = kWorldNode;
  std::coroutine_handle<Task<void>::promise_type> root;
  bool cancel_requested = false;
  bool live = false;
  SlotRef parked;
  std::vector<SlotRef> joiners;
};

class Scheduler {
 public:
  using Callback = std::function<void()>;

  // Bounds: a scheduler holds at most this many live tasks and pending waits; beyond it
  // spawn fails. The numbers are far above what a node needs and exist to make a leak loud.
  static constexpr size_t kMaxTasks = 1 << 20;

  Scheduler();
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  MonoTime now() const { return now_; }
  // Moves time forward (the driver's job). Time never moves backwards.
  void advance_to(MonoTime t);

  // Starts `task` as a root task of `node`; it first runs from the event loop, not inside
  // this call. Returns an invalid id when the node is being destroyed or the bound is hit.
  TaskId spawn(NodeId node, std::string name, Task<void> task);
  // Requests cancellation: the task's current wait (and every later one) ends with
  // Cancelled. The task decides how to unwind.
  void cancel(TaskId id);
  bool is_done(TaskId id) const;
  // Destroys every task, wait and callback owned by `node` without resuming any of them:
  // a crash. Tasks joining a destroyed task are woken with OK.
  void destroy_node(NodeId node);
  size_t live_tasks(NodeId node) const;
  // Nothing of `node` runs before `until` (a SIGSTOP): its events that come due meanwhile
  // wait, in their order, and run from `until` on; its clock (the world's) moves on. A
  // later call replaces the end; destroy_node ends the pause.
  void pause_node(NodeId node, MonoTime until);
  size_t live_tasks() const { return live_tasks_; }
  // The task being run right now, or null inside a callback.
  const TaskRecord* current_task() const { return current_; }
  TaskRecord* record(TaskId id);

  // Parks coroutine `h` of `task`; its resumption is scheduled by wake() or by a timer.
  // `out` receives the wait's result and must stay valid while the slot is live.
  SlotRef park(std::coroutine_handle<> h, TaskRecord* task, Status* out);
  // Ends the wait with `result` and queues the resumption. No-op on a stale ref.
  void wake(SlotRef ref, Status result);
  // At `at`, ends the wait with `code` (OK for a sleep, DeadlineExceeded for a deadline)
  // unless something woke it before.
  void wake_at(SlotRef ref, MonoTime at, Code code);
  bool is_parked(SlotRef ref) const;

  // Runs `cb` on the loop at `at` (or now). The callback dies with `node`.
  void post(NodeId node, Callback cb) { post_at(node, now_, std::move(cb)); }
  void post_at(NodeId node, MonoTime at, Callback cb);

  // Registers a parked wait as an idle wait (Executor::yield_idle): wake_idle ends it once
  // nothing else is due; its own deadline ends it otherwise. Waits that ended meanwhile are
  // dropped from the front here and in wake_idle, so on a loop that is never idle (every
  // wait ended by its deadline) the list stays as long as the waits still live, when they
  // all have the same max_wait.
  void add_idle_waiter(SlotRef ref);
  // Called by a driver when it has nothing else to do now (the real loop: no event due and
  // the network quiet): ends the oldest live idle wait, whose resumption is then due now.
  // False when no event is due now and none was woken, or when an event is due already.
  bool wake_idle();
  size_t idle_waiters() const { return idle_.size(); }

  // Time of the earliest pending event, if any.
  std::optional<MonoTime> next_event_time();
  // Runs the earliest event, first advancing time to it. False when nothing is pending.
  bool run_next();
  // Runs every event due at or before now(), including ones they queue for now.
  size_t run_due();

  uint64_t trace_hash() const { return trace_; }
  void fold_trace(uint64_t v);
  uint64_t events_run() const { return events_run_; }

 private:
  enum class SlotKind : uint8_t { kFree, kResume, kCallback };
  struct Slot {
    uint64_t gen = 1;
    SlotKind kind = SlotKind::kFree;
    NodeId node = kWorldNode;
    std::coroutine_handle<> handle;
    TaskRecord* task = nullptr;
    Status* out = nullptr;
    Callback callback;
  };
  struct Event {
    int64_t time;
    uint64_t seq;
    uint32_t slot;
    uint64_t gen;
    Code code;
    bool set_code;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };

  uint32_t alloc_slot();
  void free_slot(uint32_t index);
  void push(Event e);
  bool pop(Event* e);
  bool is_stale(const Event& e) const;
  void drop_stale();
  void dispatch(const Event& e);
  void finish(TaskRecord* t);
  void release_record(TaskRecord* t);

  MonoTime now_{};
  uint64_t seq_ = 0;
  uint64_t trace_ = 0;
  uint64_t events_run_ = 0;
  uint64_t task_serial_ = 0;
  size_t live_tasks_ = 0;
  NodeId destroying_ = kWorldNode;
  bool destroying_active_ = false;
  TaskRecord* current_ = nullptr;

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::unique_ptr<TaskRecord>> records_;
  std::vector<uint32_t> free_records_;
  std::priority_queue<Event, std::vector<Event>, Later> timers_;
  std::deque<Event> ready_;           // events due now, already in (time, seq) order
  std::deque<SlotRef> idle_;          // idle waits, oldest first (some may have ended)
  std::map<NodeId, int64_t> paused_;  // node -> end of its pause (ns)
};

// A wait on the scheduler: parks the awaiting task, registers the slot with whatever will
// wake it (`reg`), and arms the deadline. Resumes with the wait's Status: whatever the
// waker passed, `fire_code` at the deadline, or Cancelled.
template <typename Register>
class ParkAwaiter {
  // g++ 12 destroys some temporaries inside a co_await expression twice (a closure
  // passed straight into park_until is one). A trivially destructible register callable
  // makes that harmless: capture raw pointers, never owning objects.
  static_assert(std::is_trivially_destructible_v<Register>,
                "capture only trivially destructible values in a wait's register callable");

 public:
  ParkAwaiter(Scheduler& s, Deadline deadline, Code fire_code, Register reg)
      : s_(s), deadline_(deadline), fire_code_(fire_code), reg_(std::move(reg)) {}

  bool await_ready() const noexcept { return false; }
  template <typename P>
  bool await_suspend(std::coroutine_handle<P> h) {
    TaskRecord* t = h.promise().task;
    QUIRE_ASSERT_MSG(t != nullptr, "waits happen only inside spawned tasks");
    if (t->cancel_requested) {
      result_ = cancelled("task cancelled");
      return false;
    }
    SlotRef ref = s_.park(h, t, &result_);
    if (!deadline_.is_never()) s_.wake_at(ref, deadline_, fire_code_);
    reg_(ref);
    return true;
  }
  Status await_resume() { return std::move(result_); }

 private:
  Scheduler& s_;
  Deadline deadline_;
  Code fire_code_;
  Register reg_;
  Status result_;
};

struct NoRegister {
  void operator()(SlotRef) const {}
};

// Registers a wait as an idle wait (Executor::yield_idle).
struct IdleRegister {
  Scheduler* s;
  void operator()(SlotRef ref) const { s->add_idle_waiter(ref); }
};

template <typename Register>
ParkAwaiter<Register> park_until(Scheduler& s, Deadline deadline, Register reg) {
  return ParkAwaiter<Register>(s, deadline, Code::kDeadlineExceeded, std::move(reg));
}

}  // namespace quire
