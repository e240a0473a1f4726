// Engine operations that overlap, and inputs at the engine's bounds: a scan across a
// checkpoint switch, key operations that overlap, and keys of the largest size.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "support/engine_cluster.h"

namespace quire {
namespace {

using testing_support::ComputeNode;
using testing_support::EngineCluster;

constexpr TableId kT1{16};
constexpr TableId kT3{18};

Task<void> boot(Engine& e) {
  std::vector<TableId> tables{kT1};
  auto ch = co_await e.bootstrap_keys(tables);
  EXPECT_TRUE(ch.is_ok()) << ch.status().to_string();
  EXPECT_TRUE(e.push_keystore(Timestamp(1)).is_ok());
}

// key{:05} = first{i} at ts 2 + i, for i in [0, n): the writes the stepped tests start from.
void apply_firsts(Engine& e, int n) {
  for (int i = 0; i < n; i++) {
    EXPECT_TRUE(
        e.apply_write(kT1, fmt::format("key{:05}", i), Timestamp(2 + i), fmt::format("first{}", i))
            .is_ok());
  }
}

// Keys of the largest size fill internal pages with few references; growing roots must
// still converge (each new page takes at least two references), and the tree must read
// back. A larger key is refused up front.
TEST(EngineBounds, LargestKeysCheckpointAndReadBack) {
  EngineCluster cluster(11);
  ComputeNode& leader = cluster.add_compute("leader");
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    for (int i = 0; i < 200; i++) {
      std::string key(kKeyBytesMax, static_cast<char>('a' + i % 26));
      key.replace(0, 4, fmt::format("{:04}", i));
      EXPECT_TRUE(e.apply_write(kT1, key, Timestamp(2 + i), fmt::format("v{}", i)).is_ok());
    }
    EXPECT_EQ(
        e.apply_write(kT1, std::string(kKeyBytesMax + 1, 'x'), Timestamp(300), std::string("v"))
            .code(),
        Code::kInvalidArgument);
    EXPECT_EQ(e.apply_write(kT1, "k", Timestamp(301), std::string(kValueBytesMax + 1, 'v')).code(),
              Code::kInvalidArgument);
    auto cp = co_await e.checkpoint(leader.writer(), Timestamp(400));
    EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
    e.page_cache().clear();
    auto all = co_await e.scan(kT1, "", "", Timestamp(400), 1000);
    EXPECT_TRUE(all.is_ok()) << all.status().to_string();
    if (all.is_ok()) {
      EXPECT_EQ(all->size(), 200u);
      for (size_t i = 0; i < all->size(); i++) EXPECT_EQ((*all)[i].second, fmt::format("v{}", i));
    }
  }));
}

EngineOptions small_pages() {
  EngineOptions o;
  o.shape.leaf_bytes_max = 600;
  o.shape.fanout_max = 4;
  o.cache_bytes = 8 << 10;
  o.io_timeout = 2s;
  return o;
}

Task<void> scan_into(Engine& e, Timestamp at,
                     Result<std::vector<std::pair<std::string, std::string>>>& out, bool& done) {
  out = co_await e.scan(kT1, "", "", at, 100000);
  done = true;
}

