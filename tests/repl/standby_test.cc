// The standby's state machine in the simulated replica set: start-up, reads gated on
// SECONDARY, the checkpoint manager's policies, retries and deadline, a corrupt checkpoint,
// log gaps, and replay by seed.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pagelog/page_server.h"
#include "pagelog/segment_format.h"
#include "sim/replica_set_sim.h"

namespace quire {
namespace {

using namespace std::chrono_literals;

constexpr TableId kTable{16};
using StandbyRead = Result<AtTs<std::optional<std::string>>>;

ReplicaSetConfig small_config(uint64_t seed, PickupPolicy policy = PickupPolicy::kAccept) {
  ReplicaSetConfig c;
  c.seed = seed;
  c.policy = policy;
  c.standbys = 1;
  c.tables = 1;
  c.keys_per_table = 16;
  c.primary.checkpoint_interval = Nanos(0);  // the tests decide when checkpoints happen
  c.primary.retention_min_age = Nanos(0);    // retention follows the last two checkpoints
  return c;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class StandbyTest : public ::testing::Test {
 protected:
  void make(const ReplicaSetConfig& c) { sim_ = std::make_unique<ReplicaSetSim>(c); }
  void up(const ReplicaSetConfig& c) {
    make(c);
    std::string why;
    ASSERT_TRUE(sim_->bring_up(10s, &why)) << why;
  }

  ReplicaSetSim& sim() { return *sim_; }
  SimWorld& world() { return sim_->world(); }
  NodeId standby_id() const { return sim_->standby_ids().at(0); }
  Standby* standby() { return sim_->standby(0); }
  Primary* primary() { return sim_->primary(); }

  // An acknowledged write on the primary, recorded in the model for check_convergence.
  Timestamp put(const std::string& key, const std::string& value) {
    std::optional<Result<Timestamp>> r;
    Primary* p = primary();
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return Timestamp();
    EXPECT_TRUE(sim_->run_on(
        sim_->primary_id(),
        [p, &r, key, value]() -> Task<void> { r = co_await p->put(kTable, key, value); }, 10s));
    EXPECT_TRUE(r.has_value() && r->is_ok())
        << (r.has_value() ? r->status().to_string() : "did not finish");
    if (!r.has_value() || !r->is_ok()) return Timestamp();
    sim_->model().acked(kTable, key, **r, value);
    return **r;
  }

  Timestamp del(const std::string& key) {
    std::optional<Result<Timestamp>> r;
    Primary* p = primary();
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return Timestamp();
    EXPECT_TRUE(sim_->run_on(
        sim_->primary_id(), [p, &r, key]() -> Task<void> { r = co_await p->del(kTable, key); },
        10s));
    EXPECT_TRUE(r.has_value() && r->is_ok())
        << (r.has_value() ? r->status().to_string() : "did not finish");
    if (!r.has_value() || !r->is_ok()) return Timestamp();
    sim_->model().acked(kTable, key, **r, std::nullopt);
    return **r;
  }

  CheckpointInfo checkpoint() {
    std::optional<Result<CheckpointInfo>> r;
    Primary* p = primary();
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return {};
    EXPECT_TRUE(sim_->run_on(
        sim_->primary_id(), [p, &r]() -> Task<void> { r = co_await p->checkpoint_now(); }, 10s));
    EXPECT_TRUE(r.has_value() && r->is_ok())
        << (r.has_value() ? r->status().to_string() : "did not finish");
    if (!r.has_value() || !r->is_ok()) return {};
    return **r;
  }

  // A read on the standby node, at its applied ts unless `ts` is given.
  StandbyRead get_on(NodeId node, Standby* s, const std::string& key,
                     std::optional<Timestamp> ts = {}) {
    std::optional<StandbyRead> r;
    if (s == nullptr) return unavailable("standby is down");
    sim_->run_on(
        node, [s, &r, key, ts]() -> Task<void> { r = co_await s->get(kTable, key, ts); }, 10s);
    if (!r.has_value()) return Status(Code::kDeadlineExceeded, "read did not finish");
    return std::move(*r);
  }
  StandbyRead standby_get(const std::string& key, std::optional<Timestamp> ts = {}) {
    return get_on(standby_id(), standby(), key, ts);
  }

  std::optional<std::string> primary_get(const std::string& key, Timestamp ts) {
    std::optional<Result<std::optional<std::string>>> r;
    Primary* p = primary();
    if (p == nullptr) return std::nullopt;
    sim_->run_on(
        sim_->primary_id(),
        [p, &r, key, ts]() -> Task<void> { r = co_await p->get(kTable, key, ts); }, 10s);
    EXPECT_TRUE(r.has_value() && r->is_ok());
    if (!r.has_value() || !r->is_ok()) return std::nullopt;
    return **r;
  }

  bool wait_for(const std::function<bool()>& done, Nanos limit) {
    return sim_->run_until(done, limit);
  }

  // The standby is SECONDARY and applied everything the primary acknowledged so far.
  bool caught_up(Nanos limit = 5s) {
    return wait_for(
        [this] {
          Standby* s = standby();
          Primary* p = primary();
          return s && p && s->state() == StandbyState::kSecondary &&
                 s->applied_ts() >= p->applied_ts();
        },
        limit);
  }

  std::string violations() {
    sim_->collect_aborts();
    std::string out;
    for (const std::string& v : sim_->violations()) out += v + "\n";
    return out;
  }

  // The checkpoint of the report's race: taken inside the T1-T2 gap of a KEK rotation, so
  // it carries the keystore before the rotation. Returns once the standby applied the
  // rotation's keystore entry from the log and the checkpoint is materialized and applied
  // there; the standby's pick-ups stay held until the caller releases them.
  std::optional<CheckpointInfo> stale_keystore_checkpoint() {
    Standby* s = standby();
    Primary* p = primary();
    if (s == nullptr || p == nullptr) return std::nullopt;
    put("before-rotation", "b");  // so the checkpoint inside the gap has something to write
    s->hold_pickups(true);
    const uint32_t old_kek = p->engine().keystore().active_kek().value_or(0);
    auto rotation = std::make_shared<std::optional<Result<uint32_t>>>();
    sim_->spawn_on(sim_->primary_id(), "rotation", [p, rotation]() -> Task<void> {
      auto r = co_await p->rotate_active_kek(Nanos(500ms));
      *rotation = std::move(r);
    });
    if (!wait_for([&] { return p->engine().keystore().active_kek().value_or(0) > old_kek; }, 5s)) {
      ADD_FAILURE() << "T1 of the rotation did not happen";
      return std::nullopt;
    }
    const CheckpointInfo cp = checkpoint();
    const bool applied = wait_for(
        [&] {
          return rotation->has_value() &&
                 s->engine().keystore().version() >= p->logged_keystore_version() &&
                 s->commit_lsn() >= cp.completion_lsn && s->applied_ts() >= cp.checkpoint_ts;
        },
        10s);
    if (!applied || !(*rotation)->is_ok()) {
      ADD_FAILURE() << "the standby did not apply the rotation: "
                    << (rotation->has_value() ? (*rotation)->status().to_string()
                                              : "T2 did not finish");
      return std::nullopt;
    }
    EXPECT_LT(cp.keystore_version, s->engine().keystore().version()) << "the race was not reached";
    return cp;
  }

  std::unique_ptr<ReplicaSetSim> sim_;
};

// ---- Start-up and reads -------------------------------------------------------------------

TEST_F(StandbyTest, StartupCatchesUpToSecondaryAndServesAcknowledgedWrites) {
  make(small_config(3));
  for (NodeId ps : sim().server_ids()) world().start(ps);
  world().start(sim().primary_id());
  ASSERT_TRUE(wait_for([&] { return primary() != nullptr; }, 10s));
  world().start(standby_id());
  // Every state the standby passes through, sampled after every event.
  std::vector<StandbyState> seen;
  ASSERT_TRUE(wait_for(
      [&] {
        Standby* s = standby();
        if (s == nullptr) return false;
        if (seen.empty() || seen.back() != s->state()) seen.push_back(s->state());
        return s->state() == StandbyState::kSecondary;
      },
      10s));
  const std::vector<StandbyState> want = {StandbyState::kStartup, StandbyState::kCatchingUp,
                                          StandbyState::kSecondary};
  EXPECT_EQ(seen, want);
  EXPECT_EQ(standby()->engine().installed_checkpoint_lsn(),
            primary()->engine().installed_checkpoint_lsn());

  const Timestamp t1 = put("k1", "one");
  put("k2", "two");
  const Timestamp t3 = put("k1", "one-again");
  del("k2");
  ASSERT_TRUE(caught_up());
  const Timestamp applied = standby()->applied_ts();
  EXPECT_EQ(applied, primary()->applied_ts());

  auto k1 = standby_get("k1");
  ASSERT_TRUE(k1.is_ok()) << k1.status().to_string();
  EXPECT_EQ(k1->ts, applied);
  EXPECT_EQ(k1->value, std::optional<std::string>("one-again"));
  EXPECT_EQ(k1->value, primary_get("k1", applied));
  auto k2 = standby_get("k2");
  ASSERT_TRUE(k2.is_ok()) << k2.status().to_string();
  EXPECT_EQ(k2->value, std::nullopt);  // deleted
  // Older timestamps read the versions the primary acknowledged then.
  auto k1_at_t1 = standby_get("k1", t1);
  ASSERT_TRUE(k1_at_t1.is_ok()) << k1_at_t1.status().to_string();
  EXPECT_EQ(k1_at_t1->value, std::optional<std::string>("one"));
  auto k2_at_t3 = standby_get("k2", t3);
  ASSERT_TRUE(k2_at_t3.is_ok());
  EXPECT_EQ(k2_at_t3->value, std::optional<std::string>("two"));
  // A timestamp the standby has not applied is refused, retriably.
  auto ahead = standby_get("k1", Timestamp(applied.value + 1));
  EXPECT_EQ(ahead.code(), Code::kUnavailable) << ahead.status().to_string();
  EXPECT_TRUE(world().aborts().empty());
}

// The record that carries a write's commit point may sit in a slow sync on the standby's
// page server while W others made it durable; the server passes the point on as the record
// arrives (LogChunk::commit_hint), so the standby applies the write it already fetched.
TEST_F(StandbyTest, ASlowSyncOnItsPageServerDoesNotHoldBackWhatItFetched) {
  ReplicaSetConfig c = small_config(7);
  // Only records carry commit points here (with hints, b's own would come at once).
  c.primary.commit_hints = false;
  up(c);
  put("a", "1");
  ASSERT_TRUE(caught_up());
  const Timestamp tb = put("b", "2");
  // b's record is stored on the standby's server too (W others may have acknowledged it
  // first) before that server slows down.
  auto complete_on = [&](NodeId s) {
    auto* ps = dynamic_cast<PageServer*>(world().app(s));
    return ps != nullptr && ps->store() != nullptr ? ps->store()->complete_lsn() : Lsn();
  };
  ASSERT_TRUE(wait_for(
      [&] {
        Lsn top;
        for (NodeId s : sim().server_ids()) top = std::max(top, complete_on(s));
        return complete_on(sim().preferred_server(0)) == top;
      },
      1s));
  // The standby's server now takes 300 ms for every sync; the other two keep W.
  DiskFaults slow;
  slow.sync_latency_min = slow.sync_latency_max = 300ms;
  world().disk(sim().preferred_server(0)).set_faults(slow);
  const uint64_t hints_before = standby()->stats().commit_hints_taken;
  const Timestamp tc = put("c", "3");  // its record names b's commit point
  ASSERT_TRUE(wait_for([&] { return standby()->applied_ts() >= tb; }, 100ms))
      << "b waited for the sync of the record after it";
  EXPECT_LT(standby()->applied_ts(), tc);  // c itself is not on the standby's server yet
  EXPECT_GT(standby()->stats().commit_hints_taken, hints_before);
  auto b = standby_get("b");
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->value, std::optional<std::string>("2"));
  world().disk(sim().preferred_server(0)).set_faults(DiskFaults{});
  ASSERT_TRUE(caught_up());
  EXPECT_EQ(violations(), "");
}

// With a long poll the standby does not wait out a poll interval: a write is applied as
// soon as the next record, which names its commit point, reaches the standby's server.
TEST_F(StandbyTest, ALongPollAppliesAWriteWithoutWaitingForTheNextPoll) {
  ReplicaSetConfig c = small_config(9);
  c.standby.log_wait = 100ms;
  up(c);
  ASSERT_TRUE(caught_up());
  Timestamp previous = put("k", "0");
  for (int i = 1; i <= 20; i++) {
    world().run_for(7ms);  // an idle standby would be asleep in its 20 ms poll interval
    const Timestamp t = put("k", std::to_string(i));  // names `previous`'s commit point
    const MonoTime acked = world().now();
    ASSERT_TRUE(wait_for([&] { return standby()->applied_ts() >= previous; }, 1s));
    EXPECT_LT(world().now() - acked, Nanos(3ms)) << "write " << i;
    previous = t;
  }
  EXPECT_EQ(violations(), "");
}

// The last write before a pause reaches the standby without waiting for a next write or
// the heartbeat: once it is acknowledged and no group follows to carry its commit point,
// the primary sends the point to the page servers on its own (a commit hint).
TEST_F(StandbyTest, TheLastWriteBeforeAPauseIsAppliedWithoutAHeartbeat) {
  for (const bool hints : {true, false}) {
    SCOPED_TRACE(hints ? "commit hints" : "no commit hints");
    ReplicaSetConfig c = small_config(11);
    c.standby.log_wait = 100ms;
    c.primary.heartbeat_interval = 10s;  // no heartbeat within the test
    c.primary.commit_hints = hints;
    up(c);
    ASSERT_TRUE(caught_up(20s));
    const uint64_t hints_before = primary()->stats().commit_hints;
    for (int i = 1; i <= 10; i++) {
      const Timestamp t = put("k", std::to_string(i));
      const MonoTime acked = world().now();
      const bool applied = wait_for([&] { return standby()->applied_ts() >= t; }, 1s);
      // Without hints the write waits for the next record: there is none within the second.
      EXPECT_EQ(applied, hints) << "write " << i;
      if (!applied) break;
      EXPECT_LT(world().now() - acked, Nanos(5ms)) << "write " << i;
      world().run_for(30ms);  // a pause: no record follows
    }
    EXPECT_EQ(primary()->stats().commit_hints, hints ? hints_before + 10 : 0);
    EXPECT_EQ(violations(), "");
  }
}

// The standby's page server fills its disk: it keeps serving reads and taking the writer's
// commit hints, but stores no more records. The standby must not wait on it for the writes
// the other two servers made durable: it applies each acknowledged write within a second.
TEST_F(StandbyTest, AFullDiskOnItsPageServerDoesNotHoldBackTheStandby) {
  ReplicaSetConfig c = small_config(13);
  c.standby.log_wait = 100ms;
  c.primary.heartbeat_interval = 10s;  // no heartbeat carries a commit point within the test
  up(c);
  ASSERT_TRUE(caught_up(20s));
  const NodeId full = sim().preferred_server(0);
  DiskFaults f;
  f.capacity_bytes = world().disk(full).used_bytes();
  world().disk(full).set_faults(f);
  // Values of 16 KiB pass the zeros the server wrote ahead of its records within a few
  // writes; from then on it refuses every write.
  const std::string value(16 << 10, 'v');
  for (int i = 1; i <= 40; i++) {
    const Timestamp t = put("k" + std::to_string(i), value);
    ASSERT_TRUE(wait_for([&] { return standby()->applied_ts() >= t; }, 1s)) << "write " << i;
  }
  EXPECT_EQ(world().restarts_requested(full), 0u);
  world().disk(full).set_faults(DiskFaults{});
  EXPECT_EQ(violations(), "");
}

TEST_F(StandbyTest, ReadsAreRefusedWhileResyncingAndCorrectAfterwards) {
  up(small_config(5));
  put("k", "v1");
  ASSERT_TRUE(caught_up());
  Standby* s = standby();
  const uint64_t served_before = s->stats().reads_served;

  // Cut the standby off the page service, so its rebuild cannot finish, and step down.
  world().network().isolate(standby_id());
  std::optional<StandbyRead> first;
  StandbyState state_after = StandbyState::kSecondary;
  ASSERT_TRUE(sim().run_on(
      standby_id(),
      [s, &first, &state_after]() -> Task<void> {
        s->step_down("test: operator step-down");
        state_after = s->state();
        auto r = co_await s->get(kTable, "k");
        first = std::move(r);
      },
      5s));
  EXPECT_EQ(state_after, StandbyState::kResync);
  ASSERT_TRUE(first.has_value());
  ASSERT_FALSE(first->is_ok()) << "a resyncing standby answered "
                               << (*first)->value.value_or("<absent>");
  EXPECT_EQ(first->code(), Code::kUnavailable);
  EXPECT_TRUE(contains(first->status().to_string(), "resyncing")) << first->status().to_string();

  // While it is cut off, every read is refused with a retriable error, and it never
  // becomes SECONDARY.
  Env* env = world().env(standby_id());
  ASSERT_NE(env, nullptr);
  auto refused = std::make_shared<std::vector<Status>>();
  auto answered = std::make_shared<int>(0);
  sim().spawn_on(standby_id(), "reader", [s, env, refused, answered]() -> Task<void> {
    for (int i = 0; i < 20; i++) {
      auto r = co_await s->get(kTable, "k");
      if (r.is_ok()) {
        (*answered)++;
      } else {
        refused->push_back(r.status());
      }
      Status slept = co_await env->executor().sleep(Nanos(50ms));
      if (!slept.is_ok()) co_return;
    }
  });
  bool became_secondary = false;
  wait_for(
      [&] {
        became_secondary = became_secondary || s->state() == StandbyState::kSecondary;
        return false;
      },
      1500ms);
  EXPECT_FALSE(became_secondary);
  EXPECT_EQ(*answered, 0);
  EXPECT_EQ(s->stats().reads_served, served_before);
  ASSERT_FALSE(refused->empty());
  for (const Status& st : *refused) {
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.to_string();
    EXPECT_TRUE(contains(st.to_string(), "resyncing") || contains(st.to_string(), "catching up"))
        << st.to_string();
  }
  EXPECT_GE(s->stats().resyncs, 1u);

  // Healed: back to SECONDARY, and reads see the writes made meanwhile.
  world().network().heal_all();
  put("k", "v2");
  ASSERT_TRUE(caught_up(10s)) << "state " << standby_state_name(s->state());
  auto after = standby_get("k");
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(after->value, std::optional<std::string>("v2"));
  EXPECT_TRUE(world().aborts().empty());
}

// A log record this standby cannot apply (a CMK version its key service refuses, as a
// standby whose CMK file is stale would) fails again after every rebuild: the standby backs
// off between re-syncs instead of looping at full speed, and follows again once it can.
TEST_F(StandbyTest, ARecordThatCannotBeAppliedBacksOffBetweenResyncs) {
  up(small_config(11));
  put("k", "v1");
  ASSERT_TRUE(caught_up());
  Primary* p = primary();
  ASSERT_NE(p, nullptr);
  std::optional<Status> rotated;
  ASSERT_TRUE(sim().run_on(
      sim().primary_id(), [p, &rotated]() -> Task<void> { rotated = co_await p->rotate_cmk(); },
      10s));
  ASSERT_TRUE(rotated.has_value() && rotated->is_ok());
  sim().kms().faults().refused.insert(2);  // the standby cannot unwrap what v2 wraps
  const uint64_t resyncs_before = standby()->stats().resyncs;
  wait_for([] { return false; }, 10s);
  const uint64_t resyncs = standby()->stats().resyncs - resyncs_before;
  EXPECT_GE(resyncs, 1u);
  // Backoff from 50 ms doubling to resync_backoff_max (5 s): about 8 in 10 s. Without it,
  // every simulated millisecond or so.
  EXPECT_LE(resyncs, 12u);
  RecordProperty("resyncs", static_cast<int>(resyncs));
  EXPECT_NE(standby()->state(), StandbyState::kSecondary);

  sim().kms().faults().refused.clear();
  put("k", "v2");
  ASSERT_TRUE(caught_up(15s)) << "state " << standby_state_name(standby()->state());
  auto after = standby_get("k");
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(after->value, std::optional<std::string>("v2"));
  EXPECT_TRUE(world().aborts().empty());
}

// ---- A checkpoint with a stale keystore, under each policy ---------------------------------

TEST_F(StandbyTest, StaleKeystoreUnderAcceptInstallsAndKeepsTheNewerKeystore) {
  up(small_config(7, PickupPolicy::kAccept));
  auto cp = stale_keystore_checkpoint();
  ASSERT_TRUE(cp.has_value());
  Standby* s = standby();
  const uint64_t keystore_version = s->engine().keystore().version();
  s->hold_pickups(false);
  ASSERT_TRUE(
      wait_for([&] { return s->engine().installed_checkpoint_lsn() == cp->completion_lsn; }, 5s));
  EXPECT_EQ(s->stats().pickups.stale_keystore_accepted, 1u);
  EXPECT_EQ(s->last_pickup().outcome, PickupOutcome::kStaleKeystoreInstalled);
  EXPECT_TRUE(s->last_pickup().installed());
  EXPECT_EQ(s->last_action(), PickupAction::kAdvance);
  EXPECT_EQ(s->engine().keystore().version(), keystore_version);
  EXPECT_EQ(s->state(), StandbyState::kSecondary);
  EXPECT_EQ(s->stats().resyncs, 0u);

  put("after", "a");
  checkpoint();
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

TEST_F(StandbyTest, StaleKeystoreUnderSkipWaitsForANewerCheckpoint) {
  up(small_config(7, PickupPolicy::kSkip));
  auto cp = stale_keystore_checkpoint();
  ASSERT_TRUE(cp.has_value());
  Standby* s = standby();
  const Lsn installed_before = s->engine().installed_checkpoint_lsn();
  ASSERT_NE(installed_before, cp->completion_lsn);
  s->hold_pickups(false);
  ASSERT_TRUE(wait_for([&] { return s->stats().pickups.skipped >= 1; }, 5s));
  EXPECT_EQ(s->last_pickup().checkpoint_lsn, cp->completion_lsn);
  EXPECT_EQ(s->last_action(), PickupAction::kWait);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), installed_before);
  // The skipped checkpoint is left alone: no new attempts, nothing installed, no step-down.
  const uint64_t attempts = s->stats().pickups.attempts;
  world().run_for(1s);
  EXPECT_EQ(s->stats().pickups.attempts, attempts);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), installed_before);
  EXPECT_EQ(s->state(), StandbyState::kSecondary);
  EXPECT_EQ(s->stats().resyncs, 0u);
  EXPECT_EQ(s->stats().pickups.stale_keystore_accepted, 0u);

  // A newer checkpoint carries the current keystore and installs.
  put("after", "a");
  const CheckpointInfo next = checkpoint();
  EXPECT_EQ(next.keystore_version, s->engine().keystore().version());
  ASSERT_TRUE(
      wait_for([&] { return s->engine().installed_checkpoint_lsn() == next.completion_lsn; }, 5s));
  EXPECT_EQ(s->last_pickup().outcome, PickupOutcome::kInstalled);
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

