// The `quire bench` group and `quire bench pageserver` (bench/pageserver_bench.h).
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/pageserver_bench.h"
#include "cli/command.h"
#include "pagelog/record.h"

namespace quire::cli {

namespace {

struct BenchFlags {
  bench::PageserverBenchOptions options;
  std::vector<std::string> servers;
  std::string log_path;
  std::string log_level = "warning";
  TlsFlags tls;
};

int run_bench_pageserver(BenchFlags& flags) {
  if (flags.servers.empty() == flags.options.data.empty()) {
    fmt::print(stderr, "quire bench pageserver: give exactly one of --servers and --data\n");
    return kExitUsage;
  }
  flags.options.servers.assign(flags.servers.begin(), flags.servers.end());
  if (flags.tls.given()) flags.options.tls = flags.tls.files;
  auto sink = open_log_sink(flags.log_path);
  if (!sink.is_ok()) {
    fmt::print(stderr, "quire bench pageserver: {}\n", sink.status().message());
    return kExitFailed;
  }
  flags.options.sink = sink->get();
  flags.options.severity = *parse_severity(flags.log_level);
  Result<bool> complete = bench::run_pageserver_bench(flags.options);
  if (!complete.is_ok()) {
    fmt::print(stderr, "quire bench pageserver: {}\n", complete.status().message());
    return kExitFailed;
  }
  return *complete ? kExitOk : kExitFailed;
}

}  // namespace

void add_bench_commands(CLI::App& app, Commands& commands) {
  CLI::App* bench =
      app.add_subcommand("bench", "benchmarks: they print figures, never a verdict on speed");
  bench->require_subcommand(1);

  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = bench->add_subcommand("pageserver", "write throughput of the page service");
  cmd->footer(
      "Writes N LOG records (chained by prev_lsn, continuing the servers' chain) through a "
      "ReplicationClient with W = min(2, servers), K writes in flight of one record each, and "
      "report acked, durable_lsn, ops/s, MB/s (payload bytes, 10^6) and latency. With --data, "
      "runs an in-process server on DIR over loopback TCP and also measures raw append + "
      "fdatasync of the same frame size on DIR, one at a time (N writes or as long as the run, "
      "at least 1 s), reporting ratio_vs_raw_fdatasync = ops/s / raw ops/s. Exit 1 unless every "
      "write was acknowledged; 2 on bad usage (also: neither or both of --servers and --data). "
      "With --tls-ca, --tls-cert and --tls-key the client, and the in-process server, speak "
      "mutual TLS.");
  CLI::Option* servers = cmd->add_option("--servers", flags->servers, "page servers to write to")
                             ->delimiter(',')
                             ->check(tcp_address_validator());
  CLI::Option* data = cmd->add_option("--data", flags->options.data,
                                      "run an in-process page server on this data directory")
                          ->check(nonempty_validator());
  servers->excludes(data);
  cmd->add_option("--records", flags->options.records, "records to write")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--size", flags->options.size, "payload bytes per record")
      ->required()
      ->check(CLI::Range(uint64_t{0}, uint64_t{kRecordPayloadMax}));
  cmd->add_option("--concurrency", flags->options.concurrency, "writes in flight")
      ->check(CLI::Range(uint64_t{1}, bench::kPageserverBenchConcurrencyMax))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", flags->options.timeout_ms, "deadline of each write")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--json", flags->options.json_path,
                  "also write the figures as JSON to this file");
  cmd->add_option("--log", flags->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--log-level", flags->log_level, "lowest severity logged")
      ->check(severity_validator())
      ->capture_default_str();
  add_tls_flags(*cmd, flags->tls);
  commands.push_back({cmd, [flags] { return run_bench_pageserver(*flags); }});

  add_bench_engine_command(*bench, commands);
}

}  // namespace quire::cli
