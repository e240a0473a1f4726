#include "sim/kek_scenario.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "crypto/needle_set.h"
#include "pagelog/page_protocol.h"
#include "pagelog/page_server.h"
#include "runtime/sim/sim_random.h"
#include "sim/replica_set_sim.h"

namespace quire {

namespace {

constexpr int64_t kWarmupMs = 3000;      // writes before the first fault
constexpr int64_t kQuietTailMs = 10000;  // no new fault in the chaos phase's last seconds
constexpr Nanos kConvergeBound = std::chrono::seconds(90);
constexpr Nanos kStallBound = std::chrono::seconds(20);
constexpr Nanos kBringUpMax = std::chrono::seconds(60);
constexpr Nanos kProbeEvery = std::chrono::milliseconds(10);
// After the chaos phase: healed, rotations and writes go on this long, then writes alone,
// then nothing; each final step (a checkpoint, collecting the keys) ends within its max.
constexpr Nanos kHealedRotationsFor = std::chrono::seconds(5);
constexpr Nanos kHealedWritesFor = std::chrono::seconds(3);
constexpr Nanos kQuiesceFor = std::chrono::seconds(1);
constexpr Nanos kFinalStepMax = std::chrono::seconds(30);
// What a replay file's events may ask for: seals in a burst, |rate|.
constexpr uint32_t kBurstSealsMax = 10000;
constexpr double kEventRateMax = 1e6;
// Between the seals of a rapid_seal_burst.
constexpr Nanos kSealBurstPause = std::chrono::microseconds(100);
// The compute nodes' coordinator lease. A primary_pause stops the primary this much
// after a client write was handed to it: its group is on the wire, the answers not back.
constexpr Nanos kLeaseTtl = std::chrono::seconds(2);
constexpr int64_t kLeaseTtlMs = 2000;
constexpr Nanos kPauseAfterWrite = std::chrono::microseconds(300);
// How long after a take-over-forcing fault healed the take-over may still be under way.
constexpr int64_t kTakeoverSettleMs = 10000;

struct KindName {
  FaultKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {FaultKind::kKillStandbyPageServer, "kill_standby_page_server"},
    {FaultKind::kRapidSealBurst, "rapid_seal_burst"},
    {FaultKind::kPageServerKill, "page_server_kill"},
    {FaultKind::kPartition, "partition"},
    {FaultKind::kMessageFaults, "message_faults"},
    {FaultKind::kDiskFaults, "disk_faults"},
    {FaultKind::kClockSkew, "clock_skew"},
    {FaultKind::kStandbyRestart, "standby_restart"},
    {FaultKind::kPrimaryKill, "primary_kill"},
    {FaultKind::kPrimaryPause, "primary_pause"},
    {FaultKind::kPrimaryPartition, "primary_partition"},
    {FaultKind::kCoordinatorKill, "coordinator_kill"},
    {FaultKind::kDiskFull, "disk_full"},
};

bool impairs_a_server(const FaultEvent& e, size_t standbys) {
  switch (e.kind) {
    case FaultKind::kKillStandbyPageServer:
    case FaultKind::kPageServerKill:
    case FaultKind::kDiskFaults:
    case FaultKind::kDiskFull:
      return true;
    case FaultKind::kPartition:
      return e.target > standbys || e.other > standbys;
    default:
      return false;
  }
}

}  // namespace

bool is_primary_fault(FaultKind k) {
  return k == FaultKind::kPrimaryKill || k == FaultKind::kPrimaryPause ||
         k == FaultKind::kPrimaryPartition || k == FaultKind::kCoordinatorKill;
}

std::string_view fault_kind_name(FaultKind k) {
  for (const auto& kn : kKindNames) {
    if (kn.kind == k) return kn.name;
  }
  return "unknown";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (const auto& kn : kKindNames) {
    if (name == kn.name) return kn.kind;
  }
  return std::nullopt;
}

// ---- Drawing the mix and the schedule --------------------------------------------------------

FaultMix draw_fault_mix(uint64_t seed) {
  SimRandom rng(seed, "kek-swarm");
  FaultMix m;
  // The race's own triggers are in most mixes; everything else in about two thirds.
  // Each primary fault in about half, and at least one in every mix.
  bool primary_fault = false;
  for (FaultKind k : kAllFaultKinds) {
    const bool trigger = k == FaultKind::kKillStandbyPageServer || k == FaultKind::kRapidSealBurst;
    const double p = is_primary_fault(k) ? 0.5 : (trigger ? 0.85 : 0.65);
    if (rng.chance(p)) {
      m.kinds.push_back(k);
      primary_fault = primary_fault || is_primary_fault(k);
    }
  }
  if (!primary_fault) {
    constexpr FaultKind kPrimaryFaults[] = {FaultKind::kPrimaryKill, FaultKind::kPrimaryPause,
                                            FaultKind::kPrimaryPartition,
                                            FaultKind::kCoordinatorKill};
    m.kinds.push_back(kPrimaryFaults[rng.uniform(std::size(kPrimaryFaults))]);
  }
  m.mean_interval_ms = rng.range(1500, 8000);
  m.rotation_every_ms = rng.range(2000, 6000);
  m.cmk_every = static_cast<int>(rng.range(3, 8));
  m.rotation_gap_max_ms = rng.range(200, 2500);
  m.checkpoint_every_ms = rng.range(500, 3000);
  m.standby_log_wait_ms = rng.chance(0.5) ? 100 : 0;  // drawn last: the draws above stay
  return m;
}

namespace {

// The page servers of a kek run (a replica set's page service).
constexpr size_t kKekServers = 3;
// After a server fault heals, the next waits this long for its server to catch up: longer
// when it came back empty or stale and must rebuild.
constexpr int64_t kServerSettleIntactMs = 3000;
constexpr int64_t kServerSettleRebuiltMs = 15000;

RestartDisk draw_restart(SimRandom& rng) {
  return rng.chance(0.6) ? RestartDisk::kIntact
                         : (rng.chance(0.5) ? RestartDisk::kEmpty : RestartDisk::kStale);
}

// The event's "mode" as replay files write it: the shape for partitions, the cut for
// primary partitions, else the restart.
uint8_t mode_field(const FaultEvent& e) {
  if (e.kind == FaultKind::kPartition) return static_cast<uint8_t>(e.shape);
  if (e.kind == FaultKind::kPrimaryPartition) return static_cast<uint8_t>(e.cut);
  return static_cast<uint8_t>(e.restart);
}

// How long the next server fault waits after `e` healed. A partition is tested by its mode
// too (a symmetric one as intact): the schedules of every seed were drawn so.
int64_t server_settle_ms(const FaultEvent& e) {
  return mode_field(e) == static_cast<uint8_t>(RestartDisk::kIntact) ? kServerSettleIntactMs
                                                                     : kServerSettleRebuiltMs;
}

// The parameters of an event of kind `e.kind`, drawn from `rng`; `nodes` counts the
// primary, the standbys and the page servers.
void draw_event_parameters(FaultEvent& e, SimRandom& rng, size_t standbys, size_t servers,
                           uint32_t nodes) {
  switch (e.kind) {
    case FaultKind::kKillStandbyPageServer:
      e.target = static_cast<uint32_t>(rng.uniform(standbys));
      e.at_pickup = rng.chance(0.5);
      e.duration_ms = rng.range(1000, 15000);
      e.restart = draw_restart(rng);
      break;
    case FaultKind::kRapidSealBurst:
      e.count = static_cast<uint32_t>(rng.range(10, 60));
      break;
    case FaultKind::kPageServerKill:
      e.target = static_cast<uint32_t>(rng.uniform(servers));
      e.duration_ms = rng.range(500, 15000);
      e.restart = draw_restart(rng);
      break;
    case FaultKind::kPartition:
      e.shape = static_cast<PartitionShape>(rng.uniform(3));
      e.target = static_cast<uint32_t>(rng.uniform(nodes));
      e.other = static_cast<uint32_t>(rng.uniform(nodes - 1));
      if (e.other >= e.target) e.other++;
      e.duration_ms = rng.range(300, 10000);
      break;
    case FaultKind::kMessageFaults:
      e.duration_ms = rng.range(1000, 15000);
      e.rate = static_cast<double>(rng.range(0, 50)) / 1000.0;            // loss 0..5%
      e.duplicate_rate = static_cast<double>(rng.range(0, 50)) / 1000.0;  // duplication 0..5%
      e.amount_ms = rng.range(0, 30);                                     // extra latency
      break;
    case FaultKind::kDiskFaults:
      e.target = static_cast<uint32_t>(rng.uniform(servers));
      e.duration_ms = rng.range(500, 5000);
      e.rate = static_cast<double>(rng.range(1, 30)) / 1000.0;
      break;
    case FaultKind::kDiskFull:
      e.target = static_cast<uint32_t>(rng.uniform(servers));
      e.duration_ms = rng.range(500, 8000);
      e.count = static_cast<uint32_t>(rng.range(0, 256));  // KiB of room left
      break;
    case FaultKind::kClockSkew:
      e.target = static_cast<uint32_t>(rng.uniform(nodes));
      e.amount_ms = rng.range(-30000, 30000);
      e.rate = static_cast<double>(rng.range(-500, 500));  // drift ppm
      break;
    case FaultKind::kStandbyRestart:
      e.target = static_cast<uint32_t>(rng.uniform(standbys));
      e.duration_ms = rng.range(200, 10000);
      break;
    case FaultKind::kPrimaryKill:
      e.duration_ms = rng.range(500, 10000);
      break;
    case FaultKind::kPrimaryPause:
      e.duration_ms = rng.range(kLeaseTtlMs + 500, kLeaseTtlMs + 4000);  // past the lease
      break;
    case FaultKind::kPrimaryPartition:
      e.cut = static_cast<PrimaryCut>(rng.uniform(2));
      e.duration_ms = rng.range(500, 8000);
      break;
    case FaultKind::kCoordinatorKill:
      e.duration_ms = rng.range(500, 8000);
      break;
  }
}

}  // namespace

std::vector<FaultEvent> draw_schedule(uint64_t seed, const FaultMix& mix, Nanos duration,
                                      size_t standbys) {
  SimRandom rng(seed, "kek-schedule");
  std::vector<FaultEvent> out;
  const int64_t end_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count() - kQuietTailMs;
  const uint32_t nodes = static_cast<uint32_t>(1 + standbys + kKekServers);
  int64_t server_free_at = 0;  // at most one page server impaired at a time
  int64_t t = kWarmupMs;
  while (!mix.kinds.empty()) {
    t += 1 + static_cast<int64_t>(-std::log(1.0 - rng.unit()) *
                                  static_cast<double>(mix.mean_interval_ms));
    if (t >= end_ms) break;
    FaultEvent e;
    e.at_ms = t;
    e.kind = mix.kinds[rng.uniform(mix.kinds.size())];
    draw_event_parameters(e, rng, standbys, kKekServers, nodes);
    if (impairs_a_server(e, standbys)) {
      // A server fault waits until the last one healed and its server caught up.
      if (t < server_free_at) continue;
      server_free_at = t + e.duration_ms + server_settle_ms(e);
    }
    out.push_back(e);
  }
  return out;
}

// ---- The run
// -------------------------------------------------------------------------------------

namespace {

class KekRun {
 public:
  KekRun(const KekOptions& o, FaultMix mix, std::vector<FaultEvent> schedule)
      : o_(o), mix_(std::move(mix)), schedule_(std::move(schedule)), sim_(make_config()) {
    report_.policy = o.policy;
    report_.seed = o.seed;
    report_.standbys = o.standbys;
    report_.duration_s = std::chrono::duration<double>(o.duration).count();
    report_.mix = mix_;
    report_.schedule = schedule_;
    for (NodeId s : sim_.server_ids()) {
      sim_.world().disk(s).set_write_observer([this](const std::string&, uint64_t, ByteView data) {
        bytes_scanned_ += data.size();
        needles_.find(data, found_);
      });
    }
  }

