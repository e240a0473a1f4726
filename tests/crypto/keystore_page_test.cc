// The keystore page in the simulated world with a SimKms: it round-trips, it
// authenticates itself (any changed byte, another cluster, another version), it needs the
// KMS to read, and it carries no key material in the clear.
#include "crypto/keystore_page.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "crypto/keystore_sim.h"

namespace quire {
namespace {

using test::KmsNode;

constexpr uint64_t kCluster = 7;
constexpr Timestamp kPushTs = Timestamp::from_parts(100, 3);

bool contains(ByteView haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// Rewrites a header field and recomputes the CRC, as a careful forger would.
void forge_u64(Bytes& page, size_t offset, uint64_t value) {
  encode_fixed64(page.data() + offset, value);
  encode_fixed32(page.data() + 36, 0);
  encode_fixed32(page.data() + 36, crc32c::mask(crc32c::value(page)));
}

class KeystorePageTest : public ::testing::Test {
 protected:
  // A keystore with real wrapped keys: KEK 1 active, DEKs 1..2 and the log's (1000).
  void SetUp() override {
    ASSERT_TRUE(node_.run([&]() -> Task<void> {
      KS_CO_APPLY(keystore_, co_await make_new_kek(node_.kms(), node_.random(), keystore_));
      KS_CO_APPLY(keystore_, Result<KeystoreChange>(test::activate_kek(1)));
      KS_CO_OK(co_await ring_.sync(node_.kms(), keystore_));
      const uint64_t dek_ids[] = {1, 2, 1000};
      for (uint64_t id : dek_ids) {
        KS_CO_APPLY(keystore_, make_new_dek(ring_, node_.random(), keystore_, id));
      }
      KS_CO_OK(co_await ring_.sync(node_.kms(), keystore_));
    }));
    ASSERT_EQ(keystore_.version(), 5u);
  }

  Result<Bytes> encode(const Keystore& k, Timestamp ts = kPushTs) {
    Result<Bytes> out = Status(Code::kCancelled, "not run");
    EXPECT_TRUE(node_.run([&]() -> Task<void> {
      out = co_await encode_keystore_page(node_.kms(), node_.random(), k, ts);
    }));
    return out;
  }

  Result<KeystorePage> decode(Bytes page, uint64_t cluster = kCluster) {
    Result<KeystorePage> out = Status(Code::kCancelled, "not run");
    EXPECT_TRUE(node_.run(
        [&]() -> Task<void> { out = co_await decode_keystore_page(node_.kms(), cluster, page); }));
    return out;
  }

  Bytes good_page() {
    Result<Bytes> page = encode(keystore_);
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    return page.is_ok() ? *page : Bytes{};
  }

  KmsNode node_;
  Keystore keystore_{kCluster};
  KeyRing ring_;
};

TEST_F(KeystorePageTest, RoundTrip) {
  Bytes page = good_page();
  ASSERT_GT(page.size(), kKeystorePageHeaderBytes);
  EXPECT_EQ(decode_fixed32(page.data()), kKeystorePageMagic);
  EXPECT_EQ(decode_fixed32(page.data() + 32), page.size() - kKeystorePageHeaderBytes);

  Result<KeystorePage> d = decode(page);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_TRUE(d->keystore == keystore_);
  EXPECT_EQ(d->push_ts, kPushTs);

  Result<KeystorePageHeader> h = peek_keystore_page(page);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(h->keystore_version, 5u);
  EXPECT_EQ(h->cluster_id, kCluster);
  EXPECT_EQ(h->push_ts, kPushTs);

  // Two pages of the same keystore differ (fresh page key and nonce) and both read back.
  Bytes again = good_page();
  EXPECT_NE(again, page);
  EXPECT_TRUE(decode(again).is_ok());
}

TEST_F(KeystorePageTest, EmptyKeystoreRoundTrips) {
  Keystore empty(kCluster);
  Result<Bytes> page = encode(empty, Timestamp());
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  Result<KeystorePage> d = decode(*page);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_TRUE(d->keystore == empty);
  EXPECT_TRUE(d->push_ts.is_zero());
}

TEST_F(KeystorePageTest, EveryChangedByteIsRefusedBeforeTheKms) {
  Bytes page = good_page();
  for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
    for (size_t i = 0; i < page.size(); ++i) {
      Bytes bad = page;
      bad[i] ^= flip;
      uint64_t calls = node_.service().calls();
      Result<KeystorePage> d = decode(bad);
      Code want = Code::kCorruption;
      if (i == 5 && bad[5] > kKeystorePageCompatibleVersion) want = Code::kVersionTooNew;
      EXPECT_EQ(d.code(), want) << "byte " << i << " ^ " << int{flip};
      EXPECT_EQ(node_.service().calls(), calls) << "byte " << i << ": the CRC must refuse it first";
      EXPECT_EQ(d.status().step(), "keystore_page");
      EXPECT_TRUE(d.status().field("keystore_version").has_value());
      EXPECT_TRUE(d.status().field("cluster_id").has_value());
      EXPECT_EQ(peek_keystore_page(bad).code(), want) << "byte " << i;
    }
  }
}

TEST_F(KeystorePageTest, TruncatedOrExtendedIsCorruption) {
  Bytes page = good_page();
  for (size_t n = 0; n < page.size(); ++n) {
    Bytes cut(page.begin(), page.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(decode(cut).code(), Code::kCorruption) << n;
  }
  Bytes longer = page;
  longer.push_back(0);
  EXPECT_EQ(decode(longer).code(), Code::kCorruption);
}

TEST_F(KeystorePageTest, NewerCompatibleVersionIsVersionTooNew) {
  Bytes page = good_page();
  page[4] = 2;
  page[5] = 2;
  encode_fixed32(page.data() + 36, 0);
  encode_fixed32(page.data() + 36, crc32c::mask(crc32c::value(page)));
  Result<KeystorePage> d = decode(page);
  EXPECT_EQ(d.code(), Code::kVersionTooNew);
  EXPECT_EQ(d.status().field("keystore_version"), 5u);
  EXPECT_EQ(d.status().field("cluster_id"), kCluster);
  EXPECT_FALSE(d.status().retriable());
}

TEST_F(KeystorePageTest, PageOfAnotherClusterIsCorruption) {
  Bytes page = good_page();
  // Read by a node of another cluster.
  Result<KeystorePage> d = decode(page, kCluster + 1);
  EXPECT_EQ(d.code(), Code::kCorruption);
  EXPECT_EQ(d.status().field("cluster_id"), kCluster);

  // Relabelled as the other cluster's (CRC recomputed): the KMS context and the tag refuse it.
  Bytes relabelled = page;
  forge_u64(relabelled, 24, kCluster + 1);
  EXPECT_EQ(peek_keystore_page(relabelled).code(), Code::kOk);
  d = decode(relabelled, kCluster + 1);
  EXPECT_EQ(d.code(), Code::kCorruption) << d.status().to_string();
}

TEST_F(KeystorePageTest, SwappedKeystoreVersionIsCorruption) {
  Bytes page = good_page();
  for (uint64_t v : {uint64_t{4}, uint64_t{6}, uint64_t{0}}) {
    Bytes swapped = page;
    forge_u64(swapped, 8, v);
    Result<KeystorePage> d = decode(swapped);
    EXPECT_EQ(d.code(), Code::kCorruption) << v << ": " << d.status().to_string();
    EXPECT_EQ(d.status().field("keystore_version"), v);
  }
  // The push ts is authenticated too.
  Bytes retimed = page;
  forge_u64(retimed, 16, kPushTs.value + 1);
  EXPECT_EQ(decode(retimed).code(), Code::kCorruption);
}

TEST_F(KeystorePageTest, KmsUnavailableIsRetriable) {
  Bytes page = good_page();
  node_.service().faults().unavailable = true;
  Result<KeystorePage> d = decode(page);
  EXPECT_EQ(d.code(), Code::kUnavailable);
  EXPECT_TRUE(d.status().retriable());
  EXPECT_EQ(d.status().field("keystore_version"), 5u);
  EXPECT_EQ(encode(keystore_).code(), Code::kUnavailable);

  node_.service().faults().unavailable = false;
  d = decode(page);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_TRUE(d->keystore == keystore_);
}

TEST_F(KeystorePageTest, RefusedCmkVersionIsNotFound) {
  Bytes page = good_page();
  node_.service().faults().refused.insert(1);
  EXPECT_EQ(decode(page).code(), Code::kNotFound);
}

TEST_F(KeystorePageTest, NoKeyMaterialInThePage) {
  Bytes page = good_page();
  bool scanned = false;
  ASSERT_TRUE(node_.run([&]() -> Task<void> {
    // The KEK's material, as the KMS hands it to a ring.
    const KekEntry& kek = keystore_.keks().at(1);
    Bytes context = kek_wrap_context(kCluster, 1);
    WrappedKey wrapped = kek.wrapped;
    Result<SecretKey> kek_key = co_await node_.kms().unwrap(std::move(context), std::move(wrapped));
    if (!kek_key.is_ok()) {
      ADD_FAILURE() << kek_key.status().to_string();
      co_return;
    }
    EXPECT_FALSE(contains(page, kek_key->reveal()));
    // Each DEK's material, unwrapped under the ring's KEK.
    Aes256Gcm* ring_kek = ring_.kek(1);
    if (ring_kek == nullptr) {
      ADD_FAILURE() << "ring lacks KEK 1";
      co_return;
    }
    for (const auto& [ref, entry] : keystore_.deks()) {
      Bytes dek_context = dek_wrap_context(kCluster, ref, entry.kek_version);
      Result<SecretKey> dek = unwrap_key(*ring_kek, dek_context, entry.wrapped);
      if (!dek.is_ok()) {
        ADD_FAILURE() << dek.status().to_string();
        co_return;
      }
      EXPECT_FALSE(contains(page, dek->reveal())) << "DEK " << ref.id;
      // Not even the wrapped DEK appears: the keystore body is encrypted.
      EXPECT_FALSE(contains(page, entry.wrapped)) << "DEK " << ref.id;
    }
    EXPECT_FALSE(contains(page, kek.wrapped.blob));
    scanned = true;
  }));
  EXPECT_TRUE(scanned);
}

}  // namespace
}  // namespace quire