TEST_F(StandbyTest, StaleKeystoreUnderResyncStepsDownAndComesBackWithThePrimarysContent) {
  up(small_config(7, PickupPolicy::kResync));
  auto cp = stale_keystore_checkpoint();
  ASSERT_TRUE(cp.has_value());
  Standby* s = standby();
  s->hold_pickups(false);
  ASSERT_TRUE(wait_for([&] { return s->stats().pickups.resyncs >= 1; }, 5s));
  EXPECT_GE(s->stats().resyncs, 1u);
  EXPECT_EQ(s->last_pickup().outcome, PickupOutcome::kStaleKeystore);
  EXPECT_FALSE(s->last_pickup().installed());
  EXPECT_EQ(s->last_action(), PickupAction::kStepDown);
  ASSERT_TRUE(wait_for([&] { return s->state() == StandbyState::kSecondary; }, 10s))
      << "state " << standby_state_name(s->state()) << ": " << s->resync_error().to_string();
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), cp->completion_lsn);
  put("after", "a");
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

TEST_F(StandbyTest, StaleKeystoreUnderAbortIsTheReportsCrash) {
  up(small_config(7, PickupPolicy::kAbort));
  auto cp = stale_keystore_checkpoint();
  ASSERT_TRUE(cp.has_value());
  standby()->hold_pickups(false);
  ASSERT_TRUE(wait_for([&] { return !world().aborts().empty(); }, 5s));
  world().run_for(1s);
  ASSERT_EQ(world().aborts().size(), 1u);
  EXPECT_EQ(world().aborts()[0].node, standby_id());
  EXPECT_TRUE(contains(world().aborts()[0].why, "StaleKeystore")) << world().aborts()[0].why;
  EXPECT_FALSE(world().is_up(standby_id()));
}

