#include "base/coding.h"

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

// 0, 1, the largest values, and 2^k - 1 and 2^k wherever a varint gains a byte or a value
// outgrows a fixed width.
std::vector<uint64_t> boundary_values() {
  std::vector<uint64_t> values = {0, 1, kU64Max - 1, kU64Max};
  for (int k : {7, 8, 14, 16, 21, 28, 32, 35, 42, 49, 56, 63}) {
    values.push_back((uint64_t{1} << k) - 1);
    values.push_back(uint64_t{1} << k);
  }
  return values;
}

const std::vector<uint64_t> kBoundaries64 = boundary_values();

// Draws a boundary value half the time and an arbitrary value otherwise.
rc::Gen<uint64_t> interesting_u64() {
  return rc::gen::oneOf(rc::gen::elementOf(kBoundaries64), rc::gen::arbitrary<uint64_t>());
}

// Copies `bytes` into a heap block of exactly that size, so ASan flags any read past it.
std::unique_ptr<uint8_t[]> exact_copy(const Bytes& bytes) {
  auto copy = std::make_unique<uint8_t[]>(bytes.size());
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return copy;
}

TEST(Coding, FixedIsLittleEndian) {
  uint8_t buf[8];
  encode_fixed32(buf, 0x04030201u);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[3], 4);
  EXPECT_EQ(decode_fixed32(buf), 0x04030201u);

  encode_fixed64(buf, 0x0807060504030201ull);
  for (int i = 0; i < 8; i++) EXPECT_EQ(buf[i], i + 1);
  EXPECT_EQ(decode_fixed64(buf), 0x0807060504030201ull);
}

TEST(Coding, VarintKnownEncodings) {
  Bytes out;
  ByteWriter w(out);
  w.put_varint32(0);
  w.put_varint32(127);
  w.put_varint32(128);
  w.put_varint64(300);
  EXPECT_EQ(out, (Bytes{0x00, 0x7f, 0x80, 0x01, 0xac, 0x02}));

  out.clear();
  w.put_varint64(kU64Max);
  EXPECT_EQ(out.size(), kVarint64LengthMax);
  EXPECT_EQ(out.back(), 0x01);
  out.clear();
  w.put_varint32(kU32Max);
  EXPECT_EQ(out, (Bytes{0xff, 0xff, 0xff, 0xff, 0x0f}));
}

TEST(Coding, VarintLengthMatchesEncoding) {
  for (uint64_t v : kBoundaries64) {
    Bytes out;
    ByteWriter(out).put_varint64(v);
    EXPECT_EQ(varint_length(v), out.size()) << v;
  }
  EXPECT_EQ(varint_length(0), 1u);
  EXPECT_EQ(varint_length(127), 1u);
  EXPECT_EQ(varint_length(128), 2u);
  EXPECT_EQ(varint_length(kU64Max), 10u);
}

TEST(Coding, WriterSizeIsOffsetOfNextPut) {
  Bytes out = {9, 9};
  ByteWriter w(out);
  EXPECT_EQ(w.size(), 2u);
  const size_t header_at = w.size();
  w.put_fixed32(0);
  w.put_string("body");
  encode_fixed32(out.data() + header_at, 0xabcdef01u);
  EXPECT_EQ(w.size(), 2u + 4u + 1u + 4u);

  ByteReader r(out);
  uint16_t prefix = 0;
  uint32_t header = 0;
  std::string body;
  ASSERT_TRUE(r.get_fixed16(&prefix).is_ok());
  ASSERT_TRUE(r.get_fixed32(&header).is_ok());
  ASSERT_TRUE(r.get_string(&body).is_ok());
  EXPECT_EQ(prefix, 0x0909);
  EXPECT_EQ(header, 0xabcdef01u);
  EXPECT_EQ(body, "body");
  EXPECT_TRUE(r.at_end());
}

