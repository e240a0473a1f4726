// The replica set in the simulator, for the chaos scenarios: page servers, a simulated
// KMS, K+1 compute nodes (each a ReplicaNode, the code a real process runs), a client
// workload with unique values, and the checkers' reference model.
//
// Two modes:
//  - Fixed role: node "primary" is the primary for the whole run (it bootstraps the
//    database), "standby1".."standbyK" follow. chaos race and the replica tests.
//  - Elected (ReplicaSetConfig::elected): a coordinator node ("coord", SimCoordinatorNode)
//    and compute nodes "node1".."node{K+1}", every one a ReplicaNode with a coordinator
//    factory: they campaign, the winner takes over, the others follow. The workload writes
//    through whichever node's primary serves now and reads on every node in its current
//    role; the model keeps acknowledged and unknown writes across primaries, and the
//    split_brain history (sim/split_brain.h) records which term acknowledged what, when.
//    A compute node restarted after a crash (restart_node) rejoins as a standby and gets
//    its client tasks again. chaos kek.
//
// The harness is not node code: it drives the world from outside, and spawns the
// workload's coroutines on the nodes whose objects they call (a client task dies with its
// node, as a real client's connection would).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/sim_kms.h"
#include "repl/replica_node.h"
#include "runtime/sim/sim_world.h"
#include "sim/split_brain.h"

namespace quire {

// What a client was told, per key: acknowledged writes with their commit timestamps, and
// writes whose outcome is unknown (they may or may not be in the history).
class HistoryModel {
 public:
  using Key = std::pair<uint64_t, std::string>;  // table id, key
  void acked(TableId table, const std::string& key, Timestamp ts, std::optional<std::string> value);
  void unknown(TableId table, const std::string& key, std::optional<std::string> value);
  // A write handed to a primary whose answer has not come yet (it may never: a crash ends
  // the client with its node). Of unknown outcome until settled_acked() makes it an
  // acknowledged one; a failure leaves it unknown.
  void pending(TableId table, const std::string& key, std::optional<std::string> value);
  void settled_acked(TableId table, const std::string& key, Timestamp ts,
                     std::optional<std::string> value);
  // The acknowledged value at `ts` (nullopt: absent).
  std::optional<std::string> expected(TableId table, const std::string& key, Timestamp ts) const;
  // True when `got` can be the key's value at `ts`: the acknowledged value, or a write of
  // unknown outcome.
  bool acceptable(TableId table, const std::string& key, Timestamp ts,
                  const std::optional<std::string>& got) const;
  // Every key the model knows of in table `table` within [lo, hi) (hi empty: no bound).
  std::vector<std::string> keys(TableId table, const std::string& lo, const std::string& hi) const;
  uint64_t acked_writes() const { return acked_writes_; }
  uint64_t unknown_writes() const { return unknown_writes_; }

