#include "coord/sim_coordinator.h"

#include <gtest/gtest.h>

#include "support/sim_node.h"

namespace quire {
namespace {

using testing_support::IdleApp;

const std::string kElection = "/quire/test/primary";
// Published values (named: g++ 12 rejects a string literal argument inside co_await).
const std::string kAddrA = "a:6379", kAddrB = "b:6379", kA = "a", kB = "b", kX = "x";

// A coordinator node and two client nodes (a, b), each with its own client.
class SimCoordinatorTest : public ::testing::Test {
 public:
  explicit SimCoordinatorTest(uint64_t seed = 7) : world_(seed) {
    coord_ = world_.add_node("coord", [](Env& env) {
      return std::make_unique<SimCoordinatorNode>(env, SimCoordinatorOptions{});
    });
    a_ = world_.add_node("a", [](Env&) { return std::make_unique<IdleApp>(); });
    b_ = world_.add_node("b", [](Env&) { return std::make_unique<IdleApp>(); });
    for (NodeId n : world_.nodes()) world_.start(n);
    world_.run_for(50ms);
    ca_ = std::make_unique<SimCoordinatorClient>(*world_.env(a_), "coord:2379");
    cb_ = std::make_unique<SimCoordinatorClient>(*world_.env(b_), "coord:2379");
  }

  Env& env(NodeId n) { return *world_.env(n); }
  Deadline in(NodeId n, Nanos d) { return env(n).executor().deadline_after(d); }

  template <typename F>
  void run(NodeId n, F body) {
    ASSERT_TRUE(testing_support::run_in_node(world_, env(n), std::move(body)));
  }

  // Spawns a keep-alive loop for `lease` on node n, every 500 ms, until *stop.
  void keep_alive(NodeId n, Coordinator& c, int64_t lease, bool* stop) {
    auto loop = [](Env& e, Coordinator& c, int64_t lease, bool* stop) -> Task<void> {
      while (!*stop) {
        (void)co_await c.keep_alive(lease, e.executor().deadline_after(1s));
        if (!(co_await e.executor().sleep(500ms)).is_ok()) co_return;
      }
    };
    env(n).executor().spawn("keepalive", loop(env(n), c, lease, stop));
  }

  SimCoordinatorNode& node() { return *static_cast<SimCoordinatorNode*>(world_.app(coord_)); }

  SimWorld world_;
  NodeId coord_, a_, b_;
  std::unique_ptr<SimCoordinatorClient> ca_, cb_;
};

TEST_F(SimCoordinatorTest, LeaseTtlIsRaisedToTheMinimumRenewedAndExpires) {
  int64_t lease = 0;
  run(a_, [&]() -> Task<void> {
    auto l = co_await ca_->grant_lease(500ms, in(a_, 1s));
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    if (!l.is_ok()) co_return;
    EXPECT_EQ(l->ttl, kLeaseTtlMin);
    lease = l->id;
    EXPECT_GT(lease, 0);
    auto ttl = co_await ca_->keep_alive(lease, in(a_, 1s));
    EXPECT_TRUE(ttl.is_ok());
  });
  // 1.5 s later it is still alive (and renewed); 2.5 s without renewal ends it.
  world_.run_for(1500ms);
  run(a_,
      [&]() -> Task<void> { EXPECT_TRUE((co_await ca_->keep_alive(lease, in(a_, 1s))).is_ok()); });
  world_.run_for(2500ms);
  run(a_, [&]() -> Task<void> {
    auto ttl = co_await ca_->keep_alive(lease, in(a_, 1s));
    EXPECT_EQ(ttl.status().code(), Code::kNotFound);
  });
  EXPECT_EQ(node().lease_count(), 0u);
}

TEST_F(SimCoordinatorTest, SecondCandidateWinsOnlyAfterTheLeaderLeaseExpires) {
  bool stop_a = false;
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(2s, in(a_, 1s));
    EXPECT_TRUE(lease.is_ok());
    auto won = co_await ca_->campaign(kElection, lease->id, kAddrA, in(a_, 5s));
    EXPECT_TRUE(won.is_ok()) << won.status().to_string();
    first = *won;
  });
  ASSERT_GT(first.epoch, 0u);
  EXPECT_EQ(first.value, "a:6379");
  keep_alive(a_, *ca_, first.lease, &stop_a);

  // b campaigns in the background; it must not win while a renews.
  std::optional<Result<Leadership>> second;
  bool stop_b = false;
  auto campaign_b = [&]() -> Task<void> {
    auto lease = co_await cb_->grant_lease(2s, in(b_, 1s));
    EXPECT_TRUE(lease.is_ok());
    keep_alive(b_, *cb_, lease->id, &stop_b);
    second = co_await cb_->campaign(kElection, lease->id, kAddrB, in(b_, 20s));
  };
  env(b_).executor().spawn("campaign", campaign_b());
  world_.run_for(6s);
  EXPECT_FALSE(second.has_value());
  run(b_, [&]() -> Task<void> {
    auto l = co_await cb_->leader(kElection, in(b_, 1s));
    EXPECT_TRUE(l.is_ok());
    EXPECT_EQ(*l, first);
  });

