#include "sim/failover_scenario.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "coord/sim_coordinator.h"
#include "crypto/sim_kms.h"
#include "pagelog/page_client.h"
#include "pagelog/page_server.h"
#include "repl/replica_node.h"
#include "runtime/sim/sim_world.h"
#include "sim/scenario_report.h"
#include "sim/split_brain.h"

namespace quire {

std::string_view failover_case_name(FailoverCase c) {
  switch (c) {
    case FailoverCase::kCrash:
      return "crash";
    case FailoverCase::kPartition:
      return "partition";
    case FailoverCase::kRotation:
      return "rotation";
    case FailoverCase::kPause:
      return "pause";
  }
  return "unknown";
}

bool parse_failover_case(std::string_view name, FailoverCase* out) {
  for (FailoverCase c : {FailoverCase::kCrash, FailoverCase::kPartition, FailoverCase::kRotation,
                         FailoverCase::kPause}) {
    if (failover_case_name(c) == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

namespace {

constexpr TableId kTable{16};
constexpr const char* kCoordAddress = "coord:2379";
// How long past its lease TTL the pause case stops the primary.
constexpr Nanos kPauseBeyondLease = std::chrono::milliseconds(1500);

// An acknowledged write as its client saw it (SplitBrainHistory keeps who acknowledged it).
struct Ack {
  uint64_t term = 0;
  MonoTime at;
  std::string key;
  std::string value;
};

class FailoverSim {
 public:
  explicit FailoverSim(const FailoverConfig& c) : config_(c), world_(c.seed) {
    kms_random_ = world_.random_stream("kms-service");
    kms_ = std::make_unique<SimKmsService>(*kms_random_);
    for (size_t i = 1; i <= c.servers; ++i) addresses_.push_back(fmt::format("ps{}:7000", i));
    for (size_t i = 0; i < c.servers; ++i) {
      PageServerOptions o;
      o.listen = addresses_[i];
      o.store.segment_bytes_max = 256 << 10;
      for (size_t j = 0; j < c.servers; ++j)
        if (j != i) o.peers.push_back(addresses_[j]);
      servers_.push_back(world_.add_node(fmt::format("ps{}", i + 1), [o](Env& env) {
        return std::make_unique<PageServer>(env, o);
      }));
    }
    coord_ = world_.add_node("coord", [](Env& env) {
      return std::make_unique<SimCoordinatorNode>(env, SimCoordinatorOptions{});
    });
    SimKmsService* kms = kms_.get();
    ReplicaNode::KmsFactory kms_factory = [kms](Env& env) -> std::unique_ptr<Kms> {
      return std::make_unique<SimKms>(*kms, env);
    };
    ReplicaNode::CoordinatorFactory coord_factory = [](Env& env) -> std::unique_ptr<Coordinator> {
      return std::make_unique<SimCoordinatorClient>(env, kCoordAddress);
    };
    for (size_t i = 0; i < c.nodes; ++i) {
      ReplicaConfig rc;
      rc.servers = addresses_;
      rc.write_quorum = c.servers / 2 + 1;
      rc.preferred_server = i % c.servers;
      rc.primary.tables = {kTable};
      rc.primary.checkpoint_interval = std::chrono::seconds(1);
      rc.primary.retention_min_age = Nanos(0);
      rc.primary.write_timeout = 500ms;
      rc.primary.rotation_gap_min = 200ms;
      rc.primary.rotation_gap_max = 200ms;
      rc.primary.planted_bugs = c.planted_bugs;
      rc.engine.planted_bugs = c.planted_bugs;
      rc.takeover.planted_bugs = c.planted_bugs;
      rc.standby.poll_interval = 5ms;
      rc.standby.pickup_interval = 50ms;
      rc.elector.election = "/quire/sim/primary";
      rc.elector.lease_ttl = c.lease_ttl;
      const std::string name = fmt::format("node{}", i + 1);
      rc.elector.value = name;
      nodes_.push_back(world_.add_node(name, [rc, kms_factory, coord_factory](Env& env) {
        return std::make_unique<ReplicaNode>(env, rc, kms_factory, coord_factory);
      }));
    }
  }

  FailoverReport run() {
    for (NodeId s : servers_) world_.start(s);
    world_.start(coord_);
    world_.run_for(10ms);
    if (config_.preset_term > 0 && !preset_term()) return finish();
    for (NodeId n : nodes_) start_node(n);
    if (!wait([&] { return current_primary().has_value(); }, "a first primary")) return finish();
    world_.run_for(config_.before_fault);
    const NodeId victim = *current_primary();
    const uint64_t old_term = node(victim)->client().term().value;
    inject(victim);
    // The first write a newer term acknowledged, on another node.
    const bool moved = wait(
        [&] {
          for (const Ack& a : acks_)
            if (a.term > old_term && a.at >= fault_at_) return true;
          return false;
        },
        "a write acknowledged by a new primary");
    if (moved) {
      for (const Ack& a : acks_) {
        if (a.term > old_term && a.at >= fault_at_) {
          report_.fault_to_first_write = a.at - fault_at_;
          break;
        }
      }
    } else {
      report_.fault_to_first_write = Nanos(-1);
      violation("liveness", "no new primary acknowledged a write after the fault");
    }
    world_.run_for(config_.after_fault);
    heal(victim);
    writing_ = false;
    world_.run_for(500ms);  // writes in flight end
    check_converged();
    check_content();
    check_split_brain();
    return finish();
  }

 private:
  ReplicaNode* node(NodeId id) { return dynamic_cast<ReplicaNode*>(world_.app(id)); }

  // Fences every page server at config_.preset_term, from the coordinator's node.
  bool preset_term() {
    // Shared: a task may still run after this returns (a wait shorter than its deadline).
    auto fenced = std::make_shared<size_t>(0);
    Env* env = world_.env(coord_);
    for (const std::string& address : addresses_) {
      env->executor().spawn(
          "preset-term",
          [](Env* e, std::string a, Term t, std::shared_ptr<size_t> n) -> Task<void> {
            PageServerClient c(*e, a);
            auto r = co_await c.fence(t, e->executor().deadline_after(1s));
            if (r.is_ok()) ++*n;
          }(env, address, Term(config_.preset_term), fenced));
    }
    return wait([&] { return *fenced == addresses_.size(); },
                "the page servers fenced at the preset term");
  }

  // The node whose primary serves (the highest term when two think they do).
  std::optional<NodeId> current_primary() {
    std::optional<NodeId> best;
    uint64_t best_term = 0;
    for (NodeId id : nodes_) {
      ReplicaNode* n = node(id);
      if (n == nullptr) continue;
      history_.observe(*n);
      if (n->primary() == nullptr || !n->primary()->running()) continue;
      if (n->client().term().value >= best_term) {
        best = id;
        best_term = n->client().term().value;
      }
    }
    history_.serving(best_term);
    report_.failovers = history_.failovers();
    report_.terms_max = history_.terms_max();
    return best;
  }

  bool wait(const std::function<bool()>& done, std::string_view what) {
    if (world_.run_until(done, world_.now() + config_.limit)) return true;
    violation("liveness", fmt::format("timed out waiting for {}", what));
    return false;
  }

  void start_node(NodeId id) {
    world_.start(id);
    Env* env = world_.env(id);
    env->executor().spawn("client", write_loop(id));
  }

  Task<void> write_loop(NodeId id) {
    Env* env = world_.env(id);
    const std::string name = world_.name(id);
    while (writing_) {
      ReplicaNode* n = node(id);
      Primary* p = n ? n->primary() : nullptr;
      if (p == nullptr || !p->running()) {
        if (!(co_await env->executor().sleep(10ms)).is_ok()) co_return;
        continue;
      }
      const uint64_t seq = next_seq_++;
      std::string key = fmt::format("k{:07d}", seq);
      std::string value = fmt::format("v{:07d}-{}", seq, name);
      const uint64_t term = n->client().term().value;
      auto r = co_await p->put(kTable, key, value);
      if (r.is_ok()) {
        acks_.push_back(Ack{term, env->executor().now(), key, value});
        history_.acked(name, term, env->executor().now(), key);
        report_.writes_acked++;
        if (crash_after_ack_ == id) {
          crash_after_ack_.reset();
          crash_now_ = true;
        }
      } else {
        report_.writes_failed++;
        if (!(co_await env->executor().sleep(5ms)).is_ok()) co_return;
      }
      current_primary();
    }
  }

  void inject(NodeId victim) {
    switch (config_.fault) {
      case FailoverCase::kCrash:
        // Right after an acknowledgement: its commit point is not published yet.
        crash_after_ack_ = victim;
        crash_now_ = false;
        wait([&] { return crash_now_; }, "an acknowledged write before the crash");
        fault_at_ = world_.now();
        world_.crash(victim, UnsyncedOnCrash::kLose);
        break;
      case FailoverCase::kPartition:
        fault_at_ = world_.now();
        world_.network().partition(victim, coord_);
        break;
      case FailoverCase::kPause:
        // Its client's write is in flight: the answers wait for the node to run again.
        fault_at_ = world_.now();
        world_.pause(victim, config_.lease_ttl + kPauseBeyondLease);
        break;
      case FailoverCase::kRotation: {
        // Crash between T1 and T2: the new KEK exists only in the victim's memory.
        ReplicaNode* n = node(victim);
        bool* at_t1 = &rotation_at_t1_;
        n->primary()->on_rotation_point = [at_t1](RotationPoint p) {
          if (p == RotationPoint::kAfterT1) *at_t1 = true;
        };
        Env* env = world_.env(victim);
        env->executor().spawn("rotate", [](Primary* p) -> Task<void> {
          (void)co_await p->rotate_active_kek();
        }(n->primary()));
        wait([&] { return rotation_at_t1_; }, "T1 of a KEK rotation");
        fault_at_ = world_.now();
        world_.crash(victim, UnsyncedOnCrash::kLose);
        break;
      }
    }
  }

  void heal(NodeId victim) {
    if (config_.fault == FailoverCase::kPartition) {
      world_.network().heal(victim, coord_);
    } else if (config_.fault == FailoverCase::kPause) {
      // It resumed on its own (after_fault is longer than the pause).
    } else {
      start_node(victim);
    }
    if (config_.fault == FailoverCase::kRotation) {
      // The new primary rotates again, and its standbys follow.
      if (auto p = current_primary()) {
        std::optional<Result<uint32_t>> rotated;
        Env* env = world_.env(*p);
        env->executor().spawn("rotate-again",
                              [](Primary* pr, std::optional<Result<uint32_t>>* out) -> Task<void> {
                                *out = co_await pr->rotate_active_kek();
                              }(node(*p)->primary(), &rotated));
        wait([&] { return rotated.has_value(); }, "a rotation on the new primary");
        if (rotated && !rotated->is_ok())
          violation("liveness",
                    "the new primary could not rotate: " + rotated->status().to_string());
      }
    }
  }

  void check_converged() {
    const bool ok = wait(
        [&] {
          auto p = current_primary();
          if (!p) return false;
          const Timestamp ts = node(*p)->primary()->applied_ts();
          for (NodeId id : nodes_) {
            if (id == *p) continue;
            ReplicaNode* n = node(id);
            if (n == nullptr || n->standby() == nullptr) return false;
            if (n->standby()->state() != StandbyState::kSecondary ||
                n->standby()->applied_ts() < ts)
              return false;
          }
          return true;
        },
        "every standby to converge");
    if (!ok) report_.violations.back().insert(0, "convergence: ");
  }

  // Every acknowledged value, on every node.
  void check_content() {
    for (NodeId id : nodes_) {
      ReplicaNode* n = node(id);
      if (n == nullptr) continue;
      uint64_t wrong = 0;
      std::string first;
      auto body = [&]() -> Task<void> {
        for (const Ack& a : acks_) {
          std::optional<std::string> got;
          Status st;
          if (n->primary() != nullptr) {
            auto r = co_await n->primary()->get(kTable, a.key);
            st = r.status();
            if (r.is_ok()) got = *r;
          } else if (n->standby() != nullptr) {
            auto r = co_await n->standby()->get(kTable, a.key);
            st = r.status();
            if (r.is_ok()) got = r->value;
          }
          if (got != std::optional<std::string>(a.value)) {
            if (wrong++ == 0)
              first = fmt::format("{} = {} ({})", a.key, got.value_or("<absent>"), st.to_string());
          }
        }
      };
      bool done = false;
      world_.env(id)->executor().spawn("check",
                                       [](std::function<Task<void>()> b, bool* d) -> Task<void> {
                                         co_await b();
                                         *d = true;
                                       }(body, &done));
      world_.run_until([&] { return done; }, world_.now() + config_.limit);
      if (!done || wrong > 0) {
        violation("lost_write", fmt::format("{}: {} of {} acknowledged writes missing or wrong{}",
                                            world_.name(id), wrong, acks_.size(),
                                            first.empty() ? "" : ", first: " + first));
      }
    }
  }

  // No write acknowledged under a term after a higher term fenced the page servers, nor
  // after a higher term acknowledged one (sim/split_brain.h).
  void check_split_brain() {
    current_primary();  // the last fence times
    if (auto v = history_.check()) violation("split_brain", *v);
  }

  void violation(std::string_view checker, std::string what) {
    if (report_.first_checker.empty()) report_.first_checker = std::string(checker);
    report_.violations.push_back(std::string(checker) + ": " + std::move(what));
  }

  FailoverReport finish() {
    for (const auto& a : world_.aborts())
      violation("abort", fmt::format("node {} aborted: {}", world_.name(a.node), a.why));
    report_.passed = report_.violations.empty();
    if (!report_.passed) report_.failure_logs = all_logs_text(world_);
    report_.trace_hash = world_.trace_hash();
    report_.sim_seconds = static_cast<double>(world_.now().ns) / 1e9;
    return report_;
  }

  FailoverConfig config_;
  SimWorld world_;
  std::unique_ptr<Random> kms_random_;
  std::unique_ptr<SimKmsService> kms_;
  std::vector<Address> addresses_;
  std::vector<NodeId> servers_;
  NodeId coord_{};
  std::vector<NodeId> nodes_;
  std::vector<Ack> acks_;
  uint64_t next_seq_ = 0;
  bool writing_ = true;
  std::optional<NodeId> crash_after_ack_;
  bool crash_now_ = false;
  bool rotation_at_t1_ = false;
  MonoTime fault_at_;
  SplitBrainHistory history_;
  FailoverReport report_;
};

}  // namespace

namespace {
double ms(Nanos d) {
  return std::chrono::duration<double, std::milli>(d).count();
}
}  // namespace

std::string failover_report_text(const FailoverConfig& c, const FailoverReport& r) {
  std::string out = fmt::format(
      "chaos failover --case {} --seed {}: {}\n"
      "  trace={:#018x} sim={:.1f}s\n"
      "  writes: acked={} failed={}\n"
      "  failovers={} terms_max={} lease_ttl={:.0f}ms\n"
      "  fault to first write by the new primary: {}\n",
      failover_case_name(c.fault), c.seed, r.passed ? "PASSED" : "FAILED", r.trace_hash,
      r.sim_seconds, r.writes_acked, r.writes_failed, r.failovers, r.terms_max, ms(c.lease_ttl),
      r.fault_to_first_write.count() < 0 ? std::string("none")
                                         : fmt::format("{:.0f}ms", ms(r.fault_to_first_write)));
  for (const auto& v : r.violations) out += "  violation: " + v + "\n";
  return out;
}

std::string failover_report_json(const FailoverConfig& c, const FailoverReport& r) {
  nlohmann::json j;
  j["scenario"] = "failover";
  j["case"] = std::string(failover_case_name(c.fault));
  j["seed"] = c.seed;
  j["passed"] = r.passed;
  j["first_checker"] = r.first_checker;
  j["trace_hash"] = fmt::format("{:#018x}", r.trace_hash);
  j["sim_seconds"] = r.sim_seconds;
  j["writes_acked"] = r.writes_acked;
  j["writes_failed"] = r.writes_failed;
  j["failovers"] = r.failovers;
  j["terms_max"] = r.terms_max;
  j["lease_ttl_ms"] = ms(c.lease_ttl);
  j["fault_to_first_write_ms"] = r.fault_to_first_write.count() < 0
                                     ? nlohmann::json(nullptr)
                                     : nlohmann::json(ms(r.fault_to_first_write));
  j["violations"] = r.violations;
  return j.dump(2) + "\n";
}

FailoverReport run_failover(const FailoverConfig& config) {
  FailoverSim sim(config);
  return sim.run();
}

FailoverSeedsSummary run_failover_seeds(FailoverConfig config, uint64_t first, uint64_t last,
                                        const std::function<void(const std::string&)>& line) {
  FailoverSeedsSummary sum;
  for (uint64_t seed = first; seed <= last; ++seed) {
    config.seed = seed;
    FailoverReport r = run_failover(config);
    sum.seeds++;
    if (r.passed) sum.passed++;
    if (r.fault_to_first_write.count() >= 0)
      sum.fault_to_first_write_ms.push_back(ms(r.fault_to_first_write));
    line(fmt::format("seed {}: {} fault_to_first_write={:.0f}ms failovers={} terms_max={}{}", seed,
                     r.passed ? "PASSED" : "FAILED", ms(r.fault_to_first_write), r.failovers,
                     r.terms_max, r.passed ? "" : " first_checker=" + r.first_checker));
    if (seed == last) break;  // the range may end at UINT64_MAX
  }
  std::sort(sum.fault_to_first_write_ms.begin(), sum.fault_to_first_write_ms.end());
  return sum;
}

std::string failover_seeds_summary_text(const FailoverConfig& config,
                                        const FailoverSeedsSummary& s) {
  const auto& t = s.fault_to_first_write_ms;
  return fmt::format(
      "chaos failover --case {}: {} of {} seeds passed; fault to first write (simulated, lease "
      "TTL {:.0f}ms): median {:.0f}ms, max {:.0f}ms over {} seeds",
      failover_case_name(config.fault), s.passed, s.seeds, ms(config.lease_ttl),
      t.empty() ? 0 : t[t.size() / 2], t.empty() ? 0 : t.back(), t.size());
}

}  // namespace quire