 private:
  struct History {
    std::map<Timestamp, std::optional<std::string>> acked;
    std::multiset<std::optional<std::string>> unknown;
  };
  std::map<Key, History> keys_;
  uint64_t acked_writes_ = 0;
  uint64_t unknown_writes_ = 0;
};

struct ReplicaSetConfig {
  uint64_t seed = 1;
  PickupPolicy policy = PickupPolicy::kAccept;
  size_t standbys = 1;
  size_t servers = 3;
  PrimaryOptions primary;
  StandbyOptions standby;
  EngineOptions engine;
  // The one test seam: copied into every node's engine and primary options.
  PlantedBugs planted_bugs;
  size_t tables = 2;  // user tables 16, 17, ...
  size_t keys_per_table = 400;
  size_t writers = 2;
  // Pauses between one client loop's operations, drawn uniformly.
  Nanos write_pause_min = 1ms;
  Nanos write_pause_max = 8ms;
  Nanos read_pause_min = 2ms;
  Nanos read_pause_max = 15ms;
  // Elected mode (see the header comment) and its coordinator lease TTL.
  bool elected = false;
  Nanos lease_ttl = std::chrono::seconds(2);
  // Called as standby `i`'s pick-up starts (before StandbyOptions::before_pickup). Elected
  // mode: `i` is the compute node's index (node{i+1}), whatever its role.
  std::function<void(size_t standby, Lsn checkpoint)> on_pickup;
  // Called with every value the workload is about to write (plaintext canaries).
  std::function<void(const std::string& value)> on_value;
};

// The workload's and checkers' counters.
struct ReplicaSetCounters {
  uint64_t writes_acked = 0;   // single writes inside acknowledged batches
  uint64_t writes_failed = 0;  // inside batches that failed (outcome unknown)
  uint64_t reads_checked = 0;  // reads compared with the model
  uint64_t reads_refused = 0;  // retriable refusals (resyncing, not applied yet, older)
  uint64_t scans_checked = 0;
  uint64_t rotations = 0;
  uint64_t cmk_rotations = 0;
  uint64_t rotation_failures = 0;
};

// Which checker found a violation. `quire chaos kek` reports the first violation's
// checker, and its shrinker keeps a smaller schedule only while the run still fails the
// same one. A final scan that fails or does not finish is a read violation.
enum class Checker : uint8_t {
  kAbort,        // a node aborted
  kMonotonic,    // installedCheckpointLsn or the keystore version went backwards
  kLostWrite,    // an acknowledged value missing or wrong in a node's final content
  kRead,         // a read or scan disagreed with the model, or failed for good
  kConvergence,  // a standby did not converge within the bound
  kLiveness,     // the replica set did not come up or make progress
  kStall,        // the primary acknowledged nothing too long while a quorum was up
  kPlaintext,    // plaintext or raw key bytes on a page server's disk
  kScenario,     // a directed scenario's own check (chaos race)
  kSplitBrain,   // a write acknowledged under a term after a higher term fenced or acknowledged
};
// "abort", "monotonic", "lost_write", "read", ...: the name reports and replay files use.
std::string_view checker_name(Checker c);

// The final content check: rows scanned per table at most, and each scan's bound.
inline constexpr size_t kFinalScanRowsMax = 1'000'000;
inline constexpr Nanos kFinalScanMax = Nanos(std::chrono::seconds(30));

// Violations kept per run; later ones are dropped.
inline constexpr size_t kViolationsKeptMax = 100;

class ReplicaSetSim {
 public:
  explicit ReplicaSetSim(ReplicaSetConfig config);
  ~ReplicaSetSim();

  SimWorld& world() { return world_; }
  const ReplicaSetConfig& config() const { return config_; }
  bool elected() const { return config_.elected; }
  // Fixed role: the primary. Elected: the node whose primary served when last looked at
  // (serving_primary, primary()); the first compute node before any did.
  NodeId primary_id() const { return primary_; }
  NodeId tool_id() const { return tool_; }
  // Elected mode: the coordinator node (0 in fixed-role mode).
  NodeId coordinator_id() const { return coordinator_; }
  // Every compute node: fixed role, the primary then the standbys; elected, node1.. in order.
  const std::vector<NodeId>& compute_ids() const { return compute_; }
  SimKmsService& kms() { return *kms_service_; }
  const std::vector<NodeId>& standby_ids() const { return standbys_; }
  const std::vector<NodeId>& server_ids() const { return servers_; }
  const std::vector<Address>& server_addresses() const { return addresses_; }
  std::vector<TableId> tables() const;

  // The running node's objects, or null while it is down.
  ReplicaNode* node(NodeId id);
  // The started primary (elected: the serving one's), or null.
  Primary* primary();
  Standby* standby(size_t i);  // fixed-role mode
  // The page server a standby prefers (its first read target). Elected mode: compute node
  // `standby`'s.
  NodeId preferred_server(size_t standby) const;

