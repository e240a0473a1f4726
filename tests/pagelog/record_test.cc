#include "pagelog/record.h"

#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "base/crc32c.h"

namespace quire {
namespace {

// The header bytes that hold the payload length; a flip there may make the frame look
// longer than the bytes at hand.
constexpr size_t kLengthBegin = 8;
constexpr size_t kLengthEnd = 12;

// A record of `type` that validate_record accepts (for every type but ABANDON and TERM).
Record valid_record(RecordType type, Bytes payload = {}) {
  Record r;
  r.type = type;
  r.flags = 0x0102;
  r.table = TableId(3);
  r.page = PageId(17);
  r.lsn = Lsn(100);
  r.base_lsn = type == RecordType::kDelta ? Lsn(90) : Lsn();
  r.backlink_lsn = Lsn(95);
  r.term = Term(2);
  r.prev_lsn = Lsn(99);
  r.payload = std::move(payload);
  return r;
}

Bytes patterned_payload(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(i * 7 + 1);
  return p;
}

Bytes encoded(const Record& r) {
  Bytes out;
  encode_record(r, out);
  return out;
}

// The first n bytes of `b` in a heap block of exactly n bytes, so ASan flags a read past them.
Bytes prefix(const Bytes& b, size_t n) {
  return Bytes(b.begin(), b.begin() + n);
}

// Any record the frame can carry, valid or not: decoding does not judge the fields.
// Only usable inside a RapidCheck property.
Record arbitrary_record(size_t payload_bytes_max) {
  Record r;
  r.type = *rc::gen::elementOf(
      std::vector<RecordType>(std::begin(kAllRecordTypes), std::end(kAllRecordTypes)));
  r.flags = *rc::gen::arbitrary<uint16_t>();
  r.table = TableId(*rc::gen::arbitrary<uint64_t>());
  r.page = PageId(*rc::gen::arbitrary<uint64_t>());
  r.lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
  r.base_lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
  r.backlink_lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
  r.term = Term(*rc::gen::arbitrary<uint64_t>());
  r.prev_lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
  size_t n = *rc::gen::inRange<size_t>(0, payload_bytes_max + 1);
  r.payload = *rc::gen::container<Bytes>(n, rc::gen::arbitrary<uint8_t>());
  return r;
}

bool header_matches(const RecordHeader& h, const Record& r) {
  return h.type == r.type && h.flags == r.flags && h.payload_size == r.payload.size() &&
         h.table == r.table && h.page == r.page && h.lsn == r.lsn && h.base_lsn == r.base_lsn &&
         h.backlink_lsn == r.backlink_lsn && h.term == r.term && h.prev_lsn == r.prev_lsn;
}

// --- The frame ---------------------------------------------------------------------------

// Every field sits where record.h's table says, and the checksum is the masked CRC32C of
// the header with the checksum zeroed, then the payload.
TEST(RecordFrame, LayoutMatchesTheDocumentedTable) {
  Record r;
  r.type = RecordType::kDelta;
  r.flags = 0xa1b2;
  r.table = TableId(0x1111111111111101);
  r.page = PageId(0x2222222222222202);
  r.lsn = Lsn(0x3333333333333303);
  r.base_lsn = Lsn(0x4444444444444404);
  r.backlink_lsn = Lsn(0x5555555555555505);
  r.term = Term(0x6666666666666606);
  r.prev_lsn = Lsn(0x7777777777777707);
  r.payload = {'a', 'b', 'c'};
  Bytes b = encoded(r);

  ASSERT_EQ(b.size(), 75u);
  EXPECT_EQ(b[0], 'Q');
  EXPECT_EQ(b[1], 'R');
  EXPECT_EQ(b[2], 'E');
  EXPECT_EQ(b[3], 'C');
  EXPECT_EQ(decode_fixed32(&b[0]), kRecordMagic);
  EXPECT_EQ(b[4], 1);
  EXPECT_EQ(b[5], 3);
  EXPECT_EQ(decode_fixed16(&b[6]), 0xa1b2);
  EXPECT_EQ(decode_fixed32(&b[8]), 3u);
  EXPECT_EQ(decode_fixed64(&b[16]), r.table.value);
  EXPECT_EQ(decode_fixed64(&b[24]), r.page.value);
  EXPECT_EQ(decode_fixed64(&b[32]), r.lsn.value);
  EXPECT_EQ(decode_fixed64(&b[40]), r.base_lsn.value);
  EXPECT_EQ(decode_fixed64(&b[48]), r.backlink_lsn.value);
  EXPECT_EQ(decode_fixed64(&b[56]), r.term.value);
  EXPECT_EQ(decode_fixed64(&b[64]), r.prev_lsn.value);
  EXPECT_EQ(b[72], 'a');
  EXPECT_EQ(b[74], 'c');

  Bytes zeroed = b;
  std::memset(&zeroed[12], 0, 4);
  EXPECT_EQ(decode_fixed32(&b[12]), crc32c::mask(crc32c::value(zeroed)));
}

TEST(RecordFrame, TypeNamesAndClasses) {
  for (RecordType t : kAllRecordTypes) {
    EXPECT_TRUE(record_type_valid(static_cast<uint8_t>(t)));
    EXPECT_NE(record_type_name(t), "UNKNOWN");
  }
  EXPECT_FALSE(record_type_valid(0));
  EXPECT_FALSE(record_type_valid(10));
  EXPECT_FALSE(record_type_valid(255));
  EXPECT_EQ(record_type_name(static_cast<RecordType>(10)), "UNKNOWN");
  EXPECT_EQ(record_type_name(RecordType::kTerm), "TERM");

  EXPECT_TRUE(record_type_is_page(RecordType::kPage));
  EXPECT_TRUE(record_type_is_page(RecordType::kDelta));
  EXPECT_TRUE(record_type_is_page(RecordType::kDiscard));
  EXPECT_TRUE(record_type_is_page(RecordType::kKeystore));
  EXPECT_TRUE(record_type_is_page(RecordType::kMetadata));
  EXPECT_FALSE(record_type_is_page(RecordType::kLog));
  EXPECT_FALSE(record_type_is_page(RecordType::kCheckpointComplete));
  EXPECT_FALSE(record_type_is_page(RecordType::kAbandon));
  EXPECT_FALSE(record_type_is_page(RecordType::kTerm));
  EXPECT_TRUE(record_type_is_internal(RecordType::kAbandon));
  EXPECT_TRUE(record_type_is_internal(RecordType::kTerm));
  for (RecordType t : kAllRecordTypes) {
    const bool internal = t == RecordType::kAbandon || t == RecordType::kTerm;
    EXPECT_EQ(record_type_is_internal(t), internal) << record_type_name(t);
  }
}

// --- Round trips ---------------------------------------------------------------------------

TEST(RecordRoundTrip, EveryTypeWithEmptySmallAndLargePayloads) {
  for (RecordType t : kAllRecordTypes) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{4096}}) {
      Record r = valid_record(t, patterned_payload(n));
      Bytes b = encoded(r);
      ASSERT_EQ(b.size(), r.framed_size());
      DecodedRecord d = decode_record(b);
      ASSERT_EQ(d.outcome, DecodeOutcome::kOk) << record_type_name(t) << " " << n;
      EXPECT_EQ(d.record, r);
      EXPECT_EQ(d.size, b.size());
      EXPECT_TRUE(d.error.is_ok());
    }
  }
}

