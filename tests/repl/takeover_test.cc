// Take-over (repl/takeover.h): the chain a new primary recovers from several servers'
// tails, and a standby promoted after the primary crashed with an acknowledged tail whose
// commit point was never published.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "repl/takeover.h"
#include "sim/replica_set_sim.h"

namespace quire {
namespace {

constexpr TableId kTable{16};

Record rec(uint64_t lsn, uint64_t prev, uint64_t term) {
  Record r;
  r.lsn = Lsn(lsn);
  r.prev_lsn = Lsn(prev);
  r.term = Term(term);
  r.payload = Bytes{static_cast<uint8_t>(lsn), static_cast<uint8_t>(term)};
  return r;
}

std::vector<uint64_t> lsns(const std::vector<Record>& chain) {
  std::vector<uint64_t> out;
  for (const auto& r : chain) out.push_back(r.lsn.value);
  return out;
}

TEST(FollowChain, JoinsTheServersTailsAcrossTheirGaps) {
  // Server A holds 11, 13; server B holds 12 (each has a gap the other fills).
  std::vector<Record> seen{rec(11, 10, 1), rec(13, 12, 1), rec(12, 11, 1), rec(11, 10, 1)};
  EXPECT_EQ(lsns(follow_chain(Lsn(10), seen)), (std::vector<uint64_t>{11, 12, 13}));
}

TEST(FollowChain, StopsAtAMissingLink) {
  std::vector<Record> seen{rec(11, 10, 1), rec(13, 12, 1)};
  EXPECT_EQ(lsns(follow_chain(Lsn(10), seen)), (std::vector<uint64_t>{11}));
  EXPECT_TRUE(follow_chain(Lsn(9), seen).empty());
}

TEST(FollowChain, AWritersLaterBranchWinsWithinATerm) {
  // 11 and 12 were abandoned after 10; the writer re-chained with marker 13 (prev 10).
  std::vector<Record> seen{rec(11, 10, 1), rec(12, 11, 1), rec(13, 10, 1), rec(14, 13, 1)};
  EXPECT_EQ(lsns(follow_chain(Lsn(10), seen)), (std::vector<uint64_t>{13, 14}));
}

TEST(FollowChain, ANewerTermWinsOverHigherLsns) {
  // Term 2 continued after 10 at 20 while a server still holds term 1's 30 after 10.
  std::vector<Record> seen{rec(30, 10, 1), rec(20, 10, 2), rec(21, 20, 2), rec(31, 30, 1)};
  EXPECT_EQ(lsns(follow_chain(Lsn(10), seen)), (std::vector<uint64_t>{20, 21}));
}

TEST(FollowChain, IgnoresRecordsAtOrBelowTheStartAndBrokenLinks) {
  std::vector<Record> seen{rec(5, 4, 1), rec(10, 9, 1), rec(11, 11, 1), rec(12, 10, 1)};
  EXPECT_EQ(lsns(follow_chain(Lsn(10), seen)), (std::vector<uint64_t>{12}));
}

TEST(ProvesBehind, AServerWhoseChainGoesFurtherOnTheSameBranch) {
  // The node followed 11..12 from 10; a server is complete to 14 on the same branch (its 13
  // and 14 were not returned, e.g. below another server's retention).
  std::set<Lsn> chain{Lsn(11), Lsn(12)};
  std::vector<std::pair<Lsn, Lsn>> links{{Lsn(11), Lsn(10)}, {Lsn(12), Lsn(11)}};
  EXPECT_TRUE(proves_behind(Lsn(10), Lsn(12), Lsn(14), links, chain));
  EXPECT_FALSE(proves_behind(Lsn(10), Lsn(12), Lsn(12), links, chain));  // not beyond the end
}

TEST(ProvesBehind, ANodeBelowTheServersRetention) {
  // Nothing follows 5 anywhere: the server's records start after its retention point 20.
  std::vector<std::pair<Lsn, Lsn>> links{{Lsn(21), Lsn(20)}, {Lsn(22), Lsn(21)}};
  EXPECT_TRUE(proves_behind(Lsn(5), Lsn(5), Lsn(22), links, {}));
}

TEST(ProvesBehind, AServerHoldingASupersededBranchProvesNothing) {
  // The chain took term 3's 15 after 14; the server is complete to 20 on term 2's branch
  // (its 16 names 14 too), which term 3 superseded.
  std::set<Lsn> chain{Lsn(14), Lsn(15)};
  std::vector<std::pair<Lsn, Lsn>> links{
      {Lsn(14), Lsn(13)}, {Lsn(16), Lsn(14)}, {Lsn(17), Lsn(16)}};
  EXPECT_FALSE(proves_behind(Lsn(13), Lsn(15), Lsn(20), links, chain));
}

// ---- A promotion in the simulated replica set --------------------------------------------

ReplicaSetConfig config(uint64_t seed) {
  ReplicaSetConfig c;
  c.seed = seed;
  c.standbys = 2;
  c.tables = 1;
  c.primary.checkpoint_interval = Nanos(0);
  c.primary.retention_min_age = Nanos(0);
  // The harness stops the world the moment the last write is acknowledged, before the next
  // heartbeat: the tail the new primary must recover is acknowledged but not covered by
  // any commit point.
  c.primary.heartbeat_interval = 10ms;
  c.primary.write_timeout = 200ms;
  c.primary.io_timeout = 1s;
  c.engine.io_timeout = 1s;
  c.standby.poll_interval = 5ms;
  c.standby.pickup_interval = 50ms;
  c.standby.io_timeout = 500ms;
  return c;
}

struct Acked {
  std::string key;
  std::string value;
};

class TakeOverTest : public ::testing::Test {
 protected:
  void make(uint64_t seed) {
    sim_ = std::make_unique<ReplicaSetSim>(config(seed));
    std::string why;
    ASSERT_TRUE(sim_->bring_up(30s, &why)) << why;
  }

