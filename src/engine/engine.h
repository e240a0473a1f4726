// The engine of one compute node: layered tables (an MVCC ingest layer over a stable
// copy-on-write B+tree per table), the node's keys, checkpoints (leader) and checkpoint
// pick-up (follower).
//
// Reads at timestamp T see, per key, the newest ingest version at or below T, else the
// stable tree's entry. The stable tree holds the state as of the installed checkpoint
// (ts C) and ingest holds the versions above C (and, while a pick-up prunes it in steps,
// some at or below C, each the same as the tree's), so T must be >= C
// (oldest_readable_ts); older reads are refused with Older rather than answered wrongly.
//
// Keys. The node's keystore (crypto/keystore.h) only moves forward. Pages are sealed
// under their table's DEK as of the keystore version the checkpoint references ("key
// before data"): a reader that has that keystore version, or any newer one, has the key.
//
// One checkpoint or pick-up runs at a time (the checkpoint lock). Neither changes any
// in-memory state unless every step succeeded (a pick-up's ingest prune runs after its
// switch).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/key_ring.h"
#include "crypto/push_queue.h"
#include "engine/btree.h"
#include "engine/checkpoint_format.h"
#include "engine/ingest.h"
#include "engine/page_cache.h"
#include "engine/pickup.h"
#include "engine/planted_bugs.h"
#include "pagelog/record_writer.h"
#include "runtime/sync.h"

