// The stable B+tree's page format: the plaintext of a PAGE record (then sealed under the
// table's DEK, see crypto/page_cipher.h).
//
// Layout (little-endian):
//
//   offset  size  field
//        0     4  magic "QBTP" (0x50544251)
//        4     1  format version (1)
//        5     1  page type (1 leaf, 2 internal)
//        6     2  reserved (zero)
//        8     4  entry count
//       12     4  CRC32C (masked) of the whole page with this field zeroed
//       16     n  entries:
//                   leaf:     key (length-prefixed) | value (length-prefixed) | commit ts u64
//                   internal: first key (length-prefixed) | child page id u64 | child lsn u64
//
// A leaf's keys are strictly increasing. An internal page has at least one child; its
// first child's first key is empty (it covers everything below the second child's key),
// the other first keys strictly increase. A parent names its child's exact LSN, so a
// reader fetching the child checks it got that version and not an older one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/ids.h"
#include "base/status.h"

namespace quire {

inline constexpr uint32_t kBtreePageMagic = 0x50544251;  // "QBTP"
inline constexpr uint8_t kBtreePageFormatVersion = 1;
inline constexpr size_t kBtreePageHeaderBytes = 16;
// Most entries a decoder accepts (a bound on what a corrupt count can make it allocate).
inline constexpr uint32_t kBtreePageEntriesMax = 1u << 20;

enum class BtreePageType : uint8_t { kLeaf = 1, kInternal = 2 };

struct LeafEntry {
  std::string key;
  std::string value;
  Timestamp ts;  // the commit ts of this value
  friend bool operator==(const LeafEntry&, const LeafEntry&) = default;
};

struct ChildRef {
  std::string first_key;
  PageId page;
  Lsn lsn;
  friend bool operator==(const ChildRef&, const ChildRef&) = default;
};

// A search aid derived from a node's keys, never encoded and not part of its value. Every
// key a node searches shares its first `skip` bytes; the next 8 bytes of each key,
// big-endian and zero-padded, are one integer in a contiguous array, so a search narrows
// down on those before it reads any key's bytes. A head orders like its key where heads
// differ (a < b implies head(a) <= head(b)); keys with equal heads are compared in full.
struct KeyHeads {
  size_t skip = 0;
  std::vector<uint64_t> heads;
  friend bool operator==(const KeyHeads&, const KeyHeads&) { return true; }
};

struct BtreeNode {
  BtreePageType type = BtreePageType::kLeaf;
  std::vector<LeafEntry> entries;  // leaf
  std::vector<ChildRef> children;  // internal
  KeyHeads index;                  // index_keys(); searches work without it, only slower

  bool is_leaf() const { return type == BtreePageType::kLeaf; }
  // The size encode_btree_node produces.
  size_t encoded_size() const;
  // Builds `index` from the keys (a leaf's keys; an internal node's first keys after the
  // first child's). Call once the keys are final.
  void index_keys();
  // Leaf: the first entry whose key is not below `key` (entries.size() when none).
  size_t lower_bound(std::string_view key) const;
  // Leaf: the entry whose key is `key`, or null.
  const LeafEntry* find(std::string_view key) const;
  // Internal: the child whose range holds `key`, the last whose first key is at or below
  // it (the first child's empty key is below every key).
  size_t child_index(std::string_view key) const;
  friend bool operator==(const BtreeNode&, const BtreeNode&) = default;
};

// The bytes one leaf entry with a key and a value of these sizes takes in a page.
size_t leaf_entry_encoded_size(size_t key_bytes, size_t value_bytes);

Bytes encode_btree_node(const BtreeNode& node);
// Corruption (bad magic, CRC, structure, key order) or VersionTooNew; never asserts on
// the bytes.
Result<BtreeNode> decode_btree_node(ByteView page);

}  // namespace quire
