// The primary: the replica set's only writer.
//
// Write path. A client batch (puts and deletes over any tables) waits, bounded, for room
// in the commit queue; the commit task ("log-commit") takes queued batches in order, gives
// each a commit timestamp ((seconds << 32) | increment, strictly increasing), seals it as
// one LOG record under the log's DEK, and writes the group through the RecordWriter at W.
// Only once the group is durable does it apply the writes to the engine and acknowledge
// them (write concern majority). Up to `groups_in_flight_max` groups may be on their way
// at once when enough writes are queued (`group_pipeline_min`); they are settled in LSN
// order, and a group that fails takes every group after it down with it (they chain on
// it, so the abandon removes them too). Write concern one acknowledges when the first page
// server synced the group; the writes still become visible only once durable at W, and
// an abandoned group loses them (that is what w:1 means).
//
// A group that fails (Sealed or Unavailable past the client's retries, a timeout) is
// re-sent with the same bytes and LSNs, so it can never be applied twice; after
// `write_attempts_max` attempts the writer abandons everything after the durable point
// and the batches fail with Unavailable "not committed". Fenced means a newer primary
// exists: every waiter fails with Fenced and the primary stops writing.
//
// Commit point. Each LOG record carries, in its backlink_lsn, the LSN up to which the log
// was durable when it was written; standbys apply a record only once they saw a commit
// point at or above it, so nothing a standby applies can later be abandoned. A record
// carries the point as of its sealing, so the point of the last group before a pause, or
// of a group that became durable while later ones were already on their way, would wait
// for the next group: when no group leaves at once, the primary sends the point to the
// page servers on its own (a commit hint, kept in their memory for readers), and when it
// is idle it also writes a heartbeat entry to put the latest commit point in the log.
//
// Checkpoints ("checkpointer"): every `checkpoint_interval`, on demand, when un-
// checkpointed ingest passes `ingest_bytes_max` (writes then wait for room), and prompted
// by seals (seal_log(); a burst of seals within `seal_checkpoint_delay` yields one). The
// log writer is held for the checkpoint's duration, so its records chain in order. After
// each checkpoint the page service's retention moves to the previous checkpoint's log
// position (two checkpoints stay loadable), worn DEKs get new versions, and KEKs that no
// retained checkpoint needs are destroyed.
//
// Key rotation (push mode, as in the report). rotate_active_kek: T1 creates KEK vN,
// rewraps every DEK under it, commits it to the in-memory keystore and reserves a log
// timestamp; after a configurable gap, T2 writes the keystore change into the log at that
// timestamp and, once durable, pushes the keystore to the checkpoint queue. A checkpoint
// taken between T1 and T2 carries the keystore of vN-1, which standbys must accept. Key
// operations run one at a time. rotate_cmk rewraps every KEK under a new CMK version.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/scoped_count.h"
#include "engine/engine.h"
#include "engine/planted_bugs.h"
#include "pagelog/record_writer.h"
#include "repl/log_entry.h"
#include "runtime/log_limiter.h"

