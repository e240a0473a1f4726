#include "sim/scenario_report.h"

#include <cstdio>
#include <cstdlib>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sim/replica_set_sim.h"

namespace quire {

namespace {

// What `write` prints to a stream, as a string.
std::string captured(const std::function<void(std::FILE*)>& write) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  if (f == nullptr) return {};
  write(f);
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

}  // namespace

std::string node_log_text(SimWorld& world, NodeId node) {
  return captured([&](std::FILE* f) { world.dump_log(node, f); });
}

std::string all_logs_text(SimWorld& world) {
  return captured([&](std::FILE* f) { world.dump_logs(f); });
}

void collect_scenario_report(ReplicaSetSim& sim, ScenarioReport& r) {
  sim.collect_aborts();
  SimWorld& w = sim.world();
  r.trace_hash = w.trace_hash();
  r.sim_seconds = static_cast<double>(w.now().ns) / 1e9;
  r.writes_acked = sim.counters().writes_acked;
  r.writes_failed = sim.counters().writes_failed;
  r.writes_lost = sim.writes_lost();
  r.reads_checked = sim.counters().reads_checked + sim.counters().scans_checked;
  r.reads_refused = sim.counters().reads_refused;
  r.rotations = sim.counters().rotations;
  r.cmk_rotations = sim.counters().cmk_rotations;
  if (Primary* p = sim.primary()) {
    r.checkpoints_written = p->stats().checkpoints;
    r.keks_destroyed = p->stats().keks_destroyed;
  }
  r.pickups = PickupCounters{};
  r.standby_resyncs = 0;
  // Every compute node in the standby role now (fixed role: the standbys).
  for (NodeId id : sim.compute_ids()) {
    ReplicaNode* n = sim.node(id);
    Standby* s = n ? n->standby() : nullptr;
    if (s == nullptr) continue;
    const PickupCounters& c = s->stats().pickups;
    PickupCounters& t = r.pickups;
    t.attempts += c.attempts;
    t.installed += c.installed;
    t.stale_keystore_accepted += c.stale_keystore_accepted;
    t.skipped += c.skipped;
    t.keystore_ahead_retries += c.keystore_ahead_retries;
    t.unavailable_retries += c.unavailable_retries;
    t.busy_retries += c.busy_retries;
    t.older_ignored += c.older_ignored;
    t.already_installed += c.already_installed;
    t.corrupt += c.corrupt;
    t.keystore_conflicts += c.keystore_conflicts;
    t.version_too_new += c.version_too_new;
    t.deadline_escalations += c.deadline_escalations;
    t.resyncs += c.resyncs;
    r.standby_resyncs += s->stats().resyncs;
  }
  r.violations = sim.violations();
  r.passed = r.violations.empty();
}

void add_scenario_json(nlohmann::ordered_json& j, const ScenarioReport& r) {
  j["scenario"] = r.scenario;
  j["policy"] = std::string(pickup_policy_name(r.policy));
  j["seed"] = r.seed;
  j["passed"] = r.passed;
  j["trace_hash"] = fmt::format("{:#018x}", r.trace_hash);
  j["sim_seconds"] = r.sim_seconds;
  j["wall_seconds"] = r.wall_seconds;
  j["writes_acked"] = r.writes_acked;
  j["writes_failed"] = r.writes_failed;
  j["writes_lost"] = r.writes_lost;
  j["reads_checked"] = r.reads_checked;
  j["reads_refused"] = r.reads_refused;
  j["rotations"] = r.rotations;
  j["cmk_rotations"] = r.cmk_rotations;
  j["checkpoints_written"] = r.checkpoints_written;
  j["keks_destroyed"] = r.keks_destroyed;
  j["pickups"] = {{"installed", r.pickups.installed},
                  {"stale_keystore_accepted", r.pickups.stale_keystore_accepted},
                  {"skipped", r.pickups.skipped},
                  {"keystore_ahead_retries", r.pickups.keystore_ahead_retries},
                  {"unavailable_retries", r.pickups.unavailable_retries},
                  {"busy_retries", r.pickups.busy_retries},
                  {"resyncs", r.standby_resyncs},
                  {"older_ignored", r.pickups.older_ignored},
                  {"corrupt", r.pickups.corrupt},
                  {"keystore_conflicts", r.pickups.keystore_conflicts},
                  {"deadline_escalations", r.pickups.deadline_escalations}};
  j["violations"] = r.violations;
}

std::string scenario_text(const ScenarioReport& r) {
  std::string out = fmt::format(
      "  writes acked {}, failed {}, lost {}; reads checked {}, refused (retriable) {}\n",
      r.writes_acked, r.writes_failed, r.writes_lost, r.reads_checked, r.reads_refused);
  out += fmt::format("  KEK rotations {}, CMK rotations {}, KEKs destroyed {}, checkpoints {}\n",
                     r.rotations, r.cmk_rotations, r.keks_destroyed, r.checkpoints_written);
  const PickupCounters& p = r.pickups;
  out += fmt::format(
      "  standby pick-ups: installed {}, stale keystore accepted {}, skipped {}, keystore-ahead "
      "retries {}, "
      "unavailable retries {}, busy retries {}, older ignored {}, corrupt {}; resyncs {}\n",
      p.installed, p.stale_keystore_accepted, p.skipped, p.keystore_ahead_retries,
      p.unavailable_retries, p.busy_retries, p.older_ignored, p.corrupt, r.standby_resyncs);
  return out;
}

}  // namespace quire
