// `quire chaos race`: the directed scenario of the seed bug report in the simulator.
#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "engine/pickup.h"
#include "sim/race_scenario.h"

namespace quire::cli {

namespace {

struct ChaosFlags {
  uint64_t seed = 1;
  std::string policy = "accept";
  std::string json_path;
  double chaos_seconds = 20;
  std::string scenario;
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
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  fmt::print("{}", race_report_text(r));
  if (!r.passed) {
    fmt::print("  replay: quire chaos race --policy {} --seed {}\n", f.policy, f.seed);
    // The nodes' last log lines, for the failing run.
    std::string tail = r.failure_logs.size() > 20000 ? r.failure_logs.substr(r.failure_logs.size() - 20000)
                                                     : r.failure_logs;
    fmt::print(stderr, "---- node logs (last {} bytes) ----\n{}", tail.size(), tail);
  }
  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    out << race_report_json(r);
    if (!out) {
      fmt::print(stderr, "quire: cannot write {}\n", f.json_path);
      return kExitFailed;
    }
  }
  return r.passed ? kExitOk : kExitFailed;
}

}  // namespace

void add_chaos_commands(CLI::App& app, Commands& commands) {
  CLI::App* chaos = app.add_subcommand("chaos", "chaos scenarios over a simulated replica set (scenarios: race)");
  chaos->require_subcommand(0, 1);
  auto flags = std::make_shared<ChaosFlags>();
  // A scenario that is not one of the subcommands lands here, so the error lists them.
  chaos->add_option("scenario", flags->scenario, "the scenario to run")->check(CLI::IsMember({"race"}));
  CLI::App* race = chaos->add_subcommand(
      "race", "the seed bug report's race, forced: a checkpoint inside a KEK rotation, picked up as the "
              "standby's page server dies");
  race->add_option("--policy", flags->policy, "pick-up policy for a stale keystore: accept, skip, resync, abort")
      ->check(CLI::IsMember({"accept", "skip", "resync", "abort"}));
  race->add_option("--seed", flags->seed, "simulation seed (a number)");
  race->add_option("--json", flags->json_path, "also write the report as JSON to this file");
  race->add_option("--duration", flags->chaos_seconds, "simulated seconds of writes and rotations after the race")
      ->check(CLI::Range(1.0, 3600.0));
  commands.push_back({race, [flags] { return run_race_command(*flags); }});
  commands.push_back({chaos, [] {
                        fmt::print(stderr, "quire chaos: name a scenario (valid: race)\n");
                        return kExitUsage;
                      }});
}

}  // namespace quire::cli
