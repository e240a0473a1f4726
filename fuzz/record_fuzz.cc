// libFuzzer target for the page service's record frame and segment scanner: whatever the
// bytes, decoding never reads outside them, the three record readers agree, and a scan
// reports only records that decode where it says they are. Run with scripts/fuzz.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "pagelog/record.h"
#include "pagelog/segment_format.h"

namespace quire {
namespace {

constexpr uint64_t kSegmentNumber = 1;

// Fuzzing builds may define NDEBUG; this check stays on and reports what broke.
#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "record_fuzz: check failed: %s at line %d\n", #cond, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

bool same_header(const RecordHeader& a, const RecordHeader& b) {
  return a.type == b.type && a.flags == b.flags && a.payload_size == b.payload_size &&
         a.crc == b.crc && a.table == b.table && a.page == b.page && a.lsn == b.lsn &&
         a.base_lsn == b.base_lsn && a.backlink_lsn == b.backlink_lsn && a.term == b.term &&
         a.prev_lsn == b.prev_lsn;
}

bool header_matches(const RecordHeader& h, const Record& r) {
  return h.type == r.type && h.flags == r.flags && h.payload_size == r.payload.size() &&
         h.table == r.table && h.page == r.page && h.lsn == r.lsn && h.base_lsn == r.base_lsn &&
         h.backlink_lsn == r.backlink_lsn && h.term == r.term && h.prev_lsn == r.prev_lsn;
}

void check_record_readers(ByteView in) {
  DecodedRecord d = decode_record(in);
  RecordHeader h{};
  size_t size = 0;
  Status error;
  DecodeOutcome outcome = check_record(in, &h, &size, &error);
  FUZZ_CHECK(outcome == d.outcome);
  FUZZ_CHECK(check_record(in, nullptr, nullptr, nullptr) == outcome);

  auto header = decode_record_header(in);
  switch (outcome) {
    case DecodeOutcome::kOk: {
      FUZZ_CHECK(d.size == size);
      FUZZ_CHECK(d.size == d.record.framed_size());
      FUZZ_CHECK(d.size <= in.size());
      FUZZ_CHECK(d.record.payload.size() <= kRecordPayloadMax);
      FUZZ_CHECK(header_matches(h, d.record));
      FUZZ_CHECK(error.is_ok());
      FUZZ_CHECK(header.is_ok());
      FUZZ_CHECK(same_header(*header, h));
      // The frame is canonical: re-encoding gives exactly the bytes consumed.
      Bytes again;
      encode_record(d.record, again);
      FUZZ_CHECK(again.size() == d.size);
      FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin()));
      break;
    }
    case DecodeOutcome::kTruncated:
      FUZZ_CHECK(error.is_ok());
      // Either a torn header, or a whole header that promises more than there is.
      if (in.size() >= kRecordHeaderBytes) {
        FUZZ_CHECK(header.is_ok());
        FUZZ_CHECK(kRecordHeaderBytes + header->payload_size > in.size());
      }
      break;
    case DecodeOutcome::kCorrupt:
      FUZZ_CHECK(!error.is_ok());
      FUZZ_CHECK(error.code() == d.error.code());
      FUZZ_CHECK(error.code() == Code::kCorruption || error.code() == Code::kVersionTooNew);
      break;
  }
  if (header.is_ok()) {
    FUZZ_CHECK(in.size() >= kRecordHeaderBytes);
    FUZZ_CHECK(header->payload_size <= kRecordPayloadMax);
    FUZZ_CHECK(outcome != DecodeOutcome::kCorrupt || error.code() == Code::kCorruption);
  }
}

