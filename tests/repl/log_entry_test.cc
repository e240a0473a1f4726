#include "repl/log_entry.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "engine/checkpoint_format.h"
#include "runtime/sim/sim_random.h"

namespace quire {
namespace {

// Generators. Keystore changes only need to look valid: the log entry carries them, the
// keystore judges them when they are applied.
KeystoreChange gen_change() {
  KeystoreChange c;
  c.type = static_cast<KeystoreChangeType>(*rc::gen::inRange(1, 8));
  c.kek_version = *rc::gen::arbitrary<uint32_t>();
  c.dek_id = *rc::gen::arbitrary<uint64_t>();
  c.dek_version = *rc::gen::arbitrary<uint32_t>();
  c.wrapped.cmk_version = *rc::gen::arbitrary<uint32_t>();
  c.wrapped.blob =
      *rc::gen::container<Bytes>(*rc::gen::inRange(0, 64), rc::gen::arbitrary<uint8_t>());
  return c;
}

std::string gen_binary(int length_max) {
  return *rc::gen::container<std::string>(*rc::gen::inRange(0, length_max + 1),
                                          rc::gen::arbitrary<char>());
}

LogWrite gen_write() {
  LogWrite w;
  w.table = TableId(*rc::gen::inRange<uint64_t>(kFirstUserTable, UINT64_MAX));
  w.key = gen_binary(40);
  if (*rc::gen::arbitrary<bool>()) w.value = gen_binary(100);
  return w;
}

// Two or more batches at strictly increasing timestamps, the last the entry's.
LogEntry gen_batches() {
  LogEntry e;
  e.kind = LogEntryKind::kBatches;
  const int batches = *rc::gen::inRange(2, 6);
  uint64_t ts = *rc::gen::inRange<uint64_t>(1, UINT64_MAX - 1000);
  for (int b = 0; b < batches; b++) {
    ts += *rc::gen::inRange<uint64_t>(1, 100);
    LogBatch batch;
    batch.ts = Timestamp(ts);
    const int ops = *rc::gen::inRange(1, 6);
    for (int i = 0; i < ops; i++) batch.writes.push_back(gen_write());
    e.batches.push_back(std::move(batch));
  }
  e.ts = e.batches.back().ts;
  return e;
}

LogEntry gen_entry() {
  LogEntry e;
  e.ts = Timestamp(*rc::gen::inRange<uint64_t>(1, UINT64_MAX));
  const int ops = *rc::gen::inRange(1, 20);
  switch (*rc::gen::inRange(0, 3)) {
    case 0:
      e.kind = LogEntryKind::kWrites;
      for (int i = 0; i < ops; i++) e.writes.push_back(gen_write());
      break;
    case 1:
      e.kind = LogEntryKind::kKeystore;
      for (int i = 0; i < ops; i++) e.changes.push_back(gen_change());
      break;
    default:
      return gen_batches();
  }
  return e;
}

LogEntry sample_writes() {
  LogEntry e;
  e.kind = LogEntryKind::kWrites;
  e.ts = Timestamp::from_parts(1700000000, 3);
  e.writes.push_back(LogWrite{TableId(16), "alpha", std::string("one")});
  e.writes.push_back(LogWrite{TableId(17), std::string("\0\xff", 2), std::nullopt});
  e.writes.push_back(LogWrite{TableId(16), "", std::string()});
  return e;
}

// Two batches: sample_writes' three writes, then one more write at a later timestamp.
LogEntry sample_batches() {
  LogEntry e;
  e.kind = LogEntryKind::kBatches;
  const LogEntry first = sample_writes();
  e.batches.push_back(LogBatch{first.ts, first.writes});
  e.batches.push_back(LogBatch{Timestamp::from_parts(1700000000, 300),
                               {LogWrite{TableId(18), "b", std::string("two")}}});
  e.ts = e.batches.back().ts;
  return e;
}

LogEntry sample_keystore() {
  LogEntry e;
  e.kind = LogEntryKind::kKeystore;
  e.ts = Timestamp::from_parts(1700000001, 0);
  KeystoreChange kek;
  kek.type = KeystoreChangeType::kNewKek;
  kek.kek_version = 2;
  kek.wrapped = WrappedKey{1, Bytes{1, 2, 3, 4, 5}};
  KeystoreChange activate;
  activate.type = KeystoreChangeType::kActivateKek;
  activate.kek_version = 2;
  KeystoreChange dek;
  dek.type = KeystoreChangeType::kNewDek;
  dek.kek_version = 2;
  dek.dek_id = kLogTable.value;
  dek.dek_version = 300;  // a two-byte varint
  dek.wrapped.blob = Bytes(40, 0xab);
  e.changes = {kek, activate, dek};
  return e;
}

Bytes encode_ok(const LogEntry& e) {
  Result<Bytes> b = encode_log_entry(e);
  QUIRE_ASSERT(b.is_ok());
  return std::move(b).value();
}

// An entry encode_log_entry refuses as out of bounds.
bool refused(const LogEntry& e) {
  return encode_log_entry(e).code() == Code::kInvalidArgument;
}

bool malformed_or_too_new(Code c) {
  return c == Code::kCorruption || c == Code::kVersionTooNew;
}

// --- Plaintext encoding --------------------------------------------------------------

RC_GTEST_PROP(LogEntryProperty, RoundTrips, ()) {
  const LogEntry e = gen_entry();
  Result<Bytes> bytes = encode_log_entry(e);
  RC_ASSERT(bytes.is_ok());
  Result<LogEntry> back = decode_log_entry(*bytes);
  RC_ASSERT(back.is_ok());
  RC_ASSERT(*back == e);
}

// Whatever one flipped bit does, decoding reports it or yields another valid entry, and
// an accepted entry re-encodes to exactly the flipped bytes (one encoding per entry).
RC_GTEST_PROP(LogEntryProperty, BitFlipsAreReportedOrCanonical, ()) {
  const LogEntry e = gen_entry();
  Bytes bytes = encode_ok(e);
  const size_t bit = *rc::gen::inRange<size_t>(0, bytes.size() * 8);
  bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  Result<LogEntry> back = decode_log_entry(bytes);
  if (!back.is_ok()) {
    RC_ASSERT(malformed_or_too_new(back.code()));
    return;
  }
  RC_ASSERT(!(*back == e));
  Result<Bytes> again = encode_log_entry(*back);
  RC_ASSERT(again.is_ok());
  RC_ASSERT(*again == bytes);
}

TEST(LogEntry, HeaderFollowsTheDocumentedLayout) {
  const Bytes b = encode_ok(sample_writes());
  ASSERT_GE(b.size(), kLogEntryHeaderBytes);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "QLOG");
  EXPECT_EQ(b[4], kLogEntryWritesFormatVersion);
  EXPECT_EQ(b[5], static_cast<uint8_t>(LogEntryKind::kWrites));
  EXPECT_EQ(decode_fixed16(&b[6]), 0);
  EXPECT_EQ(decode_fixed64(&b[8]), Timestamp::from_parts(1700000000, 3).value);
  EXPECT_EQ(decode_fixed32(&b[16]), 3u);
  // The first write: table 16, put, "alpha", "one".
  EXPECT_EQ(decode_fixed64(&b[20]), 16u);
  EXPECT_EQ(b[28], 1);
  EXPECT_EQ(b[29], 5);
  EXPECT_EQ(std::string(b.begin() + 30, b.begin() + 35), "alpha");
  EXPECT_EQ(b[35], 3);
  // The second write is a delete: no value follows its key.
  EXPECT_EQ(b[39 + 8], 2);
  EXPECT_EQ(b[39 + 9], 2);
  EXPECT_EQ(decode_fixed64(&b[39 + 12]), 16u);
}

TEST(LogEntry, BatchesFollowTheDocumentedLayout) {
  const LogEntry e = sample_batches();
  const Bytes b = encode_ok(e);
  const Bytes first = encode_ok(sample_writes());
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "QLOG");
  EXPECT_EQ(b[4], kLogEntryFormatVersion);
  EXPECT_EQ(b[4], 2);
  EXPECT_EQ(b[5], static_cast<uint8_t>(LogEntryKind::kBatches));
  EXPECT_EQ(decode_fixed16(&b[6]), 0);
  EXPECT_EQ(decode_fixed64(&b[8]), e.batches[1].ts.value);  // the last batch's
  EXPECT_EQ(decode_fixed32(&b[16]), 2u);                    // batches, not ops
  // The first batch: its ts, its op count, then its ops exactly as kWrites encodes them.
  EXPECT_EQ(decode_fixed64(&b[20]), e.batches[0].ts.value);
  EXPECT_EQ(b[28], 3);
  const size_t ops = first.size() - kLogEntryHeaderBytes;
  EXPECT_TRUE(std::equal(first.begin() + kLogEntryHeaderBytes, first.end(), b.begin() + 29));
  // The second: ts, one op: table 18, put, "b", "two".
  const size_t second = 29 + ops;
  EXPECT_EQ(decode_fixed64(&b[second]), e.batches[1].ts.value);
  EXPECT_EQ(b[second + 8], 1);
  EXPECT_EQ(decode_fixed64(&b[second + 9]), 18u);
  EXPECT_EQ(b.size(), second + 9 + 8 + 1 + 2 + 4);
  Result<LogEntry> back = decode_log_entry(b);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, e);
}