  // Brings the replica set up, runs the chaos phase and winds down, checks, and reports.
  KekReport run();

 private:
  ReplicaSetConfig make_config() {
    ReplicaSetConfig c;
    c.seed = o_.seed;
    c.policy = o_.policy;
    c.standbys = o_.standbys;
    c.elected = true;
    c.lease_ttl = kLeaseTtl;
    c.writers = 1;
    c.write_pause_min = std::chrono::milliseconds(2);
    c.write_pause_max = std::chrono::milliseconds(20);
    c.read_pause_min = std::chrono::milliseconds(5);
    c.read_pause_max = std::chrono::milliseconds(30);
    c.primary.checkpoint_interval = std::chrono::milliseconds(mix_.checkpoint_every_ms);
    c.primary.rotation_gap_min = Nanos(0);
    c.primary.rotation_gap_max = std::chrono::milliseconds(mix_.rotation_gap_max_ms);
    c.planted_bugs.ack_unlogged_batch = o_.plant_drop_acked_write ? 200 : 0;
    c.planted_bugs.plaintext_pages_once = o_.plant_plaintext_page;
    c.planted_bugs.ignore_primary_lease = o_.plant_ignore_primary_lease;
    c.standby.retry_deadline = std::chrono::seconds(20);
    c.standby.log_wait = std::chrono::milliseconds(mix_.standby_log_wait_ms);
    c.on_pickup = [this](size_t node, Lsn) { on_pickup(node); };
    c.on_value = [this](const std::string& v) {
      needles_.add_prefix(ByteView(reinterpret_cast<const uint8_t*>(v.data()), v.size()), "value");
    };
    return c;
  }

