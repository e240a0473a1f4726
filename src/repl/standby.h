// The standby: follows the primary through the page service.
//
// Log apply ("log-apply"). Reads LOG records from the page service in LSN order (the
// replication client's preferred server, failing over) and applies them to the engine:
// write batches to the ingest layer at their commit timestamp, keystore changes to the
// in-memory keystore (only the ones it does not hold yet: an entry names the keystore
// version it applies to), heartbeats not at all. A record is applied only once a commit
// point at or above it was seen (each LOG record carries the primary's durable LSN in its
// backlink_lsn), so nothing applied can later be abandoned; a record whose prev_lsn skips
// over fetched records proves those were abandoned, and they are dropped unapplied.
//
// States: STARTUP (load the latest checkpoint, keystore included) → CATCHING_UP (apply the
// log from the checkpoint's log position) → SECONDARY (reached the end of the log; reads
// are served) ⇄ RESYNC (a clean step-down: reads refused with a retriable "resyncing"
// error, ingest dropped, rebuilt from the latest checkpoint plus the log, then
// CATCHING_UP again). Nothing here ends the process.
//
// Checkpoint manager ("checkpoint-pick-up"). On a timer and when the log advanced, finds
// latestMaterializedAndAppliedCheckpointLsn: the latest completed checkpoint, if it is
// materialized (at or below the commit point) and applied (its ts at or below the applied
// ts). When that is above installedCheckpointLsn it installs it (checkpointToInstallLsn)
// and handles every result (decide_pickup, the only code that applies the policy):
// Installed advances; a stale keystore goes by policy (accept has the engine install it
// keeping the newer keystore, skip waits for a newer checkpoint, resync steps down, abort
// is the report's crash, which the standby carries out); KeystoreAhead, Unavailable and
// Busy retry with backoff while the log keeps applying; Older and AlreadyInstalled are
// ignored; Corrupt, KeystoreConflict, VersionTooNew, and a retriable failure that outlives
// `retry_deadline`, step down to RESYNC. A checkpoint that failed its checks is not tried
// again; the re-sync rebuilds from the installed checkpoint plus the log, and the next
// checkpoint is picked up as usual.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/scoped_count.h"
#include "engine/engine.h"
#include "repl/log_entry.h"
#include "runtime/log_limiter.h"