TEST(LogEntry, EveryTruncationIsCorruption) {
  for (const LogEntry& e : {sample_writes(), sample_keystore(), sample_batches()}) {
    const Bytes b = encode_ok(e);
    for (size_t n = 0; n < b.size(); n++) {
      Result<LogEntry> r = decode_log_entry(ByteView(b).first(n));
      ASSERT_EQ(r.code(), Code::kCorruption) << "length " << n;
      EXPECT_NE(r.status().message().find("log_entry"), std::string::npos)
          << r.status().to_string();
    }
  }
}

TEST(LogEntry, TrailingBytesAreCorruption) {
  Bytes b = encode_ok(sample_keystore());
  b.push_back(0);
  Result<LogEntry> r = decode_log_entry(b);
  EXPECT_EQ(r.code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos) << r.status().to_string();
}

// Exhaustive over the two samples: every single-bit flip is reported or gives another
// valid entry that re-encodes to the flipped bytes.
TEST(LogEntry, EverySingleBitFlipIsReportedOrCanonical) {
  for (const LogEntry& e : {sample_writes(), sample_keystore(), sample_batches()}) {
    const Bytes b = encode_ok(e);
    size_t rejected = 0;
    for (size_t bit = 0; bit < b.size() * 8; bit++) {
      Bytes flipped = b;
      flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      Result<LogEntry> r = decode_log_entry(flipped);
      if (!r.is_ok()) {
        ASSERT_TRUE(malformed_or_too_new(r.code())) << "bit " << bit << r.status().to_string();
        rejected++;
        continue;
      }
      ASSERT_FALSE(*r == e) << "bit " << bit;
      Result<Bytes> again = encode_log_entry(*r);
      ASSERT_TRUE(again.is_ok()) << "bit " << bit;
      ASSERT_EQ(*again, flipped) << "bit " << bit;
    }
    // The header alone has 20 bytes of checked fields; most of its flips must be caught.
    EXPECT_GT(rejected, 100u);
  }
}