// ---- KeystoreAhead --------------------------------------------------------------------------

// A checkpoint is picked up only once the log covers it, and the log is applied in order,
// so a checkpoint can need keys the standby has not applied only while applying the
// keystore entry fails (the KMS is down). The harness keeps its KMS service to itself;
// this standby talks to a second service drawn from the same seed stream, which holds the
// same CMK, so the test can take the KMS away from this standby alone.
TEST_F(StandbyTest, KeystoreAheadIsRetriedUntilTheLogBringsTheKeys) {
  ReplicaSetConfig c = small_config(9);
  c.standbys = 0;
  up(c);
  struct OwnKms {
    std::unique_ptr<Random> random;
    std::unique_ptr<SimKmsService> service;
  };
  auto kms = std::make_shared<OwnKms>();
  kms->random = world().random_stream("kms-service");
  kms->service = std::make_unique<SimKmsService>(*kms->random);
  ReplicaConfig rc;
  rc.role = ReplicaRole::kStandby;
  rc.servers = sim().server_addresses();
  rc.write_quorum = sim().server_addresses().size() / 2 + 1;
  rc.engine = c.engine;
  rc.engine.policy = c.policy;
  rc.standby = c.standby;
  // The factory keeps the service alive as long as the world can start the node.
  ReplicaNode::KmsFactory kms_factory = [kms](Env& env) -> std::unique_ptr<Kms> {
    return std::make_unique<SimKms>(*kms->service, env);
  };
  const NodeId id = world().add_node("standby-own-kms", [rc, kms_factory](Env& env) {
    return std::make_unique<ReplicaNode>(env, rc, kms_factory);
  });
  world().start(id);
  auto node = [&]() { return dynamic_cast<ReplicaNode*>(world().app(id)); };
  ASSERT_TRUE(wait_for(
      [&] { return node() && node()->standby()->state() == StandbyState::kSecondary; }, 10s));
  Standby* s = node()->standby();
  Primary* p = primary();

  // Cut off, it misses T1 and T2 of a rotation, a write inside the gap, and a checkpoint
  // after T2 that carries the new keystore. The write inside the gap is logged before T2
  // at a later ts, so applying it makes the checkpoint "applied" while T2 is not.
  put("k", "before");
  ASSERT_TRUE(wait_for([&] { return s->applied_ts() >= p->applied_ts(); }, 5s));
  world().network().isolate(id);
  const uint32_t old_kek = p->engine().keystore().active_kek().value_or(0);
  auto rotation = std::make_shared<std::optional<Result<uint32_t>>>();
  sim().spawn_on(sim().primary_id(), "rotation", [p, rotation]() -> Task<void> {
    auto r = co_await p->rotate_active_kek(Nanos(300ms));
    *rotation = std::move(r);
  });
  ASSERT_TRUE(
      wait_for([&] { return p->engine().keystore().active_kek().value_or(0) > old_kek; }, 5s));
  const Timestamp gap_write = put("k", "inside-the-gap");
  ASSERT_TRUE(wait_for([&] { return rotation->has_value(); }, 5s));
  ASSERT_TRUE((*rotation)->is_ok()) << (*rotation)->status().to_string();
  const CheckpointInfo cp = checkpoint();
  ASSERT_GT(cp.keystore_version, s->engine().keystore().version());
  ASSERT_LE(cp.checkpoint_ts, gap_write);
  const Lsn installed_before = s->engine().installed_checkpoint_lsn();

  kms->service->faults().unavailable = true;
  world().network().heal_all();
  ASSERT_TRUE(wait_for([&] { return s->stats().pickups.keystore_ahead_retries > 0; }, 10s))
      << "last pick-up " << pickup_outcome_name(s->last_pickup().outcome);
  EXPECT_EQ(s->last_pickup().checkpoint_lsn, cp.completion_lsn);
  EXPECT_EQ(s->last_action(), PickupAction::kRetry);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), installed_before);
  EXPECT_LT(s->engine().keystore().version(), cp.keystore_version);
  world().run_for(500ms);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), installed_before);
  EXPECT_EQ(s->stats().resyncs, 0u);
  EXPECT_EQ(s->state(), StandbyState::kSecondary);

  // The KMS is back: the log applies T2, and the checkpoint installs.
  kms->service->faults().unavailable = false;
  ASSERT_TRUE(
      wait_for([&] { return s->engine().installed_checkpoint_lsn() == cp.completion_lsn; }, 10s))
      << "last pick-up " << pickup_outcome_name(s->last_pickup().outcome) << ": "
      << s->last_pickup().detail.to_string();
  EXPECT_EQ(s->last_pickup().outcome, PickupOutcome::kInstalled);
  EXPECT_EQ(s->engine().keystore().version(), p->engine().keystore().version());
  EXPECT_EQ(s->stats().resyncs, 0u);
  EXPECT_EQ(s->stats().pickups.deadline_escalations, 0u);
  auto r = get_on(id, s, "k");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->value, std::optional<std::string>("inside-the-gap"));
  EXPECT_TRUE(world().aborts().empty());
}