// Records and damaged ranges tile [header, valid_end) in file order, each damaged range is
// followed by a record, every record decodes where the scan says, and the rest is the tail.
void check_scan(ByteView file, const SegmentScan& scan) {
  if (!scan.header_status.is_ok()) {
    FUZZ_CHECK(scan.records.empty() && scan.damaged.empty() && !scan.has_tail);
    return;
  }
  uint64_t cursor = kSegmentHeaderBytes;
  size_t r = 0;
  size_t d = 0;
  bool last_was_damaged = false;
  while (r < scan.records.size() || d < scan.damaged.size()) {
    if (d < scan.damaged.size() && scan.damaged[d].begin == cursor) {
      FUZZ_CHECK(!last_was_damaged);
      FUZZ_CHECK(scan.damaged[d].end > cursor);
      FUZZ_CHECK(scan.damaged[d].end <= file.size());
      // The scan resumes at the first valid record after the damage, not a later one.
      for (uint64_t pos = cursor; pos < scan.damaged[d].end; pos++) {
        FUZZ_CHECK(check_record(file.subspan(pos), nullptr, nullptr, nullptr) !=
                   DecodeOutcome::kOk);
      }
      cursor = scan.damaged[d++].end;
      last_was_damaged = true;
      continue;
    }
    FUZZ_CHECK(r < scan.records.size());
    const ScannedRecord& rec = scan.records[r++];
    FUZZ_CHECK(rec.offset == cursor);
    FUZZ_CHECK(rec.offset + rec.size <= file.size());
    DecodedRecord decoded = decode_record(file.subspan(rec.offset));
    FUZZ_CHECK(decoded.outcome == DecodeOutcome::kOk);
    FUZZ_CHECK(decoded.size == rec.size);
    FUZZ_CHECK(header_matches(rec.header, decoded.record));
    cursor += rec.size;
    last_was_damaged = false;
  }
  FUZZ_CHECK(!last_was_damaged);
  FUZZ_CHECK(scan.valid_end == cursor);
  FUZZ_CHECK(scan.valid_end <= file.size());
  FUZZ_CHECK(scan.has_tail == (scan.valid_end < file.size()));
  // Nothing valid starts in the tail: the scan would have found it.
  for (uint64_t pos = scan.valid_end; pos < file.size(); pos++) {
    FUZZ_CHECK(check_record(file.subspan(pos), nullptr, nullptr, nullptr) != DecodeOutcome::kOk);
  }
  // A zero tail is a tail of zeros only.
  const bool zeros_after = std::all_of(file.begin() + static_cast<ptrdiff_t>(scan.valid_end),
                                       file.end(), [](uint8_t b) { return b == 0; });
  FUZZ_CHECK(scan.zero_tail == (scan.has_tail && zeros_after));
  FUZZ_CHECK(torn_bytes(file, scan) <= file.size() - scan.valid_end);
}

// The newest segment's cut at a lost sector: the records and damage before the cut are
// the scan's own, and the cut is a torn tail at the start of a damaged range.
void check_cut(ByteView file, SegmentScan scan) {
  const SegmentScan before = scan;
  if (!cut_at_lost_sector(file, scan)) {
    FUZZ_CHECK(scan.records.size() == before.records.size());
    FUZZ_CHECK(scan.valid_end == before.valid_end);
    return;
  }
  FUZZ_CHECK(scan.has_tail && !scan.zero_tail);
  FUZZ_CHECK(scan.valid_end < before.valid_end || before.has_tail);
  FUZZ_CHECK(std::any_of(before.damaged.begin(), before.damaged.end(),
                         [&](const ByteRange& r) { return r.begin == scan.valid_end; }));
  FUZZ_CHECK(scan.records.size() <= before.records.size());
  for (size_t i = 0; i < scan.records.size(); i++)
    FUZZ_CHECK(scan.records[i].offset == before.records[i].offset);
  for (const auto& rec : scan.records) FUZZ_CHECK(rec.offset + rec.size <= scan.valid_end);
  for (const auto& d : scan.damaged) FUZZ_CHECK(d.end <= scan.valid_end);
}

}  // namespace
}  // namespace quire

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quire;
  const ByteView in(data, size);
  check_record_readers(in);

  // The bytes as they are: almost always a header the scan refuses.
  check_scan(in, scan_segment(in, kSegmentNumber));

  // The same bytes behind a valid header, so the scanner gets to the records.
  if (size >= kSegmentHeaderBytes) {
    Bytes file(data, data + size);
    Bytes header = encode_segment_header(kSegmentNumber);
    std::copy(header.begin(), header.end(), file.begin());
    SegmentScan scan = scan_segment(file, kSegmentNumber);
    FUZZ_CHECK(scan.header_status.is_ok());
    check_scan(file, scan);
    check_cut(file, scan);
  }
  return 0;
}