namespace quire {

enum class WriteConcern : uint8_t {
  kMajority = 1,  // acknowledged once durable at W and applied
  kOne = 2,       // acknowledged once one page server synced it
};

struct PrimaryOptions {
  // Tables whose DEKs a new database creates at bootstrap (others get one on first use).
  std::vector<TableId> tables;
  Nanos checkpoint_interval = 5s;  // 0: only on demand, on seals and on ingest pressure
  Nanos seal_checkpoint_delay = 20ms;
  Nanos heartbeat_interval = 50ms;
  // Sends the commit point to the page servers on its own when no group carries it at
  // once (publish_commit_point); off, standbys learn it from the next record only.
  bool commit_hints = true;
  // Commit groups, and how many may be on their way to the page servers at once (they
  // are applied and acknowledged in order). A group is sent while others are in flight
  // only once `group_pipeline_min` batches are queued: a few writes gain little from a
  // round trip of their own, and each group costs every page server a request and the
  // primary its acknowledgements, so below that they wait for the groups in flight and
  // go in the next one.
  size_t group_batches_max = 256;
  size_t group_bytes_max = 4u << 20;
  size_t groups_in_flight_max = 4;
  size_t group_pipeline_min = 64;
  // Page servers whose fdatasync is slow (their acknowledgements say how slow:
  // ReplicationClient::quorum_sync at or above `slow_sync`) make a group wait mostly for
  // their disks, not for the CPUs; writes queued meanwhile then gain from a group of their
  // own, whose flushes follow the first group's without a pause. So the pipeline starts
  // from `group_pipeline_min_slow_sync` queued batches there, and from
  // `group_pipeline_min` again once the syncs take less than half of `slow_sync`. (The
  // time a server reports includes waiting for a CPU after the flush: on a busy 2-core
  // machine whose disk flushes in 0.15 ms, 0.35-1.4 ms under load, docs/figures.md.)
  size_t group_pipeline_min_slow_sync = 8;
  Nanos slow_sync = 2ms;
  // Gathering. With one group in flight at a time, N clients that each wait for their
  // reply before writing again split into two groups of about N/2 that take turns: while
  // one is on its way, the other queues. Each group costs every page server a request and a
  // sync, so once a group is durable the commit task holds the queued writes back until as
  // many are queued as the group just acknowledged plus those that were queued then (its
  // clients write again), for at most `group_gather_max` and at most half the time that
  // group took to become durable (two halves of N clients merged into one group commit N
  // per round plus the wait, against N/2 per round: the wait pays while it is shorter than
  // a round): the two halves merge into one group. A lone writer never waits (one
  // acknowledged, one queued). A gather that runs out of time with not one of the clients
  // it waited for back (writers that do not write again at once: a paced load) lets the
  // next `group_gather_skip` groups leave without one. Zero: never gather.
  Nanos group_gather_max = 1ms;
  size_t group_gather_skip = 8;
  // Backpressure: client batches waiting for the commit task, and un-checkpointed ingest.
  size_t queue_batches_max = 4096;
  size_t queue_bytes_max = 64u << 20;
  size_t ingest_bytes_max = 64u << 20;
  Nanos admission_wait_max = 5s;  // a write waits at most this long for room: then Busy
  // One attempt to make a group durable, and how many attempts with the same bytes.
  Nanos write_timeout = 2s;
  int write_attempts_max = 5;
  Nanos write_retry_backoff = 100ms;
  // The gap between T1 and T2 of a KEK rotation, drawn per rotation from [min, max].
  Nanos rotation_gap_min = 0ms;
  Nanos rotation_gap_max = 0ms;
  Nanos io_timeout = 5s;
  // Retention: checkpoints stay loadable (their pages and the log after them) for at least
  // this long after a newer one completed, and the last two always do. A standby that
  // falls further behind re-syncs.
  Nanos retention_min_age = 30s;
  // The test seam (engine/planted_bugs.h); all off in a deployment.
  PlantedBugs planted_bugs;
};

struct PrimaryStats {
  uint64_t batches_acked = 0;
  uint64_t writes_acked = 0;
  uint64_t batches_failed = 0;
  uint64_t groups_written = 0;
  uint64_t groups_pipelined = 0;  // sent while another group was in flight
  uint64_t group_retries = 0;
  uint64_t groups_abandoned = 0;
  uint64_t heartbeats = 0;
  uint64_t commit_hints = 0;  // commit points sent on their own (publish_commit_point)
  // The page servers' sync time as the primary last read it (quorum_sync), and the
  // pipeline threshold it chose from it (pipeline_min).
  Nanos quorum_sync = Nanos(0);
  size_t group_pipeline_min = 0;
  uint64_t group_pipeline_min_changes = 0;  // times the choice changed it
  // Groups whose writes were held back to gather more (group_gather_max), those of them
  // that left when the time ran out, and the time held.
  uint64_t groups_gathered = 0;
  uint64_t group_gathers_timed_out = 0;
  uint64_t group_gather_backoffs = 0;  // timed out with none back: group_gather_skip groups
  Nanos group_gather_wait = Nanos(0);
  uint64_t checkpoints = 0;
  uint64_t checkpoint_failures = 0;
  uint64_t seal_prompted_checkpoints = 0;
  uint64_t seals = 0;
  uint64_t kek_rotations = 0;
  uint64_t cmk_rotations = 0;
  uint64_t keks_destroyed = 0;
  uint64_t dek_renewals = 0;
  uint64_t admission_waits = 0;
  // Where the commit task's time goes: waiting for the log writer (a checkpoint holds
  // it), summed over the times it took the writer, and from sending a sealed group to its
  // being durable at W and settled, summed over durable write groups. Sealing and applying run
  // within one turn of the event loop, whose clock does not move within a turn, so they are not
  // timed. `group_records` counts the groups' records.
  uint64_t group_records = 0;
  Nanos group_writer_wait = Nanos(0);
  Nanos group_durable_wait = Nanos(0);
};

// The primary's one state. Each transition is a named member of Primary that asserts where
// it comes from:
//
//   kStopped      --start()---------------------------------------> kServing
//   kServing      --a log write failed (group, checkpoint, marker)--> kChainInDoubt
//   kChainInDoubt --the tail abandoned, or the same records re-sent-> kServing
//   kServing      --a group write answered Fenced------------------> kFenced
//   kServing      --a group durable after the lease ran out--------> kDeposed
//   kServing, kChainInDoubt --stop()--------------------------------> kStopped
//
// Rarer edges: start() enters kChainInDoubt instead of kServing if the writer's chain is
// still in doubt from before a stop; a group written while the chain is in doubt, or one
// in flight when stop() came, may still answer Fenced (kChainInDoubt or kStopped ->
// kFenced). An operation still finishing after stop() asks the writer about its chain.
// Per-request facts (its concern, whether it pushes the keystore) stay on the request;
// key changes the log has not taken yet are data, kept apart (the primary logs them
// before its next key operation).
enum class PrimaryState : uint8_t {
  // Not running: before start() or after stop(). Writes and key operations fail with
  // Unavailable; nothing new is queued.
  kStopped = 1,
  // Running with the log's record chain whole: the commit task writes the next group at
  // once, the checkpointer its next checkpoint.
  kServing = 2,
  // Running, but a log write failed, so page servers may hold records no quorum has. The
  // next user of the writer first abandons everything after the durable point and marks
  // the chain (recover_chain); queued writes wait, and fail "not committed" past their
  // bound.
  kChainInDoubt = 3,
  // A newer primary wrote to the page service: every waiter failed with Fenced and the
  // tasks stopped. Final.
  kFenced = 4,
  // The node's coordinator lease ran out (may_acknowledge turned false) before a group
  // was acknowledged: the group and every waiter failed with a retriable Unavailable, and
  // the tasks stopped. Final.
  kDeposed = 5,
};
std::string_view primary_state_name(PrimaryState s);

// Test hooks: points of a KEK rotation (a test may crash the node there).
enum class RotationPoint : uint8_t {
  kAfterT1 = 1,        // KEK vN is in the in-memory keystore; nothing logged
  kAfterLogWrite = 2,  // the keystore change is durable in the log; not pushed yet
  kAfterPush = 3,      // pushed to the checkpoint queue
};

class Primary {
  struct Request;  // one entry of the commit queue (primary.cc)

