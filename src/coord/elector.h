// Elector: one compute node's side of the primary election, over a Coordinator.
//
// run() loops for the node's life: grant a lease, campaign, confirm with leader() that the
// epoch won is the election's current one under this node's own lease (etcd's campaign
// does not re-check its own key), then renew the lease every renew_interval until it is
// lost; then campaign again. While leading it also asks leader() every renew_interval: a
// leader key deleted under a live lease (a withdrawal whose answer was lost but that etcd
// applied late, an operator's delete) or another leader recorded deposes it, though its
// lease lives on.
//
// Deposition before expiry. A leader may act (acknowledge writes) only while
// may_lead(now) holds: now < valid_until, where
//
//   valid_until = (send time of the last renewal that succeeded) + ttl x (1 - rate_error)
//                 - safety_margin
//
// where ttl is the one asked for, or what the coordinator granted or last renewed for if
// that is shorter.
//
// The coordinator starts a lease's TTL when it receives the grant or renewal, which is
// after the node sent it, so the coordinator cannot expire the lease before the node's
// own clock reaches valid_until, provided the two clocks' rates differ by at most
// rate_error (default 1%; quartz drifts about 0.01%). Clock offsets do not matter: only
// durations are compared. The node's clock is its monotonic clock; a process paused past
// valid_until (GC, SIGSTOP) finds may_lead false when it resumes, before it acknowledges
// anything. A lease alone is not safety: the page servers also refuse lower terms, so a
// deposed leader that has not noticed yet still cannot write.
//
// The callbacks run on the node's executor: on_elected when this node becomes leader
// (with the confirmed leadership), on_deposed when it stops being leader (renewal refused,
// valid_until passed, or another leader or none recorded), with the reason.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "coord/coordinator.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"
#include "runtime/sync.h"

namespace quire {

struct ElectorOptions {
  std::string election;  // e.g. "/quire/<cluster>/primary"
  std::string value;     // published with the leadership (the node's client address)
  Nanos lease_ttl = std::chrono::seconds(2);
  Nanos renew_interval = std::chrono::milliseconds(500);
  Nanos call_timeout = std::chrono::milliseconds(500);  // each grant, renewal, confirmation
  // One campaign wait, then again. It also bounds how long a campaign whose answer was
  // lost holds the election (its key leads under a lease this node keeps alive) before
  // this node asks leader() and finds it leads.
  Nanos campaign_timeout = std::chrono::seconds(3);
  Nanos retry_pause = std::chrono::milliseconds(200);  // after a failed call
  double rate_error = 0.01;
  Nanos safety_margin = std::chrono::milliseconds(100);
};

class Elector {
 public:
  using Elected = std::function<void(const Leadership&)>;
  using Deposed = std::function<void(const Leadership&, const Status& why)>;

  Elector(Env& env, Coordinator& coordinator, ElectorOptions options, Elected on_elected,
          Deposed on_deposed);
  ~Elector();
  Elector(const Elector&) = delete;
  Elector& operator=(const Elector&) = delete;

  // Spawns the election loop on the node's executor (it ends with the node).
  void start();

  // Gives up leadership at once (may_lead turns false now); the lease is revoked (its key
  // deleted, so another candidate need not wait out the TTL) when the loop notices, within
  // renew_interval / 2, and it campaigns again. A no-op when not leading.
  void resign(const Status& why);
  // Resigns (when leading) and campaigns no more: the process is shutting down. A campaign
  // in flight that still wins gives its lease back at once. retired() turns true once this
  // node leads no more and every revocation it sent was answered (or timed out), so the
  // next candidate need not wait out the lease.
  void retire(const Status& why);
  bool retired() const { return retiring_ && !leading_ && *revokes_in_flight_ == 0; }

  // Whether this node may act as leader at `now` (see the header): elected, the lease not
  // known lost, and now before valid_until().
  bool may_lead(MonoTime now) const;
  // The end of validity of the current lease (meaningful while leading).
  MonoTime valid_until() const;
  const std::optional<Leadership>& leadership() const { return leading_; }
  uint64_t terms_won() const { return terms_won_; }

  // How long a lease renewed (or granted) at `sent` keeps this node leader.
  static MonoTime validity_end(MonoTime sent, const ElectorOptions& o);
  static MonoTime validity_end(MonoTime sent, Nanos ttl, const ElectorOptions& o);

 private:
  struct LeaseState;

  Task<void> run();
  // One leadership: grant a lease (and start renewing it), campaign, confirm.
  Task<Result<Leadership>> win();
  // Watches the lease while leading; returns why leadership ended.
  Task<Status> hold();
  void depose(const Status& why);
  // Stops renewing the current lease and revokes it (best effort).
  void drop_lease();
  static Task<void> renew_loop(Env& env, Coordinator& coordinator, ElectorOptions options,
                               std::shared_ptr<LeaseState> lease);
  // While leading: asks leader() every renew_interval and marks the lease lost when the
  // coordinator records another leader, or none.
  static Task<void> confirm_loop(Env& env, Coordinator& coordinator, ElectorOptions options,
                                 std::shared_ptr<LeaseState> lease, Leadership won);

  Env& env_;
  Coordinator& coordinator_;
  ElectorOptions options_;
  Elected on_elected_;
  Deposed on_deposed_;
  std::optional<Leadership> leading_;
  std::shared_ptr<LeaseState> lease_;  // from grant until dropped
  uint64_t terms_won_ = 0;
  WaitQueue wake_;  // hold() waits here: a resignation wakes it
  bool retiring_ = false;
  std::shared_ptr<int> revokes_in_flight_ = std::make_shared<int>(0);
  LogLimiter not_elected_log_{std::chrono::seconds(5)};
};

}  // namespace quire