TEST(LogEntry, HeaderFieldsAreChecked) {
  const Bytes good = encode_ok(sample_writes());
  auto with = [&](size_t offset, uint8_t v) {
    Bytes b = good;
    b[offset] = v;
    return decode_log_entry(b).code();
  };
  EXPECT_EQ(with(0, 'X'), Code::kCorruption);   // magic
  EXPECT_EQ(with(4, 3), Code::kVersionTooNew);  // a newer format
  EXPECT_EQ(with(4, 2), Code::kCorruption);     // a batch is written in format 1 only
  EXPECT_EQ(with(4, 0), Code::kCorruption);     // no such format
  EXPECT_EQ(with(5, 0), Code::kCorruption);     // kind
  EXPECT_EQ(with(5, 4), Code::kCorruption);     // kBatches is written in format 2 only
  EXPECT_EQ(with(5, 5), Code::kCorruption);     // kind
  EXPECT_EQ(with(5, 3), Code::kCorruption);     // kind
  EXPECT_EQ(with(5, 2), Code::kCorruption);     // writes read as keystore changes
  EXPECT_EQ(with(7, 1), Code::kCorruption);     // reserved
  EXPECT_EQ(with(28, 3), Code::kCorruption);    // op code
  EXPECT_EQ(with(28, 0), Code::kCorruption);    // op code

  Bytes zero_ts = good;
  std::fill(zero_ts.begin() + 8, zero_ts.begin() + 16, 0);
  EXPECT_EQ(decode_log_entry(zero_ts).code(), Code::kCorruption);

  Bytes zero_count = good;
  encode_fixed32(&zero_count[16], 0);
  EXPECT_EQ(decode_log_entry(zero_count).code(), Code::kCorruption);
  Bytes huge_count = good;
  encode_fixed32(&huge_count[16], kLogEntryOpsMax + 1);
  EXPECT_EQ(decode_log_entry(huge_count).code(), Code::kCorruption);

  Bytes reserved_table = good;
  encode_fixed64(&reserved_table[20], kLogTable.value);
  EXPECT_EQ(decode_log_entry(reserved_table).code(), Code::kCorruption);
}

