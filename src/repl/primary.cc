#include "repl/primary.h"

#include "repl/takeover.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "engine/checkpoint_format.h"

namespace quire {

namespace {
constexpr const char* kComponent = "primary";
// Keystore changes per log entry (a rotation rewraps every DEK).
constexpr size_t kEntryKeyChangesMax = 1000;
constexpr int kBootstrapAttemptsMax = 20;
// What one write of a batch counts for in the commit queue, besides its key and value.
constexpr size_t kWriteOverheadBytes = 16;
// Retention keeps the last two checkpoints loadable, and at most this many (in case
// checkpoints come faster than retention_min_age).
constexpr size_t kRetainedCheckpointsMin = 2;
constexpr size_t kRetainedCheckpointsMax = 4096;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

size_t batch_bytes(const std::vector<LogWrite>& batch) {
  size_t n = 0;
  for (const LogWrite& w : batch) {
    n += kWriteOverheadBytes + w.key.size() + (w.value ? w.value->size() : 0);
  }
  return n;
}
}  // namespace

std::string_view primary_state_name(PrimaryState s) {
  switch (s) {
    case PrimaryState::kStopped:
      return "STOPPED";
    case PrimaryState::kServing:
      return "SERVING";
    case PrimaryState::kChainInDoubt:
      return "CHAIN_IN_DOUBT";
    case PrimaryState::kFenced:
      return "FENCED";
    case PrimaryState::kDeposed:
      return "DEPOSED";
  }
  return "UNKNOWN";
}

struct Primary::Request {
  explicit Request(Scheduler& s) : done(s) {}
  LogEntry entry;  // a keystore entry carries the ts T1 reserved; the commit task sets others
  WriteConcern concern = WriteConcern::kMajority;
  size_t bytes = 0;
  bool rotation = false;                 // a KEK rotation's T2 (for the test hook)
  bool push_after = false;               // push the keystore once durable (last chunk of a key op)
  bool finished = false;                 // answered: `done` is set and nothing answers it again
  MonoTime give_up = MonoTime::never();  // a queued write fails past this if never sent
  Lsn lsn;
  Status status;
  Timestamp ts;
  Event done;
};

// A group on its way to the page servers; commit_group settles it once `done`.
struct Primary::GroupInFlight {
  std::vector<std::shared_ptr<Request>> requests;  // in LSN order
  size_t records = 0;
  bool key_change = false;  // it carries a keystore entry
  TaskId task{};            // its write (write_in_flight)
  MonoTime sent;
  bool done = false;
  Status status;  // write_group's, once done
};

// A group sealed as LOG records, ready for the writer.
struct Primary::SealedGroup {
  std::vector<Record> records;
  // In LSN order; write batches merged into one record share its LSN.
  std::vector<std::shared_ptr<Request>> requests;
  // Write concern one: acknowledged on the first page server's sync.
  std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1 =
      std::make_shared<std::vector<std::shared_ptr<Request>>>();
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

// ---- The state's transitions ----------------------------------------------------------

void Primary::on_started() {
  QUIRE_ASSERT(state_ == PrimaryState::kStopped);
  state_ = writer_.needs_recovery() ? PrimaryState::kChainInDoubt : PrimaryState::kServing;
}

void Primary::on_log_write_failed() {
  QUIRE_ASSERT(state_ == PrimaryState::kServing);
  state_ = PrimaryState::kChainInDoubt;
}

void Primary::on_chain_whole() {
  QUIRE_ASSERT(state_ == PrimaryState::kChainInDoubt);
  state_ = PrimaryState::kServing;
}

void Primary::on_fenced(Status why) {
  QUIRE_ASSERT(!ended());
  state_ = PrimaryState::kFenced;
  stopped_why_ = std::move(why);
  if (on_ended) on_ended(stopped_why_);
}

void Primary::on_deposed(Status why) {
  QUIRE_ASSERT(!ended());
  state_ = PrimaryState::kDeposed;
  stopped_why_ = std::move(why);
  if (on_ended) on_ended(stopped_why_);
}

bool Primary::lease_valid() const {
  return !may_acknowledge || may_acknowledge();
}

void Primary::on_stopped() {
  QUIRE_ASSERT(running());
  state_ = PrimaryState::kStopped;
}

void Primary::follow_writer() {
  if (!running()) return;
  const bool in_doubt = writer_.needs_recovery();
  if (in_doubt && state_ == PrimaryState::kServing) on_log_write_failed();
  if (!in_doubt && state_ == PrimaryState::kChainInDoubt) on_chain_whole();
  QUIRE_ASSERT(in_doubt == (state_ == PrimaryState::kChainInDoubt));
}

bool Primary::chain_in_doubt() const {
  // An operation still finishing after stop() or a fence has no state to ask: the writer
  // alone knows.
  if (!running()) return writer_.needs_recovery();
  QUIRE_ASSERT(writer_.needs_recovery() == (state_ == PrimaryState::kChainInDoubt));
  return state_ == PrimaryState::kChainInDoubt;
}

// ---- Timestamps -----------------------------------------------------------------------

Timestamp Primary::next_ts() {
  const int64_t ns = env_.clock().wall_now_ns();
  const uint64_t secs = ns <= 0 ? 0
                                : std::min<uint64_t>(static_cast<uint64_t>(ns / kNanosPerSecond),
                                                     std::numeric_limits<uint32_t>::max());
  Timestamp candidate = Timestamp::from_parts(static_cast<uint32_t>(secs), 0);
  const Timestamp before = last_ts_;
  last_ts_ = std::max(Timestamp(last_ts_.value + 1), candidate);
  QUIRE_ASSERT(last_ts_ > before);
  return last_ts_;
}

Timestamp Primary::heartbeat_ts() {
  return last_ts_.is_zero() ? next_ts() : last_ts_;
}

bool Primary::push_ts_free(Timestamp ts) const {
  return ts > engine_.push_queue().stable() && ts > engine_.push_queue().last_push_ts();
}

// ---- Start and stop -------------------------------------------------------------------

Task<Status> Primary::start() {
  const CallInFlight in_flight(calls_in_flight_);
  if (running()) co_return Status();
  if (ended()) co_return stopped_why_;
  on_started();
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
      if (st.is_ok() || !running()) break;
      co_await env_.executor().sleep(options_.write_retry_backoff);
    }
    if (!st.is_ok()) {
      stop();
      co_return std::move(st).at("primary:first_checkpoint");
    }
  }
  if (!running()) {
    // Stepped down while it bootstrapped: spawn nothing on a halted primary.
    stop();
    co_return unavailable("stepped down while starting").at("primary:start");
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

Task<Status> Primary::take_over(TakeOverPoint at) {
  QUIRE_ASSERT(state_ == PrimaryState::kStopped && tasks_.empty());  // a new Primary
  QUIRE_ASSERT(engine_.keystore().version() > 0);  // a database exists: nothing to bootstrap
  last_ts_ = std::max(last_ts_, at.applied_ts);
  applied_ts_ = std::max(applied_ts_, at.applied_ts);
  applied_lsn_ = std::max(applied_lsn_, at.applied_lsn);
  published_commit_ = std::max(published_commit_, at.commit_point);
  last_entry_lsn_ = std::max(last_entry_lsn_, at.applied_lsn);
  // The checkpoint this node installed is retained as if this primary had written it: the
  // next one supersedes it, and retention passes it only retention_min_age later. Standbys
  // and page servers catching up may still read it (or a newer one of the old primary's,
  // which retention at this older point also keeps).
  if (!engine_.installed_checkpoint_lsn().is_zero() && retained_.empty()) {
    retain_installed_checkpoint(engine_.installed_checkpoint_lsn());
  }
  // Checkpoints build on the latest one (install_latest_checkpoint). Installed here, before
  // this primary serves, when the page service answers: no key change of this primary can
  // be half done yet, and the keystore push below then covers what the install leaves.
  // Otherwise the first checkpoint tries again.
  on_latest_checkpoint_ = false;
  co_await install_latest_checkpoint();
  if (stop_requested_) {
    // Retired by its node (deposed, or stepping down) while the install ran: it was never
    // started, so starting it now would leave a primary nobody stops, writing with its
    // node's page-service client under a later term (quire chaos kek seed 94).
    co_return unavailable("stopped while taking over").at("take_over");
  }
  // The keystore changes this node applied from the log as a standby (all at or below the
  // applied ts) were pushed by the old primary, not here: push the keystore now, so this
  // primary's first checkpoint (at or above the applied ts) references it. Without it that
  // checkpoint named the installed checkpoint's older keystore, and a standby loading it
  // could not apply the log after it (KeystoreConflict, re-syncing forever; quire chaos kek
  // seed 158).
  if (engine_.keystore().version() > engine_.checkpoint_keystore().version &&
      engine_.keystore().version() > engine_.push_queue().durable_version()) {
    Status pushed = engine_.push_keystore(applied_ts_);
    if (!pushed.is_ok()) co_return std::move(pushed).at("take_over:push_keystore");
  }
  env_.log().info(kComponent, 41040, "taking over",
                  {{"term", writer_.client().term()},
                   {"applied_ts", applied_ts_},
                   {"applied_lsn", applied_lsn_},
                   {"commit_point", published_commit_},
                   {"chain_head", writer_.chain_head()}});
  co_return co_await start();
}

bool Primary::quiescent() const {
  auto done = [this](TaskId t) { return env_.executor().is_done(t); };
  return !running() && calls_in_flight_ == 0 && std::all_of(tasks_.begin(), tasks_.end(), done) &&
         std::all_of(retired_tasks_.begin(), retired_tasks_.end(), done);
}

void Primary::stop() {
  // Also before it runs: a take-over still installing the latest checkpoint must not start
  // a primary its node has already retired.
  stop_requested_ = true;
  if (!running() && tasks_.empty()) return;
  if (running()) on_stopped();
  halt();
}

void Primary::halt() {
  QUIRE_ASSERT(!running());
  for (TaskId t : tasks_) env_.executor().cancel(t);
  std::erase_if(retired_tasks_, [this](TaskId t) { return env_.executor().is_done(t); });
  retired_tasks_.insert(retired_tasks_.end(), tasks_.begin(), tasks_.end());
  tasks_.clear();
  assert_queue_bytes();
  Status why = ended() ? stopped_why_ : unavailable("primary stopped");
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

void Primary::queue_push(std::shared_ptr<Request> req) {
  queue_bytes_ += req->bytes;
  queue_.push_back(std::move(req));
  queue_changed_.notify_one();
}

void Primary::queue_release(const Request& req) {
  QUIRE_ASSERT(queue_bytes_ >= req.bytes);
  queue_bytes_ -= req.bytes;
}

void Primary::assert_queue_bytes() const {
  size_t sum = 0;
  for (const auto& req : queue_) sum += req->bytes;
  QUIRE_ASSERT(sum == queue_bytes_);
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
  const CallInFlight in_flight(calls_in_flight_);
  Result<QueuedWrite> queued = co_await enqueue_write(std::move(batch), concern);
  if (!queued.is_ok()) co_return queued.status();
  co_return co_await queued->outcome();
}

Task<Result<Primary::QueuedWrite>> Primary::enqueue_write(std::vector<LogWrite> batch,
                                                          WriteConcern concern) {
  const CallInFlight in_flight(calls_in_flight_);
  const Deadline admission = env_.executor().deadline_after(options_.admission_wait_max);
  if (ended()) co_return stopped_why_;
  if (!running()) co_return unavailable("primary is not running").at("write");
  if (!lease_valid()) {
    // Nothing queued could be acknowledged; the commit task deposes the primary.
    co_return Status(Code::kUnavailable,
                     "this node's primary lease is not valid; retry on the primary")
        .at("write");
  }
  // A batch that writes a key twice means its last write (one commit ts per batch).
  if (batch.size() > 1) {
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
  Status queued = co_await queue_when_room(req, admission);
  if (!queued.is_ok()) co_return queued;
  co_return QueuedWrite(std::move(req), &calls_in_flight_);
}

Primary::QueuedWrite::QueuedWrite(std::shared_ptr<Request> req, int* calls_in_flight)
    : req_(std::move(req)), calls_in_flight_(calls_in_flight) {
  ++*calls_in_flight_;
}

Primary::QueuedWrite::QueuedWrite(QueuedWrite&& o) noexcept
    : req_(std::move(o.req_)), calls_in_flight_(std::exchange(o.calls_in_flight_, nullptr)) {}

Primary::QueuedWrite& Primary::QueuedWrite::operator=(QueuedWrite&& o) noexcept {
  if (this != &o) {
    if (calls_in_flight_ != nullptr) --*calls_in_flight_;
    req_ = std::move(o.req_);
    calls_in_flight_ = std::exchange(o.calls_in_flight_, nullptr);
  }
  return *this;
}

Primary::QueuedWrite::~QueuedWrite() {
  if (calls_in_flight_ != nullptr) --*calls_in_flight_;
}

Task<Result<Timestamp>> Primary::QueuedWrite::outcome() {
  QUIRE_ASSERT(req_ != nullptr);
  co_return co_await acknowledged(req_);
}

Task<Result<Timestamp>> Primary::submit(std::shared_ptr<Request> req, Deadline admission) {
  Status queued = co_await queue_when_room(req, admission);
  if (!queued.is_ok()) co_return queued;
  co_return co_await acknowledged(std::move(req));
}

Task<Result<Timestamp>> Primary::acknowledged(std::shared_ptr<Request> req) {
  Status st = co_await req->done.wait();
  if (!st.is_ok()) co_return st;
  if (!req->status.is_ok()) co_return req->status;
  co_return req->ts;
}

Task<Status> Primary::queue_when_room(const std::shared_ptr<Request>& req, Deadline admission) {
  const bool is_key_entry = req->entry.kind != LogEntryKind::kWrites;
  bool waited = false;
  while (!is_key_entry && !has_room(req->bytes)) {
    if (ended()) co_return stopped_why_;
    if (!running()) co_return unavailable("primary is not running").at("write");
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
  if (!running()) co_return unavailable("primary is not running").at("write");
  if (!is_key_entry) {
    // As long as one group's attempts: a write never sent by then fails "not committed".
    req->give_up = env_.executor().now() + (options_.write_timeout + options_.write_retry_backoff) *
                                               options_.write_attempts_max;
  }
  queue_push(req);
  co_return Status();
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
  while (running()) {
    if (queue_.empty()) {
      Status st = co_await queue_changed_.wait();
      if (st.code() == Code::kCancelled) co_return;
      continue;
    }
    if (should_gather()) {
      Status st = co_await queue_changed_.wait(gather_until_);
      if (st.code() == Code::kCancelled) co_return;
      continue;
    }
    co_await commit_group();
  }
}

bool Primary::should_gather() {
  if (gather_bound_ <= Nanos::zero() || !in_flight_.empty() || gather_skip_ > 0 ||
      queue_.size() >= gather_target_) {
    return false;
  }
  const MonoTime now = env_.executor().now();
  if (gather_until_ == MonoTime{}) {
    gather_began_ = now;
    gather_until_ = now + gather_bound_;
    gather_queued_at_start_ = queue_.size();
  }
  if (now < gather_until_) return true;
  gather_target_ = 0;  // this gather is over: the group leaves with what it has
  stats_.group_gathers_timed_out++;
  // Not one of the clients waited for wrote again in time: they do not write again once
  // answered (a paced load), so the next groups do not wait for them. (Under load, replies
  // and the next requests can take longer than the bound: some come back late, and a wait
  // that saw some come back still pays.)
  if (queue_.size() <= gather_queued_at_start_) {
    stats_.group_gather_backoffs++;
    gather_skip_ = options_.group_gather_skip;
  }
  return false;
}

Task<void> Primary::commit_group() {
  const MonoTime asked = env_.executor().now();
  Status locked = co_await writer_mu_.lock();
  if (!locked.is_ok()) co_return;
  MutexGuard guard(writer_mu_);
  if (!(co_await settle_stopped_run())) co_return;
  if (chain_in_doubt()) {
    const bool recovered = co_await recover_before_group();
    if (!recovered) co_return;
  }
  if (queue_.empty()) co_return;
  stats_.group_writer_wait += env_.executor().now() - asked;
  bool sent_any = false;
  while (true) {
    // A durable group settled below leaves in_flight_ empty: the next one may gather
    // first (in commit_loop, without the writer).
    while (!(in_flight_.empty() && should_gather()) && may_send_group(sent_any)) {
      std::shared_ptr<GroupInFlight> sent = send_group();
      sent_any = true;
      if (sent == nullptr) continue;
      if (!in_flight_.empty()) stats_.groups_pipelined++;
      in_flight_.push_back(std::move(sent));
    }
    settle_durable_groups();
    if (in_flight_.empty()) co_return;
    if (!in_flight_.front()->done) {
      // A group's write ending and a new queued write both notify.
      Status woke = co_await queue_changed_.wait();
      if (woke.code() != Code::kCancelled) continue;
      // Stopping (halt() cancelled this task and the writes): each write task settles its
      // group as it ends, as settle_durable_groups does for a stopped primary.
      settle_durable_groups();
      co_return;
    }
    // The front group ended and settle_durable_groups left it: fenced, failed, or durable
    // after the lease ran out.
    const Status st = in_flight_.front()->status;
    if (st.code() == Code::kFenced || st.is_ok()) {
      std::shared_ptr<GroupInFlight> group = std::move(in_flight_.front());
      in_flight_.pop_front();
      if (st.is_ok()) {
        follow_writer();
        on_group_deposed(group->requests);
      } else {
        on_group_fenced(st, group->requests);
      }
      fail_in_flight(stopped_why_);
      co_return;
    }
    co_await on_front_group_failed();
    co_return;
  }
}

Task<void> Primary::on_front_group_failed() {
  // Every later group chains on the front one: none can become part of the log. The failed
  // group stays at the front meanwhile, so no write task settles a group behind it. Their
  // writes stop and end first (a recovery must not run under a write still waiting for its
  // quorum); one that learned of a newer primary decides the outcome. Held apart from
  // in_flight_, which a stop clears.
  const std::vector<std::shared_ptr<GroupInFlight>> groups(in_flight_.begin(), in_flight_.end());
  QUIRE_ASSERT(!groups.empty() && groups.front()->done && !groups.front()->status.is_ok());
  Status st = groups.front()->status;
  for (size_t i = 1; i < groups.size(); i++) {
    if (!groups[i]->done) env_.executor().cancel(groups[i]->task);
  }
  for (size_t i = 1; i < groups.size(); i++) {
    while (!groups[i]->done) {
      if ((co_await queue_changed_.wait()).code() == Code::kCancelled) break;
    }
    if (groups[i]->done && groups[i]->status.code() == Code::kFenced) st = groups[i]->status;
  }
  std::vector<std::shared_ptr<Request>> all;
  for (const auto& g : groups) all.insert(all.end(), g->requests.begin(), g->requests.end());
  in_flight_.clear();
  if (st.code() == Code::kFenced) {
    if (!ended()) on_group_fenced(st, all);
    co_return;
  }
  stats_.groups_abandoned += groups.size() - 1;  // on_group_failed counts the front one
  co_await on_group_failed(st, all);
}

void Primary::settle_durable_groups() {
  while (!in_flight_.empty() && in_flight_.front()->done) {
    if (in_flight_.front()->status.is_ok()) {
      follow_writer();
      if (lease_valid()) {
        std::shared_ptr<GroupInFlight> group = std::move(in_flight_.front());
        in_flight_.pop_front();
        stats_.group_records += group->records;
        const Nanos durable_wait = env_.executor().now() - group->sent;
        stats_.group_durable_wait += durable_wait;
        gather_bound_ = std::min(options_.group_gather_max, durable_wait / 2);
        // Its clients' writes (a heartbeat or a key change has no client to write again).
        gather_target_ = queue_.size() +
                         static_cast<size_t>(std::count_if(
                             group->requests.begin(), group->requests.end(),
                             [](const auto& r) { return r->entry.kind == LogEntryKind::kWrites; }));
        on_group_durable(group->requests);
        continue;
      }
    }
    // Failed, fenced, or durable after the lease ran out: the commit task decides, while it
    // runs. A stopped primary's commit task is gone: nothing at or behind this group can be
    // acknowledged any more.
    if (running()) break;
    fail_in_flight(ended() ? stopped_why_
                           : unavailable("primary stopped; write outcome unknown").at("commit"));
  }
  note_sync_speed();
  publish_commit_point();
}

void Primary::note_sync_speed() {
  const Nanos sync = writer_.client().quorum_sync();
  stats_.quorum_sync = sync;
  // Hysteresis: a disk near the threshold does not flip the choice at every write.
  const bool slow = sync >= (slow_sync_ ? options_.slow_sync / 2 : options_.slow_sync);
  const size_t before = pipeline_min();
  slow_sync_ = slow;
  // Logged and counted only where the choice changes the threshold (a fixed one, as
  // --group-pipeline-min sets, does not).
  if (pipeline_min() != before) {
    stats_.group_pipeline_min_changes++;
    if (std::optional<uint64_t> suppressed = sync_speed_log_.admit(env_.executor().now())) {
      env_.log().info(
          kComponent, 41050,
          slow ? "page servers sync slowly: groups pipeline from fewer queued writes"
               : "page servers sync fast again: groups gather more writes",
          {{"quorum_sync_us", std::chrono::ceil<std::chrono::microseconds>(sync).count()},
           {"group_pipeline_min", pipeline_min()},
           {"suppressed", *suppressed}});
    }
  }
  stats_.group_pipeline_min = pipeline_min();
}

size_t Primary::pipeline_min() const {
  // A slow disk never raises the threshold.
  const size_t fast = options_.group_pipeline_min;
  return std::max<size_t>(slow_sync_ ? std::min(options_.group_pipeline_min_slow_sync, fast) : fast,
                          1);
}

void Primary::publish_commit_point() {
  if (!options_.commit_hints || !running() ||
      applied_lsn_ <= std::max(published_commit_, hinted_commit_))
    return;
  // The commit task sends the next group now, and its records carry the point.
  if (in_flight_.empty() && !queue_.empty() && !writer_mu_.contended()) return;
  hinted_commit_ = applied_lsn_;
  stats_.commit_hints++;
  writer_.client().publish_commit(applied_lsn_);
}

Task<bool> Primary::settle_stopped_run() {
  if (in_flight_.empty()) co_return true;
  // Groups of a run of this primary that stopped before their writes ended (their tasks
  // were cancelled, and end on their own): nothing may be chained after them, nor the
  // chain's state read, until they have; those that ended durable under the lease were
  // acknowledged by their tasks.
  while (
      std::any_of(in_flight_.begin(), in_flight_.end(), [](const auto& g) { return !g->done; })) {
    if ((co_await queue_changed_.wait()).code() == Code::kCancelled) co_return false;
  }
  fail_in_flight(unavailable("primary stopped; write outcome unknown").at("commit"));
  follow_writer();
  co_return true;
}

bool Primary::may_send_group(bool sent_any) const {
  if (!running() || queue_.empty() || writer_.needs_recovery()) return false;
  // A checkpoint waiting for the writer gets it once the groups in flight are settled.
  if (sent_any && writer_mu_.contended()) return false;
  if (in_flight_.empty()) return true;
  // A key change goes alone: the groups after it are sealed once it is applied (with the
  // log DEK it may bring).
  const bool key_change = std::any_of(in_flight_.begin(), in_flight_.end(),
                                      [](const auto& g) { return g->key_change; });
  return in_flight_.size() < options_.groups_in_flight_max && !key_change &&
         queue_.size() >= pipeline_min();
}

std::shared_ptr<Primary::GroupInFlight> Primary::send_group() {
  if (gather_until_ != MonoTime{}) {
    stats_.groups_gathered++;
    stats_.group_gather_wait += env_.executor().now() - gather_began_;
  } else if (gather_skip_ > 0) {
    gather_skip_--;
  }
  gather_target_ = 0;
  gather_began_ = gather_until_ = MonoTime{};
  SealedGroup sealed = seal_group(take_group());
  if (sealed.records.empty()) return nullptr;
  auto group = std::make_shared<GroupInFlight>();
  group->records = sealed.records.size();
  group->sent = env_.executor().now();
  group->key_change =
      std::any_of(sealed.requests.begin(), sealed.requests.end(),
                  [](const auto& req) { return req->entry.kind == LogEntryKind::kKeystore; });
  group->requests = std::move(sealed.requests);
  assert_lsn_order(sealed.records);
  RecordWriter::Chained chained = writer_.chain(std::move(sealed.records));
  // The first attempt leaves now, in this turn: the write task only waits for it.
  const Deadline deadline = env_.executor().deadline_after(options_.write_timeout);
  std::function<void()> on_first_ack;
  if (!sealed.w1->empty()) on_first_ack = [w1 = sealed.w1] { ack_write_concern_one(*w1); };
  ReplicationClient::PendingWrite first =
      writer_.start_send(chained, deadline, std::move(on_first_ack));
  std::erase_if(tasks_, [this](TaskId t) { return env_.executor().is_done(t); });
  group->task = env_.executor().spawn(
      "commit-group",
      write_in_flight(group, std::move(chained), std::move(first), deadline, std::move(sealed.w1)));
  if (!group->task.valid()) {
    // No task for it (the scheduler's bound): the group is in doubt like a failed write,
    // and nothing is chained after it.
    writer_.mark_failed(chained);
    group->done = true;
    group->status = busy("no task for the commit group's write").at("commit");
    return group;
  }
  tasks_.push_back(group->task);
  return group;
}

void Primary::ack_write_concern_one(std::vector<std::shared_ptr<Request>>& w1) {
  for (auto& req : w1) {
    if (!req->finished) {
      req->finished = true;
      req->ts = req->entry.ts;
      req->done.set();
    }
  }
}

Task<void> Primary::write_in_flight(std::shared_ptr<GroupInFlight> group,
                                    RecordWriter::Chained records,
                                    ReplicationClient::PendingWrite first, Deadline deadline,
                                    std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1) {
  group->status = co_await write_group(std::move(records), std::move(first), deadline, w1);
  group->done = true;
  // Acknowledged from here, not one task switch later in the commit task: a write durable
  // at W is answered as soon as the groups before it are.
  settle_durable_groups();
  // The commit task has work only when the front group ended without being settled (a
  // failure for it to handle), or when none is left in flight and writes are queued (it
  // sends the next group). Otherwise it waits, still holding the writer, for the next
  // write (whose queueing wakes it, so the group takes what the acknowledged clients queue
  // meanwhile) or for a checkpoint to ask for the writer (checkpoint_locked).
  if (in_flight_.empty() ? !queue_.empty() : in_flight_.front()->done) queue_changed_.notify_one();
}

void Primary::fail_in_flight(const Status& why) {
  for (auto& group : in_flight_) {
    for (const auto& req : group->requests) {
      if (!req->finished) stats_.batches_failed++;
      finish(*req, why, Timestamp());
    }
  }
  in_flight_.clear();
}

Task<bool> Primary::recover_before_group() {
  Status st = co_await recover_chain(options_.write_timeout);
  if (st.is_ok()) co_return true;
  if (st.code() == Code::kFenced) {
    // A newer primary fenced the page servers: retrying cannot help.
    if (!ended()) on_group_fenced(st, {});
    co_return false;
  }
  env_.log().warn(kComponent, 41010, "log writer cannot recover yet; writes wait", {{"error", st}});
  fail_expired_writes();
  room_changed_.notify_all();
  co_await env_.executor().sleep(options_.write_retry_backoff);
  co_return false;
}

void Primary::fail_expired_writes() {
  const MonoTime now = env_.executor().now();
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->give_up <= now) {
      stats_.batches_failed++;
      queue_release(**it);
      finish(**it,
             Status(Code::kUnavailable, "write not committed: the log could not be reached")
                 .at("commit"),
             Timestamp());
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  assert_queue_bytes();
}

std::vector<std::shared_ptr<Primary::Request>> Primary::take_group() {
  std::vector<std::shared_ptr<Request>> group;
  size_t bytes = 0;
  while (!queue_.empty() && group.size() < options_.group_batches_max &&
         (group.empty() || bytes + queue_.front()->bytes <= options_.group_bytes_max)) {
    bytes += queue_.front()->bytes;
    queue_release(*queue_.front());
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  room_changed_.notify_all();
  QUIRE_ASSERT(group.size() <= options_.group_batches_max);
  QUIRE_ASSERT(group.size() <= 1 || bytes <= options_.group_bytes_max);
  assert_queue_bytes();
  return group;
}

Primary::SealedGroup Primary::seal_group(const std::vector<std::shared_ptr<Request>>& group) {
  SealedGroup out;
  DataKey* dek = engine_.key_ring().find(log_dek_);
  bool worn = false;
  // Write batches in a row share one record (a kBatches entry, log_entry.h) while it stays
  // within kLogBatchesBytesMax and kLogEntryOpsMax: what a group costs the page servers and
  // the standbys per record (framing, indexing, sealing, opening) is then paid once for all
  // of its clients' writes.
  std::vector<std::shared_ptr<Request>> run;
  size_t run_bytes = 0;
  size_t run_ops = 0;
  auto seal_run = [&] {
    if (run.empty()) return;
    if (!seal_record(run, *dek, out)) worn = true;
    run.clear();
    run_bytes = 0;
    run_ops = 0;
  };
  for (const auto& req : group) {
    if (ack_planted_unlogged_batch(*req)) continue;
    assign_commit_ts(*req);
    if (dek == nullptr) {
      finish(*req,
             Status(Code::kNotFound, "the log DEK is not in the key ring")
                 .at("commit")
                 .with("dek_version", log_dek_.version),
             Timestamp());
      continue;
    }
    if (req->entry.kind != LogEntryKind::kWrites) {
      seal_run();
      run.push_back(req);
      seal_run();
      continue;
    }
    const size_t bytes = log_batch_bytes(req->entry);
    const size_t ops = req->entry.writes.size();
    if (run_bytes + bytes > kLogBatchesBytesMax || run_ops + ops > kLogEntryOpsMax) seal_run();
    run.push_back(req);
    run_bytes += bytes;
    run_ops += ops;
  }
  seal_run();
  if (dek != nullptr && dek->wants_new_version()) worn = true;
  if (worn) prompt_checkpoint();  // renewal runs after the next checkpoint
  QUIRE_ASSERT(out.records.size() <= out.requests.size());
  return out;
}

bool Primary::seal_record(const std::vector<std::shared_ptr<Request>>& run, DataKey& dek,
                          SealedGroup& out) {
  const Lsn lsn = writer_.allocate();
  Result<Record> rec = [&] {
    if (run.size() == 1) {
      return seal_log_record(run.front()->entry, dek, lsn, writer_.client().term(), *random_);
    }
    std::vector<const LogEntry*> entries;
    entries.reserve(run.size());
    for (const auto& req : run) entries.push_back(&req->entry);
    return seal_log_batches(entries, dek, lsn, writer_.client().term(), *random_);
  }();
  if (!rec.is_ok()) {
    for (const auto& req : run) finish(*req, Status(rec.status()).at("commit"), Timestamp());
    return rec.code() != Code::kKeyExhausted;
  }
  rec->backlink_lsn = writer_.durable_lsn();  // the commit point (see the header)
  published_commit_ = std::max(published_commit_, rec->backlink_lsn);
  out.records.push_back(std::move(rec).value());
  for (const auto& req : run) {
    req->lsn = lsn;
    out.requests.push_back(req);
    if (req->concern == WriteConcern::kOne) out.w1->push_back(req);
  }
  return true;
}

bool Primary::ack_planted_unlogged_batch(Request& req) {
  const uint64_t nth = options_.planted_bugs.ack_unlogged_batch;
  if (req.entry.kind != LogEntryKind::kWrites || nth == 0) return false;
  if (++batches_taken_ != nth) return false;
  finish(req, Status(), next_ts());  // the planted bug: acknowledged, never logged
  return true;
}

void Primary::assign_commit_ts(Request& req) {
  switch (req.entry.kind) {
    case LogEntryKind::kHeartbeat:
      req.entry.ts = heartbeat_ts();
      return;
    case LogEntryKind::kWrites:
      req.entry.ts = next_ts();
      return;
    case LogEntryKind::kBatches:
      QUIRE_UNREACHABLE("a request is one batch; only sealing merges them");
    case LogEntryKind::kKeystore:
      // T1 reserved the ts. If a checkpoint became stable at or above it since, the push
      // queue takes nothing there: write the change at a fresh ts instead, so it is still
      // the ts it is pushed at.
      if (req.push_after && !push_ts_free(req.entry.ts)) {
        env_.log().info(
            kComponent, 41016,
            "reserved keystore ts already covered by a checkpoint; using a fresh one",
            {{"reserved_ts", req.entry.ts}, {"stable_ts", engine_.push_queue().stable()}});
        req.entry.ts = next_ts();
      }
      return;
  }
  QUIRE_UNREACHABLE("a request of an unknown entry kind");
}

Task<Status> Primary::write_group(RecordWriter::Chained records,
                                  ReplicationClient::PendingWrite first, Deadline deadline,
                                  std::shared_ptr<std::vector<std::shared_ptr<Request>>> w1) {
  Status st = co_await writer_.finish_send(records, std::move(first), deadline);
  for (int attempt = 1; !st.is_ok() && st.code() != Code::kFenced &&
                        st.code() != Code::kCancelled && attempt < options_.write_attempts_max;
       attempt++) {
    stats_.group_retries++;
    env_.log().info(kComponent, 41015, "commit group not durable yet; re-sending the same records",
                    {{"attempt", attempt}, {"error", st}});
    if (!(co_await env_.executor().sleep(options_.write_retry_backoff)).is_ok())
      co_return cancelled("stopping");
    st = co_await writer_.send(records, env_.executor().deadline_after(options_.write_timeout));
  }
  if (st.is_ok()) ack_write_concern_one(*w1);
  co_return st;
}

void Primary::assert_lsn_order(const std::vector<Record>& records) const {
  Lsn prev = writer_.chain_head();
  for (const Record& r : records) {
    QUIRE_ASSERT(r.lsn > prev);
    prev = r.lsn;
  }
  QUIRE_ASSERT(prev < writer_.next_lsn());
}

void Primary::on_group_durable(const std::vector<std::shared_ptr<Request>>& sealed) {
  stats_.groups_written++;
  QUIRE_ASSERT(sealed.empty() || sealed.front()->lsn > applied_lsn_);
  for (const auto& req : sealed) {
    QUIRE_ASSERT(req->lsn >= applied_lsn_);  // batches merged into one record share its LSN
    QUIRE_ASSERT(req->lsn <= writer_.durable_lsn());
    switch (req->entry.kind) {
      case LogEntryKind::kWrites:
        apply_writes(*req);
        break;
      case LogEntryKind::kKeystore:
        apply_keystore_entry(*req);
        break;
      case LogEntryKind::kHeartbeat:
        stats_.heartbeats++;
        break;
      case LogEntryKind::kBatches:
        QUIRE_UNREACHABLE("a request is one batch; only sealing merges them");
    }
    const bool heartbeat = req->entry.kind == LogEntryKind::kHeartbeat;
    if (!heartbeat) applied_ts_ = std::max(applied_ts_, req->entry.ts);
    applied_lsn_ = req->lsn;
    if (!heartbeat) last_entry_lsn_ = req->lsn;
    QUIRE_ASSERT(applied_ts_ <= last_ts_);
    finish(*req, Status(), req->entry.ts);
  }
}

void Primary::apply_writes(Request& req) {
  for (LogWrite& w : req.entry.writes) {
    Status applied =
        engine_.apply_write(w.table, std::move(w.key), req.entry.ts, std::move(w.value));
    if (!applied.is_ok()) {
      // Validated before it was queued and the ts is above every checkpoint; a failure
      // here is a bug, but the record is durable, so say so loudly.
      env_.log().error(kComponent, 41011, "durable write did not apply", {{"error", applied}});
    }
  }
  stats_.batches_acked++;
  stats_.writes_acked += req.entry.writes.size();
}

void Primary::apply_keystore_entry(Request& req) {
  logged_keystore_version_ = req.entry.keystore_base_version + req.entry.changes.size();
  if (req.rotation && on_rotation_point) on_rotation_point(RotationPoint::kAfterLogWrite);
  if (!req.push_after) return;
  // assign_commit_ts chose a ts the push queue takes, and nothing moved the queue since:
  // only a checkpoint does, and it waits for the log writer this group holds.
  QUIRE_ASSERT(push_ts_free(req.entry.ts));
  Status pushed = engine_.push_keystore(req.entry.ts);
  if (!pushed.is_ok()) {
    env_.log().error(kComponent, 41012, "keystore push refused",
                     {{"error", pushed}, {"ts", req.entry.ts}});
  }
  applied_ts_ = std::max(applied_ts_, req.entry.ts);
  if (auto d = engine_.keystore().newest_dek(kLogTable.value)) log_dek_ = *d;
}

void Primary::on_group_fenced(const Status& st,
                              const std::vector<std::shared_ptr<Request>>& sealed) {
  const bool was_running = running();
  on_fenced(Status(st).at("commit"));
  env_.log().warn(kComponent, 41013, "a newer primary exists; stepping down", {{"error", st}});
  for (const auto& req : sealed) finish(*req, stopped_why_, Timestamp());
  if (was_running || !tasks_.empty()) halt();
}

void Primary::on_group_deposed(const std::vector<std::shared_ptr<Request>>& sealed) {
  const bool was_running = running();
  // Durable at W, so a new primary keeps the group; but the lease may have expired at the
  // coordinator and a new primary may already serve: acknowledging now could contradict it.
  on_deposed(Status(Code::kUnavailable,
                    "this node's primary lease ran out before the write was acknowledged: "
                    "outcome unknown; retry on the new primary")
                 .at("commit"));
  env_.log().warn(kComponent, 41041, "primary lease ran out or was given up; stepping down",
                  {{"groups_written", stats_.groups_written}});
  for (const auto& req : sealed) {
    stats_.batches_failed++;
    finish(*req, stopped_why_, Timestamp());
  }
  if (was_running || !tasks_.empty()) halt();
}

Task<void> Primary::on_group_failed(const Status& st,
                                    const std::vector<std::shared_ptr<Request>>& sealed) {
  // The group is in doubt: the abandon below or a later success decides it.
  stats_.groups_abandoned++;
  Status rec = co_await recover_chain(options_.write_timeout);
  if (rec.code() == Code::kFenced) {
    // The abandon met a newer primary's fence: the group's fate is the new primary's.
    if (!ended()) on_group_fenced(rec, sealed);
    co_return;
  }
  Status why =
      rec.is_ok()
          ? Status(Code::kUnavailable,
                   fmt::format("write not committed: abandoned after retries ({})", st.to_string()))
          : Status(Code::kUnavailable,
                   fmt::format("write outcome unknown: the log could not be reached ({})",
                               st.to_string()));
  why.at("commit");
  env_.log().warn(kComponent, 41014, "commit group failed", {{"error", st}, {"recover", rec}});
  for (const auto& req : sealed) {
    if (!req->finished) stats_.batches_failed++;
    finish(*req, why, Timestamp());
  }
}

Task<Status> Primary::recover_chain(Nanos timeout) {
  Status rec = co_await writer_.recover(env_.executor().deadline_after(timeout));
  follow_writer();
  if (!rec.is_ok()) co_return rec;
  co_await write_chain_marker();
  // A failed marker leaves the writer needing recovery, and the next user redoes it. Until
  // then nothing may be written: the writer would refuse the new records unsent, and a
  // resend would re-send the marker in their place, so they would count as durable.
  if (chain_in_doubt()) {
    co_return Status(Code::kUnavailable, "the chain marker after recovery is not durable yet")
        .at("recover_chain");
  }
  co_return rec;
}

Task<Status> Primary::write_chain_marker() {
  // The first record after an abandon point is a LOG record naming it: a standby that
  // fetched abandoned LOG records sees the chain skip them before any commit point could
  // cover them (pages and checkpoint records are invisible to its log reads).
  const Deadline deadline = env_.executor().deadline_after(options_.write_timeout);
  const Lsn head = writer_.chain_head();
  const Lsn commit = writer_.durable_lsn();
  // Never the term's first record: that was the take-over's marker (or the database is new).
  auto marker = co_await write_commit_marker(engine_, writer_, log_dek_, heartbeat_ts(), commit,
                                             MarkerKind::kWithinTerm, *random_, deadline);
  follow_writer();
  if (marker.is_ok()) {
    QUIRE_ASSERT(*marker > head);  // the writer's own order (assert_lsn_order)
    stats_.heartbeats++;
    published_commit_ = std::max(published_commit_, commit);
    co_return Status();
  }
  env_.log().info(kComponent, 41017, "chain marker not durable yet", {{"error", marker.status()}});
  co_return marker.status();
}

// ---- Reads ----------------------------------------------------------------------------

Task<Result<std::optional<std::string>>> Primary::get(TableId table, std::string key,
                                                      std::optional<Timestamp> ts) {
  const CallInFlight in_flight(calls_in_flight_);
  co_return co_await engine_.get(table, std::move(key), ts.value_or(applied_ts_));
}

Task<Result<std::vector<std::pair<std::string, std::string>>>> Primary::scan(
    TableId table, std::string lo, std::string hi, size_t limit, std::optional<Timestamp> ts) {
  const CallInFlight in_flight(calls_in_flight_);
  co_return co_await engine_.scan(table, std::move(lo), std::move(hi), ts.value_or(applied_ts_),
                                  limit);
}

// ---- Checkpoints ------------------------------------------------------------------------

void Primary::prompt_checkpoint() {
  checkpoint_prompt_.set();
}

Task<Result<CheckpointInfo>> Primary::checkpoint_now() {
  const CallInFlight in_flight(calls_in_flight_);
  Result<CheckpointInfo> r = co_await checkpoint_locked();
  if (r.is_ok()) {
    // With the writer free: writes commit while the checkpoint's versions leave ingest.
    co_await engine_.prune_checkpointed_ingest();
    room_changed_.notify_all();  // ingest was pruned
    co_await after_checkpoint(*r);
  }
  co_return r;
}

Task<Result<CheckpointInfo>> Primary::checkpoint_locked() {
  // A commit task holding the writer with nothing in flight lets it go when woken; one
  // with groups in flight, once they are settled, waits again: so ask again now and then.
  const Deadline give_up = env_.executor().deadline_after(options_.io_timeout);
  Status locked;
  do {
    queue_changed_.notify_one();
    const Deadline ask_again = env_.executor().deadline_after(options_.heartbeat_interval);
    locked = co_await writer_mu_.lock(std::min(give_up, ask_again));
  } while (locked.code() == Code::kDeadlineExceeded && env_.executor().now() < give_up);
  if (!locked.is_ok()) co_return busy("log writer held too long").at("checkpoint");
  MutexGuard guard(writer_mu_);
  if (!in_flight_.empty()) {
    // Only a stopped run leaves groups behind (the commit task settles its own before it
    // lets the writer go): nothing may be chained after them until they have ended.
    co_return unavailable("commit groups of a stopped run are still in flight").at("checkpoint");
  }
  if (!on_latest_checkpoint_) {
    Status st = co_await install_latest_checkpoint();
    if (!st.is_ok()) {
      stats_.checkpoint_failures++;
      co_return std::move(st).at("checkpoint:install_latest");
    }
  }
  follow_writer();
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
  if (chain_in_doubt()) {
    Status rec = co_await recover_chain(options_.io_timeout);
    if (!rec.is_ok() || chain_in_doubt()) {
      stats_.checkpoint_failures++;
      co_return Status(rec.is_ok() ? unavailable("log chain marker not durable") : rec)
          .at("checkpoint:recover");
    }
  }
  if (last_entry_lsn_ > published_commit_ && writer_.durable_lsn() >= last_entry_lsn_) {
    // Publish the commit point before the checkpoint holds the writer through its steps:
    // what was acknowledged so far becomes visible on the standbys now, not after them
    // (the visibility lag). If it fails, the heartbeat after the checkpoint publishes it.
    co_await write_chain_marker();
  }
  auto r = co_await engine_.checkpoint(writer_, ts, log_lsn, IngestPrune::kLater);
  follow_writer();
  if (!r.is_ok() && !chain_in_doubt()) {
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
  co_return r;
}

// A checkpoint writes new versions of the pages it changes, and the page service keeps,
// below the retention point, only each page's newest version. So every checkpoint must
// build on the latest completed one: a checkpoint built on an older one rewrites pages
// the latest one's tree still uses, and if it fails after its pages (the primary stepped
// down), those orphan versions outrank the live ones, which garbage collection then drops
// from every server once retention passes them (`quire chaos kek` seed 7 on one variant:
// `NotFound: no such page`). A primary's own failed checkpoints are harmless: its next one
// builds on the same tree with every change the failed one had, and rewrites the same pages
// above them (the next completed checkpoint is built on the same tree with a superset of
// the changes). A standby promoted before it picked up the latest checkpoint (its pick-up
// had not run, or the promotion cut it short) installs it here first: at take-over, or
// before the first checkpoint when the page service did not answer then.
Task<Status> Primary::install_latest_checkpoint() {
  Status st = co_await try_install_latest_checkpoint();
  if (!st.is_ok()) {
    env_.log().warn(kComponent, 41022,
                    "latest checkpoint not installed yet; checkpoints wait for it",
                    {{"error", st}});
  }
  co_return st;
}

Task<Status> Primary::try_install_latest_checkpoint() {
  auto latest = co_await writer_.client().latest_checkpoint(
      env_.executor().deadline_after(options_.io_timeout));
  const Lsn installed = engine_.installed_checkpoint_lsn();
  if (latest.code() == Code::kNotFound && installed.is_zero()) {
    on_latest_checkpoint_ = true;
    co_return Status();
  }
  if (latest.code() == Code::kNotFound) {
    // A read quorum knows no checkpoint although this node installed one (a server still
    // copying): not an answer to build on.
    co_return unavailable("the page service reports no checkpoint; this node installed one")
        .with("installed_lsn", installed.value);
  }
  if (!latest.is_ok()) co_return latest.status();
  if (latest->lsn <= installed) {
    on_latest_checkpoint_ = true;
    co_return Status();
  }
  const Lsn lsn = latest->lsn;
  // Only a completion on this primary's committed chain, as a standby checks it: above the
  // commit point it is an old primary's tail that a server not fenced still holds and the
  // take-over abandoned (its metadata and keystore pages go with it).
  auto completion = decode_completion(std::string_view(
      reinterpret_cast<const char*>(latest->payload.data()), latest->payload.size()));
  const Lsn committed = std::max(published_commit_, writer_.durable_lsn());
  if (completion.is_ok() && (lsn > committed || completion->checkpoint_ts > applied_ts_)) {
    co_return unavailable("the newest checkpoint a page server reports is not committed here")
        .with("checkpoint_lsn", lsn.value)
        .with("commit_lsn", committed.value);
  }
  PickupResult r = co_await engine_.install_checkpoint(
      std::move(latest).value(), InstallMode::kFollow, StaleKeystoreChoice::kInstall);
  if (!r.installed()) {
    co_return Status(r.detail.is_ok() ? unavailable("the latest checkpoint was not installed")
                                      : r.detail)
        .with("checkpoint_lsn", lsn.value);
  }
  env_.log().info(kComponent, 41023, "installed the latest checkpoint before writing one",
                  {{"checkpointLsn", lsn}, {"installedCheckpointLsn", installed}});
  retain_installed_checkpoint(engine_.installed_checkpoint_lsn());  // as if written here
  if (retained_.size() > kRetainedCheckpointsMax) retained_.pop_front();
  on_latest_checkpoint_ = true;
  co_return Status();
}

void Primary::retain_installed_checkpoint(Lsn completion_lsn) {
  if (!retained_.empty()) retained_.back().superseded_at = env_.executor().now();
  retained_.push_back(Retained{MonoTime::never(), completion_lsn, engine_.checkpoint_log_lsn(),
                               engine_.checkpoint_keystore_snapshot()});
}

Task<void> Primary::after_checkpoint(const CheckpointInfo& info) {
  if (!retained_.empty() && retained_.back().completion_lsn == info.completion_lsn) co_return;
  const MonoTime now = env_.executor().now();
  retain_installed_checkpoint(info.completion_lsn);
  // Keep the last two, and every checkpoint superseded less than retention_min_age ago
  // (bounded, in case checkpoints come very fast).
  while (retained_.size() > kRetainedCheckpointsMin &&
         (retained_.size() > kRetainedCheckpointsMax ||
          retained_.front().superseded_at + options_.retention_min_age <= now)) {
    retained_.pop_front();
  }
  QUIRE_ASSERT(retained_.size() <= kRetainedCheckpointsMax);
  if (retained_.size() < kRetainedCheckpointsMin) co_return;
  // A copy: another checkpoint's after_checkpoint may pop retained_.front() while this one
  // waits on set_retention below (seen as a SIGSEGV with a page server stopped).
  const Retained oldest = retained_.front();
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
  if (engine_.keystore().version() != before_key_ops && unlogged_.changes.empty()) {
    prompt_checkpoint();
  }
}

Task<void> Primary::checkpoint_loop() {
  while (running()) {
    Deadline wake = options_.checkpoint_interval.count() > 0
                        ? env_.executor().deadline_after(options_.checkpoint_interval)
                        : Deadline::never();
    Status st = co_await checkpoint_prompt_.wait(wake);
    if (st.code() == Code::kCancelled || !running()) co_return;
    checkpoint_prompt_.reset();
    co_await checkpoint_now();
  }
}

Task<Status> Primary::seal_log() {
  const CallInFlight in_flight(calls_in_flight_);
  // A retired primary in a QUIRE.SEAL loop must not seal under its successor.
  if (!running()) co_return unavailable("not serving as primary").at("seal_log");
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
  while (running()) {
    if (!(co_await env_.executor().sleep(options_.heartbeat_interval)).is_ok()) co_return;
    if (!queue_.empty() || last_entry_lsn_ <= published_commit_ ||
        writer_.durable_lsn() < last_entry_lsn_)
      continue;
    auto req = std::make_shared<Request>(env_.executor().scheduler());
    req->entry.kind = LogEntryKind::kHeartbeat;
    queue_push(req);
    co_await req->done.wait();
  }
}

// ---- Keys -------------------------------------------------------------------------------

Task<Status> Primary::log_key_changes(std::vector<KeystoreChange> changes, uint64_t base_version,
                                      Timestamp ts, bool rotation) {
  std::vector<std::shared_ptr<Request>> chunks;
  for (size_t i = 0; i < changes.size(); i += kEntryKeyChangesMax) {
    auto req = std::make_shared<Request>(env_.executor().scheduler());
    req->entry.kind = LogEntryKind::kKeystore;
    req->entry.ts = ts;
    req->entry.keystore_base_version = base_version + i;
    const size_t end = std::min(changes.size(), i + kEntryKeyChangesMax);
    req->entry.changes.assign(changes.begin() + static_cast<std::ptrdiff_t>(i),
                              changes.begin() + static_cast<std::ptrdiff_t>(end));
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
      // Key operations run one at a time (key_mu_), each logging the backlog first, and
      // log_pending_keys takes it out before it logs it: there is none here.
      QUIRE_ASSERT(unlogged_.changes.empty());
      unlogged_ = UnloggedKeys{std::move(rest), base, ts};
      co_return Status(r.status()).at("log_key_changes").with("keystore_version", base);
    }
  }
  co_return Status();
}

Task<Status> Primary::log_pending_keys() {
  if (unlogged_.changes.empty()) co_return Status();
  UnloggedKeys pending = std::exchange(unlogged_, {});
  co_return co_await log_key_changes(std::move(pending.changes), pending.base_version, pending.ts);
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
  const CallInFlight in_flight(calls_in_flight_);
  if (!running()) co_return unavailable("primary is not running").at("rotate_active_kek");
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
    // Stepped down during the gap: T2 is a new primary's to redo (the change never reached
    // the log, so no standby holds it).
    if (!running())
      co_return unavailable("primary stepped down between T1 and T2").at("rotate_active_kek");
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
  const CallInFlight in_flight(calls_in_flight_);
  if (!running()) co_return unavailable("primary is not running").at("rotate_cmk");
  Status st = co_await key_op(engine_.rotate_cmk());
  if (st.is_ok()) stats_.cmk_rotations++;
  co_return st;
}

}  // namespace quire