namespace quire {

enum class StandbyState : uint8_t { kStartup = 1, kCatchingUp = 2, kSecondary = 3, kResync = 4 };
std::string_view standby_state_name(StandbyState s);

// What the checkpoint manager does with a pick-up result.
enum class PickupAction : uint8_t {
  kAdvance = 1,   // installed: the new checkpoint is the node's stable state
  kIgnore = 2,    // nothing to do (already installed, older)
  kWait = 3,      // leave it and wait for a newer checkpoint (skip)
  kRetry = 4,     // retriable: try again after a backoff, until the deadline
  kStepDown = 5,  // clean step-down to RESYNC
  kAbort = 6,     // policy abort: the report's crash (the standby ends the process)
};
std::string_view pickup_action_name(PickupAction a);

// The pick-up policy is applied here and nowhere else: the engine reports what it found
// (PickupOutcome) and these two functions decide what the node does about it.
//
// Before a pick-up: what the engine does with a checkpoint whose keystore is an older
// prefix of the node's. A load (start-up, re-sync) installs it under every policy; in
// steady state (follow) only accept does, and the other policies have it reported.
StaleKeystoreChoice stale_keystore_choice(PickupPolicy policy, InstallMode mode);
// After it: the action for `r` under `policy`, given whether the current run of retriable
// failures has outlived its deadline. Abort is the standby's to carry out (it calls
// Env::abort_process); the engine never ends the process.
PickupAction decide_pickup(const PickupResult& r, PickupPolicy policy, bool retry_deadline_passed);

struct StandbyOptions {
  // At the end of the log the standby polls again after poll_interval_min for
  // poll_quick_reads empty reads, then doubles the pause after each up to poll_interval;
  // a read that finds records starts over. Equal intervals poll at a fixed period (the
  // simulator's default: fewer events).
  Nanos poll_interval = 20ms;
  Nanos poll_interval_min = 20ms;
  int poll_quick_reads = 16;
  // Above zero, a read at the end of the log is a long poll (ReadLogRequest::wait_ms): the
  // page server holds it until records or a newer commit hint arrive, or for this long,
  // and the standby reads again at once. Polling as above is then only the fallback for a
  // server that answers an empty read at once.
  Nanos log_wait = 0ms;
  // A server whose commit hint stays above the end of its own chain for this long, with
  // nothing new to read, holds less than the writer made durable (its disk is full, say):
  // the standby reads from the next server.
  Nanos server_behind_max = 500ms;
  size_t read_bytes_max = 4u << 20;
  // Records fetched but not yet committed; reading pauses at this bound.
  size_t pending_records_max = 50'000;
  Nanos pickup_interval = 200ms;
  Nanos retry_backoff_min = 50ms;
  Nanos retry_backoff_max = 2s;
  // A run of retriable pick-up failures (KeystoreAhead, Unavailable, Busy) this long
  // steps down to RESYNC.
  Nanos retry_deadline = 30s;
  Nanos resync_backoff_max = 5s;
  // Consecutive failed rebuilds after which the standby reports that it cannot re-sync
  // (it keeps trying, with the error in its log and in every refused read).
  int resync_failures_reported = 5;
  Nanos io_timeout = 2s;
  // Scenario and test hook: runs just before a pick-up starts installing a checkpoint.
  std::function<void(Lsn checkpoint_lsn)> before_pickup;
};

struct PickupCounters {
  uint64_t attempts = 0;
  uint64_t installed = 0;
  uint64_t stale_keystore_accepted = 0;
  uint64_t skipped = 0;
  uint64_t keystore_ahead_retries = 0;
  uint64_t unavailable_retries = 0;
  uint64_t busy_retries = 0;
  uint64_t older_ignored = 0;
  uint64_t already_installed = 0;
  uint64_t corrupt = 0;
  uint64_t keystore_conflicts = 0;
  uint64_t version_too_new = 0;
  uint64_t deadline_escalations = 0;
  uint64_t resyncs = 0;  // step-downs the manager asked for
};

struct StandbyStats {
  uint64_t records_applied = 0;
  uint64_t write_batches_applied = 0;
  uint64_t keystore_changes_applied = 0;
  uint64_t records_abandoned = 0;  // fetched, then proven abandoned by the chain
  // Commit points taken from a page server's hint (LogChunk::commit_hint) before the
  // record carrying them was readable.
  uint64_t commit_hints_taken = 0;
  // Reads moved on from a server that held less than its commit hint said was durable.
  uint64_t server_behind_switches = 0;
  uint64_t resyncs = 0;  // every step-down, whatever asked for it
  uint64_t rebuilds = 0;
  uint64_t rebuild_failures = 0;
  uint64_t log_gaps = 0;
  uint64_t reads_served = 0;
  uint64_t reads_refused = 0;
  PickupCounters pickups;
};

// A read's answer and the timestamp it was read at.
template <typename T>
struct AtTs {
  T value;
  Timestamp ts;
};

class Standby {
 public:
  Standby(Env& env, ReplicationClient& client, Engine& engine, StandbyOptions options);
  ~Standby();
  Standby(const Standby&) = delete;
  Standby& operator=(const Standby&) = delete;

  // Spawns "log-apply" and "checkpoint-pick-up".
  void start();
  void stop();
  // Stopped, and every task it ran has ended: the object may be destroyed.
  bool quiescent() const;