 public:
  Primary(Env& env, Engine& engine, RecordWriter& writer, PrimaryOptions options);
  ~Primary();
  Primary(const Primary&) = delete;
  Primary& operator=(const Primary&) = delete;

  // A new database: bootstraps the keys (KEK v1, the log's DEK and each table's), logs
  // them, writes the first checkpoint, and starts the commit, checkpoint and heartbeat
  // tasks. A primary whose engine already holds keys (one taking over) only starts. OK at
  // once when already running; a fenced primary never starts again (Fenced).
  Task<Status> start();
  // A take-over (ReplicaNode::promote, repl/takeover.h): the engine holds the database
  // through the recovered end of the log, applied up to `applied_lsn` at `applied_ts`, and
  // the writer continues the chain after the new primary's commit marker (`commit_point`,
  // already published). Starts as start() does, with every timestamp it hands out strictly
  // above `applied_ts`. For a Primary that never started.
  struct TakeOverPoint {
    Timestamp applied_ts;
    Lsn applied_lsn;
    Lsn commit_point;
  };
  Task<Status> take_over(TakeOverPoint at);
  // Stops the tasks; waiting writes fail with Unavailable.
  void stop();
  // Not running, every task it ran has ended, and no caller's operation (write, get, scan,
  // checkpoint_now, seal_log, a rotation) is still suspended inside it: the object may be
  // destroyed (a cancelled task still runs to its next wait; a KEK rotation sleeps out its
  // gap between T1 and T2).
  bool quiescent() const;
  // Serving or with its chain in doubt: started, neither stopped nor fenced.
  bool running() const {
    return state_ == PrimaryState::kServing || state_ == PrimaryState::kChainInDoubt;
  }
  PrimaryState state() const { return state_; }