TEST(LogEntry, BatchFieldsAreChecked) {
  const LogEntry e = sample_batches();
  const Bytes good = encode_ok(e);
  const size_t second = good.size() - (8 + 1 + 9 + 2 + 4);  // the second batch's ts
  auto decoded = [](const Bytes& b) { return decode_log_entry(b).code(); };
  auto message = [](const Bytes& b) { return decode_log_entry(b).status().message(); };

  Bytes one = good;  // a single batch is written as kWrites, never as kBatches of one
  encode_fixed32(&one[16], 1);
  EXPECT_EQ(decoded(one), Code::kCorruption);
  Bytes no_batch = good;
  encode_fixed32(&no_batch[16], 0);
  EXPECT_EQ(decoded(no_batch), Code::kCorruption);
  Bytes three = good;  // says three, holds two
  encode_fixed32(&three[16], 3);
  EXPECT_EQ(decoded(three), Code::kCorruption);

  Bytes same_ts = good;  // the second batch at the first one's ts
  encode_fixed64(&same_ts[second], e.batches[0].ts.value);
  encode_fixed64(&same_ts[8], e.batches[0].ts.value);
  EXPECT_EQ(decoded(same_ts), Code::kCorruption);
  EXPECT_NE(message(same_ts).find("strictly increase"), std::string::npos);
  Bytes zero_ts = good;
  encode_fixed64(&zero_ts[20], 0);
  EXPECT_EQ(decoded(zero_ts), Code::kCorruption);
  Bytes header_ts = good;  // the header names a ts no batch has
  encode_fixed64(&header_ts[8], e.batches[1].ts.value + 1);
  EXPECT_EQ(decoded(header_ts), Code::kCorruption);
  EXPECT_NE(message(header_ts).find("last batch"), std::string::npos);

  Bytes empty_batch = good;
  empty_batch[second + 8] = 0;
  EXPECT_EQ(decoded(empty_batch), Code::kCorruption);
  // The second batch's op count as an overlong varint (1 as 0x81 0x00).
  Bytes overlong = good;
  overlong[second + 8] = 0x81;
  overlong.insert(overlong.begin() + static_cast<ptrdiff_t>(second + 9), 0x00);
  EXPECT_EQ(decoded(overlong), Code::kCorruption);
  EXPECT_NE(message(overlong).find("overlong"), std::string::npos);
}