TEST(RecordRoundTrip, LargestPayloadIsAccepted) {
  Record r = valid_record(RecordType::kPage, Bytes(kRecordPayloadMax, 0x5a));
  EXPECT_TRUE(validate_record(r).is_ok());
  Bytes b = encoded(r);
  DecodedRecord d = decode_record(b);
  ASSERT_EQ(d.outcome, DecodeOutcome::kOk);
  EXPECT_EQ(d.size, kRecordHeaderBytes + kRecordPayloadMax);
  EXPECT_EQ(d.record, r);
}

RC_GTEST_PROP(RecordRoundTrip, ArbitraryFieldsAndPayloads, ()) {
  Record r = arbitrary_record(4096);
  Bytes b = encoded(r);
  RC_ASSERT(b.size() == r.framed_size());

  DecodedRecord d = decode_record(b);
  RC_ASSERT(d.outcome == DecodeOutcome::kOk);
  RC_ASSERT(d.record == r);
  RC_ASSERT(d.size == b.size());

  RecordHeader h{};
  size_t size = 0;
  RC_ASSERT(check_record(b, &h, &size, nullptr) == DecodeOutcome::kOk);
  RC_ASSERT(header_matches(h, r));
  RC_ASSERT(size == b.size());

  auto header = decode_record_header(b);
  RC_ASSERT(header.is_ok());
  RC_ASSERT(header_matches(*header, r));
}

