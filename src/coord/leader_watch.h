// LeaderWatch: what a node that is not the leader knows of the election's leader. A
// compute node uses it to name its primary (INFO replication, READONLY versus MASTERDOWN,
// where a standby reports its progress for WAIT).
//
// It asks the coordinator for the leader every `interval` (leader() is linearizable), so it
// learns a new leader within about one interval of its election and forgets a leader that
// resigned or whose lease expired within one interval of etcd deleting its key. While the
// coordinator cannot be reached it keeps the last answer for at most `stale_after`, then
// knows no leader: a node cut off from the coordinator says MASTERDOWN rather than point
// clients at a primary that may be gone.
//
// Lifetime: the Env and the Coordinator must outlive its task (spawned on the node's
// executor, it ends with the node or at destruction).
#pragma once

#include <optional>
#include <string>

#include "coord/coordinator.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"

namespace quire {

struct LeaderWatchOptions {
  std::string election;
  Nanos interval = std::chrono::milliseconds(200);
  Nanos call_timeout = std::chrono::seconds(1);
  Nanos stale_after = std::chrono::seconds(3);
};

class LeaderWatch {
 public:
  LeaderWatch(Env& env, Coordinator& coordinator, LeaderWatchOptions options);
  ~LeaderWatch();
  LeaderWatch(const LeaderWatch&) = delete;
  LeaderWatch& operator=(const LeaderWatch&) = delete;

  void start();
  // The leader as last seen (nullopt: none, or not known recently enough).
  std::optional<Leadership> leader() const;
  uint64_t failures() const { return failures_; }

 private:
  Task<void> run();

  Env& env_;
  Coordinator& coordinator_;
  LeaderWatchOptions options_;
  std::optional<Leadership> leader_;
  MonoTime known_at_;  // when leader_ (or its absence) was last confirmed
  uint64_t failures_ = 0;
  LogLimiter log_limit_;
  TaskId task_;
  bool started_ = false;
};

}  // namespace quire