  // Elected mode: the node whose started primary runs (the highest term when two believe
  // they do), or nullopt. Each call also samples every node for the split_brain history
  // (fences, the serving term). Fixed role: the primary once started.
  std::optional<NodeId> serving_primary();
  // Node `id`'s started, running primary, or null.
  Primary* serving_on(NodeId id);
  // Elected mode: the compute nodes other than the serving primary, in order (down ones
  // included): what a fault aimed at "standby i" picks from.
  std::vector<NodeId> standbys_now();
  // Elected mode: starts a compute node that is down (it rejoins as a standby) and its
  // client tasks (every per-node task registered so far).
  void restart_node(NodeId id);
  // Elected mode: runs `body(node)` on every compute node that is up now and on each one
  // restarted later, for as long as that incarnation lives.
  void add_node_task(std::string name, std::function<Task<void>(NodeId)> body);
  // Elected mode: `hook(node)` runs once, as the next client write is handed to `node`'s
  // primary (just before the write waits for its acknowledgement).
  void on_next_write(std::function<void(NodeId)> hook) { on_next_write_ = std::move(hook); }
  SplitBrainHistory& split_brain() { return split_brain_; }
  // Adds a split_brain violation when the history holds one (sim/split_brain.h).
  void check_split_brain();

  // Runs `body` (returning Task<void>) on `node` until it finishes or `limit` passes.
  bool run_on(NodeId node, std::function<Task<void>()> body, Nanos limit);
  // Spawns `body` on `node` and returns at once.
  void spawn_on(NodeId node, std::string name, std::function<Task<void>()> body);
  // Runs the world until `done` or `limit`.
  bool run_until(const std::function<bool()>& done, Nanos limit);

  // Starts the page servers and the primary, waits until the primary started and every
  // standby is SECONDARY (elected: the coordinator and every compute node, until one
  // node's primary serves and the others are SECONDARY). False (with `why`) if that did
  // not happen within `limit`.
  bool bring_up(Nanos limit, std::string* why);

  // Workload: `writers` client loops on the primary and one read loop per standby (and
  // one on the primary), until stop_workload(). Every acknowledged write goes into the
  // model, every read is checked against it; a wrong answer is a violation. Elected mode:
  // `writers` write loops and a read loop on every compute node; a node's write loops
  // write while its primary serves, its read loop reads in whatever role it has.
  void start_workload(size_t writers);
  void stop_workload() { workload_on_ = false; }
  // A restarted standby's client read loop (the old one died with the node).
  void start_reader(size_t standby);
  // Rotation driver: rotate_active_kek every `every` (gaps drawn by the primary's
  // options), and rotate_cmk every `cmk_every` rotations (0: never). Elected mode: a
  // driver on every compute node, rotating while its node's primary serves.
  void start_rotations(Nanos every, int cmk_every);
  void stop_rotations() { rotations_on_ = false; }
  // Checkpoint driver: checkpoint_now on the primary every `every`.
  void start_checkpoints(Nanos every);
  void stop_checkpoints() { checkpoints_on_ = false; }
  // Probe: every `every`, checks that no node's installed checkpoint LSN or keystore
  // version went backwards (within one incarnation, and one engine: a primary stepping
  // down rebuilds from a fresh one) and records node aborts. Elected mode: it also samples
  // the serving primary and the fences for the split_brain history, and gives a compute
  // node that came up without its client tasks its tasks.
  void start_probe(Nanos every);

  // Waits until faults healed and every standby converged with the primary: SECONDARY,
  // the same applied ts, the primary's latest checkpoint installed. Then compares every
  // table's content on every node with the model at that ts. Adds violations on failure.
  // Elected mode: the standbys are every compute node but the serving primary.
  bool check_convergence(Nanos limit);

  HistoryModel& model() { return model_; }
  ReplicaSetCounters& counters() { return counters_; }
  std::vector<std::string>& violations() { return violations_; }
  // Acknowledged values missing or wrong in a node's final content.
  uint64_t writes_lost() const { return writes_lost_; }
  // Records a violation found by `checker` (the first kViolationsKeptMax of them).
  void violation(Checker checker, std::string what);
  // The checker of the first violation; nullopt while there is none.
  std::optional<Checker> first_violation_checker() const { return first_checker_; }
  // Node aborts the world recorded, as violations (once each).
  void collect_aborts();