TEST(LogEntry, BatchesOverTheirBoundsAreRefused) {
  const LogEntry good = sample_batches();
  LogEntry one = good;
  one.batches.pop_back();
  one.ts = one.batches.back().ts;
  EXPECT_TRUE(refused(one));
  LogEntry wrong_ts = good;
  wrong_ts.ts = good.batches.front().ts;
  EXPECT_TRUE(refused(wrong_ts));
  LogEntry backwards = good;
  std::swap(backwards.batches[0].ts, backwards.batches[1].ts);
  backwards.ts = backwards.batches.back().ts;
  EXPECT_TRUE(refused(backwards));
  LogEntry empty = good;
  empty.batches[0].writes.clear();
  EXPECT_TRUE(refused(empty));
  LogEntry with_writes = good;
  with_writes.writes = sample_writes().writes;
  EXPECT_TRUE(refused(with_writes));
  LogEntry batches_in_writes = sample_writes();
  batches_in_writes.batches = good.batches;
  EXPECT_TRUE(refused(batches_in_writes));
  LogEntry reserved = good;
  reserved.batches[1].writes[0].table = kLogTable;
  EXPECT_TRUE(refused(reserved));

  // The op bound counts every batch's ops together, and a decoder holds it too.
  LogEntry at_max;
  at_max.kind = LogEntryKind::kBatches;
  const LogWrite w{TableId(kFirstUserTable), "k", std::nullopt};
  at_max.batches.push_back(LogBatch{Timestamp(1), std::vector<LogWrite>(kLogEntryOpsMax - 1, w)});
  at_max.batches.push_back(LogBatch{Timestamp(2), {w}});
  at_max.ts = Timestamp(2);
  Result<Bytes> b = encode_log_entry(at_max);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  ASSERT_TRUE(decode_log_entry(*b).is_ok());
  LogEntry over = at_max;
  over.batches[1].writes.push_back(w);
  EXPECT_TRUE(refused(over));
  // The same bytes with the second batch claiming two ops and holding them: one op over.
  Bytes more = *b;
  const size_t second = more.size() - (8 + 1 + 8 + 1 + 2);
  ASSERT_EQ(more[second + 8], 1);
  more[second + 8] = 2;
  more.insert(more.end(), more.end() - 11, more.end());
  EXPECT_EQ(decode_log_entry(more).code(), Code::kCorruption);
  more[second + 8] = 1;
  more.resize(more.size() - 11);
  EXPECT_TRUE(decode_log_entry(more).is_ok());
}

TEST(LogEntry, OverlongVarintsAreCorruption) {
  LogEntry e;
  e.kind = LogEntryKind::kWrites;
  e.ts = Timestamp(5);
  e.writes.push_back(LogWrite{TableId(20), "k", std::nullopt});
  Bytes b = encode_ok(e);
  ASSERT_EQ(b.size(), kLogEntryHeaderBytes + 9 + 2);
  ASSERT_TRUE(decode_log_entry(b).is_ok());
  // The key's length 1 written in two bytes (0x81 0x00) instead of one.
  Bytes overlong(b.begin(), b.begin() + kLogEntryHeaderBytes + 9);
  overlong.insert(overlong.end(), {0x81, 0x00, 'k'});
  Result<LogEntry> r = decode_log_entry(overlong);
  EXPECT_EQ(r.code(), Code::kCorruption) << r.status().to_string();

  // A keystore change's kek_version 2 written as 0x82 0x00.
  LogEntry k;
  k.kind = LogEntryKind::kKeystore;
  k.ts = Timestamp(5);
  KeystoreChange c;
  c.type = KeystoreChangeType::kActivateKek;
  c.kek_version = 2;
  k.changes.push_back(c);
  Bytes kb = encode_ok(k);
  // After the header: the keystore base version (8 bytes), then the change's type byte.
  const size_t at = kLogEntryHeaderBytes + 8 + 1;
  ASSERT_EQ(kb[at], 2);
  Bytes kover(kb.begin(), kb.begin() + at);
  kover.insert(kover.end(), {0x82, 0x00});
  kover.insert(kover.end(), kb.begin() + at + 1, kb.end());
  ASSERT_EQ(kover.size(), kb.size() + 1);
  Result<LogEntry> kr = decode_log_entry(kover);
  EXPECT_EQ(kr.code(), Code::kCorruption) << kr.status().to_string();
}

TEST(LogEntry, DecodeRefusesOversizeKeys) {
  // Hand-built, since the encoder refuses to write it: a key one byte over the bound.
  Bytes b;
  ByteWriter w(b);
  w.put_fixed32(kLogEntryMagic);
  w.put_u8(kLogEntryWritesFormatVersion);
  w.put_u8(static_cast<uint8_t>(LogEntryKind::kWrites));
  w.put_fixed16(0);
  w.put_fixed64(9);
  w.put_fixed32(1);
  w.put_fixed64(kFirstUserTable);
  w.put_u8(2);
  w.put_string(std::string(kLogEntryKeyBytesMax + 1, 'k'));
  Result<LogEntry> r = decode_log_entry(b);
  EXPECT_EQ(r.code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("key"), std::string::npos) << r.status().to_string();
}

