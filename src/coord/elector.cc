#include "coord/elector.h"

#include <algorithm>

namespace quire {

namespace {
constexpr const char* kComponent = "elector";
}  // namespace

// What the renewal task and the elector share; the task holds it, so it outlives neither.
struct Elector::LeaseState {
  int64_t id = 0;
  // The TTL validity counts on: the one asked for, lowered to what the coordinator granted
  // or renewed for when that is shorter (a lease that expires early).
  Nanos ttl{0};
  MonoTime renewed_sent;  // send time of the grant or of the last renewal that succeeded
  Status lost;            // set once the coordinator no longer has the lease
  bool stop = false;
};

Elector::Elector(Env& env, Coordinator& coordinator, ElectorOptions options, Elected on_elected,
                 Deposed on_deposed)
    : env_(env),
      coordinator_(coordinator),
      options_(std::move(options)),
      on_elected_(std::move(on_elected)),
      on_deposed_(std::move(on_deposed)),
      wake_(env.executor().scheduler()) {}

Elector::~Elector() {
  if (lease_) lease_->stop = true;
}

void Elector::start() {
  env_.executor().spawn("elector", run());
}

MonoTime Elector::validity_end(MonoTime sent, const ElectorOptions& o) {
  return validity_end(sent, o.lease_ttl, o);
}

MonoTime Elector::validity_end(MonoTime sent, Nanos ttl, const ElectorOptions& o) {
  const auto scaled =
      Nanos(static_cast<int64_t>(static_cast<double>(ttl.count()) * (1.0 - o.rate_error)));
  return sent + (scaled - o.safety_margin);
}

bool Elector::may_lead(MonoTime now) const {
  return leading_.has_value() && lease_ && lease_->lost.is_ok() && now < valid_until();
}

void Elector::resign(const Status& why) {
  if (!leading_ || !lease_ || !lease_->lost.is_ok()) return;
  lease_->lost =
      Status(why.code() == Code::kOk ? Code::kCancelled : why.code(), "resigned: " + why.message());
  wake_.notify_all();
}

void Elector::retire(const Status& why) {
  retiring_ = true;
  resign(why);
}

MonoTime Elector::valid_until() const {
  return lease_ ? validity_end(lease_->renewed_sent, lease_->ttl, options_) : MonoTime();
}

Task<void> Elector::run() {
  while (!retiring_) {
    auto won = co_await win();
    if (won.is_ok() && retiring_) {  // won while shutting down: give it back
      drop_lease();
      co_return;
    }
    if (!won.is_ok()) {
      if (won.status().code() == Code::kCancelled) co_return;
      // A campaign that waited out its bound while another node leads is the normal case
      // of a standby: every campaign_timeout, so only at debug level.
      if (won.status().code() == Code::kDeadlineExceeded) {
        env_.log().debug(kComponent, 47001, "not elected; campaigning again",
                         {{"election", options_.election}, {"error", won.status()}});
      } else if (std::optional<uint64_t> suppressed =
                     not_elected_log_.admit(env_.executor().now())) {
        env_.log().info(kComponent, 47001, "not elected; campaigning again",
                        {{"election", options_.election},
                         {"error", won.status()},
                         {"suppressed", *suppressed}});
      }
      if (!(co_await env_.executor().sleep(options_.retry_pause)).is_ok()) co_return;
      continue;
    }
    leading_ = *won;
    terms_won_++;
    env_.executor().spawn("leader-check", confirm_loop(env_, coordinator_, options_, lease_, *won));
    env_.log().info(kComponent, 47002, "elected",
                    {{"election", options_.election},
                     {"epoch", won->epoch},
                     {"lease", static_cast<uint64_t>(won->lease)}});
    if (on_elected_) on_elected_(*won);
    Status why = co_await hold();
    // Only the task's own cancel ends the loop; a resignation deposes whatever the code of
    // its reason (resign() turns OK into Cancelled).
    if (why.code() == Code::kCancelled && lease_->lost.is_ok()) co_return;
    depose(why);
    if (retiring_) co_return;
    if (!(co_await env_.executor().sleep(options_.retry_pause)).is_ok()) co_return;
  }
}

Task<void> Elector::renew_loop(Env& env, Coordinator& coordinator, ElectorOptions options,
                               std::shared_ptr<LeaseState> lease) {
  while (!lease->stop) {
    if (!(co_await env.executor().sleep(options.renew_interval)).is_ok()) co_return;
    if (lease->stop) co_return;
    const MonoTime sent = env.executor().now();
    auto ttl = co_await coordinator.keep_alive(lease->id, sent + options.call_timeout);
    if (ttl.is_ok()) {
      lease->ttl = std::min(lease->ttl, *ttl);
      lease->renewed_sent = std::max(lease->renewed_sent, sent);
    } else if (ttl.status().code() == Code::kNotFound) {
      lease->lost = ttl.status();
      co_return;
    } else if (ttl.status().code() == Code::kCancelled) {
      co_return;
    }
    // Anything else (unreachable, slow): try again; validity runs out on its own.
  }
}

Task<void> Elector::confirm_loop(Env& env, Coordinator& coordinator, ElectorOptions options,
                                 std::shared_ptr<LeaseState> lease, Leadership won) {
  while (!lease->stop && lease->lost.is_ok()) {
    if (!(co_await env.executor().sleep(options.renew_interval)).is_ok()) co_return;
    if (lease->stop || !lease->lost.is_ok()) co_return;
    auto current = co_await coordinator.leader(options.election,
                                               env.executor().deadline_after(options.call_timeout));
    if (lease->stop || !lease->lost.is_ok()) co_return;
    if (current.is_ok() && (current->lease != won.lease || current->epoch != won.epoch)) {
      lease->lost = Status(Code::kFenced, "the coordinator records another leader")
                        .with("epoch", current->epoch)
                        .with("leader_lease", static_cast<uint64_t>(current->lease));
    } else if (current.code() == Code::kNotFound) {
      lease->lost = Status(Code::kNotFound, "the election has no leader: this node's key is gone");
    } else if (current.code() == Code::kCancelled) {
      co_return;
    }
    // Anything else (unreachable, slow, malformed): ask again; the lease's validity runs
    // out on its own when the coordinator cannot be reached.
  }
}

void Elector::drop_lease() {
  if (!lease_) return;
  lease_->stop = true;
  // Best effort, so the next candidate need not wait out the TTL.
  auto revoke = [](Coordinator& c, int64_t id, Deadline d,
                   std::shared_ptr<int> in_flight) -> Task<void> {
    (void)co_await c.revoke_lease(id, d);
    --*in_flight;
  };
  ++*revokes_in_flight_;
  env_.executor().spawn(
      "revoke-lease",
      revoke(coordinator_, lease_->id, env_.executor().deadline_after(options_.call_timeout),
             revokes_in_flight_));
  lease_.reset();
}

Task<Result<Leadership>> Elector::win() {
  const MonoTime sent = env_.executor().now();
  auto granted =
      co_await coordinator_.grant_lease(options_.lease_ttl, sent + options_.call_timeout);
  if (!granted.is_ok()) co_return granted.status();
  lease_ = std::make_shared<LeaseState>();
  lease_->id = granted->id;
  lease_->ttl = std::min(options_.lease_ttl, granted->ttl);
  lease_->renewed_sent = sent;
  env_.executor().spawn("lease-renewal", renew_loop(env_, coordinator_, options_, lease_));

  auto won =
      co_await coordinator_.campaign(options_.election, granted->id, options_.value,
                                     env_.executor().deadline_after(options_.campaign_timeout));
  if (!won.is_ok() && won.status().code() != Code::kCancelled &&
      won.status().code() != Code::kNotFound) {
    // The coordinator may have made this candidate leader and its answer been lost: then
    // its key leads under a lease this node keeps alive, and nobody else can win until the
    // lease goes. Ask before giving the lease back.
    auto current = co_await coordinator_.leader(
        options_.election, env_.executor().deadline_after(options_.call_timeout));
    if (current.is_ok() && current->lease == granted->id) {
      env_.log().info(
          kComponent, 47004, "the campaign's answer was lost; this node leads",
          {{"election", options_.election}, {"epoch", current->epoch}, {"error", won.status()}});
      won = std::move(current).value();
    }
  }
  if (!won.is_ok()) {
    drop_lease();
    co_return won.status();
  }
  // etcd's campaign does not re-check its own key: confirm the leader is us, under our lease.
  auto current = co_await coordinator_.leader(
      options_.election, env_.executor().deadline_after(options_.call_timeout));
  if (!current.is_ok() || current->epoch != won->epoch || current->key != won->key ||
      current->lease != granted->id || won->lease != granted->id) {
    drop_lease();
    co_return current.is_ok() ? Status(Code::kFenced, "another candidate leads")
                                    .with("epoch", current->epoch)
                                    .with("campaign_epoch", won->epoch)
                              : current.status();
  }
  co_return won;
}

Task<Status> Elector::hold() {
  while (true) {
    const MonoTime now = env_.executor().now();
    if (!lease_->lost.is_ok()) co_return lease_->lost;
    if (now >= valid_until()) {
      co_return Status(Code::kDeadlineExceeded, "lease not renewed in time")
          .with("renewed_ago_ms",
                static_cast<uint64_t>((now - lease_->renewed_sent).count() / 1000000));
    }
    // Wake by the end of validity, or half a renewal interval, whichever is first.
    // A resignation wakes it at once (a SIGTERM hand-over should not wait for the tick).
    const MonoTime wake = std::min(valid_until(), now + options_.renew_interval / 2);
    Status woke = co_await wake_.wait(Deadline(wake));
    if (woke.code() == Code::kCancelled) co_return woke;
  }
}

void Elector::depose(const Status& why) {
  QUIRE_ASSERT(leading_.has_value());  // only a leader is deposed
  Leadership was = *leading_;
  leading_.reset();
  env_.log().warn(kComponent, 47003, "no longer leader",
                  {{"election", options_.election}, {"epoch", was.epoch}, {"error", why}});
  drop_lease();
  if (on_deposed_) on_deposed_(was, why);
}

}  // namespace quire
