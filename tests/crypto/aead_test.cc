#include "crypto/aead.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/hex.h"
#include "runtime/sim/sim_random.h"

namespace quire {
namespace {

using test::from_hex;

SecretKey key_from_hex(std::string_view hex) {
  Result<SecretKey> key = SecretKey::from_bytes(from_hex(hex));
  QUIRE_ASSERT(key.is_ok());
  return std::move(key).value();
}

// AES-256 test cases with 96-bit IVs from McGrew and Viega, "The Galois/Counter Mode of
// Operation (GCM)", appendix B (the vectors NIST's GCM validation also uses).
struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

constexpr const char* kZeroKey = "0000000000000000000000000000000000000000000000000000000000000000";
constexpr const char* kFeKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";

const GcmVector kVectors[] = {
    {"TestCase13", kZeroKey, "000000000000000000000000", "", "", "",
     "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TestCase14", kZeroKey, "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TestCase15", kFeKey, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"TestCase16", kFeKey, "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

class GcmKnownAnswer : public ::testing::TestWithParam<GcmVector> {};

TEST_P(GcmKnownAnswer, SealMatchesAndOpenRecovers) {
  const GcmVector& v = GetParam();
  Aes256Gcm gcm(key_from_hex(v.key));
  const Bytes iv = from_hex(v.iv);
  const Bytes plaintext = from_hex(v.plaintext);
  const Bytes aad = from_hex(v.aad);
  Bytes expected = from_hex(v.ciphertext);
  const Bytes tag = from_hex(v.tag);
  expected.insert(expected.end(), tag.begin(), tag.end());

  Bytes sealed;
  ASSERT_TRUE(gcm.seal(iv, aad, plaintext, sealed).is_ok());
  EXPECT_EQ(test::to_hex(sealed), test::to_hex(expected));

  Bytes opened;
  ASSERT_TRUE(gcm.open(iv, aad, sealed, opened).is_ok());
  EXPECT_EQ(opened, plaintext);

  // The same object keeps working for the next message: sealing again gives the same
  // bytes, so no state leaks from one message into the next.
  Bytes again;
  ASSERT_TRUE(gcm.seal(iv, aad, plaintext, again).is_ok());
  EXPECT_EQ(again, sealed);
}

INSTANTIATE_TEST_SUITE_P(McGrewViega, GcmKnownAnswer, ::testing::ValuesIn(kVectors),
                         [](const auto& info) { return std::string(info.param.name); });

// Test case 16 with its parts as mutable buffers, for tampering.
struct Tc16 {
  Bytes iv = from_hex(kVectors[3].iv);
  Bytes aad = from_hex(kVectors[3].aad);
  Bytes plaintext = from_hex(kVectors[3].plaintext);
  Bytes sealed;
};

const Bytes kPrefix = {0xde, 0xad, 0xbe, 0xef};

TEST(Aes256Gcm, FlippingAnyBitOfCiphertextTagNonceOrAadFails) {
  Aes256Gcm gcm(key_from_hex(kFeKey));
  Tc16 tc;
  ASSERT_TRUE(gcm.seal(tc.iv, tc.aad, tc.plaintext, tc.sealed).is_ok());

  auto expect_rejected = [&](const Bytes& iv, const Bytes& aad, const Bytes& sealed,
                             const std::string& what) {
    Bytes out = kPrefix;
    const Status s = gcm.open(iv, aad, sealed, out);
    EXPECT_EQ(s.code(), Code::kCorruption) << what;
    EXPECT_EQ(out, kPrefix) << what;
  };
  for (size_t bit = 0; bit < tc.sealed.size() * 8; bit++) {
    Bytes sealed = tc.sealed;
    sealed[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_rejected(tc.iv, tc.aad, sealed, "ciphertext/tag bit " + std::to_string(bit));
  }
  for (size_t bit = 0; bit < tc.iv.size() * 8; bit++) {
    Bytes iv = tc.iv;
    iv[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_rejected(iv, tc.aad, tc.sealed, "nonce bit " + std::to_string(bit));
  }
  for (size_t bit = 0; bit < tc.aad.size() * 8; bit++) {
    Bytes aad = tc.aad;
    aad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_rejected(tc.iv, aad, tc.sealed, "aad bit " + std::to_string(bit));
  }
  // Dropping or adding AAD, truncating or extending the payload.
  expect_rejected(tc.iv, {}, tc.sealed, "no aad");
  Bytes longer_aad = tc.aad;
  longer_aad.push_back(0);
  expect_rejected(tc.iv, longer_aad, tc.sealed, "longer aad");
  expect_rejected(tc.iv, tc.aad, Bytes(tc.sealed.begin(), tc.sealed.end() - 1), "truncated");
  Bytes extended = tc.sealed;
  extended.push_back(0);
  expect_rejected(tc.iv, tc.aad, extended, "extended");

  // After all those failures the context still opens the genuine message.
  Bytes out = kPrefix;
  ASSERT_TRUE(gcm.open(tc.iv, tc.aad, tc.sealed, out).is_ok());
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 4), kPrefix);
  EXPECT_EQ(Bytes(out.begin() + 4, out.end()), tc.plaintext);
}

TEST(Aes256Gcm, WrongKeyFails) {
  Aes256Gcm right(key_from_hex(kFeKey));
  Tc16 tc;
  ASSERT_TRUE(right.seal(tc.iv, tc.aad, tc.plaintext, tc.sealed).is_ok());
  Bytes other_key = from_hex(kFeKey);
  other_key[31] ^= 1;
  Aes256Gcm wrong(SecretKey::from_bytes(other_key).value());
  Bytes out = kPrefix;
  EXPECT_EQ(wrong.open(tc.iv, tc.aad, tc.sealed, out).code(), Code::kCorruption);
  EXPECT_EQ(out, kPrefix);
}

TEST(Aes256Gcm, PayloadShorterThanTagIsCorruption) {
  Aes256Gcm gcm(key_from_hex(kFeKey));
  const Bytes iv(kGcmNonceBytes, 0);
  for (size_t n = 0; n < kGcmTagBytes; n++) {
    Bytes out = kPrefix;
    EXPECT_EQ(gcm.open(iv, {}, Bytes(n, 0), out).code(), Code::kCorruption) << n;
    EXPECT_EQ(out, kPrefix);
  }
}

TEST(Aes256Gcm, NonceOfWrongLengthIsInvalidArgument) {
  Aes256Gcm gcm(key_from_hex(kFeKey));
  const Bytes plaintext = {1, 2, 3};
  for (size_t n : {0, 8, 11, 13, 16}) {
    const Bytes nonce(n, 7);
    Bytes out = kPrefix;
    EXPECT_EQ(gcm.seal(nonce, {}, plaintext, out).code(), Code::kInvalidArgument) << n;
    EXPECT_EQ(gcm.open(nonce, {}, Bytes(32, 0), out).code(), Code::kInvalidArgument) << n;
    EXPECT_EQ(out, kPrefix);
  }
}

TEST(Aes256Gcm, SealAppendsAndLargeMessagesRoundTrip) {
  SimRandom random(11);
  Aes256Gcm gcm(SecretKey::generate(random));
  Bytes plaintext(1 << 20);
  random.fill(plaintext);
  Bytes nonce(kGcmNonceBytes);
  random.fill(nonce);

  Bytes sealed = kPrefix;
  ASSERT_TRUE(gcm.seal(nonce, kPrefix, plaintext, sealed).is_ok());
  ASSERT_EQ(sealed.size(), kPrefix.size() + plaintext.size() + kGcmTagBytes);
  EXPECT_EQ(Bytes(sealed.begin(), sealed.begin() + 4), kPrefix);

  Bytes opened = kPrefix;
  ASSERT_TRUE(gcm.open(nonce, kPrefix, ByteView(sealed).subspan(4), opened).is_ok());
  EXPECT_EQ(Bytes(opened.begin(), opened.begin() + 4), kPrefix);
  EXPECT_TRUE(std::equal(opened.begin() + 4, opened.end(), plaintext.begin(), plaintext.end()));
}

class KeyWrap : public ::testing::Test {
 protected:
  SimRandom random_{42};
  Aes256Gcm kek_{SecretKey::generate(random_)};
  SecretKey dek_ = SecretKey::generate(random_);
  const Bytes aad_ = {'d', 'e', 'k', 0, 0, 0, 7, 1};
};

TEST_F(KeyWrap, RoundTrip) {
  Result<Bytes> wrapped = wrap_key(kek_, aad_, dek_, random_);
  ASSERT_TRUE(wrapped.is_ok());
  EXPECT_EQ(wrapped->size(), kWrappedKeyBytes);
  EXPECT_EQ(kWrappedKeyBytes, 60u);
  Result<SecretKey> unwrapped = unwrap_key(kek_, aad_, *wrapped);
  ASSERT_TRUE(unwrapped.is_ok()) << unwrapped.status().to_string();
  EXPECT_TRUE(unwrapped->equals(dek_));
}

TEST_F(KeyWrap, WrappingTwiceUsesFreshNonces) {
  const Bytes a = wrap_key(kek_, aad_, dek_, random_).value();
  const Bytes b = wrap_key(kek_, aad_, dek_, random_).value();
  EXPECT_NE(Bytes(a.begin(), a.begin() + kGcmNonceBytes),
            Bytes(b.begin(), b.begin() + kGcmNonceBytes));
  EXPECT_NE(a, b);
}

TEST_F(KeyWrap, WrappedKeyDoesNotContainTheKey) {
  const Bytes wrapped = wrap_key(kek_, aad_, dek_, random_).value();
  const ByteView key = dek_.reveal();
  EXPECT_EQ(std::search(wrapped.begin(), wrapped.end(), key.begin(), key.end()), wrapped.end());
}

TEST_F(KeyWrap, OtherAadFails) {
  const Bytes wrapped = wrap_key(kek_, aad_, dek_, random_).value();
  Bytes other = aad_;
  other.back() = 2;  // the same key's next version
  EXPECT_EQ(unwrap_key(kek_, other, wrapped).code(), Code::kCorruption);
  EXPECT_EQ(unwrap_key(kek_, {}, wrapped).code(), Code::kCorruption);
}

TEST_F(KeyWrap, AnyFlippedByteFails) {
  const Bytes wrapped = wrap_key(kek_, aad_, dek_, random_).value();
  for (size_t i = 0; i < wrapped.size(); i++) {
    Bytes bad = wrapped;
    bad[i] ^= 0x01;
    EXPECT_EQ(unwrap_key(kek_, aad_, bad).code(), Code::kCorruption) << i;
  }
}

TEST_F(KeyWrap, WrongLengthFails) {
  const Bytes wrapped = wrap_key(kek_, aad_, dek_, random_).value();
  EXPECT_EQ(unwrap_key(kek_, aad_, ByteView(wrapped).first(59)).code(), Code::kCorruption);
  Bytes longer = wrapped;
  longer.push_back(0);
  EXPECT_EQ(unwrap_key(kek_, aad_, longer).code(), Code::kCorruption);
  EXPECT_EQ(unwrap_key(kek_, aad_, {}).code(), Code::kCorruption);
}

TEST_F(KeyWrap, OtherWrappingKeyFails) {
  const Bytes wrapped = wrap_key(kek_, aad_, dek_, random_).value();
  Aes256Gcm other_kek(SecretKey::generate(random_));
  EXPECT_EQ(unwrap_key(other_kek, aad_, wrapped).code(), Code::kCorruption);
}

}  // namespace
}  // namespace quire