 private:
  Task<void> write_loop(uint64_t id);
  // One client batch: a unique key first, then overwrites of the small key space.
  std::vector<LogWrite> draw_batch();
  // Into the model and the counters: acknowledged at its timestamp, or of unknown outcome.
  void record_outcome(std::vector<LogWrite>& batch, const Result<Timestamp>& r);
  Task<void> read_loop(NodeId node, size_t standby_index);
  Task<void> rotation_loop(Nanos every, int cmk_every);
  // The `n`-th rotation of a driver: a CMK rotation every `cmk_every`, then a KEK one.
  Task<void> rotate_once(Primary* p, int n, int cmk_every);
  Task<void> elected_write_loop(NodeId id);
  Task<void> elected_rotation_loop(NodeId id, Nanos every, int cmk_every);
  // Spawns the registered per-node tasks on `id` unless its incarnation has them.
  void ensure_node_tasks(NodeId id);
  void add_elected_nodes(const ReplicaConfig& base, const ReplicaNode::KmsFactory& kms);
  // Compute node `i`'s standby options call config_.on_pickup(i, ...) as a pick-up starts.
  void hook_pickup(ReplicaConfig& c, size_t i) const;
  Task<void> probe_loop(Nanos every);
  Task<void> checkpoint_loop(NodeId id, Nanos every);
  Task<bool> check_read(ReplicaNode* n, TableId table, std::string key);
  Task<bool> check_scan(ReplicaNode* n, TableId table, std::string lo, std::string hi);
  // check_convergence's steps: whether every standby caught up with the primary; a
  // violation per standby when they did not; the final content of `table` on `id`
  // against the model at `ts` (a violation per wrong key, and their count).
  bool all_converged();
  // The nodes that should follow the primary: the standbys (elected: standbys_now()).
  std::vector<NodeId> followers();
  void report_not_converged(Nanos limit);
  uint64_t compare_final_content(NodeId id, TableId table, Timestamp ts,
                                 const std::vector<std::pair<std::string, std::string>>& rows);

  ReplicaSetConfig config_;
  SimWorld world_;
  std::unique_ptr<Random> kms_random_;
  std::unique_ptr<SimKmsService> kms_service_;
  std::unique_ptr<Random> workload_random_;
  std::vector<Address> addresses_;
  std::vector<NodeId> servers_;
  NodeId primary_ = 0;
  NodeId tool_ = 0;
  NodeId coordinator_ = 0;
  std::vector<NodeId> standbys_;
  std::vector<NodeId> compute_;
  // Elected mode: per-node tasks, and which incarnation of each node has them.
  struct NodeTask {
    std::string name;
    std::function<Task<void>(NodeId)> body;
  };
  std::vector<NodeTask> node_tasks_;
  std::map<NodeId, uint32_t> tasks_incarnation_;
  std::function<void(NodeId)> on_next_write_;
  SplitBrainHistory split_brain_;
  HistoryModel model_;
  ReplicaSetCounters counters_;
  std::vector<std::string> violations_;
  std::optional<Checker> first_checker_;
  size_t aborts_seen_ = 0;
  uint64_t writes_lost_ = 0;
  uint64_t next_value_ = 0;
  uint64_t next_unique_ = 0;
  bool workload_on_ = false;
  bool rotations_on_ = false;
  bool probe_on_ = false;
  bool checkpoints_on_ = false;
  // Probe state: per node, (incarnation, engine, installed lsn, keystore version).
  struct Seen {
    uint32_t incarnation = 0;
    uint64_t step_downs = 0;  // each step-down starts a fresh engine
    Lsn installed;
    uint64_t keystore_version = 0;
  };
  std::map<NodeId, Seen> seen_;
};

}  // namespace quire
