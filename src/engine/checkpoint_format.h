// What a checkpoint writes besides data pages: the metadata page and the completion
// record, and the reserved table ids they live in.
//
// Neither holds user data or key material (only ids, LSNs, timestamps, sizes and a
// keystore digest), so they are stored as plaintext protected by checksums: the record
// frame's CRC32C, the metadata page's own CRC32C, and the completion record's
// metadata_checksum. Everything they point to is authenticated: data pages by AES-GCM
// with the page's LSN in the AAD (a parent names its child's exact LSN), the keystore
// page by its own AEAD.
//
// Metadata page (a METADATA record, table kMetadataTable, page 1), little-endian:
//   magic "QMTA" u32 | version u8 | compatible_version u8 | reserved u16 | body size u32 |
//   CRC32C (masked, this field zeroed) u32 | body:
//   checkpoint ts u64 | oldest ts u64 | largest page id u64 | database size u64 | log lsn u64 |
//   keystore ref {page lsn u64, version u64, push ts u64, digest 16} |
//   table count u32 | per table {table id u64, root page u64, root lsn u64, pages u64, bytes u64}
//
// Completion record (a CHECKPOINT_COMPLETE record), WiredTiger's checkpoint_meta string:
//   "metadata_lsn=<dec>,metadata_checksum=<8 hex>,database_size=<dec>,version=<dec>,
//    compatible_version=<dec>,checkpoint_ts=<dec>"
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "crypto/keystore.h"
#include "pagelog/record.h"

namespace quire {

// Reserved table ids. User tables start at kFirstUserTable.
inline constexpr TableId kMetadataTable{1};
inline constexpr TableId kKeystoreTable{2};
inline constexpr TableId kLogTable{3};  // log records; also the log's DEK id
inline constexpr uint64_t kFirstUserTable = 16;
inline constexpr PageId kMetadataPage{1};
inline constexpr PageId kKeystorePage{1};

// The checkpoint format this build writes and the oldest it reads.
inline constexpr uint32_t kCheckpointVersion = 1;
inline constexpr uint32_t kCheckpointCompatibleVersion = 1;

inline constexpr uint32_t kMetadataMagic = 0x41544d51;  // "QMTA"
inline constexpr size_t kMetadataHeaderBytes = 16;
inline constexpr uint32_t kMetadataTablesMax = 1u << 16;

struct KeystoreRef {
  Lsn page_lsn;          // the KEYSTORE record (0: none written yet)
  uint64_t version = 0;  // its keystore version
  Timestamp push_ts;
  KeystoreDigest digest{};  // the keystore's digest at `version`
  friend bool operator==(const KeystoreRef&, const KeystoreRef&) = default;
};

struct TableRoot {
  TableId table;
  PageId root_page;  // 0: the table is empty
  Lsn root_lsn;
  uint64_t pages = 0;  // live pages in the tree
  uint64_t bytes = 0;  // their sealed bytes
  friend bool operator==(const TableRoot&, const TableRoot&) = default;
};

struct CheckpointMetadata {
  uint32_t version = kCheckpointVersion;
  uint32_t compatible_version = kCheckpointCompatibleVersion;
  Timestamp checkpoint_ts;
  Timestamp oldest_ts;
  PageId largest_page_id;
  uint64_t database_size = 0;
  // The last LOG record whose writes the checkpoint holds: a node that loads it reads the
  // log on from the next record (0: from the start).
  Lsn log_lsn;
  KeystoreRef keystore;
  std::vector<TableRoot> tables;  // ascending table id
  friend bool operator==(const CheckpointMetadata&, const CheckpointMetadata&) = default;
};

Bytes encode_metadata_page(const CheckpointMetadata& m);
// Corruption (magic, size, CRC, structure; names "metadata_page") or VersionTooNew.
Result<CheckpointMetadata> decode_metadata_page(ByteView page);

struct CheckpointCompletion {
  Lsn metadata_lsn;
  uint32_t metadata_checksum = 0;  // CRC32C (unmasked) of the metadata page's bytes
  uint64_t database_size = 0;
  uint32_t version = kCheckpointVersion;
  uint32_t compatible_version = kCheckpointCompatibleVersion;
  Timestamp checkpoint_ts;
  friend bool operator==(const CheckpointCompletion&, const CheckpointCompletion&) = default;
};

std::string encode_completion(const CheckpointCompletion& c);
// Every field is required, each once; unknown keys are Corruption unless the record's
// version is newer than ours (then they are skipped). Corruption names the field.
Result<CheckpointCompletion> decode_completion(std::string_view text);

}  // namespace quire
