// `quire chaos real`: the kek chaos scenario on a real local cluster (cluster/chaos_real.h).
// Flags and printing only.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cluster/chaos_real.h"

namespace quire::cli {

namespace {

using namespace quire::cluster;

struct RealFlags {
  uint64_t seed = 1;
  double duration_s = 300;
  std::string policy = "accept";
  size_t standbys = 2;
  std::string dir;
  bool keep = false;
  bool disk_full = false;
  std::string json_path;
  std::string plant;
};

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) {
  g_interrupted = true;
}

std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("quire") : p.string();
}

int run_real(const RealFlags& f) {
  auto policy = parse_pickup_policy(f.policy);
  if (!policy.is_ok()) {
    fmt::print(stderr, "quire chaos real: {}\n", policy.status().message());
    return kExitUsage;
  }
  auto plant = parse_planted_fault(f.plant);
  if (!plant.is_ok()) {
    fmt::print(stderr, "quire chaos real: {}\n", plant.status().message());
    return kExitUsage;
  }
  ChaosRealOptions o;
  o.plant = *plant;
  o.seed = f.seed;
  o.policy = *policy;
  o.duration_ms = static_cast<int64_t>(f.duration_s * 1000);
  o.standbys = f.standbys;
  o.dir = f.dir;
  o.keep = f.keep;
  // The fault proxies live in this process: a cluster kept after the run goes without them.
  o.network = !f.keep;
  o.disk_full = f.disk_full;
  o.quire = self_path();
  o.say = [](const std::string& line) {
    fmt::print("{}\n", line);
    std::fflush(stdout);
  };
  o.interrupted = &g_interrupted;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::signal(SIGPIPE, SIG_IGN);
  const RealChaosPlan plan = draw_real_plan(plan_request(o));
  fmt::print("running seed {} (policy {}, {} standbys, {:.0f} s of chaos on real processes)\n",
             o.seed, f.policy, o.standbys, f.duration_s);
  fmt::print("  plan: {}\n", real_plan_text(plan));
  for (const auto& e : plan.events) fmt::print("    {}\n", real_event_text(e));
  std::fflush(stdout);
  ChaosRealReport r = run_chaos_real(o);
  fmt::print("schedule as it ran:\n{}", chaos_real_schedule_text(r.schedule));
  fmt::print("{}", chaos_real_report_text(r));
  if (!r.passed) {
    fmt::print("  rerun: {}\n", r.rerun);
    fmt::print(stderr, "---- {}'s log (last {} bytes) ----\n{}\n", r.failing_node,
               r.failure_log.size(), r.failure_log);
  }
  if (f.keep)
    fmt::print("  the cluster keeps running in {} (quire cluster stop {})\n", r.dir, r.dir);
  if (!write_report(f.json_path, chaos_real_report_json(r))) return kExitFailed;
  return r.passed ? kExitOk : kExitFailed;
}

}  // namespace

void add_chaos_real_command(CLI::App& chaos, Commands& commands) {
  auto f = std::make_shared<RealFlags>();
  CLI::App* real = chaos.add_subcommand(
      "real",
      "the kek chaos scenario on a real local cluster: workload, rotations and real faults "
      "(SIGKILL, SIGSTOP, seal bursts, network faults through proxies) drawn from the seed, then "
      "the checkers");
  real->footer(
      "The seed fixes the fault schedule; real timing does not replay bit for bit. Exit 0 "
      "passed, 1 failed (the report names the checker, the rerun command and the failing "
      "node's log), 2 bad usage.");
  real->add_option("--seed", f->seed, "the seed of the fault schedule (a number)");
  real->add_option("--duration", f->duration_s, "seconds of chaos (default 300)")
      ->check(CLI::Range(10.0, 86400.0));
  real->add_option("--policy", f->policy,
                   "pick-up policy for a stale keystore: accept, skip, resync, abort")
      ->check(CLI::IsMember({"accept", "skip", "resync", "abort"}));
  real->add_option("--standbys", f->standbys, "standbys (default 2)")->check(CLI::Range(1, 8));
  real->add_option("--dir", f->dir, "the cluster's directory (default: a new temporary one)");
  real->add_flag("--keep", f->keep,
                 "leave the cluster running and its directory in place (the run then goes "
                 "without fault proxies, which end with it)");
  real->add_flag("--disk-full", f->disk_full,
                 "give each page server a tmpfs of its own (needs root: mount) and add "
                 "page_server_disk_full to the faults: a page server's disk fills for a while");
  real->add_option("--json", f->json_path, "also write the report as JSON to this file");
  real->add_option("--plant", f->plant,
                   "to test the checkers: once healed, plant a fault the schedule does not know "
                   "of (abort: SIGKILL a page server; lost_write: drop an acknowledged write; "
                   "plaintext: a page in clear in a page server's directory); the run must then "
                   "fail on that checker")
      ->check(CLI::IsMember({"abort", "lost_write", "plaintext"}));
  commands.push_back({real, [f] { return run_real(*f); }});
}

}  // namespace quire::cli