  // `count` writes on `node`'s primary, one after the other; every acknowledged one booked.
  void write_on(NodeId node, int count, const std::string& prefix) {
    ASSERT_TRUE(sim_->run_on(
        node,
        [this, node, count, prefix]() -> Task<void> {
          for (int i = 0; i < count; i++) {
            Primary* p = sim_->node(node)->primary();
            std::string key = fmt::format("{}{:04d}", prefix, i);
            std::string value = fmt::format("value-{}-{}", prefix, i);
            auto r = co_await p->put(kTable, key, value);
            if (r.is_ok()) {
              acked_.push_back(Acked{key, value});
            } else {
              failures_.push_back(r.status().to_string());
            }
          }
        },
        30s));
  }

  // Promotes `node` at `term`; fails the test unless that worked.
  void promote(NodeId node, Term term) {
    std::optional<Status> st;
    ASSERT_TRUE(sim_->run_on(
        node, [&]() -> Task<void> { st = co_await sim_->node(node)->promote(term); }, 30s));
    ASSERT_TRUE(st.has_value() && st->is_ok()) << (st ? st->to_string() : "did not finish");
  }

  // Every acknowledged write, read on `node` (primary or standby) at its applied ts.
  void expect_all_acked_on(NodeId node) {
    std::vector<std::string> wrong;
    ASSERT_TRUE(sim_->run_on(
        node,
        [this, node, &wrong]() -> Task<void> {
          ReplicaNode* n = sim_->node(node);
          for (const auto& a : acked_) {
            std::optional<std::string> got;
            if (n->primary() != nullptr) {
              auto r = co_await n->primary()->get(kTable, a.key);
              if (!r.is_ok()) {
                wrong.push_back(a.key + ": " + r.status().to_string());
                continue;
              }
              got = *r;
            } else {
              auto r = co_await n->standby()->get(kTable, a.key);
              if (!r.is_ok()) {
                wrong.push_back(a.key + ": " + r.status().to_string());
                continue;
              }
              got = r->value;
            }
            if (got != std::optional<std::string>(a.value))
              wrong.push_back(a.key + " = " + got.value_or("<absent>"));
          }
        },
        30s));
    EXPECT_TRUE(wrong.empty()) << wrong.size()
                               << " acknowledged writes missing or wrong, first: " << wrong.front();
  }

