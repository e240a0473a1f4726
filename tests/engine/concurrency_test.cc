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

}  // namespace
}  // namespace quire