  // A client batch. Returns its commit timestamp once acknowledged under `concern`.
  // InvalidArgument for a batch out of bounds (empty, too many ops, a reserved table, a
  // key or value too large); Busy when no room came within admission_wait_max;
  // Unavailable when it could not be made durable (see the header comment: "not
  // committed" after an abandon, "outcome unknown" otherwise); Fenced after a newer
  // primary appeared.
  Task<Result<Timestamp>> write(std::vector<LogWrite> batch,
                                WriteConcern concern = WriteConcern::kMajority);

  // A batch in the commit queue (enqueue_write), not acknowledged yet. While one exists
  // the primary is not quiescent: its outcome is still to come. Destroy it before the
  // Primary.
  class QueuedWrite {
   public:
    QueuedWrite(QueuedWrite&& o) noexcept;
    QueuedWrite& operator=(QueuedWrite&& o) noexcept;
    QueuedWrite(const QueuedWrite&) = delete;
    QueuedWrite& operator=(const QueuedWrite&) = delete;
    ~QueuedWrite();
    // Waits for the acknowledgement: the commit timestamp, or what write() fails with.
    Task<Result<Timestamp>> outcome();

   private:
    friend class Primary;
    QueuedWrite(std::shared_ptr<Request> req, int* calls_in_flight);
    std::shared_ptr<Request> req_;
    int* calls_in_flight_ = nullptr;
  };
  // write()'s first half: checks the batch, waits (bounded) for room, queues it and
  // returns without waiting for durability; write() is enqueue_write, then outcome().
  // Batches queued by enqueue_write calls that each returned before the next began commit
  // in that order: a later one gets a higher commit timestamp and is applied (visible)
  // no sooner than an earlier one.
  Task<Result<QueuedWrite>> enqueue_write(std::vector<LogWrite> batch,
                                          WriteConcern concern = WriteConcern::kMajority);
  Task<Result<Timestamp>> put(TableId table, std::string key, std::string value);
  Task<Result<Timestamp>> del(TableId table, std::string key);

  // Reads at `ts` (default: the applied timestamp: every acknowledged majority write).
  Task<Result<std::optional<std::string>>> get(TableId table, std::string key,
                                               std::optional<Timestamp> ts = {});
  // get without waiting (Engine::get_cached): nullopt when it would have to wait.
  std::optional<std::optional<std::string>> get_cached(TableId table, std::string_view key,
                                                       std::optional<Timestamp> ts = {}) {
    return engine_.get_cached(table, key, ts.value_or(applied_ts_));
  }
  Task<Result<std::vector<std::pair<std::string, std::string>>>> scan(
      TableId table, std::string lo, std::string hi, size_t limit,
      std::optional<Timestamp> ts = {});

  // A checkpoint now (waits for the log writer).
  Task<Result<CheckpointInfo>> checkpoint_now();
  // Seals the page servers' active segments and prompts a checkpoint.
  Task<Status> seal_log();

  // Push-mode KEK rotation (T1, gap, T2). Returns the new KEK version.
  Task<Result<uint32_t>> rotate_active_kek();
  Task<Result<uint32_t>> rotate_active_kek(Nanos gap);
  // CMK rotation: every KEK rewrapped under a new CMK version, logged and pushed.
  Task<Status> rotate_cmk();

