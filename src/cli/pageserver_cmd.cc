// `quire pageserver`: runs one page server in this process until SIGTERM or SIGINT.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/data_dir_lock.h"
#include "bench/local_page_server.h"
#include "cli/command.h"

namespace quire::cli {

using bench::DataDirLock;
using bench::LocalPageServer;

namespace {

constexpr NodeId kServerNode = 1;
// Recovery scans every segment before the server listens; a store far larger than this
// allows is not something to wait for silently.
constexpr Nanos kStartTimeout = std::chrono::minutes(10);

struct PageServerFlags {
  std::string listen;
  std::string data;
  std::vector<std::string> peers;
  std::string log_path;
  std::string log_level = "info";
  TlsFlags tls;
  bool insecure = false;
};

// Plaintext only on loopback, unless asked for by name: a page server reachable from
// other hosts without TLS would serve anyone who connects, and one that copies from a
// peer on another host would take whatever answers there for its peer.
bool plaintext_allowed(const PageServerFlags& flags) {
  return flags.tls.given() || flags.insecure ||
         (is_loopback_address(flags.listen) &&
          std::all_of(flags.peers.begin(), flags.peers.end(), is_loopback_address));
}

int run_pageserver(const PageServerFlags& flags) {
  if (!plaintext_allowed(flags)) {
    fmt::print(stderr,
               "quire pageserver: refusing plaintext: {} or a peer is not a loopback address: "
               "give --tls-ca, --tls-cert and --tls-key (see quire certs), or --insecure\n",
               flags.listen);
    return kExitUsage;
  }
  // The lock comes first: nothing else may touch a directory another server owns.
  auto lock = DataDirLock::acquire(flags.data);
  if (!lock.is_ok()) {
    fmt::print(stderr, "quire pageserver: {}\n", lock.status().message());
    return kExitFailed;
  }
  auto sink = open_log_sink(flags.log_path);
  if (!sink.is_ok()) {
    fmt::print(stderr, "quire pageserver: {}\n", sink.status().message());
    return kExitFailed;
  }
  RealLoop loop;
  if (Status st = loop.watch_signals(); !st.is_ok()) {
    fmt::print(stderr, "quire pageserver: {}\n", st.to_string());
    return kExitFailed;
  }

  PageServerOptions options;
  options.listen = flags.listen;
  options.peers = flags.peers;
  options.store.dir = "segments";
  LocalPageServer node(loop, kServerNode, flags.data, std::move(options), sink->get(),
                       *parse_severity(flags.log_level));
  // Before it listens or dials a peer: its catch-up connections share this identity.
  if (Status st = enable_tls_flags(node.env(), flags.tls); !st.is_ok()) {
    fmt::print(stderr, "quire pageserver: {}\n", st.message());
    return kExitFailed;
  }
  Result<Address> bound = node.start(kStartTimeout);
  if (!node.env().restart_requested().is_ok()) {
    fmt::print(stderr, "quire pageserver: restart requested: {}\n",
               node.env().restart_requested().to_string());
    return kExitRestart;
  }
  if (bound.code() == Code::kCancelled) return kExitOk;  // SIGTERM or SIGINT while recovering
  if (!bound.is_ok()) {
    fmt::print(stderr, "quire pageserver: {}\n", bound.status().message());
    return kExitFailed;
  }
  fmt::print("pageserver listening on {} data {}\n", *bound, flags.data);
  std::fflush(stdout);

  loop.run();  // until a signal, or the node asks to be restarted
  if (!node.env().restart_requested().is_ok()) {
    fmt::print(stderr, "quire pageserver: restart requested: {}\n",
               node.env().restart_requested().to_string());
    return kExitRestart;
  }
  return kExitOk;
}

}  // namespace

void add_pageserver_command(CLI::App& app, Commands& commands) {
  auto flags = std::make_shared<PageServerFlags>();
  CLI::App* cmd = app.add_subcommand("pageserver", "run a page server until SIGTERM or SIGINT");
  cmd->footer(
      "Prints 'pageserver listening on HOST:PORT data DIR' once serving. Exit 0 after SIGTERM or "
      "SIGINT; 1 when it cannot run (the data directory is locked by another process, cannot "
      "be used as it is: unwritable, a file where DIR/segments belongs, a segment that is not "
      "a regular file; the address cannot be bound, a TLS file is unusable), naming the path; "
      "2 on bad usage (also: a non-loopback --listen or --peers address without the --tls-* flags "
      "or --insecure); "
      "75 when it asks to be restarted after a disk failure.");
  cmd->add_option("--listen", flags->listen, "address to serve on; port 0 picks a free port")
      ->required()
      ->check(tcp_address_validator());
  cmd->add_option("--data", flags->data,
                  "data directory (created when missing; locked via DIR/LOCK)")
      ->required()
      ->check(nonempty_validator());
  cmd->add_option("--peers", flags->peers, "the other page servers, to catch up from")
      ->delimiter(',')
      ->check(tcp_address_validator());
  cmd->add_option("--log", flags->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--log-level", flags->log_level, "lowest severity logged")
      ->check(severity_validator())
      ->capture_default_str();
  add_tls_flags(*cmd, flags->tls);
  cmd->add_flag("--insecure", flags->insecure,
                "allow plaintext on a non-loopback --listen or --peers address (no TLS flags)")
      ->excludes("--tls-ca");
  commands.push_back({cmd, [flags] { return run_pageserver(*flags); }});
}

}  // namespace quire::cli
