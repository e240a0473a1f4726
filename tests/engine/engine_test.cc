// The engine in the simulator over three page servers: layered reads against a reference
// model through checkpoints, checkpoint failure at every step, and every pick-up result.
#include "engine/engine.h"

#include <map>

#include <gtest/gtest.h>

#include "support/engine_cluster.h"

namespace quire {
namespace {

using testing_support::ComputeNode;
using testing_support::EngineCluster;

constexpr TableId kT1{16};
constexpr TableId kT2{17};

Timestamp ts(uint64_t n) {
  return Timestamp(n);
}

// Every committed version, for reads at any timestamp.
struct Model {
  std::map<uint64_t, std::map<std::string, std::map<uint64_t, std::optional<std::string>>>> tables;

  void put(TableId t, const std::string& k, uint64_t at, std::optional<std::string> v) {
    tables[t.value][k][at] = std::move(v);
  }
  std::optional<std::string> get(TableId t, const std::string& k, uint64_t at) const {
    auto ti = tables.find(t.value);
    if (ti == tables.end()) return std::nullopt;
    auto ki = ti->second.find(k);
    if (ki == ti->second.end()) return std::nullopt;
    auto vi = ki->second.upper_bound(at);
    if (vi == ki->second.begin()) return std::nullopt;
    return std::prev(vi)->second;
  }
  std::vector<std::pair<std::string, std::string>> scan(TableId t, const std::string& lo,
                                                        const std::string& hi, uint64_t at,
                                                        size_t limit) const {
    std::vector<std::pair<std::string, std::string>> out;
    auto ti = tables.find(t.value);
    if (ti == tables.end()) return out;
    for (auto it = ti->second.lower_bound(lo); it != ti->second.end() && out.size() < limit; ++it) {
      if (!hi.empty() && it->first >= hi) break;
      auto v = get(t, it->first, at);
      if (v) out.emplace_back(it->first, *v);
    }
    return out;
  }
};

EngineOptions small_pages() {
  EngineOptions o;
  o.shape.leaf_bytes_max = 600;  // many leaves and levels from few keys
  o.shape.fanout_max = 4;
  o.cache_bytes = 8 << 10;  // evictions: reads go back to the page service
  o.io_timeout = 2s;
  return o;
}

// Bootstraps keys on a leader and pushes keystore version 1.. at ts 1.
Task<void> bootstrap(Engine& e) {
  std::vector<TableId> tables{kT1, kT2};
  auto ch = co_await e.bootstrap_keys(tables);
  EXPECT_TRUE(ch.is_ok()) << ch.status().to_string();
  Status st = e.push_keystore(ts(1));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

std::string key_of(uint64_t i) {
  return fmt::format("key{:05}", i);
}

// Random writes, checkpoints and reads on one engine; every read is checked.
class Workload {
 public:
  Workload(Engine& e, RecordWriter& w, Random& rng) : e_(e), w_(w), rng_(rng) {}

  Task<void> run(int ops, int checkpoint_every) {
    for (int i = 0; i < ops; i++) {
      uint64_t pick = rng_.uniform(100);
      if (pick < 60) {
        write();
      } else if (pick < 80) {
        co_await check_get();
      } else if (pick < 90) {
        co_await check_scan();
      }
      if (i % checkpoint_every == checkpoint_every - 1) {
        auto info = co_await e_.checkpoint(w_, ts(now_));
        EXPECT_TRUE(info.is_ok()) << info.status().to_string();
        if (!info.is_ok()) co_return;
        checkpoints_++;
      }
    }
  }

  void write() {
    TableId t = rng_.chance(0.5) ? kT1 : kT2;
    std::string k = key_of(rng_.uniform(400));
    std::optional<std::string> v;
    if (!rng_.chance(0.2))
      v = std::string(rng_.uniform(120), static_cast<char>('a' + rng_.uniform(26))) + k;
    now_++;
    Status st = e_.apply_write(t, k, ts(now_), v);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    model.put(t, k, now_, v);
  }

  uint64_t read_ts() {
    uint64_t lo = std::max<uint64_t>(e_.oldest_readable_ts().value, 1);
    return lo + rng_.uniform(now_ - lo + 1);
  }

  Task<void> check_get() {
    TableId t = rng_.chance(0.5) ? kT1 : kT2;
    std::string k = key_of(rng_.uniform(400));
    uint64_t at = read_ts();
    // Without waiting first (before get() caches the pages it reads): the same answer, or
    // none when a page is not cached.
    if (auto now = e_.get_cached(t, k, ts(at))) {
      EXPECT_EQ(*now, model.get(t, k, at)) << k << " at " << at << " (get_cached)";
      answered_now_++;
    } else {
      had_to_wait_++;
    }
    auto got = co_await e_.get(t, k, ts(at));
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (got.is_ok()) {
      EXPECT_EQ(*got, model.get(t, k, at)) << k << " at " << at;
    }
    reads_++;
  }

  Task<void> check_scan() {
    TableId t = rng_.chance(0.5) ? kT1 : kT2;
    uint64_t a = rng_.uniform(400), b = a + rng_.uniform(200);
    std::string lo = key_of(a), hi = rng_.chance(0.2) ? std::string() : key_of(b);
    size_t limit = 1 + rng_.uniform(80);
    uint64_t at = read_ts();
    auto got = co_await e_.scan(t, lo, hi, ts(at), limit);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (got.is_ok()) {
      EXPECT_EQ(*got, model.scan(t, lo, hi, at, limit)) << lo << ".." << hi << " at " << at;
    }
    reads_++;
  }

  Model model;
  uint64_t now_ = 1;
  int checkpoints_ = 0;
  int reads_ = 0;
  int answered_now_ = 0;  // by get_cached
  int had_to_wait_ = 0;   // get_cached could not answer

 private:
  Engine& e_;
  RecordWriter& w_;
  Random& rng_;
};

class LayeredReads : public ::testing::TestWithParam<uint64_t> {};

TEST_P(LayeredReads, MatchAReferenceModelThroughCheckpoints) {
  EngineCluster cluster(GetParam());
  ComputeNode& leader = cluster.add_compute("leader", small_pages());
  ComputeNode& follower = cluster.add_compute("follower", small_pages());
  auto rng = cluster.world().random_stream("test");
  Workload w(leader.engine(), leader.writer(), *rng);
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    co_await bootstrap(leader.engine());
    co_await w.run(1500, 150);
  }));
  EXPECT_GE(w.checkpoints_, 9);
  EXPECT_GT(w.reads_, 300);
  EXPECT_GT(leader.engine().page_cache().stats().evictions, 0u);
  EXPECT_GT(w.answered_now_, 50);
  EXPECT_GT(w.had_to_wait_, 0);