// ---- Retry deadline -------------------------------------------------------------------------

// The standby reaches only its preferred page server. The log still reads (one server has
// it all), but the latest checkpoint needs N - W + 1 = 2 answers, so every pick-up fails
// with Unavailable: past the retry deadline the manager steps down.
TEST_F(StandbyTest, RetriableFailuresPastTheDeadlineEscalateToResync) {
  ReplicaSetConfig c = small_config(13);
  c.standby.retry_deadline = 2s;
  up(c);
  put("k", "v0");
  ASSERT_TRUE(caught_up());
  Standby* s = standby();
  const NodeId reachable = sim().preferred_server(0);
  for (NodeId ps : sim().server_ids()) {
    if (ps != reachable) world().network().partition(standby_id(), ps);
  }
  // The log keeps applying while pick-ups fail.
  put("k", "v1");
  ASSERT_TRUE(caught_up());
  bool saw_resync = false;
  ASSERT_TRUE(wait_for(
      [&] {
        saw_resync = saw_resync || s->state() == StandbyState::kResync;
        return s->stats().pickups.deadline_escalations >= 1;
      },
      15s))
      << "unavailable retries " << s->stats().pickups.unavailable_retries;
  EXPECT_GT(s->stats().pickups.unavailable_retries, 0u);
  EXPECT_GE(s->stats().pickups.resyncs, 1u);
  EXPECT_TRUE(wait_for(
      [&] {
        saw_resync = saw_resync || s->state() == StandbyState::kResync;
        return saw_resync;
      },
      1s));
  EXPECT_GE(s->stats().resyncs, 1u);

  world().network().heal_all();
  put("k", "v2");
  checkpoint();
  EXPECT_TRUE(sim().check_convergence(15s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

// ---- A corrupt checkpoint -------------------------------------------------------------------

// Flips a bit inside the record `lsn` on every page server's disk. Returns how many copies
// it damaged.
int corrupt_record_everywhere(ReplicaSetSim& sim, Lsn lsn) {
  int damaged = 0;
  for (NodeId ps : sim.server_ids()) {
    SimDiskStore& disk = sim.world().disk(ps);
    for (const std::string& path : disk.current_files()) {
      const std::string name = path.substr(path.find_last_of('/') + 1);
      auto number = parse_segment_file_name(name);
      if (!number.is_ok()) continue;
      auto bytes = disk.current_content(path);
      if (!bytes) continue;
      SegmentScan scan = scan_segment(ByteView(bytes->data(), bytes->size()), *number);
      for (const ScannedRecord& r : scan.records) {
        if (r.header.lsn == lsn && disk.flip_bit(path, r.offset + r.size / 2, 3)) damaged++;
      }
    }
  }
  return damaged;
}

TEST_F(StandbyTest, CorruptLatestCheckpointStepsDownAndRecoversOnTheNextGoodOne) {
  up(small_config(17));
  put("k", "v1");
  const CheckpointInfo good = checkpoint();
  ASSERT_TRUE(wait_for(
      [&] { return standby()->engine().installed_checkpoint_lsn() == good.completion_lsn; }, 5s));
  Standby* s = standby();
  s->hold_pickups(true);
  put("k", "v2");
  const CheckpointInfo bad = checkpoint();
  ASSERT_EQ(corrupt_record_everywhere(sim(), bad.metadata_lsn), 3);
  ASSERT_TRUE(caught_up());
  s->hold_pickups(false);
  ASSERT_TRUE(wait_for([&] { return s->stats().pickups.corrupt >= 1; }, 10s))
      << "last pick-up " << pickup_outcome_name(s->last_pickup().outcome);
  EXPECT_EQ(s->last_pickup().checkpoint_lsn, bad.completion_lsn);
  EXPECT_EQ(s->last_action(), PickupAction::kStepDown);
  EXPECT_GE(s->stats().resyncs, 1u);
  EXPECT_NE(s->state(), StandbyState::kSecondary);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), good.completion_lsn);
  auto refused = standby_get("k");
  EXPECT_EQ(refused.code(), Code::kUnavailable)
      << (refused.is_ok() ? "answered" : refused.status().to_string());

  // Without a newer checkpoint it rebuilds from the one it has installed plus the log,
  // serves again, and does not try the refused checkpoint again.
  ASSERT_TRUE(wait_for([&] { return s->state() == StandbyState::kSecondary; }, 10s))
      << "state " << standby_state_name(s->state()) << ": " << s->resync_error().to_string();
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), good.completion_lsn);
  world().run_for(2s);
  EXPECT_EQ(s->stats().pickups.corrupt, 1u);
  EXPECT_EQ(s->state(), StandbyState::kSecondary);
  EXPECT_TRUE(standby_get("k").is_ok());

  // A good checkpoint after it is picked up as usual.
  put("k", "v3");
  const CheckpointInfo next = checkpoint();
  ASSERT_TRUE(wait_for(
      [&] {
        return s->state() == StandbyState::kSecondary &&
               s->engine().installed_checkpoint_lsn() == next.completion_lsn;
      },
      15s))
      << "state " << standby_state_name(s->state()) << ", installed "
      << s->engine().installed_checkpoint_lsn().value << ": " << s->resync_error().to_string();
  ASSERT_TRUE(caught_up());
  auto after = standby_get("k");
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(after->value, std::optional<std::string>("v3"));
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