  // The compute nodes by their roles now: the primary (the last one while none serves),
  // then the others in order.
  std::vector<NodeId> roles_now() {
    const NodeId p = sim_.serving_primary().value_or(sim_.primary_id());
    std::vector<NodeId> out{p};
    for (NodeId id : sim_.compute_ids()) {
      if (id != p) out.push_back(id);
    }
    return out;
  }
  // Node `index` of an event: primary 0, standbys 1..K, then the page servers.
  NodeId node_of(uint32_t index) {
    if (index <= o_.standbys) return roles_now().at(index);
    return sim_.server_ids()[index - 1 - o_.standbys];
  }
  // Standby `i` of an event (by its role now), and its compute node index.
  NodeId standby_of(uint32_t i) { return roles_now().at(1 + i % o_.standbys); }
  size_t compute_index(NodeId id) const {
    const auto& ids = sim_.compute_ids();
    return static_cast<size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
  }
  bool quorum_reachable();
  void on_pickup(size_t node);
  void kill_server(size_t server, int64_t down_ms, RestartDisk mode);
  // Applies one scheduled fault (and schedules its healing), one step per kind.
  void apply(const FaultEvent& e);
  void kill_standby_page_server(const FaultEvent& e);
  // A fault that makes a standby take over: a primary fault (but a cut from the page
  // servers, which keeps the lease), or a partition isolating the primary.
  static bool forces_takeover(const FaultEvent& e);
  void seal_burst(uint32_t seals);
  void partition(const FaultEvent& e);
  void message_faults(const FaultEvent& e);
  void disk_faults(const FaultEvent& e);
  void disk_full(const FaultEvent& e);
  uint64_t no_space_refusals(NodeId server);
  void clock_skew(const FaultEvent& e);
  void restart_standby(const FaultEvent& e);
  void kill_primary(const FaultEvent& e);
  void pause_primary(const FaultEvent& e);
  void partition_primary(const FaultEvent& e);
  void kill_coordinator(const FaultEvent& e);
  void after(int64_t ms, std::function<void()> undo);
  Task<void> nemesis();
  Task<void> stall_probe();
  // On every compute node: while it is the primary, its keys as needles.
  Task<void> key_probe(NodeId id);
  Task<void> collect_keys(Primary* p);
  void heal_everything();
  // The workload, rotations, nemesis and probes for the chaos phase.
  void run_chaos_phase();
  // Heals, stops rotations and then writes, takes a last checkpoint and collects the keys.
  void wind_down();
  // Plaintext needles and raw key bytes found on the page servers' disks.
  void check_disks();
  // The first violation's checker, the shared fields, and the failing node's logs.
  void finish_report();
  void fail(Checker checker, std::string what);

