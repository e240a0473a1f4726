#include "pagelog/replication_client.h"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

namespace quire {

// One write's progress across its servers (send_until_acked and finish_write).
struct WriteProgress {
  explicit WriteProgress(Scheduler& s) : changed(s) {}
  size_t acks = 0;
  size_t refused = 0;  // non-retriable answers
  Status first_refusal;
  Status last_retried;  // the newest retriable answer, for the message of a write that timed out
  bool fenced = false;
  Status fenced_status;
  WaitQueue changed;
  std::function<void()> on_first_ack;
};

namespace {
constexpr const char* kComponent = "replication";
constexpr Nanos kAttemptTimeout = 1s;  // one call to one server
constexpr size_t kBackgroundTasksMax = 4096;
// How long writes skip a server after it answered Unavailable (then one write probes it).
constexpr Nanos kDownProbeInterval = 500ms;
}  // namespace

// What the per-server tasks share with the client: kept alive by every task that uses
// it, so the client can be destroyed while re-sends are still running.
// One server's commit hints (publish_commit): the newest point asked for, and whether a
// task is sending to it.
struct CommitHintSlot {
  Term term;
  Lsn wanted;
  bool sending = false;
};

struct ReplicationClient::Shared {
  std::vector<std::unique_ptr<PageServerClient>> clients;
  std::vector<CommitHintSlot> hints;  // per server
  std::vector<TaskId> hint_tasks;     // per server: the task sending its hints, if any
  LogLimiter hint_log{std::chrono::seconds(10)};
  // Per server: writes skip it until then (it refused connections or broke them, or its
  // disk is full), so such a server does not collect a re-sending task per write; it
  // catches up from its peers when it is back.
  std::vector<MonoTime> down_until;
  // Per server: the skip above is for a full disk. Such a server is up: it still takes
  // commit hints (kept in memory), and standbys may be reading from it.
  std::vector<uint8_t> full;
  // Per server: a moving average of the fdatasync times its acknowledgements report (zero
  // until one does).
  std::vector<Nanos> sync_average;
  bool alive = true;
  std::vector<TaskId> tasks;  // for cancellation when the client goes away
};

namespace {

bool worth_retrying(Code c) {
  return code_is_retriable(c);
}

// A retriable answer, or a corrupt one (another server may hold an intact copy).
bool worth_failing_over(Code c) {
  return code_is_retriable(c) || c == Code::kCorruption;
}

// Sends one write to one server until it is acknowledged, refused, or `give_up` passes.
// Folds one reported fdatasync time into a server's moving average (weight 1/8: a single
// slow flush moves it little, a slower disk within a few writes).
void note_sync(Nanos* average, uint64_t sync_micros) {
  if (sync_micros == 0) return;  // not reported
  const Nanos sample = std::chrono::microseconds(std::min<uint64_t>(
      sync_micros, static_cast<uint64_t>(std::chrono::microseconds(60s).count())));
  *average = average->count() == 0 ? sample : *average + (sample - *average) / 8;
}

Task<void> send_until_acked(Env& env, std::shared_ptr<void> keep_alive, MonoTime* down_until,
                            uint8_t* full, Nanos* sync_average, PageServerClient* client,
                            std::shared_ptr<const Bytes> records, Term term,
                            std::shared_ptr<WriteProgress> progress, Deadline give_up,
                            Nanos backoff_min, Nanos backoff_max, uint64_t jitter_seed) {
  (void)keep_alive;
  Nanos backoff = backoff_min;
  uint64_t x = jitter_seed | 1;
  while (true) {
    Deadline attempt = std::min(give_up, env.executor().deadline_after(kAttemptTimeout));
    Result<AppendAck> acked = co_await client->append_encoded(records, term, attempt);
    if (acked.is_ok()) {
      *down_until = MonoTime{};
      *full = 0;
      note_sync(sync_average, acked->sync_micros);
      progress->acks++;
      if (progress->acks == 1 && progress->on_first_ack) {
        auto f = std::move(progress->on_first_ack);
        f();
      }
      progress->changed.notify_all();
      co_return;
    }
    const Status& st = acked.status();
    if (st.code() == Code::kCancelled) co_return;
    if (st.code() == Code::kFenced) {
      progress->fenced = true;
      progress->fenced_status = st;
      progress->changed.notify_all();
      co_return;
    }
    if (st.code() == Code::kUnavailable || st.code() == Code::kNoSpace) {
      // Gone (refused, broken, or still connecting), or its disk is full: later writes
      // skip it for a while, and it catches up from its peers once it takes writes again.
      *down_until = std::max(*down_until, env.executor().now() + kDownProbeInterval);
      *full = st.code() == Code::kNoSpace ? 1 : 0;
    }
    if (!worth_retrying(st.code())) {
      progress->refused++;
      if (progress->first_refusal.is_ok()) progress->first_refusal = st;
      progress->changed.notify_all();
      co_return;
    }
    progress->last_retried = st;
    // Jittered exponential backoff, bounded by the deadline.
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Nanos wait = backoff / 2 +
                 Nanos(static_cast<int64_t>(x % static_cast<uint64_t>(backoff.count() / 2 + 1)));
    if (env.executor().now() + wait >= give_up) co_return;
    if (!(co_await env.executor().sleep(wait)).is_ok()) co_return;
    backoff = std::min(backoff * 2, backoff_max);
  }
}

// Sends one server the newest commit hint of its slot until none is newer than the last
// sent, or a call fails (best effort: the next record's backlink carries the point too).
Task<void> send_commit_hints(Env& env, std::shared_ptr<void> keep_alive, PageServerClient* client,
                             CommitHintSlot* slot, LogLimiter* log) {
  (void)keep_alive;
  Term sent_term;
  Lsn sent;
  while (std::pair(slot->term, slot->wanted) > std::pair(sent_term, sent)) {
    sent_term = slot->term;
    sent = slot->wanted;
    Status st = co_await client->commit_hint(sent, sent_term,
                                             env.executor().deadline_after(kAttemptTimeout));
    if (st.code() == Code::kCancelled) break;
    if (!st.is_ok()) {
      if (std::optional<uint64_t> suppressed = log->admit(env.executor().now())) {
        env.log().info(kComponent, 33004,
                       "commit hint not delivered; the server's readers learn the point from "
                       "the next record",
                       {{"server", client->server()},
                        {"lsn", sent.value},
                        {"error", st},
                        {"suppressed", *suppressed}});
      }
      break;
    }
  }
  slot->sending = false;
}

}  // namespace

ReplicationClient::ReplicationClient(Env& env, ReplicationOptions options)
    : env_(env),
      options_(std::move(options)),
      shared_(std::make_shared<Shared>()),
      jitter_(env.random_stream("replication-jitter")) {
  QUIRE_ASSERT(!options_.servers.empty());
  QUIRE_ASSERT(options_.write_quorum >= 1 && options_.write_quorum <= options_.servers.size());
  for (const auto& a : options_.servers)
    shared_->clients.push_back(std::make_unique<PageServerClient>(env, a, options_.page_client));
  shared_->down_until.assign(shared_->clients.size(), MonoTime{});
  shared_->full.assign(shared_->clients.size(), 0);
  shared_->sync_average.assign(shared_->clients.size(), Nanos(0));
  shared_->hints.resize(shared_->clients.size());
  shared_->hint_tasks.resize(shared_->clients.size());
}

ReplicationClient::~ReplicationClient() {
  shared_->alive = false;
  for (TaskId t : shared_->tasks) env_.executor().cancel(t);
  for (size_t i = 0; i < shared_->hint_tasks.size(); ++i) {
    if (shared_->hints[i].sending) env_.executor().cancel(shared_->hint_tasks[i]);
  }
}

Nanos ReplicationClient::quorum_sync() const {
  std::vector<Nanos> averages = shared_->sync_average;
  const size_t w = options_.write_quorum - 1;
  std::nth_element(averages.begin(), averages.begin() + static_cast<std::ptrdiff_t>(w),
                   averages.end());
  return averages[w];
}

void ReplicationClient::publish_commit(Lsn lsn) {
  const MonoTime now = env_.executor().now();
  for (size_t i = 0; i < shared_->clients.size(); ++i) {
    CommitHintSlot& slot = shared_->hints[i];
    if (std::pair(options_.term, lsn) <= std::pair(slot.term, slot.wanted)) continue;
    slot.term = options_.term;
    slot.wanted = lsn;
    // A server that writes skip for now hears the point with the next record it gets; one
    // skipped for a full disk hears it now (the next record may not come while disks are
    // full, and a standby reading the last write from it needs the point to apply it).
    if (slot.sending || (shared_->down_until[i] > now && shared_->full[i] == 0)) continue;
    slot.sending = true;  // before the task can run (and clear it)
    TaskId t = env_.executor().spawn(
        "commit-hint",
        send_commit_hints(env_, shared_, shared_->clients[i].get(), &slot, &shared_->hint_log));
    // No task (the scheduler's bound): the next record carries the point.
    if (!t.valid()) slot.sending = false;
    shared_->hint_tasks[i] = t;
  }
}

Task<Status> ReplicationClient::write(std::vector<Record> records, Deadline deadline,
                                      std::function<void()> on_first_ack) {
  if (records.empty()) co_return Status();
  // Built outside the co_await: g++ 12 destroys temporaries in a co_await expression twice.
  auto shared = std::make_shared<const std::vector<Record>>(std::move(records));
  co_return co_await write(std::move(shared), deadline, std::move(on_first_ack));
}

Task<Status> ReplicationClient::write(std::shared_ptr<const std::vector<Record>> shared_records,
                                      Deadline deadline, std::function<void()> on_first_ack) {
  if (shared_records == nullptr || shared_records->empty()) co_return Status();
  PendingWrite pending = start_write(std::move(shared_records), deadline, std::move(on_first_ack));
  co_return co_await finish_write(std::move(pending), deadline);
}

ReplicationClient::PendingWrite::PendingWrite(PendingWrite&& o) noexcept
    : waiting_(std::exchange(o.waiting_, nullptr)),
      progress_(std::move(o.progress_)),
      refused_(std::move(o.refused_)),
      asked_(o.asked_),
      first_prev_(o.first_prev_),
      last_(o.last_) {}

ReplicationClient::PendingWrite& ReplicationClient::PendingWrite::operator=(
    PendingWrite&& o) noexcept {
  if (this != &o) {
    if (waiting_ != nullptr) (*waiting_)--;
    waiting_ = std::exchange(o.waiting_, nullptr);
    progress_ = std::move(o.progress_);
    refused_ = std::move(o.refused_);
    asked_ = o.asked_;
    first_prev_ = o.first_prev_;
    last_ = o.last_;
  }
  return *this;
}

ReplicationClient::PendingWrite::~PendingWrite() {
  if (waiting_ != nullptr) (*waiting_)--;
}

ReplicationClient::PendingWrite ReplicationClient::start_write(
    std::shared_ptr<const std::vector<Record>> shared_records, Deadline deadline,
    std::function<void()> on_first_ack) {
  PendingWrite pending;
  QUIRE_ASSERT(shared_records != nullptr && !shared_records->empty());
  const std::vector<Record>& records = *shared_records;
  // Counted until the caller has waited, so abandon_after can refuse to run under it.
  writes_waiting_++;
  pending.waiting_ = &writes_waiting_;
  if (durable_lsn_.is_zero() && completed_.empty()) durable_lsn_ = records.front().prev_lsn;
  pending.first_prev_ = records.front().prev_lsn;
  pending.last_ = records.back().lsn;
  std::erase_if(shared_->tasks, [this](TaskId t) { return env_.executor().is_done(t); });
  if (shared_->tasks.size() >= kBackgroundTasksMax) {
    pending.refused_ = busy("too many writes in flight to the page service");
    return pending;
  }
  auto progress = std::make_shared<WriteProgress>(env_.executor().scheduler());
  progress->on_first_ack = std::move(on_first_ack);
  pending.progress_ = progress;

  // Servers that miss the deadline keep getting the write for a while afterwards, so a
  // lagging server does not have to wait for peer catch-up.
  Deadline give_up =
      std::max(deadline, env_.executor().deadline_after(options_.lagging_resend_window));
  const MonoTime now = env_.executor().now();
  // Encoded once for every server (and every re-send).
  auto encoded = std::make_shared<const Bytes>(encode_records(records));
  auto ask = [&](size_t i) {
    shared_->tasks.push_back(env_.executor().spawn(
        "replicate", send_until_acked(env_, shared_, &shared_->down_until[i], &shared_->full[i],
                                      &shared_->sync_average[i], shared_->clients[i].get(), encoded,
                                      options_.term, progress, give_up, options_.retry_backoff_min,
                                      options_.retry_backoff_max, jitter_->next_u64())));
  };
  size_t n = 0;  // servers asked
  for (size_t i = 0; i < shared_->clients.size(); ++i) {
    if (shared_->down_until[i] > now) continue;
    ask(i);
    n++;
  }
  if (n < options_.write_quorum) {
    // Too many servers look down to reach a quorum: ask them all again.
    for (size_t i = 0; i < shared_->clients.size(); ++i) {
      if (shared_->down_until[i] <= now) continue;
      shared_->down_until[i] = MonoTime{};
      ask(i);
      n++;
    }
  }
  pending.asked_ = n;
  return pending;
}

Task<Status> ReplicationClient::finish_write(PendingWrite pending, Deadline deadline) {
  if (!pending.refused_.is_ok()) co_return pending.refused_;
  QUIRE_ASSERT(pending.progress_ != nullptr);
  WriteProgress& progress = *pending.progress_;
  const size_t n = pending.asked_;
  const size_t w = options_.write_quorum;
  while (true) {
    if (progress.fenced) co_return progress.fenced_status;
    if (progress.acks >= w) break;
    if (progress.refused > n - w) co_return progress.first_refusal;
    Status st = co_await progress.changed.wait(deadline);
    if (!st.is_ok() && progress.acks < w) {
      std::string why = "write not acknowledged by a quorum in time; outcome unknown";
      if (!progress.last_retried.is_ok()) {
        // What the servers answered, when they answered: a full disk says so to the client.
        // The code alone: the message names the server's files, which clients need not see.
        why += fmt::format(" (a server answered {})", code_name(progress.last_retried.code()));
      }
      co_return Status(st.code(), std::move(why))
          .with("lsn", pending.last_.value)
          .with("acks", progress.acks);
    }
  }
  // Durable: advance durable_lsn through every write that is now contiguous.
  completed_[pending.first_prev_] = pending.last_;
  while (true) {
    auto it = completed_.find(durable_lsn_);
    if (it == completed_.end()) break;
    durable_lsn_ = std::max(durable_lsn_, it->second);
    completed_.erase(it);
  }
  co_return Status();
}

template <typename Op>
Task<Status> ReplicationClient::to_quorum(Op op, Deadline deadline) {
  size_t ok = 0;
  Status last_error = unavailable("no page server answered");
  // Sequential is fine here: these are rare control operations.
  for (auto& c : shared_->clients) {
    Status st = co_await op(*c);
    if (st.is_ok()) {
      ok++;
    } else {
      if (st.code() == Code::kFenced) co_return st;
      last_error = st;
    }
    if (env_.executor().now() >= deadline) break;
  }
  if (ok >= options_.write_quorum) co_return Status();
  co_return last_error;
}

Task<Status> ReplicationClient::seal(Deadline deadline) {
  auto op = [deadline](PageServerClient& c) { return c.seal(deadline); };
  co_return co_await to_quorum(op, deadline);
}

Task<Status> ReplicationClient::abandon_after(Lsn lsn, Deadline deadline) {
  if (writes_waiting_ > 0) {
    // Its durable_lsn could still move, and the marker would then drop acknowledged
    // records.
    co_return busy("writes are waiting for their quorum; abandon after they return")
        .with("writes_waiting", writes_waiting_);
  }
  // Stop re-sending earlier writes first: a late copy of an abandoned record must not land
  // after the abandon marker. Durable records a server still lacks come from its peers.
  for (TaskId t : shared_->tasks) env_.executor().cancel(t);
  shared_->tasks.clear();
  Term term = options_.term;
  auto op = [lsn, term, deadline](PageServerClient& c) {
    return c.abandon_after(lsn, term, deadline);
  };
  Status st = co_await to_quorum(op, deadline);
  if (st.is_ok() && durable_lsn_ > lsn) durable_lsn_ = lsn;
  // Writes durable past a gap that was just abandoned never join the chain.
  if (st.is_ok()) std::erase_if(completed_, [lsn](const auto& w) { return w.first >= lsn; });
  co_return st;
}

Task<Status> ReplicationClient::set_retention(Lsn lsn, Deadline deadline) {
  Term term = options_.term;
  auto op = [lsn, term, deadline](PageServerClient& c) {
    return c.set_retention(lsn, term, deadline);
  };
  co_return co_await to_quorum(op, deadline);
}

void ReplicationClient::continue_chain(Lsn durable) {
  durable_lsn_ = durable;
  completed_.clear();
}

void ReplicationClient::set_term(Term term) {
  QUIRE_ASSERT(term >= options_.term);  // a node's term only grows
  options_.term = term;
}

template <typename Op>
Task<Result<std::vector<ReplicationClient::FencedServer>>> ReplicationClient::from_read_quorum(
    Op op, Deadline deadline, const char* what) {
  const size_t needed = read_quorum();
  std::vector<FencedServer> answered;
  Status last = unavailable("no page server answered");
  std::vector<bool> done(shared_->clients.size(), false);
  // Rounds over the servers that have not answered yet, until a read quorum did.
  for (uint64_t round = 0; round < options_.read_round_max; ++round) {
    for (size_t i = 0; i < shared_->clients.size(); ++i) {
      if (done[i]) continue;
      Deadline attempt = std::min(deadline, env_.executor().deadline_after(kAttemptTimeout));
      Result<PageServerStatus> r = co_await op(*shared_->clients[i], attempt);
      if (r.code() == Code::kFenced || r.code() == Code::kCancelled) co_return r.status();
      if (r.is_ok()) {
        done[i] = true;
        answered.push_back(FencedServer{i, std::move(r).value()});
      } else {
        last = r.status();
      }
      if (env_.executor().now() >= deadline) break;
    }
    if (answered.size() >= needed || env_.executor().now() >= deadline) break;
    Status slept = co_await env_.executor().sleep(options_.read_round_pause);
    if (!slept.is_ok()) co_return slept;
  }
  if (answered.size() < needed) {
    co_return Status(last.code() == Code::kOk ? Code::kUnavailable : last.code(), what)
        .with("answered", answered.size())
        .with("needed", needed)
        .with("term", options_.term.value);
  }
  co_return answered;
}

Task<Result<std::vector<ReplicationClient::FencedServer>>> ReplicationClient::fence(
    Deadline deadline) {
  const Term term = options_.term;
  auto op = [term](PageServerClient& c, Deadline d) { return c.fence(term, d); };
  co_return co_await from_read_quorum(op, deadline, "too few page servers took the new term");
}

Task<Result<LogChunk>> ReplicationClient::scan_server(size_t index, Lsn after, size_t max_bytes,
                                                      Deadline deadline) {
  QUIRE_ASSERT(index < shared_->clients.size());
  // Attempts of kAttemptTimeout each: a lost request or reply costs one attempt, not the
  // whole deadline (a take-over reads every fenced server this way).
  Result<LogChunk> r = unavailable("no attempt made");
  for (uint64_t round = 0; round < options_.read_round_max; ++round) {
    Deadline attempt = std::min(deadline, env_.executor().deadline_after(kAttemptTimeout));
    r = co_await shared_->clients[index]->scan(after, max_bytes, attempt, true);
    if (r.is_ok() || !code_is_retriable(r.code()) || r.code() == Code::kCancelled) co_return r;
    if (env_.executor().now() >= deadline) co_return r;
    env_.log().debug(kComponent, 33002, "scan of one server failed; retrying",
                     {{"server", shared_->clients[index]->server()}, {"error", r.status()}});
    Status slept = co_await env_.executor().sleep(options_.read_round_pause);
    if (!slept.is_ok()) co_return slept;
  }
  co_return r;
}

namespace {

// Tries the servers starting at `*preferred`, moving on for errors another server may not
// have, in rounds with a pause between, until the deadline. Leaves `*preferred` at the
// server that answered, or after the last one tried when none did: the next call starts
// there, so a server that stopped answering without refusing (stopped, cut off) costs one
// attempt, not one per read, and a read whose deadline covers fewer attempts than there
// are servers still reaches every one of them over the following reads.
template <typename T, typename Op>
Task<Result<T>> with_failover(Env& env, const ReplicationOptions& options,
                              std::vector<std::unique_ptr<PageServerClient>>& clients,
                              size_t* preferred, Deadline deadline, Op op) {
  Status last = unavailable("no page server answered");
  const size_t start = *preferred;
  for (uint64_t round = 0; round < options.read_round_max; ++round) {
    for (size_t k = 0; k < clients.size(); ++k) {
      size_t i = (start + k) % clients.size();
      Deadline attempt = std::min(deadline, env.executor().deadline_after(kAttemptTimeout));
      Result<T> r = co_await op(*clients[i], attempt);
      if (r.code() == Code::kCancelled) co_return r;
      if (r.is_ok() || !worth_failing_over(r.code())) {
        *preferred = i;
        co_return r;
      }
      *preferred = (i + 1) % clients.size();
      last = r.status();
      env.log().debug(kComponent, 33001, "read failed over",
                      {{"server", clients[i]->server()}, {"error", last}});
      if (env.executor().now() >= deadline) co_return last;
    }
    Status slept = co_await env.executor().sleep(options.read_round_pause);
    if (!slept.is_ok()) co_return slept;
    if (env.executor().now() >= deadline) break;
  }
  co_return last;
}

}  // namespace

Task<Result<std::vector<Record>>> ReplicationClient::get_page(TableId table, PageId page, Lsn as_of,
                                                              Deadline deadline) {
  auto op = [table, page, as_of](PageServerClient& c, Deadline d) {
    return c.get_page(table, page, as_of, d);
  };
  co_return co_await failover_read<std::vector<Record>>(deadline, op);
}

Task<Result<LogChunk>> ReplicationClient::read_log(Lsn from, size_t max_bytes, Deadline deadline,
                                                   LogWait wait) {
  // One attempt (kAttemptTimeout) must leave room for the server to hold the read.
  wait.wait = std::min(wait.wait, kAttemptTimeout / 2);
  // `seen_through` is where the preferred server's last answer ended: another server, failed
  // over to, is asked without it (its chain may differ there).
  const PageServerClient* preferred =
      shared_->clients.empty() ? nullptr
                               : shared_->clients[preferred_ % shared_->clients.size()].get();
  auto op = [from, max_bytes, wait, preferred](PageServerClient& c, Deadline d) {
    LogWait w = wait;
    if (&c != preferred) w.seen_through = Lsn();
    return c.read_log(from, max_bytes, d, w);
  };
  co_return co_await failover_read<LogChunk>(deadline, op);
}

template <typename T, typename Op>
Task<Result<T>> ReplicationClient::failover_read(Deadline deadline, Op op) {
  const size_t before = preferred_;
  Result<T> r =
      co_await with_failover<T>(env_, options_, shared_->clients, &preferred_, deadline, op);
  if (preferred_ != before) {
    if (std::optional<uint64_t> suppressed = moved_log_.admit(env_.executor().now())) {
      env_.log().info(kComponent, 33003, "reads moved to another page server",
                      {{"from", shared_->clients[before]->server()},
                       {"to", shared_->clients[preferred_]->server()},
                       {"error", r.is_ok() ? Status() : r.status()},
                       {"suppressed", *suppressed}});
    }
  }
  co_return r;
}

Task<Result<Record>> ReplicationClient::latest_checkpoint(Deadline deadline) {
  // A completed checkpoint is on at least W servers, but any one server may lag behind
  // it. Asking N - W + 1 servers meets every write quorum, so the newest answer among
  // them is the latest checkpoint.
  const size_t n = shared_->clients.size();
  const size_t needed = n - std::min(options_.write_quorum, n) + 1;
  QUIRE_ASSERT(needed >= 1 && needed <= n);
  std::optional<Record> newest;
  size_t answered = 0;  // servers that answered with a checkpoint or with NotFound
  Status last = unavailable("no page server answered");
  for (uint64_t round = 0; round < options_.read_round_max && answered < needed; ++round) {
    answered = 0;
    newest.reset();
    for (size_t k = 0; k < n; ++k) {
      size_t i = (preferred_ + k) % n;
      Deadline attempt = std::min(deadline, env_.executor().deadline_after(kAttemptTimeout));
      Result<Record> r = co_await shared_->clients[i]->latest_checkpoint(attempt);
      if (r.code() == Code::kCancelled) co_return r;
      if (r.is_ok()) {
        answered++;
        if (!newest || r->lsn > newest->lsn) newest = std::move(*r);
      } else if (r.code() == Code::kNotFound) {
        answered++;
      } else {
        last = r.status();
      }
      if (env_.executor().now() >= deadline) break;
    }
    if (answered >= needed || env_.executor().now() >= deadline) break;
    Status slept = co_await env_.executor().sleep(options_.read_round_pause);
    if (!slept.is_ok()) co_return slept;
  }
  if (answered < needed) {
    co_return Status(last.code() == Code::kOk ? Code::kUnavailable : last.code(),
                     "too few page servers answered for the latest checkpoint")
        .with("answered", answered)
        .with("needed", needed);
  }
  if (!newest) co_return not_found("no completed checkpoint");
  co_return std::move(*newest);
}

}  // namespace quire
