// `quire chaos race` (the directed scenario of the seed bug report) and `quire chaos kek`
// (seeded chaos over the whole replica set, with replay and shrinking) in the simulator.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "engine/pickup.h"
#include "sim/failover_scenario.h"
#include "sim/kek_scenario.h"
#include "sim/race_scenario.h"
#include "sim/seed_runner.h"

namespace quire::cli {

namespace {

// A failing run prints at most this much of its nodes' logs.
constexpr size_t kLogTailBytesMax = 20000;

// The last kLogTailBytesMax bytes of `logs`.
std::string log_tail(const std::string& logs) {
  return logs.size() > kLogTailBytesMax ? logs.substr(logs.size() - kLogTailBytesMax) : logs;
}

// A failed run: the command that replays it, and the tail of its nodes' logs on stderr.
void print_replay(const std::string& replay, const std::string& logs) {
  fmt::print("  replay: {}\n", replay);
  const std::string tail = log_tail(logs);
  fmt::print(stderr, "---- node logs (last {} bytes) ----\n{}", tail.size(), tail);
}

struct ChaosFlags {
  uint64_t seed = 1;
  std::string policy = "accept";
  std::string json_path;
  double chaos_seconds = 20;
  std::string scenario;
  std::string fault = "crash";  // failover
  std::string seeds;            // failover
};

int run_race_command(const ChaosFlags& f) {
  auto policy = parse_pickup_policy(f.policy);
  if (!policy.is_ok()) {
    fmt::print(stderr, "quire chaos race: {}\n", policy.status().message());
    return kExitUsage;
  }
  RaceOptions o;
  o.seed = f.seed;
  o.policy = *policy;
  o.chaos_phase = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(f.chaos_seconds));
  const auto wall_start = std::chrono::steady_clock::now();
  RaceReport r = run_race(o);
  r.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  fmt::print("{}", race_report_text(r));
  if (!r.passed) {
    print_replay(fmt::format("quire chaos race --policy {} --seed {}", f.policy, f.seed),
                 r.failure_logs);
  }
  if (!write_report(f.json_path, race_report_json(r))) return kExitFailed;
  return r.passed ? kExitOk : kExitFailed;
}

struct KekFlags {
  uint64_t seed = 1;
  std::string policy = "accept";
  double duration_s = 300;
  size_t standbys = 2;
  std::string json_path;
  std::string log_path;
  std::string replay_path;
  std::string shrink_out;
  std::vector<std::string> add_faults;
  bool shrink = false;
  bool duration_given = false;
};

Nanos seconds(double s) {
  return std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(s));
}

