#include "repl/primary.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace quire {

namespace {
constexpr const char* kComponent = "primary";
// Keystore changes per log entry (a rotation rewraps every DEK).
constexpr size_t kKeyChangesPerEntry = 1000;
constexpr int kBootstrapAttemptsMax = 20;

size_t batch_bytes(const std::vector<LogWrite>& batch) {
  size_t n = 0;
  for (const LogWrite& w : batch) n += 16 + w.key.size() + (w.value ? w.value->size() : 0);
  return n;
}
}  // namespace

struct Primary::Request {
  explicit Request(Scheduler& s) : done(s) {}
  LogEntry entry;
  WriteConcern concern = WriteConcern::kMajority;
  size_t bytes = 0;
  bool preassigned_ts = false;  // keystore entries carry the ts T1 reserved
  bool rotation = false;        // a KEK rotation's T2 (for the test hook)
  bool push_after = false;      // push the keystore once durable (last chunk of a key op)
  bool finished = false;
  MonoTime give_up = MonoTime::never();  // a queued write fails past this if never sent
  Lsn lsn;
  Status status;
  Timestamp ts;
  Event done;
};

Primary::Primary(Env& env, Engine& engine, RecordWriter& writer, PrimaryOptions options)
    : env_(env),
      engine_(engine),
      writer_(writer),
      options_(std::move(options)),
      random_(env.random_stream("primary")),
      queue_changed_(env.executor().scheduler()),
      room_changed_(env.executor().scheduler()),
      checkpoint_prompt_(env.executor().scheduler()),
      writer_mu_(env.executor().scheduler()),
      key_mu_(env.executor().scheduler()) {}

Primary::~Primary() {
  stop();
}

