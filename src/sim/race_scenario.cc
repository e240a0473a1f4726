#include "sim/race_scenario.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sim/replica_set_sim.h"

namespace quire {

namespace {

// The kill_standby_page_server trigger, armed for one checkpoint's pick-up.
struct KillHook {
  bool armed = false;
  bool fired = false;
  Lsn target;
  uint64_t standby_keystore_version = 0;
  std::function<void()> kill;
  std::function<uint64_t()> standby_version;
};

std::string capture_logs(SimWorld& world) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = open_memstream(&buf, &len);
  if (f == nullptr) return {};
  world.dump_logs(f);
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

std::string describe_pickup(const PickupResult& r, PickupAction a) {
  return fmt::format("{} ({}{})", pickup_outcome_name(r.outcome),
                     r.installed() ? "installed, " : "", pickup_action_name(a));
}

}  // namespace

RaceReport run_race(const RaceOptions& o) {
  RaceReport report;
  report.policy = o.policy;
  report.seed = o.seed;

  auto hook = std::make_shared<KillHook>();
  ReplicaSetConfig c;
  c.seed = o.seed;
  c.policy = o.policy;
  c.standbys = 1;
  c.primary.checkpoint_interval = Nanos(0);  // the scenario decides when checkpoints happen
  c.primary.rotation_gap_min = Nanos(0);
  c.primary.rotation_gap_max = std::chrono::milliseconds(1500);
  c.standby.retry_deadline = std::chrono::seconds(10);
  c.standby.before_pickup = [hook](Lsn lsn) {
    if (!hook->armed || lsn != hook->target) return;
    hook->armed = false;
    hook->fired = true;
    if (hook->standby_version) hook->standby_keystore_version = hook->standby_version();
    if (hook->kill) hook->kill();
  };
  ReplicaSetSim sim(c);
  SimWorld& world = sim.world();
  const NodeId victim = sim.preferred_server(0);
  hook->kill = [&world, victim] {
    // Outside the standby's task: the world crashes the page server at this instant.
    world.scheduler().post(kWorldNode,
                           [&world, victim] { world.crash(victim, UnsyncedOnCrash::kLose); });
  };
  hook->standby_version = [&sim]() -> uint64_t {
    Standby* s = sim.standby(0);
    return s ? s->engine().keystore().version() : 0;
  };

  auto finish = [&]() {
    collect_scenario_report(sim, report);
    if (!report.passed) report.failure_logs = capture_logs(world);
    return report;
  };

  std::string why;
  if (!sim.bring_up(std::chrono::seconds(60), &why)) {
    sim.violation(why);
    return finish();
  }
  sim.start_probe(std::chrono::milliseconds(5));
  sim.start_workload(2);
  sim.start_checkpoints(std::chrono::seconds(1));
  world.run_for(std::chrono::seconds(3));
  sim.stop_checkpoints();
  world.run_for(std::chrono::milliseconds(200));  // let a checkpoint in progress finish

  // ---- The race -------------------------------------------------------------------------
  Standby* standby = sim.standby(0);
  Primary* primary = sim.primary();
  if (standby == nullptr || primary == nullptr) {
    sim.violation("a node went down before the race");
    return finish();
  }
  standby->hold_pickups(true);
  const uint32_t old_kek = primary->engine().keystore().active_kek().value_or(0);
  auto rotation = std::make_shared<std::optional<Result<uint32_t>>>();
  sim.spawn_on(sim.primary_id(), "race-rotation", [primary, rotation]() -> Task<void> {
    auto r = co_await primary->rotate_active_kek(std::chrono::seconds(3));
    *rotation = std::move(r);
  });
  // T1 done: KEK vN is active in the primary's in-memory keystore.
  if (!sim.run_until(
          [&] { return primary->engine().keystore().active_kek().value_or(0) > old_kek; },
          std::chrono::seconds(10))) {
    sim.violation("race: T1 of the KEK rotation did not happen");
    return finish();
  }
  // A checkpoint inside the T1-T2 gap: it carries the keystore of vN-1.
  auto info = std::make_shared<std::optional<Result<CheckpointInfo>>>();
  sim.run_on(
      sim.primary_id(),
      [primary, info]() -> Task<void> { *info = co_await primary->checkpoint_now(); },
      std::chrono::seconds(10));
  if (!info->has_value() || !(*info)->is_ok()) {
    sim.violation(
        fmt::format("race: the checkpoint inside the rotation gap failed: {}",
                    info->has_value() ? (*info)->status().to_string() : "did not finish"));
    return finish();
  }
  const CheckpointInfo race = (*info)->value();
  report.race_checkpoint_lsn = race.completion_lsn.value;
  report.race_checkpoint_keystore_version = race.keystore_version;
  // T2, and the standby applies the vN log entry; the checkpoint is materialized and
  // applied there (its pick-up is held until now).
  const bool applied = sim.run_until(
      [&] {
        return rotation->has_value() &&
               standby->engine().keystore().version() >= primary->logged_keystore_version() &&
               standby->engine().keystore().active_kek().value_or(0) > old_kek &&
               standby->commit_lsn() >= race.completion_lsn &&
               standby->applied_ts() >= race.checkpoint_ts;
      },
      std::chrono::seconds(20));
  if (!applied || !(*rotation)->is_ok()) {
    sim.violation(fmt::format(
        "race: the standby did not apply KEK v{} from the log: {}", old_kek + 1,
        rotation->has_value() ? (*rotation)->status().to_string() : "T2 did not finish"));
    return finish();
  }
  report.race_reached = race.keystore_version < standby->engine().keystore().version() &&
                        primary->engine().installed_checkpoint_lsn() == race.completion_lsn;
  if (!report.race_reached) {
    sim.violation(fmt::format("race: not reached (checkpoint keystore v{}, standby keystore v{})",
                              race.keystore_version, standby->engine().keystore().version()));
    return finish();
  }
  // Pick-ups resume; as the pick-up of that checkpoint starts, kill_standby_page_server.
  hook->target = race.completion_lsn;
  hook->armed = true;
  const uint64_t attempts_before = standby->stats().pickups.attempts;
  standby->hold_pickups(false);
  sim.run_until(
      [&] {
        Standby* s = sim.standby(0);
        return s == nullptr || (hook->fired && s->stats().pickups.attempts > attempts_before &&
                                s->last_pickup().checkpoint_lsn == race.completion_lsn);
      },
      std::chrono::seconds(10));
  report.standby_keystore_version_at_pickup = hook->standby_keystore_version;
  if (Standby* s = sim.standby(0)) {
    report.race_pickup_result = describe_pickup(s->last_pickup(), s->last_action());
  } else {
    report.race_pickup_result = "the standby is down (aborted)";
  }

  // ---- Keep going: writes, rotations and checkpoints; the page server comes back -------
  sim.start_rotations(std::chrono::seconds(3), 3);
  sim.start_checkpoints(std::chrono::seconds(1));
  const Nanos down = std::min<Nanos>(std::chrono::seconds(5), o.chaos_phase);
  world.run_for(down);
  world.start(victim);
  world.run_for(o.chaos_phase - down);

  // ---- Heal and check ---------------------------------------------------------------------
  sim.stop_rotations();
  sim.stop_workload();
  sim.stop_checkpoints();
  world.run_for(std::chrono::seconds(2));
  if (sim.primary() != nullptr) {
    sim.run_on(
        sim.primary_id(), [&sim]() -> Task<void> { co_await sim.primary()->checkpoint_now(); },
        std::chrono::seconds(10));
  }
  sim.check_convergence(std::chrono::seconds(60));
  return finish();
}

std::string race_report_json(const RaceReport& r) {
  nlohmann::ordered_json j;
  add_scenario_json(j, r);
  j["race"] = {{"reached", r.race_reached},
               {"checkpoint_lsn", r.race_checkpoint_lsn},
               {"checkpoint_keystore_version", r.race_checkpoint_keystore_version},
               {"standby_keystore_version", r.standby_keystore_version_at_pickup},
               {"pickup", r.race_pickup_result}};
  return j.dump(2) + "\n";
}

std::string race_report_text(const RaceReport& r) {
  std::string out =
      fmt::format("quire chaos race: policy {}, seed {}\n", pickup_policy_name(r.policy), r.seed);
  out += fmt::format("  race: checkpoint {} carries keystore v{}; the standby holds v{}{}\n",
                     r.race_checkpoint_lsn, r.race_checkpoint_keystore_version,
                     r.standby_keystore_version_at_pickup,
                     r.race_reached ? "" : " (race NOT reached)");
  out += fmt::format("  pick-up of it, with the standby's page server killed: {}\n",
                     r.race_pickup_result);
  out += scenario_text(r);
  out += fmt::format("  {:.1f} simulated s in {:.2f} wall s; trace {:#018x}\n", r.sim_seconds,
                     r.wall_seconds, r.trace_hash);
  for (const std::string& v : r.violations) out += fmt::format("  VIOLATION: {}\n", v);
  out += r.passed ? "PASSED\n" : "FAILED\n";
  return out;
}

}  // namespace quire
