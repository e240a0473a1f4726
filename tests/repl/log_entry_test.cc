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

LogEntry gen_entry() {
  LogEntry e;
  e.ts = Timestamp(*rc::gen::inRange<uint64_t>(1, UINT64_MAX));
  const int ops = *rc::gen::inRange(1, 20);
  if (*rc::gen::arbitrary<bool>()) {
    e.kind = LogEntryKind::kWrites;
    for (int i = 0; i < ops; i++) e.writes.push_back(gen_write());
  } else {
    e.kind = LogEntryKind::kKeystore;
    for (int i = 0; i < ops; i++) e.changes.push_back(gen_change());
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
  EXPECT_EQ(b[4], kLogEntryFormatVersion);
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

TEST(LogEntry, EveryTruncationIsCorruption) {
  for (const LogEntry& e : {sample_writes(), sample_keystore()}) {
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
  for (const LogEntry& e : {sample_writes(), sample_keystore()}) {
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
  EXPECT_EQ(with(4, 2), Code::kVersionTooNew);  // a newer format
  EXPECT_EQ(with(4, 0), Code::kCorruption);     // no such format
  EXPECT_EQ(with(5, 0), Code::kCorruption);     // kind
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
  w.put_u8(kLogEntryFormatVersion);
  w.put_u8(static_cast<uint8_t>(LogEntryKind::kWrites));
  w.put_fixed16(0);
  w.put_fixed64(9);
  w.put_fixed32(1);
  w.put_fixed64(kFirstUserTable);
  w.put_u8(2);
  w.put_string(std::string(kLogEntryKeyBytesMax + 1, 'k'));
  EXPECT_EQ(decode_log_entry(b).code(), Code::kCorruption);
}

TEST(LogEntry, EncodeRefusesEntriesOutOfBounds) {
  auto refused = [](const LogEntry& e) {
    Result<Bytes> r = encode_log_entry(e);
    return r.code() == Code::kInvalidArgument;
  };
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
  bad_kind.kind = static_cast<LogEntryKind>(4);
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

TEST_F(LogRecord, RoundTripsBothKinds) {
  for (const LogEntry& e : {sample_writes(), sample_keystore()}) {
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
