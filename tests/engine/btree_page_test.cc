#include "engine/btree_page.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "base/crc32c.h"

namespace quire {
namespace {

// Decodes from a heap block of exactly the page's size, so ASan flags a read past it.
Result<BtreeNode> decode_exact(const Bytes& page) {
  auto copy = std::make_unique<uint8_t[]>(std::max<size_t>(page.size(), 1));
  if (!page.empty()) std::memcpy(copy.get(), page.data(), page.size());
  return decode_btree_node(ByteView(copy.get(), page.size()));
}

// Sets the CRC field to the masked CRC32C of the page with the field zeroed, as the
// layout comment defines it, computed here independently of the encoder.
void fix_crc(Bytes& page) {
  std::memset(&page[12], 0, 4);
  encode_fixed32(&page[12], crc32c::mask(crc32c::value(page)));
}

// A page assembled field by field from the layout table, with a valid CRC. Lets a test
// build pages the encoder refuses to produce.
Bytes raw_page(uint8_t type, uint32_t count, const Bytes& body, uint8_t version = 1) {
  Bytes page;
  ByteWriter w(page);
  w.put_fixed32(kBtreePageMagic);
  w.put_u8(version);
  w.put_u8(type);
  w.put_fixed16(0);
  w.put_fixed32(count);
  w.put_fixed32(0);
  w.put_bytes(body);
  fix_crc(page);
  return page;
}

void put_leaf_entry(Bytes& body, std::string_view key, std::string_view value, uint64_t ts) {
  ByteWriter w(body);
  w.put_string(key);
  w.put_string(value);
  w.put_fixed64(ts);
}

void put_child(Bytes& body, std::string_view first_key, uint64_t page, uint64_t lsn) {
  ByteWriter w(body);
  w.put_string(first_key);
  w.put_fixed64(page);
  w.put_fixed64(lsn);
}

void expect_corruption(const Bytes& page) {
  auto r = decode_exact(page);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), Code::kCorruption) << r.status().to_string();
  EXPECT_EQ(r.status().step(), "btree_page");
}

BtreeNode sample_leaf() {
  BtreeNode n;
  n.type = BtreePageType::kLeaf;
  n.entries = {{"apple", "red", Timestamp(7)},
               {std::string("b\0", 2), std::string("\0\0\x01", 3), Timestamp(UINT64_MAX)},
               {"cherry", "", Timestamp(1)}};
  return n;
}

BtreeNode sample_internal() {
  BtreeNode n;
  n.type = BtreePageType::kInternal;
  n.children = {
      {"", PageId(10), Lsn(100)}, {"g", PageId(11), Lsn(101)}, {"p", PageId(12), Lsn(UINT64_MAX)}};
  return n;
}

// --- Layout and round trips --------------------------------------------------------------

TEST(BtreePageLayout, LeafMatchesTheDocumentedTable) {
  BtreeNode n;
  n.entries = {{"ab", "xyz", Timestamp(0x0102030405060708)}};
  Bytes b = encode_btree_node(n);

  Bytes body;
  put_leaf_entry(body, "ab", "xyz", 0x0102030405060708);
  EXPECT_EQ(b, raw_page(1, 1, body));
  ASSERT_EQ(b.size(), 16u + 1 + 2 + 1 + 3 + 8);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "QBTP");
  EXPECT_EQ(b[4], 1);
  EXPECT_EQ(b[5], 1);
  EXPECT_EQ(decode_fixed16(&b[6]), 0);
  EXPECT_EQ(decode_fixed32(&b[8]), 1u);
  EXPECT_EQ(b[16], 2);
  EXPECT_EQ(b[17], 'a');
  EXPECT_EQ(b[19], 3);
  EXPECT_EQ(decode_fixed64(&b[23]), 0x0102030405060708u);
}