// A scan that a checkpoint switch restarts must not merge the pruned ingest with the newer
// tree: it reads at its timestamp or refuses with Older, never a value written after it.
TEST(EngineConcurrency, ScanRestartedByACheckpointStillReadsAtItsTimestamp) {
  EngineCluster cluster(12);
  ComputeNode& leader = cluster.add_compute("leader", small_pages());
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    const int n = 1500;
    for (int i = 0; i < n; i++) {
      EXPECT_TRUE(
          e.apply_write(kT1, fmt::format("key{:05}", i), Timestamp(2 + i), std::string(60, 'o'))
              .is_ok());
    }
    const uint64_t c1 = n + 10;
    auto cp1 = co_await e.checkpoint(leader.writer(), Timestamp(c1));
    EXPECT_TRUE(cp1.is_ok()) << cp1.status().to_string();
    // Written after the scan's read timestamp.
    EXPECT_TRUE(e.apply_write(kT1, "key00000", Timestamp(c1 + 10), std::string("NEW")).is_ok());
    const Timestamp read_ts(c1 + 5);
    Result<std::vector<std::pair<std::string, std::string>>> got =
        std::vector<std::pair<std::string, std::string>>{};
    bool done = false;
    leader.env().executor().spawn("scan", scan_into(e, read_ts, got, done));
    auto cp2 = co_await e.checkpoint(leader.writer(), Timestamp(c1 + 20));
    EXPECT_TRUE(cp2.is_ok()) << cp2.status().to_string();
    while (!done) (void)co_await leader.env().executor().sleep(1ms);
    if (got.is_ok()) {
      EXPECT_EQ(got->size(), static_cast<size_t>(n));
      if (got->empty()) co_return;
      EXPECT_EQ(got->front().first, "key00000");
      EXPECT_EQ(got->front().second, std::string(60, 'o'))
          << "scan at " << read_ts.value << " saw a value written at " << c1 + 10;
    } else {
      // Refusing (Older) would be acceptable.
      EXPECT_EQ(got.code(), Code::kOlder) << got.status().to_string();
    }
  }));
}

Task<void> add_key(Engine& e, bool& done) {
  auto r = co_await e.add_table_key(kT3);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  done = true;
}

// Key operations that overlap (a new table's DEK while a KEK rotation waits on the KMS)
// run one after the other: both succeed and the keystore holds both.
TEST(EngineConcurrency, OverlappingKeyOperationsBothApply) {
  EngineCluster cluster(13);
  ComputeNode& leader = cluster.add_compute("leader");
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    bool done = false;
    leader.env().executor().spawn("add-table", add_key(e, done));
    auto rot = co_await e.rotate_kek();
    EXPECT_TRUE(rot.is_ok()) << rot.status().to_string();
    while (!done) (void)co_await leader.env().executor().sleep(1ms);
    EXPECT_TRUE(e.keystore().newest_dek(kT3.value).has_value());
    // Every DEK is wrapped by the active KEK after both.
    for (const auto& [ref, dek] : e.keystore().deks())
      EXPECT_EQ(dek.kek_version, *e.keystore().active_kek());
  }));
}