TEST(LogEntry, EncodeRefusesEntriesOutOfBounds) {
  const LogEntry good = sample_writes();
  ASSERT_TRUE(encode_log_entry(good).is_ok());

  LogEntry zero_ts = good;
  zero_ts.ts = Timestamp();
  EXPECT_TRUE(refused(zero_ts));

  LogEntry reserved = good;
  reserved.writes[1].table = TableId(kFirstUserTable - 1);
  EXPECT_TRUE(refused(reserved));
  reserved.writes[1].table = kLogTable;
  EXPECT_TRUE(refused(reserved));

  LogEntry empty = good;
  empty.writes.clear();
  EXPECT_TRUE(refused(empty));
  LogEntry no_changes = sample_keystore();
  no_changes.changes.clear();
  EXPECT_TRUE(refused(no_changes));

  LogEntry mixed = good;
  mixed.changes = sample_keystore().changes;
  EXPECT_TRUE(refused(mixed));
  LogEntry mixed_keystore = sample_keystore();
  mixed_keystore.writes = good.writes;
  EXPECT_TRUE(refused(mixed_keystore));

  LogEntry bad_kind = good;
  bad_kind.kind = static_cast<LogEntryKind>(5);
  EXPECT_TRUE(refused(bad_kind));

  LogEntry bad_change = sample_keystore();
  bad_change.changes[0].type = static_cast<KeystoreChangeType>(9);
  EXPECT_TRUE(refused(bad_change));

  LogEntry max_ops;
  max_ops.ts = Timestamp(1);
  max_ops.writes.assign(kLogEntryOpsMax, LogWrite{TableId(kFirstUserTable), "k", std::nullopt});
  ASSERT_TRUE(encode_log_entry(max_ops).is_ok());
  LogEntry too_many = max_ops;
  too_many.writes.push_back(too_many.writes.back());
  EXPECT_TRUE(refused(too_many));

  LogEntry key_at_max = good;
  key_at_max.writes[0].key.assign(kLogEntryKeyBytesMax, 'k');
  ASSERT_TRUE(encode_log_entry(key_at_max).is_ok());
  LogEntry key_over = key_at_max;
  key_over.writes[0].key.push_back('k');
  EXPECT_TRUE(refused(key_over));

  LogEntry value_at_max = good;
  value_at_max.writes[0].value = std::string(kLogEntryValueBytesMax, 'v');
  Result<Bytes> at_max = encode_log_entry(value_at_max);
  ASSERT_TRUE(at_max.is_ok());
  Result<LogEntry> at_max_back = decode_log_entry(*at_max);
  ASSERT_TRUE(at_max_back.is_ok()) << at_max_back.status().to_string();
  EXPECT_EQ(*at_max_back, value_at_max);
  LogEntry value_over = value_at_max;
  value_over.writes[0].value->push_back('v');
  EXPECT_TRUE(refused(value_over));

  // Each value within its bound, but together over the entry's.
  LogEntry too_large;
  too_large.ts = Timestamp(1);
  const size_t values = kLogEntryBytesMax / kLogEntryValueBytesMax + 1;
  too_large.writes.assign(
      values, LogWrite{TableId(kFirstUserTable), "k", std::string(kLogEntryValueBytesMax, 'v')});
  EXPECT_TRUE(refused(too_large));
}

// --- Sealed LOG records --------------------------------------------------------------

class LogRecord : public ::testing::Test {
 protected:
  static DataKey make_key(DekRef ref, uint8_t fill) {
    Result<SecretKey> key = SecretKey::from_bytes(Bytes(kSecretKeyBytes, fill));
    QUIRE_ASSERT(key.is_ok());
    return DataKey(ref, *key);
  }

  DekLookup lookup() {
    return [this](const DekRef& ref) -> DataKey* {
      if (ref == log_dek_.ref()) return &log_dek_;
      if (ref == table_dek_.ref()) return &table_dek_;
      return nullptr;
    };
  }

  Record seal(const LogEntry& e, Lsn lsn) {
    Result<Record> r = seal_log_record(e, log_dek_, lsn, Term(4), random_);
    QUIRE_ASSERT(r.is_ok());
    return std::move(r).value();
  }

  SimRandom random_{11, "log-entry-test"};
  DataKey log_dek_ = make_key(DekRef{kLogTable.value, 1}, 0x31);
  DataKey table_dek_ = make_key(DekRef{kFirstUserTable, 1}, 0x32);
};