  // A fresh follower loads the latest checkpoint and reads the same as of it, then
  // catches up with the writes above it and reads the same as the leader.
  ASSERT_TRUE(cluster.run(follower, [&]() -> Task<void> {
    PickupResult r = co_await follower.install_latest(InstallMode::kLoad);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    EXPECT_EQ(follower.engine().installed_checkpoint_lsn(),
              leader.engine().installed_checkpoint_lsn());
    const uint64_t c = follower.engine().checkpoint_ts().value;
    for (const auto& [t, keys] : w.model.tables) {
      for (const auto& [k, versions] : keys) {
        for (const auto& [at, v] : versions) {
          if (at <= c) continue;
          Status st = follower.engine().apply_write(TableId(t), k, ts(at), v);
          EXPECT_TRUE(st.is_ok()) << st.to_string();
        }
      }
    }
    for (TableId t : {kT1, kT2}) {
      auto all = co_await follower.engine().scan(t, "", "", ts(w.now_), 100000);
      EXPECT_TRUE(all.is_ok()) << all.status().to_string();
      if (all.is_ok()) {
        EXPECT_EQ(*all, w.model.scan(t, "", "", w.now_, 100000));
      }
      for (uint64_t i = 0; i < 400; i += 7) {
        auto got = co_await follower.engine().get(t, key_of(i), ts(c));
        EXPECT_TRUE(got.is_ok());
        if (got.is_ok()) {
          EXPECT_EQ(*got, w.model.get(t, key_of(i), c));
        }
      }
    }
  }));
}

INSTANTIATE_TEST_SUITE_P(Seeds, LayeredReads, ::testing::Range<uint64_t>(1, 9));