// Reads on a follower while its pick-up prunes the ingest in steps (at each step, through
// the test hook): each answers what a read after the prune would, the reads do see the
// ingest part pruned, and the prune ends where a prune in one go would. Writes above the
// checkpoint arrive meanwhile, as the log apply would make them.
TEST(EngineConcurrency, ReadsBetweenThePickUpsPruneStepsAnswerAsAfterIt) {
  EngineCluster cluster(13);
  EngineOptions fo = small_pages();
  ComputeNode& leader = cluster.add_compute("leader", small_pages());
  const int n = 3 * static_cast<int>(Engine::kIngestPruneStepKeys) + 100;
  auto key = [](int i) { return fmt::format("key{:05}", i); };
  auto first = [](int i) { return fmt::format("first{}", i); };
  auto second = [](int i) { return fmt::format("second{}", i); };
  const Timestamp c(2 + n);
  Engine* fe = nullptr;
  size_t keys_before = 0, steps = 0, reads = 0, writes_during = 0;
  fo.between_prune_steps = [&]() -> Task<void> {
    Engine& e = *fe;
    steps++;
    EXPECT_EQ(e.oldest_readable_ts(), c);             // switched first
    EXPECT_GT(e.ingest_keys(), 50u + writes_during);  // not all pruned yet
    EXPECT_LT(e.ingest_keys(), keys_before + writes_during);
    // A write above the checkpoint, then reads at and above the checkpoint.
    const int w = 2000 + static_cast<int>(writes_during);
    const Timestamp at(c.value + 100 + writes_during);
    EXPECT_TRUE(e.apply_write(kT1, key(w), at, second(w)).is_ok());
    writes_during++;
    for (int j = 0; j < 20; j++) {
      const int i = static_cast<int>((steps * 131 + j * 97) % n);
      const bool rewritten = i < 50 || (i >= 2000 && i < 2000 + static_cast<int>(writes_during));
      auto now = co_await e.get(kT1, key(i), at);
      EXPECT_TRUE(now.is_ok()) << now.status().to_string();
      if (now.is_ok()) {
        EXPECT_EQ(*now, rewritten ? second(i) : first(i)) << key(i);
      }
      auto then = co_await e.get(kT1, key(i), c);
      EXPECT_TRUE(then.is_ok()) << then.status().to_string();
      if (then.is_ok()) {
        EXPECT_EQ(*then, first(i)) << key(i) << " at the checkpoint";
      }
      reads += 2;
    }
  };
  ComputeNode& follower = cluster.add_compute("follower", fo);
  fe = &follower.engine();
  // The first checkpoint, which the follower loads (and its keystore with it).
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    auto cp1 = co_await e.checkpoint(leader.writer(), Timestamp(1));
    EXPECT_TRUE(cp1.is_ok()) << cp1.status().to_string();
  }));
  ASSERT_TRUE(cluster.run(follower, [&]() -> Task<void> {
    PickupResult r1 = co_await follower.install_latest(InstallMode::kLoad);
    EXPECT_EQ(r1.outcome, PickupOutcome::kInstalled) << r1.detail.to_string();
  }));
  EXPECT_EQ(steps, 0u);  // nothing to prune there
  // n writes and the second checkpoint.
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    apply_firsts(e, n);
    auto cp2 = co_await e.checkpoint(leader.writer(), c);
    EXPECT_TRUE(cp2.is_ok()) << cp2.status().to_string();
  }));
  ASSERT_TRUE(cluster.run(follower, [&]() -> Task<void> {
    Engine& e = follower.engine();
    // The follower applied the same writes from the log, and some above the checkpoint.
    apply_firsts(e, n);
    for (int i = 0; i < 50; i++) {
      EXPECT_TRUE(e.apply_write(kT1, key(i), Timestamp(c.value + 1 + i), second(i)).is_ok());
    }
    keys_before = e.ingest_keys();
    EXPECT_EQ(keys_before, static_cast<size_t>(n));
    PickupResult r2 = co_await follower.install_latest(InstallMode::kFollow);
    EXPECT_EQ(r2.outcome, PickupOutcome::kInstalled) << r2.detail.to_string();
    EXPECT_GE(steps, 3u);
    EXPECT_GT(reads, 0u);
    // What is left: the versions above the checkpoint only.
    EXPECT_EQ(e.ingest_keys(), 50u + writes_during);
    for (int i = 0; i < n; i++) {
      auto got = co_await e.get(kT1, key(i), Timestamp(c.value + 200));
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (!got.is_ok()) continue;
      const bool rewritten = i < 50 || (i >= 2000 && i < 2000 + static_cast<int>(writes_during));
      EXPECT_EQ(*got, rewritten ? second(i) : first(i)) << key(i);
    }
  }));
}