KekReport timed_kek(const KekOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  KekReport r = run_kek(o);
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::string replay_command(const KekOptions& o, const KekFlags& f) {
  std::string cmd = fmt::format("quire chaos kek --seed {}", o.seed);
  if (o.policy != PickupPolicy::kAccept)
    cmd += fmt::format(" --policy {}", pickup_policy_name(o.policy));
  if (f.duration_s != 300) cmd += fmt::format(" --duration {}", f.duration_s);
  if (o.standbys != 2) cmd += fmt::format(" --standbys {}", o.standbys);
  for (const std::string& fault : f.add_faults) cmd += fmt::format(" --add-fault {}", fault);
  return cmd;
}

// The run's options: from the replay file (printing what it replays), else from the flags.
// An error's message says what is wrong (usage: exit 2).
Result<KekOptions> kek_options(const KekFlags& f) {
  KekOptions o;
  if (f.replay_path.empty()) {
    auto policy = parse_pickup_policy(f.policy);
    if (!policy.is_ok()) return policy.status();
    o.seed = f.seed;
    o.policy = *policy;
    o.duration = seconds(f.duration_s);
    o.standbys = f.standbys;
    for (const std::string& name : f.add_faults) {
      auto kind = parse_fault_kind(name);
      if (!kind) return invalid_argument(fmt::format("--add-fault: unknown fault kind '{}'", name));
      o.extra_kinds.push_back(*kind);
    }
    return o;
  }
  std::ifstream in(f.replay_path);
  if (!in) return invalid_argument(fmt::format("cannot read replay file {}", f.replay_path));
  std::stringstream text;
  text << in.rdbuf();
  auto spec = parse_replay_file(text.str());
  if (!spec.is_ok())
    return invalid_argument(fmt::format("{}: {}", f.replay_path, spec.status().message()));
  o = spec->options;
  if (f.duration_given) o.duration = seconds(f.duration_s);
  fmt::print("replaying {} ({} fault events; it failed {})\n", f.replay_path, o.schedule->size(),
             spec->failed_checker.empty() ? "nothing" : spec->failed_checker);
  return o;
}

// Shrinks the failing run's schedule and writes the replay file; false when it cannot.
bool shrink_and_write(const KekOptions& o, const KekReport& r, const KekFlags& f) {
  fmt::print("shrinking the fault schedule ({} events, failing checker {})...\n", r.schedule.size(),
             r.failed_checker);
  KekReport small = shrink_kek(o, r, [](size_t trials, size_t events) {
    fmt::print(stderr, "\r  trial {}: {} events   ", trials, events);
  });
  fmt::print(stderr, "\n");
  const std::string out =
      f.shrink_out.empty() ? fmt::format("kek-seed-{}.replay.json", o.seed) : f.shrink_out;
  if (!write_report(out, replay_file_json(small))) return false;
  fmt::print(
      "minimal schedule: {} of {} events still fail {}; written to {}\n  replay: quire chaos "
      "kek --replay {}\n",
      small.schedule.size(), r.schedule.size(), small.failed_checker, out, out);
  return true;
}

int run_kek_command(const KekFlags& f) {
  Result<KekOptions> options = kek_options(f);
  if (!options.is_ok()) {
    fmt::print(stderr, "quire chaos kek: {}\n", options.status().message());
    return kExitUsage;
  }
  const KekOptions& o = *options;
  // The seed's swarm first, so a long run shows what it is doing.
  const FaultMix mix = kek_fault_mix(o);
  fmt::print(
      "running seed {} (policy {}, {} standbys, {:.0f} simulated s of chaos); fault mix: {}\n",
      o.seed, pickup_policy_name(o.policy), o.standbys,
      std::chrono::duration<double>(o.duration).count(), fault_mix_text(mix));
  std::fflush(stdout);
  KekReport r = timed_kek(o);
  fmt::print("{}", kek_report_text(r));
  fmt::print(stderr, "wall time {:.2f} s ({:.0f} simulated s per wall s)\n", r.wall_seconds,
             r.wall_seconds > 0 ? r.sim_seconds / r.wall_seconds : 0.0);
  write_report(f.log_path, r.all_logs);
  if (!r.passed) {
    fmt::print("  replay: {}\n", f.replay_path.empty()
                                     ? replay_command(o, f)
                                     : fmt::format("quire chaos kek --replay {}", f.replay_path));
    const std::string tail = log_tail(r.failure_logs);
    fmt::print(stderr, "---- {}'s log ring (last {} bytes) ----\n{}", r.failing_node, tail.size(),
               tail);
    if (f.shrink && !shrink_and_write(o, r, f)) return kExitFailed;
  }
  if (!write_report(f.json_path, kek_report_json(r))) return kExitFailed;
  return r.passed ? kExitOk : kExitFailed;
}

// One seed: the report, the replay command and, on failure, the logs' tail.
int run_failover_seed(const FailoverConfig& config, const std::string& json_path) {
  FailoverReport r = run_failover(config);
  fmt::print("{}", failover_report_text(config, r));
  if (!r.passed) {
    print_replay(fmt::format("quire chaos failover --case {} --seed {}",
                             failover_case_name(config.fault), config.seed),
                 r.failure_logs);
  }
  if (!write_report(json_path, failover_report_json(config, r))) return kExitFailed;
  return r.passed ? kExitOk : kExitFailed;
}

int run_failover_command(const ChaosFlags& f) {
  FailoverConfig config;
  const bool known = parse_failover_case(f.fault, &config.fault);
  QUIRE_ASSERT(known);  // the parser checked --case
  if (!f.seeds.empty()) {
    Result<SeedRange> range = parse_seed_range(f.seeds);
    if (!range.is_ok()) {
      fmt::print(stderr, "quire chaos failover: {}\n", range.status().message());
      return kExitUsage;
    }
    FailoverSeedsSummary sum =
        run_failover_seeds(config, range->first, range->last,
                           [](const std::string& line) { fmt::print("{}\n", line); });
    fmt::print("{}\n", failover_seeds_summary_text(config, sum));
    return sum.passed == sum.seeds ? kExitOk : kExitFailed;
  }
  config.seed = f.seed;
  return run_failover_seed(config, f.json_path);
}

}  // namespace