TEST(Engine, ReadsBelowTheCheckpointAreRefusedNotWrong) {
  EngineCluster cluster(7);
  ComputeNode& leader = cluster.add_compute("leader", small_pages());
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    co_await bootstrap(leader.engine());
    EXPECT_TRUE(leader.engine().apply_write(kT1, "a", ts(5), std::string("1")).is_ok());
    auto cp = co_await leader.engine().checkpoint(leader.writer(), ts(10));
    EXPECT_TRUE(cp.is_ok());
    auto old = co_await leader.engine().get(kT1, "a", ts(4));
    EXPECT_EQ(old.code(), Code::kOlder);
    auto now = co_await leader.engine().get(kT1, "a", ts(10));
    EXPECT_TRUE(now.is_ok() && *now == std::optional<std::string>("1"));
    // Writes at or below the checkpoint are refused: they would be hidden.
    EXPECT_EQ(leader.engine().apply_write(kT1, "b", ts(9), std::string("x")).code(),
              Code::kInvalidArgument);
    EXPECT_EQ(leader.engine().apply_write(TableId(2), "b", ts(11), std::string("x")).code(),
              Code::kInvalidArgument);
  }));
}

// A CMK rotation checks every rewrapped KEK before it commits (as a KEK rotation does): a
// KMS whose wraps do not unwrap fails the rotation, and the keystore stays as it was. It
// once logged the bad wraps for good, and the node failed at its next start.
TEST(Engine, ACmkRotationWithWrapsThatDoNotUnwrapChangesNothing) {
  EngineCluster cluster(12);
  ComputeNode& leader = cluster.add_compute("leader", small_pages());
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    co_await bootstrap(leader.engine());
    const uint64_t before = leader.engine().keystore().version();
    cluster.kms_service().faults().corrupt_wraps = true;
    auto bad = co_await leader.engine().rotate_cmk();
    EXPECT_EQ(bad.code(), Code::kCorruption) << bad.status().to_string();
    EXPECT_EQ(leader.engine().keystore().version(), before);
    cluster.kms_service().faults().corrupt_wraps = false;
    auto good = co_await leader.engine().rotate_cmk();
    EXPECT_TRUE(good.is_ok()) << good.status().to_string();
    EXPECT_GT(leader.engine().keystore().version(), before);
  }));
}

// A checkpoint whose pages pass one message's bound (Connection::kMaxMessageBytes) is written
// in parts: after 80 MiB of 1 MiB values it completes, and a reader installs it and reads
// every value. (Before the parts, such a checkpoint failed for ever: "message ... exceeds
// the maximum", and a primary's writes waited for ingest room that never came.)
TEST(Engine, CheckpointLargerThanOneMessageIsWrittenInParts) {
  EngineCluster cluster(9);
  ComputeNode& leader = cluster.add_compute("leader");
  ComputeNode& reader = cluster.add_compute("reader");
  constexpr int kValues = 80;
  const auto value = [](int i) {
    return std::string(size_t{1} << 20, static_cast<char>('a' + i % 26));
  };
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    co_await bootstrap(leader.engine());
    for (int i = 0; i < kValues; i++) {
      Status st = leader.engine().apply_write(kT1, fmt::format("k{:03}", i), ts(5), value(i));
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    auto cp = co_await leader.engine().checkpoint(leader.writer(), ts(10));
    EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
    if (cp.is_ok()) {
      EXPECT_GT(cp->bytes_written, Connection::kMaxMessageBytes);
    }
  }));
  ASSERT_TRUE(cluster.run(reader, [&]() -> Task<void> {
    auto latest = co_await reader.latest_checkpoint();
    EXPECT_TRUE(latest.is_ok());
    if (!latest.is_ok()) co_return;
    PickupResult r = co_await reader.engine().install_checkpoint(*latest, InstallMode::kLoad,
                                                                 StaleKeystoreChoice::kInstall);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    for (int i = 0; i < kValues; i += 7) {
      auto got = co_await reader.engine().get(kT1, fmt::format("k{:03}", i), ts(10));
      EXPECT_TRUE(got.is_ok() && *got == std::optional<std::string>(value(i))) << i;
    }
  }));
}

