#include "cluster/chaos_real.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cluster/chaos_probe.h"
#include "cluster/chaos_rotation.h"
#include "cluster/chaos_workload.h"
#include "cluster/cluster_ops.h"
#include "cluster/fault_proxy.h"
#include "cluster/supervisor.h"
#include "cluster/tmpfs_disks.h"

namespace quire::cluster {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kScanCallsMax = 100'000;
constexpr size_t kMgetBatch = 500;
constexpr auto kPoll = milliseconds(500);

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Result<std::string> make_dir(const std::string& asked) {
  if (!asked.empty()) {
    std::error_code ec;
    fs::create_directories(asked, ec);
    if (ec) return invalid_argument(fmt::format("cannot create {}: {}", asked, ec.message()));
    return fs::absolute(asked).lexically_normal().string();
  }
  std::string tmpl = (fs::temp_directory_path() / "quire-chaos-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return unavailable("cannot create a temporary directory");
  return tmpl;
}

// Stops the cluster on every way out (unless kept): the supervisor first, then by pid
// whatever it left; removes a temporary directory.
class ClusterGuard {
 public:
  ClusterGuard(ClusterSpec spec, bool keep, bool remove_dir)
      : spec_(std::move(spec)), keep_(keep), remove_dir_(remove_dir) {}
  ~ClusterGuard() {
    if (keep_ || !armed_) return;
    (void)stop_cluster(spec_);
    kill_leftovers();
    if (after_stop_) after_stop_();
    if (!remove_dir_) return;
    std::error_code ec;
    if (!keep_logs_) {
      fs::remove_all(spec_.dir, ec);
      return;
    }
    // A failed run keeps its logs (the evidence), not the data directories.
    for (const auto& entry : fs::directory_iterator(spec_.dir, ec)) {
      if (entry.path().filename() != "logs" && entry.path().filename() != "cluster.json")
        fs::remove_all(entry.path(), ec);
    }
  }
  void arm() { armed_ = true; }
  void keep_logs() { keep_logs_ = true; }
  // Runs once every process is stopped, before the directory is removed.
  void after_stop(std::function<void()> f) { after_stop_ = std::move(f); }

 private:
  void kill_leftovers() {
    auto state = read_state(spec_);
    if (!state.is_ok()) return;
    if (auto pid = running_supervisor(spec_); pid && *pid > 0) ::kill(*pid, SIGKILL);
    for (const auto& p : state->processes) {
      if (still_runs(*state, p)) {  // never a pid another process took since
        ::kill(p.pid, SIGCONT);
        ::kill(p.pid, SIGKILL);
      }
    }
  }
  ClusterSpec spec_;
  bool keep_;
  bool remove_dir_;
  bool armed_ = false;
  bool keep_logs_ = false;
  std::function<void()> after_stop_;
};

// The fault proxies in front of every page server and etcd (ClusterSpec::proxies).
struct Proxies {
  std::vector<std::unique_ptr<FaultProxy>> page_servers;
  std::unique_ptr<FaultProxy> etcd;

  Status start(const ClusterSpec& spec) {
    for (size_t i = 0; i < spec.pageservers; ++i) {
      auto p = FaultProxy::start(spec.pageserver_proxy_address(i), spec.pageserver_address(i));
      if (!p.is_ok()) return p.status();
      page_servers.push_back(std::move(*p));
    }
    auto e = FaultProxy::start(spec.etcd_proxy_address(), spec.etcd_client());
    if (!e.is_ok()) return e.status();
    etcd = std::move(*e);
    return Status::ok();
  }
  // The nemesis's network faults.
  NetFaultHook hook() {
    if (!etcd) return nullptr;
    return [this](bool on_etcd, uint32_t index, const RealFaultEvent& e, bool on) {
      FaultProxy* p = on_etcd ? etcd.get() : page_servers.at(index).get();
      if (!on) {
        p->set_mode(ProxyMode::kPass);
      } else if (e.net == NetFault::kDelay) {
        p->set_mode(ProxyMode::kDelay, milliseconds(e.delay_ms));
      } else {
        p->set_mode(e.net == NetFault::kReset ? ProxyMode::kReset : ProxyMode::kBlackhole);
      }
    };
  }
  void pass_all() {
    for (auto& p : page_servers) p->set_mode(ProxyMode::kPass);
    if (etcd) etcd->set_mode(ProxyMode::kPass);
  }
};

// The page servers' data directories as tmpfs mounts of their own (--disk-full), for the
// nemesis to fill.
struct Disks {
  static constexpr uint64_t kSizeBytes = uint64_t{4} << 30;  // far above a run's needs
  std::unique_ptr<TmpfsDisks> tmpfs;

  Status mount(const ClusterSpec& spec) {
    std::vector<std::string> dirs;
    for (size_t i = 0; i < spec.pageservers; ++i)
      dirs.push_back(spec.dir + "/" + spec.pageserver_name(i));
    auto m = TmpfsDisks::mount(std::move(dirs), kSizeBytes);
    if (!m.is_ok()) return m.status();
    tmpfs = std::move(*m);
    return Status::ok();
  }
  DiskFullHook hook() {
    if (!tmpfs) return nullptr;
    return [this](uint32_t index, const RealFaultEvent& e, bool on) -> Result<std::string> {
      if (!on) {
        Status st = tmpfs->grow(index);
        if (!st.is_ok()) return st;
        return std::string("grown back");
      }
      auto held = tmpfs->fill(index, uint64_t{e.count} * 1024);
      if (!held.is_ok()) return held.status();
      return fmt::format("full at {} KiB held + {} KiB", *held / 1024, e.count);
    };
  }
  void grow_all() {
    if (tmpfs) (void)tmpfs->grow_all();
  }
  void unmount() {
    if (tmpfs) tmpfs->unmount_all();
  }
};

// Waits (bounded) until a primary serves and every standby is SECONDARY; why it is not.
std::string wait_ready(const ClusterSpec& spec, std::chrono::seconds wait) {
  const auto until = Clock::now() + wait;
  std::string why = "not checked";
  while (Clock::now() < until) {
    auto report = cluster_status(spec);
    if (report.is_ok() && cluster_ready(*report, &why)) return "";
    if (!report.is_ok()) why = report.status().message();
    std::this_thread::sleep_for(kPoll);
  }
  return why;
}

// What a process's log says of its end: its last abort or crash line no later than the
// second the supervisor saw it end (log lines start {"t":"2026-12-03T05:26:01.219633Z").
std::string exit_reason(const ClusterSpec& spec, const ProcessExit& e) {
  static constexpr size_t kSecondChars = 19;  // "2026-12-03T05:26:01"
  std::istringstream in(file_tail(spec.log_path(e.name), 4 << 20));
  std::string line, found;
  while (std::getline(in, line)) {
    const bool crash = line.find("aborting the process") != std::string::npos ||
                       line.find("assertion failed") != std::string::npos ||
                       line.find("terminate called") != std::string::npos;
    if (!crash) continue;
    const size_t t = line.find("\"t\":\"");
    if (t != std::string::npos && e.at.size() >= kSecondChars &&
        line.compare(t + 5, kSecondChars, e.at, 0, kSecondChars) > 0) {
      break;  // after this exit
    }
    found = line.substr(0, 600);
  }
  return found;
}

}  // namespace

// ---- The content of a node ------------------------------------------------------------------

namespace {

Result<std::vector<std::string>> scan_keys(RespClient& c) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  for (size_t calls = 0; calls < kScanCallsMax; ++calls) {
    std::string pattern = std::string(kKeyCanary) + "*";
    auto reply = c.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, kAdminTimeout);
    if (!reply.is_ok()) return reply.status();
    if (reply->is_error()) return unavailable("SCAN: " + reply->text);
    if (reply->elements.size() != 2) return invalid_argument("SCAN: unexpected reply");
    for (const auto& k : reply->elements[1].elements) keys.push_back(k.text);
    cursor = reply->elements[0].text;
    if (cursor == "0") return keys;
  }
  return unavailable("SCAN did not finish within kScanCallsMax calls");
}