// ---- Log gaps -------------------------------------------------------------------------------

// Cut off while the primary writes two checkpoints (the second moves the page service's
// retention to the first one's log position), the standby finds the records it needs gone,
// re-syncs from the latest checkpoint and catches up.
TEST_F(StandbyTest, LogGapWhileCutOffResyncsFromTheLatestCheckpoint) {
  up(small_config(19));
  put("k", "v0");
  ASSERT_TRUE(caught_up());
  Standby* s = standby();
  world().network().isolate(standby_id());
  put("k", "v1");
  checkpoint();
  put("k", "v2");
  const CheckpointInfo latest = checkpoint();
  put("k", "v3");
  world().network().heal_all();
  ASSERT_TRUE(wait_for([&] { return s->stats().log_gaps >= 1; }, 10s));
  ASSERT_TRUE(caught_up(10s)) << "state " << standby_state_name(s->state()) << ": "
                              << s->resync_error().to_string();
  EXPECT_GE(s->stats().resyncs, 1u);
  EXPECT_EQ(s->engine().installed_checkpoint_lsn(), latest.completion_lsn);
  auto r = standby_get("k");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->value, std::optional<std::string>("v3"));
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

// Down (crashed) across two checkpoints, a restarted standby starts from the latest one.
TEST_F(StandbyTest, RestartAfterTwoCheckpointsStartsFromTheLatest) {
  up(small_config(23));
  put("k", "v0");
  ASSERT_TRUE(caught_up());
  world().crash(standby_id(), UnsyncedOnCrash::kLose);
  put("k", "v1");
  checkpoint();
  put("k", "v2");
  const CheckpointInfo latest = checkpoint();
  put("k", "v3");
  world().start(standby_id());
  ASSERT_TRUE(caught_up(10s));
  EXPECT_EQ(standby()->engine().installed_checkpoint_lsn(), latest.completion_lsn);
  auto r = standby_get("k");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->value, std::optional<std::string>("v3"));
  EXPECT_TRUE(sim().check_convergence(10s)) << violations();
  EXPECT_TRUE(world().aborts().empty());
}