RC_GTEST_PROP(Coding, EveryWidthRoundTrips, ()) {
  const uint64_t v = *interesting_u64();
  const auto v8 = static_cast<uint8_t>(v);
  const auto v16 = static_cast<uint16_t>(v);
  const auto v32 = static_cast<uint32_t>(v);
  Bytes out;
  ByteWriter w(out);
  w.put_u8(v8);
  w.put_fixed16(v16);
  w.put_fixed32(v32);
  w.put_fixed64(v);
  w.put_varint32(v32);
  w.put_varint64(v);
  RC_ASSERT(out.size() == 1 + 2 + 4 + 8 + varint_length(v32) + varint_length(v));

  ByteReader r(out);
  uint8_t got8 = 0;
  uint16_t got16 = 0;
  uint32_t got32 = 0, gotv32 = 0;
  uint64_t got64 = 0, gotv64 = 0;
  RC_ASSERT(r.get_u8(&got8).is_ok());
  RC_ASSERT(r.get_fixed16(&got16).is_ok());
  RC_ASSERT(r.get_fixed32(&got32).is_ok());
  RC_ASSERT(r.get_fixed64(&got64).is_ok());
  RC_ASSERT(r.get_varint32(&gotv32).is_ok());
  RC_ASSERT(r.get_varint64(&gotv64).is_ok());
  RC_ASSERT(got8 == v8);
  RC_ASSERT(got16 == v16);
  RC_ASSERT(got32 == v32);
  RC_ASSERT(got64 == v);
  RC_ASSERT(gotv32 == v32);
  RC_ASSERT(gotv64 == v);
  RC_ASSERT(r.at_end());
  RC_ASSERT(r.position() == out.size());
}

RC_GTEST_PROP(Coding, LengthPrefixedRoundTrips,
              (const std::vector<uint8_t>& payload, const std::string& text)) {
  Bytes out;
  ByteWriter w(out);
  w.put_length_prefixed(payload);
  w.put_string(text);
  w.put_bytes(payload);

  ByteReader r(out);
  ByteView got_payload, got_raw;
  std::string got_text;
  RC_ASSERT(r.get_length_prefixed(&got_payload).is_ok());
  RC_ASSERT(r.get_string(&got_text).is_ok());
  RC_ASSERT(r.get_bytes(payload.size(), &got_raw).is_ok());
  RC_ASSERT(Bytes(got_payload.begin(), got_payload.end()) == payload);
  RC_ASSERT(got_text == text);
  RC_ASSERT(Bytes(got_raw.begin(), got_raw.end()) == payload);
  RC_ASSERT(r.at_end());
  // get_bytes returns a view into the input, not a copy.
  RC_ASSERT(got_raw.data() == out.data() + out.size() - payload.size());
}

// One value of each kind, written in order; decode() reads them back in the same order and
// stops at the first error.
struct Record {
  uint8_t u8 = 0;
  uint16_t fixed16 = 0;
  uint32_t fixed32 = 0;
  uint64_t fixed64 = 0;
  uint32_t varint32 = 0;
  uint64_t varint64 = 0;
  std::string text;
  std::vector<uint8_t> bytes;
};

Bytes encode(const Record& rec) {
  Bytes out;
  ByteWriter w(out);
  w.put_u8(rec.u8);
  w.put_fixed16(rec.fixed16);
  w.put_fixed32(rec.fixed32);
  w.put_fixed64(rec.fixed64);
  w.put_varint32(rec.varint32);
  w.put_varint64(rec.varint64);
  w.put_string(rec.text);
  w.put_length_prefixed(rec.bytes);
  return out;
}

// Returns the first failure, with `failed_at` the reader's position after it.
Status decode(ByteReader& r, Record* rec, size_t* failed_at) {
  ByteView bytes;
  Status s;
  size_t before = r.position();
  auto step = [&](Status st) {
    if (s.is_ok() && !st.is_ok()) {
      s = std::move(st);
      *failed_at = r.position();
      // The reader must not have moved on a failed read.
      if (r.position() != before) s = invalid_argument("position moved on failure");
    }
    before = r.position();
  };
  step(r.get_u8(&rec->u8));
  if (s.is_ok()) step(r.get_fixed16(&rec->fixed16));
  if (s.is_ok()) step(r.get_fixed32(&rec->fixed32));
  if (s.is_ok()) step(r.get_fixed64(&rec->fixed64));
  if (s.is_ok()) step(r.get_varint32(&rec->varint32));
  if (s.is_ok()) step(r.get_varint64(&rec->varint64));
  if (s.is_ok()) step(r.get_string(&rec->text));
  if (s.is_ok()) step(r.get_length_prefixed(&bytes));
  if (s.is_ok()) rec->bytes.assign(bytes.begin(), bytes.end());
  return s;
}

