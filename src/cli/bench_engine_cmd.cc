// `quire bench engine`: what encryption costs the engine (bench/engine_bench.h).
#include <memory>
#include <string>

#include <fmt/format.h>

#include "bench/engine_bench.h"
#include "cli/command.h"

namespace quire::cli {

namespace {

struct EngineBenchFlags {
  bench::EngineBenchOptions options;
  std::string log_path;
  std::string log_level = "warning";
};

int run_bench_engine(EngineBenchFlags& flags) {
  auto sink = open_log_sink(flags.log_path);
  Status st = sink.is_ok() ? Status::ok() : sink.status();
  if (st.is_ok()) {
    flags.options.sink = sink->get();
    flags.options.severity = *parse_severity(flags.log_level);
    st = bench::run_engine_bench(flags.options);
  }
  if (st.is_ok()) return kExitOk;
  fmt::print(stderr, "quire bench engine: {}\n", st.message());
  return kExitFailed;
}

}  // namespace

void add_bench_engine_command(CLI::App& bench, Commands& commands) {
  auto flags = std::make_shared<EngineBenchFlags>();
  CLI::App* cmd = bench.add_subcommand("engine", "what encryption costs the engine");
  cmd->footer(
      "Runs two page services of 3 in-process page servers (loopback TCP, W=2) on DIR or a fresh "
      "temporary directory (removed afterwards), one compute node with a FileKms (CMK in "
      "DIR/compute), and per round and mode (encrypted, plaintext; the order alternating) a fresh "
      "Engine on a fresh table: N point writes of B-byte values with a checkpoint every N/10 "
      "(checkpoints timed in), N warm gets (every page cached), N/10 cold gets (the page cache "
      "cleared before each). Prints medians over rounds and encrypted/plaintext ratios of wall "
      "and of loop-thread CPU time (medians of each round's ratio); encryption_overhead_ratio is "
      "the wall one of writes + checkpoints (goal <= 1.10). Then, per message size (4 and 16 "
      "KiB), DataKey::seal and open_sealed against raw OpenSSL AES-256-GCM keyed once (a fresh IV "
      "from the same CSPRNG, no AAD), MB/s on one thread (goal: ratio >= 0.8). Goals are "
      "reported, never enforced: exit 0 unless the run could not be made (1); 2 on bad usage.");
  cmd->add_option("--data", flags->options.data,
                  "keep the page services and the CMK file in this directory")
      ->check(nonempty_validator());
  cmd->add_option("--json", flags->options.json_path,
                  "also write the figures as JSON to this file");
  cmd->add_option("--keys", flags->options.keys, "keys written per round and mode (N)")
      ->check(CLI::Range(uint64_t{1}, bench::kEngineBenchKeysMax))
      ->capture_default_str();
  cmd->add_option("--value-bytes", flags->options.value_bytes, "bytes per value (B)")
      ->check(CLI::Range(uint64_t{0}, bench::kEngineBenchValueBytesMax))
      ->capture_default_str();
  cmd->add_option("--rounds", flags->options.rounds, "rounds (R); figures are medians over them")
      ->check(CLI::Range(uint64_t{1}, bench::kEngineBenchRoundsMax))
      ->capture_default_str();
  cmd->add_option("--log", flags->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--log-level", flags->log_level, "lowest severity logged")
      ->check(severity_validator())
      ->capture_default_str();
  commands.push_back({cmd, [flags] { return run_bench_engine(*flags); }});
}

}  // namespace quire::cli
