#include "base/crc32c.h"

#include <cstring>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

uint32_t value_of(std::string_view s) {
  return crc32c::value(s.data(), s.size());
}

// Known answers from RFC 3720 B.4 and the usual "123456789" check value.
TEST(Crc32c, StandardVectors) {
  EXPECT_EQ(value_of("123456789"), 0xe3069283u);

  std::vector<uint8_t> buf(32);
  std::memset(buf.data(), 0x00, buf.size());
  EXPECT_EQ(crc32c::value(buf), 0x8a9136aau);

  std::memset(buf.data(), 0xff, buf.size());
  EXPECT_EQ(crc32c::value(buf), 0x62a8ab43u);

  for (size_t i = 0; i < 32; i++) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c::value(buf), 0x46dd794eu);

  for (size_t i = 0; i < 32; i++) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crc32c::value(buf), 0x113fdb5cu);

  // An iSCSI SCSI Read (10) command PDU.
  const uint8_t pdu[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  EXPECT_EQ(crc32c::value(pdu, sizeof(pdu)), 0xd9963a56u);
}

TEST(Crc32c, PortablePathMatchesStandardVectors) {
  EXPECT_EQ(crc32c::extend_portable(0, "123456789", 9), 0xe3069283u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c::extend_portable(0, zeros.data(), zeros.size()), 0x8a9136aau);
}

TEST(Crc32c, EmptyInputLeavesCrcUnchanged) {
  EXPECT_EQ(crc32c::value(nullptr, 0), 0u);
  EXPECT_EQ(crc32c::extend(0x12345678u, nullptr, 0), 0x12345678u);
  EXPECT_EQ(crc32c::extend_portable(0x12345678u, nullptr, 0), 0x12345678u);
}

TEST(Crc32c, DifferentInputsDiffer) {
  EXPECT_NE(value_of("a"), value_of("foo"));
  EXPECT_NE(value_of("foo"), value_of("bar"));
}

TEST(Crc32c, ExtendOfPiecesEqualsValueOfWhole) {
  EXPECT_EQ(value_of("hello world"), crc32c::extend(value_of("hello "), "world", 5));
}

TEST(Crc32c, MaskChangesValueAndUnmaskRestoresIt) {
  const uint32_t crc = value_of("foo");
  EXPECT_NE(crc, crc32c::mask(crc));
  EXPECT_NE(crc, crc32c::mask(crc32c::mask(crc)));
  EXPECT_EQ(crc, crc32c::unmask(crc32c::mask(crc)));
  EXPECT_EQ(crc, crc32c::unmask(crc32c::unmask(crc32c::mask(crc32c::mask(crc)))));
}

// Every length 0..300 at every alignment 0..7, so the hardware path's byte prologue,
// 8-byte body and byte epilogue and the portable path's slicing loop all get exercised.
RC_GTEST_PROP(Crc32c, HardwareAndPortablePathsAgree, ()) {
  const auto length = *rc::gen::inRange<size_t>(0, 301);
  const auto alignment = *rc::gen::inRange<size_t>(0, 8);
  const auto seed = *rc::gen::arbitrary<uint32_t>();
  const auto bytes =
      *rc::gen::container<std::vector<uint8_t>>(length + alignment, rc::gen::arbitrary<uint8_t>());
  const uint8_t* data = bytes.data() + alignment;
  RC_ASSERT(crc32c::extend(seed, data, length) == crc32c::extend_portable(seed, data, length));
}

TEST(Crc32c, HardwareAndPortablePathsAgreeOnEveryLengthAndAlignment) {
  std::vector<uint8_t> bytes(300 + 8);
  uint32_t x = 0x9e3779b9u;
  for (auto& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  for (size_t alignment = 0; alignment < 8; alignment++) {
    for (size_t length = 0; length <= 300; length++) {
      const uint8_t* data = bytes.data() + alignment;
      ASSERT_EQ(crc32c::extend(7, data, length), crc32c::extend_portable(7, data, length))
          << "length=" << length << " alignment=" << alignment;
    }
  }
}

RC_GTEST_PROP(Crc32c, ExtendComposes,
              (const std::vector<uint8_t>& a, const std::vector<uint8_t>& b)) {
  std::vector<uint8_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  RC_ASSERT(crc32c::extend(crc32c::value(a), b.data(), b.size()) == crc32c::value(ab));
  RC_ASSERT(crc32c::extend_portable(crc32c::extend_portable(0, a.data(), a.size()), b.data(),
                                    b.size()) == crc32c::value(ab));
}

RC_GTEST_PROP(Crc32c, MaskRoundTrips, (uint32_t crc)) {
  RC_ASSERT(crc32c::unmask(crc32c::mask(crc)) == crc);
}

}  // namespace
}  // namespace quire
