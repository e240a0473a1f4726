// KeyRing and the key-creating changes, walked through a whole rotation in the simulated
// world with a SimKms: data sealed before a rotation stays readable after it, destroyed
// KEKs leave the ring, and a KMS outage only delays a sync.
#include "crypto/key_ring.h"

#include <vector>

#include <gtest/gtest.h>

#include "crypto/keystore_sim.h"

namespace quire {
namespace {

using test::KmsNode;

constexpr uint64_t kCluster = 11;
constexpr uint64_t kLogDek = 1000;
const uint64_t kDekIds[] = {1, 2, 3, kLogDek};

// The record type's byte (pagelog's kLog is 1, kPage 2).
PayloadPlace place_of(uint64_t dek_id) {
  return PayloadPlace{TableId(dek_id), PageId(5), Lsn(77),
                      static_cast<uint8_t>(dek_id == kLogDek ? 1 : 2)};
}

Bytes plaintext_of(uint64_t dek_id) {
  return Bytes(100 + dek_id % 7, static_cast<uint8_t>(dek_id));
}

struct Sealed {
  uint64_t dek_id;
  Bytes bytes;
};

// Opens every sealed payload through `ring` and compares it with what was sealed.
void expect_opens(KeyRing& ring, const std::vector<Sealed>& sealed) {
  for (const Sealed& s : sealed) {
    Result<Bytes> plain = open_sealed(ring.lookup(), place_of(s.dek_id), s.bytes);
    ASSERT_TRUE(plain.is_ok()) << "DEK " << s.dek_id << ": " << plain.status().to_string();
    EXPECT_EQ(*plain, plaintext_of(s.dek_id));
  }
}

class KeyRingTest : public ::testing::Test {
 protected:
  // KEK 1 active and a DEK for tables 1..3 and the log, with one payload sealed under each.
  Task<void> bootstrap() {
    KS_CO_APPLY(keystore_, co_await make_new_kek(kms(), random(), keystore_));
    KS_CO_APPLY(keystore_, Result<KeystoreChange>(test::activate_kek(1)));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
    for (uint64_t id : kDekIds)
      KS_CO_APPLY(keystore_, make_new_dek(ring_, random(), keystore_, id));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
    for (uint64_t id : kDekIds) {
      DataKey* dek = ring_.newest(id);
      if (dek == nullptr) {
        ADD_FAILURE() << "no DEK " << id;
        co_return;
      }
      Sealed s{id, {}};
      KS_CO_OK(dek->seal(place_of(id), plaintext_of(id), random(), s.bytes));
      sealed_.push_back(std::move(s));
    }
  }

  // KEK 2 created and active, every DEK rewrapped under it, KEK 1 retired and destroyed.
  Task<void> rotate_kek() {
    KS_CO_APPLY(keystore_, co_await make_new_kek(kms(), random(), keystore_));
    KS_CO_APPLY(keystore_, Result<KeystoreChange>(test::activate_kek(2)));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
    std::vector<DekRef> refs;
    for (const auto& [ref, entry] : keystore_.deks()) refs.push_back(ref);
    for (const DekRef& ref : refs)
      KS_CO_APPLY(keystore_, make_rewrap_dek(ring_, random(), keystore_, ref));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
    KS_CO_OK(keystore_.apply(test::retire_kek(1)));
    KS_CO_OK(keystore_.apply(test::destroy_kek(1)));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
  }

  template <typename F>
  void run(F body) {
    ASSERT_TRUE(node_.run(std::move(body)));
  }

  Kms& kms() { return node_.kms(); }
  Random& random() { return node_.random(); }