Result<Content> read_content(const std::string& address) {
  auto c = RespClient::connect(address, std::chrono::milliseconds(2000));
  if (!c.is_ok()) return c.status();
  auto keys = scan_keys(*c);
  if (!keys.is_ok()) return keys.status();
  Content content;
  for (size_t i = 0; i < keys->size(); i += kMgetBatch) {
    std::vector<std::string> args = {"MGET"};
    const size_t end = std::min(keys->size(), i + kMgetBatch);
    args.insert(args.end(), keys->begin() + static_cast<std::ptrdiff_t>(i),
                keys->begin() + static_cast<std::ptrdiff_t>(end));
    auto reply = c->command(args, kAdminTimeout);
    if (!reply.is_ok()) return reply.status();
    if (reply->is_error()) return unavailable("MGET: " + reply->text);
    for (size_t k = 0; k < reply->elements.size() && i + k < end; ++k) {
      if (reply->elements[k].type == RespReply::Type::kBulk) {
        content[(*keys)[i + k]] = reply->elements[k].text;
      }
    }
  }
  return content;
}

}  // namespace

// ---- The run ----------------------------------------------------------------------------------

namespace {

// Everything that runs during the chaos phase.
struct ChaosParts {
  ChaosParts(const ClusterSpec& spec, const ChaosRealOptions& o, const RealChaosPlan& plan,
             Clock::time_point t0, NetFaultHook net, DiskFullHook disk_full)
      : locator(node_addresses(spec)),
        workload(locator, o.writers, o.seed, t0),
        rotation(locator, plan, o.seed),
        probe(spec, t0),
        nemesis(spec, plan.events, t0, std::move(net), std::move(disk_full)) {}
  static std::vector<std::string> node_addresses(const ClusterSpec& spec) {
    std::vector<std::string> out;
    for (size_t i = 0; i < spec.compute_nodes(); ++i) out.push_back(spec.node_address(i));
    return out;
  }
  PrimaryLocator locator;
  Workload workload;
  RotationDriver rotation;
  StatusProbe probe;
  Nemesis nemesis;
};

std::string progress_line(double elapsed, const ChaosParts& p, uint64_t acked_delta,
                          double interval_s) {
  const ProbeView v = p.probe.view();
  std::string lag;
  for (const auto& [name, behind] : v.standby_lag) {
    lag += fmt::format("{}{}={}", lag.empty() ? "" : ",", name,
                       behind < 0 ? std::string("?") : std::to_string(behind));
  }
  return fmt::format(
      "  [{:6.1f}s] writes/s {:.0f} (acked {}, unknown {}), faults {}, primary {} term {}, "
      "standby lag {}, KEK rotations {}",
      elapsed, static_cast<double>(acked_delta) / interval_s, p.workload.counts().writes_ok.load(),
      p.workload.counts().writes_unknown.load(), p.nemesis.fired(),
      v.primary.empty() ? std::string("none") : v.primary, v.term, lag.empty() ? "-" : lag,
      p.rotation.counts().kek_rotations.load());
}

// The chaos phase: until its end, a crash, or an interrupt. Returns its length in s.
double chaos_phase(const ChaosRealOptions& o, ChaosParts& p, Clock::time_point t0) {
  p.probe.start();
  p.workload.start();
  p.rotation.start();
  p.nemesis.start();
  const auto end = t0 + milliseconds(o.duration_ms);
  auto next_progress = t0 + kProgressEvery;
  uint64_t acked_before = 0;
  while (Clock::now() < end) {
    std::this_thread::sleep_for(milliseconds(100));
    if (o.interrupted && o.interrupted->load()) break;
    const ProbeView v = p.probe.view();
    if (!v.crashed_node.empty()) {
      if (o.say) {
        o.say(fmt::format("  {} crashed ({}) {:.1f} s into the chaos phase: ending it",
                          v.crashed_node, v.crashed_how,
                          static_cast<double>(v.crashed_at_ms) / 1000.0));
      }
      break;
    }
    if (Clock::now() >= next_progress && o.say) {
      const uint64_t acked = p.workload.counts().writes_ok.load();
      o.say(progress_line(seconds_since(t0), p, acked - acked_before,
                          std::chrono::duration<double>(kProgressEvery).count()));
      acked_before = acked;
      next_progress += kProgressEvery;
    }
  }
  const double ran = seconds_since(t0);
  p.nemesis.stop();
  return ran;
}

// Heal, let the workload run a little, stop it and the rotations; a last checkpoint.
void heal_and_quiesce(const ClusterSpec& spec, const ChaosRealOptions& o, ChaosParts& p,
                      std::vector<Violation>& violations) {
  if (o.say) o.say("healing: every stopped process continues, every killed one restarts");
  p.nemesis.heal();
  const std::string why = wait_ready(spec, kReadyWaitMax);
  if (!why.empty()) {
    violations.push_back({"convergence", fmt::format("not ready within {} s of healing: {}",
                                                     kReadyWaitMax.count(), why)});
  }
  std::this_thread::sleep_for(kAfterHeal);
  p.rotation.stop();
  p.workload.stop();
  auto done = p.locator.command_until(
      {"QUIRE.CHECKPOINT"}, [](const RespReply& r) { return !r.is_error(); },
      std::chrono::seconds(15), kPoll, kAdminTimeout);
  if (done.is_ok()) return;
  violations.push_back({"convergence", "no primary took a last checkpoint within 15 s"});
}

}  // namespace

