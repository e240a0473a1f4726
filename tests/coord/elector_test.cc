#include "coord/elector.h"

#include <optional>

#include <gtest/gtest.h>

#include "coord/sim_coordinator.h"
#include "runtime/sim/sim_world.h"

namespace quire {
namespace {

// What every elector in a world did, in order.
struct Event {
  std::string node;
  bool elected = false;  // false: deposed
  MonoTime at;
  uint64_t epoch = 0;
  Code why = Code::kOk;
};

// The simulated coordinator's client, but the answer to a campaign the coordinator won can
// be lost (lose_next_win): the caller waits out its deadline and hears DeadlineExceeded,
// while its key leads at the coordinator.
class AnswerLosingCoordinator : public Coordinator {
 public:
  AnswerLosingCoordinator(Env& env, Coordinator& inner) : env_(env), inner_(inner) {}
  Task<Result<CoordinatorLease>> grant_lease(Nanos ttl, Deadline deadline) override {
    auto granted = co_await inner_.grant_lease(ttl, deadline);
    if (granted.is_ok() && grant_ttl) granted->ttl = *grant_ttl;
    co_return granted;
  }
  Task<Result<Nanos>> keep_alive(int64_t lease, Deadline deadline) override {
    return inner_.keep_alive(lease, deadline);
  }
  Task<Status> revoke_lease(int64_t lease, Deadline deadline) override {
    return inner_.revoke_lease(lease, deadline);
  }
  Task<Result<Leadership>> campaign(std::string election, int64_t lease, std::string value,
                                    Deadline deadline) override {
    if (answer_with_leader) {
      // A broken answer: whoever leads now, whatever lease campaigned.
      auto current = co_await inner_.leader(election, deadline);
      if (current.is_ok()) co_return current;
    }
    auto won = co_await inner_.campaign(std::move(election), lease, std::move(value), deadline);
    if (!won.is_ok() || !lose_next_win) co_return won;
    lose_next_win = false;
    lost_win = *won;
    lost_at = env_.executor().now();
    (void)co_await env_.executor().sleep_until(deadline);
    co_return Status(Code::kDeadlineExceeded, "the campaign's answer was lost");
  }
  Task<Result<Leadership>> leader(std::string election, Deadline deadline) override {
    return inner_.leader(std::move(election), deadline);
  }
  Task<Result<Leadership>> observe(std::string election, uint64_t known_epoch,
                                   Deadline deadline) override {
    return inner_.observe(std::move(election), known_epoch, deadline);
  }
  Task<Status> resign(Leadership who, Deadline deadline) override {
    return inner_.resign(std::move(who), deadline);
  }

  bool lose_next_win = false;
  bool answer_with_leader = false;  // campaign answers with the current leader's key
  std::optional<Nanos> grant_ttl;   // grants claim this TTL
  std::optional<Leadership> lost_win;
  MonoTime lost_at;

 private:
  Env& env_;
  Coordinator& inner_;
};

// A compute node that only campaigns.
class ElectorApp : public NodeApp {
 public:
  ElectorApp(Env& env, std::vector<Event>* events)
      : env_(env),
        events_(events),
        client_(env, "coord:2379"),
        coordinator_(env, client_),
        elector_(
            env, coordinator_, options(env), [this](const Leadership& l) { note(true, l, {}); },
            [this](const Leadership& l, const Status& why) { note(false, l, why); }) {}
  void start() override { elector_.start(); }
  Elector& elector() { return elector_; }
  AnswerLosingCoordinator& coordinator() { return coordinator_; }

 private:
  static ElectorOptions options(Env& env) {
    ElectorOptions o;
    o.election = "/quire/test/primary";
    o.value = std::string(env.node_name());
    return o;
  }
  void note(bool elected, const Leadership& l, const Status& why) {
    events_->push_back(
        {std::string(env_.node_name()), elected, env_.executor().now(), l.epoch, why.code()});
  }

  Env& env_;
  std::vector<Event>* events_;
  SimCoordinatorClient client_;
  AnswerLosingCoordinator coordinator_;
  Elector elector_;
};

class ElectorTest : public ::testing::Test {
 protected:
  ElectorTest() : world_(11) {
    coord_ = world_.add_node("coord", [](Env& env) {
      return std::make_unique<SimCoordinatorNode>(env, SimCoordinatorOptions{});
    });
    for (const char* name : {"n1", "n2"}) {
      nodes_.push_back(world_.add_node(
          name, [this](Env& env) { return std::make_unique<ElectorApp>(env, &events_); }));
    }
    world_.start(coord_);
    world_.run_for(10ms);
    world_.start(nodes_[0]);
    world_.run_for(1s);  // n1 campaigns first
    world_.start(nodes_[1]);
  }

