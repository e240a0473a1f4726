#include "repl/standby.h"

#include <algorithm>

#include <fmt/format.h>

namespace quire {

namespace {
constexpr const char* kComponent = "standby";
constexpr const char* kManager = "checkpoint-manager";
// A keystore change that waits for the KMS is retried after the backoff of this many
// failures in a row.
constexpr int kKmsWaitBackoffFailures = 2;

}  // namespace

std::string_view standby_state_name(StandbyState s) {
  switch (s) {
    case StandbyState::kStartup:
      return "STARTUP";
    case StandbyState::kCatchingUp:
      return "CATCHING_UP";
    case StandbyState::kSecondary:
      return "SECONDARY";
    case StandbyState::kResync:
      return "RESYNC";
  }
  return "UNKNOWN";
}

std::string_view pickup_action_name(PickupAction a) {
  switch (a) {
    case PickupAction::kAdvance:
      return "advance";
    case PickupAction::kIgnore:
      return "ignore";
    case PickupAction::kWait:
      return "wait for a newer checkpoint";
    case PickupAction::kRetry:
      return "retry with backoff";
    case PickupAction::kStepDown:
      return "step down to RESYNC";
    case PickupAction::kAbort:
      return "abort";
  }
  return "unknown";
}

StaleKeystoreChoice stale_keystore_choice(PickupPolicy policy, InstallMode mode) {
  // A load (start-up, re-sync) installs it whatever the policy: refusing would only
  // re-sync again, and the keys the node holds are a superset of what it needs.
  if (mode == InstallMode::kLoad || policy == PickupPolicy::kAccept)
    return StaleKeystoreChoice::kInstall;
  return StaleKeystoreChoice::kReport;
}

PickupAction decide_pickup(const PickupResult& r, PickupPolicy policy, bool retry_deadline_passed) {
  switch (r.outcome) {
    case PickupOutcome::kInstalled:
    case PickupOutcome::kStaleKeystoreInstalled:
      return PickupAction::kAdvance;
    case PickupOutcome::kAlreadyInstalled:
    case PickupOutcome::kOlder:
      return PickupAction::kIgnore;
    case PickupOutcome::kStaleKeystore:
      switch (policy) {
        case PickupPolicy::kAbort:
          return PickupAction::kAbort;
        case PickupPolicy::kResync:
          return PickupAction::kStepDown;
        case PickupPolicy::kSkip:
          return PickupAction::kWait;
        case PickupPolicy::kAccept:
          return PickupAction::kWait;  // accept asks the engine to install it: not reached
      }
      return PickupAction::kWait;
    case PickupOutcome::kKeystoreAhead:
    case PickupOutcome::kUnavailable:
    case PickupOutcome::kBusy:
      if (policy == PickupPolicy::kAbort) return PickupAction::kAbort;
      return retry_deadline_passed ? PickupAction::kStepDown : PickupAction::kRetry;
    case PickupOutcome::kCorrupt:
    case PickupOutcome::kKeystoreConflict:
    case PickupOutcome::kVersionTooNew:
      return policy == PickupPolicy::kAbort ? PickupAction::kAbort : PickupAction::kStepDown;
  }
  return PickupAction::kStepDown;
}

Standby::Standby(Env& env, ReplicationClient& client, Engine& engine, StandbyOptions options)
    : env_(env),
      client_(client),
      engine_(engine),
      options_(std::move(options)),
      apply_wake_(env.executor().scheduler()),
      pickup_wake_(env.executor().scheduler()) {
  // A zero pause would poll the end of the log with no pause at all.
  QUIRE_ASSERT(options_.poll_interval_min > Nanos(0) && options_.poll_interval > Nanos(0));
}

Standby::~Standby() {
  stop();
}

void Standby::start() {
  if (running_) return;
  running_ = true;
  std::erase_if(tasks_, [this](TaskId t) { return env_.executor().is_done(t); });
  tasks_.push_back(env_.executor().spawn("log-apply", apply_loop()));
  tasks_.push_back(env_.executor().spawn("checkpoint-pick-up", pickup_loop()));
}

void Standby::stop() {
  running_ = false;
  // The ids stay until the tasks ended (quiescent()): a cancelled task still runs to its
  // next wait, and the node keeps this object alive until then.
  for (TaskId t : tasks_) env_.executor().cancel(t);
}

bool Standby::quiescent() const {
  return reads_in_flight_ == 0 && std::all_of(tasks_.begin(), tasks_.end(), [this](TaskId t) {
           return env_.executor().is_done(t);
         });
}

void Standby::set_state(StandbyState s, std::string_view why) {
  if (s == state_) return;
  env_.log().info(kComponent, 42001, "standby state change",
                  {{"from", standby_state_name(state_)},
                   {"to", standby_state_name(s)},
                   {"why", why},
                   {"applied_ts", applied_ts_},
                   {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()}});
  state_ = s;
}

void Standby::step_down(std::string_view why) {
  if (state_ == StandbyState::kResync || state_ == StandbyState::kStartup) return;
  stats_.resyncs++;
  epoch_++;
  env_.log().warn(kComponent, 42002,
                  "clean step-down: re-syncing from the latest checkpoint and the log",
                  {{"why", why},
                   {"applied_ts", applied_ts_},
                   {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()}});
  set_state(StandbyState::kResync, why);
  apply_wake_.notify_all();
}

Nanos Standby::backoff(int failures) const {
  Nanos b = options_.retry_backoff_min;
  for (int i = 1; i < failures && b < options_.retry_backoff_max; i++) b *= 2;
  return std::min(b, options_.retry_backoff_max);
}

// ---- Log apply ----------------------------------------------------------------------------

Task<void> Standby::apply_loop() {
  while (running_) {
    if (state_ == StandbyState::kStartup || state_ == StandbyState::kResync) {
      Status st = co_await rebuild();
      if (st.code() == Code::kCancelled) co_return;
      if (!st.is_ok()) {
        stats_.rebuild_failures++;
        rebuild_failures_in_row_++;
        resync_error_ = st;
        const bool report = rebuild_failures_in_row_ == options_.resync_failures_reported;
        env_.log().log(
            report ? Severity::kError : Severity::kWarning, kComponent, report ? 42091 : 42090,
            report ? "cannot re-sync: no checkpoint and log to rebuild from; still trying"
                   : "rebuild failed; will retry",
            {{"error", st},
             {"attempts", rebuild_failures_in_row_},
             {"state", standby_state_name(state_)}});
        Nanos wait = std::min(options_.resync_backoff_max, backoff(rebuild_failures_in_row_ + 1));
        if (!(co_await env_.executor().sleep(wait)).is_ok()) co_return;
      }
      continue;
    }
    co_await tail_once();
  }
}

Task<Status> Standby::rebuild() {
  stats_.rebuilds++;
  engine_.clear_ingest();
  pending_.clear();
  auto latest =
      co_await client_.latest_checkpoint(env_.executor().deadline_after(options_.io_timeout));
  if (!latest.is_ok()) {
    // No checkpoint yet at start-up (the primary has not bootstrapped) or no answer.
    if (engine_.installed_checkpoint_lsn().is_zero())
      co_return Status(latest.status()).at("rebuild:latest");
  } else if (latest->lsn == refused_lsn_ && !engine_.installed_checkpoint_lsn().is_zero()) {
    // The latest checkpoint failed its checks: rebuild from the one installed.
    env_.log().warn(kComponent, 42004,
                    "latest checkpoint refused earlier; rebuilding from the installed one",
                    {{"refused_lsn", refused_lsn_},
                     {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()}});
  } else {
    const Lsn lsn = latest->lsn;
    PickupResult r = co_await engine_.install_checkpoint(
        std::move(latest).value(), InstallMode::kLoad,
        stale_keystore_choice(engine_.options().policy, InstallMode::kLoad));
    abort_if_decided(r);
    if (!running_) co_return cancelled("stopping");
    if (r.outcome == PickupOutcome::kCorrupt || r.outcome == PickupOutcome::kVersionTooNew)
      refused_lsn_ = lsn;
    const bool fallback =
        (r.outcome == PickupOutcome::kCorrupt || r.outcome == PickupOutcome::kVersionTooNew) &&
        !engine_.installed_checkpoint_lsn().is_zero();
    const bool usable = r.installed() || r.outcome == PickupOutcome::kOlder || fallback;
    if (r.switched()) stats_.pickups.installed++;
    if (!usable || engine_.installed_checkpoint_lsn().is_zero()) {
      co_return Status(r.detail.is_ok() ? unavailable("pick-up failed") : r.detail)
          .at("rebuild:install")
          .with("checkpoint_lsn", r.checkpoint_lsn.value);
    }
  }
  // Rebuild from whatever checkpoint is installed now (the latest, or the one we had when
  // the latest is older or could not be read): its state plus the log after it.
  applied_lsn_ = engine_.checkpoint_log_lsn();
  applied_term_ = Term();
  applied_ts_ = engine_.checkpoint_ts();
  // The log through the checkpoint's position was applied by a primary, so durable at W:
  // committed, even when no later record publishes a commit point (a take-over starts
  // its recovery here). Nothing above it: see forget_fetched.
  forget_fetched();
  rebuilt_from_ = next_read_;
  failing_since_.reset();
  failures_in_row_ = 0;
  env_.log().info(kComponent, 42003, "rebuilt from a checkpoint; applying the log after it",
                  {{"installedCheckpointLsn", engine_.installed_checkpoint_lsn()},
                   {"checkpoint_ts", engine_.checkpoint_ts()},
                   {"log_from", next_read_},
                   {"keystore_version", engine_.keystore().version()}});
  set_state(StandbyState::kCatchingUp, "rebuilt from a checkpoint");
  co_return Status();
}

Task<void> Standby::tail_once() {
  const uint64_t epoch = epoch_;
  if (pending_.size() >= options_.pending_records_max) {
    // Too much fetched and not committed: wait for the commit point to move.
    co_await env_.executor().sleep(options_.poll_interval);
    forget_fetched();  // re-read them once the primary published a commit point
    co_return;
  }
  const MonoTime asked_at = env_.executor().now();
  const Lsn asked_from = next_read_;
  // Catching up, the first read that finds nothing is the news (SECONDARY): not held.
  const Nanos log_wait = state_ == StandbyState::kSecondary ? options_.log_wait : Nanos(0);
  auto chunk = co_await client_.read_log(
      next_read_, options_.read_bytes_max, env_.executor().deadline_after(options_.io_timeout),
      LogWait{log_wait, seen_hint_, seen_from_ == next_read_ ? seen_through_ : Lsn()});
  if (!running_ || epoch != epoch_) co_return;
  if (!chunk.is_ok()) {
    co_await log_read_failed(chunk.status());
    co_return;
  }
  const bool at_end = chunk->records.empty();
  const bool new_hint = chunk->commit_hint > seen_hint_;
  seen_hint_ = std::max(seen_hint_, chunk->commit_hint);
  // Where this server's answer ended: a read from the same place has nothing new until
  // its chain passes it (what follows the last LOG record is read again from `from` until
  // a commit point covers it; see take_fetched).
  const bool new_through = seen_from_ != asked_from || seen_through_ != chunk->through;
  seen_through_ = chunk->through;
  seen_from_ = asked_from;
  take_fetched(chunk->records, chunk->through);
  take_commit_hint(chunk->commit_hint, chunk->commit_hint_term);
  if (!co_await apply_committed(epoch)) co_return;
  if (!at_end) {
    empty_reads_ = 0;
    server_behind_since_.reset();
    co_return;
  }
  note_server_behind(chunk->commit_hint, chunk->through);
  const bool reached_end = state_ == StandbyState::kCatchingUp;
  if (reached_end) {
    rebuild_failures_in_row_ = 0;
    resync_error_ = Status();
    set_state(StandbyState::kSecondary, "reached the end of the log");
  }
  // A long poll ended by news (a newer commit hint, records of other types) or held until
  // its wait ran out, or the end just reached (the next read is a long poll): read again
  // at once. Answered at once with nothing new (a server that does not hold reads): poll
  // as below.
  if (options_.log_wait > Nanos(0) &&
      (reached_end || new_hint || new_through ||
       (log_wait > Nanos(0) && env_.executor().now() - asked_at >= log_wait / 2))) {
    empty_reads_ = 0;
    co_return;
  }
  idle_poll_ =
      ++empty_reads_ <= options_.poll_quick_reads
          ? std::min(options_.poll_interval_min, options_.poll_interval)
          : std::min(std::max(idle_poll_ * 2, options_.poll_interval_min), options_.poll_interval);
  co_await env_.executor().sleep(idle_poll_);
}

Task<void> Standby::log_read_failed(const Status& st) {
  if (st.code() == Code::kCancelled) co_return;
  if (st.code() != Code::kOlder) {
    env_.log().debug(kComponent, 42011, "log read failed; retrying", {{"error", st}});
    co_await env_.executor().sleep(options_.poll_interval);
    co_return;
  }
  stats_.log_gaps++;
  if (next_read_ != rebuilt_from_) {
    env_.log().warn(kComponent, 42010, "log gap: the records this standby needs are gone",
                    {{"from", next_read_}, {"error", st}});
    step_down("log gap");
    co_return;
  }
  // Right after a rebuild: the log the installed checkpoint needs is gone too. Re-syncing
  // again can only help once a newer checkpoint exists.
  stats_.rebuild_failures++;
  rebuild_failures_in_row_++;
  resync_error_ = Status(Code::kUnavailable,
                         "the page service has a log gap this standby cannot fill: the records "
                         "after the latest installable checkpoint are gone")
                      .at("log_gap")
                      .with("from", next_read_.value)
                      .with("installedCheckpointLsn", engine_.installed_checkpoint_lsn().value);
  const bool report = rebuild_failures_in_row_ == options_.resync_failures_reported;
  env_.log().log(report ? Severity::kError : Severity::kWarning, kComponent, report ? 42091 : 42010,
                 report ? "cannot re-sync: log gap after the latest checkpoint; still trying"
                        : "log gap right after re-sync",
                 {{"from", next_read_}, {"error", st}, {"attempts", rebuild_failures_in_row_}});
  step_down("log gap after re-sync");
  co_await env_.executor().sleep(
      std::min(options_.resync_backoff_max, backoff(rebuild_failures_in_row_ + 1)));
}

void Standby::take_fetched(std::vector<Record>& records, Lsn through) {
  for (Record& r : records) {
    if (r.lsn < next_read_ || r.type != RecordType::kLog) continue;
    // The chain goes straight from prev_lsn to this record: anything fetched in between
    // was abandoned.
    while (!pending_.empty() && pending_.back().lsn > r.prev_lsn) {
      stats_.records_abandoned++;
      pending_.pop_back();
    }
    if (!joins_chain(r)) {
      refetch_after_stale_tail(r);
      return;
    }
    commit_lsn_ = std::max(commit_lsn_, r.backlink_lsn);
    next_read_ = r.lsn.next();
    // Ascending: r is at or above next_read_, which is above everything pending.
    QUIRE_ASSERT(pending_.empty() || pending_.back().lsn < r.lsn);
    pending_.push_back(std::move(r));
  }
  // Past the last LOG record fetched, `through` covers only records of other types. Above
  // the commit point those are as uncommitted as a pending record, and nothing here would
  // notice their being replaced (a take-over re-uses the LSNs of an old primary's
  // uncommitted tail): skipping them now could skip the new primary's LOG records later
  // written under the same LSNs (quire chaos kek seed 228). So the read goes on from there
  // until a commit point covers them.
  const Lsn fetched = pending_.empty() ? Lsn(0) : pending_.back().lsn;
  const Lsn safe = std::min(through, std::max(commit_lsn_, fetched));
  if (safe >= next_read_) next_read_ = safe.next();
}

// The writer told this server its log is durable past the end of the server's own chain,
// and the server has had nothing more to give: it lacks records the other servers hold
// (its disk is full, or it is cut off from the writer but not from its hints). Waiting on
// it would leave the last writes unapplied until it catches up; the next server has them.
void Standby::note_server_behind(Lsn hint, Lsn through) {
  if (hint <= through || hint <= commit_lsn_) {
    server_behind_since_.reset();
    return;
  }
  const MonoTime now = env_.executor().now();
  if (!server_behind_since_) {
    server_behind_since_ = now;
    return;
  }
  if (now - *server_behind_since_ < options_.server_behind_max) return;
  server_behind_since_.reset();
  stats_.server_behind_switches++;
  if (std::optional<uint64_t> suppressed = behind_log_.admit(now)) {
    env_.log().info(kComponent, 42015,
                    "the page server read holds less than its commit hint says is durable; "
                    "reading from the next one",
                    {{"commit_hint", hint},
                     {"through", through},
                     {"commit_lsn", commit_lsn_},
                     {"suppressed", *suppressed}});
  }
  client_.set_preferred(client_.preferred() + 1);
}

// A server's hint (PageServer::note_commit_hint): the writer of `term` made its log durable
// at W up to `lsn`. It stands for the record carrying it, which this server has not synced
// yet, so it is taken only where that record would have been: the record fetched at
// exactly `lsn` is of the writer's term. A writer never re-uses an LSN, so that is the
// writer's own record, on its chain; and what is pending below it is that record's chain,
// as take_fetched keeps it. Not the newest record below `lsn` (the point may be a page or
// completion record's): the writer may have abandoned its own records there, and only the
// record that skips them tells this standby so. Anything else (another term's record at
// `lsn`, whose LSNs a take-over may re-use, or nothing fetched there yet) waits for the
// record carrying the point.
void Standby::take_commit_hint(Lsn lsn, Term term) {
  if (lsn <= commit_lsn_ || term.is_zero()) return;
  auto it = std::lower_bound(pending_.begin(), pending_.end(), lsn,
                             [](const Record& r, Lsn l) { return r.lsn < l; });
  if (it == pending_.end() || it->lsn != lsn || it->term != term) return;
  commit_lsn_ = lsn;
  stats_.commit_hints_taken++;
}

// Terms never decrease along the chain, and a writer's records after its first (marked
// kRecordFlagTermStart) are all of its term. A record of a newer term than the last one
// fetched that is not such a first record shows that this standby missed the new writer's
// first records: what it fetched (or skipped as non-LOG records) above the commit point was
// an old writer's uncommitted tail, which the new writer replaced under the same LSNs. An
// older term than the last one fetched is a stale record itself. After a rebuild the term
// of what came before is not known, and any record joins.
// The same record found that way again and again, from every server in turn, is taken as
// it is (a chain written before the flag existed has unflagged first records).
bool Standby::joins_chain(const Record& r) const {
  const Term tail = pending_.empty() ? applied_term_ : pending_.back().term;
  if (tail.is_zero() || r.term == tail) return true;
  if (r.term > tail && (r.flags & kRecordFlagTermStart) != 0) return true;
  return stale_tail_lsn_ == r.lsn && stale_tail_refetches_ >= kStaleTailRefetchesMax;
}

// Drops every fetched record not applied yet and reads the log again after the last one
// applied, from another server (the preferred one may still serve the old tail).
void Standby::refetch_after_stale_tail(const Record& r) {
  if (stale_tail_lsn_ != r.lsn) stale_tail_refetches_ = 0;
  stale_tail_lsn_ = r.lsn;
  stale_tail_refetches_++;
  stats_.records_abandoned += pending_.size();
  env_.log().info(kComponent, 42014, "fetched records were an older writer's tail; reading again",
                  {{"lsn", r.lsn},
                   {"term", r.term},
                   {"pending", pending_.size()},
                   {"tail_term", pending_.empty() ? applied_term_ : pending_.back().term},
                   {"from", applied_lsn_.next()}});
  forget_fetched();
  client_.set_preferred(client_.preferred() + 1);
}

// A commit point covers the chain of the record that carried it: the records this standby
// fetched with it. Records fetched again (from another server, or after a rebuild, when any
// record joins the chain) may be another branch under the same LSNs: an old primary's
// uncommitted tail that a server the take-over did not reach still holds, under LSNs the
// new primary re-used and committed. A commit point kept from before applied such a record
// at once, and the standby served a write never acknowledged for good
// (TakeOverTest.AStandbyRebuiltFromAStaleServerAppliesNoOldPrimarysUncommittedRecord). So
// the commit point goes back to what is applied, and the records read again bring it.
void Standby::forget_fetched() {
  pending_.clear();
  next_read_ = applied_lsn_.next();
  seen_from_ = Lsn();  // the next server's chain may end elsewhere
  commit_lsn_ = applied_lsn_;
}

Task<bool> Standby::apply_committed(uint64_t epoch) {
  while (!pending_.empty() && pending_.front().lsn <= commit_lsn_) {
    auto applied = co_await apply_record(pending_.front());
    if (!running_ || epoch != epoch_) co_return false;
    if (!applied.is_ok()) {
      // A record that cannot be applied fails the same way after a rebuild until its cause
      // is gone (a CMK version this node cannot unwrap yet, a key service that refuses):
      // count it as a failed rebuild and back off, or the node loops re-syncing at full
      // speed (found on a real cluster with a stale CMK file: 15,000 step-downs in 10 s).
      rebuild_failures_in_row_++;
      apply_failed_at_ = std::max(apply_failed_at_, pending_.front().lsn);
      step_down(fmt::format("log record {} could not be applied: {}", pending_.front().lsn.value,
                            applied.status().to_string()));
      co_await env_.executor().sleep(
          std::min(options_.resync_backoff_max, backoff(rebuild_failures_in_row_)));
      co_return false;
    }
    if (!*applied) {
      co_await env_.executor().sleep(backoff(kKmsWaitBackoffFailures));
      co_return false;
    }
    const Lsn applied_lsn = pending_.front().lsn;
    applied_term_ = pending_.front().term;
    pending_.pop_front();
    if (rebuild_failures_in_row_ > 0 && applied_lsn > apply_failed_at_) {
      // Progress past what failed: whatever kept re-syncing from working is over.
      rebuild_failures_in_row_ = 0;
      resync_error_ = Status();
    }
  }
  co_return true;
}

Status Standby::apply_batch(Timestamp ts, std::vector<LogWrite>& writes) {
  // A write at or below the installed checkpoint is in it already.
  if (ts <= engine_.checkpoint_ts()) return Status::ok();
  for (LogWrite& w : writes) {
    Status st = engine_.apply_write(w.table, std::move(w.key), ts, std::move(w.value));
    if (!st.is_ok()) return st.at("apply");
  }
  stats_.write_batches_applied++;
  return Status::ok();
}

Task<Result<bool>> Standby::apply_record(const Record& r) {
  auto entry = open_log_record(r, engine_.key_ring().lookup());
  if (!entry.is_ok()) co_return Status(entry.status()).at("apply");
  switch (entry->kind) {
    case LogEntryKind::kWrites: {
      Status st = apply_batch(entry->ts, entry->writes);
      if (!st.is_ok()) co_return st.with("lsn", r.lsn.value);
      break;
    }
    case LogEntryKind::kBatches:
      for (LogBatch& b : entry->batches) {
        Status st = apply_batch(b.ts, b.writes);
        if (!st.is_ok()) co_return st.with("lsn", r.lsn.value).with("ts", b.ts.value);
      }
      break;
    case LogEntryKind::kKeystore: {
      const uint64_t base = entry->keystore_base_version;
      const uint64_t have = engine_.keystore().version();
      if (base > have) {
        co_return Status(kKeystoreConflict, "keystore entry skips versions this node does not hold")
            .at("apply:keystore")
            .with("lsn", r.lsn.value)
            .with("base_version", base)
            .with("node_keystore_version", have);
      }
      for (size_t i = static_cast<size_t>(have - base); i < entry->changes.size(); i++) {
        Status st = co_await engine_.apply_keystore_change(entry->changes[i]);
        if (!st.is_ok()) {
          if (code_is_retriable(st.code())) {
            env_.log().info(kComponent, 42012, "keystore change waits for the KMS",
                            {{"error", st}});
            co_return false;
          }
          co_return st.at("apply:keystore").with("lsn", r.lsn.value);
        }
        stats_.keystore_changes_applied++;
      }
      notify_pickup();  // a checkpoint that needed these keys (KeystoreAhead) may install now
      env_.log().info(
          kComponent, 42013, "applied keystore change from the log",
          {{"lsn", r.lsn}, {"ts", entry->ts}, {"keystore_version", engine_.keystore().version()}});
      break;
    }
    case LogEntryKind::kHeartbeat:
      break;
  }
  stats_.records_applied++;
  applied_lsn_ = r.lsn;
  if (entry->kind != LogEntryKind::kHeartbeat) applied_ts_ = std::max(applied_ts_, entry->ts);
  co_return true;
}

// ---- Checkpoint manager --------------------------------------------------------------------

Task<void> Standby::pickup_loop() {
  while (running_) {
    Status st =
        co_await pickup_wake_.wait(env_.executor().deadline_after(options_.pickup_interval));
    if (st.code() == Code::kCancelled || !running_) co_return;
    if (state_ != StandbyState::kSecondary && state_ != StandbyState::kCatchingUp) continue;
    if (env_.executor().now() < retry_at_ || hold_pickups_) continue;
    co_await pickup_once();
  }
}

Task<void> Standby::pickup_once() {
  const uint64_t epoch = epoch_;
  auto latest =
      co_await client_.latest_checkpoint(env_.executor().deadline_after(options_.io_timeout));
  if (!running_ || epoch != epoch_) co_return;
  if (!latest.is_ok()) {
    latest_checkpoint_failed(latest.status());
    co_return;
  }
  if (!worth_installing(*latest)) co_return;
  const Lsn lsn = latest->lsn;
  env_.log().info(kManager, 42020, "_updateCheckpointIfAvailable",
                  {{"latestMaterializedAndAppliedCheckpointLsn", latest_applicable_},
                   {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()},
                   {"checkpointToInstallLsn", lsn},
                   {"applied_ts", applied_ts_},
                   {"nodeKeystoreVersion", engine_.keystore().version()}});
  if (options_.before_pickup) options_.before_pickup(lsn);
  stats_.pickups.attempts++;
  PickupResult r = co_await engine_.install_checkpoint(
      std::move(latest).value(), InstallMode::kFollow,
      stale_keystore_choice(engine_.options().policy, InstallMode::kFollow));
  abort_if_decided(r);
  if (!running_) co_return;
  handle_pickup(lsn, r);
}

void Standby::latest_checkpoint_failed(const Status& st) {
  if (st.code() == Code::kNotFound || st.code() == Code::kCancelled) return;
  // Counted like an Unavailable pick-up: retried, and escalated past the deadline.
  if (!failing_since_) failing_since_ = env_.executor().now();
  const bool passed = env_.executor().now() - *failing_since_ >= options_.retry_deadline;
  stats_.pickups.unavailable_retries++;
  failures_in_row_++;
  retry_at_ = env_.executor().now() + backoff(failures_in_row_);
  if (passed) {
    stats_.pickups.deadline_escalations++;
    stats_.pickups.resyncs++;
    step_down("the latest checkpoint stayed unreadable past the retry deadline");
  }
}

bool Standby::worth_installing(const Record& latest) {
  const Lsn lsn = latest.lsn;
  auto completion = decode_completion(std::string_view(
      reinterpret_cast<const char*>(latest.payload.data()), latest.payload.size()));
  // Materialized (at or below the commit point) and applied (its ts at or below ours). A
  // completion that does not parse goes to install, which reports it as Corrupt.
  if (completion.is_ok() && (lsn > commit_lsn_ || completion->checkpoint_ts > applied_ts_))
    return false;
  latest_applicable_ = std::max(latest_applicable_, lsn);
  if (lsn <= engine_.installed_checkpoint_lsn()) return false;
  if (lsn == skipped_lsn_) return false;  // policy skip: waiting for a newer one
  if (lsn == refused_lsn_) return false;  // it failed its checks: wait for a newer one
  return true;
}

void Standby::abort_if_decided(const PickupResult& r) {
  // The retry deadline never changes an abort (decide_pickup's table).
  if (decide_pickup(r, engine_.options().policy, false) != PickupAction::kAbort) return;
  // The report's behaviour, kept only so the chaos suite can show it finds the crash.
  Status why = r.detail.is_ok() ? Status(Code::kInvalidArgument, "pick-up failed") : r.detail;
  env_.abort_process(std::move(why).at("pickup").with("checkpoint_lsn", r.checkpoint_lsn.value));
}

void Standby::handle_pickup(Lsn lsn, const PickupResult& r) {
  const PickupPolicy policy = engine_.options().policy;
  if (pickup_outcome_retriable(r.outcome)) {
    if (!failing_since_) failing_since_ = env_.executor().now();
  } else {
    failing_since_.reset();
    failures_in_row_ = 0;
  }
  const bool passed =
      failing_since_ && env_.executor().now() - *failing_since_ >= options_.retry_deadline;
  const PickupAction action = decide_pickup(r, policy, passed);
  last_pickup_ = r;
  last_action_ = action;
  count_pickup(r, action);
  env_.log().info(kManager, 42021, "pick-up handled",
                  {{"checkpointToInstallLsn", lsn},
                   {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()},
                   {"result", pickup_outcome_name(r.outcome)},
                   {"action", pickup_action_name(action)},
                   {"policy", pickup_policy_name(policy)}});
  switch (action) {
    case PickupAction::kAdvance:
      skipped_lsn_ = Lsn();
      break;
    case PickupAction::kIgnore:
      break;
    case PickupAction::kWait:
      skipped_lsn_ = lsn;
      break;
    case PickupAction::kRetry:
      failures_in_row_++;
      retry_at_ = env_.executor().now() + backoff(failures_in_row_);
      break;
    case PickupAction::kStepDown:
      if (r.outcome == PickupOutcome::kCorrupt || r.outcome == PickupOutcome::kVersionTooNew)
        refused_lsn_ = lsn;
      if (passed) stats_.pickups.deadline_escalations++;
      stats_.pickups.resyncs++;
      step_down(
          fmt::format("pick-up of checkpoint {}: {}", lsn.value, pickup_outcome_name(r.outcome)));
      break;
    case PickupAction::kAbort:
      // abort_if_decided already ended the process; nothing more to do here.
      break;
  }
}

void Standby::count_pickup(const PickupResult& r, PickupAction action) {
  PickupCounters& c = stats_.pickups;
  switch (r.outcome) {
    case PickupOutcome::kInstalled:
      c.installed++;
      break;
    case PickupOutcome::kStaleKeystoreInstalled:
      c.stale_keystore_accepted++;
      break;
    case PickupOutcome::kStaleKeystore:
      if (action == PickupAction::kWait) c.skipped++;
      break;
    case PickupOutcome::kKeystoreAhead:
      c.keystore_ahead_retries++;
      break;
    case PickupOutcome::kUnavailable:
      c.unavailable_retries++;
      break;
    case PickupOutcome::kBusy:
      c.busy_retries++;
      break;
    case PickupOutcome::kOlder:
      c.older_ignored++;
      break;
    case PickupOutcome::kAlreadyInstalled:
      c.already_installed++;
      break;
    case PickupOutcome::kCorrupt:
      c.corrupt++;
      break;
    case PickupOutcome::kKeystoreConflict:
      c.keystore_conflicts++;
      break;
    case PickupOutcome::kVersionTooNew:
      c.version_too_new++;
      break;
  }
}

Status Standby::stable_read_failed(const Status& st) {
  if (st.code() != Code::kNotFound && st.code() != Code::kCorruption) return st;
  // A page of the installed checkpoint is gone (retention moved past it while this
  // standby lagged) or bad: the state cannot serve reads; rebuild from the latest.
  stats_.reads_refused++;
  step_down(
      fmt::format("a page of the installed checkpoint could not be read: {}", st.to_string()));
  return Status(Code::kUnavailable, "standby is resyncing (its checkpoint's pages are gone); retry")
      .at("standby_read");
}

// ---- Reads ----------------------------------------------------------------------------------

Status Standby::open_read(std::optional<Timestamp> ts, ReadTicket* ticket) {
  Status gate = read_gate(ts, &ticket->read_ts);
  if (!gate.is_ok()) {
    stats_.reads_refused++;
    return gate;
  }
  ticket->epoch = epoch_;
  return Status();
}

Status Standby::close_read(const ReadTicket& ticket, const Status& read) {
  if (ticket.epoch != epoch_ || state_ != StandbyState::kSecondary) {
    stats_.reads_refused++;
    return Status(Code::kUnavailable, "standby is resyncing; retry").at("standby_read");
  }
  if (!read.is_ok()) return stable_read_failed(read);
  stats_.reads_served++;
  return Status();
}

Status Standby::read_gate(std::optional<Timestamp> ts, Timestamp* read_ts) const {
  if (state_ != StandbyState::kSecondary) {
    std::string_view what = state_ == StandbyState::kResync       ? "resyncing"
                            : state_ == StandbyState::kCatchingUp ? "catching up"
                                                                  : "starting";
    std::string message = resync_error_.is_ok() ? fmt::format("standby is {}; retry", what)
                                                : fmt::format("standby is {}; retry ({})", what,
                                                              resync_error_.to_string());
    return Status(Code::kUnavailable, std::move(message)).at("standby_read");
  }
  *read_ts = ts.value_or(applied_ts_);
  if (*read_ts > applied_ts_) {
    return Status(Code::kUnavailable, "read timestamp not applied yet")
        .at("standby_read")
        .with("read_ts", read_ts->value)
        .with("applied_ts", applied_ts_.value);
  }
  return Status();
}

Task<Result<AtTs<std::optional<std::string>>>> Standby::get(TableId table, std::string key,
                                                            std::optional<Timestamp> ts) {
  const ScopedCount in_flight(reads_in_flight_);
  ReadTicket ticket;
  QUIRE_CO_RETURN_IF_ERROR(open_read(ts, &ticket));
  auto r = co_await engine_.get(table, std::move(key), ticket.read_ts);
  QUIRE_CO_RETURN_IF_ERROR(close_read(ticket, r.status()));
  co_return AtTs<std::optional<std::string>>{std::move(r).value(), ticket.read_ts};
}

std::optional<AtTs<std::optional<std::string>>> Standby::get_cached(TableId table,
                                                                    std::string_view key,
                                                                    std::optional<Timestamp> ts) {
  Timestamp read_ts;
  if (!read_gate(ts, &read_ts).is_ok()) return std::nullopt;
  auto value = engine_.get_cached(table, key, read_ts);
  if (!value) return std::nullopt;
  stats_.reads_served++;
  return AtTs<std::optional<std::string>>{std::move(*value), read_ts};
}

Task<Result<AtTs<std::vector<std::pair<std::string, std::string>>>>> Standby::scan(
    TableId table, std::string lo, std::string hi, size_t limit, std::optional<Timestamp> ts) {
  const ScopedCount in_flight(reads_in_flight_);
  ReadTicket ticket;
  QUIRE_CO_RETURN_IF_ERROR(open_read(ts, &ticket));
  auto r = co_await engine_.scan(table, std::move(lo), std::move(hi), ticket.read_ts, limit);
  QUIRE_CO_RETURN_IF_ERROR(close_read(ticket, r.status()));
  co_return AtTs<std::vector<std::pair<std::string, std::string>>>{std::move(r).value(),
                                                                   ticket.read_ts};
}

}  // namespace quire