  std::unique_ptr<ReplicaSetSim> sim_;
  std::vector<Acked> acked_;
  std::vector<std::string> failures_;
};

TEST_F(TakeOverTest, StandbyTakesOverAfterACrashAndKeepsTheUnpublishedTail) {
  make(11);
  write_on(sim_->primary_id(), 40, "a");
  ASSERT_EQ(acked_.size(), 40u) << failures_.front();
  // The last write is durable at W and acknowledged; with no heartbeat, the standbys have
  // not applied it (no commit point covers it).
  const NodeId promoted = sim_->standby_ids().at(0);
  const NodeId follower = sim_->standby_ids().at(1);
  ASSERT_LT(sim_->standby(0)->commit_lsn(), sim_->primary()->writer().durable_lsn());
  sim_->world().crash(sim_->primary_id(), UnsyncedOnCrash::kLose);

  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  ReplicaNode* n = sim_->node(promoted);
  ASSERT_NE(n->primary(), nullptr);
  EXPECT_EQ(n->role(), ReplicaRole::kPrimary);
  EXPECT_EQ(n->client().term(), Term(2));
  expect_all_acked_on(promoted);

  // The new primary takes writes, and the other standby follows it without a restart.
  write_on(promoted, 20, "b");
  ASSERT_EQ(acked_.size(), 60u) << failures_.front();
  Primary* p = n->primary();
  EXPECT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(1);
        return s != nullptr && s->state() == StandbyState::kSecondary &&
               s->applied_ts() >= p->applied_ts();
      },
      10s));
  expect_all_acked_on(follower);
  // A checkpoint of the new term is taken and picked up.
  std::optional<Result<CheckpointInfo>> ckpt;
  ASSERT_TRUE(sim_->run_on(
      promoted, [&]() -> Task<void> { ckpt = co_await p->checkpoint_now(); }, 10s));
  ASSERT_TRUE(ckpt->is_ok()) << ckpt->status().to_string();
  EXPECT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(1);
        return s != nullptr && s->engine().installed_checkpoint_lsn() >= (*ckpt)->completion_lsn;
      },
      10s));
}

// A node that steps down while its take-over is still installing the latest checkpoint
// retires a primary that never started. The take-over then ends without starting it: it
// used to start anyway, a primary nobody stopped, whose tasks later wrote through the
// node's page-service client under the node's next term (quire chaos kek seed 94).
TEST_F(TakeOverTest, APrimaryRetiredDuringItsTakeOverNeverStarts) {
  make(12);
  write_on(sim_->primary_id(), 10, "a");
  ASSERT_EQ(acked_.size(), 10u) << failures_.front();
  const NodeId promoted = sim_->standby_ids().at(0);
  sim_->world().crash(sim_->primary_id(), UnsyncedOnCrash::kLose);
  ReplicaNode* n = sim_->node(promoted);
  std::optional<Status> st;
  sim_->spawn_on(promoted, "test-promote",
                 [&]() -> Task<void> { st = co_await n->promote(Term(2)); });
  // The take-over has made its primary and not started it yet.
  ASSERT_TRUE(sim_->run_until(
      [&] { return n->primary() != nullptr && n->primary()->state() == PrimaryState::kStopped; },
      10s));
  n->step_down(unavailable("test: stepping down during the take-over"));
  EXPECT_EQ(n->primary(), nullptr);
  ASSERT_TRUE(sim_->run_until([&] { return st.has_value(); }, 10s));
  EXPECT_FALSE(st->is_ok());
  sim_->world().run_for(3s);  // heartbeats every 10 ms, checkpoints: none from it
  EXPECT_EQ(n->primary(), nullptr);
  size_t started = 0;
  for (const std::string& line : sim_->world().log_ring(promoted).lines()) {
    if (line.find("\"id\":41000") != std::string::npos) started++;
  }
  EXPECT_EQ(started, 0u) << "the retired primary started";
}

