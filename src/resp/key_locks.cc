#include "resp/key_locks.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"

namespace quire::resp {

HeldLocks::HeldLocks(HeldLocks&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), held_(std::move(o.held_)) {}

HeldLocks& HeldLocks::operator=(HeldLocks&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    held_ = std::move(o.held_);
  }
  return *this;
}

HeldLocks::~HeldLocks() {
  release();
}

void HeldLocks::release() {
  if (owner_) {
    for (size_t i = held_.size(); i-- > 0;) owner_->release(held_[i].name, held_[i].mode);
  }
  held_.clear();
  owner_ = nullptr;
}

KeyLocks::~KeyLocks() {
  // Every HeldLocks refers to its KeyLocks: the commands object outlives its commands.
  for (auto& [name, l] : locks_) {
    for (const Waiter& w : l.waiters) {
      if (s_.is_parked(w.ref)) s_.wake(w.ref, Status(Code::kCancelled, "key locks destroyed"));
    }
  }
}

Task<Result<HeldLocks>> KeyLocks::lock(uint32_t db, LockMode db_mode, std::vector<std::string> keys,
                                       LockMode key_mode, Deadline deadline) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  HeldLocks held;
  held.owner_ = this;
  Name db_name(db, true, std::string());
  Status st = co_await acquire(db_name, db_mode, deadline);
  if (!st.is_ok()) co_return st;
  held.held_.push_back({std::move(db_name), db_mode});
  for (std::string& k : keys) {
    Name name(db, false, std::move(k));
    Status ks = co_await acquire(name, key_mode, deadline);
    if (!ks.is_ok()) co_return ks;  // `held` releases what it took
    held.held_.push_back({std::move(name), key_mode});
  }
  co_return std::move(held);
}

std::optional<HeldLocks> KeyLocks::try_lock(uint32_t db, LockMode db_mode,
                                            std::vector<std::string> keys, LockMode key_mode) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::pair<Name, LockMode>> names;
  names.reserve(keys.size() + 1);
  names.emplace_back(Name(db, true, std::string()), db_mode);
  for (std::string& k : keys) names.emplace_back(Name(db, false, std::move(k)), key_mode);
  // Every lock is checked before any is taken (no waits in between: one scheduler).
  for (auto& [name, mode] : names) {
    auto it = locks_.find(name);
    if (it != locks_.end() && !free_now(it->second, mode)) return std::nullopt;
  }
  HeldLocks held;
  held.owner_ = this;
  for (auto& [name, mode] : names) {
    take(locks_[name], mode);
    held.held_.push_back({std::move(name), mode});
  }
  return held;
}

bool KeyLocks::free_now(Lock& l, LockMode mode) {
  prune(l);
  return l.waiters.empty() && !l.exclusive && (mode == LockMode::kShared || l.shared == 0);
}

void KeyLocks::take(Lock& l, LockMode mode) {
  if (mode == LockMode::kShared) {
    l.shared++;
  } else {
    l.exclusive = true;
  }
}

Task<Status> KeyLocks::acquire(const Name& name, LockMode mode, Deadline deadline) {
  Lock& l = locks_[name];
  if (free_now(l, mode)) {
    take(l, mode);
    co_return Status();
  }
  // A waiter is only ever queued behind a holder, so a release will look at it.
  QUIRE_ASSERT(l.exclusive || l.shared > 0);
  Status st = co_await park_until(s_, deadline, [&l, mode](SlotRef ref) {
    l.waiters.push_back({ref, mode});
  });
  // On success grant_waiters handed us the lock; on failure we were simply dropped (the
  // lock may not exist any more: do not touch `l`).
  co_return st;
}

void KeyLocks::release(const Name& name, LockMode mode) {
  auto it = locks_.find(name);
  QUIRE_ASSERT(it != locks_.end());
  Lock& l = it->second;
  if (mode == LockMode::kShared) {
    QUIRE_ASSERT(l.shared > 0 && !l.exclusive);
    l.shared--;
  } else {
    QUIRE_ASSERT(l.exclusive && l.shared == 0);
    l.exclusive = false;
  }
  grant_waiters(l);
  if (!l.exclusive && l.shared == 0 && l.waiters.empty()) locks_.erase(it);
}

void KeyLocks::grant_waiters(Lock& l) {
  while (!l.waiters.empty() && !l.exclusive) {
    Waiter w = l.waiters.front();
    if (!s_.is_parked(w.ref)) {  // its deadline passed, or it was cancelled
      l.waiters.pop_front();
      continue;
    }
    if (w.mode == LockMode::kExclusive) {
      if (l.shared > 0) return;
      l.exclusive = true;
    } else {
      l.shared++;
    }
    l.waiters.pop_front();
    s_.wake(w.ref, Status());
  }
}

void KeyLocks::prune(Lock& l) {
  std::erase_if(l.waiters, [this](const Waiter& w) { return !s_.is_parked(w.ref); });
}

}  // namespace quire::resp
