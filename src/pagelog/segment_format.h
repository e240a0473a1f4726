// The segment file format, as pure functions over bytes (no I/O), so recovery logic can be
// tested and fuzzed on its own.
//
// A segment file is a 32-byte header followed by framed records (record.h) back to back:
//
//   offset  size  field
//        0     4  magic "QSEG" (0x47455351)
//        4     1  format version (1)
//        5     3  zero
//        8     8  segment number (also in the file name; a mismatch is corruption)
//       16    12  zero
//       28     4  CRC32C (masked) of bytes 0..28
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pagelog/record.h"

namespace quire {

inline constexpr uint32_t kSegmentMagic = 0x47455351;  // "QSEG"
inline constexpr uint8_t kSegmentFormatVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 32;

Bytes encode_segment_header(uint64_t segment_number);
// Corruption (or VersionTooNew) unless `in` starts with a valid header for `segment_number`.
Status check_segment_header(ByteView in, uint64_t segment_number);

// "seg-0000000000000007". Numbers stay below 10^16 (one per seal or roll-over), so the
// name always has 16 digits and parse_segment_file_name reads it back.
std::string segment_file_name(uint64_t segment_number);
// The number in a segment file name; NotFound for a name that is not a segment's.
Result<uint64_t> parse_segment_file_name(const std::string& name);

struct ScannedRecord {
  uint64_t offset = 0;  // within the file
  uint32_t size = 0;    // framed size
  RecordHeader header;
};

// A byte range of a segment that holds no valid record: skipped, reported, never served.
struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;
};

// A damaged range of a store's segment files, as a page server reports it (segment 0: a
// file that is not a segment, such as a corrupt retention file).
struct DamagedRange {
  uint64_t segment = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
  friend bool operator==(const DamagedRange&, const DamagedRange&) = default;
};

// Where a store whose retention point jumped its chain may lack records: every record in
// (from, to] may be missing (SegmentStore::copy_gaps), until the server copied that range
// from a peer that holds it whole. A page server's status carries them all (a store keeps
// at most kCopyGapsMax).
struct CopyGap {
  Lsn from;
  Lsn to;
  friend bool operator==(const CopyGap&, const CopyGap&) = default;
};
inline constexpr size_t kCopyGapsMax = 32;
// Sorted, each non-empty, apart from one another, at most kCopyGapsMax.
bool copy_gaps_valid(const std::vector<CopyGap>& gaps);
// The COPY_GAPS file: the count, the gaps, and a masked CRC of what precedes it.
Bytes encode_copy_gaps_file(const std::vector<CopyGap>& gaps);
Result<std::vector<CopyGap>> decode_copy_gaps_file(ByteView in);

struct SegmentScan {
  Status header_status;                // not OK: the whole file is unusable
  std::vector<ScannedRecord> records;  // every valid record, in file order
  std::vector<ByteRange> damaged;      // corrupt ranges followed by valid records
  uint64_t valid_end = 0;              // the end of the last valid record (or the header)
  // Bytes after valid_end that hold no valid record: a torn tail (a write the crash
  // interrupted) when this is the newest segment.
  bool has_tail = false;
  // The tail is zeros only: space a store wrote ahead of its records (SegmentStoreOptions::
  // zero_ahead_bytes), not a torn write.
  bool zero_tail = false;
};

// Reads every record of a segment file's bytes. After a corrupt record it looks for the
// next offset where a valid record starts and goes on from there.
SegmentScan scan_segment(ByteView file, uint64_t segment_number);

// For the newest segment only, after scan_segment: a damaged range holding a whole
// 512-byte sector of zeros (at a multiple of 512 in the file) is where a crash kept only
// part of a group's unsynced write. Its pages reach the disk in any order, and a lost one
// reads back the zeros written ahead of the records (SegmentStoreOptions::
// zero_ahead_bytes). Groups are synced in order, so nothing from there on was synced: the
// scan is cut there, as a torn tail (the records and damaged ranges after it dropped).
// Returns whether it cut. A damaged range without such a sector is damage.
bool cut_at_lost_sector(ByteView file, SegmentScan& scan);

// The bytes after valid_end up to the file's last non-zero byte: what a torn tail held
// (the zeros written ahead after it are not counted).
uint64_t torn_bytes(ByteView file, const SegmentScan& scan);

}  // namespace quire