// The highest LSN any page server holds, so a new writer never reuses one.
Task<Lsn> highest_lsn(Env& env, const std::vector<Address>& servers) {
  Lsn high;
  for (const Address& a : servers) {
    PageServerClient c(env, a);
    auto st = co_await c.status(env.executor().deadline_after(1s));
    if (st.is_ok()) high = std::max(high, st->last_lsn);
  }
  co_return high;
}

class CheckpointFailure : public ::testing::TestWithParam<CheckpointStep> {};

// Replays every model write above `after` into `e` (what log apply does in a replica set).
void replay_above(Engine& e, const Model& model, uint64_t after) {
  for (const auto& [t, keys] : model.tables) {
    for (const auto& [k, versions] : keys) {
      for (const auto& [at, v] : versions) {
        if (at <= after) continue;
        Status st = e.apply_write(TableId(t), k, ts(at), v);
        EXPECT_TRUE(st.is_ok()) << st.to_string();
      }
    }
  }
}

Task<void> expect_reads(Engine& e, const Model& model, uint64_t at) {
  for (TableId t : {kT1, kT2}) {
    auto all = co_await e.scan(t, "", "", ts(at), 100000);
    EXPECT_TRUE(all.is_ok()) << all.status().to_string();
    if (all.is_ok()) {
      EXPECT_EQ(*all, model.scan(t, "", "", at, 100000)) << "table " << t.value << " at " << at;
    }
  }
}

// The leader is cut off from the page service right before the step under test and then
// crashes. The previous checkpoint stays the latest; a reader installs it; a new leader
// starts from it, and its next checkpoint succeeds and is installable.
TEST_P(CheckpointFailure, LeavesThePreviousCheckpointLatest) {
  const CheckpointStep fail_at = GetParam();
  EngineCluster cluster(100 + static_cast<uint64_t>(fail_at));
  SimWorld& world = cluster.world();
  bool armed = false;
  bool hit = false;
  EngineOptions opts = small_pages();
  NodeId leader_id;
  opts.before_checkpoint_step = [&](CheckpointStep s) {
    if (armed && s == fail_at) {
      armed = false;
      hit = true;
      world.network().isolate(leader_id);
    }
  };
  ComputeNode& leader = cluster.add_compute("leader", opts);
  leader_id = leader.id;
  ComputeNode& reader = cluster.add_compute("reader", small_pages());
  auto rng = world.random_stream("test");
  auto w = std::make_unique<Workload>(leader.engine(), leader.writer(), *rng);
  Lsn first;
  uint64_t first_ts = 0;
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    co_await bootstrap(leader.engine());
    for (int i = 0; i < 200; i++) w->write();
    auto cp = co_await leader.engine().checkpoint(leader.writer(), ts(w->now_));
    EXPECT_TRUE(cp.is_ok());
    if (!cp.is_ok()) co_return;
    first = cp->completion_lsn;
    first_ts = w->now_;
    for (int i = 0; i < 200; i++) w->write();
    auto rot = co_await leader.engine().rotate_kek();  // so the next checkpoint has a keystore page
    EXPECT_TRUE(rot.is_ok());
    w->now_++;
    EXPECT_TRUE(leader.engine().push_keystore(ts(w->now_)).is_ok());
    armed = true;
    auto failed = co_await leader.engine().checkpoint(leader.writer(), ts(w->now_));
    EXPECT_FALSE(failed.is_ok());
    EXPECT_EQ(leader.engine().installed_checkpoint_lsn(), first);  // nothing switched
  }));
  ASSERT_TRUE(hit);
  Model model = w->model;
  const uint64_t now = w->now_;
  w.reset();
  cluster.crash(leader);
  world.network().heal_all();

  // The latest checkpoint is still the first; a reader installs it and reads its state.
  Lsn high;
  ASSERT_TRUE(cluster.run(reader, [&]() -> Task<void> {
    Env& env = reader.env();
    auto latest = co_await reader.latest_checkpoint();
    EXPECT_TRUE(latest.is_ok());
    if (!latest.is_ok()) co_return;
    EXPECT_EQ(latest->lsn, first);
    PickupResult r = co_await reader.engine().install_checkpoint(*latest, InstallMode::kLoad,
                                                                 StaleKeystoreChoice::kInstall);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    co_await expect_reads(reader.engine(), model, first_ts);
    high = co_await highest_lsn(env, cluster.addresses());
  }));

  // A new leader: load the latest checkpoint, drop what followed it, redo the writes.
  cluster.restart(leader, first, high.next());
  Lsn second;
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Env& env = leader.env();
    PickupResult r = co_await leader.install_latest(InstallMode::kLoad);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    Status st =
        co_await leader.app->client->abandon_after(first, env.executor().deadline_after(2s));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    replay_above(leader.engine(), model, first_ts);
    auto cp = co_await leader.engine().checkpoint(leader.writer(), ts(now));
    EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
    if (cp.is_ok()) second = cp->completion_lsn;
  }));
  ASSERT_FALSE(second.is_zero());
  ASSERT_TRUE(cluster.run(reader, [&]() -> Task<void> {
    auto latest = co_await reader.latest_checkpoint();
    EXPECT_TRUE(latest.is_ok());
    if (!latest.is_ok()) co_return;
    EXPECT_EQ(latest->lsn, second);
    PickupResult r = co_await reader.engine().install_checkpoint(*latest, InstallMode::kFollow,
                                                                 StaleKeystoreChoice::kInstall);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    co_await expect_reads(reader.engine(), model, now);
  }));
}

