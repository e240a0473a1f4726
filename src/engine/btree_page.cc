#include "engine/btree_page.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/crc32c.h"

namespace quire {

namespace {

constexpr size_t kCountOffset = 8;
constexpr size_t kCrcOffset = 12;

// The fewest bytes an entry can take (empty key and value): lets the decoder bound what a
// corrupt count makes it reserve by the bytes actually present.
constexpr size_t kLeafEntryBytesMin = 1 + 1 + 8;
constexpr size_t kInternalEntryBytesMin = 1 + 8 + 8;

std::string_view as_string_view(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

ByteView as_bytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

size_t length_prefixed_size(size_t n) {
  return varint_length(n) + n;
}

// Masked CRC32C of the page with its CRC field read as zero.
uint32_t page_crc(ByteView page) {
  static constexpr uint8_t kZeros[4] = {};
  uint32_t crc = crc32c::extend(0, page.data(), kCrcOffset);
  crc = crc32c::extend(crc, kZeros, sizeof(kZeros));
  crc =
      crc32c::extend(crc, page.data() + kBtreePageHeaderBytes, page.size() - kBtreePageHeaderBytes);
  return crc32c::mask(crc);
}

// The structure the format requires of any node, shared by the encoder (where a violation
// is a bug in the caller) and the decoder (where it is corruption). Empty when valid.
const char* structure_error(const BtreeNode& node) {
  if (node.is_leaf()) {
    if (!node.children.empty()) return "leaf with children";
    for (size_t i = 1; i < node.entries.size(); i++) {
      if (!(node.entries[i - 1].key < node.entries[i].key)) {
        return "leaf keys not strictly increasing";
      }
    }
    return nullptr;
  }
  if (!node.entries.empty()) return "internal page with leaf entries";
  if (node.children.empty()) return "internal page without children";
  if (!node.children.front().first_key.empty()) return "internal page's first key not empty";
  for (size_t i = 1; i < node.children.size(); i++) {
    if (!(node.children[i - 1].first_key < node.children[i].first_key)) {
      return "internal keys not strictly increasing";
    }
  }
  return nullptr;
}

Status decode_leaf_entries(ByteReader& r, uint32_t count, BtreeNode* node) {
  node->entries.reserve(std::min<size_t>(count, r.remaining() / kLeafEntryBytesMin));
  for (uint32_t i = 0; i < count; i++) {
    ByteView key, value;
    uint64_t ts = 0;
    Status s = r.get_length_prefixed(&key);
    if (s.is_ok()) s = r.get_length_prefixed(&value);
    if (s.is_ok()) s = r.get_fixed64(&ts);
    if (!s.is_ok()) return std::move(s).with("entry", i);
    node->entries.push_back(LeafEntry{std::string(as_string_view(key)),
                                      std::string(as_string_view(value)), Timestamp(ts)});
  }
  return Status::ok();
}

Status decode_internal_entries(ByteReader& r, uint32_t count, BtreeNode* node) {
  node->children.reserve(std::min<size_t>(count, r.remaining() / kInternalEntryBytesMin));
  for (uint32_t i = 0; i < count; i++) {
    ByteView key;
    uint64_t page = 0, lsn = 0;
    Status s = r.get_length_prefixed(&key);
    if (s.is_ok()) s = r.get_fixed64(&page);
    if (s.is_ok()) s = r.get_fixed64(&lsn);
    if (!s.is_ok()) return std::move(s).with("entry", i);
    node->children.push_back(ChildRef{std::string(as_string_view(key)), PageId(page), Lsn(lsn)});
  }
  return Status::ok();
}

Status decode_into(ByteView page, BtreeNode* node) {
  if (page.size() < kBtreePageHeaderBytes) {
    return corruption("truncated btree page header").with("bytes", page.size());
  }
  if (decode_fixed32(page.data()) != kBtreePageMagic) return corruption("bad btree page magic");
  const uint8_t version = page[4];
  if (version != kBtreePageFormatVersion) {
    return Status(version > kBtreePageFormatVersion ? Code::kVersionTooNew : Code::kCorruption,
                  fmt::format("btree page format version {} (this build reads {})", version,
                              kBtreePageFormatVersion))
        .with("version", version);
  }
  const uint8_t type = page[5];
  if (type != static_cast<uint8_t>(BtreePageType::kLeaf) &&
      type != static_cast<uint8_t>(BtreePageType::kInternal)) {
    return corruption("unknown btree page type").with("type", type);
  }
  if (decode_fixed16(page.data() + 6) != 0) return corruption("btree page reserved field not zero");
  const uint32_t count = decode_fixed32(page.data() + kCountOffset);
  if (count > kBtreePageEntriesMax) {
    return corruption("btree page entry count out of bounds").with("count", count);
  }
  // Checked before the entries are parsed, so nothing below sees bytes the writer did not
  // produce unless the CRC collides.
  if (page_crc(page) != decode_fixed32(page.data() + kCrcOffset)) {
    return corruption("btree page checksum mismatch").with("bytes", page.size());
  }

  node->type = static_cast<BtreePageType>(type);
  ByteReader r(page.subspan(kBtreePageHeaderBytes));
  QUIRE_RETURN_IF_ERROR(node->is_leaf() ? decode_leaf_entries(r, count, node)
                                        : decode_internal_entries(r, count, node));
  if (!r.at_end()) {
    return corruption("trailing bytes after btree page entries").with("bytes", r.remaining());
  }
  if (const char* error = structure_error(*node)) return corruption(error);
  // ByteReader accepts overlong varints; refusing them keeps one encoding per node, so a
  // page that decodes is exactly the page its node encodes to.
  if (node->encoded_size() != page.size()) {
    return corruption("btree page lengths not minimally encoded");
  }
  return Status::ok();
}

}  // namespace

size_t leaf_entry_encoded_size(size_t key_bytes, size_t value_bytes) {
  return length_prefixed_size(key_bytes) + length_prefixed_size(value_bytes) + 8;
}

size_t BtreeNode::encoded_size() const {
  size_t n = kBtreePageHeaderBytes;
  for (const LeafEntry& e : entries) n += leaf_entry_encoded_size(e.key.size(), e.value.size());
  for (const ChildRef& c : children) n += length_prefixed_size(c.first_key.size()) + 8 + 8;
  return n;
}

Bytes encode_btree_node(const BtreeNode& node) {
  QUIRE_ASSERT(node.type == BtreePageType::kLeaf || node.type == BtreePageType::kInternal);
  const char* error = structure_error(node);
  QUIRE_ASSERT_MSG(error == nullptr, error);
  const size_t count = node.is_leaf() ? node.entries.size() : node.children.size();
  QUIRE_ASSERT(count <= kBtreePageEntriesMax);

  Bytes out;
  out.reserve(node.encoded_size());
  ByteWriter w(out);
  w.put_fixed32(kBtreePageMagic);
  w.put_u8(kBtreePageFormatVersion);
  w.put_u8(static_cast<uint8_t>(node.type));
  w.put_fixed16(0);
  w.put_fixed32(static_cast<uint32_t>(count));
  w.put_fixed32(0);  // the CRC, patched below once the body is written
  for (const LeafEntry& e : node.entries) {
    w.put_string(e.key);
    w.put_length_prefixed(as_bytes(e.value));
    w.put_fixed64(e.ts.value);
  }
  for (const ChildRef& c : node.children) {
    w.put_string(c.first_key);
    w.put_fixed64(c.page.value);
    w.put_fixed64(c.lsn.value);
  }
  QUIRE_ASSERT(out.size() == node.encoded_size());
  encode_fixed32(out.data() + kCrcOffset, page_crc(out));
  return out;
}

Result<BtreeNode> decode_btree_node(ByteView page) {
  BtreeNode node;
  Status s = decode_into(page, &node);
  if (!s.is_ok()) return std::move(s).at("btree_page");
  node.index_keys();
  return node;
}

namespace {

// The 8 bytes of `key` after its first `skip` (which it has), big-endian, zero-padded.
uint64_t key_head(std::string_view key, size_t skip) {
  uint8_t b[8] = {};
  const size_t n = std::min<size_t>(8, key.size() - skip);
  std::memcpy(b, key.data() + skip, n);
  uint64_t h = 0;
  for (uint8_t byte : b) h = (h << 8) | byte;
  return h;
}

// The keys a node searches: a leaf's, or an internal node's first keys after the first.
struct SearchKeys {
  const BtreeNode& node;
  size_t size() const {
    return node.is_leaf() ? node.entries.size()
                          : (node.children.empty() ? 0 : node.children.size() - 1);
  }
  std::string_view operator[](size_t i) const {
    return node.is_leaf() ? std::string_view(node.entries[i].key)
                          : std::string_view(node.children[i + 1].first_key);
  }
};

// What a search learned of keys[i] == key for the index it returned.
enum class Match { kUnknown, kEqual, kUnequal };

// The first i in [0, n) with !(keys[i] < key) when `upper` is false, or with key < keys[i]
// when it is true, narrowed by the heads when the node has them. Where the key and a
// node key both end within the 8 bytes after the common part (`covered`), equal heads
// leave only their lengths to compare, and the node key's bytes are not read: a point
// read's memcmp calls were 12.5% of a primary's CPU under GET -P 16, each one a cache
// miss on a key's heap buffer (docs/figures.md, session 16). `*match` (when asked) says
// whether keys[i] == key for the index returned, when the search found out.
size_t search(const BtreeNode& node, std::string_view key, bool upper, Match* match = nullptr) {
  const SearchKeys keys{node};
  const size_t n = keys.size();
  auto before = [&](size_t i) { return upper ? !(key < keys[i]) : keys[i] < key; };
  if (match) *match = Match::kUnknown;
  size_t lo = 0, hi = n;
  const KeyHeads& index = node.index;
  const bool indexed = n > 0 && index.heads.size() == n;
  if (indexed) {
    const std::string_view prefix = keys[0].substr(0, index.skip);
    const int c = key.substr(0, index.skip).compare(prefix);
    if (c != 0) {
      // Below every key (or a proper prefix of their common part), or above every key.
      if (match) *match = Match::kUnequal;
      return c < 0 ? 0 : n;
    }
    const uint64_t h = key_head(key, index.skip);
    lo = static_cast<size_t>(std::lower_bound(index.heads.begin(), index.heads.end(), h) -
                             index.heads.begin());
    hi = static_cast<size_t>(std::upper_bound(index.heads.begin() + lo, index.heads.end(), h) -
                             index.heads.begin());
  }
  const size_t same_head_end = hi;  // without the index: n, past every key
  const size_t covered_max = index.skip + 8;
  const bool covered = indexed && key.size() <= covered_max;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const size_t size = keys[mid].size();  // the string's own size: no read of its bytes
    bool b;
    if (covered && size <= covered_max) {
      // The same common part and the same 8 bytes after it, zero-padded: the two differ
      // only in length (the longer goes on with NUL bytes), and the shorter sorts first.
      b = upper ? size <= key.size() : size < key.size();
    } else {
      b = before(mid);
    }
    if (b) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (match) {
    if (lo >= same_head_end) {
      *match = Match::kUnequal;  // past the keys with the key's head (or past them all)
    } else if (covered && keys[lo].size() <= covered_max) {
      *match = keys[lo].size() == key.size() ? Match::kEqual : Match::kUnequal;
    }
  }
  return lo;
}

}  // namespace

void BtreeNode::index_keys() {
  const SearchKeys keys{*this};
  const size_t n = keys.size();
  index.heads.clear();
  index.skip = 0;
  if (n == 0) return;
  // Keys ascend, so what the first and last share, every key shares.
  const std::string_view first = keys[0], last = keys[n - 1];
  const size_t common = std::min(first.size(), last.size());
  while (index.skip < common && first[index.skip] == last[index.skip]) index.skip++;
  index.heads.reserve(n);
  for (size_t i = 0; i < n; i++) index.heads.push_back(key_head(keys[i], index.skip));
}

size_t BtreeNode::lower_bound(std::string_view key) const {
  QUIRE_ASSERT(is_leaf());
  return search(*this, key, false);
}

const LeafEntry* BtreeNode::find(std::string_view key) const {
  QUIRE_ASSERT(is_leaf());
  Match match;
  const size_t i = search(*this, key, false, &match);
  if (i >= entries.size() || match == Match::kUnequal) return nullptr;
  if (match == Match::kEqual || entries[i].key == key) return &entries[i];
  return nullptr;
}

size_t BtreeNode::child_index(std::string_view key) const {
  QUIRE_ASSERT(!is_leaf() && !children.empty());
  return search(*this, key, true);  // children[1..] at or below `key`, after the first
}

}  // namespace quire
