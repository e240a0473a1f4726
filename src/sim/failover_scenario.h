// The directed failover scenario (`quire chaos failover`): a replica set whose compute
// nodes are all elected through a simulated coordinator (ReplicaNode's elected mode), a
// client on every node that writes unique values whenever its node is a serving primary,
// and one forced primary fault:
//
//   crash      the primary is killed right after it acknowledged a write, so the tail it
//              leaves is durable at W and acknowledged but its commit point unpublished;
//              later the node restarts and rejoins as a standby;
//   partition  the primary is cut from the coordinator only (it still reaches the page
//              servers): it must stop acknowledging before its lease can have expired,
//              and a standby takes over; then the partition heals;
//   rotation   the primary is killed between T1 and T2 of a KEK rotation (the new KEK in
//              its memory only); the new primary rotates again;
//   pause      the primary is stopped (as SIGSTOP) with a write in flight for the lease TTL
//              plus 1.5 s, then resumes: a standby took over meanwhile, and the resumed
//              node must acknowledge nothing (its lease ran out), step down and follow.
//
// Checks (the names of `quire chaos kek`'s where they apply):
//   lost_write   every acknowledged value is on the final primary and on every standby;
//   split_brain  no write acknowledged under a term after a higher term acknowledged one;
//   convergence  every standby ends SECONDARY at the primary's applied ts;
//   liveness     a new primary acknowledged a write after the fault;
//   abort        no node aborted.
// The report gives the simulated time from the fault to the first write acknowledged by
// the new primary. Same seed, same trace.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/planted_bugs.h"
#include "runtime/time.h"

namespace quire {

enum class FailoverCase : uint8_t { kCrash = 1, kPartition = 2, kRotation = 3, kPause = 4 };
std::string_view failover_case_name(FailoverCase c);
// "crash", "partition", "rotation", "pause"; false for anything else.
bool parse_failover_case(std::string_view name, FailoverCase* out);

struct FailoverConfig {
  uint64_t seed = 1;
  FailoverCase fault = FailoverCase::kCrash;
  size_t nodes = 3;    // compute nodes, all candidates
  size_t servers = 3;  // page servers (W = majority)
  Nanos lease_ttl = std::chrono::seconds(2);
  Nanos before_fault = std::chrono::seconds(2);  // writes before the fault
  Nanos after_fault = std::chrono::seconds(3);   // writes after the new primary's first
  Nanos limit = std::chrono::seconds(60);        // any one wait
  // The test seam, on every compute node (to show the checkers catch what they claim to).
  PlantedBugs planted_bugs;
  // Before any compute node starts, the page servers are fenced at this term (0: not): a
  // coordinator whose revisions are below what the page servers have seen, as after an
  // etcd wiped or restored from an old snapshot.
  uint64_t preset_term = 0;
};

struct FailoverReport {
  bool passed = false;
  std::string first_checker;  // empty when passed
  std::vector<std::string> violations;
  uint64_t writes_acked = 0;
  uint64_t writes_failed = 0;
  uint64_t failovers = 0;  // primary changes seen
  uint64_t terms_max = 0;
  Nanos fault_to_first_write{0};  // -1 ns when no new primary acknowledged a write
  uint64_t trace_hash = 0;
  double sim_seconds = 0;
  std::string failure_logs;  // every node's log ring, when it failed
};

// The report as text (one line per field, then the violations) and as JSON.
std::string failover_report_text(const FailoverConfig& config, const FailoverReport& r);
std::string failover_report_json(const FailoverConfig& config, const FailoverReport& r);

FailoverReport run_failover(const FailoverConfig& config);

// Seeds first..last (both included) of `config`: one line per seed through `line`, and
// the figures: the simulated time from the fault to the new primary's first write.
struct FailoverSeedsSummary {
  uint64_t seeds = 0;
  uint64_t passed = 0;
  std::vector<double> fault_to_first_write_ms;  // sorted; seeds without one are left out
};
FailoverSeedsSummary run_failover_seeds(FailoverConfig config, uint64_t first, uint64_t last,
                                        const std::function<void(const std::string&)>& line);
// "chaos failover --case C: P of N seeds passed; fault to first write ...: median, max".
std::string failover_seeds_summary_text(const FailoverConfig& config,
                                        const FailoverSeedsSummary& s);

}  // namespace quire
