#include "crypto/secret.h"

#include <string>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "crypto/hex.h"
#include "runtime/sim/sim_random.h"

namespace quire {
namespace {

Bytes distinctive_bytes(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<uint8_t>(0xa0 + i * 7);
  return b;
}

TEST(SecretKey, DefaultIsEmpty) {
  SecretKey key;
  EXPECT_TRUE(key.empty());
  EXPECT_EQ(key.reveal().size(), 0u);
}

TEST(SecretKey, FormatsAsPlaceholder) {
  SimRandom random(1);
  const SecretKey key = SecretKey::generate(random);
  EXPECT_EQ(fmt::format("{}", key), "<secret>");
  EXPECT_EQ(fmt::format("key={}", SecretKey()), "key=<secret>");
}

TEST(SecretKey, FromBytesKeepsExactly32Bytes) {
  const Bytes bytes = distinctive_bytes(kSecretKeyBytes);
  Result<SecretKey> key = SecretKey::from_bytes(bytes);
  ASSERT_TRUE(key.is_ok());
  EXPECT_FALSE(key->empty());
  EXPECT_EQ(Bytes(key->reveal().begin(), key->reveal().end()), bytes);
}

TEST(SecretKey, FromBytesRejectsOtherSizesWithoutEchoingThem) {
  for (size_t n : {0, 16, 31, 33, 64}) {
    const Bytes bytes = distinctive_bytes(n);
    Result<SecretKey> key = SecretKey::from_bytes(bytes);
    ASSERT_EQ(key.code(), Code::kInvalidArgument) << n;
    const std::string text = key.status().to_string();
    EXPECT_EQ(key.status().field("size"), n);
    if (n == 0) continue;
    // Neither hex spelling of the bytes, nor a recognisable run of them, nor the raw bytes.
    EXPECT_EQ(text.find(test::to_hex(bytes)), std::string::npos) << text;
    EXPECT_EQ(text.find(test::to_hex(bytes, /*upper=*/true)), std::string::npos) << text;
    EXPECT_EQ(text.find(test::to_hex(ByteView(bytes).first(4))), std::string::npos) << text;
    EXPECT_EQ(text.find(std::string(bytes.begin(), bytes.end())), std::string::npos);
  }
}

TEST(SecretKey, CloneEquals) {
  SimRandom random(2);
  const SecretKey key = SecretKey::generate(random);
  const SecretKey copy = key.clone();
  EXPECT_TRUE(copy.equals(key));
  EXPECT_TRUE(key.equals(copy));
  EXPECT_FALSE(key.empty());  // cloning leaves the original alone
  const SecretKey other = SecretKey::generate(random);
  EXPECT_FALSE(other.equals(key));
  EXPECT_FALSE(key.equals(SecretKey()));
  EXPECT_FALSE(SecretKey().equals(key));
}

TEST(SecretKey, EqualsSeesEveryByte) {
  const Bytes bytes = distinctive_bytes(kSecretKeyBytes);
  const SecretKey key = SecretKey::from_bytes(bytes).value();
  for (size_t i = 0; i < bytes.size(); i++) {
    Bytes changed = bytes;
    changed[i] ^= 0x80;
    EXPECT_FALSE(SecretKey::from_bytes(changed).value().equals(key)) << i;
  }
}

TEST(SecretKey, WipeEmpties) {
  SimRandom random(3);
  SecretKey key = SecretKey::generate(random);
  const SecretKey copy = key.clone();
  key.wipe();
  EXPECT_TRUE(key.empty());
  EXPECT_EQ(key.reveal().size(), 0u);
  EXPECT_FALSE(key.equals(copy));
  key.wipe();  // idempotent
  EXPECT_TRUE(key.empty());
}

TEST(SecretKey, MovedFromIsEmpty) {
  SimRandom random(4);
  SecretKey original = SecretKey::generate(random);
  const SecretKey copy = original.clone();

  SecretKey constructed(std::move(original));
  EXPECT_TRUE(original.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_TRUE(constructed.equals(copy));

  SecretKey assigned = SecretKey::generate(random);
  assigned = std::move(constructed);
  EXPECT_TRUE(constructed.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(assigned.equals(copy));

  SecretKey& alias = assigned;
  assigned = std::move(alias);  // self-move keeps the key
  EXPECT_TRUE(assigned.equals(copy));
}

TEST(SecretKey, GenerateIsDeterministicForADeterministicRandom) {
  SimRandom a(99);
  SimRandom b(99);
  SimRandom c(100);
  const SecretKey ka = SecretKey::generate(a);
  const SecretKey kb = SecretKey::generate(b);
  const SecretKey kc = SecretKey::generate(c);
  EXPECT_TRUE(ka.equals(kb));
  EXPECT_FALSE(ka.equals(kc));
  // Consecutive keys from one stream differ.
  EXPECT_FALSE(SecretKey::generate(a).equals(ka));
  // generate() draws exactly the key's bytes from the stream.
  SimRandom d(99);
  Bytes expected(kSecretKeyBytes);
  d.fill(expected);
  EXPECT_EQ(Bytes(ka.reveal().begin(), ka.reveal().end()), expected);
}

}  // namespace
}  // namespace quire
