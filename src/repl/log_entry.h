// A log entry: what one LOG record carries. The primary writes the write batches of a
// commit group as one entry (one batch alone as kWrites, several as kBatches), and one per
// keystore change set; standbys read them back in LSN order and apply them. An entry is
// sealed like a page, under the log's DEK.
//
// Plaintext (little-endian; varint = LEB128, minimal length only). Format version 1 holds
// kinds kWrites, kKeystore and kHeartbeat; format version 2 holds kBatches only:
//
//   offset  size  field
//        0     4  magic "QLOG" (0x474f4c51)
//        4     1  format version (1, or 2 for kBatches)
//        5     1  kind (LogEntryKind)
//        6     2  reserved (zero)
//        8     8  commit timestamp (nonzero; kBatches: the last batch's)
//       16     4  op count (1..kLogEntryOpsMax; 0 for a heartbeat; kBatches: the number
//                 of batches, 2..kLogEntryOpsMax)
//       20     8  kKeystore only: the keystore version the changes apply to
//        -     n  the ops, `count` of them:
//                   kWrites:   table id u64 | op u8 (1 put, 2 delete) |
//                              key (varint length, bytes) | value (varint length, bytes; puts only)
//                   kKeystore: KeystoreChange::encode
//                   kBatches:  per batch: commit timestamp u64 | op count (varint, >= 1) |
//                              that many kWrites ops; the timestamps strictly increase, the
//                              last is the header's, and all batches hold at most
//                              kLogEntryOpsMax ops together
//
// A heartbeat carries nothing: the primary writes one when it is idle so that standbys
// learn the commit point (the record's backlink_lsn, see repl/standby.h) without waiting
// for the next write.
//
// Exactly one encoding per entry: a decoder accepts only what encode_log_entry would
// write, so the bytes a standby authenticated are the bytes the primary meant. One batch
// is always kWrites, never a kBatches of one. A node that reads only format version 1
// answers a kBatches entry VersionTooNew.
//
// Sealing: AES-256-GCM under the log DEK (id kLogTable) with AAD binding table kLogTable,
// page 0, the record's LSN and type LOG, so a log record replayed at another LSN, or
// passed off as another record type, fails to open. The DEK version a writer seals under
// must be one every reader already holds: a keystore-change entry is sealed under a log
// DEK version that exists before the change applies, never one the entry itself creates,
// or no standby could open the entry that would give it the key.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/keystore.h"
#include "crypto/page_cipher.h"
#include "pagelog/record.h"

namespace quire {

inline constexpr uint32_t kLogEntryMagic = 0x474f4c51;  // "QLOG"
// The newest format version this build reads and writes (kBatches); the other kinds are
// written as kLogEntryWritesFormatVersion.
inline constexpr uint8_t kLogEntryFormatVersion = 2;
inline constexpr uint8_t kLogEntryWritesFormatVersion = 1;
inline constexpr size_t kLogEntryHeaderBytes = 20;
inline constexpr uint32_t kLogEntryOpsMax = 10'000;
inline constexpr size_t kLogEntryKeyBytesMax = 64u << 10;
inline constexpr size_t kLogEntryValueBytesMax = 1u << 20;
// The plaintext bound leaves room for the seal's header and tag, so every valid entry
// fits in one record (kRecordPayloadMax).
inline constexpr size_t kLogEntryBytesMax = kRecordPayloadMax - kSealedOverheadBytes;
// The primary merges the batches of a group into one kBatches entry while the entry stays
// within this (a larger batch is its own record): past it a record's fixed costs no longer
// matter, and a standby's read of the log stays in small steps.
inline constexpr size_t kLogBatchesBytesMax = 256u << 10;

// One write of a batch. A value of nullopt deletes the key.
struct LogWrite {
  TableId table;
  std::string key;
  std::optional<std::string> value;
  friend bool operator==(const LogWrite&, const LogWrite&) = default;
};

enum class LogEntryKind : uint8_t {
  kWrites = 1,     // a committed write batch: `writes`
  kKeystore = 2,   // keystore changes, applied in order: `changes`
  kHeartbeat = 3,  // nothing: carries the commit point when the primary is idle
  kBatches = 4,    // several committed write batches, each at its own timestamp: `batches`
};

// One batch of a kBatches entry.
struct LogBatch {
  Timestamp ts;  // its commit timestamp
  std::vector<LogWrite> writes;
  friend bool operator==(const LogBatch&, const LogBatch&) = default;
};

struct LogEntry {
  LogEntryKind kind = LogEntryKind::kWrites;
  Timestamp ts;                         // the commit timestamp (kBatches: the last batch's)
  std::vector<LogWrite> writes;         // kWrites only
  std::vector<LogBatch> batches;        // kBatches only, two or more
  std::vector<KeystoreChange> changes;  // kKeystore only
  // kKeystore only: the keystore version `changes` apply to (the first makes base + 1), so
  // a node that already holds some of them (it loaded a newer keystore from a checkpoint)
  // applies only the rest.
  uint64_t keystore_base_version = 0;
  friend bool operator==(const LogEntry&, const LogEntry&) = default;
};

// Checks the bounds of the header comment: a known kind with 1..kLogEntryOpsMax ops of
// that kind only, a nonzero timestamp, user tables (>= kFirstUserTable) only, keys and
// values within their bounds, and the whole encoding within kLogEntryBytesMax; for
// kBatches two or more non-empty batches at strictly increasing timestamps, the last the
// entry's. InvalidArgument naming the bound otherwise.
Status validate_log_entry(const LogEntry& e);

// The plaintext encoding; InvalidArgument (from validate_log_entry) for an entry out of
// bounds, without building the bytes.
Result<Bytes> encode_log_entry(const LogEntry& e);

// Decodes a plaintext encoding. Corruption (naming "log_entry") for anything that
// encode_log_entry could not have written: a bad magic, kind, op or reserved field, a
// bound exceeded, a short or overlong varint, trailing bytes. VersionTooNew for a format
// version above kLogEntryFormatVersion. Never reads outside `in`, never asserts on it.
Result<LogEntry> decode_log_entry(ByteView in);

// Encodes `e` and seals it for LOG record `lsn` under `log_dek` (whose id must be
// kLogTable's). The record has type LOG, table kLogTable, page 0, `lsn` and `term`;
// prev_lsn is left for the RecordWriter. InvalidArgument for an entry out of bounds or a
// DEK that is not the log's; KeyExhausted when the DEK is used up.
Result<Record> seal_log_record(const LogEntry& e, DataKey& log_dek, Lsn lsn, Term term,
                               Random& random);

// How many bytes a kWrites entry adds to a kBatches entry as one of its batches (its
// validity is not checked): what the primary sums against kLogBatchesBytesMax.
size_t log_batch_bytes(const LogEntry& writes);

// Seals the kWrites entries `batches` (two or more, timestamps strictly increasing) as one
// kBatches entry in LOG record `lsn`, without copying their writes into a LogEntry first;
// the record is the one seal_log_record would make of that kBatches entry. The errors of
// seal_log_record.
Result<Record> seal_log_batches(std::span<const LogEntry* const> batches, DataKey& log_dek, Lsn lsn,
                                Term term, Random& random);

// Opens a LOG record and decodes its entry. Corruption for a record that is not a LOG
// record of kLogTable, or a payload sealed under a DEK other than the log's; otherwise
// the errors of open_sealed (Corruption, NotFound, VersionTooNew; naming the lsn) and of
// decode_log_entry.
Result<LogEntry> open_log_record(const Record& r, const DekLookup& lookup);

}  // namespace quire