// Only the take-over's marker starts a term. A primary's own chain markers (the one that
// publishes the commit point before a checkpoint, the one after an abandon point) carried
// kRecordFlagTermStart too, and a standby holding an old primary's uncommitted tail would
// have joined it to the new term through such a marker and applied it (found by review).
TEST_F(TakeOverTest, OnlyTheTakeOversMarkerStartsATerm) {
  make(11);
  write_on(sim_->primary_id(), 10, "a");
  ASSERT_EQ(acked_.size(), 10u) << failures_.front();
  const NodeId promoted = sim_->standby_ids().at(0);
  sim_->world().crash(sim_->primary_id(), UnsyncedOnCrash::kLose);
  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  ReplicaNode* n = sim_->node(promoted);
  Primary* p = n->primary();
  ASSERT_NE(p, nullptr);
  write_on(promoted, 10, "b");
  ASSERT_EQ(acked_.size(), 20u) << failures_.front();
  // The checkpoint publishes the commit point with a chain marker before it holds the writer.
  const uint64_t heartbeats = p->stats().heartbeats;
  std::optional<Result<CheckpointInfo>> ckpt;
  ASSERT_TRUE(sim_->run_on(
      promoted, [&]() -> Task<void> { ckpt = co_await p->checkpoint_now(); }, 10s));
  ASSERT_TRUE(ckpt->is_ok()) << ckpt->status().to_string();
  ASSERT_GT(p->stats().heartbeats, heartbeats) << "no chain marker was written";

  std::vector<Record> records;
  ASSERT_TRUE(sim_->run_on(
      promoted,
      [&]() -> Task<void> {
        Lsn after(0);
        for (int i = 0; i < 1000; i++) {
          auto chunk = co_await n->client().scan_server(0, after, 4u << 20,
                                                        n->env().executor().deadline_after(5s));
          if (!chunk.is_ok() || chunk->through <= after) co_return;
          for (auto& r : chunk->records) records.push_back(std::move(r));
          after = chunk->through;
        }
      },
      30s));
  size_t term2 = 0, term_starts = 0;
  for (const Record& r : records) {
    if (r.term == Term(2)) term2++;
    if ((r.flags & kRecordFlagTermStart) != 0) {
      term_starts++;
      EXPECT_EQ(r.term, Term(2)) << "LSN " << r.lsn.value;
    }
  }
  EXPECT_GT(term2, 3u);
  EXPECT_EQ(term_starts, 1u) << "every record of term 2 but its first continues the term";
}

// A standby applies keystore changes from the log; the old primary pushed them, not it.
// The new primary's first checkpoint must still reference them: it named the checkpoint
// the node had installed and its older keystore, and a standby loading that checkpoint
// could not apply the log after it (KeystoreConflict, re-syncing forever; issue 13, quire
// chaos kek seed 158).
TEST_F(TakeOverTest, TheNewPrimarysFirstCheckpointHoldsTheKeystoreItAppliedFromTheLog) {
  make(14);
  write_on(sim_->primary_id(), 10, "a");
  Primary* old = sim_->primary();
  std::optional<Result<CheckpointInfo>> before;
  ASSERT_TRUE(sim_->run_on(
      sim_->primary_id(), [&]() -> Task<void> { before = co_await old->checkpoint_now(); }, 10s));
  ASSERT_TRUE(before->is_ok()) << before->status().to_string();
  const NodeId promoted = sim_->standby_ids().at(0);
  ASSERT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(0);
        return s != nullptr && s->engine().installed_checkpoint_lsn() >= (*before)->completion_lsn;
      },
      10s));
  std::optional<Result<uint32_t>> rotated;
  ASSERT_TRUE(sim_->run_on(
      sim_->primary_id(), [&]() -> Task<void> { rotated = co_await old->rotate_active_kek(); },
      10s));
  ASSERT_TRUE(rotated->is_ok()) << rotated->status().to_string();
  write_on(sim_->primary_id(), 10, "b");  // a commit point covers the rotation's entry
  const uint64_t logged = old->logged_keystore_version();
  ASSERT_GT(logged, (*before)->keystore_version);
  ASSERT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(0);
        return s != nullptr && s->engine().keystore().version() >= logged;
      },
      10s));
  sim_->world().crash(sim_->primary_id(), UnsyncedOnCrash::kLose);
  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  Primary* p = sim_->node(promoted)->primary();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->engine().checkpoint_keystore().version, (*before)->keystore_version);
  std::optional<Result<CheckpointInfo>> first;
  ASSERT_TRUE(sim_->run_on(
      promoted, [&]() -> Task<void> { first = co_await p->checkpoint_now(); }, 10s));
  ASSERT_TRUE(first->is_ok()) << first->status().to_string();
  EXPECT_GE((*first)->keystore_version, logged);
  // The other standby loads it and follows the new primary.
  write_on(promoted, 10, "c");
  EXPECT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(1);
        return s != nullptr && s->state() == StandbyState::kSecondary &&
               s->engine().installed_checkpoint_lsn() >= (*first)->completion_lsn &&
               s->applied_ts() >= p->applied_ts();
      },
      10s));
  expect_all_acked_on(sim_->standby_ids().at(1));
}