  KekOptions o_;
  FaultMix mix_;
  std::vector<FaultEvent> schedule_;
  ReplicaSetSim sim_;
  KekReport report_;
  NeedleSet needles_;
  std::set<size_t> found_;
  uint64_t bytes_scanned_ = 0;
  bool chaos_on_ = true;
  std::vector<bool> kill_at_pickup_;  // per compute node: armed
  std::vector<RestartDisk> kill_at_pickup_mode_;
  std::vector<int64_t> kill_at_pickup_ms_;
  std::map<NodeId, SimDiskStore::Snapshot> snapshots_;  // for stale restarts
  std::set<NodeId> down_;  // nodes this run took down and has not restarted yet
  std::set<NodeId> disk_faulted_;
  MonoTime paused_until_;  // the last primary_pause's end
  // A page server restarted empty or stale lacks records it had acknowledged until it has
  // caught up from its peers; a take-over reading a quorum that includes it could miss
  // them. So no fault that forces a take-over starts before rebuilt_until_, and no server
  // restarts empty or stale (it restarts intact) before takeover_until_.
  MonoTime rebuilt_until_;
  MonoTime takeover_until_;
  double longest_stall_s_ = 0;
  bool stall_reported_ = false;
};

void KekRun::fail(Checker checker, std::string what) {
  sim_.violation(checker, fmt::format("[{}] {}", checker_name(checker), what));
}

void KekRun::after(int64_t ms, std::function<void()> undo) {
  sim_.world().scheduler().post_at(kWorldNode, sim_.world().now() + std::chrono::milliseconds(ms),
                                   [this, undo = std::move(undo)] {
                                     if (chaos_on_) undo();
                                   });
}

bool KekRun::quorum_reachable() {
  SimWorld& w = sim_.world();
  SimNetwork& net = w.network();
  const NodeId coord = sim_.coordinator_id();
  if (!w.is_up(coord)) return false;
  auto reaches = [&](NodeId a, NodeId b) { return !net.blocked(a, b) && !net.blocked(b, a); };
  auto reaches_quorum = [&](NodeId n) {
    size_t ok = 0;
    for (NodeId s : sim_.server_ids()) {
      if (w.is_up(s) && reaches(n, s) && !disk_faulted_.count(s)) ok++;
    }
    return ok >= 2;
  };
  // A primary that keeps its lease but reaches no quorum holds everyone up (by design).
  if (std::optional<NodeId> p = sim_.serving_primary())
    if (reaches(*p, coord) && !reaches_quorum(*p)) return false;
  for (NodeId n : sim_.compute_ids()) {
    if (w.is_up(n) && reaches(n, coord) && reaches_quorum(n)) return true;
  }
  return false;
}

void KekRun::kill_server(size_t server, int64_t down_ms, RestartDisk mode) {
  SimWorld& w = sim_.world();
  const NodeId id = sim_.server_ids().at(server);
  if (!w.is_up(id)) return;
  w.crash(id, UnsyncedOnCrash::kRandomSubset);
  down_.insert(id);
  after(down_ms, [this, id, drawn = mode] {
    SimWorld& w = sim_.world();
    RestartDisk mode = drawn;
    if (mode != RestartDisk::kIntact) {
      if (w.now() < takeover_until_) {
        mode = RestartDisk::kIntact;
      } else {
        rebuilt_until_ =
            std::max(rebuilt_until_, w.now() + std::chrono::milliseconds(kServerSettleRebuiltMs));
      }
    }
    if (mode == RestartDisk::kEmpty) {
      w.disk(id).wipe();
    } else if (mode == RestartDisk::kStale) {
      auto it = snapshots_.find(id);
      if (it != snapshots_.end()) w.disk(id).restore(it->second);
    }
    w.start(id);
    down_.erase(id);
  });
}

void KekRun::on_pickup(size_t node) {
  if (node >= kill_at_pickup_.size() || !kill_at_pickup_[node]) return;
  kill_at_pickup_[node] = false;
  const size_t server = node % sim_.server_ids().size();
  const RestartDisk mode = kill_at_pickup_mode_[node];
  const int64_t ms = kill_at_pickup_ms_[node];
  // Outside the standby's task, at this instant.
  sim_.world().scheduler().post(kWorldNode, [this, server, mode, ms] {
    if (chaos_on_) kill_server(server, ms, mode);
  });
}

bool KekRun::forces_takeover(const FaultEvent& e) {
  switch (e.kind) {
    case FaultKind::kPrimaryKill:
    case FaultKind::kPrimaryPause:
    case FaultKind::kCoordinatorKill:
      return true;
    case FaultKind::kPrimaryPartition:
      return e.cut == PrimaryCut::kFromCoordinator;
    case FaultKind::kPartition:
      return e.shape == PartitionShape::kIsolate && e.target == 0;
    default:
      return false;
  }
}

void KekRun::apply(const FaultEvent& e) {
  ChaosCounts& c = report_.chaos;
  if (forces_takeover(e)) {
    SimWorld& w = sim_.world();
    if (w.now() < rebuilt_until_) return;  // a rebuilding server: skipped, not counted
    takeover_until_ = std::max(
        takeover_until_, w.now() + std::chrono::milliseconds(e.duration_ms + kTakeoverSettleMs));
  }
  switch (e.kind) {
    case FaultKind::kKillStandbyPageServer:
      c.kill_standby_page_server++;
      kill_standby_page_server(e);
      break;
    case FaultKind::kRapidSealBurst:
      c.rapid_seal_burst++;
      seal_burst(e.count);
      break;
    case FaultKind::kPageServerKill:
      c.page_server_kills++;
      kill_server(e.target % sim_.server_ids().size(), e.duration_ms, e.restart);
      break;
    case FaultKind::kPartition:
      c.partitions++;
      partition(e);
      break;
    case FaultKind::kMessageFaults:
      c.message_faults++;
      message_faults(e);
      break;
    case FaultKind::kDiskFaults:
      c.disk_faults++;
      disk_faults(e);
      break;
    case FaultKind::kDiskFull:
      c.disk_full++;
      disk_full(e);
      break;
    case FaultKind::kClockSkew:
      c.clock_skews++;
      clock_skew(e);
      break;
    case FaultKind::kStandbyRestart:
      c.standby_restarts++;
      restart_standby(e);
      break;
    case FaultKind::kPrimaryKill:
      kill_primary(e);
      break;
    case FaultKind::kPrimaryPause:
      pause_primary(e);
      break;
    case FaultKind::kPrimaryPartition:
      partition_primary(e);
      break;
    case FaultKind::kCoordinatorKill:
      kill_coordinator(e);
      break;
  }
}

void KekRun::kill_standby_page_server(const FaultEvent& e) {
  const size_t node = compute_index(standby_of(e.target));
  if (e.at_pickup) {
    kill_at_pickup_[node] = true;
    kill_at_pickup_mode_[node] = e.restart;
    kill_at_pickup_ms_[node] = e.duration_ms;
  } else {
    kill_server(node % sim_.server_ids().size(), e.duration_ms, e.restart);
  }
}

void KekRun::seal_burst(uint32_t n) {
  std::optional<NodeId> id = sim_.serving_primary();
  if (!id) return;
  // On the primary's node, with that node's primary only (it may step down meanwhile).
  sim_.spawn_on(*id, "seal-burst", [this, n, id = *id]() -> Task<void> {
    for (uint32_t i = 0; i < n; i++) {
      Primary* p = sim_.serving_on(id);
      if (p == nullptr) co_return;
      Env* env = sim_.world().env(id);
      sim_.spawn_on(id, "seal", [p]() -> Task<void> { co_await p->seal_log(); });
      if (!(co_await env->executor().sleep(kSealBurstPause)).is_ok()) co_return;
    }
  });
}

void KekRun::partition(const FaultEvent& e) {
  SimNetwork& net = sim_.world().network();
  const NodeId a = node_of(e.target);
  const NodeId b = node_of(e.other);
  if (e.shape == PartitionShape::kIsolate) {
    net.isolate(a);
  } else if (e.shape == PartitionShape::kOneWay) {
    net.partition_one_way(a, b);
  } else {
    net.partition(a, b);
  }
  after(e.duration_ms, [this] { sim_.world().network().heal_all(); });
}

void KekRun::message_faults(const FaultEvent& e) {
  SimNetwork& net = sim_.world().network();
  LinkFaults f = net.default_faults();
  f.drop = e.rate;
  f.duplicate = e.duplicate_rate;
  f.latency_min = f.latency_min + std::chrono::milliseconds(e.amount_ms);
  f.latency_max = std::max(f.latency_max, f.latency_min + std::chrono::milliseconds(1));
  net.set_default_faults(f);
  after(e.duration_ms, [this] { sim_.world().network().set_default_faults(LinkFaults{}); });
}

void KekRun::disk_faults(const FaultEvent& e) {
  SimWorld& w = sim_.world();
  const NodeId id = sim_.server_ids().at(e.target % sim_.server_ids().size());
  DiskFaults f = w.disk(id).faults();
  f.write_eio = e.rate;
  f.sync_eio = e.rate;
  w.disk(id).set_faults(f);
  disk_faulted_.insert(id);
  after(e.duration_ms, [this, id] {
    DiskFaults g = sim_.world().disk(id).faults();
    g.write_eio = 0;
    g.sync_eio = 0;
    sim_.world().disk(id).set_faults(g);
    disk_faulted_.erase(id);
  });
}

// The server's disk fills: `count` KiB more fit, then every write is refused (NoSpace)
// until the window ends. It keeps serving reads and does not count toward a quorum.
void KekRun::disk_full(const FaultEvent& e) {
  SimWorld& w = sim_.world();
  const NodeId id = sim_.server_ids().at(e.target % sim_.server_ids().size());
  DiskFaults f = w.disk(id).faults();
  f.capacity_bytes = w.disk(id).used_bytes() + uint64_t{e.count} * 1024;
  w.disk(id).set_faults(f);
  disk_faulted_.insert(id);
  const uint64_t before = no_space_refusals(id);
  after(e.duration_ms, [this, id, before] {
    DiskFaults g = sim_.world().disk(id).faults();
    g.capacity_bytes = 0;
    sim_.world().disk(id).set_faults(g);
    disk_faulted_.erase(id);
    const uint64_t now = no_space_refusals(id);  // since the store opened
    report_.no_space_refusals += now >= before ? now - before : now;
  });
}

uint64_t KekRun::no_space_refusals(NodeId server) {
  auto* ps = dynamic_cast<PageServer*>(sim_.world().app(server));
  if (ps == nullptr || ps->store() == nullptr) return 0;
  return ps->store()->stats().no_space_refusals;
}

void KekRun::clock_skew(const FaultEvent& e) {
  SimClock& clock = sim_.world().clock(node_of(e.target));
  clock.set_offset_ns(clock.offset_ns() + e.amount_ms * 1'000'000);
  clock.set_drift_ppm(e.rate);
}

void KekRun::restart_standby(const FaultEvent& e) {
  SimWorld& w = sim_.world();
  const NodeId id = standby_of(e.target);
  if (!w.is_up(id)) return;
  w.crash(id, UnsyncedOnCrash::kLose);
  down_.insert(id);
  after(e.duration_ms, [this, id] {
    sim_.restart_node(id);
    down_.erase(id);
  });
}

void KekRun::kill_primary(const FaultEvent& e) {
  std::optional<NodeId> id = sim_.serving_primary();
  if (!id) return;
  report_.chaos.primary_kill++;
  sim_.world().crash(*id, UnsyncedOnCrash::kLose);
  down_.insert(*id);
  after(e.duration_ms, [this, id = *id] {
    sim_.restart_node(id);
    down_.erase(id);
  });
}

void KekRun::pause_primary(const FaultEvent& e) {
  if (!sim_.serving_primary() || sim_.world().now() < paused_until_) return;
  const Nanos d = std::chrono::milliseconds(e.duration_ms);
  // As the primary's next client write is handed to it: the pause catches it in flight.
  sim_.on_next_write([this, d](NodeId id) {
    SimWorld& w = sim_.world();
    w.scheduler().post_at(kWorldNode, w.now() + kPauseAfterWrite, [this, id, d] {
      SimWorld& w = sim_.world();
      if (!chaos_on_ || !w.is_up(id) || w.now() < paused_until_) return;
      report_.chaos.primary_pause++;
      paused_until_ = w.now() + d;
      w.pause(id, d);
    });
  });
}

void KekRun::partition_primary(const FaultEvent& e) {
  std::optional<NodeId> id = sim_.serving_primary();
  if (!id) return;
  report_.chaos.primary_partition++;
  SimNetwork& net = sim_.world().network();
  std::vector<NodeId> others{sim_.coordinator_id()};
  if (e.cut == PrimaryCut::kFromPageServers) others = sim_.server_ids();
  for (NodeId o : others) net.partition(*id, o);
  after(e.duration_ms, [this, id = *id, others] {
    for (NodeId o : others) sim_.world().network().heal(id, o);
  });
}

void KekRun::kill_coordinator(const FaultEvent& e) {
  SimWorld& w = sim_.world();
  const NodeId id = sim_.coordinator_id();
  if (!w.is_up(id)) return;
  report_.chaos.coordinator_kill++;
  w.crash(id, UnsyncedOnCrash::kLose);
  down_.insert(id);
  after(e.duration_ms, [this, id] {
    sim_.world().start(id);
    down_.erase(id);
  });
}

Task<void> KekRun::nemesis() {
  Env* env = sim_.world().env(sim_.tool_id());
  const MonoTime start = sim_.world().now();
  int64_t next_snapshot_ms = 0;
  size_t i = 0;
  while (chaos_on_) {
    const int64_t now_ms = (sim_.world().now() - start).count() / 1'000'000;
    if (now_ms >= next_snapshot_ms) {
      // Durable images for "stale" restarts, a few seconds old when used.
      for (NodeId s : sim_.server_ids()) {
        if (sim_.world().is_up(s)) snapshots_[s] = sim_.world().disk(s).snapshot();
      }
      next_snapshot_ms = now_ms + 5000;
    }
    while (i < schedule_.size() && schedule_[i].at_ms <= now_ms) apply(schedule_[i++]);
    int64_t wake = next_snapshot_ms;
    if (i < schedule_.size()) wake = std::min(wake, schedule_[i].at_ms);
    if (!(co_await env->executor().sleep(
              std::chrono::milliseconds(std::max<int64_t>(1, wake - now_ms))))
             .is_ok()) {
      co_return;
    }
  }
}

Task<void> KekRun::stall_probe() {
  Env* env = sim_.world().env(sim_.tool_id());
  uint64_t last_acked = 0;
  std::optional<MonoTime> healthy_since;
  while (true) {
    if (!(co_await env->executor().sleep(std::chrono::milliseconds(100))).is_ok()) co_return;
    const uint64_t acked = sim_.counters().writes_acked;
    if (acked != last_acked || !quorum_reachable()) {
      last_acked = acked;
      healthy_since =
          quorum_reachable() ? std::optional<MonoTime>(sim_.world().now()) : std::nullopt;
      continue;
    }
    if (!healthy_since) healthy_since = sim_.world().now();
    const Nanos stalled = sim_.world().now() - *healthy_since;
    longest_stall_s_ = std::max(longest_stall_s_, std::chrono::duration<double>(stalled).count());
    if (stalled > kStallBound && sim_.counters().writes_acked > 0 && !stall_reported_) {
      stall_reported_ = true;
      fail(Checker::kStall,
           fmt::format(
               "no write was acknowledged for {:.1f} s while the coordinator and a quorum of page "
               "servers were up and reachable (at {:.1f} s)",
               std::chrono::duration<double>(stalled).count(),
               static_cast<double>(sim_.world().now().ns) / 1e9));
    }
  }
}

Task<void> KekRun::collect_keys(Primary* p) {
  // Every key the primary's keystore names, unwrapped, as needles.
  Keystore snapshot = p->engine().keystore();
  co_await add_keystore_keys(p->engine().kms(), snapshot, needles_);
}

Task<void> KekRun::key_probe(NodeId id) {
  Env* env = sim_.world().env(id);
  uint64_t seen = 0;
  while (true) {
    Primary* p = sim_.serving_on(id);
    if (p != nullptr && p->engine().keystore().version() != seen) {
      seen = p->engine().keystore().version();
      co_await collect_keys(p);
    }
    if (!(co_await env->executor().sleep(std::chrono::milliseconds(20))).is_ok()) co_return;
  }
}

void KekRun::heal_everything() {
  SimWorld& w = sim_.world();
  chaos_on_ = false;
  kill_at_pickup_.assign(kill_at_pickup_.size(), false);
  w.network().heal_all();
  w.network().set_default_faults(LinkFaults{});
  w.network().clear_link_faults();
  for (NodeId s : sim_.server_ids()) {
    DiskFaults f = w.disk(s).faults();
    f.write_eio = 0;
    f.sync_eio = 0;
    f.read_eio = 0;
    f.capacity_bytes = 0;
    w.disk(s).set_faults(f);
  }
  disk_faulted_.clear();
  for (NodeId id : sim_.server_ids()) {
    if (!w.is_up(id)) w.start(id);
  }
  if (!w.is_up(sim_.coordinator_id())) w.start(sim_.coordinator_id());
  sim_.on_next_write(nullptr);
  for (NodeId id : sim_.compute_ids()) {
    if (!w.is_up(id) && w.aborts().empty()) sim_.restart_node(id);
  }
  down_.clear();
}

KekReport KekRun::run() {
  const size_t nodes = sim_.compute_ids().size();
  kill_at_pickup_.assign(nodes, false);
  kill_at_pickup_mode_.assign(nodes, RestartDisk::kIntact);
  kill_at_pickup_ms_.assign(nodes, 0);
  std::string why;
  if (!sim_.bring_up(kBringUpMax, &why)) {
    fail(Checker::kLiveness, why);
  } else {
    run_chaos_phase();
    wind_down();
    sim_.check_split_brain();
    sim_.check_convergence(kConvergeBound);
  }
  // Reads, monotonicity and aborts were checked as the run went (ReplicaSetSim).
  sim_.collect_aborts();
  check_disks();
  finish_report();
  return report_;
}

void KekRun::run_chaos_phase() {
  sim_.add_node_task("key-needles", [this](NodeId id) { return key_probe(id); });
  sim_.start_probe(kProbeEvery);
  sim_.start_workload(1);
  sim_.start_rotations(std::chrono::milliseconds(mix_.rotation_every_ms), mix_.cmk_every);
  sim_.spawn_on(sim_.tool_id(), "nemesis", [this]() -> Task<void> { co_await nemesis(); });
  sim_.spawn_on(sim_.tool_id(), "stall-probe", [this]() -> Task<void> { co_await stall_probe(); });
  sim_.world().run_for(o_.duration);
}

void KekRun::wind_down() {
  SimWorld& w = sim_.world();
  // Heal, let the rotations and writes run a little longer, then stop and check.
  heal_everything();
  w.run_for(kHealedRotationsFor);
  sim_.stop_rotations();
  w.run_for(kHealedWritesFor);
  sim_.stop_workload();
  w.run_for(kQuiesceFor);
  // A failover may still be under way: the last checkpoint is the serving primary's.
  sim_.run_until([this] { return sim_.serving_primary().has_value(); }, kFinalStepMax);
  if (std::optional<NodeId> id = sim_.serving_primary()) {
    sim_.run_on(
        *id,
        [this, id = *id]() -> Task<void> {
          if (Primary* p = sim_.serving_on(id)) co_await p->checkpoint_now();
        },
        kFinalStepMax);
    sim_.run_on(
        *id,
        [this, id = *id]() -> Task<void> {
          if (Primary* p = sim_.serving_on(id)) co_await collect_keys(p);
        },
        kFinalStepMax);
  }
}

void KekRun::check_disks() {
  if (found_.empty()) return;
  std::set<std::string> kinds;
  for (size_t i : found_) kinds.insert(needles_.what(i));
  std::string list;
  for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
  fail(Checker::kPlaintext,
       fmt::format("{} plaintext needle(s) found on page server disks: {}", found_.size(), list));
}

void KekRun::finish_report() {
  SimWorld& w = sim_.world();
  // The failing checker is the first violation's.
  if (std::optional<Checker> first = sim_.first_violation_checker()) {
    report_.failed_checker_id = *first;
    report_.failed_checker = std::string(checker_name(*first));
  }
  collect_scenario_report(sim_, report_);
  report_.page_server_bytes_scanned = bytes_scanned_;
  for (NodeId s : sim_.server_ids()) {
    report_.page_server_fail_stops += sim_.world().restarts_requested(s);
  }
  report_.longest_stall_seconds = longest_stall_s_;
  report_.failovers = sim_.split_brain().failovers();
  report_.terms_max = sim_.split_brain().terms_max();
  if (report_.passed) return;
  // The failing node: an aborted one, else the last compute node named, else the primary.
  NodeId node = sim_.primary_id();
  if (!w.aborts().empty()) {
    node = w.aborts().front().node;
  } else {
    for (NodeId id : sim_.compute_ids()) {
      if (report_.violations.front().find(w.name(id)) != std::string::npos) node = id;
    }
  }
  report_.failing_node = w.name(node);
  report_.failure_logs = node_log_text(w, node);
  report_.all_logs = all_logs_text(w);
}

}  // namespace

FaultMix kek_fault_mix(const KekOptions& o) {
  if (o.mix) return *o.mix;
  FaultMix mix = draw_fault_mix(o.seed);
  for (FaultKind k : o.extra_kinds) {
    if (std::find(mix.kinds.begin(), mix.kinds.end(), k) == mix.kinds.end()) mix.kinds.push_back(k);
  }
  return mix;
}

KekReport run_kek(const KekOptions& o) {
  FaultMix mix = kek_fault_mix(o);
  std::vector<FaultEvent> schedule =
      o.schedule ? *o.schedule : draw_schedule(o.seed, mix, o.duration, o.standbys);
  KekRun run(o, std::move(mix), std::move(schedule));
  return run.run();
}

// ---- Reports
// -------------------------------------------------------------------------------------

namespace {

nlohmann::ordered_json event_json(const FaultEvent& e) {
  nlohmann::ordered_json j;
  j["at_ms"] = e.at_ms;
  j["kind"] = std::string(fault_kind_name(e.kind));
  j["target"] = e.target;
  j["other"] = e.other;
  j["duration_ms"] = e.duration_ms;
  j["mode"] = mode_field(e);
  j["at_pickup"] = e.at_pickup;
  j["rate"] = e.rate;
  j["rate2"] = e.duplicate_rate;
  j["amount_ms"] = e.amount_ms;
  j["count"] = e.count;
  return j;
}

nlohmann::ordered_json mix_json(const FaultMix& m) {
  nlohmann::ordered_json j;
  std::vector<std::string> kinds;
  for (FaultKind k : m.kinds) kinds.emplace_back(fault_kind_name(k));
  j["kinds"] = kinds;
  j["mean_interval_ms"] = m.mean_interval_ms;
  j["rotation_every_ms"] = m.rotation_every_ms;
  j["cmk_every"] = m.cmk_every;
  j["rotation_gap_max_ms"] = m.rotation_gap_max_ms;
  j["checkpoint_every_ms"] = m.checkpoint_every_ms;
  j["standby_log_wait_ms"] = m.standby_log_wait_ms;
  return j;
}

}  // namespace

std::string fault_mix_text(const FaultMix& m) {
  std::string kinds;
  for (FaultKind k : m.kinds) kinds += (kinds.empty() ? "" : ",") + std::string(fault_kind_name(k));
  return fmt::format(
      "{} every ~{} ms; KEK rotation every {} ms (gap up to {} ms), CMK every {} KEK rotations; "
      "checkpoints every {} ms; standbys {}",
      kinds, m.mean_interval_ms, m.rotation_every_ms, m.rotation_gap_max_ms, m.cmk_every,
      m.checkpoint_every_ms,
      m.standby_log_wait_ms > 0 ? fmt::format("long-poll the log ({} ms)", m.standby_log_wait_ms)
                                : std::string("poll the log"));
}

std::string kek_report_json(const KekReport& r) {
  nlohmann::ordered_json j;
  add_scenario_json(j, r);
  j["standbys"] = r.standbys;
  j["failed_checker"] = r.failed_checker;
  j["page_server_bytes_scanned"] = r.page_server_bytes_scanned;
  j["no_space_refusals"] = r.no_space_refusals;
  j["page_server_fail_stops"] = r.page_server_fail_stops;
  j["longest_stall_seconds"] = r.longest_stall_seconds;
  j["failovers"] = r.failovers;
  j["terms_max"] = r.terms_max;
  j["chaos"] = {{"kill_standby_page_server", r.chaos.kill_standby_page_server},
                {"rapid_seal_burst", r.chaos.rapid_seal_burst},
                {"page_server_kills", r.chaos.page_server_kills},
                {"partitions", r.chaos.partitions},
                {"message_faults", r.chaos.message_faults},
                {"disk_faults", r.chaos.disk_faults},
                {"disk_full", r.chaos.disk_full},
                {"clock_skews", r.chaos.clock_skews},
                {"standby_restarts", r.chaos.standby_restarts},
                {"primary_kill", r.chaos.primary_kill},
                {"primary_pause", r.chaos.primary_pause},
                {"primary_partition", r.chaos.primary_partition},
                {"coordinator_kill", r.chaos.coordinator_kill}};
  j["fault_mix"] = mix_json(r.mix);
  j["schedule_events"] = r.schedule.size();
  return j.dump(2) + "\n";
}

std::string kek_report_text(const KekReport& r) {
  std::string out = fmt::format("quire chaos kek: seed {}, policy {}, {} standbys\n", r.seed,
                                pickup_policy_name(r.policy), r.standbys);
  out += fmt::format("  fault mix: {}\n", fault_mix_text(r.mix));
  out += fmt::format(
      "  chaos: kill_standby_page_server {}, rapid_seal_burst {}, page-server kills {}, partitions "
      "{}, message "
      "faults {}, disk faults {}, full disks {} ({} writes refused for space), clock skews {}, "
      "standby restarts {}\n",
      r.chaos.kill_standby_page_server, r.chaos.rapid_seal_burst, r.chaos.page_server_kills,
      r.chaos.partitions, r.chaos.message_faults, r.chaos.disk_faults, r.chaos.disk_full,
      r.no_space_refusals, r.chaos.clock_skews, r.chaos.standby_restarts);
  out += fmt::format(
      "  primary faults: primary_kill {}, primary_pause {}, primary_partition {}, "
      "coordinator_kill {}; failovers {}, terms_max {}\n",
      r.chaos.primary_kill, r.chaos.primary_pause, r.chaos.primary_partition,
      r.chaos.coordinator_kill, r.failovers, r.terms_max);
  out += scenario_text(r);
  out += fmt::format(
      "  page-server bytes scanned for plaintext {}; longest write stall with a quorum up {:.1f} "
      "s\n",
      r.page_server_bytes_scanned, r.longest_stall_seconds);
  // No wall time here: the same seed prints the same report, byte for byte.
  out += fmt::format("  {:.1f} simulated s; trace {:#018x}\n", r.sim_seconds, r.trace_hash);
  for (const std::string& v : r.violations) out += fmt::format("  VIOLATION: {}\n", v);
  out += r.passed ? "PASSED\n" : fmt::format("FAILED ({})\n", r.failed_checker);
  return out;
}

// ---- Replay files -------------------------------------------------------------------------------

std::string replay_file_json(const KekReport& r) {
  nlohmann::ordered_json j;
  j["scenario"] = "kek";
  j["seed"] = r.seed;
  j["policy"] = std::string(pickup_policy_name(r.policy));
  j["standbys"] = r.standbys;
  j["duration_s"] = r.duration_s;
  j["failed_checker"] = r.failed_checker;
  j["fault_mix"] = mix_json(r.mix);
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const FaultEvent& e : r.schedule) events.push_back(event_json(e));
  j["schedule"] = events;
  return j.dump(2) + "\n";
}

