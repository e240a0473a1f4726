#include "pagelog/segment_format.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "base/crc32c.h"

namespace quire {
namespace {

constexpr uint64_t kSegment = 7;

Record log_record(uint64_t lsn, size_t payload_bytes) {
  Record r;
  r.type = RecordType::kLog;
  r.table = TableId(1);
  r.lsn = Lsn(lsn);
  r.prev_lsn = Lsn(lsn - 1);
  r.term = Term(1);
  r.payload.resize(payload_bytes);
  for (size_t i = 0; i < payload_bytes; i++) r.payload[i] = static_cast<uint8_t>('a' + i % 26);
  return r;
}

// A segment file as a writer leaves it, with where each record starts.
struct SegmentImage {
  Bytes file;
  std::vector<Record> records;
  std::vector<uint64_t> offsets;

  uint64_t end_of(size_t i) const { return offsets[i] + records[i].framed_size(); }
};

SegmentImage segment_of(std::vector<Record> records, uint64_t number = kSegment) {
  SegmentImage s;
  s.file = encode_segment_header(number);
  for (const Record& r : records) {
    s.offsets.push_back(s.file.size());
    encode_record(r, s.file);
  }
  s.records = std::move(records);
  return s;
}

// Five LOG records with payloads of different sizes, including an empty one.
SegmentImage five_records() {
  return segment_of({log_record(1, 10), log_record(2, 0), log_record(3, 40), log_record(4, 3),
                     log_record(5, 17)});
}

Bytes prefix(const Bytes& b, size_t n) {
  return Bytes(b.begin(), b.begin() + n);
}

bool header_matches(const RecordHeader& h, const Record& r) {
  return h.type == r.type && h.flags == r.flags && h.payload_size == r.payload.size() &&
         h.table == r.table && h.page == r.page && h.lsn == r.lsn && h.base_lsn == r.base_lsn &&
         h.backlink_lsn == r.backlink_lsn && h.term == r.term && h.prev_lsn == r.prev_lsn;
}

// What any scan of a file with a good header must satisfy, whatever the bytes: records and
// damaged ranges tile [header, valid_end) in file order, each damaged range is followed by a
// record, every record decodes where it is said to be, and the tail is what is left. Returns
// the first violation, or "" when there is none.
std::string scan_violation(ByteView file, const SegmentScan& scan) {
  if (!scan.header_status.is_ok()) return "header: " + scan.header_status.to_string();
  uint64_t cursor = kSegmentHeaderBytes;
  size_t r = 0;
  size_t d = 0;
  bool last_was_damaged = false;
  while (r < scan.records.size() || d < scan.damaged.size()) {
    if (d < scan.damaged.size() && scan.damaged[d].begin == cursor) {
      const ByteRange& range = scan.damaged[d++];
      if (last_was_damaged) return fmt::format("two damaged ranges in a row at {}", cursor);
      if (range.end <= range.begin) return fmt::format("empty damaged range at {}", cursor);
      cursor = range.end;
      last_was_damaged = true;
      continue;
    }
    if (r == scan.records.size() || scan.records[r].offset != cursor) {
      return fmt::format("a gap or overlap at {}", cursor);
    }
    const ScannedRecord& rec = scan.records[r++];
    if (rec.offset + rec.size > file.size())
      return fmt::format("record at {} ends past the file", cursor);
    DecodedRecord decoded = decode_record(file.subspan(rec.offset));
    if (decoded.outcome != DecodeOutcome::kOk || decoded.size != rec.size ||
        !header_matches(rec.header, decoded.record)) {
      return fmt::format("record at {} does not decode as reported", cursor);
    }
    cursor += rec.size;
    last_was_damaged = false;
  }
  if (last_was_damaged) return "a damaged range with no record after it";
  if (scan.valid_end != cursor)
    return fmt::format("valid_end {} but records end at {}", scan.valid_end, cursor);
  if (scan.valid_end > file.size()) return "valid_end past the file";
  if (scan.has_tail != (scan.valid_end < file.size())) return "has_tail disagrees with valid_end";
  const bool zeros_after = std::all_of(
      file.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(scan.valid_end, file.size())),
      file.end(), [](uint8_t b) { return b == 0; });
  if (scan.zero_tail != (scan.has_tail && zeros_after)) return "zero_tail disagrees with the tail";
  return "";
}

// The scan found exactly the records of `s` whose indexes are in `kept`, at their offsets.
void expect_records(const SegmentScan& scan, const SegmentImage& s,
                    const std::vector<size_t>& kept) {
  ASSERT_EQ(scan.records.size(), kept.size());
  for (size_t i = 0; i < kept.size(); i++) {
    EXPECT_EQ(scan.records[i].offset, s.offsets[kept[i]]) << i;
    EXPECT_EQ(scan.records[i].size, s.records[kept[i]].framed_size()) << i;
    EXPECT_TRUE(header_matches(scan.records[i].header, s.records[kept[i]])) << i;
  }
}

// --- Header ---------------------------------------------------------------------------------

TEST(SegmentHeader, LayoutMatchesTheDocumentedTable) {
  Bytes h = encode_segment_header(0x0102030405060708);
  ASSERT_EQ(h.size(), kSegmentHeaderBytes);
  EXPECT_EQ(decode_fixed32(&h[0]), kSegmentMagic);
  EXPECT_EQ(h[0], 'Q');
  EXPECT_EQ(h[1], 'S');
  EXPECT_EQ(h[4], 1);
  EXPECT_EQ(h[5] | h[6] | h[7], 0);
  EXPECT_EQ(decode_fixed64(&h[8]), 0x0102030405060708u);
  for (size_t i = 16; i < 28; i++) EXPECT_EQ(h[i], 0) << i;
  EXPECT_EQ(decode_fixed32(&h[28]), crc32c::mask(crc32c::value(h.data(), 28)));
}

TEST(SegmentHeader, ChecksItsOwnEncoding) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, kSegment, ~uint64_t{0}}) {
    EXPECT_TRUE(check_segment_header(encode_segment_header(n), n).is_ok()) << n;
  }
  Bytes with_records = five_records().file;
  EXPECT_TRUE(check_segment_header(with_records, kSegment).is_ok());
}

