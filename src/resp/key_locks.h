// Per-key shared/exclusive locks for the RESP commands on a primary: the one mechanism that
// makes a read-modify-write command (INCR, SET NX/XX/GET, SETNX, MSETNX, DEL's count)
// atomic across concurrent clients.
//
// Why it is enough: the primary acknowledges a write only once it is applied, and reads at
// its applied timestamp. A command that holds a key exclusively has no other write of that
// key in flight, so what it reads is the key's latest state and its write lands on that
// state. Blind writes (SET without options, MSET) take their keys shared: they may commit
// concurrently in any order (each is one batch), but never between a read-modify-write's
// read and its write. A write that failed with an unknown outcome never takes effect later
// on the same primary (the commit task abandons the log's tail before the next group).
//
// Every write also takes its database's lock shared, and FLUSHDB takes it exclusively.
// Grants are FIFO per lock (a queued exclusive waiter holds back later shared ones, so
// neither kind starves). Multi-key sets lock in one total order (database lock first, then
// keys ascending), so two commands never deadlock. Single-threaded (one scheduler).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "runtime/scheduler.h"
#include "runtime/task.h"

namespace quire::resp {

enum class LockMode : uint8_t { kShared = 1, kExclusive = 2 };

class KeyLocks;

// Locks held by one command; released (in reverse order) when destroyed.
class HeldLocks {
 public:
  HeldLocks() = default;
  HeldLocks(HeldLocks&& o) noexcept;
  HeldLocks& operator=(HeldLocks&& o) noexcept;
  HeldLocks(const HeldLocks&) = delete;
  HeldLocks& operator=(const HeldLocks&) = delete;
  ~HeldLocks();
  void release();
  size_t size() const { return held_.size(); }

 private:
  friend class KeyLocks;
  struct Held {
    std::tuple<uint32_t, bool, std::string> name;
    LockMode mode;
  };
  KeyLocks* owner_ = nullptr;
  std::vector<Held> held_;
};

class KeyLocks {
 public:
  explicit KeyLocks(Scheduler& s) : s_(s) {}
  ~KeyLocks();

  // Locks database `db` (`db_mode`) and then each of `keys` of it (`key_mode`; duplicates
  // taken once), all by `deadline`. DeadlineExceeded (or Cancelled) with nothing held.
  Task<Result<HeldLocks>> lock(uint32_t db, LockMode db_mode, std::vector<std::string> keys,
                               LockMode key_mode, Deadline deadline);

  // lock() without waiting: the locks only if each is free for its mode now (no holder in
  // the way, nobody queued for it); otherwise nullopt, with nothing held.
  std::optional<HeldLocks> try_lock(uint32_t db, LockMode db_mode, std::vector<std::string> keys,
                                    LockMode key_mode);

  // Locks in use (held or waited for): a test's check that nothing leaks.
  size_t active() const { return locks_.size(); }

 private:
  friend class HeldLocks;
  using Name = std::tuple<uint32_t, bool, std::string>;  // db, whole database, key
  struct Waiter {
    SlotRef ref;
    LockMode mode;
  };
  struct NameHash {
    size_t operator()(const Name& n) const {
      const size_t key = std::hash<std::string>()(std::get<2>(n));
      return key ^ (std::get<0>(n) * 0x9E3779B97F4A7C15ull + std::get<1>(n));
    }
  };
  // A lock exists only while held or waited for: each write makes and drops its keys'
  // locks, so an idle lock costs no allocation beyond its node (a list allocates only
  // for waiters, where a deque allocates on construction).
  struct Lock {
    uint32_t shared = 0;
    bool exclusive = false;
    std::list<Waiter> waiters;
  };
  Task<Status> acquire(const Name& name, LockMode mode, Deadline deadline);
  // Whether `l` can be taken in `mode` now without passing a waiter; prunes its waiters.
  bool free_now(Lock& l, LockMode mode);
  static void take(Lock& l, LockMode mode);
  void release(const Name& name, LockMode mode);
  // Hands the lock to the waiters at the front that can have it now, in order.
  void grant_waiters(Lock& l);
  void prune(Lock& l);

  Scheduler& s_;
  std::unordered_map<Name, Lock, NameHash> locks_;
};

}  // namespace quire::resp