  StandbyState state() const { return state_; }
  Timestamp applied_ts() const { return applied_ts_; }
  Lsn applied_lsn() const { return applied_lsn_; }
  Lsn commit_lsn() const { return commit_lsn_; }
  Lsn latest_materialized_and_applied() const { return latest_applicable_; }
  // Whether every LOG record at or below `lsn` is applied (the log was read past it, a
  // commit point at or above it was seen, nothing at or below it is pending) while
  // following the log (CATCHING_UP or SECONDARY): how a node taking over knows its engine
  // holds the recovered tail. Read past it matters: right after a rebuild nothing is
  // pending and the commit point seen before may be far above the checkpoint's position
  // (quire chaos kek seed 158: a node took over with its engine 480 LSNs short of the
  // recovered end, and served reads of older values).
  bool applied_through(Lsn lsn) const {
    return (state_ == StandbyState::kCatchingUp || state_ == StandbyState::kSecondary) &&
           next_read_ > lsn && commit_lsn_ >= lsn &&
           (pending_.empty() || pending_.front().lsn > lsn);
  }
  const StandbyStats& stats() const { return stats_; }
  // The last pick-up the manager ran, and what it did about it.
  const PickupResult& last_pickup() const { return last_pickup_; }
  PickupAction last_action() const { return last_action_; }
  Engine& engine() { return engine_; }
  // Why the last rebuild failed (OK when it did not).
  const Status& resync_error() const { return resync_error_; }

  // Reads at `ts` (default: the applied ts). Unavailable ("resyncing", "catching up",
  // "starting") unless SECONDARY, or when the state changed during the read; Unavailable
  // for a ts not applied yet; Older below the installed checkpoint.
  Task<Result<AtTs<std::optional<std::string>>>> get(TableId table, std::string key,
                                                     std::optional<Timestamp> ts = {});
  // get without waiting (Engine::get_cached): nullopt when it would have to wait or be
  // refused (get answers then, with the reason).
  std::optional<AtTs<std::optional<std::string>>> get_cached(TableId table, std::string_view key,
                                                             std::optional<Timestamp> ts = {});
  Task<Result<AtTs<std::vector<std::pair<std::string, std::string>>>>> scan(
      TableId table, std::string lo, std::string hi, size_t limit,
      std::optional<Timestamp> ts = {});

  // Wakes the checkpoint manager.
  void notify_pickup() { pickup_wake_.notify_all(); }
  // Holds pick-ups (the log keeps applying), e.g. during maintenance; false resumes.
  void hold_pickups(bool hold) {
    hold_pickups_ = hold;
    if (!hold) notify_pickup();
  }
  // Steps down to RESYNC (also for operators and tests).
  void step_down(std::string_view why);

 private:
  Task<void> apply_loop();
  Task<void> pickup_loop();
  Task<Status> rebuild();
  // ---- Log apply steps ----
  Task<void> tail_once();
  // A log read failed: a gap steps down (and backs off when right after a rebuild);
  // anything else is retried after the poll interval.
  Task<void> log_read_failed(const Status& st);
  // Queues the fetched LOG records, dropping pending ones the chain proves abandoned, and
  // moves the commit point and the read position on.
  void take_fetched(std::vector<Record>& records, Lsn through);
  void take_commit_hint(Lsn lsn, Term term);
  void note_server_behind(Lsn hint, Lsn through);
  // Whether fetched record `r` continues what was fetched before it by term (see the .cc);
  // if not, everything fetched and not applied is dropped and read again.
  bool joins_chain(const Record& r) const;
  void refetch_after_stale_tail(const Record& r);
  // Drops every fetched record not applied yet, and the commit point learned with them;
  // the log is read again after the last record applied.
  void forget_fetched();
  // Applies the pending records at or below the commit point; false when tail_once must
  // stop this round (stopped, stepped down, or waiting for the KMS).
  Task<bool> apply_committed(uint64_t epoch);
  // Applies one committed record; a retriable failure leaves it pending (false).
  Task<Result<bool>> apply_record(const Record& r);
  // Applies one write batch at `ts` (nothing when the installed checkpoint holds it).
  Status apply_batch(Timestamp ts, std::vector<LogWrite>& writes);