// A standby promoted before it picked up the latest checkpoint builds its checkpoints on
// that one, not on the older one it had installed. Built on the older one, a checkpoint
// rewrites pages the latest one's tree still uses; when it fails after its pages, those
// orphan versions outrank the live ones on the page servers, and garbage collection drops
// the live ones once retention passes them: reads then fail with `no such page` on every
// node (quire chaos kek seed 7 on a variant of the commit task, issue 14).
TEST_F(TakeOverTest, APromotedStandbyBuildsOnTheLatestCheckpointNotTheOneItHad) {
  ReplicaSetConfig c = config(17);
  c.engine.shape.leaf_bytes_max = 600;  // many leaves and levels from few keys
  c.engine.shape.fanout_max = 4;
  c.engine.cache_bytes = 8 << 10;  // evictions: reads go back to the page service
  NodeId isolate_at_metadata;
  bool armed = false, hit = false;
  c.engine.before_checkpoint_step = [&](CheckpointStep s) {
    if (armed && s == CheckpointStep::kMetadataPage) {
      armed = false;
      hit = true;
      sim_->world().network().isolate(isolate_at_metadata);
    }
  };
  sim_ = std::make_unique<ReplicaSetSim>(c);
  std::string why;
  ASSERT_TRUE(sim_->bring_up(30s, &why)) << why;
  const NodeId first = sim_->primary_id();
  const NodeId promoted = sim_->standby_ids().at(0);
  const NodeId successor = sim_->standby_ids().at(1);
  Primary* old = sim_->primary();
  auto checkpoint_on = [&](NodeId node, Primary* p) {
    std::optional<Result<CheckpointInfo>> r;
    EXPECT_TRUE(sim_->run_on(
        node, [&]() -> Task<void> { r = co_await p->checkpoint_now(); }, 10s));
    return r.value_or(Result<CheckpointInfo>(Status(Code::kUnavailable, "did not finish")));
  };
  auto installed_by = [&](size_t standby, Lsn lsn) {
    return sim_->run_until(
        [&] {
          Standby* s = sim_->standby(standby);
          return s != nullptr && s->engine().installed_checkpoint_lsn() >= lsn;
        },
        10s);
  };
  write_on(first, 40, "a");
  auto older = checkpoint_on(first, old);
  ASSERT_TRUE(older.is_ok()) << older.status().to_string();
  ASSERT_TRUE(installed_by(0, older->completion_lsn));
  sim_->standby(0)->hold_pickups(true);
  write_on(first, 40, "b");
  auto latest = checkpoint_on(first, old);
  ASSERT_TRUE(latest.is_ok()) << latest.status().to_string();
  ASSERT_TRUE(installed_by(1, latest->completion_lsn));
  ASSERT_TRUE(
      sim_->run_until([&] { return sim_->standby(0)->applied_ts() >= old->applied_ts(); }, 10s));
  ASSERT_EQ(sim_->standby(0)->engine().installed_checkpoint_lsn(), older->completion_lsn);
  sim_->world().crash(first, UnsyncedOnCrash::kLose);

  // The promoted node's first checkpoint fails after its pages are durable.
  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  Primary* second = sim_->node(promoted)->primary();
  ASSERT_NE(second, nullptr);
  write_on(promoted, 3, "z");
  isolate_at_metadata = promoted;
  armed = true;
  auto failed = checkpoint_on(promoted, second);
  ASSERT_TRUE(hit);
  EXPECT_FALSE(failed.is_ok());
  EXPECT_EQ(second->engine().installed_checkpoint_lsn(), latest->completion_lsn)
      << "the promoted primary wrote on the checkpoint it had, not on the latest";
  sim_->world().crash(promoted, UnsyncedOnCrash::kLose);
  sim_->world().network().heal_all();

  // The next primary continues from the latest checkpoint and changes other pages; its
  // checkpoints move retention past the failed one's pages.
  ASSERT_NO_FATAL_FAILURE(promote(successor, Term(3)));
  Primary* third = sim_->node(successor)->primary();
  ASSERT_NE(third, nullptr);
  for (int i = 0; i < 4; i++) {
    write_on(successor, 2, fmt::format("0{}", i));
    auto r = checkpoint_on(successor, third);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  }
  ASSERT_TRUE(failures_.empty()) << failures_.front();
  expect_all_acked_on(successor);
}