TEST(BtreePageLayout, InternalMatchesTheDocumentedTable) {
  Bytes b = encode_btree_node(sample_internal());
  Bytes body;
  put_child(body, "", 10, 100);
  put_child(body, "g", 11, 101);
  put_child(body, "p", 12, UINT64_MAX);
  EXPECT_EQ(b, raw_page(2, 3, body));
  EXPECT_EQ(b[5], 2);
  EXPECT_EQ(decode_fixed32(&b[8]), 3u);
}

TEST(BtreePageRoundTrip, SamplesAndEmptyLeaf) {
  for (const BtreeNode& n : {sample_leaf(), sample_internal(), BtreeNode{}}) {
    Bytes b = encode_btree_node(n);
    EXPECT_EQ(b.size(), n.encoded_size());
    auto d = decode_exact(b);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_EQ(*d, n);
  }
  EXPECT_EQ(BtreeNode{}.encoded_size(), kBtreePageHeaderBytes);
}

TEST(BtreePageRoundTrip, LengthsThatNeedMultiByteVarints) {
  BtreeNode n;
  n.entries = {{std::string(127, 'a'), std::string(128, 'b'), Timestamp(1)},
               {std::string(300, 'c'), std::string(20000, '\0'), Timestamp(2)}};
  Bytes b = encode_btree_node(n);
  EXPECT_EQ(b.size(), n.encoded_size());
  auto d = decode_exact(b);
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(*d, n);
}

// Any node the format allows: sorted distinct binary keys, binary values, any ts or ids.
// Only usable inside a RapidCheck property.
BtreeNode arbitrary_node() {
  const auto byte =
      rc::gen::elementOf(std::string("\0\x01\x7f\x80\xff"
                                     "ab",
                                     7));
  BtreeNode n;
  n.type = *rc::gen::element(BtreePageType::kLeaf, BtreePageType::kInternal);
  const auto count = *rc::gen::inRange<size_t>(n.is_leaf() ? 0 : 1, 20);
  std::set<std::string> keys;
  for (size_t i = 0; i < count; i++) {
    keys.insert(*rc::gen::container<std::string>(*rc::gen::inRange(0, 6), byte));
  }
  if (n.is_leaf()) {
    for (const std::string& k : keys) {
      n.entries.push_back({k, *rc::gen::container<std::string>(*rc::gen::inRange(0, 200), byte),
                           Timestamp(*rc::gen::arbitrary<uint64_t>())});
    }
  } else {
    keys.erase("");
    keys.insert("");  // the first child's key is always empty
    for (const std::string& k : keys) {
      n.children.push_back(
          {k, PageId(*rc::gen::arbitrary<uint64_t>()), Lsn(*rc::gen::arbitrary<uint64_t>())});
    }
  }
  return n;
}

RC_GTEST_PROP(BtreePageRoundTrip, ArbitraryNodes, ()) {
  BtreeNode n = arbitrary_node();
  Bytes b = encode_btree_node(n);
  RC_ASSERT(b.size() == n.encoded_size());
  auto d = decode_exact(b);
  RC_ASSERT(d.is_ok());
  RC_ASSERT(*d == n);
}

// --- Damage ------------------------------------------------------------------------------

TEST(BtreePageDamage, EveryTruncationIsCorruption) {
  for (const BtreeNode& n : {sample_leaf(), sample_internal(), BtreeNode{}}) {
    Bytes b = encode_btree_node(n);
    for (size_t len = 0; len < b.size(); len++) {
      SCOPED_TRACE(len);
      expect_corruption(Bytes(b.begin(), b.begin() + len));
    }
  }
}

TEST(BtreePageDamage, TrailingBytesAreCorruption) {
  Bytes b = encode_btree_node(sample_leaf());
  b.push_back(0);
  expect_corruption(b);
  fix_crc(b);  // even when the CRC covers them
  expect_corruption(b);
}

