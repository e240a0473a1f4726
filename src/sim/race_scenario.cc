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

std::string describe_pickup(const PickupResult& r, PickupAction a) {
  return fmt::format("{} ({}{})", pickup_outcome_name(r.outcome),
                     r.installed() ? "installed, " : "", pickup_action_name(a));
}

// Bounds of the race's steps, in simulated time.
constexpr Nanos kBringUpMax = std::chrono::seconds(60);
constexpr Nanos kProbeEvery = std::chrono::milliseconds(5);
constexpr Nanos kWarmUpCheckpointEvery = std::chrono::seconds(1);
constexpr Nanos kWarmUpFor = std::chrono::seconds(3);
constexpr Nanos kCheckpointDrainFor = std::chrono::milliseconds(200);
constexpr Nanos kRotationGapMax = std::chrono::milliseconds(1500);
constexpr Nanos kRotationStepMax = std::chrono::seconds(3);
constexpr Nanos kRaceStepMax = std::chrono::seconds(10);
constexpr Nanos kApplyRotationMax = std::chrono::seconds(20);
constexpr Nanos kStandbyRetryDeadline = std::chrono::seconds(10);
// After the race: rotations every kRotationEvery (a CMK rotation every kCmkEvery), the
// victim down for the first kVictimDownMax of the chaos phase.
constexpr Nanos kRotationEvery = std::chrono::seconds(3);
constexpr int kCmkEvery = 3;
constexpr Nanos kChaosCheckpointEvery = std::chrono::seconds(1);
constexpr Nanos kVictimDownMax = std::chrono::seconds(5);
constexpr Nanos kHealFor = std::chrono::seconds(2);
constexpr Nanos kConvergeBound = std::chrono::seconds(60);

ReplicaSetConfig race_config(const RaceOptions& o, std::shared_ptr<KillHook> hook) {
  ReplicaSetConfig c;
  c.seed = o.seed;
  c.policy = o.policy;
  c.standbys = 1;
  c.primary.checkpoint_interval = Nanos(0);  // the scenario decides when checkpoints happen
  c.primary.rotation_gap_min = Nanos(0);
  c.primary.rotation_gap_max = kRotationGapMax;
  c.standby.retry_deadline = kStandbyRetryDeadline;
  c.standby.before_pickup = [hook](Lsn lsn) {
    if (!hook->armed || lsn != hook->target) return;
    hook->armed = false;
    hook->fired = true;
    if (hook->standby_version) hook->standby_keystore_version = hook->standby_version();
    if (hook->kill) hook->kill();
  };
  return c;
}

// One run of the scenario, step by step (see race_scenario.h). A step that fails records
// a violation and returns false; the run then reports what it has.
class RaceRun {
 public:
  explicit RaceRun(const RaceOptions& o)
      : o_(o), hook_(std::make_shared<KillHook>()), sim_(race_config(o, hook_)) {
    report_.policy = o.policy;
    report_.seed = o.seed;
    victim_ = sim_.preferred_server(0);
    SimWorld& world = sim_.world();
    const NodeId victim = victim_;
    hook_->kill = [&world, victim] {
      // Outside the standby's task: the world crashes the page server at this instant.
      world.scheduler().post(kWorldNode,
                             [&world, victim] { world.crash(victim, UnsyncedOnCrash::kLose); });
    };
    ReplicaSetSim& sim = sim_;
    hook_->standby_version = [&sim]() -> uint64_t {
      Standby* s = sim.standby(0);
      return s ? s->engine().keystore().version() : 0;
    };
  }

  RaceReport run() {
    if (warm_up() && force_race()) {
      pick_up_as_the_server_dies();
      keep_going();
      heal_and_check();
    }
    collect_scenario_report(sim_, report_);
    if (!report_.passed) report_.failure_logs = all_logs_text(sim_.world());
    return report_;
  }

 private:
  // Brings the set up; writes and checkpoints for a while, then checkpoints stop.
  bool warm_up() {
    std::string why;
    if (!sim_.bring_up(kBringUpMax, &why)) {
      sim_.violation(Checker::kScenario, why);
      return false;
    }
    sim_.start_probe(kProbeEvery);
    sim_.start_workload(2);
    sim_.start_checkpoints(kWarmUpCheckpointEvery);
    sim_.world().run_for(kWarmUpFor);
    sim_.stop_checkpoints();
    sim_.world().run_for(kCheckpointDrainFor);  // let a checkpoint in progress finish
    standby_ = sim_.standby(0);
    primary_ = sim_.primary();
    if (standby_ == nullptr || primary_ == nullptr) {
      sim_.violation(Checker::kScenario, "a node went down before the race");
      return false;
    }
    return true;
  }

