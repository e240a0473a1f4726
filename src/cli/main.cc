// The quire program. Subcommands are added by the layers they drive; each prints a
// readable summary and exits 0 on success, 1 when what it ran failed its checks or could
// not run, and 2 on bad usage (unknown subcommands or flags, malformed values). This is
// the one place that builds and parses the command line; the other files of src/cli add
// their subcommands to it (command.h).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "cli/crash_report.h"
#include "sim/selftest.h"

namespace {

using quire::cli::kExitFailed;
using quire::cli::kExitUsage;
using quire::cli::write_report;

int run_sim_selftest(uint64_t seed, const std::string& json_path) {
  quire::SelftestOptions options;
  options.seed = seed;
  auto start = std::chrono::steady_clock::now();
  quire::SelftestReport r = quire::run_selftest(options);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  fmt::print("{}", quire::selftest_report_text(r, wall));
  if (!write_report(json_path, quire::selftest_report_json(r, wall))) return kExitFailed;
  return r.passed ? 0 : kExitFailed;
}

// The words before the first flag name subcommands, each of the one before it. When a word
// names none, and the command it follows takes no positional arguments (so the word can be
// nothing else), prints "unknown command" naming it and the valid ones, and returns false.
bool subcommands_known(const CLI::App& app, int argc, char** argv) {
  const CLI::App* command = &app;
  std::string path = "quire";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') return true;
    const std::vector<const CLI::App*> subcommands =
        command->get_subcommands([](const CLI::App*) { return true; });
    if (subcommands.empty() ||
        !command->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty())
      return true;
    const CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (const CLI::App* s : subcommands) {
      names.push_back(s->get_name());
      if (s->check_name(word)) next = s;
    }
    if (next == nullptr) {
      fmt::print(stderr, "{}: unknown command '{}' (valid: {})\n", path, word,
                 fmt::join(names, ", "));
      return false;
    }
    path += " " + word;
    command = next;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  quire::cli::install_crash_report();
  CLI::App app{"quire: a disaggregated-storage, encrypted key-value database"};
  app.require_subcommand(1);

  CLI::App* sim = app.add_subcommand("sim", "deterministic simulation runs");
  sim->require_subcommand(1);
  CLI::App* selftest = sim->add_subcommand(
      "selftest", "simulator self-test: 3 nodes under faults, checks its own invariants");
  uint64_t seed = 1;
  std::string json_path;
  selftest->add_option("--seed", seed, "simulation seed (a number)")->required();
  selftest->add_option("--json", json_path, "also write the report as JSON to this file");

  quire::cli::Commands commands;
  commands.push_back({selftest, [&] { return run_sim_selftest(seed, json_path); }});
  quire::cli::add_sim_kek_command(*sim, commands);
  quire::cli::add_pageserver_command(app, commands);
  quire::cli::add_pl_commands(app, commands);
  quire::cli::add_bench_commands(app, commands);
  quire::cli::add_kms_commands(app, commands);
  quire::cli::add_chaos_commands(app, commands);
  quire::cli::add_certs_commands(app, commands);
  quire::cli::add_node_command(app, commands);
  quire::cli::add_cluster_commands(app, commands);

  if (!subcommands_known(app, argc, argv)) return kExitUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  for (const auto& command : commands) {
    if (*command.app) return command.run();
  }
  return kExitUsage;
}