  ElectorApp& app(NodeId n) { return *static_cast<ElectorApp*>(world_.app(n)); }
  std::vector<Event> elected() const {
    std::vector<Event> out;
    for (const auto& e : events_)
      if (e.elected) out.push_back(e);
    return out;
  }

  SimWorld world_;
  NodeId coord_;
  std::vector<NodeId> nodes_;
  std::vector<Event> events_;
};

TEST_F(ElectorTest, OneLeaderHoldsItsLeaseWhileRenewing) {
  world_.run_for(20s);
  ASSERT_EQ(elected().size(), 1u);
  EXPECT_EQ(elected()[0].node, "n1");
  EXPECT_TRUE(app(nodes_[0]).elector().may_lead(world_.now()));
  EXPECT_FALSE(app(nodes_[1]).elector().may_lead(world_.now()));
  EXPECT_EQ(events_.size(), 1u);  // nobody was deposed
}

TEST_F(ElectorTest, CrashedLeaderIsReplacedWithinTheTtlAndAHigherEpoch) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  const MonoTime crash_at = world_.now();
  world_.crash(nodes_[0], UnsyncedOnCrash::kLose);
  world_.run_for(5s);
  ASSERT_EQ(elected().size(), 2u);
  const std::vector<Event> all = elected();  // a copy: next refers into it
  const Event& next = all[1];
  EXPECT_EQ(next.node, "n2");
  EXPECT_GT(next.epoch, elected()[0].epoch);
  // The TTL (2 s) plus an expiry check and the waiting campaign's wake-up.
  EXPECT_LE(next.at - crash_at, 2500ms);
  EXPECT_TRUE(app(nodes_[1]).elector().may_lead(world_.now()));
}

// A resignation hands over whatever the code of its reason: an OK or Cancelled reason
// once ended the resigning elector's loop for good (no deposition, no revoke, no new
// campaign).
TEST_F(ElectorTest, AResignationWithAnOkOrCancelledReasonHandsOverAndCampaignsAgain) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  app(nodes_[0]).elector().resign(Status());
  world_.run_for(2s);
  ASSERT_EQ(elected().size(), 2u);
  EXPECT_EQ(elected()[1].node, "n2");
  EXPECT_GT(elected()[1].epoch, elected()[0].epoch);
  app(nodes_[1]).elector().resign(cancelled("stepping down"));
  world_.run_for(2s);
  ASSERT_EQ(elected().size(), 3u);
  EXPECT_EQ(elected()[2].node, "n1");  // n1 campaigned again
  EXPECT_GT(elected()[2].epoch, elected()[1].epoch);
  size_t deposed = 0;
  for (const auto& e : events_) deposed += e.elected ? 0 : 1;
  EXPECT_EQ(deposed, 2u);
}

// A campaign the coordinator won but whose answer was lost: the candidate's key leads
// under a lease the candidate keeps alive, so nobody else can win. The candidate asks who
// leads when its campaign times out, and leads under that key's epoch, within one campaign
// wait of the win (it once gave the lease back and campaigned anew, and a lost answer held
// the election for the whole 10 s campaign wait).
TEST_F(ElectorTest, ACampaignWhoseAnswerWasLostStillLeads) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  app(nodes_[1]).coordinator().lose_next_win = true;
  world_.crash(nodes_[0], UnsyncedOnCrash::kLose);
  world_.run_for(8s);
  const std::optional<Leadership>& lost = app(nodes_[1]).coordinator().lost_win;
  ASSERT_TRUE(lost.has_value());
  ASSERT_EQ(elected().size(), 2u);
  EXPECT_EQ(elected()[1].node, "n2");
  EXPECT_EQ(elected()[1].epoch, lost->epoch);  // the key that won, not a new campaign's
  EXPECT_LE(elected()[1].at - app(nodes_[1]).coordinator().lost_at,
            ElectorOptions().campaign_timeout + 500ms);
  EXPECT_TRUE(app(nodes_[1]).elector().may_lead(world_.now()));
  EXPECT_EQ(app(nodes_[1]).elector().terms_won(), 1u);
}

// The safety property the primary relies on: a leader cut off from the coordinator stops
// leading before anyone else can be elected.
TEST_F(ElectorTest, PartitionedLeaderStepsDownBeforeTheNextIsElected) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  world_.network().partition(nodes_[0], coord_);
  world_.run_for(6s);
  ASSERT_EQ(elected().size(), 2u);
  const Event* deposed = nullptr;
  for (const auto& e : events_)
    if (!e.elected && e.node == "n1") deposed = &e;
  ASSERT_NE(deposed, nullptr);
  EXPECT_EQ(deposed->why, Code::kDeadlineExceeded);
  EXPECT_LT(deposed->at, elected()[1].at);
  EXPECT_FALSE(app(nodes_[0]).elector().may_lead(world_.now()));
  // Healed, n1 finds its lease gone and waits behind n2.
  world_.network().heal_all();
  world_.run_for(5s);
  EXPECT_EQ(elected().size(), 2u);
  EXPECT_TRUE(app(nodes_[1]).elector().may_lead(world_.now()));
}