INSTANTIATE_TEST_SUITE_P(Steps, CheckpointFailure,
                         ::testing::Values(CheckpointStep::kPages, CheckpointStep::kKeystorePage,
                                           CheckpointStep::kMetadataPage,
                                           CheckpointStep::kCompletion));

}  // namespace
}  // namespace quire

namespace quire {
namespace {

// A DEK version has a nonce budget. Past its hard limit a checkpoint fails with
// KeyExhausted (and the previous checkpoint stays the latest); renew_worn_deks gives the
// worn DEKs new versions, pages then use them, and pages sealed under the old versions
// stay readable, on the leader and on a follower.
TEST(Engine, WornDataKeysAreRenewedAndOldPagesStayReadable) {
  EngineCluster cluster(21);
  EngineOptions o = small_pages();
  o.dek_uses_hard_limit = 60;
  ComputeNode& leader = cluster.add_compute("leader", o);
  ComputeNode& follower = cluster.add_compute("follower", small_pages());
  auto rng = cluster.world().random_stream("test");
  Workload w(leader.engine(), leader.writer(), *rng);
  bool exhausted = false;
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await bootstrap(e);
    // Without renewal, the budget runs out and the checkpoint fails cleanly.
    for (int round = 0; round < 40 && !exhausted; round++) {
      for (int i = 0; i < 30; i++) w.write();
      const Lsn before = e.installed_checkpoint_lsn();
      auto cp = co_await e.checkpoint(leader.writer(), ts(w.now_));
      if (!cp.is_ok()) {
        EXPECT_EQ(cp.status().code(), Code::kKeyExhausted) << cp.status().to_string();
        EXPECT_EQ(e.installed_checkpoint_lsn(), before);
        exhausted = true;
      }
    }
    EXPECT_TRUE(exhausted);
    // Renew, push (key before data), and checkpoint under the new versions.
    auto renewed = co_await e.renew_worn_deks();
    EXPECT_TRUE(renewed.is_ok()) << renewed.status().to_string();
    if (!renewed.is_ok()) co_return;
    EXPECT_FALSE(renewed->empty());
    for (const KeystoreChange& c : *renewed) EXPECT_EQ(c.dek_version, 2u);
    w.now_++;
    EXPECT_TRUE(e.push_keystore(ts(w.now_)).is_ok());
    auto cp = co_await e.checkpoint(leader.writer(), ts(w.now_));
    EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
    DataKey* v2 = e.key_ring().find(DekRef{kT1.value, 2});
    EXPECT_TRUE(v2 != nullptr && v2->uses() > 0);
    co_await expect_reads(e, w.model, w.now_);
  }));
  ASSERT_TRUE(cluster.run(follower, [&]() -> Task<void> {
    PickupResult r = co_await follower.install_latest(InstallMode::kLoad);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
    co_await expect_reads(follower.engine(), w.model, w.now_);
  }));
}

}  // namespace
}  // namespace quire
