// The push-mode keystore queue, on WiredTiger's cases (its key provider Catch2 tests and
// test_key_provider_disagg06/07): validation, selection by checkpoint ts, pruning only
// once durable, follower pruning, and the bound.
#include "crypto/push_queue.h"

#include <gtest/gtest.h>

namespace quire {
namespace {

constexpr uint64_t kCluster = 3;

// Keystores of versions 1..n of one history (each a new KEK).
std::shared_ptr<const Keystore> keystore_at(uint64_t version) {
  auto k = std::make_shared<Keystore>(kCluster);
  for (uint32_t v = 1; v <= version; ++v) {
    KeystoreChange c;
    c.type = KeystoreChangeType::kNewKek;
    c.kek_version = v;
    c.wrapped = WrappedKey{1, Bytes{1, 2, static_cast<uint8_t>(v)}};
    Status s = k->apply(c);
    QUIRE_ASSERT(s.is_ok());
  }
  return k;
}

Timestamp ts(uint64_t v) {
  return Timestamp(v);
}

// Versions 1, 2, 3 pushed at ts 10, 20, 30.
KeystorePushQueue three() {
  KeystorePushQueue q;
  EXPECT_TRUE(q.push(ts(10), keystore_at(1)).is_ok());
  EXPECT_TRUE(q.push(ts(20), keystore_at(2)).is_ok());
  EXPECT_TRUE(q.push(ts(30), keystore_at(3)).is_ok());
  return q;
}

std::optional<uint64_t> selected_version(const KeystorePushQueue& q, uint64_t checkpoint_ts) {
  std::optional<PushEntry> e = q.select(ts(checkpoint_ts));
  if (!e) return std::nullopt;
  return e->keystore->version();
}

TEST(PushQueue, RejectsEmptyKeystore) {
  KeystorePushQueue q;
  EXPECT_EQ(q.push(ts(10), nullptr).code(), Code::kInvalidArgument);
  EXPECT_EQ(q.push(ts(10), std::make_shared<Keystore>(kCluster)).code(), Code::kInvalidArgument);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.last_push_ts().is_zero());
}

TEST(PushQueue, RejectsTsNotIncreasing) {
  KeystorePushQueue q;
  ASSERT_TRUE(q.push(ts(20), keystore_at(1)).is_ok());
  EXPECT_EQ(q.push(ts(20), keystore_at(2)).code(), Code::kInvalidArgument);  // equal
  EXPECT_EQ(q.push(ts(15), keystore_at(2)).code(), Code::kInvalidArgument);  // smaller
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.last_push_ts(), ts(20));
  // Still refused after the entry is pruned: the ts order is the queue's history, not its content.
  q.mark_durable(1);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.push(ts(20), keystore_at(2)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(q.push(ts(21), keystore_at(2)).is_ok());
}

TEST(PushQueue, RejectsTsAtOrBelowStable) {
  KeystorePushQueue q;
  q.set_stable(ts(50));
  EXPECT_EQ(q.push(ts(50), keystore_at(1)).code(), Code::kInvalidArgument);
  EXPECT_EQ(q.push(ts(40), keystore_at(1)).code(), Code::kInvalidArgument);
  q.set_stable(ts(30));  // stable never moves back
  EXPECT_EQ(q.stable(), ts(50));
  EXPECT_EQ(q.push(ts(45), keystore_at(1)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(q.push(ts(51), keystore_at(1)).is_ok());
}

TEST(PushQueue, RejectsVersionNotIncreasing) {
  KeystorePushQueue q;
  ASSERT_TRUE(q.push(ts(10), keystore_at(2)).is_ok());
  EXPECT_EQ(q.push(ts(20), keystore_at(2)).code(), Code::kInvalidArgument);
  EXPECT_EQ(q.push(ts(20), keystore_at(1)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(q.push(ts(20), keystore_at(4)).is_ok());  // versions may skip
}

TEST(PushQueue, SelectStraddleExactBeyondBefore) {
  KeystorePushQueue q = three();
  EXPECT_EQ(selected_version(q, 25), 2u);  // straddle: newest at or below
  EXPECT_EQ(selected_version(q, 20), 2u);  // exact
  EXPECT_EQ(selected_version(q, 10), 1u);
  EXPECT_EQ(selected_version(q, 1000), 3u);         // beyond the queue
  EXPECT_EQ(selected_version(q, 9), std::nullopt);  // before the queue: write nothing
  EXPECT_EQ(q.select(ts(20))->ts, ts(20));
  EXPECT_EQ(q.size(), 3u) << "select does not prune";
}

TEST(PushQueue, NewerVersionsStayQueued) {
  KeystorePushQueue q = three();
  // The checkpoint at 25 writes version 2; 3 (pushed at 30) waits for a later checkpoint.
  ASSERT_EQ(selected_version(q, 25), 2u);
  q.mark_durable(2);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.entries().front().keystore->version(), 3u);
  EXPECT_EQ(selected_version(q, 25), std::nullopt) << "nothing newer than the durable page";
  EXPECT_EQ(selected_version(q, 30), 3u);
}

TEST(PushQueue, PruneOnlyOnMarkDurable) {
  // Below the queue: nothing pruned.
  KeystorePushQueue below = three();
  below.mark_durable(0);
  EXPECT_EQ(below.size(), 3u);
  EXPECT_EQ(selected_version(below, 10), 1u);

  // Exactly at an entry: it and those before it go.
  KeystorePushQueue exact = three();
  exact.mark_durable(2);
  EXPECT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact.durable_version(), 2u);
  EXPECT_EQ(exact.entries().front().ts, ts(30));

  // Between entries (versions 2 and 4 queued; 3 durable, written elsewhere).
  KeystorePushQueue between;
  ASSERT_TRUE(between.push(ts(10), keystore_at(2)).is_ok());
  ASSERT_TRUE(between.push(ts(20), keystore_at(4)).is_ok());
  between.mark_durable(3);
  ASSERT_EQ(between.size(), 1u);
  EXPECT_EQ(between.entries().front().keystore->version(), 4u);

  // Above the queue: everything goes, and nothing is selected any more.
  KeystorePushQueue above = three();
  above.mark_durable(10);
  EXPECT_EQ(above.size(), 0u);
  EXPECT_EQ(selected_version(above, 1000), std::nullopt);
  // An older durable mark never lowers the watermark.
  above.mark_durable(1);
  EXPECT_EQ(above.durable_version(), 10u);
}

TEST(PushQueue, FollowerPrunesThroughTheLoadedVersion) {
  // WiredTiger's disagg07: the follower loaded the key pushed at 20 at pick-up; it drops
  // that and older keys and keeps the later one for when it steps up.
  KeystorePushQueue q = three();
  q.prune_through(2);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.entries().front().ts, ts(30));
  // Stepped up: the queued key is written once a checkpoint reaches its ts.
  EXPECT_EQ(selected_version(q, 29), std::nullopt);
  EXPECT_EQ(selected_version(q, 30), 3u);
  // Push ts stay monotonic across the switch.
  EXPECT_EQ(q.push(ts(30), keystore_at(4)).code(), Code::kInvalidArgument);
  EXPECT_TRUE(q.push(ts(31), keystore_at(4)).is_ok());
}

TEST(PushQueue, NeverSelectsWhatIsAlreadyDurable) {
  // A follower loaded version 5 at pick-up before its queue saw version 3 pushed.
  KeystorePushQueue q;
  q.prune_through(5);
  ASSERT_TRUE(q.push(ts(10), keystore_at(3)).is_ok());
  EXPECT_EQ(selected_version(q, 10), std::nullopt);
  ASSERT_TRUE(q.push(ts(20), keystore_at(6)).is_ok());
  EXPECT_EQ(selected_version(q, 15), std::nullopt);
  EXPECT_EQ(selected_version(q, 20), 6u);
}

TEST(PushQueue, FullQueueIsBusy) {
  KeystorePushQueue q(2);
  ASSERT_TRUE(q.push(ts(10), keystore_at(1)).is_ok());
  ASSERT_TRUE(q.push(ts(20), keystore_at(2)).is_ok());
  Status s = q.push(ts(30), keystore_at(3));
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_TRUE(s.retriable());
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.last_push_ts(), ts(20)) << "a refused push leaves no trace";
  q.mark_durable(1);
  EXPECT_TRUE(q.push(ts(30), keystore_at(3)).is_ok());
}

}  // namespace
}  // namespace quire
