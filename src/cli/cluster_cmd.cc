// `quire cluster init|start|status|stop|kill` (and the hidden `supervise`): a local cluster
// in one command. What each does is in src/cluster/.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cluster/cluster_ops.h"

namespace quire::cli {

namespace {

using namespace quire::cluster;

struct ClusterFlags {
  std::string dir;
  ClusterSpec spec;  // init's choices
  bool no_tls = false;
  bool json = false;
  int wait_s = 60;
  std::string name;
  std::string signal = "KILL";
};

std::string absolute_dir(const std::string& dir) {
  std::string d = std::filesystem::absolute(dir).lexically_normal().string();
  if (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

// This program's own path: the supervisor runs the same build.
std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("quire") : p.string();
}

Result<ClusterSpec> load(const ClusterFlags& flags, const char* what) {
  auto spec = load_spec(absolute_dir(flags.dir));
  if (!spec.is_ok()) fmt::print(stderr, "quire cluster {}: {}\n", what, spec.status().message());
  return spec;
}

int run_init(ClusterFlags& flags) {
  flags.spec.dir = absolute_dir(flags.dir);
  flags.spec.tls = !flags.no_tls;
  flags.spec.write_quorum = flags.spec.pageservers / 2 + 1;
  if (Status st = init_cluster(flags.spec); !st.is_ok()) {
    fmt::print(stderr, "quire cluster init: {}\n", st.message());
    return st.code() == Code::kInvalidArgument ? kExitFailed : kExitFailed;
  }
  fmt::print(
      "initialized cluster '{}' in {}: etcd {}, {} page servers (W={}), {} compute nodes, "
      "{}\n",
      flags.spec.name, flags.spec.dir, flags.spec.etcd_client(), flags.spec.pageservers,
      flags.spec.write_quorum, flags.spec.compute_nodes(),
      flags.spec.tls ? "mutual TLS between nodes" : "plaintext");
  if (!flags.spec.requirepass.empty()) {
    fmt::print("  clients must AUTH: the password is in {}\n", flags.spec.requirepass_path());
  }
  for (size_t i = 0; i < flags.spec.compute_nodes(); ++i) {
    fmt::print("  {} serves Redis clients at {}\n", flags.spec.node_name(i),
               flags.spec.node_address(i));
  }
  fmt::print("start it with: quire cluster start {}\n", flags.spec.dir);
  return kExitOk;
}

int run_start(const ClusterFlags& flags) {
  auto spec = load(flags, "start");
  if (!spec.is_ok()) return kExitFailed;
  auto started = start_cluster(*spec, self_path(), std::chrono::seconds(flags.wait_s));
  if (!started.is_ok()) {
    fmt::print(stderr, "quire cluster start: {} (logs in {}/logs)\n", started.status().message(),
               spec->dir);
    auto report = cluster_status(*spec);
    if (report.is_ok() && report->supervisor_pid) {
      // Left running on purpose: what did come up, and its logs, help to see why.
      fmt::print(stderr,
                 "quire cluster start: what did start keeps running under the supervisor (pid "
                 "{}): `quire cluster status {}` shows it, "
                 "`quire cluster stop {}` stops it\n",
                 *report->supervisor_pid, spec->dir, spec->dir);
    }
    return kExitFailed;
  }
  if (started->already_running) {
    fmt::print("cluster {} is already running (supervisor pid {}); every process is up\n",
               spec->dir, started->supervisor_pid);
  } else {
    fmt::print("cluster {} started (supervisor pid {})\n", spec->dir, started->supervisor_pid);
  }
  auto report = cluster_status(*spec);
  if (report.is_ok()) {
    for (const auto& p : report->processes) {
      if (p.node && p.node->role == "primary") {
        fmt::print("primary: {} at {} (redis-cli -p {}{})\n", p.process.name, p.process.address,
                   p.process.address.substr(p.process.address.rfind(':') + 1),
                   spec->requirepass.empty() ? "" : " --askpass");
      }
    }
  }
  return kExitOk;
}

nlohmann::ordered_json report_json(const ClusterReport& r) {
  nlohmann::ordered_json j;
  j["supervisor_pid"] = r.supervisor_pid ? *r.supervisor_pid : 0;
  j["running"] = r.supervisor_pid.has_value();
  auto& ps = j["processes"] = nlohmann::ordered_json::array();
  for (const auto& p : r.processes) {
    nlohmann::ordered_json e;
    e["kind"] = process_kind_name(p.process.kind);
    e["name"] = p.process.name;
    e["pid"] = p.process.alive ? p.process.pid : 0;
    e["alive"] = p.process.alive;
    e["address"] = p.process.address;
    e["starts"] = p.process.starts;
    e["restarts"] = p.process.restarts;
    e["last_exit"] = p.process.last_exit;
    if (p.node) {
      e["answered"] = p.node->answered;
      if (!p.node->answered) e["error"] = p.node->error;
      e["role"] = p.node->role;
      e["state"] = p.node->state;
      e["term"] = p.node->term;
      e["applied_ts"] = p.node->applied_ts;
      e["applied_lsn"] = p.node->applied_lsn;
      e["lag_lsn"] = p.lag_lsn;
      e["checkpoint_lsn"] = p.node->checkpoint_lsn;
      e["keystore_version"] = p.node->keystore_version;
    }
    ps.push_back(std::move(e));
  }
  return j;
}

int run_status(const ClusterFlags& flags) {
  auto spec = load(flags, "status");
  if (!spec.is_ok()) return kExitFailed;
  auto report = cluster_status(*spec);
  if (!report.is_ok()) {
    fmt::print(stderr, "quire cluster status: {}\n", report.status().message());
    return kExitFailed;
  }
  if (flags.json) {
    fmt::print("{}\n", report_json(*report).dump(2));
    return kExitOk;
  }
  fmt::print("cluster {} ({}): {}\n", spec->name, spec->dir,
             report->supervisor_pid
                 ? fmt::format("running, supervisor pid {}", *report->supervisor_pid)
                 : std::string("not running"));
  fmt::print("{:<10} {:<8} {:>7} {:<5} {:<8} {:<10} {:>5} {:<16} {:>20} {:>7} {:>9} {:>8}\n",
             "KIND", "NAME", "PID", "ALIVE", "ROLE", "STATE", "TERM", "ADDRESS", "APPLIED_TS",
             "LAG", "CKPT_LSN", "KEYSTORE");
  for (const auto& p : report->processes) {
    const bool n = p.node && p.node->answered;
    fmt::print("{:<10} {:<8} {:>7} {:<5} {:<8} {:<10} {:>5} {:<16} {:>20} {:>7} {:>9} {:>8}\n",
               process_kind_name(p.process.kind), p.process.name,
               p.process.alive ? std::to_string(p.process.pid) : "-",
               p.process.alive ? "yes" : "no", n ? p.node->role : "-", n ? p.node->state : "-",
               n ? std::to_string(p.node->term) : "-", p.process.address,
               n ? std::to_string(p.node->applied_ts) : "-",
               p.lag_lsn >= 0 ? std::to_string(p.lag_lsn) : "-",
               n ? std::to_string(p.node->checkpoint_lsn) : "-",
               n ? std::to_string(p.node->keystore_version) : "-");
    if (!p.process.alive && !p.process.last_exit.empty()) {
      fmt::print("           {} ended: {}\n", p.process.name, p.process.last_exit);
    }
    if (p.node && !p.node->answered) {
      fmt::print("           {} does not answer: {}\n", p.process.name, p.node->error);
    }
  }
  return kExitOk;
}

int run_stop(const ClusterFlags& flags) {
  auto spec = load(flags, "stop");
  if (!spec.is_ok()) return kExitFailed;
  const bool was_running = running_supervisor(*spec).has_value();
  if (Status st = stop_cluster(*spec); !st.is_ok()) {
    fmt::print(stderr, "quire cluster stop: {}\n", st.message());
    return kExitFailed;
  }
  fmt::print("cluster {} {}\n", spec->dir, was_running ? "stopped" : "was not running");
  return kExitOk;
}

int parse_signal(const std::string& name) {
  if (name == "KILL") return SIGKILL;
  if (name == "STOP") return SIGSTOP;
  if (name == "CONT") return SIGCONT;
  if (name == "TERM") return SIGTERM;
  return 0;
}

int run_kill(const ClusterFlags& flags) {
  auto spec = load(flags, "kill");
  if (!spec.is_ok()) return kExitFailed;
  if (Status st = kill_process(*spec, flags.name, parse_signal(flags.signal)); !st.is_ok()) {
    fmt::print(stderr, "quire cluster kill: {}\n", st.message());
    return kExitFailed;
  }
  fmt::print("sent SIG{} to {}\n", flags.signal, flags.name);
  return kExitOk;
}

int run_supervise(const ClusterFlags& flags) {
  auto spec = load(flags, "supervise");
  if (!spec.is_ok()) return kExitFailed;
  return run_supervisor(*spec, self_path());
}

void add_dir(CLI::App* cmd, ClusterFlags& flags) {
  cmd->add_option("DIR", flags.dir, "the cluster's directory")
      ->required()
      ->check(nonempty_validator());
}

}  // namespace

void add_cluster_commands(CLI::App& app, Commands& commands) {
  CLI::App* cluster = app.add_subcommand("cluster",
                                         "a local cluster in one command: etcd, page "
                                         "servers and compute nodes under a supervisor");
  cluster->require_subcommand(1);
  auto flags = std::make_shared<ClusterFlags>();

  CLI::App* init = cluster->add_subcommand("init",
                                           "write a new cluster's layout, certificates "
                                           "and CMK into DIR");
  add_dir(init, *flags);
  init->add_option("--pageservers", flags->spec.pageservers, "page servers (W is a majority)")
      ->check(CLI::Range(size_t{1}, kPageServersMax))
      ->capture_default_str();
  init->add_option("--standbys", flags->spec.standbys, "compute nodes besides the first")
      ->check(CLI::Range(size_t{0}, kComputeNodesMax - 1))
      ->capture_default_str();
  init->add_option("--base-port", flags->spec.base_port,
                   "etcd at P and P+1, page servers at P+10.., compute nodes at P+20..")
      ->check(CLI::Range(1024, 65535 - 30))
      ->capture_default_str();
  init->add_option("--name", flags->spec.name, "the cluster's name (its election in etcd)")
      ->capture_default_str();
  init->add_option("--group-pipeline-min", flags->spec.group_pipeline_min,
                   "every compute node's --group-pipeline-min (0: the node's default)")
      ->check(CLI::Range(size_t{0}, kGroupPipelineMinMax))
      ->capture_default_str();
  init->add_option("--group-gather-us", flags->spec.group_gather_us,
                   "every compute node's --group-gather-us (by default the node's own)")
      ->check(CLI::Range(int64_t{0}, kGroupGatherUsMax));
  init->add_flag("--no-tls", flags->no_tls, "plaintext between the nodes (loopback only)");
  init->add_option("--requirepass", flags->spec.requirepass,
                   "every compute node's Redis AUTH password (kept in DIR/requirepass, mode "
                   "0600)")
      ->check(CLI::Validator(
          [](const std::string& password) {
            Status st = validate_password(password);
            return st.is_ok() ? std::string() : st.message();
          },
          "PASSWORD", "password"));
  commands.push_back({init, [flags] { return run_init(*flags); }});

  CLI::App* start = cluster->add_subcommand(
      "start",
      "start the cluster in the background; returns once a primary serves and every "
      "standby is SECONDARY and knows the primary");
  add_dir(start, *flags);
  start->add_option("--wait", flags->wait_s, "seconds to wait for the cluster to come up")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  start->footer(
      "Exit 0 once up (also when it was already running: processes that were down "
      "are started); 1 naming what did not come up.");
  commands.push_back({start, [flags] { return run_start(*flags); }});

  CLI::App* status = cluster->add_subcommand("status",
                                             "every process: kind, pid, role, state, "
                                             "term, applied ts, lag, checkpoint, keystore");
  add_dir(status, *flags);
  status->add_flag("--json", flags->json, "print JSON");
  commands.push_back({status, [flags] { return run_status(*flags); }});

  CLI::App* stop = cluster->add_subcommand("stop",
                                           "stop every process cleanly (compute nodes, "
                                           "page servers, etcd)");
  add_dir(stop, *flags);
  commands.push_back({stop, [flags] { return run_stop(*flags); }});

  CLI::App* kill =
      cluster->add_subcommand("kill", "send a signal to one process (fault injection)");
  add_dir(kill, *flags);
  kill->add_option("NAME", flags->name, "the process (etcd, ps1.., node1..)")->required();
  kill->add_option("--signal", flags->signal, "KILL, STOP, CONT or TERM")
      ->check(CLI::IsMember({"KILL", "STOP", "CONT", "TERM"}))
      ->capture_default_str();
  commands.push_back({kill, [flags] { return run_kill(*flags); }});

  CLI::App* supervise = cluster->add_subcommand("supervise",
                                                "run the supervisor in the "
                                                "foreground (what start runs)");
  supervise->group("");  // hidden: start runs it
  add_dir(supervise, *flags);
  commands.push_back({supervise, [flags] { return run_supervise(*flags); }});
}

}  // namespace quire::cli