TEST_F(LogRecord, RoundTripsEveryKind) {
  for (const LogEntry& e : {sample_writes(), sample_keystore(), sample_batches()}) {
    const Record r = seal(e, Lsn(77));
    EXPECT_EQ(r.type, RecordType::kLog);
    EXPECT_EQ(r.table, kLogTable);
    EXPECT_EQ(r.page, PageId(0));
    EXPECT_EQ(r.lsn, Lsn(77));
    EXPECT_EQ(r.term, Term(4));
    EXPECT_EQ(r.prev_lsn, Lsn(0));
    EXPECT_TRUE(validate_record(r).is_ok());
    Result<LogEntry> back = open_log_record(r, lookup());
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, e);
  }
}

// The primary merges a group's write batches without building the kBatches entry: the
// record opens to exactly that entry.
TEST_F(LogRecord, MergedBatchesOpenAsTheirKBatchesEntry) {
  const LogEntry expected = sample_batches();
  LogEntry first = sample_writes();
  LogEntry second;
  second.kind = LogEntryKind::kWrites;
  second.ts = expected.batches[1].ts;
  second.writes = expected.batches[1].writes;
  std::vector<const LogEntry*> entries{&first, &second};
  Result<Record> r = seal_log_batches(entries, log_dek_, Lsn(90), Term(4), random_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->lsn, Lsn(90));
  EXPECT_EQ(r->term, Term(4));
  EXPECT_TRUE(validate_record(*r).is_ok());
  Result<LogEntry> back = open_log_record(*r, lookup());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, expected);

  auto seal_refused = [&](std::vector<const LogEntry*> es) {
    return seal_log_batches(es, log_dek_, Lsn(91), Term(4), random_).code() ==
           Code::kInvalidArgument;
  };
  EXPECT_TRUE(seal_refused({&first}));           // one batch is a kWrites record
  EXPECT_TRUE(seal_refused({&second, &first}));  // timestamps out of order
  const LogEntry keys = sample_keystore();
  EXPECT_TRUE(seal_refused({&first, &keys}));
  LogEntry oversize = second;
  oversize.writes.assign(kLogEntryOpsMax, oversize.writes.front());
  EXPECT_TRUE(seal_refused({&first, &oversize}));
  Result<Record> table_dek = seal_log_batches(entries, table_dek_, Lsn(92), Term(4), random_);
  EXPECT_EQ(table_dek.code(), Code::kInvalidArgument);
  // What the primary sums to bound a merged entry is what each batch adds to it.
  Result<Bytes> whole = encode_log_entry(expected);
  ASSERT_TRUE(whole.is_ok());
  EXPECT_EQ(whole->size(), kLogEntryHeaderBytes + log_batch_bytes(first) + log_batch_bytes(second));
}

TEST_F(LogRecord, PlaintextNeverAppearsInThePayload) {
  const std::string canary = "CANARY-7f3a9c1e!";
  ASSERT_EQ(canary.size(), 16u);
  LogEntry e = sample_writes();
  e.writes[0].value = canary;
  e.writes[1].key = canary;
  const Record r = seal(e, Lsn(5));
  EXPECT_EQ(std::search(r.payload.begin(), r.payload.end(), canary.begin(), canary.end()),
            r.payload.end());
  const Bytes plain = encode_ok(e);
  EXPECT_NE(std::search(plain.begin(), plain.end(), canary.begin(), canary.end()), plain.end());
}

TEST_F(LogRecord, ReplayedAtAnotherLsnFails) {
  Record r = seal(sample_writes(), Lsn(100));
  r.lsn = Lsn(101);
  Result<LogEntry> back = open_log_record(r, lookup());
  EXPECT_EQ(back.code(), Code::kCorruption);
  EXPECT_EQ(back.status().field("lsn"), 101u) << back.status().to_string();
}