// ---- Convergence and the checkers --------------------------------------------------------------

namespace {

// Waits until every standby is SECONDARY at or past the primary's applied ts with its
// latest checkpoint installed. Returns the primary's index, or violations.
std::optional<size_t> wait_converged(const ClusterSpec& spec, std::vector<Violation>& out) {
  const auto until = Clock::now() + kConvergeWaitMax;
  std::string why = "no status yet";
  std::optional<NodeReport> target;  // the primary's position when first seen
  std::optional<size_t> primary;
  while (Clock::now() < until) {
    std::vector<NodeReport> r;
    for (size_t i = 0; i < spec.compute_nodes(); ++i) {
      r.push_back(query_node(spec.node_address(i), kProbeQueryTimeout));
      if (r.back().answered && r.back().role == "primary" && r.back().serving()) primary = i;
    }
    if (primary && !target) target = r[*primary];
    why.clear();
    for (size_t i = 0; i < r.size() && target; ++i) {
      if (i == *primary) continue;
      const NodeReport& s = r[i];
      if (!s.answered || s.state != "SECONDARY" || s.applied_ts < target->applied_ts ||
          s.checkpoint_lsn < target->checkpoint_lsn) {
        why +=
            fmt::format("{}{}: {} {} applied_ts {} checkpoint_lsn {} (primary: {} / {})",
                        why.empty() ? "" : "; ", spec.node_name(i), s.role, s.state, s.applied_ts,
                        s.checkpoint_lsn, target->applied_ts, target->checkpoint_lsn);
      }
    }
    if (target && why.empty()) return primary;
    if (!target) why = "no primary serves";
    std::this_thread::sleep_for(kPoll);
  }
  out.push_back(
      {"convergence", fmt::format("not converged within {} s: {}", kConvergeWaitMax.count(), why)});
  return primary;
}

void check_contents(const ClusterSpec& spec, size_t primary, const std::vector<Op>& history,
                    ChaosRealReport& r) {
  auto primary_content = read_content(spec.node_address(primary));
  if (!primary_content.is_ok()) {
    r.violations.push_back(
        {"convergence", fmt::format("cannot read {}'s content: {}", spec.node_name(primary),
                                    primary_content.status().to_string())});
    return;
  }
  r.keys_final = primary_content->size();
  for (auto& v : check_lost_writes(history, *primary_content, spec.node_name(primary))) {
    r.writes_lost++;
    r.violations.push_back(std::move(v));
  }
  for (size_t i = 0; i < spec.compute_nodes(); ++i) {
    if (i == primary) continue;
    auto content = read_content(spec.node_address(i));
    if (!content.is_ok()) {
      r.violations.push_back(
          {"convergence", fmt::format("cannot read {}'s content: {}", spec.node_name(i),
                                      content.status().to_string())});
      continue;
    }
    for (auto& v : check_lost_writes(history, *content, spec.node_name(i))) {
      r.violations.push_back(std::move(v));
    }
    for (auto& v : check_same_content(*primary_content, *content, spec.node_name(i))) {
      r.violations.push_back(std::move(v));
    }
  }
}

void check_processes(const ClusterSpec& spec, const Nemesis& nemesis, ChaosRealReport& r) {
  std::ifstream in(spec.log_path("supervisor"));
  std::stringstream text;
  text << in.rdbuf();
  const auto exits = parse_supervisor_exits(text.str());
  auto why = [&spec](const ProcessExit& e) { return exit_reason(spec, e); };
  for (auto& v : check_exits(exits, nemesis.injected_kills(), why)) {
    r.violations.push_back(std::move(v));
  }
  for (auto& v : check_crash_lines(spec.dir + "/logs")) r.violations.push_back(std::move(v));
}

void fill_counts(const ChaosParts& p, const ProbeView& v, ChaosRealReport& r) {
  const WorkloadCounts& w = p.workload.counts();
  r.writes_acked = w.writes_ok.load();
  r.writes_failed = w.writes_failed.load();
  r.writes_unknown = w.writes_unknown.load();
  r.reads_refused = w.reads_refused.load();
  const RotationCounts& rc = p.rotation.counts();
  r.rotations = rc.kek_rotations.load();
  r.rotation_failures = rc.kek_failures.load();
  r.cmk_rotations = rc.cmk_rotations.load();
  r.checkpoints_written = rc.checkpoints.load();
  r.checkpoints_in_gap = rc.checkpoints_in_gap.load();
  r.pickups = v.pickups;
  r.failovers = v.failovers;
  r.terms_max = v.terms_max;
  r.chaos = p.nemesis.counts();
  r.schedule = p.nemesis.executed();
  if (!v.crashed_node.empty()) {
    r.crashed_node = v.crashed_node;
    r.crash_after_s = static_cast<double>(v.crashed_at_ms) / 1000.0;
  }
}

// Which process the first violation names (its log tail goes into the report).
std::string failing_process(const ClusterSpec& spec, const ChaosRealReport& r) {
  if (!r.crashed_node.empty()) return r.crashed_node;
  if (r.violations.empty()) return "";
  const std::string& d = r.violations.front().detail;
  for (const auto& p : cluster_processes(spec, "quire")) {
    if (d.rfind(p.name + " ", 0) == 0 || d.rfind(p.name + ":", 0) == 0 ||
        d.rfind(p.name + "'", 0) == 0) {
      return p.name;
    }
  }
  return spec.node_name(0);
}

std::string rerun_command(const ChaosRealOptions& o) {
  std::string cmd = fmt::format("quire chaos real --seed {}", o.seed);
  if (o.policy != PickupPolicy::kAccept)
    cmd += fmt::format(" --policy {}", pickup_policy_name(o.policy));
  if (o.duration_ms != 300'000) cmd += fmt::format(" --duration {}", o.duration_ms / 1000);
  if (o.standbys != 2) cmd += fmt::format(" --standbys {}", o.standbys);
  if (o.disk_full) cmd += " --disk-full";
  if (o.plant != PlantedFault::kNone)
    cmd += fmt::format(" --plant {}", planted_fault_name(o.plant));
  return cmd;
}

}  // namespace

// ---- run_chaos_real ----------------------------------------------------------------------------

namespace {

Result<ClusterSpec> set_up(const ChaosRealOptions& o, ChaosRealReport& r) {
  auto dir = make_dir(o.dir);
  if (!dir.is_ok()) return dir.status();
  auto port = pick_base_port(kClusterPortsSpan);
  if (!port.is_ok()) return port.status();
  ClusterSpec spec;
  spec.dir = *dir;
  spec.name = fmt::format("chaos{}", o.seed);
  spec.base_port = *port;
  spec.standbys = o.standbys;
  spec.pickup_policy = o.policy;
  spec.proxies = o.network;
  r.dir = spec.dir;
  r.base_port = spec.base_port;
  if (Status st = init_cluster(spec); !st.is_ok()) return st;
  return spec;
}

void run_checks(const ClusterSpec& spec, ChaosParts& p, ChaosRealReport& r) {
  std::vector<Violation> converge;
  const std::optional<size_t> primary = wait_converged(spec, converge);
  const std::vector<Op> history = p.workload.history();
  std::vector<std::string> names;
  for (size_t i = 0; i < spec.compute_nodes(); ++i) names.push_back(spec.node_name(i));
  for (auto& v : check_reads(history, &r.reads_checked, names))
    r.violations.push_back(std::move(v));
  for (auto& v : converge) r.violations.push_back(std::move(v));
  if (primary) check_contents(spec, *primary, history, r);
  p.probe.stop();
  const ProbeView view = p.probe.view();
  for (const auto& v : view.monotonic) r.violations.push_back(v);
  fill_counts(p, view, r);
  check_processes(spec, p.nemesis, r);
  std::vector<std::string> dirs;
  for (size_t i = 0; i < spec.pageservers; ++i)
    dirs.push_back(spec.dir + "/" + spec.pageserver_name(i));
  for (auto& v : check_plaintext(dirs, &r.page_server_bytes_scanned))
    r.violations.push_back(std::move(v));
  r.no_space_log_lines = 0;
  for (size_t i = 0; i < spec.pageservers; ++i) {
    std::ifstream in(spec.log_path(spec.pageserver_name(i)));
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"id\":30023,") != std::string::npos) r.no_space_log_lines++;
    }
  }
}