void add_chaos_commands(CLI::App& app, Commands& commands) {
  CLI::App* chaos = app.add_subcommand("chaos",
                                       "chaos scenarios over a simulated replica set (race, kek, "
                                       "failover) or a real cluster (real)");
  chaos->require_subcommand(0, 1);
  auto flags = std::make_shared<ChaosFlags>();
  // A scenario that is not one of the subcommands lands here, so the error lists them.
  chaos->add_option("scenario", flags->scenario, "the scenario to run")
      ->check(CLI::IsMember({"race", "kek", "failover", "real"}));
  CLI::App* race = chaos->add_subcommand(
      "race",
      "the seed bug report's race, forced: a checkpoint inside a KEK rotation, picked up as the "
      "standby's page server dies");
  race->add_option("--policy", flags->policy,
                   "pick-up policy for a stale keystore: accept, skip, resync, abort")
      ->check(CLI::IsMember({"accept", "skip", "resync", "abort"}));
  race->add_option("--seed", flags->seed, "simulation seed (a number)");
  race->add_option("--json", flags->json_path, "also write the report as JSON to this file");
  race->add_option("--duration", flags->chaos_seconds,
                   "simulated seconds of writes and rotations after the race")
      ->check(CLI::Range(1.0, 3600.0));
  commands.push_back({race, [flags] { return run_race_command(*flags); }});

  auto kf = std::make_shared<KekFlags>();
  CLI::App* kek = chaos->add_subcommand("kek",
                                        "seeded chaos over the whole replica set: workload, "
                                        "KEK/CMK rotations and faults drawn from the seed");
  kek->add_option("--seed", kf->seed, "simulation seed (a number)");
  kek->add_option("--policy", kf->policy,
                  "pick-up policy for a stale keystore: accept, skip, resync, abort")
      ->check(CLI::IsMember({"accept", "skip", "resync", "abort"}));
  kek->add_option("--duration", kf->duration_s, "simulated seconds of chaos (default 300)")
      ->check(CLI::Range(1.0, 86400.0));
  kek->add_option("--standbys", kf->standbys, "standbys (default 2)")->check(CLI::Range(1, 8));
  kek->add_option("--json", kf->json_path, "also write the report as JSON to this file");
  kek->add_option("--log", kf->log_path, "when it fails, write every node's log ring to this file");
  kek->add_flag("--shrink", kf->shrink,
                "on failure, shrink the fault schedule to a minimal one and write a replay file");
  kek->add_option("--shrink-out", kf->shrink_out,
                  "where --shrink writes the replay file (default kek-seed-N.replay.json)");
  kek->add_option("--replay", kf->replay_path,
                  "run the fault schedule of a replay file (from --shrink)");
  kek->add_option("--add-fault", kf->add_faults,
                  "add a fault kind to the seed's drawn mix (repeatable; e.g. disk_full, which "
                  "no seed draws by itself)");
  commands.push_back({kek, [kf, kek] {
                        kf->duration_given = kek->count("--duration") > 0;
                        return run_kek_command(*kf);
                      }});
  CLI::App* failover = chaos->add_subcommand(
      "failover", "one forced primary fault under elected compute nodes (docs/replication.md)");
  failover
      ->add_option("--case", flags->fault, "crash, partition, rotation or pause (default crash)")
      ->check(CLI::IsMember({"crash", "partition", "rotation", "pause"}));
  failover->add_option("--seed", flags->seed, "simulation seed (a number)");
  failover->add_option("--seeds", flags->seeds,
                       "a range of seeds A..B: one line each, then the median and max time "
                       "from the fault to the new primary's first write");
  failover->add_option("--json", flags->json_path, "also write the report as JSON to this file");
  commands.push_back({failover, [flags] { return run_failover_command(*flags); }});
  add_chaos_real_command(*chaos, commands);
  commands.push_back(
      {chaos, [] {
         fmt::print(stderr, "quire chaos: name a scenario (valid: race, kek, failover, real)\n");
         return kExitUsage;
       }});
}

}  // namespace quire::cli
