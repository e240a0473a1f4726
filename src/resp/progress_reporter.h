// The standby's half of WAIT (standby_progress.h): while the node is a standby, it sends the
// primary QUIRE.REPORT with its applied timestamp and LSN when they moved (it looks every
// `poll`, and sends at most one report per `spacing`), and at least every `interval` (the
// primary forgets a standby whose last report is older than kProgressReportTtl). How the
// command reaches the primary is the caller's: `send` (a RESP client connection to the
// elected primary's client address in `quire node`; a direct call in the simulator's
// tests). A failed send is counted and retried at the next interval; nothing else depends
// on it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "repl/replica_node.h"
#include "resp/standby_progress.h"

namespace quire::resp {

class ProgressReporter {
 public:
  using Send = std::function<Task<Status>(std::vector<std::string> args)>;
  // `name` identifies the standby to the primary; `address` is its client address.
  ProgressReporter(ReplicaNode& node, std::string name, Address address, Send send,
                   Nanos interval = kProgressReportInterval, Nanos poll = kProgressReportPoll,
                   Nanos spacing = kProgressReportSpacing);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Spawns "progress-report" on the node's executor (it ends with the node or stop()).
  void start();
  void stop();
  uint64_t sent() const { return sent_; }
  uint64_t failed() const { return failed_; }

 private:
  Task<void> loop();

  ReplicaNode& node_;
  std::string name_;
  Address address_;
  Send send_;
  Nanos interval_;
  Nanos poll_;
  Nanos spacing_;
  TaskId task_;
  bool running_ = false;
  uint64_t sent_ = 0;
  uint64_t failed_ = 0;
};

}  // namespace quire::resp
