// NeedleSet against a reference (the needles planted in random hay, at known offsets),
// and add_keystore_keys over a keystore whose key material the test chose, wrapped
// through a simulated KMS.
#include "crypto/needle_set.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/aead.h"
#include "crypto/keystore_sim.h"

namespace quire {
namespace {

using test::KmsNode;

Bytes random_bytes(std::mt19937_64& rng, size_t n) {
  Bytes out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

void plant(Bytes& hay, size_t offset, ByteView bytes) {
  ASSERT_LE(offset + bytes.size(), hay.size());
  std::copy(bytes.begin(), bytes.end(), hay.begin() + static_cast<ptrdiff_t>(offset));
}

std::set<size_t> find_in(const NeedleSet& needles, ByteView hay) {
  std::set<size_t> found;
  needles.find(hay, found);
  return found;
}

// The indexes of the needles labelled `what`.
std::set<size_t> labelled(const NeedleSet& needles, const std::string& what) {
  std::set<size_t> out;
  for (size_t i = 0; i < needles.size(); i++) {
    if (needles.what(i) == what) out.insert(i);
  }
  return out;
}

TEST(NeedleSet, FindsExactlyThePlantedNeedlesIncludingAtBothEnds) {
  std::mt19937_64 rng(1);
  NeedleSet needles;
  std::vector<Bytes> values;
  for (int i = 0; i < 40; i++) {
    values.push_back(random_bytes(rng, kNeedleBytes));
    needles.add(values.back(), "canary " + std::to_string(i));
  }
  ASSERT_EQ(needles.size(), values.size());
  for (size_t i = 0; i < values.size(); i++) {
    EXPECT_EQ(Bytes(needles.bytes(i).begin(), needles.bytes(i).end()), values[i]);
    EXPECT_EQ(needles.what(i), "canary " + std::to_string(i));
  }

  // Needles 0..19 planted in 64 KiB: the first at offset 0, the second ending at the last
  // byte, the rest at random offsets in their own 3 KiB slices (so none overlap).
  Bytes hay = random_bytes(rng, 64 << 10);
  std::set<size_t> planted;
  plant(hay, 0, values[0]);
  plant(hay, hay.size() - kNeedleBytes, values[1]);
  planted.insert(0);
  planted.insert(1);
  for (size_t i = 2; i < 20; i++) {
    const size_t slice = 3072 * i;
    plant(hay, slice + rng() % (3072 - kNeedleBytes), values[i]);
    planted.insert(i);
  }
  EXPECT_EQ(find_in(needles, hay), planted);

  // A needle that is the whole hay, and hay shorter than a needle.
  EXPECT_EQ(find_in(needles, values[7]), std::set<size_t>{7});
  EXPECT_TRUE(find_in(needles, ByteView(values[7]).first(kNeedleBytes - 1)).empty());
  EXPECT_TRUE(find_in(NeedleSet(), hay).empty());

  // `found` accumulates.
  std::set<size_t> found{99};
  needles.find(values[3], found);
  EXPECT_EQ(found, (std::set<size_t>{3, 99}));
}

TEST(NeedleSet, FindsEveryWindowOfALongerKey) {
  std::mt19937_64 rng(2);
  const Bytes key = random_bytes(rng, 32);
  NeedleSet needles;
  needles.add(key, "DEK 16 v1");
  ASSERT_EQ(needles.size(), 32 - kNeedleBytes + 1);
  for (size_t i = 0; i < needles.size(); i++) {
    EXPECT_EQ(Bytes(needles.bytes(i).begin(), needles.bytes(i).end()),
              Bytes(key.begin() + static_cast<ptrdiff_t>(i),
                    key.begin() + static_cast<ptrdiff_t>(i + kNeedleBytes)));
  }

  Bytes hay = random_bytes(rng, 4096);
  plant(hay, 1000, key);
  EXPECT_EQ(find_in(needles, hay).size(), needles.size());

  // Bytes 5..21 of the key hold windows 5 and 6 only.
  Bytes part = random_bytes(rng, 4096);
  plant(part, 4096 - 17, ByteView(key).subspan(5, 17));
  EXPECT_EQ(find_in(needles, part), (std::set<size_t>{5, 6}));
  // Fifteen bytes of it hold none.
  plant(part, 0, ByteView(key).subspan(0, kNeedleBytes - 1));
  EXPECT_EQ(find_in(needles, part), (std::set<size_t>{5, 6}));
}

TEST(NeedleSet, AddPrefixAddsExactlyOneNeedle) {
  std::mt19937_64 rng(3);
  const Bytes value = random_bytes(rng, 40);
  NeedleSet needles;
  needles.add_prefix(value, "canary 1");
  ASSERT_EQ(needles.size(), 1u);
  EXPECT_EQ(Bytes(needles.bytes(0).begin(), needles.bytes(0).end()),
            Bytes(value.begin(), value.begin() + kNeedleBytes));
  EXPECT_EQ(needles.what(0), "canary 1");
  EXPECT_EQ(find_in(needles, value), std::set<size_t>{0});
  // The value without its first byte holds no needle.
  EXPECT_TRUE(find_in(needles, ByteView(value).subspan(1)).empty());
}

TEST(NeedleSet, AddsAWindowOnlyOnce) {
  std::mt19937_64 rng(4);
  const Bytes key = random_bytes(rng, 33);
  NeedleSet needles;
  needles.add(ByteView(key).first(32), "KEK v1");
  ASSERT_EQ(needles.size(), 17u);

  // The same bytes under another label add nothing, and the label is not recorded.
  needles.add(ByteView(key).first(32), "KEK v9");
  needles.add_prefix(key, "canary");
  EXPECT_EQ(needles.size(), 17u);
  EXPECT_FALSE(needles.has_label("KEK v9"));
  EXPECT_FALSE(needles.has_label("canary"));

  // Shifted by a byte: only its last window is new.
  needles.add(ByteView(key).subspan(1), "KEK v2");
  ASSERT_EQ(needles.size(), 18u);
  EXPECT_EQ(needles.what(17), "KEK v2");
  EXPECT_EQ(labelled(needles, "KEK v1").size(), 17u);
  EXPECT_TRUE(needles.has_label("KEK v1"));
  EXPECT_TRUE(needles.has_label("KEK v2"));

  // Every window of the 33 bytes, each once.
  EXPECT_EQ(find_in(needles, key).size(), 18u);
}

// Enough needles, and labels, that the filter and both tables grow many times: every
// needle and label is still found, and random hay holds none.
TEST(NeedleSet, ManyNeedlesNoFalsePositivesOnRandomHay) {
  std::mt19937_64 rng(5);
  constexpr size_t kCanaries = 100000;
  NeedleSet needles;
  std::vector<Bytes> values;
  values.reserve(kCanaries);
  for (size_t i = 0; i < kCanaries; i++) {
    values.push_back(random_bytes(rng, kNeedleBytes));
    // A label per thousand canaries.
    needles.add_prefix(values.back(), "canaries " + std::to_string(i / 1000));
  }
  ASSERT_EQ(needles.size(), kCanaries);
  for (size_t g = 0; g < kCanaries / 1000; g++) {
    EXPECT_TRUE(needles.has_label("canaries " + std::to_string(g))) << g;
  }
  EXPECT_FALSE(needles.has_label("canaries 100"));
  EXPECT_EQ(needles.what(kCanaries - 1), "canaries 99");

  Bytes hay = random_bytes(rng, 1 << 20);
  EXPECT_TRUE(find_in(needles, hay).empty());

  // All of them, end to end, in one hay.
  Bytes all;
  for (const Bytes& v : values) all.insert(all.end(), v.begin(), v.end());
  EXPECT_EQ(find_in(needles, all).size(), kCanaries);

  // And a few planted in the random hay.
  std::set<size_t> planted{0, 12345, kCanaries - 1};
  size_t offset = 0;
  for (size_t index : planted) {
    plant(hay, offset, values[index]);
    offset += 300000;
  }
  EXPECT_EQ(find_in(needles, hay), planted);
}

// A keystore built by hand from key material the test chose, so what add_keystore_keys
// unwraps can be compared with it.
class NeedleSetKeystoreKeys : public ::testing::Test {
 protected:
  static constexpr uint64_t kCluster = 7;

  Kms& kms() { return node_.kms(); }

  Task<Status> new_kek(uint32_t version, ByteView material) {
    Result<SecretKey> key = SecretKey::from_bytes(material);
    if (!key.is_ok()) co_return std::move(key).take_status();
    Bytes context = kek_wrap_context(kCluster, version);
    Result<WrappedKey> wrapped = co_await kms().wrap(std::move(context), std::move(key).value());
    if (!wrapped.is_ok()) co_return std::move(wrapped).take_status();
    KeystoreChange change;
    change.type = KeystoreChangeType::kNewKek;
    change.kek_version = version;
    change.wrapped = std::move(wrapped).value();
    co_return keystore_.apply(change);
  }

  // A new DEK version (kNewDek) or a rewrap (kRewrapDek) of `material` under KEK `kek`,
  // applied to `keystore`.
  Status put_dek(Keystore& keystore, KeystoreChangeType type, DekRef ref, uint32_t kek,
                 ByteView kek_material, ByteView material) {
    Result<SecretKey> kek_key = SecretKey::from_bytes(kek_material);
    Result<SecretKey> key = SecretKey::from_bytes(material);
    if (!kek_key.is_ok() || !key.is_ok()) return invalid_argument("key material");
    Aes256Gcm cipher(*kek_key);
    Result<Bytes> wrapped =
        wrap_key(cipher, dek_wrap_context(kCluster, ref, kek), *key, node_.random());
    if (!wrapped.is_ok()) return std::move(wrapped).take_status();
    KeystoreChange change;
    change.type = type;
    change.kek_version = kek;
    change.dek_id = ref.id;
    change.dek_version = ref.version;
    change.wrapped.blob = std::move(wrapped).value();
    return keystore.apply(change);
  }

  // KEK 1 (under CMK v1) wrapping DEK 16 v1 and DEK 17 v1: `first`. Then the CMK rotated,
  // KEK 2 (under CMK v2) active, both DEKs rewrapped under it and DEK 16 v2 new:
  // `rotated`. Then KEK 1 retired and destroyed: `keystore_`.
  Task<void> build() {
    KS_CO_OK(co_await new_kek(1, kek1_));
    KS_CO_OK(keystore_.apply(test::activate_kek(1)));
    KS_CO_OK(put_dek(keystore_, KeystoreChangeType::kNewDek, DekRef{16, 1}, 1, kek1_, dek16v1_));
    KS_CO_OK(put_dek(keystore_, KeystoreChangeType::kNewDek, DekRef{17, 1}, 1, kek1_, dek17v1_));
    first_ = keystore_;
    Result<uint32_t> cmk = co_await kms().rotate();
    EXPECT_TRUE(cmk.is_ok() && *cmk == 2u);
    KS_CO_OK(co_await new_kek(2, kek2_));
    KS_CO_OK(keystore_.apply(test::activate_kek(2)));
    KS_CO_OK(put_dek(keystore_, KeystoreChangeType::kRewrapDek, DekRef{16, 1}, 2, kek2_, dek16v1_));
    KS_CO_OK(put_dek(keystore_, KeystoreChangeType::kRewrapDek, DekRef{17, 1}, 2, kek2_, dek17v1_));
    KS_CO_OK(put_dek(keystore_, KeystoreChangeType::kNewDek, DekRef{16, 2}, 2, kek2_, dek16v2_));
    rotated_ = keystore_;
    KS_CO_OK(keystore_.apply(test::retire_kek(1)));
    KS_CO_OK(keystore_.apply(test::destroy_kek(1)));
    built_ = true;
  }

  // Runs add_keystore_keys on the node.
  Status add(const Keystore& keystore, NeedleSet& needles) {
    Status out = not_finished();
    const bool done = node_.run(
        [&]() -> Task<void> { out = co_await add_keystore_keys(kms(), keystore, needles); });
    EXPECT_TRUE(done);
    return out;
  }

  static Status not_finished() { return Status(Code::kCancelled, "did not finish"); }

  void SetUp() override {
    ASSERT_TRUE(node_.run([&]() -> Task<void> { co_await build(); }));
    ASSERT_TRUE(built_);
  }

  // Every window of `key` is a needle labelled `what`, and nothing else is.
  void expect_key(const NeedleSet& needles, const std::string& what, const Bytes& key) {
    std::set<size_t> windows = find_in(needles, key);
    EXPECT_EQ(windows.size(), kSecretKeyBytes - kNeedleBytes + 1) << what;
    EXPECT_EQ(windows, labelled(needles, what)) << what;
  }

  KmsNode node_{3};
  std::mt19937_64 rng_{6};
  const Bytes kek1_ = random_bytes(rng_, kSecretKeyBytes);
  const Bytes kek2_ = random_bytes(rng_, kSecretKeyBytes);
  const Bytes dek16v1_ = random_bytes(rng_, kSecretKeyBytes);
  const Bytes dek17v1_ = random_bytes(rng_, kSecretKeyBytes);
  const Bytes dek16v2_ = random_bytes(rng_, kSecretKeyBytes);
  const Bytes dek18v1_ = random_bytes(rng_, kSecretKeyBytes);
  Keystore keystore_{kCluster};
  Keystore first_{kCluster};
  Keystore rotated_{kCluster};
  bool built_ = false;
};

TEST_F(NeedleSetKeystoreKeys, FindsEveryLiveKekAndEveryDekInHayThatHoldsThem) {
  NeedleSet needles;
  Status st = add(keystore_, needles);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  // KEK 1 is destroyed: KEK 2 and the three DEK versions, 17 windows each.
  EXPECT_EQ(needles.size(), 4u * 17);
  EXPECT_FALSE(needles.has_label(kek_needle_label(1)));
  expect_key(needles, "KEK v2", kek2_);
  expect_key(needles, "DEK 16 v1", dek16v1_);
  expect_key(needles, "DEK 17 v1", dek17v1_);
  expect_key(needles, "DEK 16 v2", dek16v2_);
  EXPECT_EQ(kek_needle_label(2), "KEK v2");
  EXPECT_EQ(dek_needle_label(DekRef{16, 2}), "DEK 16 v2");

  // Random hay with every key (and the destroyed KEK) planted: exactly the four keys.
  std::mt19937_64 rng(7);
  Bytes hay = random_bytes(rng, 1 << 16);
  const std::vector<const Bytes*> keys{&kek1_, &kek2_, &dek16v1_, &dek17v1_, &dek16v2_};
  for (size_t i = 0; i < keys.size(); i++) plant(hay, 1 + i * 10000, *keys[i]);
  std::set<size_t> all;
  for (size_t i = 0; i < needles.size(); i++) all.insert(i);
  EXPECT_EQ(find_in(needles, hay), all);
}

TEST_F(NeedleSetKeystoreKeys, AsksTheKmsOnlyForWhatIsNew) {
  NeedleSet needles;
  ASSERT_TRUE(add(first_, needles).is_ok());
  EXPECT_EQ(needles.size(), 3u * 17);  // KEK 1, DEK 16 v1, DEK 17 v1
  expect_key(needles, "KEK v1", kek1_);

  // Again: nothing new, no KMS call.
  const uint64_t calls = node_.service().calls();
  ASSERT_TRUE(add(first_, needles).is_ok());
  EXPECT_EQ(node_.service().calls(), calls);
  EXPECT_EQ(needles.size(), 3u * 17);

  // A new DEK under KEK 1, which is there already: KEK 1 is unwrapped again to unwrap it.
  Keystore grown = first_;
  ASSERT_TRUE(
      put_dek(grown, KeystoreChangeType::kNewDek, DekRef{18, 1}, 1, kek1_, dek18v1_).is_ok());
  ASSERT_TRUE(add(grown, needles).is_ok());
  EXPECT_EQ(node_.service().calls(), calls + 1);
  EXPECT_EQ(needles.size(), 4u * 17);
  expect_key(needles, "DEK 18 v1", dek18v1_);

  // The rotated keystore: only KEK 2 is unwrapped (it wraps the new DEK 16 v2).
  ASSERT_TRUE(add(rotated_, needles).is_ok());
  EXPECT_EQ(node_.service().calls(), calls + 2);
  EXPECT_EQ(needles.size(), 6u * 17);
  expect_key(needles, "KEK v2", kek2_);
  expect_key(needles, "DEK 16 v2", dek16v2_);

  // The last one adds nothing.
  ASSERT_TRUE(add(keystore_, needles).is_ok());
  EXPECT_EQ(node_.service().calls(), calls + 2);
  EXPECT_EQ(needles.size(), 6u * 17);
}

TEST_F(NeedleSetKeystoreKeys, ReturnsTheKmsErrorAndKeepsWhatWasAdded) {
  NeedleSet needles;
  node_.service().faults().unavailable = true;
  Status st = add(rotated_, needles);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.to_string();
  EXPECT_EQ(needles.size(), 0u);

  // CMK v2 refused: KEK 1 (under CMK v1) is added, KEK 2 fails, no DEK is added.
  node_.service().faults().unavailable = false;
  node_.service().faults().refused.insert(2);
  st = add(rotated_, needles);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.to_string();
  EXPECT_EQ(st.field("kek_version"), std::optional<uint64_t>(2));
  EXPECT_EQ(needles.size(), 17u);
  expect_key(needles, "KEK v1", kek1_);

  // Healed: the rest.
  node_.service().faults().refused.clear();
  st = add(rotated_, needles);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(needles.size(), 5u * 17);
  expect_key(needles, "DEK 17 v1", dek17v1_);
}

TEST_F(NeedleSetKeystoreKeys, ADekThatDoesNotUnwrapIsCorruption) {
  // DEK 18 v1 claims KEK 2 but was wrapped under KEK 1's material.
  ASSERT_TRUE(
      put_dek(keystore_, KeystoreChangeType::kNewDek, DekRef{18, 1}, 2, kek1_, dek16v1_).is_ok());
  NeedleSet needles;
  Status st = add(keystore_, needles);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_EQ(st.field("dek_id"), std::optional<uint64_t>(18));
  // KEK 2 and the DEKs before DEK 18 stay.
  EXPECT_EQ(needles.size(), 4u * 17);
}

}  // namespace
}  // namespace quire