TEST_F(LogRecord, EveryPayloadByteFlipIsCorruption) {
  const Record good = seal(sample_keystore(), Lsn(9));
  for (size_t i = 0; i < good.payload.size(); i++) {
    Record r = good;
    r.payload[i] ^= 0x01;
    Result<LogEntry> back = open_log_record(r, lookup());
    // The DEK version's bytes name a key this node lacks; every other byte fails the
    // header checks or the tag.
    if (i >= 16 && i < 20) {
      EXPECT_EQ(back.code(), Code::kNotFound) << "byte " << i;
    } else if (i == 4) {
      EXPECT_TRUE(malformed_or_too_new(back.code())) << "byte " << i;
    } else {
      EXPECT_EQ(back.code(), Code::kCorruption) << "byte " << i << back.status().to_string();
    }
  }
}

TEST_F(LogRecord, UnknownDekIsNotFound) {
  DataKey newer = make_key(DekRef{kLogTable.value, 2}, 0x33);
  Result<Record> r = seal_log_record(sample_writes(), newer, Lsn(3), Term(1), random_);
  ASSERT_TRUE(r.is_ok());
  Result<LogEntry> back = open_log_record(*r, lookup());
  EXPECT_EQ(back.code(), Code::kNotFound) << back.status().to_string();
  EXPECT_EQ(back.status().field("lsn"), 3u);
}

TEST_F(LogRecord, OnlyLogRecordsOfTheLogTableOpen) {
  Record as_page = seal(sample_writes(), Lsn(8));
  as_page.type = RecordType::kPage;
  EXPECT_EQ(open_log_record(as_page, lookup()).code(), Code::kCorruption);
  Record other_table = seal(sample_writes(), Lsn(8));
  other_table.table = TableId(kFirstUserTable);
  EXPECT_EQ(open_log_record(other_table, lookup()).code(), Code::kCorruption);
}

TEST_F(LogRecord, OnlyTheLogDekSealsOrOpens) {
  Result<Record> refused = seal_log_record(sample_writes(), table_dek_, Lsn(2), Term(1), random_);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_EQ(table_dek_.uses(), 0u);

  // A payload sealed for the log's place but under a table's DEK is refused on opening,
  // though this node holds that DEK and the tag would verify.
  Record r;
  r.type = RecordType::kLog;
  r.table = kLogTable;
  r.lsn = Lsn(2);
  const Bytes plain = encode_ok(sample_writes());
  ASSERT_TRUE(table_dek_
                  .seal(PayloadPlace{kLogTable, PageId(0), Lsn(2), RecordType::kLog}, plain,
                        random_, r.payload)
                  .is_ok());
  EXPECT_EQ(open_log_record(r, lookup()).code(), Code::kCorruption);
}

TEST_F(LogRecord, EncodeAndKeyErrorsPropagate) {
  LogEntry empty = sample_writes();
  empty.writes.clear();
  EXPECT_EQ(seal_log_record(empty, log_dek_, Lsn(1), Term(1), random_).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(log_dek_.uses(), 0u);  // nothing sealed, no nonce spent

  Result<SecretKey> key = SecretKey::from_bytes(Bytes(kSecretKeyBytes, 0x34));
  ASSERT_TRUE(key.is_ok());
  DataKey once(DekRef{kLogTable.value, 5}, *key, 1);
  ASSERT_TRUE(seal_log_record(sample_writes(), once, Lsn(1), Term(1), random_).is_ok());
  EXPECT_EQ(seal_log_record(sample_writes(), once, Lsn(2), Term(1), random_).code(),
            Code::kKeyExhausted);
}

RC_GTEST_PROP(LogRecordProperty, SealedEntriesRoundTrip, ()) {
  const LogEntry e = gen_entry();
  const Lsn lsn(*rc::gen::inRange<uint64_t>(1, UINT64_MAX));
  Result<SecretKey> key = SecretKey::from_bytes(Bytes(kSecretKeyBytes, 0x41));
  RC_ASSERT(key.is_ok());
  DataKey dek(DekRef{kLogTable.value, 1}, *key);
  SimRandom random(*rc::gen::arbitrary<uint64_t>(), "seal");
  Result<Record> r = seal_log_record(e, dek, lsn, Term(1), random);
  RC_ASSERT(r.is_ok());
  DekLookup lookup = [&dek](const DekRef& ref) { return ref == dek.ref() ? &dek : nullptr; };
  Result<LogEntry> back = open_log_record(*r, lookup);
  RC_ASSERT(back.is_ok());
  RC_ASSERT(*back == e);
}

}  // namespace
}  // namespace quire
