// The simulator self-test: three simulated nodes that exchange acknowledged messages and
// append to a log with fsync, under crashes, partitions, message loss, duplication and
// reordering, disk EIO and clock skew, all drawn from one seed.
//
// Each node keeps one log file. A message is delivered to the application when the
// receiver has durably appended it (append + fsync) and only then acknowledged, and a
// receiver that restarts rebuilds what it has delivered from its log, so a sender that
// re-sends after a lost acknowledgement gets it acknowledged without a second delivery.
// Besides, every node appends records of its own and counts them durable once synced.
//
// Invariants checked:
//   - every record whose fsync succeeded survives any later crash: on every recovery and
//     at the end, read from the durable disk image;
//   - every acknowledged message is in the receiver's log exactly once, and messages from
//     one sender are delivered in order without gaps;
//   - once faults heal, every sender gets further messages acknowledged (liveness).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/time.h"

namespace quire {

struct SelftestOptions {
  uint64_t seed = 1;
  Nanos fault_phase = Nanos(std::chrono::seconds(60));  // simulated time with faults
  Nanos heal_phase = Nanos(std::chrono::seconds(20));   // simulated time after healing
};

// The seed's swarm: which fault classes this run uses and how hard.
struct SelftestFaultMix {
  bool crashes = false;
  bool partitions = false;
  bool message_faults = false;
  bool disk_faults = false;
  bool clock_skew = false;
  double drop = 0;
  double duplicate = 0;
  bool reorder = false;
  double disk_eio = 0;
  int fault_interval_ms = 0;  // mean time between nemesis actions
};

struct SelftestReport {
  uint64_t seed = 0;
  uint64_t trace_hash = 0;
  uint64_t events = 0;
  double sim_seconds = 0;
  bool passed = false;
  SelftestFaultMix mix;
  uint64_t messages_acked = 0;
  uint64_t messages_delivered = 0;
  uint64_t appends_durable = 0;
  uint64_t recoveries_checked = 0;
  uint64_t crashes = 0;
  uint64_t fail_stop_restarts = 0;
  uint64_t partitions = 0;
  uint64_t clock_skews = 0;
  uint64_t net_sent = 0;
  uint64_t net_dropped = 0;
  uint64_t net_duplicated = 0;
  uint64_t disk_eio_injected = 0;
  std::vector<std::string> violations;
  // The nodes' log rings, kept only when the run failed.
  std::string failure_logs;
};

SelftestReport run_selftest(const SelftestOptions& options);

// The report as `quire sim selftest` prints it (ending with "PASSED trace=0x..." or
// "FAILED ..."), and as JSON; `wall` is the run's wall-clock seconds.
std::string selftest_report_text(const SelftestReport& r, double wall);
std::string selftest_report_json(const SelftestReport& r, double wall);

}  // namespace quire