  stop_a = true;  // a stops renewing: within a TTL and an expiry check, b leads
  world_.run_for(3s);
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->is_ok()) << second->status().to_string();
  EXPECT_GT((*second)->epoch, first.epoch);
  EXPECT_EQ((*second)->value, "b:6379");
  run(b_, [&]() -> Task<void> {
    auto l = co_await cb_->leader(kElection, in(b_, 1s));
    EXPECT_TRUE(l.is_ok());
    EXPECT_EQ(*l, **second);
  });
}

TEST_F(SimCoordinatorTest, CampaignThatTimesOutWithdrawsItsCandidacy) {
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(10s, in(a_, 1s));
    first = *(co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s)));
  });
  run(b_, [&]() -> Task<void> {
    auto lease = co_await cb_->grant_lease(10s, in(b_, 1s));
    auto won = co_await cb_->campaign(kElection, lease->id, kB, in(b_, 1s));
    EXPECT_EQ(won.status().code(), Code::kDeadlineExceeded);
  });
  // a resigns: nobody leads, because b's key went with its timed-out campaign.
  run(a_, [&]() -> Task<void> {
    EXPECT_TRUE((co_await ca_->resign(first, in(a_, 1s))).is_ok());
    auto l = co_await ca_->leader(kElection, in(a_, 1s));
    EXPECT_EQ(l.status().code(), Code::kNotFound);
  });
}

TEST_F(SimCoordinatorTest, ResignHandsOverAndObserveSeesTheNewLeader) {
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(30s, in(a_, 1s));
    first = *(co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s)));
  });
  std::optional<Result<Leadership>> seen;
  auto observe = [&]() -> Task<void> {
    seen = co_await ca_->observe(kElection, first.epoch, in(a_, 20s));
  };
  env(a_).executor().spawn("observe", observe());
  std::optional<Result<Leadership>> second;
  auto campaign_b = [&]() -> Task<void> {
    auto lease = co_await cb_->grant_lease(30s, in(b_, 1s));
    second = co_await cb_->campaign(kElection, lease->id, kB, in(b_, 20s));
  };
  env(b_).executor().spawn("campaign", campaign_b());
  world_.run_for(2s);
  EXPECT_FALSE(seen.has_value());
  EXPECT_FALSE(second.has_value());
  run(a_, [&]() -> Task<void> { EXPECT_TRUE((co_await ca_->resign(first, in(a_, 1s))).is_ok()); });
  world_.run_for(1s);
  ASSERT_TRUE(second.has_value() && second->is_ok());
  ASSERT_TRUE(seen.has_value() && seen->is_ok());
  EXPECT_EQ(**seen, **second);
  EXPECT_GT((*second)->epoch, first.epoch);
}

TEST_F(SimCoordinatorTest, CampaignAgainUnderTheSameLeaseIsIdempotent) {
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(30s, in(a_, 1s));
    auto one = co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s));
    auto two = co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s));
    EXPECT_TRUE(one.is_ok() && two.is_ok());
    EXPECT_EQ(*one, *two);
  });
}

TEST_F(SimCoordinatorTest, EpochsStrictlyIncreaseAcrossElections) {
  uint64_t last = 0;
  for (int round = 0; round < 6; ++round) {
    NodeId n = round % 2 == 0 ? a_ : b_;
    Coordinator& c = round % 2 == 0 ? *ca_ : *cb_;
    run(n, [&]() -> Task<void> {
      auto lease = co_await c.grant_lease(5s, in(n, 1s));
      auto won = co_await c.campaign(kElection, lease->id, kX, in(n, 5s));
      EXPECT_TRUE(won.is_ok());
      EXPECT_GT(won->epoch, last);
      last = won->epoch;
      EXPECT_TRUE((co_await c.resign(*won, in(n, 1s))).is_ok());
    });
  }
}

TEST_F(SimCoordinatorTest, RestartKeepsKeysAndRevisionAndRenewsLeases) {
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(2s, in(a_, 1s));
    first = *(co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s)));
  });
  const uint64_t revision = node().revision();
  world_.crash(coord_, UnsyncedOnCrash::kLose);
  world_.run_for(5s);  // longer than the TTL, with nobody to count it
  world_.start(coord_);
  world_.run_for(100ms);
  EXPECT_EQ(node().revision(), revision);
  run(a_, [&]() -> Task<void> {
    auto l = co_await ca_->leader(kElection, in(a_, 2s));
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    if (l.is_ok()) {
      EXPECT_EQ(*l, first);
    }
  });
  // The fresh TTL runs out without renewal.
  world_.run_for(2500ms);
  run(a_, [&]() -> Task<void> {
    auto l = co_await ca_->leader(kElection, in(a_, 2s));
    EXPECT_EQ(l.status().code(), Code::kNotFound);
  });
  EXPECT_GT(node().revision(), revision);
}