// Retention above the latest checkpoint's log position would leave no checkpoint plus log
// that can rebuild a standby: the page service refuses it (docs/pagelog.md, "What the
// server guarantees"), so a standby that steps down rebuilds and serves again.
TEST_F(StandbyTest, RetentionAboveTheLatestCheckpointIsRefusedAndAStandbyRebuilds) {
  up(small_config(29));
  put("k", "v0");
  const CheckpointInfo cp = checkpoint();
  put("k", "v1");
  put("k", "v2");
  ASSERT_TRUE(caught_up());
  Standby* s = standby();
  ASSERT_TRUE(
      wait_for([&] { return s->engine().installed_checkpoint_lsn() == cp.completion_lsn; }, 5s));
  Primary* p = primary();
  const Lsn retention = p->applied_lsn();
  ASSERT_GT(retention, s->engine().checkpoint_log_lsn());
  std::optional<Status> set;
  ASSERT_TRUE(sim().run_on(
      sim().primary_id(),
      [p, retention, &set]() -> Task<void> {
        Deadline deadline = Deadline::never();
        auto st = co_await p->writer().client().set_retention(retention, deadline);
        set = st;
      },
      5s));
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->code(), Code::kNotYetMaterialized) << set->to_string();

  standby()->step_down("test: rebuild");
  ASSERT_TRUE(caught_up(10s)) << "state " << standby_state_name(s->state()) << ": "
                              << s->resync_error().to_string();
  EXPECT_TRUE(s->resync_error().is_ok()) << s->resync_error().to_string();
  auto r = standby_get("k");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->value, std::optional<std::string>("v2"));
  EXPECT_TRUE(world().aborts().empty());
}

// ---- Replay ---------------------------------------------------------------------------------

uint64_t short_run_trace(uint64_t seed) {
  ReplicaSetSim sim(small_config(seed));
  std::string why;
  EXPECT_TRUE(sim.bring_up(10s, &why)) << why;
  sim.start_workload(2);
  sim.world().run_for(300ms);
  if (Standby* s = sim.standby(0)) s->step_down("test: replay");
  sim.start_checkpoints(200ms);
  sim.world().run_for(700ms);
  sim.stop_checkpoints();
  sim.stop_workload();
  EXPECT_TRUE(sim.check_convergence(10s));
  EXPECT_TRUE(sim.violations().empty()) << sim.violations().front();
  EXPECT_GT(sim.counters().writes_acked, 0u);
  return sim.world().trace_hash();
}

TEST(StandbyReplay, SameSeedSameTrace) {
  const uint64_t a = short_run_trace(31);
  const uint64_t b = short_run_trace(31);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, short_run_trace(32));
}

}  // namespace
}  // namespace quire
