// SimWorld: a whole cluster in one thread, driven by one seed.
//
// Nodes are registered with a factory that builds the node's application from its Env.
// Starting a node builds a fresh Env and application over the node's persistent disk;
// crashing it destroys every task, the application and the Env without running any of
// its code, breaks its connections and resolves its disk's unsynced state. Every event
// folds into the scheduler's trace hash, so a seed replays bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "runtime/env.h"
#include "runtime/scheduler.h"
#include "runtime/sim/sim_clock.h"
#include "runtime/sim/sim_disk.h"
#include "runtime/sim/sim_net.h"
#include "runtime/sim/sim_random.h"

namespace quire {

class SimWorld {
 public:
  using Factory = std::function<std::unique_ptr<NodeApp>(Env& env)>;

  struct Options {
    size_t log_ring_lines = 4096;
    size_t log_ring_bytes = 2u << 20;
    Severity log_min = Severity::kInfo;
    // How long a node that asked for a restart stays down.
    Nanos restart_delay = 50ms;
  };

  explicit SimWorld(uint64_t seed) : SimWorld(seed, Options{}) {}
  SimWorld(uint64_t seed, Options options);
  ~SimWorld();
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  uint64_t seed() const { return seed_; }
  Scheduler& scheduler() { return scheduler_; }
  SimNetwork& network() { return network_; }
  MonoTime now() const { return scheduler_.now(); }
  uint64_t trace_hash() const { return scheduler_.trace_hash(); }
  uint64_t events() const { return scheduler_.events_run(); }

  // A world-level random stream for the harness (workload, nemesis) by concern name.
  std::unique_ptr<Random> random_stream(std::string_view concern) const;

  // Registers a node; it is down until start().
  NodeId add_node(const std::string& name, Factory factory);
  void start(NodeId node);
  // Crashes a running node (no-op when down).
  void crash(NodeId node, UnsyncedOnCrash mode);
  // Stops `node` for `d` (as SIGSTOP, then SIGCONT): none of its tasks or callbacks run
  // meanwhile, messages to it wait, and its clock moves on (Scheduler::pause_node).
  void pause(NodeId node, Nanos d);
  bool is_up(NodeId node) const;
  uint32_t incarnation(NodeId node) const;
  uint32_t restarts_requested(NodeId node) const;
  // Nodes that called Env::abort_process (each stays down), in order.
  struct AbortRecord {
    NodeId node;
    MonoTime at;
    std::string why;
  };
  const std::vector<AbortRecord>& aborts() const { return aborts_; }
  const std::string& name(NodeId node) const;
  std::vector<NodeId> nodes() const;
  std::optional<NodeId> find(const std::string& name) const;

  SimDiskStore& disk(NodeId node);
  SimClock& clock(NodeId node);
  RingLogSink& log_ring(NodeId node);
  // The running node's Env and application, or null when down.
  Env* env(NodeId node);
  NodeApp* app(NodeId node);
  // Writes every node's log ring to `out`, each line prefixed by the node's name.
  void dump_logs(std::FILE* out) const;
  void dump_log(NodeId node, std::FILE* out) const;

  // Runs events until simulated time reaches `t` (then sets the clock to `t`).
  void run_until(MonoTime t);
  void run_for(Nanos d) { run_until(now() + d); }
  // Runs until `done()` holds, checking after every event, or until time `limit`.
  // True when done() held.
  bool run_until(const std::function<bool()>& done, MonoTime limit);
  // Runs events until none is left or `limit` is reached.
  void run_to_quiescence(MonoTime limit);

 private:
  struct NodeSlot;
  class NodeEnv;
  NodeSlot& slot(NodeId node);
  const NodeSlot& slot(NodeId node) const;
  void on_restart_request(NodeId node, const Status& why);
  void on_abort(NodeId node, const Status& why);
  // The next event after waking an idle wait when none is due now (Executor::yield_idle).
  std::optional<MonoTime> next_event_time();

  uint64_t seed_;
  Options options_;
  Scheduler scheduler_;
  SimNetwork network_;
  std::vector<std::unique_ptr<NodeSlot>> nodes_;  // index = NodeId - 1
  std::vector<AbortRecord> aborts_;
};

}  // namespace quire