// --plant: the fault goes in once the cluster is healed and quiet, before the checkers.
void plant(const ClusterSpec& spec, const ChaosRealOptions& o, ChaosParts& p, ChaosRealReport& r,
           std::vector<Violation>& violations) {
  if (o.plant == PlantedFault::kNone) return;
  auto done = plant_fault(o.plant, spec, p.workload.history(), o.seed);
  if (!done.is_ok()) {
    violations.push_back({"setup", fmt::format("cannot plant {}: {}", planted_fault_name(o.plant),
                                               done.status().to_string())});
    return;
  }
  r.planted = fmt::format("{}: {}", planted_fault_name(o.plant), *done);
  if (o.say) o.say("planted " + r.planted);
}

}  // namespace

PlanRequest plan_request(const ChaosRealOptions& o) {
  return PlanRequest{o.seed, o.duration_ms, o.standbys, 3, o.network, o.disk_full};
}

ChaosRealReport run_chaos_real(const ChaosRealOptions& o) {
  const auto wall0 = Clock::now();
  ChaosRealReport r;
  r.seed = o.seed;
  r.policy = o.policy;
  r.standbys = o.standbys;
  r.duration_s = static_cast<double>(o.duration_ms) / 1000.0;
  r.rerun = rerun_command(o);
  r.plan = draw_real_plan(plan_request(o));
  auto spec = set_up(o, r);
  if (!spec.is_ok()) {
    r.violations.push_back({"setup", spec.status().to_string()});
    r.failed_checker = "setup";
    return r;
  }
  // Declared before the guard: the cluster stops before its proxies and disks go.
  Proxies proxies;
  Disks disks;
  ClusterGuard guard(*spec, o.keep, o.dir.empty());
  guard.arm();
  if (o.disk_full) {
    if (Status st = disks.mount(*spec); !st.is_ok()) {
      r.violations.push_back(
          {"setup", "cannot give the page servers disks that fill: " + st.to_string()});
      r.failed_checker = "setup";
      return r;
    }
    // Unmounted once the cluster is stopped, before its directory goes; a kept cluster
    // keeps them (`umount DIR/ps*` once it is stopped).
    if (o.keep) {
      disks.tmpfs->leave_mounted();
    } else {
      guard.after_stop([&disks] { disks.unmount(); });
    }
  }
  if (o.network) {
    if (Status st = proxies.start(*spec); !st.is_ok()) {
      r.violations.push_back({"setup", "cannot start the fault proxies: " + st.to_string()});
      r.failed_checker = "setup";
      return r;
    }
  }
  if (o.say)
    o.say(fmt::format("starting a cluster in {} (base port {})", spec->dir, spec->base_port));
  auto started = start_cluster(*spec, o.quire, kStartWaitMax);
  if (!started.is_ok()) {
    r.violations.push_back({"setup", "the cluster did not start: " + started.status().to_string()});
    r.failed_checker = "setup";
    r.failing_node = "supervisor";
    r.failure_log = file_tail(spec->log_path("supervisor"), kLogTailBytesMax);
    return r;
  }
  const auto t0 = Clock::now();
  ChaosParts parts(*spec, o, r.plan, t0, proxies.hook(), disks.hook());
  r.chaos_seconds = chaos_phase(o, parts, t0);
  proxies.pass_all();
  disks.grow_all();
  std::vector<Violation> heal_violations;
  heal_and_quiesce(*spec, o, parts, heal_violations);
  plant(*spec, o, parts, r, heal_violations);
  if (o.say) o.say("checking");
  run_checks(*spec, parts, r);
  for (auto& v : heal_violations) r.violations.push_back(std::move(v));
  // The abort checker's verdicts first: a crash explains what follows it.
  std::stable_partition(r.violations.begin(), r.violations.end(),
                        [](const Violation& v) { return v.checker == "abort"; });
  r.passed = r.violations.empty();
  if (!r.passed) {
    r.failed_checker = r.violations.front().checker;
    r.failing_node = failing_process(*spec, r);
    r.failure_log = file_tail(spec->log_path(r.failing_node), kLogTailBytesMax);
    if (o.dir.empty()) {
      guard.keep_logs();
      r.logs_kept = spec->dir + "/logs";
    }
  }
  r.wall_seconds = seconds_since(wall0);
  return r;
}