  Timestamp applied_ts() const { return applied_ts_; }
  // The last LOG record whose effects are applied (a checkpoint's log position).
  Lsn applied_lsn() const { return applied_lsn_; }
  // The last LOG record carrying a key change, once durable.
  uint64_t logged_keystore_version() const { return logged_keystore_version_; }
  const PrimaryStats& stats() const { return stats_; }
  Engine& engine() { return engine_; }
  RecordWriter& writer() { return writer_; }

  // Set by a node that holds its primacy through a coordinator lease (Elector::may_lead):
  // a durable group is acknowledged only while it returns true, and a write is admitted
  // only then. Unset: always.
  std::function<bool()> may_acknowledge;
  // Runs once, when the primary reaches a final state (fenced or deposed), with the error
  // its waiters got: the node steps down to standby.
  std::function<void(const Status&)> on_ended;
  bool ended() const { return state_ == PrimaryState::kFenced || state_ == PrimaryState::kDeposed; }

  // Test hook, run at each RotationPoint.
  std::function<void(RotationPoint)> on_rotation_point;

 private:
  struct Retained {
    MonoTime superseded_at = MonoTime::never();  // when a newer checkpoint completed
    Lsn completion_lsn;
    Lsn log_lsn;
    std::shared_ptr<const Keystore> keystore;
  };

  struct SealedGroup;
  struct GroupInFlight;
  struct UnloggedKeys {
    std::vector<KeystoreChange> changes;  // applied to the engine, not durable in the log
    uint64_t base_version = 0;            // the keystore version the first applies to
    Timestamp ts;                         // the timestamp reserved for them
  };

  // ---- The state's transitions (see PrimaryState) ----
  void on_started();
  void on_log_write_failed();
  void on_chain_whole();
  void on_fenced(Status why);
  void on_deposed(Status why);
  bool lease_valid() const;
  void on_stopped();
  // After every use of the writer: the state follows what the writer reports about its
  // chain (a no-op once stopped or fenced).
  void follow_writer();
  // Whether the next log write must first abandon the chain's tail. Called with the log
  // writer held.
  bool chain_in_doubt() const;
  // Cancels the tasks and fails every queued write (with Fenced once fenced).
  void halt();

  // ---- Timestamps ----
  // A commit timestamp: the wall clock's seconds, strictly above every one handed out.
  Timestamp next_ts();
  // A heartbeat commits nothing new: it reuses the last timestamp handed out.
  Timestamp heartbeat_ts();
  // The one rule for a keystore push: its ts must lie above the push queue's stable ts and
  // its last push (the queue refuses anything else).
  bool push_ts_free(Timestamp ts) const;

  // Waits (bounded by `admission` for a client batch) for room, then queues `req`.
  Task<Status> queue_when_room(const std::shared_ptr<Request>& req, Deadline admission);
  // queue_when_room, then the request's outcome.
  Task<Result<Timestamp>> submit(std::shared_ptr<Request> req, Deadline admission);
  // Waits until `req` is answered: its commit ts or its error.
  static Task<Result<Timestamp>> acknowledged(std::shared_ptr<Request> req);
  Task<void> commit_loop();
  Task<void> checkpoint_loop();
  Task<void> heartbeat_loop();