// A flipped bit is either caught or reads as a newer format; it never decodes as a node.
void expect_every_bit_flip_rejected(const Bytes& b) {
  for (size_t i = 0; i < b.size() * 8; i++) {
    Bytes damaged = b;
    damaged[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    auto d = decode_exact(damaged);
    if (d.is_ok()) {
      ADD_FAILURE() << "bit " << i << " flipped and the page still decoded";
      return;
    }
    if (d.code() != Code::kCorruption && d.code() != Code::kVersionTooNew) {
      ADD_FAILURE() << "bit " << i << ": " << d.status().to_string();
      return;
    }
    EXPECT_EQ(d.status().step(), "btree_page");
  }
}

TEST(BtreePageDamage, EveryBitFlipOfTheSamplesIsRejected) {
  expect_every_bit_flip_rejected(encode_btree_node(sample_leaf()));
  expect_every_bit_flip_rejected(encode_btree_node(sample_internal()));
  expect_every_bit_flip_rejected(encode_btree_node(BtreeNode{}));
}

RC_GTEST_PROP(BtreePageDamage, EveryBitFlipOfAnArbitraryNodeIsRejected, ()) {
  Bytes b = encode_btree_node(arbitrary_node());
  for (size_t i = 0; i < b.size() * 8; i++) {
    Bytes damaged = b;
    damaged[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    auto d = decode_btree_node(damaged);
    RC_ASSERT(!d.is_ok());
    RC_ASSERT(d.code() == Code::kCorruption || d.code() == Code::kVersionTooNew);
  }
}

// Arbitrary bytes, with a valid CRC so the parser behind the checksum runs on them too.
RC_GTEST_PROP(BtreePageDamage, ArbitraryBytesNeverCrashTheDecoder, ()) {
  const uint8_t type = *rc::gen::inRange<uint8_t>(0, 4);
  const uint32_t count =
      *rc::gen::oneOf(rc::gen::inRange<uint32_t>(0, 6), rc::gen::arbitrary<uint32_t>());
  Bytes page =
      raw_page(type, count,
               *rc::gen::container<Bytes>(*rc::gen::inRange(0, 64), rc::gen::arbitrary<uint8_t>()));
  auto d = decode_btree_node(page);
  if (d.is_ok()) {
    // Whatever decodes must be a node the encoder writes back byte for byte.
    RC_ASSERT(encode_btree_node(*d) == page);
  } else {
    RC_ASSERT(d.code() == Code::kCorruption);
  }
}

// --- Header fields -----------------------------------------------------------------------

TEST(BtreePageHeader, NewerVersionIsVersionTooNewOlderIsCorruption) {
  Bytes body;
  put_leaf_entry(body, "k", "v", 1);
  auto newer = decode_exact(raw_page(1, 1, body, 2));
  EXPECT_EQ(newer.code(), Code::kVersionTooNew);
  EXPECT_EQ(newer.status().step(), "btree_page");
  expect_corruption(raw_page(1, 1, body, 0));
  ASSERT_TRUE(decode_exact(raw_page(1, 1, body, 1)).is_ok());
}

TEST(BtreePageHeader, BadMagicTypeReservedAndCountAreCorruption) {
  Bytes body;
  put_leaf_entry(body, "k", "v", 1);
  Bytes good = raw_page(1, 1, body);

  Bytes magic = good;
  magic[0] = 'X';
  fix_crc(magic);
  expect_corruption(magic);

  expect_corruption(raw_page(0, 1, body));
  expect_corruption(raw_page(3, 1, body));

  Bytes reserved = good;
  reserved[7] = 1;
  fix_crc(reserved);
  expect_corruption(reserved);

  // A count above the bound, or above what the bytes can hold, allocates nothing big.
  expect_corruption(raw_page(1, kBtreePageEntriesMax + 1, body));
  expect_corruption(raw_page(1, UINT32_MAX, body));
  expect_corruption(raw_page(1, kBtreePageEntriesMax, body));
  expect_corruption(raw_page(1, 2, body));
  expect_corruption(raw_page(1, 0, body));  // the entry is then trailing bytes
}

TEST(BtreePageHeader, LengthsBeyondTheRemainingBytesAreCorruption) {
  Bytes body;
  ByteWriter w(body);
  w.put_varint64(UINT64_MAX);  // a key "longer" than anything
  w.put_fixed64(0);
  w.put_fixed64(0);
  expect_corruption(raw_page(1, 1, body));
  expect_corruption(raw_page(2, 1, body));

  Bytes value_too_long;
  ByteWriter v(value_too_long);
  v.put_string("k");
  v.put_varint64(9);  // the value claims 9 bytes; 8 remain
  v.put_fixed64(0);
  expect_corruption(raw_page(1, 1, value_too_long));

  Bytes overlong_varint(11, 0x80);
  expect_corruption(raw_page(1, 1, overlong_varint));
}

TEST(BtreePageHeader, NonMinimalLengthsAreCorruption) {
  // Key length 1 written in two varint bytes: the same node as a canonical page, so
  // accepting it would give one node two encodings.
  Bytes body = {0x81, 0x00, 'k'};
  ByteWriter w(body);
  w.put_string("v");
  w.put_fixed64(1);
  expect_corruption(raw_page(1, 1, body));

  Bytes canonical;
  put_leaf_entry(canonical, "k", "v", 1);
  ASSERT_TRUE(decode_exact(raw_page(1, 1, canonical)).is_ok());
}

// --- Structure ---------------------------------------------------------------------------

TEST(BtreePageStructure, UnsortedOrDuplicateLeafKeysAreRejected) {
  Bytes unsorted;
  put_leaf_entry(unsorted, "b", "1", 1);
  put_leaf_entry(unsorted, "a", "2", 2);
  expect_corruption(raw_page(1, 2, unsorted));

  Bytes duplicate;
  put_leaf_entry(duplicate, "a", "1", 1);
  put_leaf_entry(duplicate, "a", "2", 2);
  expect_corruption(raw_page(1, 2, duplicate));

  // Order is bytewise: "a\0" sorts after "a", "\xff" after every ASCII key.
  Bytes sorted;
  put_leaf_entry(sorted, "a", "1", 1);
  put_leaf_entry(sorted, std::string("a\0", 2), "2", 2);
  put_leaf_entry(sorted, "\xff", "3", 3);
  auto d = decode_exact(raw_page(1, 3, sorted));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->entries.size(), 3u);
}

TEST(BtreePageStructure, InternalPagesNeedAChildAndAnEmptyFirstKey) {
  expect_corruption(raw_page(2, 0, {}));

  Bytes nonempty_first;
  put_child(nonempty_first, "a", 1, 1);
  put_child(nonempty_first, "b", 2, 2);
  expect_corruption(raw_page(2, 2, nonempty_first));

  Bytes unsorted;
  put_child(unsorted, "", 1, 1);
  put_child(unsorted, "m", 2, 2);
  put_child(unsorted, "c", 3, 3);
  expect_corruption(raw_page(2, 3, unsorted));

  Bytes duplicate;
  put_child(duplicate, "", 1, 1);
  put_child(duplicate, "m", 2, 2);
  put_child(duplicate, "m", 3, 3);
  expect_corruption(raw_page(2, 3, duplicate));

  Bytes two_empty;
  put_child(two_empty, "", 1, 1);
  put_child(two_empty, "", 2, 2);
  expect_corruption(raw_page(2, 2, two_empty));

  Bytes single;
  put_child(single, "", 5, 6);
  auto d = decode_exact(raw_page(2, 1, single));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->children, (std::vector<ChildRef>{{"", PageId(5), Lsn(6)}}));
}