RC_GTEST_PROP(Coding, EveryTruncationFailsWithCorruption, ()) {
  Record rec;
  rec.u8 = *rc::gen::arbitrary<uint8_t>();
  rec.fixed16 = *rc::gen::arbitrary<uint16_t>();
  rec.fixed32 = *rc::gen::arbitrary<uint32_t>();
  rec.fixed64 = *interesting_u64();
  rec.varint32 = static_cast<uint32_t>(*interesting_u64());
  rec.varint64 = *interesting_u64();
  rec.text = *rc::gen::arbitrary<std::string>();
  rec.bytes = *rc::gen::arbitrary<std::vector<uint8_t>>();
  const Bytes full = encode(rec);

  {
    ByteReader r(full);
    Record got;
    size_t failed_at = 0;
    RC_ASSERT(decode(r, &got, &failed_at).is_ok());
    RC_ASSERT(r.at_end());
    RC_ASSERT(got.u8 == rec.u8 && got.fixed16 == rec.fixed16 && got.fixed32 == rec.fixed32 &&
              got.fixed64 == rec.fixed64);
    RC_ASSERT(got.varint32 == rec.varint32 && got.varint64 == rec.varint64 &&
              got.text == rec.text && got.bytes == rec.bytes);
  }

  for (size_t length = 0; length < full.size(); length++) {
    const auto copy = exact_copy(full);
    ByteReader r(ByteView(copy.get(), length));
    Record got;
    size_t failed_at = 0;
    const Status s = decode(r, &got, &failed_at);
    RC_ASSERT(s.code() == Code::kCorruption);
    RC_ASSERT(s.field("offset").has_value());
    RC_ASSERT(*s.field("offset") == failed_at);
    RC_ASSERT(failed_at <= length);
  }
}

TEST(Coding, ErrorNamesWhatAndWhere) {
  const Bytes input = {1, 2, 3};
  ByteReader r(input);
  uint8_t b = 0;
  ASSERT_TRUE(r.get_u8(&b).is_ok());
  uint32_t v = 0xdeadbeef;
  const Status s = r.get_fixed32(&v);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.field("offset"), 1u);
  EXPECT_NE(s.message().find("fixed32"), std::string::npos) << s.to_string();
  EXPECT_EQ(v, 0xdeadbeefu) << "output must be untouched on failure";
  EXPECT_EQ(r.position(), 1u);
  EXPECT_EQ(r.remaining(), 2u);
}

TEST(Coding, EmptyReader) {
  ByteReader r{ByteView()};
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.remaining(), 0u);
  uint8_t b = 0;
  EXPECT_EQ(r.get_u8(&b).code(), Code::kCorruption);
  ByteView view;
  EXPECT_TRUE(r.get_bytes(0, &view).is_ok());
  EXPECT_TRUE(view.empty());
  EXPECT_EQ(r.get_bytes(1, &view).code(), Code::kCorruption);
}

Status read_varint32(const Bytes& input, uint32_t* out, size_t* position) {
  const auto copy = exact_copy(input);
  ByteReader r(ByteView(copy.get(), input.size()));
  Status s = r.get_varint32(out);
  *position = r.position();
  return s;
}

Status read_varint64(const Bytes& input, uint64_t* out, size_t* position) {
  const auto copy = exact_copy(input);
  ByteReader r(ByteView(copy.get(), input.size()));
  Status s = r.get_varint64(out);
  *position = r.position();
  return s;
}