  KmsNode node_;
  Keystore keystore_{kCluster};
  KeyRing ring_;
  std::vector<Sealed> sealed_;
};

TEST_F(KeyRingTest, RotationKeepsOldDataReadable) {
  run([&]() -> Task<void> { co_await bootstrap(); });
  ASSERT_EQ(sealed_.size(), 4u);
  EXPECT_EQ(ring_.dek_count(), 4u);
  EXPECT_EQ(ring_.synced_version(), keystore_.version());
  expect_opens(ring_, sealed_);
  DataKey* table1_before = ring_.find(DekRef{1, 1});
  ASSERT_NE(table1_before, nullptr);

  // KEK 1 cannot be retired while it wraps DEKs.
  EXPECT_EQ(keystore_.apply(test::retire_kek(1)).code(), Code::kInvalidArgument);

  run([&]() -> Task<void> { co_await rotate_kek(); });
  EXPECT_EQ(keystore_.active_kek(), 2u);
  EXPECT_EQ(keystore_.keks().at(1).state, KekState::kDestroyed);
  for (const auto& [ref, entry] : keystore_.deks()) EXPECT_EQ(entry.kek_version, 2u) << ref.id;
  EXPECT_EQ(ring_.kek(1), nullptr) << "a destroyed KEK leaves the ring";
  EXPECT_NE(ring_.kek(2), nullptr);
  EXPECT_EQ(ring_.find(DekRef{1, 1}), table1_before) << "a DataKey is never replaced";
  EXPECT_EQ(ring_.synced_version(), keystore_.version());
  expect_opens(ring_, sealed_);

  // A fresh ring knows only the rewrapped DEKs (KEK 1 is gone): the material is unchanged.
  KeyRing fresh;
  Status st = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> { st = co_await fresh.sync(kms(), keystore_); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(fresh.kek(1), nullptr);
  EXPECT_EQ(fresh.dek_count(), 4u);
  expect_opens(fresh, sealed_);
}

TEST_F(KeyRingTest, NewDekVersionsAndNewest) {
  run([&]() -> Task<void> {
    co_await bootstrap();
    KS_CO_APPLY(keystore_, make_new_dek(ring_, random(), keystore_, 1));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
  });
  ASSERT_NE(ring_.newest(1), nullptr);
  EXPECT_EQ(ring_.newest(1)->ref(), (DekRef{1, 2}));
  EXPECT_NE(ring_.find(DekRef{1, 1}), nullptr) << "old versions stay for old pages";
  EXPECT_EQ(ring_.newest(4), nullptr);
  EXPECT_EQ(ring_.find(DekRef{1, 3}), nullptr);
  expect_opens(ring_, sealed_);
}

TEST_F(KeyRingTest, MakeChangesNeedTheirKeys) {
  // No active KEK yet.
  EXPECT_EQ(make_new_dek(ring_, random(), keystore_, 1).code(), Code::kInvalidArgument);
  run([&]() -> Task<void> { co_await bootstrap(); });
  // A ring that has not synced lacks the KEKs.
  KeyRing empty;
  EXPECT_EQ(make_new_dek(empty, random(), keystore_, 1).code(), Code::kNotFound);
  EXPECT_EQ(make_rewrap_dek(empty, random(), keystore_, DekRef{1, 1}).code(), Code::kNotFound);
  EXPECT_EQ(make_rewrap_dek(ring_, random(), keystore_, DekRef{9, 1}).code(), Code::kNotFound);
  Result<KeystoreChange> no_kek = Status(Code::kCancelled, "not run");
  Result<KeystoreChange> unknown = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> {
    no_kek = co_await make_rewrap_kek(kms(), empty, keystore_, 1);
    unknown = co_await make_rewrap_kek(kms(), ring_, keystore_, 9);
  });
  EXPECT_EQ(no_kek.code(), Code::kNotFound);
  EXPECT_EQ(unknown.code(), Code::kInvalidArgument);
}

TEST_F(KeyRingTest, KmsOutageDelaysSync) {
  run([&]() -> Task<void> { co_await bootstrap(); });
  node_.service().faults().unavailable = true;
  KeyRing later;
  Status st = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> { st = co_await later.sync(kms(), keystore_); });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(st.retriable());
  EXPECT_EQ(st.field("kek_version"), 1u);
  EXPECT_EQ(later.kek(1), nullptr);
  EXPECT_EQ(later.dek_count(), 0u);
  EXPECT_EQ(later.synced_version(), 0u);

  // The KMS is needed only for KEKs: a ring that holds them syncs new DEKs during the outage.
  run([&]() -> Task<void> {
    KS_CO_APPLY(keystore_, make_new_dek(ring_, random(), keystore_, 4));
    KS_CO_OK(co_await ring_.sync(kms(), keystore_));
  });
  EXPECT_NE(ring_.find(DekRef{4, 1}), nullptr);

