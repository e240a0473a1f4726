#include "repl/replica_node.h"

#include <algorithm>

namespace quire {

namespace {
constexpr const char* kComponent = "replica";
// How often a promotion checks that its engine applied the recovered tail.
constexpr Nanos kPromoteApplyPoll = 5ms;
}  // namespace

ReplicaNode::ReplicaNode(Env& env, ReplicaConfig config, const KmsFactory& kms,
                         const CoordinatorFactory& coordinator)
    : env_(env), config_(std::move(config)) {
  ReplicationOptions ro;
  ro.servers = config_.servers;
  ro.write_quorum = config_.write_quorum;
  ro.term = config_.term;
  client_ = std::make_unique<ReplicationClient>(env, ro);
  client_->set_preferred(config_.preferred_server);
  kms_ = kms(env);
  QUIRE_ASSERT(kms_ != nullptr);
  engine_ = std::make_unique<Engine>(env, *client_, *kms_, config_.engine);
  if (coordinator) {
    // Elected: a standby until the election says otherwise.
    config_.role = ReplicaRole::kStandby;
    coordinator_ = coordinator(env);
    QUIRE_ASSERT(coordinator_ != nullptr);
    elector_ = std::make_unique<Elector>(
        env, *coordinator_, config_.elector,
        [this](const Leadership& won) {
          stats_.elections_won++;
          env_.executor().spawn("take-over", lead(won));
        },
        [this](const Leadership&, const Status& why) { on_deposed(why); });
  }
  if (config_.role == ReplicaRole::kPrimary) {
    writer_ = std::make_unique<RecordWriter>(*client_, config_.chain_head, config_.next_lsn);
    primary_ = std::make_unique<Primary>(env, *engine_, *writer_, config_.primary);
  } else {
    standby_ = std::make_unique<Standby>(env, *client_, *engine_, config_.standby);
  }
  // Exactly one role, the configured one.
  QUIRE_ASSERT((primary_ != nullptr) == (config_.role == ReplicaRole::kPrimary));
  QUIRE_ASSERT((standby_ != nullptr) == (config_.role == ReplicaRole::kStandby));
}

ReplicaNode::~ReplicaNode() {
  // The elector first (its callbacks reach the roles), then the roles: they use the
  // engine, the writer and the client.
  elector_.reset();
  standby_.reset();
  primary_.reset();
  retired_standbys_.clear();
  retired_primaries_.clear();
  writer_.reset();
  engine_.reset();
  coordinator_.reset();
  kms_.reset();
  client_.reset();
}

void ReplicaNode::start() {
  // A node starts once: a restarted node is a new ReplicaNode.
  QUIRE_ASSERT(!started_);
  if (standby_) {
    standby_->start();
    if (elector_) {
      elector_->start();
    } else {
      started_ = true;
    }
    return;
  }
  env_.executor().spawn("primary-start", start_primary());
}

Task<void> ReplicaNode::start_primary() {
  QUIRE_ASSERT(primary_ != nullptr && !primary_->running());
  start_status_ = co_await primary_->start();
  started_ = start_status_.is_ok();
  if (!started_) {
    env_.log().error(kComponent, 43001, "primary could not start", {{"error", start_status_}});
  }
}

// ---- Take-over ------------------------------------------------------------------------

Task<Status> ReplicaNode::promote(Term term) {
  if (standby_ == nullptr || primary_ != nullptr || promoting_) {
    co_return Status(Code::kInvalidArgument, "only a standby can be promoted").at("promote");
  }
  if (term.is_zero() || term < client_->term()) {
    co_return Status(Code::kInvalidArgument, "a promotion needs a term at or above the node's")
        .with("term", term.value)
        .with("node_term", client_->term().value)
        .at("promote");
  }
  promoting_ = true;
  struct Clear {
    bool& b;
    ~Clear() { b = false; }
  } clear{promoting_};
  client_->set_term(term);
  config_.term = term;
  // The planted bug takeover_from_checkpoint starts (and ends) the chain at the installed
  // checkpoint's log position, below what a commit point covers.
  const Lsn from = config_.takeover.planted_bugs.takeover_from_checkpoint
                       ? engine_->checkpoint_log_lsn()
                       : standby_->commit_lsn();
  auto recovered = co_await recover_log(env_, *client_, from, config_.takeover);
  if (!recovered.is_ok()) {
    stats_.promotion_failures++;
    env_.log().warn(kComponent, 43010, "take-over failed; staying a standby",
                    {{"term", term}, {"error", recovered.status()}});
    co_return Status(recovered.status()).at("promote");
  }
  stats_.fenced_term = term.value;
  stats_.fenced_at = recovered->fenced_at;
  if (recovered->next_lsn == Lsn(1) && engine_->keystore().version() == 0) {
    // No server of a read quorum holds a record, so none was ever durable: a new database.
    writer_ = std::make_unique<RecordWriter>(*client_, Lsn(0), Lsn(1));
    co_return co_await become_primary(nullptr);
  }
  co_return co_await continue_database(*recovered);
}

Task<Status> ReplicaNode::continue_database(RecoveredLog recovered) {
  const Term term = recovered.term;
  std::optional<DekRef> log_dek = engine_->keystore().newest_dek(kLogTable.value);
  if (!log_dek) {
    stats_.promotion_failures++;
    co_return Status(Code::kUnavailable,
                     "this node has not loaded the database's keys yet: catch up, then take over")
        .at("promote");
  }
  // The new primary's first record publishes the recovered end as committed: every standby,
  // this one included, applies the recovered tail.
  writer_ = std::make_unique<RecordWriter>(*client_, recovered.end, recovered.next_lsn);
  std::unique_ptr<Random> random = env_.random_stream("takeover");
  const Timestamp marker_ts = std::max(standby_->applied_ts(), Timestamp(1));
  const Deadline deadline = env_.executor().deadline_after(config_.takeover.recover_timeout);
  auto marker = co_await write_commit_marker(*engine_, *writer_, *log_dek, marker_ts, recovered.end,
                                             MarkerKind::kTermStart, *random, deadline);
  if (!marker.is_ok()) {
    writer_.reset();
    stats_.promotion_failures++;
    env_.log().warn(kComponent, 43011, "take-over marker not durable; staying a standby",
                    {{"term", term}, {"error", marker.status()}});
    co_return Status(marker.status()).at("promote:marker");
  }
  while (!standby_->applied_through(recovered.end)) {
    if (env_.executor().now() >= deadline) {
      writer_.reset();
      stats_.promotion_failures++;
      co_return Status(Code::kDeadlineExceeded, "the recovered tail was not applied in time")
          .with("end", recovered.end.value)
          .with("applied_lsn", standby_->applied_lsn().value)
          .at("promote:apply");
    }
    Status slept = co_await env_.executor().sleep(kPromoteApplyPoll);
    if (!slept.is_ok()) co_return slept;
  }
  const Primary::TakeOverPoint at{standby_->applied_ts(), standby_->applied_lsn(), recovered.end};
  Status st = co_await become_primary(&at);
  if (st.is_ok()) {
    env_.log().info(kComponent, 43013, "promoted to primary",
                    {{"term", term}, {"end", recovered.end}, {"marker", *marker}});
  }
  co_return st;
}

Task<Status> ReplicaNode::become_primary(const Primary::TakeOverPoint* at) {
  QUIRE_ASSERT(writer_ != nullptr && standby_ != nullptr);
  const std::optional<Primary::TakeOverPoint> point =
      at ? std::optional<Primary::TakeOverPoint>(*at) : std::nullopt;
  retire_standby();
  config_.role = ReplicaRole::kPrimary;
  primary_ = std::make_unique<Primary>(env_, *engine_, *writer_, config_.primary);
  if (elector_ && !config_.primary.planted_bugs.ignore_primary_lease) {
    primary_->may_acknowledge = [this] { return elector_->may_lead(env_.executor().now()); };
  }
  Primary* const self = primary_.get();
  primary_->on_ended = [this, self](const Status& why) {
    // Never from inside the primary's own call: the step-down retires it. Only this
    // primary's: by the time the task runs the node may be primary again.
    Status copy = why;
    env_.executor().spawn("step-down", [](ReplicaNode* n, Primary* p, Status w) -> Task<void> {
      if (n->primary_.get() == p) n->step_down(w);
      co_return;
    }(this, self, std::move(copy)));
  };
  // (Two co_awaits in one conditional expression miscompile with g++ 12.)
  Status started;
  if (point) {
    started = co_await primary_->take_over(*point);
  } else {
    started = co_await primary_->start();
  }
  if (primary_.get() != self) {
    // Stepped down while starting (and maybe promoted again since): this start is over,
    // and the node's state is no longer this attempt's to set.
    co_return Status(started.is_ok() ? unavailable("stepped down while starting") : started)
        .at("become_primary");
  }
  start_status_ = std::move(started);
  started_ = start_status_.is_ok();
  if (point) {
    stats_.promotions += started_ ? 1 : 0;
  } else {
    stats_.bootstraps += started_ ? 1 : 0;
  }
  if (!started_) {
    env_.log().error(kComponent, 43012, "primary could not start; stepping down",
                     {{"error", start_status_}});
    step_down(start_status_);
  }
  co_return start_status_;
}

bool ReplicaNode::leading(const Leadership& won) const {
  return elector_ && elector_->may_lead(env_.executor().now()) && elector_->leadership() &&
         elector_->leadership()->epoch == won.epoch;
}

Task<void> ReplicaNode::lead(Leadership won) {
  while (leading(won)) {
    if (primary_ != nullptr) co_return;  // already primary
    Status st = co_await promote(Term(won.epoch));
    if (st.is_ok()) {
      // Deposed while the take-over ran: on_deposed found no primary to step down then.
      if (!leading(won)) {
        // Elected again meanwhile (a newer epoch): keep that leadership, whose own lead()
        // promotes at its term once this primary is gone.
        const bool newer =
            elector_ && elector_->leadership() && elector_->leadership()->epoch > won.epoch;
        env_.log().warn(kComponent, 43016, "leadership lost during the take-over; stepping down",
                        {{"epoch", won.epoch}, {"elected_again", newer}});
        step_down(unavailable("leadership lost during the take-over"),
                  newer ? Resign::kNo : Resign::kYes);
      }
      co_return;
    }
    if (st.code() == Code::kFenced) {
      // The page servers hold a term above this election's epoch: this leadership is stale
      // (a newer leader fenced them), or the coordinator's revisions went back (its data
      // was wiped or restored). Retrying cannot pass the fence, and holding the election
      // would keep every other node out: resign, so that a new campaign, at a higher
      // revision, can.
      if (std::optional<uint64_t> suppressed = takeover_fenced_log_.admit(env_.executor().now())) {
        env_.log().error(kComponent, 43017,
                         "the page servers hold a higher term than this election's epoch; "
                         "resigning to campaign again",
                         {{"epoch", won.epoch}, {"error", st}, {"suppressed", *suppressed}});
      }
      // Only this leadership: deposed and elected again meanwhile, the newer one is not
      // this take-over's to give up.
      if (elector_ && leading(won)) elector_->resign(st);
      co_return;
    }
    if (std::optional<uint64_t> suppressed = takeover_retry_log_.admit(env_.executor().now())) {
      env_.log().info(kComponent, 43014, "take-over not done yet; retrying while leader",
                      {{"epoch", won.epoch}, {"error", st}, {"suppressed", *suppressed}});
    }
    if (!(co_await env_.executor().sleep(config_.takeover_retry_pause)).is_ok()) co_return;
  }
}

// ---- Step-down ------------------------------------------------------------------------

void ReplicaNode::on_deposed(const Status& why) {
  if (primary_ == nullptr) return;
  step_down(why);
}

void ReplicaNode::step_down(const Status& why, Resign resign) {
  if (primary_ == nullptr) return;
  stats_.step_downs++;
  env_.log().warn(kComponent, 43015, "primary stepping down to standby", {{"why", why}});
  retire_primary();
  // Still leader by the coordinator (fenced by a newer term it has not heard of, or a failed
  // start): let another node win.
  if (elector_ && resign == Resign::kYes) elector_->resign(why);
  // A fresh engine: the standby rebuilds from the latest checkpoint and the log.
  engine_ = std::make_unique<Engine>(env_, *client_, *kms_, config_.engine);
  config_.role = ReplicaRole::kStandby;
  started_ = false;
  standby_ = std::make_unique<Standby>(env_, *client_, *engine_, config_.standby);
  standby_->start();
}

void ReplicaNode::retire_standby() {
  sweep_retired();
  standby_->stop();
  retired_standbys_.push_back(std::move(standby_));
}

void ReplicaNode::retire_primary() {
  sweep_retired();
  primary_->stop();
  retired_primaries_.push_back(
      RetiredPrimary{std::move(primary_), std::move(writer_), std::move(engine_)});
}

void ReplicaNode::sweep_retired() {
  std::erase_if(retired_standbys_, [](const auto& s) { return s->quiescent(); });
  // A retired standby may use the engine a retired primary holds.
  if (!retired_standbys_.empty()) return;
  std::erase_if(retired_primaries_, [](const RetiredPrimary& r) { return r.primary->quiescent(); });
}

}  // namespace quire