namespace {

Status replay_error(const std::string& what) {
  return invalid_argument(fmt::format("replay file: {}", what));
}

// The replay file's "fault_mix". Throws nlohmann::json::exception for a missing field.
Result<FaultMix> parse_mix_json(const nlohmann::json& m) {
  FaultMix mix;
  for (const auto& k : m.at("kinds")) {
    auto kind = parse_fault_kind(k.get<std::string>());
    if (!kind) return replay_error(fmt::format("unknown fault kind '{}'", k.get<std::string>()));
    mix.kinds.push_back(*kind);
  }
  mix.mean_interval_ms = m.at("mean_interval_ms").get<int64_t>();
  mix.rotation_every_ms = m.at("rotation_every_ms").get<int64_t>();
  mix.cmk_every = m.at("cmk_every").get<int>();
  mix.rotation_gap_max_ms = m.at("rotation_gap_max_ms").get<int64_t>();
  mix.checkpoint_every_ms = m.at("checkpoint_every_ms").get<int64_t>();
  // Reports from before long polls have none: their standbys polled.
  mix.standby_log_wait_ms = m.value("standby_log_wait_ms", int64_t{0});
  if (mix.rotation_every_ms < 100 || mix.checkpoint_every_ms < 10 || mix.cmk_every < 1 ||
      mix.rotation_gap_max_ms < 0 || mix.standby_log_wait_ms < 0 ||
      mix.standby_log_wait_ms > static_cast<int64_t>(kReadLogWaitMsMax)) {
    return replay_error("fault_mix values out of range");
  }
  return mix;
}

// One event of the replay file's "schedule". Throws nlohmann::json::exception for a
// missing field.
Result<FaultEvent> parse_event_json(const nlohmann::json& ev) {
  FaultEvent e;
  e.at_ms = ev.at("at_ms").get<int64_t>();
  auto kind = parse_fault_kind(ev.at("kind").get<std::string>());
  if (!kind)
    return replay_error(fmt::format("unknown fault kind '{}'", ev.at("kind").get<std::string>()));
  e.kind = *kind;
  e.target = ev.value("target", 0u);
  e.other = ev.value("other", 0u);
  e.duration_ms = ev.value("duration_ms", int64_t{0});
  const uint8_t mode = ev.value("mode", uint8_t{0});
  if (e.kind == FaultKind::kPartition)
    e.shape = static_cast<PartitionShape>(mode);
  else if (e.kind == FaultKind::kPrimaryPartition)
    e.cut = static_cast<PrimaryCut>(mode);
  else
    e.restart = static_cast<RestartDisk>(mode);
  e.at_pickup = ev.value("at_pickup", false);
  e.rate = ev.value("rate", 0.0);
  e.duplicate_rate = ev.value("rate2", 0.0);
  e.amount_ms = ev.value("amount_ms", int64_t{0});
  e.count = ev.value("count", 0u);
  const uint8_t mode_max = e.kind == FaultKind::kPrimaryPartition ? 1 : 2;
  if (e.at_ms < 0 || e.duration_ms < 0 || mode > mode_max || e.count > kBurstSealsMax ||
      !(e.rate >= -kEventRateMax && e.rate <= kEventRateMax)) {
    return replay_error("a schedule event is out of range");
  }
  return e;
}

}  // namespace

