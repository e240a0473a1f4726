// Executor: a node's view of the scheduler. Everything a node spawns belongs to the node
// and dies with it; sleeps and waits use the scheduler's monotonic timeline.
#pragma once

#include <string>
#include <string_view>

#include "runtime/scheduler.h"

namespace quire {

class Executor {
 public:
  Executor(Scheduler& scheduler, NodeId node) : s_(scheduler), node_(node) {}

  NodeId node() const { return node_; }
  Scheduler& scheduler() { return s_; }
  MonoTime now() const { return s_.now(); }
  Deadline deadline_after(Nanos d) const { return s_.now() + d; }

  // Starts `task` on this node. See Scheduler::spawn.
  TaskId spawn(std::string name, Task<void> task) {
    return s_.spawn(node_, std::move(name), std::move(task));
  }
  void cancel(TaskId id) { s_.cancel(id); }
  bool is_done(TaskId id) const { return s_.is_done(id); }

  // `co_await exec.sleep(10ms)`: OK after the time passed, Cancelled if cancelled first.
  ParkAwaiter<NoRegister> sleep_until(MonoTime t) {
    return ParkAwaiter<NoRegister>(s_, t, Code::kOk, NoRegister{});
  }
  ParkAwaiter<NoRegister> sleep(Nanos d) { return sleep_until(s_.now() + d); }
  // Lets every other ready event run first.
  ParkAwaiter<NoRegister> yield() { return sleep_until(s_.now()); }
  // Lets every other event run first, and what the network brings meanwhile: resumes once
  // the loop has nothing else to do (Scheduler::wake_idle), or after `max_wait` when it
  // never has. For background work in steps (an ingest prune) that must not stretch the
  // node's reads, writes and log apply; `max_wait` bounds how long a busy node starves it.
  ParkAwaiter<IdleRegister> yield_idle(Nanos max_wait) {
    return ParkAwaiter<IdleRegister>(s_, s_.now() + max_wait, Code::kOk, IdleRegister{&s_});
  }

  // Waits until task `id` finished (OK), the deadline passed (DeadlineExceeded) or this
  // task is cancelled (Cancelled). A task that already finished returns OK at once.
  Task<Status> join(TaskId id, Deadline deadline = Deadline::never()) {
    TaskRecord* r = s_.record(id);
    if (!r) co_return Status();
    co_return co_await park_until(s_, deadline, [r](SlotRef ref) { r->joiners.push_back(ref); });
  }

  // The name of the running task ("" outside a task): the `ctx` of log lines.
  std::string_view current_task_name() const {
    const TaskRecord* t = s_.current_task();
    return t ? std::string_view(t->name) : std::string_view();
  }

 private:
  Scheduler& s_;
  NodeId node_;
};

}  // namespace quire