TEST_F(SimCoordinatorTest, PartitionedLeaderLosesItsLease) {
  bool stop_a = false;
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(2s, in(a_, 1s));
    first = *(co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s)));
  });
  keep_alive(a_, *ca_, first.lease, &stop_a);
  world_.network().partition(a_, coord_);
  std::optional<Result<Leadership>> second;
  bool stop_b = false;
  auto campaign_b = [&]() -> Task<void> {
    auto lease = co_await cb_->grant_lease(2s, in(b_, 1s));
    keep_alive(b_, *cb_, lease->id, &stop_b);
    second = co_await cb_->campaign(kElection, lease->id, kB, in(b_, 10s));
  };
  env(b_).executor().spawn("campaign", campaign_b());
  world_.run_for(4s);
  ASSERT_TRUE(second.has_value() && second->is_ok());
  EXPECT_GT((*second)->epoch, first.epoch);
  world_.network().heal_all();
  world_.run_for(1s);
  run(a_, [&]() -> Task<void> {
    auto ttl = co_await ca_->keep_alive(first.lease, in(a_, 1s));
    EXPECT_EQ(ttl.status().code(), Code::kNotFound);
  });
  stop_a = true;
}

// etcd 3.4's caveat, kept: a campaign whose own key expired while it waited still
// returns, so a winner must confirm with leader().
TEST_F(SimCoordinatorTest, CampaignDoesNotRecheckItsOwnKey) {
  Leadership first;
  run(a_, [&]() -> Task<void> {
    auto lease = co_await ca_->grant_lease(60s, in(a_, 1s));
    first = *(co_await ca_->campaign(kElection, lease->id, kA, in(a_, 5s)));
  });
  std::optional<Result<Leadership>> second;
  auto campaign_b = [&]() -> Task<void> {
    auto lease = co_await cb_->grant_lease(2s, in(b_, 1s));  // never renewed
    second = co_await cb_->campaign(kElection, lease->id, kB, in(b_, 20s));
  };
  env(b_).executor().spawn("campaign", campaign_b());
  world_.run_for(4s);  // b's lease and key are gone; its campaign still waits
  EXPECT_FALSE(second.has_value());
  run(a_, [&]() -> Task<void> { EXPECT_TRUE((co_await ca_->resign(first, in(a_, 1s))).is_ok()); });
  world_.run_for(1s);
  ASSERT_TRUE(second.has_value() && second->is_ok());
  run(b_, [&]() -> Task<void> {
    auto l = co_await cb_->leader(kElection, in(b_, 1s));
    EXPECT_EQ(l.status().code(), Code::kNotFound);  // b is not the leader after all
  });
}

TEST_F(SimCoordinatorTest, MalformedAndUnknownRequestsGetTypedErrors) {
  run(a_, [&]() -> Task<void> {
    RpcClient raw(env(a_), "coord:2379");
    Bytes junk{1, 2, 3}, zero{0}, cut_short{0x05, 'a'};
    auto unknown = co_await raw.call(99, 0, junk, in(a_, 1s));
    EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
    auto bad_lease = co_await raw.call(2, 0, zero, in(a_, 1s));  // keepalive of lease 0
    EXPECT_EQ(bad_lease.status().code(), Code::kInvalidArgument);
    auto cut = co_await raw.call(4, 0, cut_short, in(a_, 1s));  // campaign, cut short
    EXPECT_EQ(cut.status().code(), Code::kInvalidArgument);
    auto missing = co_await ca_->campaign(kElection, 12345, kA, in(a_, 1s));
    EXPECT_EQ(missing.status().code(), Code::kNotFound);
  });
  EXPECT_TRUE(node().serving());
}

TEST(SimCoordinatorDeterminism, SameSeedSameTrace) {
  auto trace = [](uint64_t seed) {
    struct T : SimCoordinatorTest {
      explicit T(uint64_t s) : SimCoordinatorTest(s) {}
      void TestBody() override {}
    } t(seed);
    t.run(t.a_, [&]() -> Task<void> {
      auto lease = co_await t.ca_->grant_lease(2s, t.in(t.a_, 1s));
      (void)co_await t.ca_->campaign(kElection, lease->id, kA, t.in(t.a_, 5s));
    });
    t.world_.run_for(5s);
    return t.world_.trace_hash();
  };
  EXPECT_EQ(trace(3), trace(3));
  EXPECT_NE(trace(3), trace(4));
}

}  // namespace
}  // namespace quire