// encode_record appends, and decode_record reads one record off the front of a longer buffer.
RC_GTEST_PROP(RecordRoundTrip, RecordsBackToBack, ()) {
  Record a = arbitrary_record(512);
  Record b = arbitrary_record(512);
  Bytes buf;
  encode_record(a, buf);
  encode_record(b, buf);
  RC_ASSERT(buf.size() == a.framed_size() + b.framed_size());

  DecodedRecord first = decode_record(buf);
  RC_ASSERT(first.outcome == DecodeOutcome::kOk);
  RC_ASSERT(first.record == a);
  RC_ASSERT(first.size == a.framed_size());
  DecodedRecord second = decode_record(ByteView(buf).subspan(first.size));
  RC_ASSERT(second.outcome == DecodeOutcome::kOk);
  RC_ASSERT(second.record == b);
}

// --- validate_record -------------------------------------------------------------------------

TEST(ValidateRecord, AcceptsAWellFormedRecordOfEveryWritableType) {
  for (RecordType t : kAllRecordTypes) {
    if (record_type_is_internal(t)) continue;
    EXPECT_TRUE(validate_record(valid_record(t)).is_ok()) << record_type_name(t);
  }
}

// ABANDON and TERM are the server's own markers: never accepted from a writer or a peer.
TEST(ValidateRecord, RejectsInternalAndUnknownTypes) {
  for (uint8_t t : {uint8_t{0}, uint8_t{8}, uint8_t{9}, uint8_t{10}, uint8_t{200}, uint8_t{255}}) {
    Record r = valid_record(RecordType::kLog);
    r.type = static_cast<RecordType>(t);
    EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << int{t};
  }
}

TEST(ValidateRecord, RejectsLsnZero) {
  Record r = valid_record(RecordType::kLog);
  r.lsn = Lsn(0);
  r.prev_lsn = Lsn(0);
  r.backlink_lsn = Lsn(0);
  EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument);
}

TEST(ValidateRecord, RejectsOversizedPayload) {
  Record r = valid_record(RecordType::kPage, Bytes(kRecordPayloadMax + 1));
  EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument);
  r.payload.pop_back();
  EXPECT_TRUE(validate_record(r).is_ok());
}

TEST(ValidateRecord, RejectsPageRecordWithoutPageId) {
  for (RecordType t : kAllRecordTypes) {
    if (record_type_is_internal(t)) continue;
    Record r = valid_record(t);
    r.page = PageId(0);
    if (record_type_is_page(t)) {
      EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << record_type_name(t);
    } else {
      EXPECT_TRUE(validate_record(r).is_ok()) << record_type_name(t);
    }
  }
}

TEST(ValidateRecord, RejectsDeltaWithoutABaseBelowIt) {
  Record r = valid_record(RecordType::kDelta);
  for (uint64_t base : {uint64_t{0}, r.lsn.value, r.lsn.value + 1, ~uint64_t{0}}) {
    r.base_lsn = Lsn(base);
    EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << base;
  }
  r.base_lsn = Lsn(r.lsn.value - 1);
  EXPECT_TRUE(validate_record(r).is_ok());
  r.base_lsn = Lsn(1);
  EXPECT_TRUE(validate_record(r).is_ok());
}

TEST(ValidateRecord, RejectsACheckpointLogPositionNotBelowTheCompletion) {
  Record r = valid_record(RecordType::kCheckpointComplete);
  for (uint64_t base : {r.lsn.value, r.lsn.value + 1}) {
    r.base_lsn = Lsn(base);
    EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << base;
  }
  r.base_lsn = Lsn(r.lsn.value - 1);  // the engine writes the checkpoint's log position
  EXPECT_TRUE(validate_record(r).is_ok());
}