TEST_F(TakeOverTest, TheOldPrimaryIsFencedOnceTheNewOneTookOver) {
  make(12);
  write_on(sim_->primary_id(), 10, "a");
  ASSERT_EQ(acked_.size(), 10u);
  const NodeId old_primary = sim_->primary_id();
  const NodeId promoted = sim_->standby_ids().at(0);
  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  // The old primary, still running, can acknowledge nothing more.
  std::optional<Result<Timestamp>> late;
  ASSERT_TRUE(sim_->run_on(
      old_primary,
      [&]() -> Task<void> { late = co_await sim_->primary()->put(kTable, "late", "late"); }, 10s));
  EXPECT_EQ(late->code(), Code::kFenced) << late->status().to_string();
  EXPECT_EQ(sim_->primary()->state(), PrimaryState::kFenced);
  expect_all_acked_on(promoted);
}

// A standby that re-syncs knows nothing of the chain it read before: the commit point it
// learned there covers nothing it fetches afterwards. An old primary's uncommitted record,
// kept by a server the take-over did not reach under an LSN the new primary re-used and
// committed, was applied at once by a standby that rebuilt reading from that server: it
// kept its commit point across the rebuild, and after a rebuild any record joins the chain
// (found by review of the commit hint, issue 14).
TEST_F(TakeOverTest, AStandbyRebuiltFromAStaleServerAppliesNoOldPrimarysUncommittedRecord) {
  make(15);
  write_on(sim_->primary_id(), 10, "a");
  ASSERT_EQ(acked_.size(), 10u) << failures_.front();
  const NodeId old_primary = sim_->primary_id();
  const NodeId promoted = sim_->standby_ids().at(0);
  const NodeId follower = sim_->standby_ids().at(1);
  const std::vector<NodeId>& servers = sim_->server_ids();
  ASSERT_EQ(servers.size(), 3u);
  const NodeId stale = servers[2];
  ASSERT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(1);
        return s != nullptr && s->state() == StandbyState::kSecondary &&
               s->applied_ts() >= sim_->primary()->applied_ts();
      },
      10s));
  std::optional<Result<CheckpointInfo>> ckpt;
  Primary* old = sim_->primary();
  ASSERT_TRUE(sim_->run_on(
      old_primary, [&]() -> Task<void> { ckpt = co_await old->checkpoint_now(); }, 10s));
  ASSERT_TRUE(ckpt->is_ok()) << ckpt->status().to_string();

  // The old primary reaches only the stale server: its write is stored there, never at W,
  // never acknowledged.
  SimNetwork& net = sim_->world().network();
  net.partition(old_primary, servers[0]);
  net.partition(old_primary, servers[1]);
  net.partition(stale, servers[0]);  // nor do its peers copy it
  net.partition(stale, servers[1]);
  std::optional<Result<Timestamp>> lost;
  sim_->spawn_on(old_primary, "unacknowledged", [&]() -> Task<void> {
    lost = co_await old->put(kTable, "a0003", "never-acknowledged");
  });
  ASSERT_TRUE(sim_->run_until([&] { return lost.has_value(); }, 10s));
  ASSERT_FALSE(lost->is_ok()) << "a write reached W through one server";
  sim_->world().crash(old_primary, UnsyncedOnCrash::kLose);

  // The take-over reaches the other two servers only; the new primary re-uses the old
  // primary's LSNs there and commits over them. The follower applies it from them.
  net.partition(promoted, stale);
  net.partition(follower, stale);
  ASSERT_NO_FATAL_FAILURE(promote(promoted, Term(2)));
  write_on(promoted, 10, "b");
  ASSERT_EQ(acked_.size(), 20u) << failures_.front();
  Primary* p = sim_->node(promoted)->primary();
  ASSERT_TRUE(sim_->run_until(
      [&] {
        Standby* s = sim_->standby(1);
        return s != nullptr && s->state() == StandbyState::kSecondary &&
               s->applied_ts() >= p->applied_ts();
      },
      10s));
  Standby* s = sim_->standby(1);
  ASSERT_GT(s->commit_lsn(), (*ckpt)->completion_lsn);

  // The follower re-syncs while it reaches only the stale server.
  net.heal(follower, stale);
  net.partition(follower, servers[0]);
  net.partition(follower, servers[1]);
  const uint64_t rebuilds = s->stats().rebuilds;
  s->step_down("test: re-sync");
  ASSERT_TRUE(sim_->run_until(
      [&] { return s->stats().rebuilds > rebuilds && s->state() == StandbyState::kSecondary; },
      10s));
  sim_->run_until([] { return false; }, 2s);
  std::optional<Result<AtTs<std::optional<std::string>>>> read;
  ASSERT_TRUE(sim_->run_on(
      follower, [&]() -> Task<void> { read = co_await s->get(kTable, "a0003"); }, 10s));
  ASSERT_TRUE(read->is_ok()) << read->status().to_string();
  EXPECT_EQ(read->value().value, std::optional<std::string>("value-a-3"))
      << "the standby applied the old primary's uncommitted record";

  // Healed, it follows the new primary again and holds every acknowledged write.
  net.heal_all();
  write_on(promoted, 1, "after");
  ASSERT_TRUE(sim_->run_until(
      [&] { return s->state() == StandbyState::kSecondary && s->applied_ts() >= p->applied_ts(); },
      20s));
  ASSERT_EQ(acked_.size(), 21u) << failures_.front();
  expect_all_acked_on(follower);
}