  // ---- The commit path: take group -> seal -> write -> on durable / fenced / failed ----
  // Holds the log writer while groups are queued: sends up to groups_in_flight_max of them
  // at once and settles each, in order, as it becomes durable (or fails them). Lets the
  // writer go when the queue is empty or another user (a checkpoint) waits for it.
  Task<void> commit_group();
  // Before a commit task's first group: waits until the groups a stopped run left in
  // flight have ended, and fails those not acknowledged. False when cancelled.
  Task<bool> settle_stopped_run();
  // Whether the commit task may send one more group now.
  bool may_send_group(bool sent_any) const;
  // Takes, seals and chains the next group and starts its write; null when none of its
  // requests could be sealed.
  std::shared_ptr<GroupInFlight> send_group();
  Task<void> write_in_flight(std::shared_ptr<GroupInFlight> group, RecordWriter::Chained records,
                             ReplicationClient::PendingWrite first, Deadline deadline,
                             std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1);
  // Write concern one: answers the requests at the first page server's sync.
  static void ack_write_concern_one(std::vector<std::shared_ptr<Request>>& w1);
  // Applies and acknowledges, in order, the groups at the front that are durable (while
  // the lease holds); the commit task handles the first one that is not.
  void settle_durable_groups();
  // Sends the page servers the commit point of the groups just acknowledged when no group
  // that carries it leaves now (ReplicationClient::publish_commit).
  void publish_commit_point();
  // Reads the page servers' sync time after groups settled and chooses the pipeline
  // threshold from it (group_pipeline_min_slow_sync on a slow disk); logs a change.
  void note_sync_speed();
  size_t pipeline_min() const;
  // Whether the queued writes wait for more before a group leaves (group_gather_max);
  // starts the wait, and ends it when its time ran out.
  bool should_gather();
  // The group at the front failed: stops and awaits the writes after it, then fails them
  // all and recovers the chain (or steps down when one saw a newer primary).
  Task<void> on_front_group_failed();
  // Answers every request of the groups still in flight with `why`.
  void fail_in_flight(const Status& why);
  // The chain is in doubt before a group: recovers it. False when it cannot yet: writes
  // queued past their bound failed, and the commit task backed off.
  Task<bool> recover_before_group();
  // Fails (never sent, "not committed") every queued write whose bound passed.
  void fail_expired_writes();
  // The next group off the queue: in order, at most group_batches_max batches and
  // group_bytes_max bytes (a single batch may be larger).
  std::vector<std::shared_ptr<Request>> take_group();
  // Gives each request its commit timestamp and LSN and seals the group as LOG records (the
  // write batches in a row as one); the requests of a record that cannot be sealed fail.
  SealedGroup seal_group(const std::vector<std::shared_ptr<Request>>& group);
  // Seals `run` (one request, or write batches in a row) as one LOG record into `out`, or
  // finishes its requests with the error; false when the log DEK is used up.
  bool seal_record(const std::vector<std::shared_ptr<Request>>& run, DataKey& dek,
                   SealedGroup& out);
  // The planted bug (PlantedBugs::ack_unlogged_batch): true when `req` is the batch to
  // acknowledge without logging it, which it then is.
  bool ack_planted_unlogged_batch(Request& req);
  // Chooses the commit timestamp of `req` (the one place that does).
  void assign_commit_ts(Request& req);
  // One group's write, with its attempts (the same bytes each time): the first one,
  // started by send_group, then re-sends.
  Task<Status> write_group(RecordWriter::Chained records, ReplicationClient::PendingWrite first,
                           Deadline deadline,
                           std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1);
  // The group is durable at W: applies it and acknowledges every request, in LSN order.
  void on_group_durable(const std::vector<std::shared_ptr<Request>>& sealed);
  void apply_writes(Request& req);
  void apply_keystore_entry(Request& req);
  // A newer primary exists: fails the group and every waiter with Fenced, and stops.
  void on_group_fenced(const Status& st, const std::vector<std::shared_ptr<Request>>& sealed);
  // The group is durable but the lease ran out: fails it and every waiter, and stops.
  void on_group_deposed(const std::vector<std::shared_ptr<Request>>& sealed);
  // The group is in doubt: abandons it (or learns the log is out of reach) and fails it.
  Task<void> on_group_failed(const Status& st, const std::vector<std::shared_ptr<Request>>& sealed);
  // What the primary hands its RecordWriter: ascending LSNs, above the chain head.
  void assert_lsn_order(const std::vector<Record>& records) const;

  // ---- The commit queue's byte accounting ----
  void queue_push(std::shared_ptr<Request> req);
  // Forgets `req`'s bytes as it leaves the queue.
  void queue_release(const Request& req);
  // queue_bytes_ is the sum of the queued requests' bytes.
  void assert_queue_bytes() const;