  // ---- Checkpoint manager steps ----
  Task<void> pickup_once();
  // latest_checkpoint failed: retried like an Unavailable pick-up, escalated past the
  // deadline (NotFound and Cancelled are not failures).
  void latest_checkpoint_failed(const Status& st);
  // The latest checkpoint is materialized, applied, above the installed one, and neither
  // skipped nor refused (also moves latest_applicable_).
  bool worth_installing(const Record& latest);
  // Policy abort: ends the process when decide_pickup says so.
  void abort_if_decided(const PickupResult& r);
  // Decides (decide_pickup), counts, logs and acts on a follow pick-up's result.
  void handle_pickup(Lsn lsn, const PickupResult& r);
  void count_pickup(const PickupResult& r, PickupAction action);

  // ---- Reads: every read passes the same gate, before and after the engine ----
  struct ReadTicket {
    Timestamp read_ts;
    uint64_t epoch = 0;
  };
  // Refused (counted) unless SECONDARY and `ts` (default: the applied ts) is applied.
  Status open_read(std::optional<Timestamp> ts, ReadTicket* ticket);
  // Refused when the state changed during the read; a failed stable read goes through
  // stable_read_failed; otherwise counts the read as served.
  Status close_read(const ReadTicket& ticket, const Status& read);
  Status read_gate(std::optional<Timestamp> ts, Timestamp* read_ts) const;
  // A read of the stable tree failed: NotFound or Corruption step down (and the client gets
  // a retriable Unavailable); anything else is returned as is.
  Status stable_read_failed(const Status& st);
  void set_state(StandbyState s, std::string_view why);
  Nanos backoff(int failures) const;

  Env& env_;
  ReplicationClient& client_;
  Engine& engine_;
  StandbyOptions options_;
  bool running_ = false;
  // Client reads suspended inside this object (quiescent() waits for them).
  int reads_in_flight_ = 0;
  std::vector<TaskId> tasks_;
  StandbyState state_ = StandbyState::kStartup;
  uint64_t epoch_ = 0;  // bumped at every step-down, so a read can tell
  WaitQueue apply_wake_;
  WaitQueue pickup_wake_;

  Lsn next_read_{1};
  Lsn rebuilt_from_;  // where the last rebuild started reading the log
  Lsn applied_lsn_;
  Term applied_term_;  // of the last LOG record applied (0: none since the rebuild)
  // The record that last showed a fetched tail stale (joins_chain), and how many times in a
  // row; at kStaleTailRefetchesMax it is taken as it is.
  static constexpr uint32_t kStaleTailRefetchesMax = 8;
  Lsn stale_tail_lsn_;
  uint32_t stale_tail_refetches_ = 0;
  Timestamp applied_ts_;
  Lsn commit_lsn_;
  std::deque<Record> pending_;  // fetched, ascending LSN, not yet applied
  Lsn seen_hint_;               // the newest commit hint a read brought (long polls)
  Lsn seen_through_;            // the last read's `through`, and where it read from
  Lsn seen_from_;
  Status resync_error_;
  int rebuild_failures_in_row_ = 0;
  int empty_reads_ = 0;  // in a row, at the end of the log
  // Since when the server read has answered, with nothing new, a commit hint above its
  // chain's end (unset: it has not).
  std::optional<MonoTime> server_behind_since_;
  LogLimiter behind_log_{std::chrono::seconds(10)};
  Nanos idle_poll_{0};  // the last pause there
  // The highest record that could not be applied: applying up to it again after a rebuild
  // is not progress (rebuild_failures_in_row_ keeps counting).
  Lsn apply_failed_at_;

  // Checkpoint manager.
  Lsn latest_applicable_;
  bool hold_pickups_ = false;
  // A checkpoint that failed its checks (Corrupt, VersionTooNew): neither picked up again
  // nor loaded by a re-sync, which rebuilds from the installed checkpoint instead.
  Lsn refused_lsn_;
  Lsn skipped_lsn_;                        // policy skip: wait for a checkpoint above this one
  std::optional<MonoTime> failing_since_;  // the current run of retriable failures
  int failures_in_row_ = 0;
  MonoTime retry_at_{};
  StandbyStats stats_;
  PickupResult last_pickup_;
  PickupAction last_action_ = PickupAction::kIgnore;
};

}  // namespace quire
