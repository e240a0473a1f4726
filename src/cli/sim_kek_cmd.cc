// `quire sim kek`: the seed runner (sim/seed_runner.h) over a range of seeds.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "base/assert.h"
#include "cli/command.h"
#include "sim/kek_scenario.h"
#include "sim/seed_runner.h"

namespace quire::cli {

namespace {

struct SimKekFlags {
  SeedRunnerOptions options;
  std::string seeds;
  double duration_seconds = 0;
  size_t standbys = 0;
  const CLI::Option* duration_option = nullptr;
  const CLI::Option* standbys_option = nullptr;
};

CLI::Validator seed_range_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        Result<SeedRange> parsed = parse_seed_range(value);
        return parsed.is_ok() ? std::string() : parsed.status().message();
      },
      "FIRST..LAST");
}

CLI::Validator fault_kind_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return parse_fault_kind(value) ? std::string()
                                       : fmt::format("unknown fault kind '{}'", value);
      },
      "KIND");
}

int run_sim_kek_command(SimKekFlags& flags) {
  Result<SeedRange> range = parse_seed_range(flags.seeds);
  QUIRE_ASSERT(range.is_ok());  // the option's validator took it
  flags.options.seeds = *range;
  if (flags.duration_option->count() > 0) flags.options.duration_seconds = flags.duration_seconds;
  if (flags.standbys_option->count() > 0) flags.options.standbys = flags.standbys;
  return run_seed_range(flags.options) ? kExitOk : kExitFailed;
}

}  // namespace

void add_sim_kek_command(CLI::App& sim, Commands& commands) {
  auto flags = std::make_shared<SimKekFlags>();
  flags->options.jobs = default_seed_runner_jobs();
  CLI::App* kek = sim.add_subcommand(
      "kek",
      "seed runner: `quire chaos kek` for every seed of a range, in parallel worker "
      "processes; reports each failing seed with its replay command");
  kek->add_option("--seeds", flags->seeds,
                  "the seeds to run, FIRST..LAST (both included, at most 1000000)")
      ->required()
      ->check(seed_range_validator());
  kek->add_option("--jobs", flags->options.jobs,
                  "worker processes at once (1 to 64; default: the online CPUs)")
      ->check(CLI::Range(1, kSeedRunnerJobsMax))
      ->capture_default_str();
  kek->add_option("--policy", flags->options.policy,
                  "pick-up policy for a stale keystore: accept, skip, resync, abort")
      ->check(CLI::IsMember({"accept", "skip", "resync", "abort"}))
      ->capture_default_str();
  flags->duration_option =
      kek->add_option("--duration", flags->duration_seconds,
                      "simulated seconds of each seed's chaos phase (default: chaos kek's)")
          ->check(CLI::Range(1.0, 86400.0));
  flags->standbys_option =
      kek->add_option("--standbys", flags->standbys, "standbys per seed (default: chaos kek's)")
          ->check(CLI::Range(size_t{1}, size_t{8}));
  kek->add_option("--add-fault", flags->options.add_faults,
                  "add a fault kind to every seed's drawn mix, as `quire chaos kek --add-fault` "
                  "(repeatable; e.g. disk_full)")
      ->check(fault_kind_validator());
  kek->add_flag("--stop-on-failure", flags->options.stop_on_failure,
                "start no further seeds after the first failure; wait for the running ones");
  kek->add_option("--seed-timeout", flags->options.seed_timeout_seconds,
                  "wall-clock seconds a seed may run before it is killed and counted as failed "
                  "(default: no limit)")
      ->check(CLI::PositiveNumber);
  kek->add_option("--json", flags->options.json_path,
                  "also write the summary as JSON to this file");
  // Tests point the runner at a stand-in for `quire chaos kek`.
  kek->add_option("--worker-program", flags->options.worker_program,
                  "the program run as `PROGRAM chaos kek ...`")
      ->check(nonempty_validator())
      ->group("");
  commands.push_back({kek, [flags] { return run_sim_kek_command(*flags); }});
}

}  // namespace quire::cli
