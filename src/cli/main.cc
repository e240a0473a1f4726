// The quire program. Subcommands are added by the layers they drive; each prints a
// readable summary and exits 0 on success, 1 when what it ran failed its checks or could
// not run, and 2 on bad usage (unknown subcommands or flags, malformed values). This is
// the one place that builds and parses the command line; the other files of src/cli add
// their subcommands to it (command.h).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "sim/selftest.h"

namespace {

using quire::cli::kExitFailed;
using quire::cli::kExitUsage;

int run_sim_selftest(uint64_t seed, const std::string& json_path) {
  quire::SelftestOptions options;
  options.seed = seed;
  auto start = std::chrono::steady_clock::now();
  quire::SelftestReport r = quire::run_selftest(options);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const auto& m = r.mix;
  fmt::print("quire sim selftest: seed {}\n", r.seed);
  fmt::print(
      "  fault mix: crashes={} partitions={} message_faults={} (drop={:.3f} dup={:.3f} reorder={}) "
      "disk_faults={} (eio={:.3f}) clock_skew={} interval={}ms\n",
      m.crashes, m.partitions, m.message_faults, m.drop, m.duplicate, m.reorder, m.disk_faults,
      m.disk_eio, m.clock_skew, m.fault_interval_ms);
  fmt::print("  simulated {:.1f} s in {:.2f} s wall ({:.0f}x), {} events\n", r.sim_seconds, wall,
             wall > 0 ? r.sim_seconds / wall : 0.0, r.events);
  fmt::print("  messages acked {}, delivered {}; durable appends {}; recoveries checked {}\n",
             r.messages_acked, r.messages_delivered, r.appends_durable, r.recoveries_checked);
  fmt::print(
      "  faults: crashes {}, fail-stop restarts {}, partitions {}, clock skews {}, disk EIO {}, "
      "messages sent {} dropped {} duplicated {}\n",
      r.crashes, r.fail_stop_restarts, r.partitions, r.clock_skews, r.disk_eio_injected, r.net_sent,
      r.net_dropped, r.net_duplicated);
  for (const auto& v : r.violations) fmt::print("  VIOLATION: {}\n", v);
  if (!r.passed) {
    fmt::print("  replay: quire sim selftest --seed {}\n", r.seed);
    fmt::print("---- node logs ----\n{}", r.failure_logs);
  }
  fmt::print("{} trace=0x{:016x}\n", r.passed ? "PASSED" : "FAILED", r.trace_hash);

  if (!json_path.empty()) {
    nlohmann::ordered_json j;
    j["seed"] = r.seed;
    j["trace_hash"] = fmt::format("0x{:016x}", r.trace_hash);
    j["events"] = r.events;
    j["sim_seconds"] = r.sim_seconds;
    j["wall_seconds"] = wall;
    j["passed"] = r.passed;
    j["messages_acked"] = r.messages_acked;
    j["messages_delivered"] = r.messages_delivered;
    j["appends_durable"] = r.appends_durable;
    j["recoveries_checked"] = r.recoveries_checked;
    j["fault_mix"] = {{"crashes", m.crashes},
                      {"partitions", m.partitions},
                      {"message_faults", m.message_faults},
                      {"drop", m.drop},
                      {"duplicate", m.duplicate},
                      {"reorder", m.reorder},
                      {"disk_faults", m.disk_faults},
                      {"disk_eio", m.disk_eio},
                      {"clock_skew", m.clock_skew},
                      {"fault_interval_ms", m.fault_interval_ms}};
    j["violations"] = r.violations;
    std::ofstream out(json_path);
    out << j.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "quire: cannot write {}\n", json_path);
      return kExitFailed;
    }
  }
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