// LSNs and terms at or above 2^63 are refused, whatever the type. (prev and backlink must
// be below the record's LSN, so they are bounded through it.)
TEST(ValidateRecord, RejectsLsnsAndTermsAtOrAbove2To63) {
  const uint64_t limit = uint64_t{1} << 63;
  for (RecordType t : kAllRecordTypes) {
    if (record_type_is_internal(t)) continue;
    for (uint64_t value : {limit, limit + 1, ~uint64_t{0}}) {
      Record r = valid_record(t);
      r.lsn = Lsn(value);
      EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << record_type_name(t);
      r = valid_record(t);
      r.term = Term(value);
      EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << record_type_name(t);
      r = valid_record(t);
      r.base_lsn = Lsn(value);  // unordered for most types: only the bound refuses it
      EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << record_type_name(t);
    }
    Record r = valid_record(t);
    r.term = Term(limit - 1);
    EXPECT_TRUE(validate_record(r).is_ok()) << record_type_name(t);
  }
}

TEST(ValidateRecord, RejectsPrevLsnNotBelowTheRecord) {
  Record r = valid_record(RecordType::kLog);
  for (uint64_t prev : {r.lsn.value, r.lsn.value + 1, ~uint64_t{0}}) {
    r.prev_lsn = Lsn(prev);
    EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << prev;
  }
  r.prev_lsn = Lsn(0);  // the writer's first record
  EXPECT_TRUE(validate_record(r).is_ok());
  r.prev_lsn = Lsn(r.lsn.value - 1);
  EXPECT_TRUE(validate_record(r).is_ok());
}

TEST(ValidateRecord, RejectsBacklinkNotBelowTheRecord) {
  Record r = valid_record(RecordType::kPage);
  for (uint64_t backlink : {r.lsn.value, r.lsn.value + 1, ~uint64_t{0}}) {
    r.backlink_lsn = Lsn(backlink);
    EXPECT_EQ(validate_record(r).code(), Code::kInvalidArgument) << backlink;
  }
  r.backlink_lsn = Lsn(0);  // the first element of a page's chain
  EXPECT_TRUE(validate_record(r).is_ok());
  r.backlink_lsn = Lsn(r.lsn.value - 1);
  EXPECT_TRUE(validate_record(r).is_ok());
}

// --- Torn and damaged frames ---------------------------------------------------------------

void expect_every_prefix_truncated(const Bytes& b) {
  for (size_t cut = 0; cut < b.size(); cut++) {
    Bytes part = prefix(b, cut);
    DecodedRecord d = decode_record(part);
    ASSERT_EQ(d.outcome, DecodeOutcome::kTruncated) << "cut " << cut << ": " << d.error.to_string();
    ASSERT_EQ(check_record(part, nullptr, nullptr, nullptr), DecodeOutcome::kTruncated) << cut;
  }
}

TEST(RecordDamage, EveryTruncationOfEveryTypeIsTruncated) {
  for (RecordType t : kAllRecordTypes) {
    SCOPED_TRACE(record_type_name(t));
    expect_every_prefix_truncated(encoded(valid_record(t, patterned_payload(40))));
  }
  expect_every_prefix_truncated(encoded(valid_record(RecordType::kLog)));
}

RC_GTEST_PROP(RecordDamage, EveryTruncationOfAnArbitraryRecordIsTruncated, ()) {
  Bytes b = encoded(arbitrary_record(128));
  for (size_t cut = 0; cut < b.size(); cut++) {
    Bytes part = prefix(b, cut);
    RC_ASSERT(decode_record(part).outcome == DecodeOutcome::kTruncated);
    RC_ASSERT(check_record(part, nullptr, nullptr, nullptr) == DecodeOutcome::kTruncated);
  }
}

// Flips every bit of `frame` in turn, decoding it alone and followed by `next` (so a longer
// length field finds bytes to read). A damaged record is never served.
void expect_every_bit_flip_rejected(const Bytes& frame, const Bytes& next) {
  for (size_t bit = 0; bit < frame.size() * 8; bit++) {
    const size_t byte = bit / 8;
    const bool in_length = byte >= kLengthBegin && byte < kLengthEnd;
    Bytes alone = frame;
    alone[byte] ^= static_cast<uint8_t>(1u << (bit % 8));
    Bytes followed = alone;
    followed.insert(followed.end(), next.begin(), next.end());
    for (const Bytes* input : {&alone, &followed}) {
      DecodedRecord d = decode_record(*input);
      ASSERT_NE(d.outcome, DecodeOutcome::kOk) << "bit " << bit;
      if (in_length) {
        ASSERT_TRUE(d.outcome == DecodeOutcome::kTruncated || d.outcome == DecodeOutcome::kCorrupt);
      } else {
        ASSERT_EQ(d.outcome, DecodeOutcome::kCorrupt) << "bit " << bit;
      }
      if (d.outcome == DecodeOutcome::kCorrupt) {
        ASSERT_TRUE(d.error.code() == Code::kCorruption || d.error.code() == Code::kVersionTooNew)
            << "bit " << bit << ": " << d.error.to_string();
      }
      ASSERT_EQ(check_record(*input, nullptr, nullptr, nullptr), d.outcome) << "bit " << bit;
    }
  }
}