  // T1 of a KEK rotation, a checkpoint inside the T1-T2 gap, then T2 applied on the
  // standby: the standby's keystore is newer than the checkpoint's.
  bool force_race() {
    Standby* standby = standby_;
    Primary* primary = primary_;
    standby->hold_pickups(true);
    const uint32_t old_kek = primary->engine().keystore().active_kek().value_or(0);
    auto rotation = std::make_shared<std::optional<Result<uint32_t>>>();
    sim_.spawn_on(sim_.primary_id(), "race-rotation", [primary, rotation]() -> Task<void> {
      auto r = co_await primary->rotate_active_kek(kRotationStepMax);
      *rotation = std::move(r);
    });
    // T1 done: KEK vN is active in the primary's in-memory keystore.
    if (!sim_.run_until(
            [&] { return primary->engine().keystore().active_kek().value_or(0) > old_kek; },
            kRaceStepMax)) {
      sim_.violation(Checker::kScenario, "race: T1 of the KEK rotation did not happen");
      return false;
    }
    // A checkpoint inside the T1-T2 gap: it carries the keystore of vN-1.
    auto info = std::make_shared<std::optional<Result<CheckpointInfo>>>();
    sim_.run_on(
        sim_.primary_id(),
        [primary, info]() -> Task<void> { *info = co_await primary->checkpoint_now(); },
        kRaceStepMax);
    if (!info->has_value() || !(*info)->is_ok()) {
      sim_.violation(
          Checker::kScenario,
          fmt::format("race: the checkpoint inside the rotation gap failed: {}",
                      info->has_value() ? (*info)->status().to_string() : "did not finish"));
      return false;
    }
    race_ = (*info)->value();
    const CheckpointInfo& race = race_;
    report_.race_checkpoint_lsn = race.completion_lsn.value;
    report_.race_checkpoint_keystore_version = race.keystore_version;
    // T2, and the standby applies the vN log entry; the checkpoint is materialized and
    // applied there (its pick-up is held until now).
    const bool applied = sim_.run_until(
        [&] {
          return rotation->has_value() &&
                 standby->engine().keystore().version() >= primary->logged_keystore_version() &&
                 standby->engine().keystore().active_kek().value_or(0) > old_kek &&
                 standby->commit_lsn() >= race.completion_lsn &&
                 standby->applied_ts() >= race.checkpoint_ts;
        },
        kApplyRotationMax);
    if (!applied || !(*rotation)->is_ok()) {
      sim_.violation(
          Checker::kScenario,
          fmt::format(
              "race: the standby did not apply KEK v{} from the log: {}", old_kek + 1,
              rotation->has_value() ? (*rotation)->status().to_string() : "T2 did not finish"));
      return false;
    }
    report_.race_reached = race.keystore_version < standby->engine().keystore().version() &&
                           primary->engine().installed_checkpoint_lsn() == race.completion_lsn;
    if (!report_.race_reached) {
      sim_.violation(
          Checker::kScenario,
          fmt::format("race: not reached (checkpoint keystore v{}, standby keystore v{})",
                      race.keystore_version, standby->engine().keystore().version()));
      return false;
    }
    return true;
  }

  // Pick-ups resume; as the pick-up of that checkpoint starts, kill_standby_page_server.
  void pick_up_as_the_server_dies() {
    const CheckpointInfo& race = race_;
    hook_->target = race.completion_lsn;
    hook_->armed = true;
    const uint64_t attempts_before = standby_->stats().pickups.attempts;
    standby_->hold_pickups(false);
    sim_.run_until(
        [&] {
          Standby* s = sim_.standby(0);
          return s == nullptr || (hook_->fired && s->stats().pickups.attempts > attempts_before &&
                                  s->last_pickup().checkpoint_lsn == race.completion_lsn);
        },
        kRaceStepMax);
    report_.standby_keystore_version_at_pickup = hook_->standby_keystore_version;
    if (Standby* s = sim_.standby(0)) {
      report_.race_pickup_result = describe_pickup(s->last_pickup(), s->last_action());
    } else {
      report_.race_pickup_result = "the standby is down (aborted)";
    }
  }

  // Writes, rotations and checkpoints go on; the page server comes back.
  void keep_going() {
    SimWorld& world = sim_.world();
    sim_.start_rotations(kRotationEvery, kCmkEvery);
    sim_.start_checkpoints(kChaosCheckpointEvery);
    const Nanos down = std::min<Nanos>(kVictimDownMax, o_.chaos_phase);
    world.run_for(down);
    world.start(victim_);
    world.run_for(o_.chaos_phase - down);
  }

  void heal_and_check() {
    sim_.stop_rotations();
    sim_.stop_workload();
    sim_.stop_checkpoints();
    sim_.world().run_for(kHealFor);
    if (sim_.primary() != nullptr) {
      ReplicaSetSim& sim = sim_;
      sim_.run_on(
          sim_.primary_id(), [&sim]() -> Task<void> { co_await sim.primary()->checkpoint_now(); },
          kRaceStepMax);
    }
    sim_.check_convergence(kConvergeBound);
  }

  const RaceOptions& o_;
  RaceReport report_;
  std::shared_ptr<KillHook> hook_;
  ReplicaSetSim sim_;
  NodeId victim_ = 0;
  Standby* standby_ = nullptr;  // as the race began
  Primary* primary_ = nullptr;
  CheckpointInfo race_;  // the checkpoint inside the rotation gap
};

}  // namespace

RaceReport run_race(const RaceOptions& o) {
  RaceRun run(o);
  return run.run();
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
