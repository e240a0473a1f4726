// Coroutine synchronization on the scheduler: a wait queue, a latched event, and a FIFO
// mutex. All are single-threaded (one scheduler) and every wait takes a deadline.
//
// Waiters are recorded as slot references, never as pointers into coroutine frames, so a
// primitive may outlive or die before any waiter without dangling.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "runtime/scheduler.h"

namespace quire {

// The waiters of one primitive, oldest first. Allocates nothing while empty: a std::deque
// allocates on construction, and every Event (one per queued write), call and request
// has a queue, most of them never waited on.
class SlotQueue {
 public:
  bool empty() const { return head_ == slots_.size(); }
  size_t size() const { return slots_.size() - head_; }
  void push_back(SlotRef r) {
    // Reclaims the popped prefix once it is at least half: amortized O(1) per slot, and
    // the vector stays within twice the waiters however long the queue never empties.
    if (head_ > 0 && head_ * 2 >= slots_.size()) compact();
    slots_.push_back(r);
  }
  SlotRef pop_front() {
    SlotRef r = slots_[head_++];
    if (empty()) {
      slots_.clear();
      head_ = 0;
    }
    return r;
  }
  template <typename Pred>
  void erase_if(Pred pred) {
    compact();
    std::erase_if(slots_, pred);
  }
  // Entries the vector holds, popped ones included: at most twice size() after a push.
  size_t footprint() const { return slots_.size(); }
  // Every slot, oldest first; the queue is left empty.
  std::vector<SlotRef> take_all() {
    compact();
    return std::exchange(slots_, {});
  }

 private:
  void compact() {
    slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  std::vector<SlotRef> slots_;
  size_t head_ = 0;  // slots_[0, head_) were popped
};

// Tasks wait until notified. Not latched: a notify with nobody waiting is lost.
class WaitQueue {
 public:
  // Waiters that timed out are forgotten once the queue reaches this size.
  static constexpr size_t kPruneAt = 256;

  explicit WaitQueue(Scheduler& s) : s_(s) {}

  // OK when notified, DeadlineExceeded, or Cancelled.
  auto wait(Deadline deadline = Deadline::never()) {
    return park_until(s_, deadline, [this](SlotRef ref) {
      if (waiters_.size() >= kPruneAt) prune();
      waiters_.push_back(ref);
    });
  }
  void notify_one() {
    while (!waiters_.empty()) {
      SlotRef r = waiters_.pop_front();
      if (s_.is_parked(r)) {
        s_.wake(r, Status());
        return;
      }
    }
  }
  void notify_all() {
    auto waiters = waiters_.take_all();
    for (SlotRef r : waiters) s_.wake(r, Status());
  }
  void fail_all(const Status& st) {
    auto waiters = waiters_.take_all();
    for (SlotRef r : waiters) s_.wake(r, st);
  }
  // Forgets waiters whose wait already ended (deadline or cancel), bounding the queue.
  void prune() {
    waiters_.erase_if([this](SlotRef r) { return !s_.is_parked(r); });
  }
  size_t size() const { return waiters_.size(); }

 private:
  Scheduler& s_;
  SlotQueue waiters_;
};

// A latched flag: once set, waits return OK at once until reset.
class Event {
 public:
  explicit Event(Scheduler& s) : q_(s) {}
  bool is_set() const { return set_; }
  void set() {
    set_ = true;
    q_.notify_all();
  }
  void reset() { set_ = false; }
  Task<Status> wait(Deadline deadline = Deadline::never()) {
    if (set_) co_return Status();
    co_return co_await q_.wait(deadline);
  }

 private:
  WaitQueue q_;
  bool set_ = false;
};

// A FIFO mutex. Ownership passes directly to the next waiter on unlock, so no waiter
// starves.
class AsyncMutex {
 public:
  explicit AsyncMutex(Scheduler& s) : s_(s) {}

  // OK once held; DeadlineExceeded or Cancelled without the lock.
  Task<Status> lock(Deadline deadline = Deadline::never()) {
    if (!locked_) {
      locked_ = true;
      co_return Status();
    }
    Status st = co_await park_until(s_, deadline, [this](SlotRef ref) { waiters_.push_back(ref); });
    // On success unlock() handed the lock to us; on failure we are simply dropped.
    co_return st;
  }
  void unlock() {
    QUIRE_ASSERT(locked_);
    while (!waiters_.empty()) {
      SlotRef r = waiters_.pop_front();
      if (s_.is_parked(r)) {
        s_.wake(r, Status());  // the lock stays held, now by the woken task
        return;
      }
    }
    locked_ = false;
  }
  bool locked() const { return locked_; }
  // Someone may be waiting for the lock (a waiter that gave up may still count).
  bool contended() const { return !waiters_.empty(); }

 private:
  Scheduler& s_;
  bool locked_ = false;
  SlotQueue waiters_;
};

// Releases a held AsyncMutex at scope exit.
class MutexGuard {
 public:
  explicit MutexGuard(AsyncMutex& m) : m_(&m) {}
  MutexGuard(MutexGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() {
    if (m_) m_->unlock();
  }

 private:
  AsyncMutex* m_;
};

}  // namespace quire