// ---- The report -----------------------------------------------------------------------------

std::string chaos_real_schedule_text(const std::vector<ExecutedEvent>& schedule) {
  std::string out;
  for (const auto& x : schedule) {
    out += fmt::format("    {}", real_event_text(x.event));
    if (x.fired_at_ms < 0) {
      out += "  [not reached]\n";
      continue;
    }
    out += fmt::format("  [at {:.3f}s{}{}{}]\n", static_cast<double>(x.fired_at_ms) / 1000.0,
                       x.target.empty() ? "" : " on " + x.target, x.skipped ? ", skipped: " : "",
                       x.note.empty() ? "" : (x.skipped ? x.note : "; " + x.note));
  }
  return out;
}

std::string chaos_real_report_text(const ChaosRealReport& r) {
  auto pick = [&r](const char* k) {
    auto it = r.pickups.find(k);
    return it == r.pickups.end() ? uint64_t{0} : it->second;
  };
  std::string chaos;
  for (const auto& [k, n] : r.chaos)
    chaos += fmt::format("{}{} {}", chaos.empty() ? "" : ", ", k, n);
  std::string out =
      fmt::format("quire chaos real: seed {}, policy {}, {} standbys, {:.0f} s of chaos\n", r.seed,
                  pickup_policy_name(r.policy), r.standbys, r.duration_s);
  out += fmt::format("  plan: {}\n", real_plan_text(r.plan));
  out += fmt::format("  chaos: {}; failovers {}, terms_max {}\n", chaos.empty() ? "none" : chaos,
                     r.failovers, r.terms_max);
  out += fmt::format(
      "  writes acked {}, failed {}, unknown {}, lost {}; reads checked {}, refused {}\n",
      r.writes_acked, r.writes_failed, r.writes_unknown, r.writes_lost, r.reads_checked,
      r.reads_refused);
  out += fmt::format(
      "  KEK rotations {} (failed {}), CMK rotations {}, checkpoints {} ({} inside a rotation's "
      "gap)\n",
      r.rotations, r.rotation_failures, r.cmk_rotations, r.checkpoints_written,
      r.checkpoints_in_gap);
  out += fmt::format(
      "  standby pick-ups: installed {}, stale keystore accepted {}, skipped {}, keystore-ahead "
      "retries {}, unavailable retries {}, busy retries {}, older ignored {}, corrupt {}; resyncs "
      "{}\n",
      pick("installed"), pick("stale_keystore_accepted"), pick("skipped"),
      pick("keystore_ahead_retries"), pick("unavailable_retries"), pick("busy_retries"),
      pick("older_ignored"), pick("corrupt"), pick("resyncs"));
  out += fmt::format("  final keys {}; page-server bytes scanned for plaintext {}\n", r.keys_final,
                     r.page_server_bytes_scanned);
  if (r.chaos.count("page_server_disk_full") > 0) {
    out += fmt::format("  full disks: page servers logged refusing writes for space {} times\n",
                       r.no_space_log_lines);
  }
  if (!r.planted.empty()) {
    out += fmt::format("  PLANTED (outside the schedule, to test a checker) {}\n", r.planted);
  }
  if (!r.crashed_node.empty()) {
    out += fmt::format("  {} crashed {:.1f} s after the chaos phase began\n", r.crashed_node,
                       r.crash_after_s);
  }
  out += fmt::format(
      "  {:.1f} s of chaos, {:.1f} s wall; real processes: the seed fixes the schedule, not the "
      "timing (a run does not replay bit for bit)\n",
      r.chaos_seconds, r.wall_seconds);
  for (const Violation& v : r.violations)
    out += fmt::format("  VIOLATION [{}]: {}\n", v.checker, v.detail);
  if (!r.logs_kept.empty())
    out += fmt::format("  every process's log is kept in {}\n", r.logs_kept);
  out += r.passed ? "PASSED\n" : fmt::format("FAILED ({})\n", r.failed_checker);
  return out;
}

