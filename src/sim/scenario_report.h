// What every replica-set scenario reports (quire chaos race, quire chaos kek): the run's
// identity and outcome, the workload's and checkers' counts, the primary's and the
// standbys' counters. Each scenario's report adds its own fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/pickup.h"
#include "repl/standby.h"

namespace quire {

class ReplicaSetSim;
class SimWorld;

struct ScenarioReport {
  std::string scenario;
  PickupPolicy policy = PickupPolicy::kAccept;
  uint64_t seed = 0;
  bool passed = false;
  uint64_t trace_hash = 0;
  double sim_seconds = 0;
  double wall_seconds = 0;  // filled in by the caller (the simulation has no wall clock)
  uint64_t writes_acked = 0;
  uint64_t writes_failed = 0;
  uint64_t writes_lost = 0;
  uint64_t reads_checked = 0;
  uint64_t reads_refused = 0;
  uint64_t rotations = 0;
  uint64_t cmk_rotations = 0;
  uint64_t checkpoints_written = 0;
  uint64_t keks_destroyed = 0;
  PickupCounters pickups;  // summed over the standbys
  uint64_t standby_resyncs = 0;
  std::vector<std::string> violations;
  std::string failure_logs;  // log rings, when it failed
};

// Fills the shared fields from a finished run (aborts collected first), including
// `passed` (no violation).
void collect_scenario_report(ReplicaSetSim& sim, ScenarioReport& r);
// The shared fields, into a JSON object, in the documented order.
void add_scenario_json(nlohmann::ordered_json& j, const ScenarioReport& r);
// The shared lines of the readable report (writes, rotations, pick-ups).
std::string scenario_text(const ScenarioReport& r);

// The log ring of `node`, and the log rings of every node, as text ("" when no memory
// stream can be opened).
std::string node_log_text(SimWorld& world, NodeId node);
std::string all_logs_text(SimWorld& world);

}  // namespace quire