TEST_F(ElectorTest, CoordinatorRestartKeepsTheLeader) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  world_.crash(coord_, UnsyncedOnCrash::kLose);
  world_.run_for(500ms);  // shorter than validity: the leader never noticed
  world_.start(coord_);
  world_.run_for(5s);
  // The restarted coordinator renewed every lease; n1's renewals resume in time or it
  // campaigns again: either way one leader, never two at once.
  ASSERT_GE(elected().size(), 1u);
  const bool n1 = app(nodes_[0]).elector().may_lead(world_.now());
  const bool n2 = app(nodes_[1]).elector().may_lead(world_.now());
  EXPECT_NE(n1, n2);
}

// A campaign answered with another candidate's leadership (a broken or misrouted answer):
// the confirmation by leader() agrees on key and epoch, but the lease is not this node's,
// so it does not lead (it once took over at the leader's own term).
TEST_F(ElectorTest, ACampaignAnsweredWithAnotherLeaseDoesNotElect) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  app(nodes_[1]).coordinator().answer_with_leader = true;
  world_.run_for(10s);
  EXPECT_EQ(elected().size(), 1u);
  EXPECT_TRUE(app(nodes_[0]).elector().may_lead(world_.now()));
  EXPECT_FALSE(app(nodes_[1]).elector().may_lead(world_.now()));
}

// The leader's key deleted while its lease lives on (an operator's delete, or a withdrawal
// etcd applied after the candidate found itself leader): the leader is deposed within
// about one renewal interval, before its lease could run out, and the other node leads.
TEST_F(ElectorTest, ALeaderWhoseKeyIsDeletedIsDeposed) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  const std::optional<Leadership> lead = app(nodes_[0]).elector().leadership();
  ASSERT_TRUE(lead.has_value());
  Env& env = *world_.env(nodes_[0]);
  bool deleted = false;
  auto remove = [&]() -> Task<void> {
    Status st =
        co_await app(nodes_[0]).coordinator().resign(*lead, env.executor().deadline_after(500ms));
    deleted = st.is_ok();
  };
  env.executor().spawn("delete-leader-key", remove());
  const MonoTime deleted_at = world_.now();
  world_.run_for(3s);
  ASSERT_TRUE(deleted);
  const Event* deposed = nullptr;
  for (const auto& e : events_)
    if (!e.elected && e.node == "n1") deposed = &e;
  ASSERT_NE(deposed, nullptr);
  // No leader recorded, or already n2 (whose waiting campaign the delete let through).
  EXPECT_TRUE(deposed->why == Code::kNotFound || deposed->why == Code::kFenced)
      << static_cast<int>(deposed->why);
  const ElectorOptions o;
  EXPECT_LE(deposed->at - deleted_at, o.renew_interval + o.call_timeout + o.renew_interval / 2);
  ASSERT_EQ(elected().size(), 2u);
  EXPECT_EQ(elected()[1].node, "n2");
  EXPECT_FALSE(app(nodes_[0]).elector().may_lead(world_.now()));
  EXPECT_TRUE(app(nodes_[1]).elector().may_lead(world_.now()));
}

// A coordinator that grants a shorter TTL than asked: validity follows the granted one.
TEST_F(ElectorTest, AShorterGrantedTtlShortensValidity) {
  world_.run_for(3s);
  ASSERT_EQ(elected().size(), 1u);
  app(nodes_[1]).coordinator().grant_ttl = 1s;
  app(nodes_[0]).elector().resign(Status());
  world_.run_for(2s);
  ASSERT_EQ(elected().size(), 2u);
  Elector& e = app(nodes_[1]).elector();
  ASSERT_TRUE(e.may_lead(world_.now()));
  // Renewals (every 500 ms, answered with the real 2 s TTL) keep it leading, but never
  // further than the granted second.
  const ElectorOptions o;
  EXPECT_LE(e.valid_until() - world_.now(), Elector::validity_end(MonoTime(), 1s, o) - MonoTime());
  EXPECT_LT(e.valid_until() - world_.now(), 900ms);
}

TEST(ElectorValidity, EndsBeforeTheCoordinatorCanExpireTheLease) {
  ElectorOptions o;
  o.lease_ttl = 2s;
  o.rate_error = 0.01;
  o.safety_margin = 100ms;
  const MonoTime sent = MonoTime() + 10s;
  EXPECT_EQ(Elector::validity_end(sent, o), sent + 1880ms);
  EXPECT_EQ(Elector::validity_end(sent, 1s, o), sent + 890ms);
}

}  // namespace
}  // namespace quire