TEST(SegmentHeader, RejectsAnotherSegmentsNumber) {
  Bytes h = encode_segment_header(kSegment);
  EXPECT_EQ(check_segment_header(h, kSegment + 1).code(), Code::kCorruption);
  EXPECT_EQ(check_segment_header(h, 0).code(), Code::kCorruption);
}

TEST(SegmentHeader, RejectsBadMagic) {
  Bytes h = encode_segment_header(kSegment);
  h[1] = 'X';  // even with a checksum that matches the damage
  encode_fixed32(&h[28], crc32c::mask(crc32c::value(h.data(), 28)));
  EXPECT_EQ(check_segment_header(h, kSegment).code(), Code::kCorruption);
  // A record where a segment header should be.
  Bytes record;
  encode_record(log_record(1, 0), record);
  EXPECT_EQ(check_segment_header(record, kSegment).code(), Code::kCorruption);
}

TEST(SegmentHeader, RejectsBadChecksumAndAnyFlippedBit) {
  const Bytes good = encode_segment_header(kSegment);
  for (size_t bit = 0; bit < kSegmentHeaderBytes * 8; bit++) {
    Bytes h = good;
    h[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Status s = check_segment_header(h, kSegment);
    EXPECT_TRUE(s.code() == Code::kCorruption || s.code() == Code::kVersionTooNew)
        << "bit " << bit << ": " << s.to_string();
  }
}

TEST(SegmentHeader, RejectsShortInput) {
  const Bytes good = encode_segment_header(kSegment);
  for (size_t n = 0; n < kSegmentHeaderBytes; n++) {
    EXPECT_EQ(check_segment_header(prefix(good, n), kSegment).code(), Code::kCorruption) << n;
  }
}

TEST(SegmentHeader, NewerVersionIsVersionTooNew) {
  Bytes h = encode_segment_header(kSegment);
  h[4] = 2;
  encode_fixed32(&h[28], crc32c::mask(crc32c::value(h.data(), 28)));
  EXPECT_EQ(check_segment_header(h, kSegment).code(), Code::kVersionTooNew);
  h[4] = 0;
  encode_fixed32(&h[28], crc32c::mask(crc32c::value(h.data(), 28)));
  EXPECT_EQ(check_segment_header(h, kSegment).code(), Code::kCorruption);
}

// --- File names -----------------------------------------------------------------------------

TEST(SegmentFileName, IsZeroPaddedToSixteenDigits) {
  EXPECT_EQ(segment_file_name(7), "seg-0000000000000007");
  EXPECT_EQ(segment_file_name(0), "seg-0000000000000000");
  EXPECT_EQ(segment_file_name(9999999999999999), "seg-9999999999999999");
}

TEST(SegmentFileName, RoundTrips) {
  for (uint64_t n : {uint64_t{1}, uint64_t{7}, uint64_t{1234567890}, uint64_t{9999999999999999}}) {
    auto parsed = parse_segment_file_name(segment_file_name(n));
    ASSERT_TRUE(parsed.is_ok()) << n;
    EXPECT_EQ(*parsed, n);
  }
}

// Every number a store gives a segment: 1 and up (0 is no segment, and never written).
RC_GTEST_PROP(SegmentFileName, RoundTripsEverySixteenDigitNumber, ()) {
  const uint64_t n = *rc::gen::inRange<uint64_t>(1, 10000000000000000);
  auto parsed = parse_segment_file_name(segment_file_name(n));
  RC_ASSERT(parsed.is_ok());
  RC_ASSERT(*parsed == n);
}

TEST(SegmentFileName, RejectsNamesThatAreNotSegments) {
  for (const char* name : {
           "",
           "seg-",
           "seg-000000000000007",    // 15 digits
           "seg-00000000000000007",  // 17 digits
           "seg-0000000000000000",   // segment numbers start at 1
           "seg-000000000000000x",
           "seg-00000000000000-7",
           "seg- 000000000000007",
           "seg-+000000000000007",
           "seg--000000000000007",
           "Seg-0000000000000007",
           "sg-00000000000000007",
           "xseg-000000000000007",
           "seg-0000000000000007.tmp",
           "seg-0000000000000007 ",
           "seg_0000000000000007",
           "log-0000000000000007",
           "CURRENT",
       }) {
    EXPECT_EQ(parse_segment_file_name(name).code(), Code::kNotFound) << "'" << name << "'";
  }
}

// --- scan_segment -----------------------------------------------------------------------------

TEST(ScanSegment, HeaderOnlyIsAnEmptySegment) {
  Bytes file = encode_segment_header(kSegment);
  SegmentScan scan = scan_segment(file, kSegment);
  EXPECT_TRUE(scan.header_status.is_ok());
  EXPECT_TRUE(scan.records.empty());
  EXPECT_TRUE(scan.damaged.empty());
  EXPECT_EQ(scan.valid_end, kSegmentHeaderBytes);
  EXPECT_FALSE(scan.has_tail);
  EXPECT_EQ(scan_violation(file, scan), "");
}

TEST(ScanSegment, ABadHeaderMakesTheWholeFileUnusable) {
  SegmentImage s = five_records();
  EXPECT_EQ(scan_segment(s.file, kSegment + 1).header_status.code(), Code::kCorruption);
  EXPECT_TRUE(scan_segment(s.file, kSegment + 1).records.empty());
  Bytes damaged = s.file;
  damaged[9] ^= 1;
  EXPECT_EQ(scan_segment(damaged, kSegment).header_status.code(), Code::kCorruption);
  EXPECT_TRUE(scan_segment(damaged, kSegment).records.empty());
  EXPECT_EQ(scan_segment(Bytes{}, kSegment).header_status.code(), Code::kCorruption);
}

TEST(ScanSegment, FindsEveryRecordOfAnIntactSegment) {
  SegmentImage s = five_records();
  SegmentScan scan = scan_segment(s.file, kSegment);
  ASSERT_TRUE(scan.header_status.is_ok());
  expect_records(scan, s, {0, 1, 2, 3, 4});
  EXPECT_TRUE(scan.damaged.empty());
  EXPECT_EQ(scan.valid_end, s.file.size());
  EXPECT_FALSE(scan.has_tail);
  EXPECT_EQ(scan_violation(s.file, scan), "");
}

RC_GTEST_PROP(ScanSegment, FindsEveryRecordOfAnArbitraryIntactSegment, ()) {
  const size_t count = *rc::gen::inRange<size_t>(0, 30);
  std::vector<Record> records;
  for (size_t i = 0; i < count; i++) {
    Record r = log_record(i + 1, *rc::gen::inRange<size_t>(0, 600));
    r.type = static_cast<RecordType>(*rc::gen::inRange(1, 9));
    r.page = PageId(*rc::gen::arbitrary<uint64_t>());
    r.payload = *rc::gen::container<Bytes>(r.payload.size(), rc::gen::arbitrary<uint8_t>());
    records.push_back(std::move(r));
  }
  SegmentImage s = segment_of(std::move(records));
  SegmentScan scan = scan_segment(s.file, kSegment);
  RC_ASSERT(scan.records.size() == count);
  for (size_t i = 0; i < count; i++) {
    RC_ASSERT(scan.records[i].offset == s.offsets[i]);
    RC_ASSERT(scan.records[i].size == s.records[i].framed_size());
    RC_ASSERT(header_matches(scan.records[i].header, s.records[i]));
  }
  RC_ASSERT(scan.damaged.empty());
  RC_ASSERT(scan.valid_end == s.file.size());
  RC_ASSERT(!scan.has_tail);
}

// A crash can cut the file anywhere: the records wholly before the cut survive, the rest is
// a tail, and a cut inside the header leaves a file the header check refuses.
TEST(ScanSegment, EveryTruncationPointKeepsTheWholeRecordsBeforeIt) {
  SegmentImage s = five_records();
  for (size_t cut = 0; cut <= s.file.size(); cut++) {
    SCOPED_TRACE(fmt::format("cut {}", cut));
    Bytes file = prefix(s.file, cut);
    SegmentScan scan = scan_segment(file, kSegment);
    if (cut < kSegmentHeaderBytes) {
      EXPECT_EQ(scan.header_status.code(), Code::kCorruption);
      EXPECT_TRUE(scan.records.empty());
      continue;
    }
    std::vector<size_t> whole;
    uint64_t valid_end = kSegmentHeaderBytes;
    for (size_t i = 0; i < s.records.size() && s.end_of(i) <= cut; i++) {
      whole.push_back(i);
      valid_end = s.end_of(i);
    }
    expect_records(scan, s, whole);
    EXPECT_TRUE(scan.damaged.empty());
    EXPECT_EQ(scan.valid_end, valid_end);
    EXPECT_EQ(scan.has_tail, cut > valid_end);
    EXPECT_FALSE(scan.zero_tail);  // a record cut short starts with its magic
    EXPECT_EQ(scan_violation(file, scan), "");
  }
}

// A store writes zeros ahead of its records (SegmentStoreOptions::zero_ahead_bytes), and a
// crash may leave any prefix of a group's write over them: zeros after whole records are a
// zero tail, a record cut short before the zeros is a torn one.
TEST(ScanSegment, ZerosAfterTheRecordsAreAZeroTailAndACutRecordBeforeThemIsNot) {
  SegmentImage s = five_records();
  for (size_t cut = kSegmentHeaderBytes; cut <= s.file.size(); cut++) {
    SCOPED_TRACE(fmt::format("cut {}", cut));
    Bytes file = prefix(s.file, cut);
    file.resize(file.size() + 4096, 0);
    SegmentScan scan = scan_segment(file, kSegment);
    ASSERT_TRUE(scan.header_status.is_ok());
    // The records wholly before the cut, and the one it cuts when all it lost were zero
    // bytes (the zeros after the cut give them back: its checksum holds).
    std::vector<size_t> whole;
    uint64_t valid_end = kSegmentHeaderBytes;
    for (size_t i = 0; i < s.records.size(); i++) {
      if (s.end_of(i) > cut &&
          !std::all_of(
              s.file.begin() + static_cast<ptrdiff_t>(std::max<uint64_t>(cut, s.offsets[i])),
              s.file.begin() + static_cast<ptrdiff_t>(s.end_of(i)),
              [](uint8_t b) { return b == 0; })) {
        break;
      }
      whole.push_back(i);
      valid_end = s.end_of(i);
    }
    expect_records(scan, s, whole);
    EXPECT_TRUE(scan.damaged.empty());
    EXPECT_EQ(scan.valid_end, valid_end);
    EXPECT_TRUE(scan.has_tail);
    EXPECT_EQ(scan.zero_tail, cut <= valid_end);
    EXPECT_EQ(scan_violation(file, scan), "");
  }
}

// A crash that kept a later record of the last write but lost a sector before it (the
// zeros written ahead read back there): cut_at_lost_sector makes it a torn tail.
TEST(ScanSegment, ALostSectorBeforeAWholeRecordIsCutAsATornTail) {
  SegmentImage s = five_records();
  Bytes file = s.file;
  file.resize(file.size() + 1500, 0);  // a lost record: holds whole aligned sectors of zeros
  const uint64_t later_at = file.size();
  encode_record(log_record(7, 30), file);
  const uint64_t later_end = file.size();
  file.resize(file.size() + 4096, 0);
  SegmentScan scan = scan_segment(file, kSegment);
  ASSERT_EQ(scan.damaged.size(), 1u);
  EXPECT_EQ(scan.damaged[0].begin, s.file.size());
  EXPECT_EQ(scan.damaged[0].end, later_at);
  EXPECT_EQ(scan.records.size(), 6u);
  EXPECT_TRUE(scan.zero_tail);
  ASSERT_TRUE(cut_at_lost_sector(file, scan));
  expect_records(scan, s, {0, 1, 2, 3, 4});
  EXPECT_TRUE(scan.damaged.empty());
  EXPECT_EQ(scan.valid_end, s.file.size());
  EXPECT_TRUE(scan.has_tail);
  EXPECT_FALSE(scan.zero_tail);
  EXPECT_EQ(torn_bytes(file, scan), later_end - s.file.size());
  EXPECT_EQ(scan_violation(file, scan), "");
}

// Damage with no whole sector of zeros (a flipped bit) stays damage, and so does a run of
// zeros shorter than an aligned sector.
TEST(ScanSegment, DamageWithoutAZeroSectorIsNotCut) {
  SegmentImage s = five_records();
  Bytes file = s.file;
  file[s.offsets[2] + kRecordHeaderBytes + 1] ^= 0x40;
  SegmentScan scan = scan_segment(file, kSegment);
  ASSERT_EQ(scan.damaged.size(), 1u);
  EXPECT_FALSE(cut_at_lost_sector(file, scan));
  EXPECT_EQ(scan.damaged.size(), 1u);
  EXPECT_EQ(scan.records.size(), 4u);

  Bytes gap = s.file;
  gap.resize(gap.size() + 300, 0);
  encode_record(log_record(7, 30), gap);
  SegmentScan short_run = scan_segment(gap, kSegment);
  ASSERT_EQ(short_run.damaged.size(), 1u);
  EXPECT_FALSE(cut_at_lost_sector(gap, short_run));
  EXPECT_EQ(short_run.records.size(), 6u);
}

// Every byte of a middle record in turn, inverted: that record alone is lost, as exactly one
// damaged range from its start to the next record.
TEST(ScanSegment, ACorruptRecordInTheMiddleIsOneDamagedRange) {
  const SegmentImage s = five_records();
  for (uint64_t at = s.offsets[2]; at < s.end_of(2); at++) {
    SCOPED_TRACE(fmt::format("byte {}", at));
    Bytes file = s.file;
    file[at] ^= 0xff;
    SegmentScan scan = scan_segment(file, kSegment);
    expect_records(scan, s, {0, 1, 3, 4});
    ASSERT_EQ(scan.damaged.size(), 1u);
    EXPECT_EQ(scan.damaged[0].begin, s.offsets[2]);
    EXPECT_EQ(scan.damaged[0].end, s.offsets[3]);
    EXPECT_EQ(scan.valid_end, s.file.size());
    EXPECT_FALSE(scan.has_tail);
    EXPECT_EQ(scan_violation(file, scan), "");
  }
}

TEST(ScanSegment, TwoCorruptRecordsAreTwoDamagedRanges) {
  const SegmentImage s = five_records();
  Bytes file = s.file;
  std::fill(file.begin() + s.offsets[0], file.begin() + s.offsets[0] + 20, 0);
  file[s.offsets[3] + kRecordHeaderBytes] ^= 0x10;  // a payload byte
  SegmentScan scan = scan_segment(file, kSegment);
  expect_records(scan, s, {1, 2, 4});
  ASSERT_EQ(scan.damaged.size(), 2u);
  EXPECT_EQ(scan.damaged[0].begin, s.offsets[0]);
  EXPECT_EQ(scan.damaged[0].end, s.offsets[1]);
  EXPECT_EQ(scan.damaged[1].begin, s.offsets[3]);
  EXPECT_EQ(scan.damaged[1].end, s.offsets[4]);
  EXPECT_FALSE(scan.has_tail);
  EXPECT_EQ(scan_violation(file, scan), "");
}

// Nothing valid follows a corrupt last record, so it is the tail, not a damaged range.
TEST(ScanSegment, ACorruptLastRecordIsATail) {
  const SegmentImage s = five_records();
  Bytes file = s.file;
  file[s.offsets[4] + 40] ^= 0x01;
  SegmentScan scan = scan_segment(file, kSegment);
  expect_records(scan, s, {0, 1, 2, 3});
  EXPECT_TRUE(scan.damaged.empty());
  EXPECT_EQ(scan.valid_end, s.offsets[4]);
  EXPECT_TRUE(scan.has_tail);
  EXPECT_EQ(scan_violation(file, scan), "");
}

TEST(ScanSegment, GarbageBetweenRecordsIsADamagedRange) {
  const SegmentImage s = five_records();
  const std::vector<Bytes> garbages = {
      Bytes{0},
      Bytes{'Q'},
      Bytes{'Q', 'R', 'E', 'C'},
      Bytes{'Q', 'R', 'E', 'C', 1, 1, 0, 0, 0xff, 0xff, 0, 0, 'Q'},
  };
  for (size_t g = 0; g < garbages.size(); g++) {
    SCOPED_TRACE(fmt::format("garbage {}", g));
    const Bytes& garbage = garbages[g];
    Bytes file = prefix(s.file, s.offsets[2]);
    file.insert(file.end(), garbage.begin(), garbage.end());
    file.insert(file.end(), s.file.begin() + s.offsets[2], s.file.end());
    SegmentScan scan = scan_segment(file, kSegment);
    ASSERT_EQ(scan.records.size(), 5u);
    EXPECT_EQ(scan.records[1].offset, s.offsets[1]);
    EXPECT_EQ(scan.records[2].offset, s.offsets[2] + garbage.size());
    ASSERT_EQ(scan.damaged.size(), 1u);
    EXPECT_EQ(scan.damaged[0].begin, s.offsets[2]);
    EXPECT_EQ(scan.damaged[0].end, s.offsets[2] + garbage.size());
    EXPECT_FALSE(scan.has_tail);
    EXPECT_EQ(scan_violation(file, scan), "");
  }
}

TEST(ScanSegment, GarbageAtTheEndIsATail) {
  const SegmentImage s = five_records();
  const Bytes torn_header(s.file.begin() + s.offsets[0], s.file.begin() + s.offsets[0] + 30);
  const std::vector<Bytes> garbages = {
      Bytes(1, 0),
      Bytes(4096, 0),  // space a file system allocated but the write never filled
      Bytes(100, 0xff),
      Bytes{'Q', 'R'},
      Bytes{'Q', 'R', 'E', 'C'},
      torn_header,
      Bytes{0x13, 0x37, 'Q', 'R', 'E', 'C', 1, 2, 3},
  };
  for (size_t g = 0; g < garbages.size(); g++) {
    SCOPED_TRACE(fmt::format("garbage {}", g));
    Bytes grown = s.file;
    grown.insert(grown.end(), garbages[g].begin(), garbages[g].end());
    const Bytes file(grown.begin(), grown.end());  // exactly sized, so ASan sees a read past it
    SegmentScan scan = scan_segment(file, kSegment);
    expect_records(scan, s, {0, 1, 2, 3, 4});
    EXPECT_TRUE(scan.damaged.empty());
    EXPECT_EQ(scan.valid_end, s.file.size());
    EXPECT_TRUE(scan.has_tail);
    EXPECT_EQ(scan_violation(file, scan), "");
  }
}

// A single flipped bit anywhere in a small segment: the header refuses it, or exactly the
// record holding the bit is lost (a damaged range, or the tail when it was the last) and every
// record the scan reports is one that was written, at the offset it was written to.
RC_GTEST_PROP(ScanSegment, AFlippedBitNeverYieldsARecordThatWasNotWritten, ()) {
  const size_t count = *rc::gen::inRange<size_t>(1, 4);
  std::vector<Record> records;
  for (size_t i = 0; i < count; i++) {
    Record r;
    r.type = static_cast<RecordType>(*rc::gen::inRange(1, 9));
    r.flags = *rc::gen::arbitrary<uint16_t>();
    r.table = TableId(*rc::gen::arbitrary<uint64_t>());
    r.page = PageId(*rc::gen::arbitrary<uint64_t>());
    r.lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
    r.term = Term(*rc::gen::arbitrary<uint64_t>());
    r.prev_lsn = Lsn(*rc::gen::arbitrary<uint64_t>());
    r.payload =
        *rc::gen::container<Bytes>(*rc::gen::inRange<size_t>(0, 25), rc::gen::arbitrary<uint8_t>());
    records.push_back(std::move(r));
  }
  const SegmentImage s = segment_of(std::move(records));

  for (size_t bit = 0; bit < s.file.size() * 8; bit++) {
    Bytes file = s.file;
    const size_t byte = bit / 8;
    file[byte] ^= static_cast<uint8_t>(1u << (bit % 8));
    SegmentScan scan = scan_segment(file, kSegment);
    if (byte < kSegmentHeaderBytes) {
      RC_ASSERT(!scan.header_status.is_ok());
      RC_ASSERT(scan.records.empty());
      continue;
    }
    RC_ASSERT(scan_violation(file, scan) == "");
    for (const ScannedRecord& found : scan.records) {
      auto it = std::find(s.offsets.begin(), s.offsets.end(), found.offset);
      RC_ASSERT(it != s.offsets.end());
      DecodedRecord d = decode_record(ByteView(file).subspan(found.offset));
      RC_ASSERT(d.outcome == DecodeOutcome::kOk);
      RC_ASSERT(d.record == s.records[it - s.offsets.begin()]);
    }
    // Exactly the record holding the bit is lost.
    const size_t hit =
        std::upper_bound(s.offsets.begin(), s.offsets.end(), byte) - s.offsets.begin() - 1;
    RC_ASSERT(scan.records.size() == count - 1);
    if (hit + 1 < count) {
      RC_ASSERT(scan.damaged.size() == 1u);
      RC_ASSERT(scan.damaged[0].begin == s.offsets[hit]);
      RC_ASSERT(scan.damaged[0].end == s.offsets[hit + 1]);
      RC_ASSERT(!scan.has_tail);
    } else {
      RC_ASSERT(scan.damaged.empty());
      RC_ASSERT(scan.has_tail);
      RC_ASSERT(scan.valid_end == s.offsets[hit]);
    }
  }
}

}  // namespace
}  // namespace quire
