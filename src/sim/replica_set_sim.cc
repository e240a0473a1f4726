#include "sim/replica_set_sim.h"

#include <algorithm>

#include <fmt/format.h>

#include "coord/sim_coordinator.h"
#include "pagelog/page_server.h"

namespace quire {

// ---- HistoryModel ---------------------------------------------------------------------------

void HistoryModel::acked(TableId table, const std::string& key, Timestamp ts,
                         std::optional<std::string> value) {
  keys_[{table.value, key}].acked[ts] = std::move(value);
  acked_writes_++;
}

void HistoryModel::unknown(TableId table, const std::string& key,
                           std::optional<std::string> value) {
  keys_[{table.value, key}].unknown.insert(std::move(value));
  unknown_writes_++;
}

void HistoryModel::pending(TableId table, const std::string& key,
                           std::optional<std::string> value) {
  keys_[{table.value, key}].unknown.insert(std::move(value));
}

void HistoryModel::settled_acked(TableId table, const std::string& key, Timestamp ts,
                                 std::optional<std::string> value) {
  History& h = keys_[{table.value, key}];
  if (auto it = h.unknown.find(value); it != h.unknown.end()) h.unknown.erase(it);
  acked(table, key, ts, std::move(value));
}

std::optional<std::string> HistoryModel::expected(TableId table, const std::string& key,
                                                  Timestamp ts) const {
  auto it = keys_.find({table.value, key});
  if (it == keys_.end()) return std::nullopt;
  auto v = it->second.acked.upper_bound(ts);
  if (v == it->second.acked.begin()) return std::nullopt;
  return std::prev(v)->second;
}

bool HistoryModel::acceptable(TableId table, const std::string& key, Timestamp ts,
                              const std::optional<std::string>& got) const {
  if (got == expected(table, key, ts)) return true;
  auto it = keys_.find({table.value, key});
  return it != keys_.end() && it->second.unknown.count(got) > 0;
}

std::vector<std::string> HistoryModel::keys(TableId table, const std::string& lo,
                                            const std::string& hi) const {
  std::vector<std::string> out;
  for (auto it = keys_.lower_bound({table.value, lo});
       it != keys_.end() && it->first.first == table.value; ++it) {
    if (!hi.empty() && it->first.second >= hi) break;
    out.push_back(it->first.second);
  }
  return out;
}

// ---- ReplicaSetSim --------------------------------------------------------------------------

namespace {
std::string key_name(uint64_t i) {
  return fmt::format("k{:05d}", i);
}
// Elected mode: where the coordinator listens, the election, and how often a compute
// node's idle client loop looks again whether its node serves.
constexpr const char* kCoordinatorAddress = "coord:2379";
constexpr const char* kElection = "/quire/sim/primary";
constexpr Nanos kIdlePoll = std::chrono::milliseconds(10);
}  // namespace

ReplicaSetSim::ReplicaSetSim(ReplicaSetConfig config)
    : config_(std::move(config)), world_(config_.seed) {
  kms_random_ = world_.random_stream("kms-service");
  kms_service_ = std::make_unique<SimKmsService>(*kms_random_);
  workload_random_ = world_.random_stream("workload");
  for (size_t i = 1; i <= config_.servers; ++i) addresses_.push_back(fmt::format("ps{}:7000", i));
  for (size_t i = 0; i < config_.servers; ++i) {
    PageServerOptions o;
    o.listen = addresses_[i];
    o.store.segment_bytes_max = 256 << 10;
    for (size_t j = 0; j < config_.servers; ++j) {
      if (j != i) o.peers.push_back(addresses_[j]);
    }
    servers_.push_back(world_.add_node(fmt::format("ps{}", i + 1), [o](Env& env) {
      return std::make_unique<PageServer>(env, o);
    }));
  }
  SimKmsService* kms = kms_service_.get();
  ReplicaNode::KmsFactory kms_factory = [kms](Env& env) -> std::unique_ptr<Kms> {
    return std::make_unique<SimKms>(*kms, env);
  };
  ReplicaConfig base;
  base.servers = addresses_;
  base.write_quorum = config_.servers / 2 + 1;
  base.engine = config_.engine;
  base.engine.policy = config_.policy;
  base.engine.planted_bugs = config_.planted_bugs;
  base.primary = config_.primary;
  base.primary.tables = tables();
  base.primary.planted_bugs = config_.planted_bugs;
  base.standby = config_.standby;
  if (config_.elected) {
    add_elected_nodes(base, kms_factory);
  } else {
    ReplicaConfig p = base;
    p.role = ReplicaRole::kPrimary;
    primary_ = world_.add_node("primary", [p, kms_factory](Env& env) {
      return std::make_unique<ReplicaNode>(env, p, kms_factory);
    });
    for (size_t i = 0; i < config_.standbys; ++i) {
      ReplicaConfig s = base;
      s.role = ReplicaRole::kStandby;
      s.preferred_server = i % config_.servers;
      hook_pickup(s, i);
      standbys_.push_back(
          world_.add_node(fmt::format("standby{}", i + 1), [s, kms_factory](Env& env) {
            return std::make_unique<ReplicaNode>(env, s, kms_factory);
          }));
    }
    compute_.push_back(primary_);
    compute_.insert(compute_.end(), standbys_.begin(), standbys_.end());
  }
  struct Idle : NodeApp {
    void start() override {}
  };
  tool_ = world_.add_node("checker", [](Env&) { return std::make_unique<Idle>(); });
}

ReplicaSetSim::~ReplicaSetSim() = default;

void ReplicaSetSim::hook_pickup(ReplicaConfig& c, size_t i) const {
  if (!config_.on_pickup) return;
  auto own = c.standby.before_pickup;
  auto hook = config_.on_pickup;
  c.standby.before_pickup = [own, hook, i](Lsn lsn) {
    hook(i, lsn);
    if (own) own(lsn);
  };
}

void ReplicaSetSim::add_elected_nodes(const ReplicaConfig& base,
                                      const ReplicaNode::KmsFactory& kms_factory) {
  coordinator_ = world_.add_node("coord", [](Env& env) {
    SimCoordinatorOptions o;
    o.listen = kCoordinatorAddress;
    return std::make_unique<SimCoordinatorNode>(env, o);
  });
  ReplicaNode::CoordinatorFactory coord_factory = [](Env& env) -> std::unique_ptr<Coordinator> {
    return std::make_unique<SimCoordinatorClient>(env, kCoordinatorAddress);
  };
  for (size_t i = 0; i <= config_.standbys; ++i) {
    ReplicaConfig c = base;
    c.preferred_server = i % config_.servers;
    const std::string name = fmt::format("node{}", i + 1);
    c.elector.election = kElection;
    c.elector.value = name;
    c.elector.lease_ttl = config_.lease_ttl;
    c.takeover.planted_bugs = config_.planted_bugs;
    hook_pickup(c, i);
    compute_.push_back(world_.add_node(name, [c, kms_factory, coord_factory](Env& env) {
      return std::make_unique<ReplicaNode>(env, c, kms_factory, coord_factory);
    }));
  }
  primary_ = compute_.front();
}

std::vector<TableId> ReplicaSetSim::tables() const {
  std::vector<TableId> out;
  for (size_t i = 0; i < config_.tables; ++i) out.push_back(TableId(16 + i));
  return out;
}

ReplicaNode* ReplicaSetSim::node(NodeId id) {
  return dynamic_cast<ReplicaNode*>(world_.app(id));
}

Primary* ReplicaSetSim::primary() {
  if (config_.elected) {
    std::optional<NodeId> p = serving_primary();
    return p ? serving_on(*p) : nullptr;
  }
  ReplicaNode* n = node(primary_);
  return n && n->started() ? n->primary() : nullptr;
}

Primary* ReplicaSetSim::serving_on(NodeId id) {
  ReplicaNode* n = node(id);
  if (n == nullptr || !n->started() || n->primary() == nullptr || !n->primary()->running())
    return nullptr;
  return n->primary();
}

std::optional<NodeId> ReplicaSetSim::serving_primary() {
  if (!config_.elected) return primary() ? std::optional<NodeId>(primary_) : std::nullopt;
  std::optional<NodeId> best;
  uint64_t best_term = 0;
  for (NodeId id : compute_) {
    ReplicaNode* n = node(id);
    if (n == nullptr) continue;
    split_brain_.observe(*n);
    if (serving_on(id) == nullptr) continue;
    const uint64_t term = n->client().term().value;
    if (!best || term > best_term) {
      best = id;
      best_term = term;
    }
  }
  split_brain_.serving(best_term);
  if (best) primary_ = *best;
  return best;
}

std::vector<NodeId> ReplicaSetSim::standbys_now() {
  std::optional<NodeId> p = serving_primary();
  std::vector<NodeId> out;
  for (NodeId id : compute_) {
    if (id != p) out.push_back(id);
  }
  return out;
}

void ReplicaSetSim::restart_node(NodeId id) {
  if (world_.is_up(id)) return;
  world_.start(id);
  ensure_node_tasks(id);
}

void ReplicaSetSim::add_node_task(std::string name, std::function<Task<void>(NodeId)> body) {
  QUIRE_ASSERT(config_.elected);
  for (NodeId id : compute_) {
    if (Env* env = world_.env(id); env != nullptr && tasks_incarnation_.count(id) > 0 &&
                                   tasks_incarnation_[id] == world_.incarnation(id)) {
      env->executor().spawn(name, body(id));
    }
  }
  node_tasks_.push_back(NodeTask{std::move(name), std::move(body)});
}

void ReplicaSetSim::ensure_node_tasks(NodeId id) {
  Env* env = world_.env(id);
  if (env == nullptr) return;
  auto it = tasks_incarnation_.find(id);
  if (it != tasks_incarnation_.end() && it->second == world_.incarnation(id)) return;
  tasks_incarnation_[id] = world_.incarnation(id);
  for (const NodeTask& t : node_tasks_) env->executor().spawn(t.name, t.body(id));
}

void ReplicaSetSim::check_split_brain() {
  serving_primary();  // the last fences
  if (std::optional<std::string> v = split_brain_.check())
    violation(Checker::kSplitBrain, "split brain: " + *v);
}

Standby* ReplicaSetSim::standby(size_t i) {
  ReplicaNode* n = node(standbys_.at(i));
  return n ? n->standby() : nullptr;
}

NodeId ReplicaSetSim::preferred_server(size_t standby) const {
  return servers_.at(standby % servers_.size());
}

bool ReplicaSetSim::run_on(NodeId id, std::function<Task<void>()> body, Nanos limit) {
  Env* env = world_.env(id);
  if (env == nullptr) return false;
  auto done = std::make_shared<bool>(false);
  auto wrap = [](std::function<Task<void>()> b, std::shared_ptr<bool> d) -> Task<void> {
    co_await b();
    *d = true;
  };
  env->executor().spawn("harness", wrap(std::move(body), done));
  world_.run_until([&] { return *done; }, world_.now() + limit);
  return *done;
}

void ReplicaSetSim::spawn_on(NodeId id, std::string name, std::function<Task<void>()> body) {
  Env* env = world_.env(id);
  if (env == nullptr) return;
  auto wrap = [](std::function<Task<void>()> b) -> Task<void> { co_await b(); };
  env->executor().spawn(std::move(name), wrap(std::move(body)));
}

bool ReplicaSetSim::run_until(const std::function<bool()>& done, Nanos limit) {
  return world_.run_until(done, world_.now() + limit);
}

std::string_view checker_name(Checker c) {
  switch (c) {
    case Checker::kAbort:
      return "abort";
    case Checker::kMonotonic:
      return "monotonic";
    case Checker::kLostWrite:
      return "lost_write";
    case Checker::kRead:
      return "read";
    case Checker::kConvergence:
      return "convergence";
    case Checker::kLiveness:
      return "liveness";
    case Checker::kStall:
      return "stall";
    case Checker::kPlaintext:
      return "plaintext";
    case Checker::kScenario:
      return "scenario";
    case Checker::kSplitBrain:
      return "split_brain";
  }
  return "unknown";
}

void ReplicaSetSim::violation(Checker checker, std::string what) {
  if (violations_.size() >= kViolationsKeptMax) return;
  if (violations_.empty()) first_checker_ = checker;
  violations_.push_back(std::move(what));
}

void ReplicaSetSim::collect_aborts() {
  const auto& aborts = world_.aborts();
  for (; aborts_seen_ < aborts.size(); aborts_seen_++) {
    const auto& a = aborts[aborts_seen_];
    violation(Checker::kAbort, fmt::format("node {} aborted at {:.3f}s: {}", world_.name(a.node),
                                           static_cast<double>(a.at.ns) / 1e9, a.why));
  }
}

bool ReplicaSetSim::bring_up(Nanos limit, std::string* why) {
  if (config_.elected) {
    for (NodeId s : servers_) world_.start(s);
    world_.start(coordinator_);
    world_.start(tool_);
    for (NodeId id : compute_) world_.start(id);
    const bool up = run_until(
        [&] {
          std::optional<NodeId> p = serving_primary();
          if (!p) return false;
          for (NodeId id : compute_) {
            ReplicaNode* n = node(id);
            if (id != *p && (n == nullptr || n->standby() == nullptr ||
                             n->standby()->state() != StandbyState::kSecondary))
              return false;
          }
          return true;
        },
        limit);
    if (!up) {
      *why = "no primary was elected, or the standbys did not reach SECONDARY";
      return false;
    }
    for (NodeId id : compute_) ensure_node_tasks(id);
    return true;
  }
  for (NodeId s : servers_) world_.start(s);
  world_.start(tool_);
  world_.start(primary_);
  bool primary_up = run_until(
      [&] {
        ReplicaNode* n = node(primary_);
        return n && (n->started() || !n->start_status().is_ok());
      },
      limit);
  ReplicaNode* p = node(primary_);
  if (!primary_up || !p || !p->started()) {
    *why =
        fmt::format("primary did not start: {}", p ? p->start_status().to_string() : "node down");
    return false;
  }
  for (NodeId s : standbys_) world_.start(s);
  bool up = run_until(
      [&] {
        for (size_t i = 0; i < standbys_.size(); ++i) {
          Standby* s = standby(i);
          if (!s || s->state() != StandbyState::kSecondary) return false;
        }
        return true;
      },
      limit);
  if (!up) {
    *why = "standbys did not reach SECONDARY";
    return false;
  }
  return true;
}

// ---- Workload -------------------------------------------------------------------------------

void ReplicaSetSim::start_workload(size_t writers) {
  workload_on_ = true;
  if (config_.elected) {
    for (size_t i = 0; i < writers; ++i) {
      add_node_task(fmt::format("client-write-{}", i),
                    [this](NodeId id) { return elected_write_loop(id); });
    }
    add_node_task("client-read", [this](NodeId id) { return read_loop(id, SIZE_MAX); });
    return;
  }
  Env* env = world_.env(primary_);
  if (env == nullptr) return;
  for (size_t i = 0; i < writers; ++i)
    env->executor().spawn(fmt::format("client-write-{}", i), write_loop(i));
  env->executor().spawn("client-read", read_loop(primary_, SIZE_MAX));
  for (size_t i = 0; i < standbys_.size(); ++i) start_reader(i);
}

void ReplicaSetSim::start_reader(size_t i) {
  if (!workload_on_ || config_.elected) return;
  if (Env* se = world_.env(standbys_.at(i)))
    se->executor().spawn("client-read", read_loop(standbys_[i], i));
}

Task<void> ReplicaSetSim::write_loop(uint64_t id) {
  (void)id;
  Env* env = world_.env(primary_);
  while (workload_on_ && env != nullptr) {
    Primary* p = primary();
    if (p == nullptr) co_return;
    std::vector<LogWrite> batch = draw_batch();
    std::vector<LogWrite> copy = batch;
    auto r = co_await p->write(std::move(copy));
    if (r.code() == Code::kCancelled) co_return;
    record_outcome(batch, r);
    Status slept = co_await env->executor().sleep(Nanos(
        workload_random_->range(config_.write_pause_min.count(), config_.write_pause_max.count())));
    if (!slept.is_ok()) co_return;
  }
}

std::vector<LogWrite> ReplicaSetSim::draw_batch() {
  std::vector<LogWrite> batch;
  const int n = static_cast<int>(workload_random_->range(1, 4));
  for (int i = 0; i <= n; ++i) {
    LogWrite w;
    w.table = TableId(16 + workload_random_->uniform(config_.tables));
    // The first write of every batch goes to a key of its own that nothing overwrites,
    // so losing any acknowledged batch shows in the final content; the others go to a
    // small key space that is overwritten all the time.
    w.key = i == 0 ? fmt::format("u{:010d}", next_unique_++)
                   : key_name(workload_random_->uniform(config_.keys_per_table));
    if (i == 0 || !workload_random_->chance(0.1)) {
      // Unique in its first 16 bytes (a plaintext canary), and readable.
      const uint64_t n = next_value_++;
      uint64_t h = (config_.seed * 0x9e3779b97f4a7c15ULL) ^ (n + 0x632be59bd9b4e019ULL);
      h ^= h >> 31;
      h *= 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 29;
      w.value = fmt::format("{:016x}-v{}", h, n);
      if (config_.on_value) config_.on_value(*w.value);
    }
    batch.push_back(std::move(w));
  }
  return batch;
}

void ReplicaSetSim::record_outcome(std::vector<LogWrite>& batch, const Result<Timestamp>& r) {
  if (r.is_ok()) {
    for (LogWrite& w : batch) model_.acked(w.table, w.key, *r, std::move(w.value));
    counters_.writes_acked += batch.size();
  } else {
    // Refused before it was queued (Busy, InvalidArgument) or of unknown outcome.
    for (LogWrite& w : batch) model_.unknown(w.table, w.key, std::move(w.value));
    counters_.writes_failed += batch.size();
  }
}

Task<void> ReplicaSetSim::elected_write_loop(NodeId id) {
  Env* env = world_.env(id);
  const std::string name = world_.name(id);
  while (workload_on_ && env != nullptr) {
    Primary* p = serving_on(id);
    if (p == nullptr) {
      if (!(co_await env->executor().sleep(kIdlePoll)).is_ok()) co_return;
      continue;
    }
    std::vector<LogWrite> batch = draw_batch();
    std::vector<LogWrite> copy = batch;
    for (const LogWrite& w : batch) model_.pending(w.table, w.key, w.value);
    const uint64_t term = node(id)->client().term().value;
    if (on_next_write_) {
      auto hook = std::move(on_next_write_);
      on_next_write_ = nullptr;
      hook(id);
    }
    auto r = co_await p->write(std::move(copy));
    if (r.code() == Code::kCancelled) co_return;  // stays pending: of unknown outcome
    if (r.is_ok()) {
      split_brain_.acked(name, term, env->executor().now(), batch.front().key);
      for (LogWrite& w : batch) model_.settled_acked(w.table, w.key, *r, std::move(w.value));
      counters_.writes_acked += batch.size();
    } else {
      counters_.writes_failed += batch.size();  // stays pending: of unknown outcome
    }
    Status slept = co_await env->executor().sleep(Nanos(
        workload_random_->range(config_.write_pause_min.count(), config_.write_pause_max.count())));
    if (!slept.is_ok()) co_return;
  }
}

Task<bool> ReplicaSetSim::check_read(ReplicaNode* n, TableId table, std::string key) {
  if (n->primary()) {
    const Timestamp ts = n->primary()->applied_ts();
    auto r = co_await n->primary()->get(table, key, ts);
    if (!r.is_ok()) {
      counters_.reads_refused++;
      co_return true;
    }
    counters_.reads_checked++;
    if (!model_.acceptable(table, key, ts, *r)) {
      violation(Checker::kRead, fmt::format("{} read {}:{} at ts {} = {}, expected {}",
                                            config_.elected ? n->env().node_name() : "primary",
                                            table.value, key, ts.value, r->value_or("<absent>"),
                                            model_.expected(table, key, ts).value_or("<absent>")));
      co_return false;
    }
    co_return true;
  }
  auto r = co_await n->standby()->get(table, key);
  if (!r.is_ok()) {
    if (!code_is_retriable(r.code()) && r.code() != Code::kOlder) {
      violation(Checker::kRead,
                fmt::format("{} read {}:{} failed with a non-retriable error: {}",
                            n->env().node_name(), table.value, key, r.status().to_string()));
      co_return false;
    }
    counters_.reads_refused++;
    co_return true;
  }
  counters_.reads_checked++;
  if (!model_.acceptable(table, key, r->ts, r->value)) {
    violation(Checker::kRead,
              fmt::format("{} read {}:{} at ts {} = {}, expected {}", n->env().node_name(),
                          table.value, key, r->ts.value, r->value.value_or("<absent>"),
                          model_.expected(table, key, r->ts).value_or("<absent>")));
    co_return false;
  }
  co_return true;
}

Task<bool> ReplicaSetSim::check_scan(ReplicaNode* n, TableId table, std::string lo,
                                     std::string hi) {
  Result<AtTs<std::vector<std::pair<std::string, std::string>>>> r = invalid_argument("unset");
  if (n->primary()) {
    const Timestamp ts = n->primary()->applied_ts();
    auto pr = co_await n->primary()->scan(table, lo, hi, 100000, ts);
    if (pr.is_ok()) {
      r = AtTs<std::vector<std::pair<std::string, std::string>>>{std::move(pr).value(), ts};
    } else {
      r = pr.status();
    }
  } else {
    r = co_await n->standby()->scan(table, lo, hi, 100000);
  }
  if (!r.is_ok()) {
    counters_.reads_refused++;
    co_return true;
  }
  counters_.scans_checked++;
  std::map<std::string, std::string> got(r->value.begin(), r->value.end());
  std::set<std::string> keys;
  for (auto& [k, v] : got) keys.insert(k);
  for (const std::string& k : model_.keys(table, lo, hi)) keys.insert(k);
  for (const std::string& k : keys) {
    auto it = got.find(k);
    std::optional<std::string> value =
        it == got.end() ? std::nullopt : std::optional<std::string>(it->second);
    if (!model_.acceptable(table, k, r->ts, value)) {
      violation(Checker::kRead,
                fmt::format("{} scan of {}:[{}, {}) at ts {}: key {} = {}, expected {}",
                            n->env().node_name(), table.value, lo, hi, r->ts.value, k,
                            value.value_or("<absent>"),
                            model_.expected(table, k, r->ts).value_or("<absent>")));
      co_return false;
    }
  }
  co_return true;
}

Task<void> ReplicaSetSim::read_loop(NodeId id, size_t standby_index) {
  (void)standby_index;
  Env* env = world_.env(id);
  while (workload_on_ && env != nullptr) {
    ReplicaNode* n = node(id);
    if (n == nullptr) co_return;
    if (config_.elected && n->primary() && serving_on(id) == nullptr) {
      // Elected: a take-over under way, or a primary that ended and is stepping down.
      if (!(co_await env->executor().sleep(kIdlePoll)).is_ok()) co_return;
      continue;
    }
    if (n->primary() && !n->started()) co_return;
    const TableId table(16 + workload_random_->uniform(config_.tables));
    if (workload_random_->chance(0.1)) {
      const uint64_t a = workload_random_->uniform(config_.keys_per_table);
      co_await check_scan(n, table, key_name(a), key_name(a + 20));
    } else {
      co_await check_read(n, table, key_name(workload_random_->uniform(config_.keys_per_table)));
    }
    Status slept = co_await env->executor().sleep(Nanos(
        workload_random_->range(config_.read_pause_min.count(), config_.read_pause_max.count())));
    if (!slept.is_ok()) co_return;
  }
}

// ---- Rotation driver ------------------------------------------------------------------------

void ReplicaSetSim::start_rotations(Nanos every, int cmk_every) {
  rotations_on_ = true;
  if (config_.elected) {
    add_node_task("rotation-driver", [this, every, cmk_every](NodeId id) {
      return elected_rotation_loop(id, every, cmk_every);
    });
    return;
  }
  if (Env* env = world_.env(primary_))
    env->executor().spawn("rotation-driver", rotation_loop(every, cmk_every));
}

Task<void> ReplicaSetSim::rotation_loop(Nanos every, int cmk_every) {
  Env* env = world_.env(primary_);
  int n = 0;
  while (rotations_on_) {
    Status slept = co_await env->executor().sleep(every);
    if (!slept.is_ok() || !rotations_on_) co_return;
    Primary* p = primary();
    if (p == nullptr) co_return;
    co_await rotate_once(p, ++n, cmk_every);
  }
}

Task<void> ReplicaSetSim::elected_rotation_loop(NodeId id, Nanos every, int cmk_every) {
  Env* env = world_.env(id);
  int n = 0;
  while (rotations_on_) {
    Status slept = co_await env->executor().sleep(every);
    if (!slept.is_ok() || !rotations_on_) co_return;
    if (Primary* p = serving_on(id)) co_await rotate_once(p, ++n, cmk_every);
  }
}

Task<void> ReplicaSetSim::rotate_once(Primary* p, int n, int cmk_every) {
  if (cmk_every > 0 && n % cmk_every == 0) {
    Status st = co_await p->rotate_cmk();
    if (st.is_ok()) {
      counters_.cmk_rotations++;
    } else {
      counters_.rotation_failures++;
    }
  }
  auto r = co_await p->rotate_active_kek();
  if (r.is_ok()) {
    counters_.rotations++;
  } else {
    counters_.rotation_failures++;
  }
}

void ReplicaSetSim::start_checkpoints(Nanos every) {
  checkpoints_on_ = true;
  if (config_.elected) {
    add_node_task("checkpoint-driver",
                  [this, every](NodeId id) { return checkpoint_loop(id, every); });
    return;
  }
  if (Env* env = world_.env(primary_))
    env->executor().spawn("checkpoint-driver", checkpoint_loop(primary_, every));
}

Task<void> ReplicaSetSim::checkpoint_loop(NodeId id, Nanos every) {
  Env* env = world_.env(id);
  while (checkpoints_on_) {
    if (!(co_await env->executor().sleep(every)).is_ok() || !checkpoints_on_) co_return;
    Primary* p = config_.elected ? serving_on(id) : primary();
    if (p == nullptr) {
      if (config_.elected) continue;
      co_return;
    }
    co_await p->checkpoint_now();
  }
}

// ---- Probe ----------------------------------------------------------------------------------

void ReplicaSetSim::start_probe(Nanos every) {
  probe_on_ = true;
  if (Env* env = world_.env(tool_)) env->executor().spawn("probe", probe_loop(every));
}

Task<void> ReplicaSetSim::probe_loop(Nanos every) {
  Env* env = world_.env(tool_);
  while (probe_on_) {
    collect_aborts();
    std::vector<NodeId> nodes = standbys_;
    nodes.push_back(primary_);
    if (config_.elected) {
      nodes = compute_;
      serving_primary();
      for (NodeId id : compute_) ensure_node_tasks(id);
    }
    for (NodeId id : nodes) {
      ReplicaNode* n = node(id);
      if (n == nullptr) continue;
      Seen now{world_.incarnation(id), n->stats().step_downs,
               n->engine().installed_checkpoint_lsn(), n->engine().keystore().version()};
      auto it = seen_.find(id);
      if (it != seen_.end() && it->second.incarnation == now.incarnation &&
          it->second.step_downs == now.step_downs) {
        if (now.installed < it->second.installed) {
          violation(Checker::kMonotonic,
                    fmt::format("{}: installedCheckpointLsn went backwards: {} -> {}",
                                world_.name(id), it->second.installed.value, now.installed.value));
        }
        if (now.keystore_version < it->second.keystore_version) {
          violation(Checker::kMonotonic,
                    fmt::format("{}: keystore version went backwards: {} -> {}", world_.name(id),
                                it->second.keystore_version, now.keystore_version));
        }
      }
      seen_[id] = now;
    }
    if (!(co_await env->executor().sleep(every)).is_ok()) co_return;
  }
}

// ---- Convergence ----------------------------------------------------------------------------

std::vector<NodeId> ReplicaSetSim::followers() {
  return config_.elected ? standbys_now() : standbys_;
}

bool ReplicaSetSim::all_converged() {
  Primary* p = primary();
  if (p == nullptr) return false;
  for (NodeId id : followers()) {
    ReplicaNode* n = node(id);
    Standby* s = n ? n->standby() : nullptr;
    if (!s || s->state() != StandbyState::kSecondary || s->applied_ts() != p->applied_ts() ||
        s->engine().installed_checkpoint_lsn() != p->engine().installed_checkpoint_lsn()) {
      return false;
    }
  }
  return true;
}

void ReplicaSetSim::report_not_converged(Nanos limit) {
  Primary* p = primary();
  if (p == nullptr && config_.elected) {
    violation(Checker::kConvergence,
              fmt::format("no primary served {:.0f}s after the faults healed",
                          std::chrono::duration<double>(limit).count()));
  }
  for (NodeId id : followers()) {
    ReplicaNode* n = node(id);
    Standby* s = n ? n->standby() : nullptr;
    violation(
        Checker::kConvergence,
        fmt::format("{} did not converge within {:.0f}s: state {}, applied ts {} (primary {}), "
                    "installed {} (primary {}){}",
                    world_.name(id), std::chrono::duration<double>(limit).count(),
                    s ? standby_state_name(s->state()) : (n ? "PRIMARY" : "DOWN"),
                    s ? s->applied_ts().value : 0, p ? p->applied_ts().value : 0,
                    s ? s->engine().installed_checkpoint_lsn().value : 0,
                    p ? p->engine().installed_checkpoint_lsn().value : 0,
                    s && !s->resync_error().is_ok()
                        ? fmt::format(" ({})", s->resync_error().to_string())
                        : ""));
  }
}

uint64_t ReplicaSetSim::compare_final_content(
    NodeId id, TableId table, Timestamp ts,
    const std::vector<std::pair<std::string, std::string>>& rows) {
  std::map<std::string, std::string> got(rows.begin(), rows.end());
  std::set<std::string> keys;
  for (auto& [k, v] : got) keys.insert(k);
  for (const std::string& k : model_.keys(table, "", "")) keys.insert(k);
  uint64_t wrong = 0;
  for (const std::string& k : keys) {
    auto it = got.find(k);
    std::optional<std::string> v =
        it == got.end() ? std::nullopt : std::optional<std::string>(it->second);
    if (!model_.acceptable(table, k, ts, v)) {
      wrong++;
      violation(Checker::kLostWrite,
                fmt::format("{}: final content of {}:{} at ts {} = {}, expected {}",
                            world_.name(id), table.value, k, ts.value, v.value_or("<absent>"),
                            model_.expected(table, k, ts).value_or("<absent>")));
    }
  }
  return wrong;
}

bool ReplicaSetSim::check_convergence(Nanos limit) {
  if (!run_until([this] { return all_converged(); }, limit)) {
    report_not_converged(limit);
    return false;
  }
  // Same content everywhere, equal to the model at the primary's applied ts.
  Primary* p = primary();
  const Timestamp ts = p->applied_ts();
  std::vector<NodeId> nodes = followers();
  nodes.insert(nodes.begin(), primary_);
  bool ok = true;
  uint64_t lost = 0;
  for (NodeId id : nodes) {
    for (TableId table : tables()) {
      bool done = run_on(
          id,
          [this, id, table, ts, &ok, &lost]() -> Task<void> {
            ReplicaNode* n = node(id);
            Result<std::vector<std::pair<std::string, std::string>>> rows =
                invalid_argument("unset");
            if (n->primary() == nullptr && n->standby() == nullptr) {
              rows = Status(Code::kUnavailable, "the node has no role");
            } else if (n->primary()) {
              rows = co_await n->primary()->scan(table, "", "", kFinalScanRowsMax, ts);
            } else {
              auto r = co_await n->standby()->scan(table, "", "", kFinalScanRowsMax, ts);
              if (r.is_ok()) {
                rows = std::move(r->value);
              } else {
                rows = r.status();
              }
            }
            if (!rows.is_ok()) {
              ok = false;
              violation(Checker::kRead,
                        fmt::format("{}: final scan of table {} failed: {}", world_.name(id),
                                    table.value, rows.status().to_string()));
              co_return;
            }
            const uint64_t wrong = compare_final_content(id, table, ts, *rows);
            if (wrong > 0) ok = false;
            lost += wrong;
          },
          kFinalScanMax);
      if (!done) {
        ok = false;
        violation(Checker::kRead, fmt::format("{}: final scan of table {} did not finish",
                                              world_.name(id), table.value));
      }
    }
  }
  writes_lost_ += lost;
  return ok;
}

}  // namespace quire