Result<ReplaySpec> parse_replay_file(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return invalid_argument("replay file is not a JSON object");
  try {
    ReplaySpec spec;
    if (j.value("scenario", std::string()) != "kek")
      return replay_error("scenario must be \"kek\"");
    spec.options.seed = j.at("seed").get<uint64_t>();
    auto policy = parse_pickup_policy(j.at("policy").get<std::string>());
    if (!policy.is_ok()) return replay_error(policy.status().message());
    spec.options.policy = *policy;
    spec.options.standbys = j.at("standbys").get<size_t>();
    if (spec.options.standbys < 1 || spec.options.standbys > 8)
      return replay_error("standbys must be 1..8");
    if (j.contains("duration_s")) {
      const double d = j.at("duration_s").get<double>();
      if (!(d >= 1 && d <= 86400)) return replay_error("duration_s must be 1..86400");
      spec.options.duration = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(d));
    }
    spec.failed_checker = j.value("failed_checker", std::string());
    Result<FaultMix> mix = parse_mix_json(j.at("fault_mix"));
    if (!mix.is_ok()) return mix.status();
    std::vector<FaultEvent> schedule;
    for (const auto& ev : j.at("schedule")) {
      Result<FaultEvent> e = parse_event_json(ev);
      if (!e.is_ok()) return e.status();
      if (!schedule.empty() && e->at_ms < schedule.back().at_ms)
        return replay_error("schedule is not in time order");
      schedule.push_back(*e);
    }
    spec.options.mix = *mix;
    spec.options.schedule = schedule;
    return spec;
  } catch (const nlohmann::json::exception& e) {
    return replay_error(e.what());
  }
}