Timestamp Primary::next_ts() {
  const int64_t ns = env_.clock().wall_now_ns();
  const uint64_t secs =
      ns <= 0 ? 0 : std::min<uint64_t>(static_cast<uint64_t>(ns / 1'000'000'000), 0xffffffffu);
  Timestamp candidate = Timestamp::from_parts(static_cast<uint32_t>(secs), 0);
  last_ts_ = std::max(Timestamp(last_ts_.value + 1), candidate);
  return last_ts_;
}

// ---- Start and stop -------------------------------------------------------------------

Task<Status> Primary::start() {
  if (running_) co_return Status();
  running_ = true;
  last_ts_ = std::max(last_ts_, engine_.checkpoint_ts());
  applied_ts_ = std::max(applied_ts_, engine_.checkpoint_ts());
  tasks_.push_back(env_.executor().spawn("log-commit", commit_loop()));
  if (engine_.keystore().version() == 0) {
    // A new database. The first keys cannot travel through the log (no key exists yet to
    // seal that entry), so they reach standbys in the first checkpoint's keystore page.
    auto changes = co_await engine_.bootstrap_keys(options_.tables);
    if (!changes.is_ok()) {
      stop();
      co_return Status(changes.status()).at("primary:bootstrap");
    }
    const Timestamp ts = next_ts();
    Status pushed = engine_.push_keystore(ts);
    QUIRE_ASSERT(pushed.is_ok());  // the first push of an empty queue
    applied_ts_ = ts;
    Status st;
    for (int attempt = 0; attempt < kBootstrapAttemptsMax; attempt++) {
      auto info = co_await checkpoint_now();
      st = info.status();
      if (st.is_ok() || !running_) break;
      co_await env_.executor().sleep(options_.write_retry_backoff);
    }
    if (!st.is_ok()) {
      stop();
      co_return std::move(st).at("primary:first_checkpoint");
    }
  }
  logged_keystore_version_ = engine_.keystore().version();
  std::optional<DekRef> log_dek = engine_.keystore().newest_dek(kLogTable.value);
  if (!log_dek) {
    stop();
    co_return Status(Code::kNotFound, "the keystore has no log DEK").at("primary:start");
  }
  log_dek_ = *log_dek;
  tasks_.push_back(env_.executor().spawn("checkpointer", checkpoint_loop()));
  tasks_.push_back(env_.executor().spawn("heartbeat", heartbeat_loop()));
  env_.log().info(kComponent, 41000, "primary started",
                  {{"keystore_version", engine_.keystore().version()},
                   {"installedCheckpointLsn", engine_.installed_checkpoint_lsn()},
                   {"applied_ts", applied_ts_}});
  co_return Status();
}

void Primary::stop() {
  if (!running_ && tasks_.empty()) return;
  running_ = false;
  for (TaskId t : tasks_) env_.executor().cancel(t);
  tasks_.clear();
  Status why = fenced_ ? stopped_why_ : unavailable("primary stopped");
  for (auto& req : queue_) finish(*req, why, Timestamp());
  queue_.clear();
  queue_bytes_ = 0;
  room_changed_.notify_all();
}

// ---- Writes ---------------------------------------------------------------------------

bool Primary::has_room(size_t bytes) const {
  if (engine_.ingest_bytes() >= options_.ingest_bytes_max) return false;
  if (queue_.empty()) return true;
  return queue_.size() < options_.queue_batches_max &&
         queue_bytes_ + bytes <= options_.queue_bytes_max;
}

void Primary::finish(Request& req, Status st, Timestamp ts) {
  if (req.finished) return;
  req.finished = true;
  req.status = std::move(st);
  req.ts = ts;
  req.done.set();
}

Task<Result<Timestamp>> Primary::put(TableId table, std::string key, std::string value) {
  std::vector<LogWrite> batch;
  batch.push_back(LogWrite{table, std::move(key), std::move(value)});
  co_return co_await write(std::move(batch));
}

Task<Result<Timestamp>> Primary::del(TableId table, std::string key) {
  std::vector<LogWrite> batch;
  batch.push_back(LogWrite{table, std::move(key), std::nullopt});
  co_return co_await write(std::move(batch));
}

Task<Result<Timestamp>> Primary::write(std::vector<LogWrite> batch, WriteConcern concern) {
  const Deadline admission = env_.executor().deadline_after(options_.admission_wait_max);
  if (fenced_) co_return stopped_why_;
  if (!running_) co_return unavailable("primary is not running").at("write");
  // A batch that writes a key twice means its last write (one commit ts per batch).
  {
    std::set<std::pair<uint64_t, std::string_view>> seen;
    std::vector<bool> keep(batch.size(), true);
    for (size_t i = batch.size(); i-- > 0;) {
      keep[i] = seen.emplace(batch[i].table.value, batch[i].key).second;
    }
    if (std::find(keep.begin(), keep.end(), false) != keep.end()) {
      std::vector<LogWrite> last;
      for (size_t i = 0; i < batch.size(); i++) {
        if (keep[i]) last.push_back(std::move(batch[i]));
      }
      batch = std::move(last);
    }
  }
  auto req = std::make_shared<Request>(env_.executor().scheduler());
  req->entry.kind = LogEntryKind::kWrites;
  req->entry.ts = Timestamp(1);  // checked here; the commit task assigns the real one
  req->entry.writes = std::move(batch);
  Status valid = validate_log_entry(req->entry);
  if (!valid.is_ok()) co_return valid.at("write");
  for (const LogWrite& w : req->entry.writes) {
    if (w.key.size() > kKeyBytesMax || (w.value && w.value->size() > kValueBytesMax)) {
      co_return Status(Code::kInvalidArgument, "key or value too large")
          .at("write")
          .with("table", w.table.value);
    }
  }
  Status keys = co_await ensure_table_keys(req->entry.writes);
  if (!keys.is_ok()) co_return keys.at("write:table_key");
  req->concern = concern;
  req->bytes = batch_bytes(req->entry.writes);
  co_return co_await submit(std::move(req), admission);
}

Task<Result<Timestamp>> Primary::submit(std::shared_ptr<Request> req, Deadline admission) {
  const bool is_key_entry = req->entry.kind != LogEntryKind::kWrites;
  bool waited = false;
  while (!is_key_entry && !has_room(req->bytes)) {
    if (fenced_) co_return stopped_why_;
    if (!running_) co_return unavailable("primary is not running").at("write");
    if (!waited) {
      waited = true;
      stats_.admission_waits++;
    }
    if (engine_.ingest_bytes() >= options_.ingest_bytes_max) prompt_checkpoint();
    Status st = co_await room_changed_.wait(admission);
    if (st.code() == Code::kDeadlineExceeded) {
      co_return busy("no room for the write: commit queue or un-checkpointed ingest at its bound")
          .at("write")
          .with("queued", queue_.size())
          .with("ingest_bytes", engine_.ingest_bytes());
    }
    if (!st.is_ok()) co_return st;
  }
  if (!running_) co_return unavailable("primary is not running").at("write");
  if (!is_key_entry) {
    // As long as one group's attempts: a write never sent by then fails "not committed".
    req->give_up = env_.executor().now() + (options_.write_timeout + options_.write_retry_backoff) *
                                               options_.write_attempts_max;
  }
  queue_.push_back(req);
  queue_bytes_ += req->bytes;
  queue_changed_.notify_one();
  Status st = co_await req->done.wait();
  if (!st.is_ok()) co_return st;
  if (!req->status.is_ok()) co_return req->status;
  co_return req->ts;
}

Task<Status> Primary::ensure_table_keys(const std::vector<LogWrite>& batch) {
  std::set<uint64_t> missing;
  for (const LogWrite& w : batch) {
    if (!engine_.keystore().newest_dek(w.table.value)) missing.insert(w.table.value);
  }
  for (uint64_t t : missing) {
    QUIRE_CO_RETURN_IF_ERROR(co_await key_op(engine_.add_table_key(TableId(t))));
  }
  co_return Status();
}

// ---- The commit task --------------------------------------------------------------------

Task<void> Primary::commit_loop() {
  while (running_) {
    if (queue_.empty()) {
      Status st = co_await queue_changed_.wait();
      if (st.code() == Code::kCancelled) co_return;
      continue;
    }
    co_await commit_group();
  }
}

Task<void> Primary::commit_group() {
  Status locked = co_await writer_mu_.lock();
  if (!locked.is_ok()) co_return;
  MutexGuard guard(writer_mu_);
  if (writer_.needs_recovery()) {
    Status st = co_await recover_chain(options_.write_timeout);
    if (!st.is_ok()) {
      env_.log().warn(kComponent, 41010, "log writer cannot recover yet; writes wait",
                      {{"error", st}});
      // Writes that waited past their bound fail; they were never sent.
      const MonoTime now = env_.executor().now();
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->give_up <= now) {
          stats_.batches_failed++;
          queue_bytes_ -= (*it)->bytes;
          finish(**it,
                 Status(Code::kUnavailable, "write not committed: the log could not be reached")
                     .at("commit"),
                 Timestamp());
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      room_changed_.notify_all();
      co_await env_.executor().sleep(options_.write_retry_backoff);
      co_return;
    }
  }
  if (queue_.empty()) co_return;

  // Take a group and seal it.
  std::vector<std::shared_ptr<Request>> group;
  size_t bytes = 0;
  while (!queue_.empty() && group.size() < options_.group_batches_max &&
         (group.empty() || bytes + queue_.front()->bytes <= options_.group_bytes_max)) {
    bytes += queue_.front()->bytes;
    queue_bytes_ -= queue_.front()->bytes;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  room_changed_.notify_all();
  DataKey* dek = engine_.key_ring().find(log_dek_);
  std::vector<Record> records;
  std::vector<std::shared_ptr<Request>> sealed;
  auto w1 = std::make_shared<std::vector<std::shared_ptr<Request>>>();
  bool worn = false;
  for (auto& req : group) {
    if (req->entry.kind == LogEntryKind::kWrites && options_.planted_bugs.ack_unlogged_batch != 0 &&
        ++batches_taken_ == options_.planted_bugs.ack_unlogged_batch) {
      finish(*req, Status(), next_ts());  // the planted bug: acknowledged, never logged
      continue;
    }
    if (req->entry.kind == LogEntryKind::kHeartbeat) {
      req->entry.ts = last_ts_.is_zero() ? next_ts() : last_ts_;  // a heartbeat commits nothing new
    } else if (!req->preassigned_ts) {
      req->entry.ts = next_ts();
    } else if (req->push_after && (req->entry.ts <= engine_.push_queue().stable() ||
                                   req->entry.ts <= engine_.push_queue().last_push_ts())) {
      // A checkpoint became stable at or above the ts T1 reserved, and the push queue
      // takes nothing at or below stable: write the change at a fresh ts instead, so it
      // is still the ts it is pushed at.
      env_.log().info(
          kComponent, 41016,
          "reserved keystore ts already covered by a checkpoint; using a fresh one",
          {{"reserved_ts", req->entry.ts}, {"stable_ts", engine_.push_queue().stable()}});
      req->entry.ts = next_ts();
    }
    if (dek == nullptr) {
      finish(*req,
             Status(Code::kNotFound, "the log DEK is not in the key ring")
                 .at("commit")
                 .with("dek_version", log_dek_.version),
             Timestamp());
      continue;
    }
    const Lsn lsn = writer_.allocate();
    auto rec = seal_log_record(req->entry, *dek, lsn, writer_.client().term(), *random_);
    if (!rec.is_ok()) {
      if (rec.code() == Code::kKeyExhausted) worn = true;
      finish(*req, Status(rec.status()).at("commit"), Timestamp());
      continue;
    }
    rec->backlink_lsn = writer_.durable_lsn();  // the commit point (see the header)
    published_commit_ = std::max(published_commit_, rec->backlink_lsn);
    req->lsn = lsn;
    records.push_back(std::move(rec).value());
    sealed.push_back(req);
    if (req->concern == WriteConcern::kOne) w1->push_back(req);
  }
  if (dek != nullptr && dek->wants_new_version()) worn = true;
  if (worn) prompt_checkpoint();  // renewal runs after the next checkpoint
  if (records.empty()) co_return;

  Status st = co_await write_group(std::move(records), w1);
  if (st.is_ok()) {
    stats_.groups_written++;
    for (auto& req : sealed) {
      if (req->entry.kind == LogEntryKind::kWrites) {
        for (LogWrite& w : req->entry.writes) {
          Status applied =
              engine_.apply_write(w.table, std::move(w.key), req->entry.ts, std::move(w.value));
          if (!applied.is_ok()) {
            // Validated before it was queued and the ts is above every checkpoint; a
            // failure here is a bug, but the record is durable, so say so loudly.
            env_.log().error(kComponent, 41011, "durable write did not apply",
                             {{"error", applied}});
          }
        }
        stats_.batches_acked++;
        stats_.writes_acked += req->entry.writes.size();
      } else if (req->entry.kind == LogEntryKind::kKeystore) {
        logged_keystore_version_ = req->entry.keystore_base_version + req->entry.changes.size();
        if (req->rotation && on_rotation_point) on_rotation_point(RotationPoint::kAfterLogWrite);
        if (req->push_after) {
          // Push at the reserved ts unless a checkpoint already covered it (the queue then
          // refuses it): a fresh ts keeps "a checkpoint at or above it writes this keystore".
          Timestamp push_ts = req->entry.ts;
          if (push_ts <= engine_.push_queue().stable() ||
              push_ts <= engine_.push_queue().last_push_ts()) {
            push_ts = next_ts();
          }
          Status pushed = engine_.push_keystore(push_ts);
          if (!pushed.is_ok()) {
            env_.log().error(kComponent, 41012, "keystore push refused",
                             {{"error", pushed}, {"ts", push_ts}});
          }
          applied_ts_ = std::max(applied_ts_, push_ts);
          if (auto d = engine_.keystore().newest_dek(kLogTable.value)) log_dek_ = *d;
        }
      } else {
        stats_.heartbeats++;
      }
      if (req->entry.kind != LogEntryKind::kHeartbeat)
        applied_ts_ = std::max(applied_ts_, req->entry.ts);
      applied_lsn_ = req->lsn;
      if (req->entry.kind != LogEntryKind::kHeartbeat) last_entry_lsn_ = req->lsn;
      finish(*req, Status(), req->entry.ts);
    }
    co_return;
  }
  if (st.code() == Code::kFenced) {
    fenced_ = true;
    stopped_why_ = Status(st).at("commit");
    env_.log().warn(kComponent, 41013, "a newer primary exists; stepping down", {{"error", st}});
    for (auto& req : sealed) finish(*req, stopped_why_, Timestamp());
    stop();
    co_return;
  }
  // The group is in doubt: the abandon below or a later success decides it.
  stats_.groups_abandoned++;
  Status rec = co_await recover_chain(options_.write_timeout);
  Status why =
      rec.is_ok()
          ? Status(Code::kUnavailable,
                   fmt::format("write not committed: abandoned after retries ({})", st.to_string()))
          : Status(Code::kUnavailable,
                   fmt::format("write outcome unknown: the log could not be reached ({})",
                               st.to_string()));
  why.at("commit");
  env_.log().warn(kComponent, 41014, "commit group failed", {{"error", st}, {"recover", rec}});
  for (auto& req : sealed) {
    stats_.batches_failed++;
    finish(*req, why, Timestamp());
  }
}

Task<Status> Primary::write_group(std::vector<Record> records,
                                  std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1) {
  auto ack_w1 = [w1]() {
    for (auto& req : *w1) {
      if (!req->finished) {
        req->finished = true;
        req->ts = req->entry.ts;
        req->done.set();
      }
    }
  };
  // Built outside the co_await: g++ 12 destroys temporaries in a co_await expression twice.
  std::function<void()> on_first_ack;
  if (!w1->empty()) on_first_ack = ack_w1;
  const Deadline deadline = env_.executor().deadline_after(options_.write_timeout);
  Status st = co_await writer_.write(std::move(records), deadline, std::move(on_first_ack));
  for (int attempt = 1;
       !st.is_ok() && st.code() != Code::kFenced && attempt < options_.write_attempts_max;
       attempt++) {
    stats_.group_retries++;
    env_.log().info(kComponent, 41015, "commit group not durable yet; re-sending the same records",
                    {{"attempt", attempt}, {"error", st}});
    if (!(co_await env_.executor().sleep(options_.write_retry_backoff)).is_ok())
      co_return cancelled("stopping");
    st = co_await writer_.resend(env_.executor().deadline_after(options_.write_timeout));
  }
  if (st.is_ok()) ack_w1();
  co_return st;
}

Task<Status> Primary::recover_chain(Nanos timeout) {
  Status rec = co_await writer_.recover(env_.executor().deadline_after(timeout));
  if (!rec.is_ok()) co_return rec;
  co_await write_chain_marker();
  co_return rec;  // a failed marker leaves the writer needing recovery: the next user redoes it
}

Task<Status> Primary::write_chain_marker() {
  // The first record after an abandon point is a LOG record naming it: a standby that
  // fetched abandoned LOG records sees the chain skip them before any commit point could
  // cover them (pages and checkpoint records are invisible to its log reads).
  DataKey* dek = engine_.key_ring().find(log_dek_);
  if (dek == nullptr)
    co_return Status(Code::kNotFound, "the log DEK is not in the key ring").at("chain_marker");
  LogEntry hb;
  hb.kind = LogEntryKind::kHeartbeat;
  hb.ts = last_ts_.is_zero() ? next_ts() : last_ts_;
  auto record = seal_log_record(hb, *dek, writer_.allocate(), writer_.client().term(), *random_);
  if (!record.is_ok()) co_return record.status();
  record->backlink_lsn = writer_.durable_lsn();
  std::vector<Record> one;
  one.push_back(std::move(record).value());
  const Deadline deadline = env_.executor().deadline_after(options_.write_timeout);
  Status st = co_await writer_.write(std::move(one), deadline);
  if (st.is_ok()) {
    stats_.heartbeats++;
  } else {
    env_.log().info(kComponent, 41017, "chain marker after recovery not durable yet",
                    {{"error", st}});
  }
  co_return st;
}

// ---- Reads ----------------------------------------------------------------------------

Task<Result<std::optional<std::string>>> Primary::get(TableId table, std::string key,
                                                      std::optional<Timestamp> ts) {
  co_return co_await engine_.get(table, std::move(key), ts.value_or(applied_ts_));
}

Task<Result<std::vector<std::pair<std::string, std::string>>>> Primary::scan(
    TableId table, std::string lo, std::string hi, size_t limit, std::optional<Timestamp> ts) {
  co_return co_await engine_.scan(table, std::move(lo), std::move(hi), ts.value_or(applied_ts_),
                                  limit);
}

// ---- Checkpoints ------------------------------------------------------------------------

void Primary::prompt_checkpoint() {
  checkpoint_prompt_.set();
}

Task<Result<CheckpointInfo>> Primary::checkpoint_now() {
  Result<CheckpointInfo> r = co_await checkpoint_locked();
  if (r.is_ok()) co_await after_checkpoint(*r);
  co_return r;
}

Task<Result<CheckpointInfo>> Primary::checkpoint_locked() {
  Status locked = co_await writer_mu_.lock(env_.executor().deadline_after(options_.io_timeout));
  if (!locked.is_ok()) co_return busy("log writer held too long").at("checkpoint");
  MutexGuard guard(writer_mu_);
  const Timestamp ts = applied_ts_;
  const Lsn log_lsn = applied_lsn_;
  std::optional<PushEntry> due = engine_.push_queue().select(ts);
  const bool keys_due = due && due->keystore->version() > engine_.checkpoint_keystore().version;
  if (!engine_.installed_checkpoint_lsn().is_zero() && ts == engine_.checkpoint_ts() &&
      engine_.ingest_bytes() == 0 && !keys_due) {
    // Nothing new since the last checkpoint.
    CheckpointInfo same;
    same.completion_lsn = engine_.installed_checkpoint_lsn();
    same.checkpoint_ts = ts;
    same.keystore_version = engine_.checkpoint_keystore().version;
    co_return same;
  }
  if (writer_.needs_recovery()) {
    Status rec = co_await recover_chain(options_.io_timeout);
    if (!rec.is_ok() || writer_.needs_recovery()) {
      stats_.checkpoint_failures++;
      co_return Status(rec.is_ok() ? unavailable("log chain marker not durable") : rec)
          .at("checkpoint:recover");
    }
  }
  auto r = co_await engine_.checkpoint(writer_, ts, log_lsn);
  if (!r.is_ok() && !writer_.needs_recovery()) {
    // A failed step was abandoned by the engine: mark the chain with a LOG record now.
    co_await write_chain_marker();
  }
  if (r.is_ok()) {
    stats_.checkpoints++;
    // Standbys install it once a commit point covers it: the next heartbeat publishes one.
    last_entry_lsn_ = std::max(last_entry_lsn_, r->completion_lsn);
  } else {
    stats_.checkpoint_failures++;
    env_.log().warn(kComponent, 41020, "checkpoint failed; will retry",
                    {{"error", r.status()}, {"ts", ts}});
  }
  room_changed_.notify_all();  // ingest was pruned
  co_return r;
}

Task<void> Primary::after_checkpoint(const CheckpointInfo& info) {
  if (!retained_.empty() && retained_.back().completion_lsn == info.completion_lsn) co_return;
  const MonoTime now = env_.executor().now();
  if (!retained_.empty()) retained_.back().superseded_at = now;
  retained_.push_back(Retained{MonoTime::never(), info.completion_lsn, engine_.checkpoint_log_lsn(),
                               engine_.checkpoint_keystore_snapshot()});
  // Keep the last two, and every checkpoint superseded less than retention_min_age ago
  // (bounded, in case checkpoints come very fast).
  constexpr size_t kRetainedMax = 4096;
  while (retained_.size() > 2 &&
         (retained_.size() > kRetainedMax ||
          retained_.front().superseded_at + options_.retention_min_age <= now)) {
    retained_.pop_front();
  }
  if (retained_.size() < 2) co_return;
  const Retained& oldest = retained_.front();
  if (!oldest.log_lsn.is_zero()) {
    Status st = co_await writer_.client().set_retention(
        oldest.log_lsn, env_.executor().deadline_after(options_.io_timeout));
    if (!st.is_ok()) {
      env_.log().info(kComponent, 41021, "retention not moved yet",
                      {{"error", st}, {"lsn", oldest.log_lsn}});
    }
  }
  const uint64_t before_key_ops = engine_.keystore().version();
  if (oldest.keystore) {
    const uint64_t before = engine_.keystore().version();
    Status st = co_await key_op(engine_.destroy_retired_keks(oldest.keystore));
    if (st.is_ok()) stats_.keks_destroyed += engine_.keystore().version() - before;
  }
  const uint64_t before = engine_.keystore().version();
  Status st = co_await key_op(engine_.renew_worn_deks());
  if (st.is_ok()) stats_.dek_renewals += engine_.keystore().version() - before;
  // Those changes made the checkpoint just written stale for every standby that applies
  // them: a prompt checkpoint carries the current keystore (under policy skip a standby
  // would otherwise wait for the next timer or write).
  if (engine_.keystore().version() != before_key_ops && unlogged_.empty()) prompt_checkpoint();
}

Task<void> Primary::checkpoint_loop() {
  while (running_) {
    Deadline wake = options_.checkpoint_interval.count() > 0
                        ? env_.executor().deadline_after(options_.checkpoint_interval)
                        : Deadline::never();
    Status st = co_await checkpoint_prompt_.wait(wake);
    if (st.code() == Code::kCancelled || !running_) co_return;
    checkpoint_prompt_.reset();
    co_await checkpoint_now();
  }
}

Task<Status> Primary::seal_log() {
  stats_.seals++;
  Status st = co_await writer_.client().seal(env_.executor().deadline_after(options_.io_timeout));
  // A burst of seals gives one checkpoint: the prompt is latched, and the checkpointer
  // waits a moment for the burst to end.
  if (!checkpoint_prompt_.is_set() && !seal_prompt_pending_) {
    stats_.seal_prompted_checkpoints++;
    seal_prompt_pending_ = true;
    Nanos delay = options_.seal_checkpoint_delay;
    auto prompt = [](Env* env, Event* ev, bool* pending, Nanos d) -> Task<void> {
      if ((co_await env->executor().sleep(d)).is_ok()) {
        *pending = false;
        ev->set();
      }
    };
    tasks_.push_back(env_.executor().spawn(
        "seal-checkpoint", prompt(&env_, &checkpoint_prompt_, &seal_prompt_pending_, delay)));
    std::erase_if(tasks_, [this](TaskId t) { return env_.executor().is_done(t); });
  }
  co_return st;
}

Task<void> Primary::heartbeat_loop() {
  while (running_) {
    if (!(co_await env_.executor().sleep(options_.heartbeat_interval)).is_ok()) co_return;
    if (!queue_.empty() || last_entry_lsn_ <= published_commit_ ||
        writer_.durable_lsn() < last_entry_lsn_)
      continue;
    auto req = std::make_shared<Request>(env_.executor().scheduler());
    req->entry.kind = LogEntryKind::kHeartbeat;
    queue_.push_back(req);
    queue_changed_.notify_one();
    co_await req->done.wait();
  }
}

// ---- Keys -------------------------------------------------------------------------------

Task<Status> Primary::log_key_changes(std::vector<KeystoreChange> changes, uint64_t base_version,
                                      Timestamp ts, bool rotation) {
  std::vector<std::shared_ptr<Request>> chunks;
  for (size_t i = 0; i < changes.size(); i += kKeyChangesPerEntry) {
    auto req = std::make_shared<Request>(env_.executor().scheduler());
    req->entry.kind = LogEntryKind::kKeystore;
    req->entry.ts = ts;
    req->entry.keystore_base_version = base_version + i;
    const size_t end = std::min(changes.size(), i + kKeyChangesPerEntry);
    req->entry.changes.assign(changes.begin() + static_cast<std::ptrdiff_t>(i),
                              changes.begin() + static_cast<std::ptrdiff_t>(end));
    req->preassigned_ts = true;
    chunks.push_back(std::move(req));
  }
  if (chunks.empty()) co_return Status();
  chunks.back()->push_after = true;
  chunks.back()->rotation = rotation;
  for (auto& req : chunks) {
    const uint64_t base = req->entry.keystore_base_version;
    auto r = co_await submit(req, Deadline::never());
    if (!r.is_ok()) {
      // The engine holds these changes; the next key operation logs them first.
      std::vector<KeystoreChange> rest;
      for (auto& c : chunks) {
        if (c->entry.keystore_base_version >= base) {
          rest.insert(rest.end(), c->entry.changes.begin(), c->entry.changes.end());
        }
      }
      if (unlogged_.empty()) {
        unlogged_base_ = base;
        unlogged_ts_ = ts;
      }
      unlogged_.insert(unlogged_.end(), rest.begin(), rest.end());
      co_return Status(r.status()).at("log_key_changes").with("keystore_version", base);
    }
  }
  co_return Status();
}

Task<Status> Primary::log_pending_keys() {
  if (unlogged_.empty()) co_return Status();
  std::vector<KeystoreChange> pending = std::exchange(unlogged_, {});
  co_return co_await log_key_changes(std::move(pending), unlogged_base_, unlogged_ts_);
}

Task<Status> Primary::key_op(Task<Result<std::vector<KeystoreChange>>> op) {
  QUIRE_CO_RETURN_IF_ERROR(
      co_await key_mu_.lock(env_.executor().deadline_after(options_.io_timeout)));
  MutexGuard guard(key_mu_);
  QUIRE_CO_RETURN_IF_ERROR(co_await log_pending_keys());
  const uint64_t base = engine_.keystore().version();
  auto changes = co_await std::move(op);
  if (!changes.is_ok()) co_return changes.status();
  if (changes->empty()) co_return Status();
  co_return co_await log_key_changes(std::move(changes).value(), base, next_ts());
}

Task<Result<uint32_t>> Primary::rotate_active_kek() {
  Nanos gap = options_.rotation_gap_min;
  if (options_.rotation_gap_max > options_.rotation_gap_min) {
    gap = random_->duration(options_.rotation_gap_min, options_.rotation_gap_max);
  }
  co_return co_await rotate_active_kek(gap);
}

Task<Result<uint32_t>> Primary::rotate_active_kek(Nanos gap) {
  if (!running_) co_return unavailable("primary is not running").at("rotate_active_kek");
  QUIRE_CO_RETURN_IF_ERROR(
      co_await key_mu_.lock(env_.executor().deadline_after(options_.io_timeout)));
  MutexGuard guard(key_mu_);
  QUIRE_CO_RETURN_IF_ERROR(co_await log_pending_keys());
  // T1: KEK vN in the in-memory keystore, DEKs rewrapped, a log timestamp reserved.
  const uint64_t base = engine_.keystore().version();
  auto changes = co_await engine_.rotate_kek();
  if (!changes.is_ok()) co_return Status(changes.status()).at("rotate_active_kek:T1");
  const uint32_t kek = engine_.keystore().active_kek().value_or(0);
  const Timestamp ts = next_ts();
  env_.log().info(kComponent, 41030,
                  "rotateActiveKEK T1: KEK committed to the in-memory keystore; log ts reserved",
                  {{"kek_version", kek},
                   {"reserved_ts", ts},
                   {"keystore_version", engine_.keystore().version()},
                   {"gap_ms", std::chrono::duration_cast<std::chrono::milliseconds>(gap).count()}});
  if (on_rotation_point) on_rotation_point(RotationPoint::kAfterT1);
  if (gap.count() > 0) {
    Status slept = co_await env_.executor().sleep(gap);
    if (!slept.is_ok()) co_return slept;
  }
  // T2: the change into the log at the reserved ts, then to the checkpoint queue.
  std::vector<KeystoreChange> list = std::move(changes).value();
  Status st = co_await log_key_changes(std::move(list), base, ts, true);
  if (!st.is_ok()) co_return st.at("rotate_active_kek:T2");
  stats_.kek_rotations++;
  env_.log().info(
      kComponent, 41031, "rotateActiveKEK T2: keystore change logged and pushed",
      {{"kek_version", kek}, {"ts", ts}, {"keystore_version", engine_.keystore().version()}});
  if (on_rotation_point) on_rotation_point(RotationPoint::kAfterPush);
  co_return kek;
}

Task<Status> Primary::rotate_cmk() {
  if (!running_) co_return unavailable("primary is not running").at("rotate_cmk");
  Status st = co_await key_op(engine_.rotate_cmk());
  if (st.is_ok()) stats_.cmk_rotations++;
  co_return st;
}

}  // namespace quire