TEST(BtreePageStructure, ALeafMayBeEmptyAndMayHoldTheEmptyKey) {
  auto empty = decode_exact(raw_page(1, 0, {}));
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->is_leaf());
  EXPECT_TRUE(empty->entries.empty());

  Bytes body;
  put_leaf_entry(body, "", "v", 1);
  auto d = decode_exact(raw_page(1, 1, body));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->entries, (std::vector<LeafEntry>{{"", "v", Timestamp(1)}}));
}

TEST(BtreePageStructure, TheEncoderRefusesNodesTheDecoderWouldReject) {
  BtreeNode unsorted = sample_leaf();
  std::swap(unsorted.entries[0], unsorted.entries[1]);
  EXPECT_DEATH(encode_btree_node(unsorted), "");

  BtreeNode first_key = sample_internal();
  first_key.children[0].first_key = "a";
  EXPECT_DEATH(encode_btree_node(first_key), "");

  BtreeNode childless;
  childless.type = BtreePageType::kInternal;
  EXPECT_DEATH(encode_btree_node(childless), "");
}

// --- Search ------------------------------------------------------------------------------

// Keys with a long common part and short differences, NUL and 0xff bytes, and keys that
// are prefixes of others: where the heads tie, pad, or run past the common part.
RC_GTEST_PROP(BtreePageSearch, IndexedSearchesAgreeWithAPlainSearch, ()) {
  const auto byte =
      rc::gen::elementOf(std::string("\0\x01"
                                     "a\xff",
                                     4));
  const std::string common = *rc::gen::container<std::string>(*rc::gen::inRange(0, 12), byte);
  auto key = [&] {
    return common.substr(0, *rc::gen::inRange<size_t>(0, common.size() + 1)) +
           *rc::gen::container<std::string>(*rc::gen::inRange(0, 14), byte);
  };
  std::set<std::string> keys;
  const auto count = *rc::gen::inRange<size_t>(1, 60);
  for (size_t i = 0; i < count; i++) keys.insert(key());
  BtreeNode leaf;
  for (const std::string& k : keys) leaf.entries.push_back({k, "v", Timestamp(1)});
  BtreeNode internal;
  internal.type = BtreePageType::kInternal;
  keys.erase("");
  internal.children.push_back({"", PageId(1), Lsn(1)});
  for (const std::string& k : keys) internal.children.push_back({k, PageId(2), Lsn(2)});
  leaf.index_keys();
  internal.index_keys();
  RC_ASSERT(leaf.index.heads.size() == leaf.entries.size());
  RC_ASSERT(internal.index.heads.size() == internal.children.size() - 1);

  std::vector<std::string> probes(keys.begin(), keys.end());
  for (int i = 0; i < 40; i++) probes.push_back(key());
  probes.push_back("");
  probes.push_back(std::string(20, '\xff'));
  for (const std::string& p : probes) {
    auto it = std::lower_bound(leaf.entries.begin(), leaf.entries.end(), p,
                               [](const LeafEntry& e, const std::string& k) { return e.key < k; });
    RC_ASSERT(leaf.lower_bound(p) == static_cast<size_t>(it - leaf.entries.begin()));
    const LeafEntry* found = leaf.find(p);
    RC_ASSERT((found != nullptr) == (it != leaf.entries.end() && it->key == p));
    if (found) RC_ASSERT(found == &*it);
    size_t child = 0;
    for (size_t c = 1; c < internal.children.size(); c++) {
      if (internal.children[c].first_key <= p) child = c;
    }
    RC_ASSERT(internal.child_index(p) == child);
  }
  // A node without its index (built by hand, never indexed) searches the same.
  BtreeNode plain = leaf;
  plain.index = KeyHeads{};
  for (const std::string& p : probes) {
    RC_ASSERT(plain.lower_bound(p) == leaf.lower_bound(p));
    RC_ASSERT((plain.find(p) != nullptr) == (leaf.find(p) != nullptr));
  }
}

TEST(BtreePageSearch, ADecodedNodeIsIndexed) {
  BtreeNode n;
  for (int i = 0; i < 100; i++)
    n.entries.push_back({fmt::format("key:{:012}", i), "v", Timestamp(1)});
  auto d = decode_btree_node(encode_btree_node(n));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->index.heads.size(), 100u);
  EXPECT_EQ(d->index.skip, 14u);  // "key:0000000000", then "00" .. "99"
  EXPECT_EQ(d->lower_bound("key:000000000042"), 42u);
  EXPECT_EQ(d->lower_bound("key:0000000000421"), 43u);
  EXPECT_EQ(d->lower_bound("key:1"), 100u);
  EXPECT_EQ(d->lower_bound("key:"), 0u);
}

}  // namespace
}  // namespace quire