// ---- Shrinking ---------------------------------------------------------------------------------

KekReport shrink_kek(const KekOptions& options, const KekReport& failing,
                     const std::function<void(size_t trials, size_t events)>& progress) {
  KekOptions o = options;
  o.mix = failing.mix;
  std::vector<FaultEvent> current = failing.schedule;
  KekReport best = failing;
  size_t trials = 0;
  auto fails_same = [&](const std::vector<FaultEvent>& candidate, KekReport* out) {
    o.schedule = candidate;
    KekReport r = run_kek(o);
    trials++;
    if (progress) progress(trials, candidate.size());
    if (!r.passed && r.failed_checker_id == failing.failed_checker_id) {
      *out = std::move(r);
      return true;
    }
    return false;
  };
  // ddmin: try removing chunks of decreasing size until no single event can go.
  size_t n = 2;
  while (current.size() >= 2) {
    const size_t chunk = (current.size() + n - 1) / n;
    bool reduced = false;
    for (size_t start = 0; start < current.size(); start += chunk) {
      std::vector<FaultEvent> complement;
      for (size_t i = 0; i < current.size(); i++) {
        if (i < start || i >= start + chunk) complement.push_back(current[i]);
      }
      KekReport r;
      if (fails_same(complement, &r)) {
        current = std::move(complement);
        best = std::move(r);
        n = std::max<size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.size()) break;
      n = std::min(current.size(), n * 2);
    }
  }
  if (current.size() == 1) {
    KekReport r;
    if (fails_same({}, &r)) {
      current.clear();
      best = std::move(r);
    }
  }
  best.schedule = current;
  return best;
}

}  // namespace quire