// Reads on a leader while its checkpoint builds the new tree in steps (at each step,
// through the test hook): each answers from the tree being replaced and the ingest, as
// before the checkpoint, and the finished tree reads back the same from its pages.
TEST(EngineConcurrency, ReadsBetweenTheCheckpointsBuildStepsAnswerAsBeforeIt) {
  EngineCluster cluster(17);
  EngineOptions lo = small_pages();
  const int n = 3000;
  auto key = [](int i) { return fmt::format("key{:05}", i); };
  auto first = [](int i) { return fmt::format("first{}", i); };
  auto second = [](int i) { return fmt::format("second{}", i); };
  Engine* le = nullptr;
  bool building = false;
  size_t steps = 0, reads = 0;
  lo.between_build_steps = [&]() -> Task<void> {
    EXPECT_TRUE(building);
    steps++;
    for (int j = 0; j < 20; j++) {
      const int i = static_cast<int>((steps * 131 + j * 97) % n);
      auto got = co_await le->get(kT1, key(i), Timestamp(10 + 2 * n));
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) {
        EXPECT_EQ(*got, i % 3 == 0 ? second(i) : first(i)) << key(i);
      }
      reads++;
    }
  };
  ComputeNode& leader = cluster.add_compute("leader", lo);
  le = &leader.engine();
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    // A first tree of every key, then a rewrite of a third of them in ingest.
    apply_firsts(e, n);
    building = true;
    auto cp1 = co_await e.checkpoint(leader.writer(), Timestamp(2 + n));
    EXPECT_TRUE(cp1.is_ok()) << cp1.status().to_string();
    const size_t steps_first = steps;
    EXPECT_EQ(steps_first, 0u);  // a tree built from nothing rewrites no leaf
    for (int i = 0; i < n; i += 3) {
      EXPECT_TRUE(e.apply_write(kT1, key(i), Timestamp(3 + n + i), second(i)).is_ok());
    }
    auto cp2 = co_await e.checkpoint(leader.writer(), Timestamp(10 + 2 * n));
    building = false;
    EXPECT_TRUE(cp2.is_ok()) << cp2.status().to_string();
    EXPECT_GE(steps, 3u);
    EXPECT_GT(reads, 0u);
    e.page_cache().clear();
    for (int i = 0; i < n; i++) {
      auto got = co_await e.get(kT1, key(i), Timestamp(10 + 2 * n));
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) {
        EXPECT_EQ(*got, i % 3 == 0 ? second(i) : first(i)) << key(i);
      }
    }
  }));
}

// A leader's checkpoint taken with IngestPrune::kLater keeps its versions in ingest until
// prune_checkpointed_ingest() drops them in steps; writes above the checkpoint arrive
// between the steps (the writer is free then), and every read answers the same before,
// during and after the prune.
TEST(EngineConcurrency, ALeadersLaterPruneKeepsWritesAboveTheCheckpointAndReadsTheSame) {
  EngineCluster cluster(19);
  EngineOptions lo = small_pages();
  const int n = 3 * static_cast<int>(Engine::kIngestPruneStepKeys) + 100;
  auto key = [](int i) { return fmt::format("key{:05}", i); };
  auto first = [](int i) { return fmt::format("first{}", i); };
  auto second = [](int i) { return fmt::format("second{}", i); };
  const Timestamp c(2 + n);
  Engine* le = nullptr;
  size_t steps = 0, writes_during = 0;
  auto expected = [&](int i) {
    return i >= 1000 && i < 1000 + static_cast<int>(writes_during) ? second(i) : first(i);
  };
  lo.between_prune_steps = [&]() -> Task<void> {
    steps++;
    const int w = 1000 + static_cast<int>(writes_during);
    EXPECT_TRUE(
        le->apply_write(kT1, key(w), Timestamp(c.value + 1 + writes_during), second(w)).is_ok());
    writes_during++;
    for (int j = 0; j < 20; j++) {
      const int i = static_cast<int>((steps * 131 + j * 97) % n);
      auto got = co_await le->get(kT1, key(i), Timestamp(c.value + 100));
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) {
        EXPECT_EQ(*got, expected(i)) << key(i);
      }
    }
  };
  ComputeNode& leader = cluster.add_compute("leader", lo);
  le = &leader.engine();
  ASSERT_TRUE(cluster.run(leader, [&]() -> Task<void> {
    Engine& e = leader.engine();
    co_await boot(e);
    apply_firsts(e, n);
    auto cp = co_await e.checkpoint(leader.writer(), c, Lsn(), IngestPrune::kLater);
    EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
    EXPECT_EQ(e.ingest_keys(), static_cast<size_t>(n));  // nothing dropped at the switch
    EXPECT_EQ(e.oldest_readable_ts(), c);
    co_await e.prune_checkpointed_ingest();
    EXPECT_GE(steps, 3u);
    EXPECT_EQ(e.ingest_keys(), writes_during);  // only the versions above the checkpoint
    e.page_cache().clear();
    for (int i = 0; i < n; i++) {
      auto got = co_await e.get(kT1, key(i), Timestamp(c.value + 100));
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) {
        EXPECT_EQ(*got, expected(i)) << key(i);
      }
    }
  }));
}

}  // namespace
}  // namespace quire
