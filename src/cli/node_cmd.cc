// `quire node`: runs one compute node (cluster/compute_node.h) in this process until SIGTERM
// or SIGINT.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "cli/command.h"
#include "cluster/cluster_spec.h"
#include "cluster/compute_node.h"

namespace quire::cli {

namespace {

constexpr Nanos kStartTimeout = std::chrono::seconds(30);
// How long a shutting-down primary waits for the election to pass to another node.
constexpr Nanos kRetireTimeout = std::chrono::seconds(3);

struct NodeFlags {
  cluster::ComputeNodeOptions node;
  std::string log_path;
  std::string log_level = "info";
  std::string pickup_policy = "accept";
  std::string requirepass_file;
  TlsFlags tls;
  bool insecure = false;
};

int run_node(NodeFlags flags) {
  flags.node.process_id = static_cast<uint64_t>(::getpid());
  flags.node.pickup_policy = *parse_pickup_policy(flags.pickup_policy);
  if (!flags.requirepass_file.empty()) {
    auto password = cluster::read_password_file(flags.requirepass_file);
    if (!password.is_ok()) {
      fmt::print(stderr, "quire node: --requirepass-file: {}\n", password.status().message());
      return kExitFailed;
    }
    flags.node.requirepass = std::move(*password);
  }
  // Plaintext to page servers only on loopback, unless asked for by name: anything that
  // answers at a page server's address on another host could acknowledge writes it never
  // stored, or fence the primary.
  if (!flags.tls.given() && !flags.insecure &&
      !std::all_of(flags.node.pageservers.begin(), flags.node.pageservers.end(),
                   is_loopback_address)) {
    fmt::print(stderr,
               "quire node: refusing plaintext to a page server that is not on a loopback "
               "address: give --tls-ca, --tls-cert and --tls-key (see quire certs), or "
               "--insecure\n");
    return kExitUsage;
  }
  // etcd over https: the node's own mutual-TLS files (etcd's certificate signed by the
  // cluster's CA).
  if (!flags.node.etcd.empty() && flags.node.etcd.front().starts_with("https://")) {
    if (!flags.tls.given()) {
      fmt::print(stderr,
                 "quire node: --etcd https://... needs --tls-ca, --tls-cert and --tls-key\n");
      return kExitUsage;
    }
    flags.node.etcd_tls_ca_file = flags.tls.files.ca_file;
    flags.node.etcd_tls_cert_file = flags.tls.files.cert_file;
    flags.node.etcd_tls_key_file = flags.tls.files.key_file;
  }
  if (Status st = cluster::validate(flags.node); !st.is_ok()) {
    fmt::print(stderr, "quire node: {}\n", st.message());
    return kExitUsage;
  }
  auto sink = open_log_sink(flags.log_path);
  if (!sink.is_ok()) {
    fmt::print(stderr, "quire node: {}\n", sink.status().message());
    return kExitFailed;
  }
  RealLoop loop;
  if (Status st = loop.watch_signals(); !st.is_ok()) {
    fmt::print(stderr, "quire node: {}\n", st.to_string());
    return kExitFailed;
  }
  cluster::ComputeNode node(loop, flags.node, sink->get(), *parse_severity(flags.log_level));
  if (Status st = enable_tls_flags(node.env(), flags.tls); !st.is_ok()) {
    fmt::print(stderr, "quire node: {}\n", st.message());
    return kExitFailed;
  }
  Result<Address> bound = node.start(kStartTimeout);
  if (bound.code() == Code::kCancelled) return kExitOk;
  if (!bound.is_ok()) {
    fmt::print(stderr, "quire node: {}\n", bound.status().message());
    return kExitFailed;
  }
  fmt::print("node {} serving Redis clients on {}\n", flags.node.name, *bound);
  std::fflush(stdout);

  loop.run();  // until a signal, or the node asks to be restarted
  if (!node.env().restart_requested().is_ok()) {
    fmt::print(stderr, "quire node: restart requested: {}\n",
               node.env().restart_requested().to_string());
    return kExitRestart;
  }
  node.shutdown(kRetireTimeout);
  return kExitOk;
}

}  // namespace

void add_node_command(CLI::App& app, Commands& commands) {
  auto flags = std::make_shared<NodeFlags>();
  cluster::ComputeNodeOptions& n = flags->node;
  CLI::App* cmd = app.add_subcommand(
      "node", "run a compute node (primary or standby, by election) until SIGTERM or SIGINT");
  cmd->footer(
      "Every node campaigns in etcd's election /quire/CLUSTER/primary; the winner takes over "
      "the database on the page servers and serves writes, the others serve reads at their "
      "applied timestamp. Prints 'node NAME serving Redis clients on HOST:PORT' once listening. "
      "Exit 0 after SIGTERM or SIGINT (a primary first gives its leadership back); 1 when it "
      "cannot run (the CMK file, the client port, a TLS file); 2 on bad usage; 75 when it asks "
      "to be restarted.");
  cmd->add_option("--name", n.name, "the node's name (logs, INFO, QUIRE.STATUS)")
      ->required()
      ->check(nonempty_validator());
  cmd->add_option("--client", n.client, "address the Redis protocol listens on")
      ->required()
      ->check(tcp_address_validator());
  cmd->add_option("--advertise", n.advertise,
                  "client address other nodes and clients reach this node at (default: --client)")
      ->check(tcp_address_validator());
  cmd->add_option("--pageservers", n.pageservers, "the page servers, in the cluster's order")
      ->required()
      ->delimiter(',')
      ->check(tcp_address_validator());
  cmd->add_option("--write-quorum", n.write_quorum, "page servers that must store each write")
      ->capture_default_str();
  cmd->add_option("--preferred-pageserver", n.preferred_pageserver,
                  "index (from 0) of the page server reads try first")
      ->capture_default_str();
  cmd->add_option("--etcd", n.etcd,
                  "etcd client URLs (http://HOST:PORT, or https://HOST:PORT with the --tls-* "
                  "files: mutual TLS, etcd's certificate signed by the same CA), comma-separated")
      ->required()
      ->delimiter(',');
  cmd->add_option("--cluster", n.cluster, "the cluster's name (its election)")
      ->capture_default_str();
  cmd->add_option("--cmk", n.cmk_file, "the CMK file (see quire kms status --create)")
      ->required()
      ->check(nonempty_validator());
  CLI::Option* pass =
      cmd->add_option("--requirepass", n.requirepass,
                      "Redis AUTH password (standbys use it to report to the primary; it shows "
                      "in the process list: prefer --requirepass-file)");
  cmd->add_option("--requirepass-file", flags->requirepass_file,
                  "read the Redis AUTH password from this file's first line")
      ->excludes(pass);
  cmd->add_option("--databases", n.databases, "number of Redis databases (SELECT 0..N-1)")
      ->capture_default_str();
  cmd->add_option("--slowlog-log-slower-than", n.slowlog_log_slower_than_us,
                  "SLOWLOG logs calls of at least this many microseconds (negative: none)")
      ->capture_default_str();
  cmd->add_option("--slowlog-max-len", n.slowlog_max_len, "SLOWLOG keeps this many entries")
      ->capture_default_str();
  cmd->add_option("--group-pipeline-min", n.group_pipeline_min,
                  "queued writes that let a commit group leave while another is still on its "
                  "way to the page servers, whatever their disks' speed (by default 64, or 8 "
                  "while their fdatasyncs take 2 ms or more: docs/deploy.md)")
      ->check(CLI::Range(size_t{1}, cluster::kGroupPipelineMinMax));
  cmd->add_option("--group-gather-us", n.group_gather_us,
                  "once a commit group is durable, hold the next one back up to this long (and "
                  "at most half that group's commit time) until the clients just answered have "
                  "written again, so they share one group (default 1000; 0: never; "
                  "docs/replication.md)")
      ->check(CLI::Range(int64_t{0}, cluster::kGroupGatherUsMax));
  cmd->add_option("--pickup-policy", flags->pickup_policy,
                  "a checkpoint whose keystore is older than the node's: accept (install, keep "
                  "the newer keys), skip, resync, or abort (the original bug's behaviour)")
      ->check([](const std::string& v) {
        auto p = parse_pickup_policy(v);
        return p.is_ok() ? std::string() : p.status().message();
      })
      ->capture_default_str();
  cmd->add_option("--log", flags->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--log-level", flags->log_level, "lowest severity logged")
      ->check(severity_validator())
      ->capture_default_str();
  add_tls_flags(*cmd, flags->tls);
  cmd->add_flag("--insecure", flags->insecure,
                "allow plaintext to page servers that are not on a loopback address (no TLS "
                "flags)")
      ->excludes("--tls-ca");
  commands.push_back({cmd, [flags] { return run_node(*flags); }});
}

}  // namespace quire::cli