std::string chaos_real_report_json(const ChaosRealReport& r) {
  nlohmann::ordered_json j;
  j["scenario"] = "real";
  j["policy"] = std::string(pickup_policy_name(r.policy));
  j["seed"] = r.seed;
  j["passed"] = r.passed;
  j["standbys"] = r.standbys;
  j["duration_s"] = r.duration_s;
  j["chaos_seconds"] = r.chaos_seconds;
  j["wall_seconds"] = r.wall_seconds;
  j["failed_checker"] = r.failed_checker;
  j["writes_acked"] = r.writes_acked;
  j["writes_failed"] = r.writes_failed;
  j["writes_unknown"] = r.writes_unknown;
  j["writes_lost"] = r.writes_lost;
  j["reads_checked"] = r.reads_checked;
  j["reads_refused"] = r.reads_refused;
  j["rotations"] = r.rotations;
  j["cmk_rotations"] = r.cmk_rotations;
  j["checkpoints_written"] = r.checkpoints_written;
  j["checkpoints_in_gap"] = r.checkpoints_in_gap;
  j["pickups"] = r.pickups;
  j["failovers"] = r.failovers;
  j["terms_max"] = r.terms_max;
  j["chaos"] = r.chaos;
  j["page_server_bytes_scanned"] = r.page_server_bytes_scanned;
  j["keys_final"] = r.keys_final;
  j["no_space_log_lines"] = r.no_space_log_lines;
  j["crashed_node"] = r.crashed_node;
  j["crash_after_s"] = r.crash_after_s;
  j["fault_plan"] = {{"mean_interval_ms", r.plan.mean_interval_ms},
                     {"rotation_every_ms", r.plan.rotation_every_ms},
                     {"rotation_gap_max_ms", r.plan.rotation_gap_max_ms},
                     {"cmk_every", r.plan.cmk_every},
                     {"checkpoint_every_ms", r.plan.checkpoint_every_ms}};
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const auto& x : r.schedule) {
    events.push_back({{"at_ms", x.event.at_ms},
                      {"kind", std::string(real_fault_kind_name(x.event.kind))},
                      {"event", real_event_text(x.event)},
                      {"fired_at_ms", x.fired_at_ms},
                      {"target", x.target},
                      {"skipped", x.skipped},
                      {"note", x.note}});
  }
  j["schedule"] = events;
  nlohmann::ordered_json violations = nlohmann::ordered_json::array();
  for (const auto& v : r.violations)
    violations.push_back({{"checker", v.checker}, {"detail", v.detail}});
  j["violations"] = violations;
  j["dir"] = r.dir;
  j["logs_kept"] = r.logs_kept;
  j["planted"] = r.planted;
  j["rerun"] = r.rerun;
  j["replays_bit_for_bit"] = false;
  return j.dump(2) + "\n";
}

}  // namespace quire::cluster