TEST(Coding, OverlongVarintsRejected) {
  uint32_t v32 = 0;
  uint64_t v64 = 0;
  size_t position = 99;

  // Six bytes for a varint32, even if the sixth would end it.
  EXPECT_EQ(read_varint32({0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, &v32, &position).code(),
            Code::kCorruption);
  EXPECT_EQ(position, 0u);
  // Eleven bytes for a varint64.
  Bytes eleven(10, 0x80);
  eleven.push_back(0x00);
  EXPECT_EQ(read_varint64(eleven, &v64, &position).code(), Code::kCorruption);
  EXPECT_EQ(position, 0u);
  // A continuation bit on the last permitted byte, with more bytes available.
  EXPECT_EQ(read_varint32({0xff, 0xff, 0xff, 0xff, 0x8f, 0x01}, &v32, &position).code(),
            Code::kCorruption);
}

TEST(Coding, OverflowingVarintsRejected) {
  uint32_t v32 = 0;
  uint64_t v64 = 0;
  size_t position = 99;

  // 2^32 as a varint32: a bit beyond 32 in the fifth byte.
  EXPECT_EQ(read_varint32({0x80, 0x80, 0x80, 0x80, 0x10}, &v32, &position).code(),
            Code::kCorruption);
  EXPECT_EQ(position, 0u);
  // 2^64 as a varint64: a bit beyond 64 in the tenth byte.
  Bytes big(9, 0x80);
  big.push_back(0x02);
  EXPECT_EQ(read_varint64(big, &v64, &position).code(), Code::kCorruption);
  EXPECT_EQ(position, 0u);

  // The largest values themselves are fine.
  ASSERT_TRUE(read_varint32({0xff, 0xff, 0xff, 0xff, 0x0f}, &v32, &position).is_ok());
  EXPECT_EQ(v32, kU32Max);
  EXPECT_EQ(position, 5u);
  Bytes max64(9, 0xff);
  max64.push_back(0x01);
  ASSERT_TRUE(read_varint64(max64, &v64, &position).is_ok());
  EXPECT_EQ(v64, kU64Max);
  EXPECT_EQ(position, 10u);
}

TEST(Coding, LengthPrefixBoundAndTruncation) {
  Bytes out;
  ByteWriter w(out);
  w.put_length_prefixed(Bytes(10, 7));

  ByteView view;
  {
    ByteReader r(out);
    const Status s = r.get_length_prefixed(&view, 9);
    EXPECT_EQ(s.code(), Code::kCorruption);
    EXPECT_EQ(s.field("length"), 10u);
    EXPECT_EQ(r.position(), 0u);
    EXPECT_TRUE(r.get_length_prefixed(&view, 10).is_ok());
    EXPECT_EQ(view.size(), 10u);
  }
  {
    // A length that claims more than the input holds.
    const Bytes lying = {0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2};
    ByteReader r(lying);
    EXPECT_EQ(r.get_length_prefixed(&view).code(), Code::kCorruption);
    EXPECT_EQ(r.position(), 0u);
    std::string s = "unchanged";
    EXPECT_EQ(r.get_string(&s).code(), Code::kCorruption);
    EXPECT_EQ(s, "unchanged");
    EXPECT_EQ(r.position(), 0u);
  }
  {
    // A length near 2^64 must not overflow the bounds check.
    Bytes huge(9, 0xff);
    huge.push_back(0x01);
    huge.push_back(0x00);
    ByteReader r(huge);
    EXPECT_EQ(r.get_length_prefixed(&view).code(), Code::kCorruption);
    EXPECT_EQ(r.get_bytes(kU64Max, &view).code(), Code::kCorruption);
    EXPECT_EQ(r.position(), 0u);
  }
}

// Arbitrary bytes never crash the reader and every failure is Corruption.
RC_GTEST_PROP(Coding, ArbitraryInputNeverReadsOutOfBounds, (const std::vector<uint8_t>& input)) {
  const auto copy = exact_copy(input);
  ByteReader r(ByteView(copy.get(), input.size()));
  Record got;
  size_t failed_at = 0;
  const Status s = decode(r, &got, &failed_at);
  RC_ASSERT(s.is_ok() || s.code() == Code::kCorruption);
  RC_ASSERT(r.position() <= input.size());
}

}  // namespace
}  // namespace quire
