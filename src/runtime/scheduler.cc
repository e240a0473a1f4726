#include "runtime/scheduler.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <fmt/format.h>

#include "base/hash.h"

namespace quire {

Scheduler::Scheduler() = default;

Scheduler::~Scheduler() {
  // Tear down every task without resuming it, as a crash of everything would.
  for (auto& r : records_) {
    if (r && r->live && r->root) {
      r->root.destroy();
      r->root = nullptr;
    }
  }
}

void Scheduler::advance_to(MonoTime t) {
  QUIRE_ASSERT(t >= now_);
  now_ = t;
}

void Scheduler::fold_trace(uint64_t v) {
  trace_ = hash_fold(trace_, v);
}

uint32_t Scheduler::alloc_slot() {
  if (!free_slots_.empty()) {
    uint32_t i = free_slots_.back();
    free_slots_.pop_back();
    return i;
  }
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

void Scheduler::free_slot(uint32_t index) {
  Slot& s = slots_[index];
  s.gen++;
  s.kind = SlotKind::kFree;
  s.handle = nullptr;
  s.task = nullptr;
  s.out = nullptr;
  s.callback = nullptr;
  free_slots_.push_back(index);
}

void Scheduler::push(Event e) {
  if (e.time <= now_.ns && (ready_.empty() || ready_.back().seq < e.seq)) {
    e.time = now_.ns;
    ready_.push_back(e);
  } else {
    timers_.push(e);
  }
}

bool Scheduler::pop(Event* e) {
  bool have_ready = !ready_.empty();
  bool have_timer = !timers_.empty();
  if (!have_ready && !have_timer) return false;
  bool take_ready;
  if (have_ready && have_timer) {
    const Event& r = ready_.front();
    const Event& t = timers_.top();
    take_ready = r.time != t.time ? r.time < t.time : r.seq < t.seq;
  } else {
    take_ready = have_ready;
  }
  if (take_ready) {
    *e = ready_.front();
    ready_.pop_front();
  } else {
    *e = timers_.top();
    timers_.pop();
  }
  return true;
}

void Scheduler::add_idle_waiter(SlotRef ref) {
  while (!idle_.empty() && !is_parked(idle_.front())) idle_.pop_front();
  idle_.push_back(ref);
}

bool Scheduler::wake_idle() {
  std::optional<MonoTime> next = next_event_time();
  if (next && *next <= now_) return false;
  while (!idle_.empty()) {
    SlotRef ref = idle_.front();
    idle_.pop_front();
    if (!is_parked(ref)) continue;  // ended by its deadline, cancelled, or its node crashed
    wake(ref, Status());
    return true;
  }
  return false;
}

std::optional<MonoTime> Scheduler::next_event_time() {
  drop_stale();
  std::optional<MonoTime> t;
  if (!ready_.empty()) t = MonoTime{ready_.front().time};
  if (!timers_.empty()) {
    MonoTime tt{timers_.top().time};
    if (!t || tt < *t) t = tt;
  }
  return t;
}

TaskId Scheduler::spawn(NodeId node, std::string name, Task<void> task) {
  auto h = task.release();
  QUIRE_ASSERT(h);
  if ((destroying_active_ && node == destroying_) || live_tasks_ >= kMaxTasks) {
    h.destroy();
    return TaskId{};
  }
  uint32_t index;
  if (!free_records_.empty()) {
    index = free_records_.back();
    free_records_.pop_back();
  } else {
    records_.push_back(std::make_unique<TaskRecord>());
    index = static_cast<uint32_t>(records_.size() - 1);
  }
  TaskRecord* r = records_[index].get();
  r->gen++;
  r->index = index;
  r->serial = ++task_serial_;
  r->name = std::move(name);
  r->node = node;
  r->root = h;
  r->cancel_requested = false;
  r->live = true;
  r->parked = SlotRef{};
  r->joiners.clear();
  h.promise().task = r;
  live_tasks_++;

  // The first resumption goes through a slot like any other, so it dies with the node.
  uint32_t si = alloc_slot();
  Slot& s = slots_[si];
  s.kind = SlotKind::kResume;
  s.node = node;
  s.handle = h;
  s.task = r;
  s.out = nullptr;
  r->parked = SlotRef{si, s.gen};
  push(Event{now_.ns, ++seq_, si, s.gen, Code::kOk, false});
  return TaskId{index, r->gen};
}

TaskRecord* Scheduler::record(TaskId id) {
  if (!id.valid() || id.index >= records_.size()) return nullptr;
  TaskRecord* r = records_[id.index].get();
  if (!r->live || r->gen != id.gen) return nullptr;
  return r;
}

bool Scheduler::is_done(TaskId id) const {
  if (!id.valid() || id.index >= records_.size()) return true;
  const TaskRecord* r = records_[id.index].get();
  return !r->live || r->gen != id.gen;
}

void Scheduler::cancel(TaskId id) {
  TaskRecord* r = record(id);
  if (!r) return;
  r->cancel_requested = true;
  // A task that has not started yet starts and meets the cancellation at its first wait.
  if (r->parked.valid() && slots_[r->parked.index].out != nullptr) {
    wake(r->parked, cancelled("task cancelled"));
  }
}

size_t Scheduler::live_tasks(NodeId node) const {
  size_t n = 0;
  for (const auto& r : records_) {
    if (r->live && r->node == node) n++;
  }
  return n;
}

SlotRef Scheduler::park(std::coroutine_handle<> h, TaskRecord* task, Status* out) {
  uint32_t si = alloc_slot();
  Slot& s = slots_[si];
  s.kind = SlotKind::kResume;
  s.node = task->node;
  s.handle = h;
  s.task = task;
  s.out = out;
  SlotRef ref{si, s.gen};
  task->parked = ref;
  return ref;
}

bool Scheduler::is_parked(SlotRef ref) const {
  return ref.valid() && ref.index < slots_.size() && slots_[ref.index].gen == ref.gen &&
         slots_[ref.index].kind == SlotKind::kResume;
}

void Scheduler::wake(SlotRef ref, Status result) {
  if (!is_parked(ref)) return;
  Slot& s = slots_[ref.index];
  if (s.out) *s.out = std::move(result);
  // A new generation invalidates the pending timer and any second wake.
  s.gen++;
  push(Event{now_.ns, ++seq_, ref.index, s.gen, Code::kOk, false});
}

void Scheduler::wake_at(SlotRef ref, MonoTime at, Code code) {
  if (!is_parked(ref)) return;
  int64_t t = at < now_ ? now_.ns : at.ns;
  push(Event{t, ++seq_, ref.index, ref.gen, code, true});
}

void Scheduler::post_at(NodeId node, MonoTime at, Callback cb) {
  if (destroying_active_ && node == destroying_) return;
  uint32_t si = alloc_slot();
  Slot& s = slots_[si];
  s.kind = SlotKind::kCallback;
  s.node = node;
  s.callback = std::move(cb);
  int64_t t = at < now_ ? now_.ns : at.ns;
  push(Event{t, ++seq_, si, s.gen, Code::kOk, false});
}

bool Scheduler::is_stale(const Event& e) const {
  const Slot& s = slots_[e.slot];
  return s.gen != e.gen || s.kind == SlotKind::kFree;
}

void Scheduler::drop_stale() {
  // A wait that already ended (woken, cancelled, or its node crashed) leaves its timer
  // behind; dropping it must not move time forward or count as an event.
  while (!ready_.empty() && is_stale(ready_.front())) ready_.pop_front();
  while (!timers_.empty() && is_stale(timers_.top())) timers_.pop();
}

bool Scheduler::run_next() {
  drop_stale();
  Event e;
  if (!pop(&e)) return false;
  if (e.time > now_.ns) now_ = MonoTime{e.time};
  if (!paused_.empty()) {
    auto it = paused_.find(slots_[e.slot].node);
    if (it != paused_.end() && it->second > e.time) {
      // The node is stopped: the event waits for the end of the pause, after the ones that
      // came due before it (pop order is their order).
      e.time = it->second;
      e.seq = ++seq_;
      timers_.push(e);
      return true;
    }
  }
  dispatch(e);
  return true;
}

void Scheduler::pause_node(NodeId node, MonoTime until) {
  QUIRE_ASSERT(node != kWorldNode);
  paused_[node] = until.ns;
}

size_t Scheduler::run_due() {
  size_t n = 0;
  while (true) {
    auto next = next_event_time();
    if (!next || *next > now_) break;
    run_next();
    n++;
  }
  return n;
}

void Scheduler::dispatch(const Event& e) {
  Slot& s = slots_[e.slot];
  events_run_++;
  if (s.kind == SlotKind::kCallback) {
    trace_ = hash_fold(trace_, hash_fold(static_cast<uint64_t>(e.time), 0xCA11BAC0ull ^ s.node));
    Callback cb = std::move(s.callback);
    free_slot(e.slot);
    cb();
    return;
  }
  TaskRecord* t = s.task;
  std::coroutine_handle<> h = s.handle;
  if (e.set_code && s.out) {
    *s.out = e.code == Code::kOk ? Status() : Status(e.code, "deadline exceeded");
  }
  free_slot(e.slot);
  t->parked = SlotRef{};
  trace_ = hash_fold(trace_, hash_fold(static_cast<uint64_t>(e.time), t->serial));
  current_ = t;
  h.resume();
  current_ = nullptr;
  if (t->live && t->root.done()) finish(t);
}

void Scheduler::finish(TaskRecord* t) {
  auto& promise = t->root.promise();
  if (promise.exception) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(promise.exception);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    std::string msg = fmt::format("uncaught exception in task '{}': {}", t->name, what);
    detail::assertion_failed("task completed without an exception", __FILE__, __LINE__,
                             msg.c_str());
  }
  t->root.destroy();
  t->root = nullptr;
  for (SlotRef j : t->joiners) wake(j, Status());
  release_record(t);
}

void Scheduler::release_record(TaskRecord* t) {
  t->live = false;
  t->joiners.clear();
  t->parked = SlotRef{};
  t->name.clear();
  live_tasks_--;
  free_records_.push_back(t->index);
}

void Scheduler::destroy_node(NodeId node) {
  QUIRE_ASSERT(node != kWorldNode);
  QUIRE_ASSERT(!destroying_active_);
  destroying_ = node;
  destroying_active_ = true;
  paused_.erase(node);
  // First every slot of the node, so nothing can resume into a frame being destroyed.
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].kind != SlotKind::kFree && slots_[i].node == node) free_slot(i);
  }
  // Then the frames, in spawn order so destruction is deterministic too.
  std::vector<TaskRecord*> doomed;
  for (auto& r : records_) {
    if (r->live && r->node == node) doomed.push_back(r.get());
  }
  std::sort(doomed.begin(), doomed.end(),
            [](const TaskRecord* a, const TaskRecord* b) { return a->serial < b->serial; });
  for (TaskRecord* t : doomed) {
    auto root = t->root;
    t->root = nullptr;
    if (root) root.destroy();
    for (SlotRef j : t->joiners) wake(j, Status());
    release_record(t);
  }
  destroying_active_ = false;
  fold_trace(0xDEAD0000ull ^ node);
}

}  // namespace quire
