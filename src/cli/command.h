// How the quire program's subcommands plug into main.cc, which alone builds and parses the
// command line. Each file of src/cli adds its subcommands and their flags to the parser
// and registers what runs when the parser selected one; main.cc runs it and exits with
// what it returns.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "base/status.h"
#include "runtime/real/real_env.h"

namespace quire::cli {

inline constexpr int kExitOk = 0;
// What ran failed its checks, or could not run (a held lock, an unbindable address, a
// server that cannot be reached).
inline constexpr int kExitFailed = 1;
// Bad usage: unknown subcommands or flags, malformed values.
inline constexpr int kExitUsage = 2;

struct Command {
  CLI::App* app;             // the subcommand
  std::function<int()> run;  // runs it once parsed; returns the exit code
};
using Commands = std::vector<Command>;

// `quire pageserver` (pageserver_cmd.cc).
void add_pageserver_command(CLI::App& app, Commands& commands);
// `quire pl status|verify|dump` (pl_cmd.cc).
void add_pl_commands(CLI::App& app, Commands& commands);
// The `quire bench` group and `quire bench pageserver` (bench_cmd.cc).
void add_bench_commands(CLI::App& app, Commands& commands);
// `quire bench engine` (bench_engine_cmd.cc), added to the bench group.
void add_bench_engine_command(CLI::App& bench, Commands& commands);

// `quire sim kek` (sim_kek_cmd.cc), the seed runner, added to the sim group.
void add_sim_kek_command(CLI::App& sim, Commands& commands);

// `quire chaos race` (chaos_cmd.cc).
void add_chaos_commands(CLI::App& app, Commands& commands);
// `quire chaos real` (chaos_real_cmd.cc), added to the chaos group.
void add_chaos_real_command(CLI::App& chaos, Commands& commands);

// `quire kms status|rotate` (kms_cmd.cc).
void add_kms_commands(CLI::App& app, Commands& commands);

// `quire certs create-ca|create-node` (certs_cmd.cc).
void add_certs_commands(CLI::App& app, Commands& commands);

// `quire node` (node_cmd.cc).
void add_node_command(CLI::App& app, Commands& commands);

// `quire cluster init|start|status|stop|kill` (cluster_cmd.cc).
void add_cluster_commands(CLI::App& app, Commands& commands);

// The TLS identity of a node command: --tls-ca, --tls-cert and --tls-key, all three or
// none (anything else is a parse error, exit 2). Every command that talks to nodes takes
// them through add_tls_flags and applies them with enable_tls_flags.
struct TlsFlags {
  TlsOptions files;
  bool given() const { return !files.ca_file.empty(); }
};
// Adds the three flags to `cmd`; `flags` must outlive the parse.
void add_tls_flags(CLI::App& cmd, TlsFlags& flags);
// Makes `env`'s network mutual TLS when the flags were given (before it listens or
// connects); OK and nothing changes when they were not. The error names the bad file.
Status enable_tls_flags(RealEnv& env, const TlsFlags& flags);

// Whether a "host:port" the validator accepted is on the loopback interface (127.0.0.0/8,
// ::1, localhost), where plaintext stays allowed for development and tests.
bool is_loopback_address(const std::string& address);

// Validators, so a malformed value is a parse error (exit 2) like any other.
// "host:port" as the real network takes it (IPv4, localhost, [IPv6]).
CLI::Validator tcp_address_validator();
// "debug", "info", "warning", "error".
CLI::Validator severity_validator();
// Any value but the empty string (a directory, a file).
CLI::Validator nonempty_validator();

// Where a process's log lines go: the file at `path` (appended), or stderr when empty.
Result<std::unique_ptr<LogSink>> open_log_sink(const std::string& path);

// Writes `text` to `path` (nothing when `path` is empty); false, with "quire: cannot write"
// on stderr, when it could not.
bool write_report(const std::string& path, const std::string& text);

}  // namespace quire::cli