TEST_F(TakeOverTest, APromotionNeedsATermAndAStandby) {
  make(13);
  const NodeId promoted = sim_->standby_ids().at(0);
  std::optional<Status> zero, lower, on_primary;
  ASSERT_TRUE(sim_->run_on(
      promoted, [&]() -> Task<void> { zero = co_await sim_->node(promoted)->promote(Term(0)); },
      10s));
  EXPECT_EQ(zero->code(), Code::kInvalidArgument) << zero->to_string();
  sim_->node(promoted)->client().set_term(Term(3));
  ASSERT_TRUE(sim_->run_on(
      promoted, [&]() -> Task<void> { lower = co_await sim_->node(promoted)->promote(Term(2)); },
      10s));
  EXPECT_EQ(lower->code(), Code::kInvalidArgument) << lower->to_string();
  ASSERT_TRUE(sim_->run_on(
      sim_->primary_id(),
      [&]() -> Task<void> {
        on_primary = co_await sim_->node(sim_->primary_id())->promote(Term(5));
      },
      10s));
  EXPECT_EQ(on_primary->code(), Code::kInvalidArgument) << on_primary->to_string();
  // Nothing was fenced: the primary still writes.
  std::optional<Result<Timestamp>> w;
  ASSERT_TRUE(sim_->run_on(
      sim_->primary_id(),
      [&]() -> Task<void> { w = co_await sim_->primary()->put(kTable, "k", "v"); }, 10s));
  EXPECT_TRUE(w->is_ok()) << w->status().to_string();
}

}  // namespace
}  // namespace quire