namespace quire {

// The steps of a leader checkpoint, in order (for logs and for fault-injection tests).
enum class CheckpointStep : uint8_t {
  kPages = 1,
  kKeystorePage = 2,
  kMetadataPage = 3,
  kCompletion = 4
};
std::string_view checkpoint_step_name(CheckpointStep s);

struct EngineOptions {
  uint64_t cluster_id = 1;
  size_t cache_bytes = 64u << 20;
  TreeShape shape;
  Nanos io_timeout = 5s;
  // Encryptions one DEK version may perform (tests lower it to exercise renewal).
  uint64_t dek_uses_hard_limit = kDekUsesHardLimit;
  // The node's pick-up policy. Only decide_pickup (repl/standby.h) applies it; the engine
  // names it in its pick-up log line and nothing else.
  PickupPolicy policy = PickupPolicy::kAccept;
  // False only for benchmarks that measure what encryption costs: pages are then written
  // as plaintext. Never set in a deployment.
  bool encrypt = true;
  // Test hook: runs before each checkpoint step's write (a test may crash the node or
  // cut its network there).
  std::function<void(CheckpointStep)> before_checkpoint_step;
  // Test hook: awaited at each yield of a pick-up's ingest prune (a test reads there).
  std::function<Task<void>()> between_prune_steps;
  // The same between the steps of a checkpoint's build (kCheckpointStepLeaves leaves each).
  std::function<Task<void>()> between_build_steps;
  // The test seam (engine/planted_bugs.h); all off in a deployment.
  PlantedBugs planted_bugs;
};

struct CheckpointInfo {
  Lsn completion_lsn;
  Lsn metadata_lsn;
  Timestamp checkpoint_ts;
  uint64_t keystore_version = 0;  // the keystore version it references
  bool wrote_keystore_page = false;
  size_t pages_written = 0;
  size_t bytes_written = 0;
};

// When a checkpoint drops from ingest the versions it wrote into the tree.
enum class IngestPrune : uint8_t {
  kAtSwitch = 1,  // at once, as it switches (tests, tools)
  kLater = 2,     // in steps, by prune_checkpointed_ingest() once the caller let the writer go
};

// How a pick-up treats a checkpoint whose keystore is newer than the node's.
enum class InstallMode : uint8_t {
  kFollow = 1,  // steady state: KeystoreAhead, retry once the log brought the keys
  kLoad = 2,    // start-up or re-sync: load the checkpoint's keystore page and adopt it
};

class Engine {
 public:
  Engine(Env& env, ReplicationClient& client, Kms& kms, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- Keys -------------------------------------------------------------------------
  const Keystore& keystore() const { return keystore_; }
  KeyRing& key_ring() { return ring_; }
  KeystorePushQueue& push_queue() { return push_queue_; }
  Kms& kms() { return kms_; }
  // Applies one change to the node's keystore and unwraps the keys it adds. Redoing a
  // change the keystore already holds is not possible here: callers apply each once.
  Task<Status> apply_keystore_change(KeystoreChange change);
  // Leader, first start of a database: KEK v1 (active) and a DEK for the log and for
  // each table. Returns the changes it applied (for the log).
  Task<Result<std::vector<KeystoreChange>>> bootstrap_keys(std::vector<TableId> tables);
  // Leader: a new DEK id (a new table) under the active KEK.
  Task<Result<std::vector<KeystoreChange>>> add_table_key(TableId table);
  // Leader: KEK rotation. A new KEK version, made active, every DEK rewrapped under it,
  // and old KEKs that now wrap nothing retired. Applied to the node's keystore; returns
  // the changes.
  Task<Result<std::vector<KeystoreChange>>> rotate_kek();
  // Leader: CMK rotation. The KMS gets a new CMK version and every KEK that is not
  // destroyed is rewrapped under it. Returns the changes (the old CMK version stays
  // usable; retire it once a keystore with these changes is durable).
  Task<Result<std::vector<KeystoreChange>>> rotate_cmk();
  // Leader: a new version of every DEK whose newest version has used half its nonce
  // budget (random 96-bit nonces are safe for 2^32 messages per key; a DataKey refuses
  // at 2^31). Pages use the new version once a keystore holding it is pushed and a
  // checkpoint references it; old versions stay for reading old pages.
  Task<Result<std::vector<KeystoreChange>>> renew_worn_deks();
  // Leader: destroys every KEK that is retired in `oldest_retained` (the keystore of the
  // oldest checkpoint a reader may still load) and not destroyed yet. No retained
  // keystore wraps anything under such a KEK, and log records are sealed under DEKs, so
  // nothing retained needs it. Returns the changes.
  Task<Result<std::vector<KeystoreChange>>> destroy_retired_keks(
      std::shared_ptr<const Keystore> oldest_retained);
  // The keystore the installed (or last written) checkpoint references, when the node
  // has it as a snapshot (always on a leader that wrote the checkpoint).
  std::shared_ptr<const Keystore> checkpoint_keystore_snapshot() const {
    return checkpoint_keystore_;
  }
  // Pushes the node's current keystore to the checkpoint queue at `ts`.
  Status push_keystore(Timestamp ts);

  // ---- Tables -----------------------------------------------------------------------
  // A committed write (or delete, value nullopt) at `ts`. The table appears on first use.
  // InvalidArgument for a reserved table, a key above kKeyBytesMax or a value above
  // kValueBytesMax, or a ts at or below the installed checkpoint. The caller applies
  // writes in timestamp order and checkpoints only at timestamps it has fully applied.
  Status apply_write(TableId table, std::string key, Timestamp ts,
                     std::optional<std::string> value);
  Task<Result<std::optional<std::string>>> get(TableId table, std::string key, Timestamp read_ts);
  // get without waiting: its answer when the ingest layer or the cached pages hold it,
  // nullopt when it needs a page fetched or would fail (get answers then).
  std::optional<std::optional<std::string>> get_cached(TableId table, std::string_view key,
                                                       Timestamp read_ts);
  // Live entries with keys in [lo, hi) (hi empty: no bound) at `read_ts`, at most `limit`.
  Task<Result<std::vector<std::pair<std::string, std::string>>>> scan(TableId table, std::string lo,
                                                                      std::string hi,
                                                                      Timestamp read_ts,
                                                                      size_t limit);
  std::vector<TableId> tables() const;

  // ---- Checkpoints --------------------------------------------------------------------
  // Leader: checkpoint at `checkpoint_ts` (every write at or below it must be applied).
  // Writes dirty pages, the keystore page when the queue holds a version pushed at or
  // below the ts that is not yet written, the metadata page, then the completion
  // record; only then switches its state. On failure the previous checkpoint stays the
  // latest and the writer's chain is recovered for the next attempt.
  // `log_lsn` is the last LOG record whose writes are at or below the ts (stored in the
  // metadata, so a node that loads the checkpoint knows where to read the log on from).
  Task<Result<CheckpointInfo>> checkpoint(RecordWriter& writer, Timestamp checkpoint_ts,
                                          Lsn log_lsn = Lsn(),
                                          IngestPrune prune = IngestPrune::kAtSwitch);
  // After a checkpoint taken with IngestPrune::kLater: drops the ingest versions the
  // installed checkpoint holds, as a pick-up does (prune_ingest_in_steps), under the
  // checkpoint lock so the next checkpoint builds on a pruned ingest. A primary calls it
  // once it has let the log writer go, so writes go on meanwhile (dropping 25-40 k keys
  // at once held the writer and the loop 15-27 ms at 5 k writes/s). If the lock is not
  // had within io_timeout, the next checkpoint's or pick-up's prune takes them.
  Task<void> prune_checkpointed_ingest();

  // Follower (and any node starting up): install the checkpoint `completion` names.
  // Verifies the completion record, then the metadata page, resolves the keystore the
  // checkpoint references (`mode`), opens every root, and only then switches the state.
  // A checkpoint whose keystore is an older prefix of the node's is installed or only
  // reported, as `stale` says. Reports what it found (PickupOutcome); changes nothing
  // unless it installs. Never ends the process, whatever the policy.
  Task<PickupResult> install_checkpoint(Record completion, InstallMode mode,
                                        StaleKeystoreChoice stale);
  // Keys a pick-up's ingest prune looks at between two yields (prune_ingest_in_steps),
  // and the longest it waits for the loop to be idle before its next step.
  static constexpr size_t kIngestPruneStepKeys = 256;
  static constexpr Nanos kIngestPruneIdleWaitMax = std::chrono::milliseconds(2);
  // A checkpoint's build yields to the loop before every this-many leaves it rewrites, so
  // reads (which need neither the writer nor the checkpoint lock) go on during a large one.
  static constexpr size_t kCheckpointStepLeaves = 16;
  // A checkpoint's pages are written in parts of at most this many framed bytes (one
  // message each, well below Connection::kMaxMessageBytes).
  static constexpr size_t kCheckpointWriteBytesMax = size_t{16} << 20;

  Lsn installed_checkpoint_lsn() const { return installed_lsn_; }
  // The installed checkpoint's log position (CheckpointMetadata::log_lsn).
  Lsn checkpoint_log_lsn() const { return checkpoint_log_lsn_; }
  Timestamp checkpoint_ts() const { return checkpoint_ts_; }
  Timestamp oldest_readable_ts() const { return checkpoint_ts_; }
  const KeystoreRef& checkpoint_keystore() const { return checkpoint_keystore_ref_; }
  PageCache& page_cache() { return cache_; }
  size_t ingest_bytes() const;
  // Keys held in every table's ingest layer.
  size_t ingest_keys() const;
  // Drops every table's ingest layer (re-sync starts from the latest checkpoint).
  void clear_ingest();
  const EngineOptions& options() const { return options_; }

 private:
  struct Table {
    IngestLayer ingest;
    TableRoot root;
  };
  using ScanEntries = std::vector<std::pair<std::string, std::string>>;
  // One pass of scan over a stable state: nullopt when a checkpoint switched the state
  // under it (the caller restarts).
  Task<Result<std::optional<ScanEntries>>> scan_attempt(Table& t, const std::string& lo,
                                                        const std::string& hi, Timestamp read_ts,
                                                        size_t limit);
  // Older: `read_ts` is below the installed checkpoint's ts ("get" or "scan").
  Status below_oldest_readable(std::string_view step, Timestamp read_ts) const;
  Table& table(TableId id);
  PageSource page_source();
  Task<Result<std::vector<KeystoreChange>>> apply_all(std::vector<KeystoreChange> changes);
  // Runs a keystore draft; if it fails, the ring forgets keys it unwrapped for it.
  Task<Result<std::vector<KeystoreChange>>> draft(Task<Result<std::vector<KeystoreChange>>> body);
  Task<Result<std::vector<KeystoreChange>>> bootstrap_draft(std::vector<TableId> tables);
  Task<Result<std::vector<KeystoreChange>>> rotate_kek_draft();
  Task<Result<std::vector<KeystoreChange>>> rotate_cmk_draft();
  Task<Result<std::vector<KeystoreChange>>> add_table_key_draft(TableId table);
  Task<Result<std::vector<KeystoreChange>>> renew_worn_deks_draft();
  Task<Result<std::vector<KeystoreChange>>> destroy_draft(
      std::shared_ptr<const Keystore> oldest_retained);
  // ---- Checkpoint steps (leader), in order ----
  struct CheckpointDraft;
  // The keystore the checkpoint references: the newest pushed at or below its ts.
  Status choose_checkpoint_keystore(CheckpointDraft& d);
  // Writes each table's changed pages, sealed under the referenced keystore's DEKs.
  Task<Status> write_checkpoint_pages(CheckpointDraft& d);
  // The engine's planted bug (PlantedBugs::plaintext_pages_once), the one place it lives:
  // no key, once, so that table's pages are written as plaintext; otherwise `dek`.
  DataKey* planted_plaintext_key(DataKey* dek);
  // The keystore page (when due), the metadata page and the completion record: built in
  // that order into the draft's tail, which one write makes durable together.
  Task<Status> add_checkpoint_keystore_page(CheckpointDraft& d);
  void add_checkpoint_metadata(CheckpointDraft& d);
  void add_checkpoint_completion(CheckpointDraft& d);
  // Durable: the new checkpoint becomes the node's stable state.
  void switch_to_written_checkpoint(CheckpointDraft& d);
  // One write of `records`, the records of `steps` (in order, at least one).
  Task<Status> write_step(RecordWriter& writer, std::vector<CheckpointStep> steps,
                          std::vector<Record> records);

  // ---- Pick-up steps (follower), in order; each returns false once the pick-up stops
  // (the outcome and why are then in the draft's result) ----
  struct PickupDraft;
  Task<PickupResult> install_locked(Record completion, InstallMode mode, StaleKeystoreChoice stale);
  bool verify_completion(PickupDraft& d);
  Task<bool> verify_metadata(PickupDraft& d);
  Task<bool> resolve_keystore(PickupDraft& d);
  // A keystore newer than the node's, loaded from the checkpoint's keystore page.
  Task<bool> load_checkpoint_keystore(PickupDraft& d);
  Task<bool> open_roots(PickupDraft& d);
  // After a pick-up's switch (the keys lock free, the checkpoint lock held): drops the
  // ingest versions at or below `ts`, kIngestPruneStepKeys keys a step over all tables,
  // yielding between steps so that reads, the network and the log apply run (a standby's
  // ingest holds every key written since the previous checkpoint: 25-40 k keys at 5 k
  // writes/s, and dropping them at once held its loop 22-65 ms). A step waits for the loop
  // to be idle (Executor::yield_idle, at most kIngestPruneIdleWaitMax): with plain yields
  // each step still ran ahead of the log apply's next event, and a standby's visibility
  // lag grew by about the prune's length while it ran (docs/figures.md, session 16).
  // When the node stops meanwhile, the rest is dropped at once.
  Task<void> prune_ingest_in_steps(Timestamp ts);
  void switch_to_picked_up(PickupDraft& d);
  void report_pickup(const PickupResult& r, Lsn installed_before);

  Env& env_;
  ReplicationClient& client_;
  Kms& kms_;
  EngineOptions options_;
  std::unique_ptr<Random> random_;
  Keystore keystore_;
  KeyRing ring_;
  KeystorePushQueue push_queue_;
  PageCache cache_;
  AsyncMutex checkpoint_mu_;
  // Serializes everything that changes the keystore (key operations, pick-up adoption).
  AsyncMutex keys_mu_;
  std::map<TableId, Table> tables_;

  // The installed (or last written) checkpoint.
  Lsn installed_lsn_;
  Lsn metadata_lsn_;
  Lsn checkpoint_log_lsn_;
  Timestamp checkpoint_ts_;
  PageId largest_page_id_;
  // Bumped at every switch of the stable state, so a scan can tell it must restart.
  uint64_t generation_ = 0;
  KeystoreRef checkpoint_keystore_ref_;
  bool planted_plaintext_ = false;
  // The keystore version the last checkpoint references (leader: to pick DEK versions).
  std::shared_ptr<const Keystore> checkpoint_keystore_;
};

}  // namespace quire
