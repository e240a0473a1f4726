// KeyLocks: shared holders overlap, an exclusive holder is alone, grants are FIFO (a queued
// exclusive waiter holds back later shared ones), deadlines fail cleanly, multi-key sets
// never deadlock, and nothing stays behind.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "resp/key_locks.h"
#include "runtime/executor.h"

namespace quire::resp {
namespace {

struct Harness {
  Scheduler s;
  Executor exec{s, 1};
  void run() {
    while (s.run_next()) {
    }
  }
};

// Holds `keys` for `hold`, logging "+name" when granted and "-name" when released.
Task<void> holder(KeyLocks& locks, Executor& exec, std::vector<std::string> keys, LockMode mode,
                  Nanos hold, std::vector<std::string>& log, std::string name,
                  Deadline deadline = Deadline::never()) {
  auto held = co_await locks.lock(0, LockMode::kShared, std::move(keys), mode, deadline);
  if (!held.is_ok()) {
    log.push_back("!" + name);
    co_return;
  }
  log.push_back("+" + name);
  (void)co_await exec.sleep(hold);
  log.push_back("-" + name);
}

TEST(KeyLocksTest, SharedOverlapExclusiveAloneFifo) {
  Harness h;
  KeyLocks locks(h.s);
  std::vector<std::string> log;
  using V = std::vector<std::string>;
  h.exec.spawn("s1", holder(locks, h.exec, V{"k"}, LockMode::kShared, 2ms, log, "s1"));
  h.exec.spawn("s2", holder(locks, h.exec, V{"k"}, LockMode::kShared, 2ms, log, "s2"));
  h.exec.spawn("x", holder(locks, h.exec, V{"k"}, LockMode::kExclusive, 1ms, log, "x"));
  h.exec.spawn("s3", holder(locks, h.exec, V{"k"}, LockMode::kShared, 1ms, log, "s3"));
  h.exec.spawn("other", holder(locks, h.exec, V{"j"}, LockMode::kExclusive, 1ms, log, "other"));
  h.run();
  // s1 and s2 share; x waits for both; s3 (queued after x) waits for x; "other" is another
  // key and is not held back.
  EXPECT_EQ(log, (V{"+s1", "+s2", "+other", "-other", "-s1", "-s2", "+x", "-x", "+s3", "-s3"}));
  EXPECT_EQ(locks.active(), 0u);
}

TEST(KeyLocksTest, DeadlineFailsWithNothingHeld) {
  Harness h;
  KeyLocks locks(h.s);
  std::vector<std::string> log;
  using V = std::vector<std::string>;
  h.exec.spawn("a", holder(locks, h.exec, V{"k"}, LockMode::kExclusive, 5ms, log, "a"));
  // Takes "a0" at once, then times out on "k": "a0" must be released again.
  h.exec.spawn("b", holder(locks, h.exec, V{"k", "a0"}, LockMode::kExclusive, 1ms, log, "b",
                           MonoTime{} + 1ms));
  h.exec.spawn("c", holder(locks, h.exec, V{"a0"}, LockMode::kExclusive, 1ms, log, "c"));
  h.run();
  EXPECT_EQ(log, (V{"+a", "!b", "+c", "-c", "-a"}));
  EXPECT_EQ(locks.active(), 0u);
}

TEST(KeyLocksTest, OverlappingKeySetsInAnyOrderNeverDeadlock) {
  Harness h;
  KeyLocks locks(h.s);
  std::vector<std::string> log;
  using V = std::vector<std::string>;
  for (int i = 0; i < 20; i++) {
    V keys = i % 2 ? V{"a", "b", "c"} : V{"c", "b", "a"};
    h.exec.spawn("m",
                 holder(locks, h.exec, keys, LockMode::kExclusive, 1ms, log, std::to_string(i)));
  }
  h.run();
  EXPECT_EQ(log.size(), 40u);
  for (size_t i = 0; i < log.size(); i += 2) {  // one at a time, each to its end
    EXPECT_EQ(log[i][0], '+');
    EXPECT_EQ(log[i + 1], "-" + log[i].substr(1));
  }
  EXPECT_EQ(h.s.now().ns, Nanos(20ms).count());
  EXPECT_EQ(locks.active(), 0u);
}

// At 1 ms ("s" holds "k" shared, "x" waits for it exclusively): a shared try_lock of "k"
// would pass the waiter and is refused; another key is free.
Task<void> try_lock_probe(KeyLocks& locks, Executor& exec, std::vector<std::string>& log) {
  (void)co_await exec.sleep(1ms);
  std::vector<std::string> k{"k"};
  std::vector<std::string> other{"other"};
  EXPECT_FALSE(locks.try_lock(0, LockMode::kShared, k, LockMode::kShared).has_value());
  EXPECT_TRUE(locks.try_lock(0, LockMode::kShared, other, LockMode::kShared).has_value());
  log.push_back("probe");
}

// try_lock takes every lock or none, never waits, and never passes a queued waiter.
TEST(KeyLocksTest, TryLockTakesAllOrNothingAndNeverJumpsTheQueue) {
  Harness h;
  KeyLocks locks(h.s);
  std::vector<std::string> log;
  using V = std::vector<std::string>;
  {
    std::optional<HeldLocks> a =
        locks.try_lock(0, LockMode::kShared, V{"k", "j", "k"}, LockMode::kShared);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->size(), 3u);  // the database, "j", "k"
    // Shared locks overlap; an exclusive one is refused while they are held.
    EXPECT_TRUE(locks.try_lock(0, LockMode::kShared, V{"k"}, LockMode::kShared).has_value());
    EXPECT_FALSE(locks.try_lock(0, LockMode::kShared, V{"x", "k"}, LockMode::kExclusive));
    EXPECT_FALSE(locks.try_lock(0, LockMode::kExclusive, V{}, LockMode::kShared));
  }
  EXPECT_EQ(locks.active(), 0u);  // a refusal held nothing, and "x" left no trace
  // An exclusive waiter queued behind a shared holder: a later shared try_lock is refused
  // (FIFO), another key is not.
  h.exec.spawn("s", holder(locks, h.exec, V{"k"}, LockMode::kShared, 2ms, log, "s"));
  h.exec.spawn("x", holder(locks, h.exec, V{"k"}, LockMode::kExclusive, 1ms, log, "x"));
  h.exec.spawn("probe", try_lock_probe(locks, h.exec, log));
  h.run();
  EXPECT_EQ(log, (V{"+s", "probe", "-s", "+x", "-x"}));
  EXPECT_EQ(locks.active(), 0u);
}

}  // namespace
}  // namespace quire::resp
