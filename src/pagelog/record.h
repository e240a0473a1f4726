// The page service's record: the unit written by compute nodes, stored in segments, and
// sent between nodes. The same frame is used on disk and on the wire, so a record is
// checked end to end: the writer computes its checksum and every reader verifies it.
//
// Frame (little-endian), format version 1:
//
//   offset  size  field
//        0     4  magic "QREC" (0x43455251)
//        4     1  format version (1)
//        5     1  type (RecordType)
//        6     2  flags         (kRecordFlagTermStart)
//        8     4  payload length (at most kRecordPayloadMax)
//       12     4  CRC32C (masked) of the 72-byte header with this field zeroed, then the payload
//       16     8  table id
//       24     8  page id
//       32     8  lsn
//       40     8  base lsn      (a delta: the LSN of its chain's full image; a checkpoint
//                                completion: the checkpoint's log position)
//       48     8  backlink lsn  (the previous element of the page's chain)
//       56     8  term          (of the writer; page servers fence lower terms)
//       64     8  prev lsn      (the writer's previous record: all records form one chain)
//       72     n  payload       (opaque to the page service: the writer's ciphertext)
//
// The chain is how a page server knows it is complete: every record names the one the
// writer wrote before it (0 for the first), so a server has everything up to LSN L when
// it can walk the chain to L. After abandon_after(P), the writer's next record names P,
// and the abandoned records fall off the chain.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/coding.h"
#include "base/ids.h"
#include "base/status.h"

namespace quire {

enum class RecordType : uint8_t {
  kLog = 1,                 // a log record
  kPage = 2,                // a page's full image
  kDelta = 3,               // a change to a page since its full image
  kDiscard = 4,             // a page's tombstone
  kKeystore = 5,            // a keystore page
  kMetadata = 6,            // a checkpoint's metadata page
  kCheckpointComplete = 7,  // a checkpoint's completion record
  kAbandon = 8,             // service-internal: records in (lsn, base_lsn) are abandoned
  kTerm = 9,                // service-internal: writer terms below `term` are fenced from here on
};

// Every record type, in numeric order.
inline constexpr RecordType kAllRecordTypes[] = {
    RecordType::kLog,
    RecordType::kPage,
    RecordType::kDelta,
    RecordType::kDiscard,
    RecordType::kKeystore,
    RecordType::kMetadata,
    RecordType::kCheckpointComplete,
    RecordType::kAbandon,
    RecordType::kTerm,
};

std::string_view record_type_name(RecordType t);
bool record_type_valid(uint8_t t);
// Page-shaped records (PAGE, DELTA, DISCARD, KEYSTORE, METADATA) are found by (table, page).
bool record_type_is_page(RecordType t);
// The markers a page server writes for itself (ABANDON, TERM): never accepted from a writer
// or a peer, never indexed or served.
bool record_type_is_internal(RecordType t);

inline constexpr uint32_t kRecordMagic = 0x43455251;  // "QREC"
inline constexpr uint8_t kRecordFormatVersion = 1;
inline constexpr size_t kRecordHeaderBytes = 72;
inline constexpr size_t kRecordCrcOffset = 12;  // where a frame keeps its checksum
inline constexpr size_t kRecordPayloadMax = 16u << 20;
// LSNs and terms are below 2^63, so a peer cannot claim the largest values (an LSN that
// ends every chain, a term that fences every writer forever) and arithmetic on them has
// headroom. Every request and record field at or above it is InvalidArgument.
inline constexpr uint64_t kLsnTermLimit = uint64_t{1} << 63;

// Flags. kRecordFlagTermStart: the first record a writer of a new term writes (a new
// primary's commit marker, repl/takeover.h). Along the chain terms never decrease, and
// after this record every record is of its term; so a record of a higher term than its
// predecessor without this flag shows that the predecessor is not on its chain (a stale
// copy of an older writer's uncommitted tail under the same LSNs).
inline constexpr uint16_t kRecordFlagTermStart = 1;

struct Record {
  RecordType type = RecordType::kLog;
  uint16_t flags = 0;
  TableId table;
  PageId page;
  Lsn lsn;
  Lsn base_lsn;
  Lsn backlink_lsn;
  Term term;
  Lsn prev_lsn;
  Bytes payload;

  size_t framed_size() const { return kRecordHeaderBytes + payload.size(); }
  friend bool operator==(const Record&, const Record&) = default;
};

// Appends the framed record to `out`. The payload must be within kRecordPayloadMax
// (checked by validate_record).
void encode_record(const Record& r, Bytes& out);

enum class DecodeOutcome : uint8_t {
  kOk,         // a whole, valid record
  kTruncated,  // the bytes end before the record does (a torn tail, or more to read)
  kCorrupt,    // not a valid record: bad magic, version, type, length or checksum
};

struct DecodedRecord {
  DecodeOutcome outcome = DecodeOutcome::kCorrupt;
  Record record;    // valid when outcome == kOk
  size_t size = 0;  // bytes the record occupies, when kOk
  Status error;     // why, when kCorrupt (Corruption or VersionTooNew)
};

// Decodes the record at the start of `in`. Never reads outside `in`, never asserts on
// its content.
DecodedRecord decode_record(ByteView in);

struct RecordHeader;
// Like decode_record without copying the payload: the outcome, and for kOk the header
// and the framed size. `error` (optional) says why for kCorrupt.
DecodeOutcome check_record(ByteView in, RecordHeader* header, size_t* size, Status* error);

// The header fields alone, after checking magic, version, type and length (not the
// checksum, which needs the payload). For scanning and tools.
struct RecordHeader {
  RecordType type;
  uint16_t flags;
  uint32_t payload_size;
  uint32_t crc;
  TableId table;
  PageId page;
  Lsn lsn;
  Lsn base_lsn;
  Lsn backlink_lsn;
  Term term;
  Lsn prev_lsn;
};
Result<RecordHeader> decode_record_header(ByteView in);

// Checks a record a writer sends: a known type that is not internal, a non-zero LSN, every LSN
// field and the term below kLsnTermLimit, a payload within bounds, and ids that make sense for the
// type (a delta's base and a checkpoint completion's log position below its LSN). InvalidArgument
// naming the field otherwise.
Status validate_record(const Record& r);

}  // namespace quire