  node_.service().faults().unavailable = false;
  run([&]() -> Task<void> { st = co_await later.sync(kms(), keystore_); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(later.synced_version(), keystore_.version());
  EXPECT_EQ(later.dek_count(), 5u);
  expect_opens(later, sealed_);
}

TEST_F(KeyRingTest, CmkRotationThenRetiringTheOldCmkVersion) {
  run([&]() -> Task<void> { co_await bootstrap(); });
  Keystore before_rewrap = keystore_;
  run([&]() -> Task<void> {
    Result<uint32_t> cmk = co_await kms().rotate();
    if (!cmk.is_ok() || *cmk != 2) {
      ADD_FAILURE() << "rotate: " << cmk.status().to_string();
      co_return;
    }
    KS_CO_APPLY(keystore_, co_await make_rewrap_kek(kms(), ring_, keystore_, 1));
    KS_CO_OK(co_await kms().retire(1));
  });
  EXPECT_EQ(keystore_.keks().at(1).wrapped.cmk_version, 2u);
  EXPECT_EQ(keystore_.keks().at(1).state, KekState::kLive);

  // The ring that made the rewrap checks the new wrapped bytes once (one KMS call): same key.
  uint64_t calls = node_.service().calls();
  Status st = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> { st = co_await ring_.sync(kms(), keystore_); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(node_.service().calls(), calls + 1);
  expect_opens(ring_, sealed_);

  KeyRing fresh;
  run([&]() -> Task<void> { st = co_await fresh.sync(kms(), keystore_); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  expect_opens(fresh, sealed_);

  // Without the rewrap, the KEK is lost with CMK version 1.
  KeyRing stale;
  run([&]() -> Task<void> { st = co_await stale.sync(kms(), before_rewrap); });
  EXPECT_EQ(st.code(), Code::kNotFound) << st.to_string();
}

TEST_F(KeyRingTest, WrongWrappedKeysAreCorruption) {
  run([&]() -> Task<void> { co_await bootstrap(); });

  // A DEK whose wrapped bytes are not a wrap under its KEK and name.
  Keystore bad_dek = keystore_;
  KeystoreChange c;
  c.type = KeystoreChangeType::kNewDek;
  c.kek_version = 1;
  c.dek_id = 50;
  c.dek_version = 1;
  c.wrapped.blob = keystore_.deks().at(DekRef{1, 1}).wrapped;  // DEK {1,1}'s bytes, another name
  ASSERT_TRUE(bad_dek.apply(c).is_ok());
  KeyRing ring;
  Status st = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> { st = co_await ring.sync(kms(), bad_dek); });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_EQ(st.field("dek_id"), 50u);
  EXPECT_EQ(st.field("dek_version"), 1u);
  // What unwrapped before the error stays.
  EXPECT_NE(ring.kek(1), nullptr);
  EXPECT_EQ(ring.find(DekRef{50, 1}), nullptr);

  // A KEK wrapped for another cluster does not unwrap under this one's name.
  Keystore other(kCluster + 1);
  run([&]() -> Task<void> { KS_CO_APPLY(other, co_await make_new_kek(kms(), random(), other)); });
  Keystore mine(kCluster);
  KeystoreChange moved;
  moved.type = KeystoreChangeType::kNewKek;
  moved.kek_version = 1;
  moved.wrapped = other.keks().at(1).wrapped;
  ASSERT_TRUE(mine.apply(moved).is_ok());
  KeyRing victim;
  run([&]() -> Task<void> { st = co_await victim.sync(kms(), mine); });
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_EQ(st.field("kek_version"), 1u);
}

TEST_F(KeyRingTest, AKeyUnderAnExistingRefIsNeverReplaced) {
  // A ring synced with a draft that was then abandoned holds keys the keystore never got.
  // When the keystore later gets other keys under the same refs, sync refuses them rather
  // than keep (or swap in) either silently.
  run([&]() -> Task<void> { co_await bootstrap(); });
  Status st = Status(Code::kCancelled, "not run");

  Keystore dek_draft = keystore_;
  ASSERT_TRUE(dek_draft.apply(*make_new_dek(ring_, random(), dek_draft, 5)).is_ok());
  run([&]() -> Task<void> { st = co_await ring_.sync(kms(), dek_draft); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  DataKey* drafted = ring_.find(DekRef{5, 1});
  ASSERT_NE(drafted, nullptr);
  ASSERT_TRUE(keystore_.apply(*make_new_dek(ring_, random(), keystore_, 5)).is_ok());
  run([&]() -> Task<void> { st = co_await ring_.sync(kms(), keystore_); });
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_EQ(st.field("dek_id"), 5u);
  EXPECT_EQ(ring_.find(DekRef{5, 1}), drafted);

  KeyRing kek_ring;
  Keystore kek_draft = keystore_;
  run([&]() -> Task<void> {
    KS_CO_OK(co_await kek_ring.sync(kms(), keystore_));
    KS_CO_APPLY(kek_draft, co_await make_new_kek(kms(), random(), kek_draft));
    KS_CO_OK(co_await kek_ring.sync(kms(), kek_draft));
    KS_CO_APPLY(keystore_, co_await make_new_kek(kms(), random(), keystore_));
    st = co_await kek_ring.sync(kms(), keystore_);
  });
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_EQ(st.field("kek_version"), 2u);
  EXPECT_NE(kek_ring.kek(2), nullptr);

  // A ring that never saw the drafts syncs the keystore as it is.
  KeyRing fresh;
  run([&]() -> Task<void> { st = co_await fresh.sync(kms(), keystore_); });
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

TEST_F(KeyRingTest, RedoIsANoOp) {
  run([&]() -> Task<void> { co_await bootstrap(); });
  uint64_t calls = node_.service().calls();
  DataKey* dek = ring_.find(DekRef{2, 1});
  Status st = Status(Code::kCancelled, "not run");
  run([&]() -> Task<void> { st = co_await ring_.sync(kms(), keystore_); });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(node_.service().calls(), calls) << "nothing new: the KMS is not asked";
  EXPECT_EQ(ring_.find(DekRef{2, 1}), dek);
}

}  // namespace
}  // namespace quire