TEST(RecordDamage, EveryFlippedBitOfEveryTypeIsRejected) {
  Bytes next = encoded(valid_record(RecordType::kLog, patterned_payload(200)));
  for (RecordType t : kAllRecordTypes) {
    SCOPED_TRACE(record_type_name(t));
    expect_every_bit_flip_rejected(encoded(valid_record(t, patterned_payload(16))), next);
  }
  expect_every_bit_flip_rejected(encoded(valid_record(RecordType::kPage)), next);
}

RC_GTEST_PROP(RecordDamage, EveryFlippedBitOfAnArbitraryRecordIsRejected, ()) {
  Bytes frame = encoded(arbitrary_record(24));
  Bytes next = encoded(arbitrary_record(64));
  for (size_t bit = 0; bit < frame.size() * 8; bit++) {
    Bytes damaged = frame;
    damaged[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    RC_ASSERT(decode_record(damaged).outcome != DecodeOutcome::kOk);
    damaged.insert(damaged.end(), next.begin(), next.end());
    RC_ASSERT(decode_record(damaged).outcome != DecodeOutcome::kOk);
  }
}

TEST(RecordDamage, NewerFormatVersionIsVersionTooNew) {
  const Bytes good = encoded(valid_record(RecordType::kPage, patterned_payload(8)));
  for (uint8_t version : {uint8_t{2}, uint8_t{3}, uint8_t{0x80}, uint8_t{0xff}}) {
    Bytes b = good;
    b[4] = version;
    DecodedRecord d = decode_record(b);
    EXPECT_EQ(d.outcome, DecodeOutcome::kCorrupt);
    EXPECT_EQ(d.error.code(), Code::kVersionTooNew) << int{version};
    EXPECT_EQ(decode_record_header(b).code(), Code::kVersionTooNew);
    Status error;
    EXPECT_EQ(check_record(b, nullptr, nullptr, &error), DecodeOutcome::kCorrupt);
    EXPECT_EQ(error.code(), Code::kVersionTooNew);
    // A torn header that already shows a newer version is not a record this build can finish.
    for (size_t cut = 5; cut < kRecordHeaderBytes; cut++) {
      DecodedRecord torn = decode_record(prefix(b, cut));
      EXPECT_EQ(torn.outcome, DecodeOutcome::kCorrupt) << cut;
      EXPECT_EQ(torn.error.code(), Code::kVersionTooNew) << cut;
    }
  }
  Bytes b = good;
  b[4] = 0;
  DecodedRecord d = decode_record(b);
  EXPECT_EQ(d.outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(d.error.code(), Code::kCorruption);
}

TEST(RecordDamage, ShortInputThatIsNotATornHeaderIsCorrupt) {
  EXPECT_EQ(decode_record(Bytes{}).outcome, DecodeOutcome::kTruncated);
  EXPECT_EQ(decode_record(Bytes{'Q', 'R'}).outcome, DecodeOutcome::kTruncated);
  EXPECT_EQ(decode_record(Bytes{0}).outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(decode_record(Bytes{'Q', 'X'}).outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(decode_record(Bytes{'Q', 'R', 'E', 'C', 1, 0}).outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(decode_record(Bytes{'Q', 'R', 'E', 'C', 1, 10}).outcome, DecodeOutcome::kCorrupt);
  EXPECT_EQ(decode_record(Bytes{'Q', 'R', 'E', 'C', 1, 9}).outcome, DecodeOutcome::kTruncated);
  EXPECT_EQ(decode_record(Bytes(kRecordHeaderBytes, 0)).outcome, DecodeOutcome::kCorrupt);
}

// --- decode_record_header --------------------------------------------------------------------

TEST(DecodeRecordHeader, ReadsTheFieldsWithoutCheckingTheChecksum) {
  Record r = valid_record(RecordType::kDelta, patterned_payload(10));
  Bytes b = encoded(r);
  b[12] ^= 1;  // the checksum needs the payload; the header alone does not judge it
  auto h = decode_record_header(ByteView(b).first(kRecordHeaderBytes));
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_TRUE(header_matches(*h, r));
  EXPECT_EQ(decode_record(b).outcome, DecodeOutcome::kCorrupt);
}

TEST(DecodeRecordHeader, RejectsWhatIsNotAHeader) {
  const Bytes good = encoded(valid_record(RecordType::kLog));
  for (size_t n = 0; n < kRecordHeaderBytes; n++) {
    EXPECT_EQ(decode_record_header(prefix(good, n)).code(), Code::kCorruption) << n;
  }
  Bytes b = good;
  b[0] ^= 0x40;
  EXPECT_EQ(decode_record_header(b).code(), Code::kCorruption);
  for (uint8_t type : {uint8_t{0}, uint8_t{10}, uint8_t{255}}) {
    b = good;
    b[5] = type;
    EXPECT_EQ(decode_record_header(b).code(), Code::kCorruption) << int{type};
    EXPECT_EQ(decode_record(b).outcome, DecodeOutcome::kCorrupt);
  }
  b = good;
  encode_fixed32(&b[8], static_cast<uint32_t>(kRecordPayloadMax + 1));
  EXPECT_EQ(decode_record_header(b).code(), Code::kCorruption);
  EXPECT_EQ(decode_record(b).outcome, DecodeOutcome::kCorrupt);
  encode_fixed32(&b[8], 0xffffffffu);
  EXPECT_EQ(decode_record_header(b).code(), Code::kCorruption);
}

// --- check_record against decode_record -----------------------------------------------------

// A valid frame (or two) under a few random overwrites, truncations and appends, or bytes
// that were never a record.
Bytes damaged_frames() {
  Bytes b;
  if (*rc::gen::inRange(0, 8) == 0) {
    b = *rc::gen::container<Bytes>(rc::gen::arbitrary<uint8_t>());
  } else {
    encode_record(arbitrary_record(256), b);
    if (*rc::gen::arbitrary<bool>()) encode_record(arbitrary_record(64), b);
  }
  const int mutations = *rc::gen::inRange(0, 4);
  for (int i = 0; i < mutations; i++) {
    switch (*rc::gen::inRange(0, 3)) {
      case 0:
        if (!b.empty()) b[*rc::gen::inRange<size_t>(0, b.size())] = *rc::gen::arbitrary<uint8_t>();
        break;
      case 1:
        b.resize(*rc::gen::inRange<size_t>(0, b.size() + 1));
        break;
      default: {
        Bytes tail = *rc::gen::container<Bytes>(rc::gen::arbitrary<uint8_t>());
        b.insert(b.end(), tail.begin(), tail.end());
      }
    }
  }
  return b;
}

RC_GTEST_PROP(CheckRecord, AgreesWithDecodeRecord, ()) {
  Bytes b = damaged_frames();
  DecodedRecord d = decode_record(b);
  RecordHeader h{};
  size_t size = 0;
  Status error;
  DecodeOutcome outcome = check_record(b, &h, &size, &error);
  RC_ASSERT(outcome == d.outcome);
  RC_ASSERT(check_record(b, nullptr, nullptr, nullptr) == outcome);
  switch (outcome) {
    case DecodeOutcome::kOk:
      RC_ASSERT(size == d.size);
      RC_ASSERT(d.size == d.record.framed_size());
      RC_ASSERT(d.size <= b.size());
      RC_ASSERT(header_matches(h, d.record));
      // The frame is canonical: encoding what was decoded gives back the bytes consumed.
      RC_ASSERT(encoded(d.record) == prefix(b, d.size));
      RC_ASSERT(error.is_ok());
      break;
    case DecodeOutcome::kCorrupt:
      RC_ASSERT(!error.is_ok());
      RC_ASSERT(error.code() == d.error.code());
      RC_ASSERT(error.code() == Code::kCorruption || error.code() == Code::kVersionTooNew);
      break;
    case DecodeOutcome::kTruncated:
      RC_ASSERT(error.is_ok());
      break;
  }
}

}  // namespace
}  // namespace quire