  void finish(Request& req, Status st, Timestamp ts);
  Task<Result<CheckpointInfo>> checkpoint_locked();
  // After a take-over (and before each checkpoint until it worked): installs the page
  // service's latest checkpoint when it is newer than the one this node installed. Logs
  // a failure (41022); try_ is the attempt itself.
  Task<Status> install_latest_checkpoint();
  Task<Status> try_install_latest_checkpoint();
  // Adds the engine's installed checkpoint (its log position and keystore) to retained_,
  // superseding the previous one.
  void retain_installed_checkpoint(Lsn completion_lsn);
  // Abandons after the durable point, then writes a heartbeat LOG record naming it.
  Task<Status> recover_chain(Nanos timeout);
  // The heartbeat alone: after the engine abandoned a failed checkpoint step itself, and
  // before a checkpoint, to publish the commit point. Raises published_commit_.
  Task<Status> write_chain_marker();
  Task<void> after_checkpoint(const CheckpointInfo& info);
  // Logs keystore changes already applied to the engine (T2) at `ts`, then pushes.
  Task<Status> log_key_changes(std::vector<KeystoreChange> changes, uint64_t base_version,
                               Timestamp ts, bool rotation = false);
  // Runs a key operation of the engine and logs its changes (no gap).
  Task<Status> key_op(Task<Result<std::vector<KeystoreChange>>> op);
  Task<Status> ensure_table_keys(const std::vector<LogWrite>& batch);
  Task<Status> log_pending_keys();
  void prompt_checkpoint();
  bool has_room(size_t bytes) const;

  Env& env_;
  Engine& engine_;
  RecordWriter& writer_;
  PrimaryOptions options_;
  std::unique_ptr<Random> random_;
  PrimaryState state_ = PrimaryState::kStopped;
  Status stopped_why_;           // kFenced, kDeposed: what every waiter fails with
  bool stop_requested_ = false;  // stop() ran (take_over then never starts it)

  std::deque<std::shared_ptr<Request>> queue_;
  size_t queue_bytes_ = 0;
  WaitQueue queue_changed_;  // something was queued, or a group's write ended
  // Gathering (PrimaryOptions::group_gather_max): how many batches the next group waits
  // for, since when and until when it waits (zero: it does not), and how many groups still
  // leave without waiting after a gather that ran out of time with none of them back.
  size_t gather_target_ = 0;
  MonoTime gather_began_{};
  MonoTime gather_until_{};
  Nanos gather_bound_{0};  // group_gather_max, or half the last group's commit if less
  size_t gather_queued_at_start_ = 0;
  size_t gather_skip_ = 0;
  WaitQueue room_changed_;  // the queue shrank or a checkpoint freed ingest
  Event checkpoint_prompt_;
  bool seal_prompt_pending_ = false;  // a seal's delayed prompt is on its way
  // Whether this primary's checkpoints build on the latest one (false after a take-over
  // until install_latest_checkpoint has checked).
  bool on_latest_checkpoint_ = true;
  AsyncMutex writer_mu_;  // the log writer: the commit task's groups or one checkpoint at a time
  // The groups the commit task has on their way, in LSN order (empty unless it holds the
  // log writer, or the primary stopped before their writes ended).
  std::deque<std::shared_ptr<GroupInFlight>> in_flight_;
  AsyncMutex key_mu_;  // key operations, T1 through T2
  // Callers' operations suspended inside this object (quiescent() waits for them).
  int calls_in_flight_ = 0;
  using CallInFlight = ScopedCount;

  Timestamp last_ts_;
  Timestamp applied_ts_;
  Lsn applied_lsn_;
  Lsn last_entry_lsn_;      // the last data or keystore entry written (heartbeats excluded)
  Lsn published_commit_;    // the highest commit point a written record carried
  Lsn hinted_commit_;       // the highest one sent on its own (publish_commit_point)
  bool slow_sync_ = false;  // note_sync_speed's choice
  LogLimiter sync_speed_log_{std::chrono::seconds(10)};
  DekRef log_dek_;  // the log DEK version every reader holds
  uint64_t logged_keystore_version_ = 0;
  // Key changes applied to the engine whose log write failed: logged before the next.
  UnloggedKeys unlogged_;
  std::deque<Retained> retained_;
  PrimaryStats stats_;
  uint64_t batches_taken_ = 0;
  std::vector<TaskId> tasks_;
  std::vector<TaskId> retired_tasks_;  // cancelled by halt(), perhaps still running
};

}  // namespace quire
