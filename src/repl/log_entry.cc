#include "repl/log_entry.h"

#include <algorithm>
#include <span>
#include <utility>

#include <fmt/format.h>

#include "engine/checkpoint_format.h"

namespace quire {

namespace {

constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDelete = 2;
// Header field offsets (see the layout in log_entry.h).
constexpr size_t kVersionOffset = 4;
constexpr size_t kKindOffset = 5;
constexpr size_t kReservedOffset = 6;
constexpr size_t kTsOffset = 8;
constexpr size_t kCountOffset = 16;
// A write's fixed fields, and the least one takes (a delete of an empty key).
constexpr size_t kTableIdBytes = 8;
constexpr size_t kOpBytes = 1;
constexpr size_t kWriteBytesMin = kTableIdBytes + kOpBytes + 1;
// A keystore entry's header is followed by the keystore version its changes apply to.
constexpr size_t kKeystoreBaseVersionBytes = 8;
// The log's records all live at page 0 of kLogTable; the LSN tells them apart.
constexpr PageId kLogPage{0};

// A batch's own fields ahead of its ops in a kBatches entry: its timestamp (the op count
// is a varint, counted apart).
constexpr size_t kBatchTsBytes = 8;

bool kind_valid(uint8_t k) {
  return k >= 1 && k <= 4;
}

// The one format version each kind is written in.
uint8_t kind_format_version(uint8_t kind) {
  return kind == static_cast<uint8_t>(LogEntryKind::kBatches) ? kLogEntryFormatVersion
                                                              : kLogEntryWritesFormatVersion;
}

PayloadPlace log_place(Lsn lsn) {
  return PayloadPlace{kLogTable, kLogPage, lsn, RecordType::kLog};
}

Status out_of_bounds(std::string what) {
  return invalid_argument(fmt::format("log_entry out of bounds: {}", what)).at("log_entry_encode");
}

Status malformed(std::string what, size_t offset) {
  return corruption(fmt::format("malformed log_entry: {}", what))
      .at("log_entry_decode")
      .with("offset", offset);
}

// Re-labels a ByteReader or KeystoreChange error as the log entry's, keeping its fields
// (the offset it stopped at), so every decode failure names "log_entry".
Status malformed_from(const Status& inner, std::string_view reading) {
  Status s(Code::kCorruption,
           fmt::format("malformed log_entry: {} ({})", reading, inner.message()));
  s.at("log_entry_decode");
  for (const StatusField& f : inner.fields()) s.with(f.key, f.value);
  return s;
}

size_t length_prefixed_size(size_t n) {
  return varint_length(n) + n;
}

// The encoded size of one write; its bounds are checked first, so the sum cannot wrap.
size_t write_size(const LogWrite& w) {
  size_t n = kTableIdBytes + kOpBytes + length_prefixed_size(w.key.size());
  if (w.value) n += length_prefixed_size(w.value->size());
  return n;
}

// The encoded size of writes whose bounds were checked.
size_t writes_size(std::span<const LogWrite> writes) {
  size_t n = 0;
  for (const LogWrite& w : writes) n += write_size(w);
  return n;
}

size_t batch_size(std::span<const LogWrite> writes) {
  return kBatchTsBytes + varint_length(writes.size()) + writes_size(writes);
}

ByteView as_bytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// A length-prefixed field, only in its canonical form: the shortest varint for its length.
Status get_canonical_string(ByteReader& r, size_t length_max, const char* what, std::string* out) {
  const size_t start = r.position();
  ByteView bytes;
  Status s = r.get_length_prefixed(&bytes, length_max);
  if (!s.is_ok()) return malformed_from(s, what);
  if (r.position() - start != length_prefixed_size(bytes.size())) {
    return malformed(fmt::format("{} length is an overlong varint", what), start);
  }
  out->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return Status::ok();
}

// ---- Decoding, step by step -------------------------------------------------------------

// The magic, then the format version before anything else, so a newer format reads as
// "too new", not corrupt. Whether the version is the one of the entry's kind is checked
// with the kind.
Status decode_magic_and_version(ByteReader& r, uint8_t* version) {
  uint32_t magic = 0;
  if (Status s = r.get_fixed32(&magic); !s.is_ok()) return malformed_from(s, "magic");
  if (magic != kLogEntryMagic) return malformed("bad magic", 0);
  if (Status s = r.get_u8(version); !s.is_ok()) return malformed_from(s, "format version");
  if (*version > kLogEntryFormatVersion) {
    return Status(Code::kVersionTooNew, "log_entry has a newer format version")
        .at("log_entry_decode")
        .with("format_version", *version);
  }
  if (*version < kLogEntryWritesFormatVersion) {
    return malformed("unknown format version", kVersionOffset).with("format_version", *version);
  }
  return Status::ok();
}

// The header after the version, read whole before any field is judged.
struct EntryHeader {
  uint8_t kind = 0;
  uint16_t reserved = 0;
  uint64_t ts = 0;
  uint32_t count = 0;
};

Status decode_header_fields(ByteReader& r, uint8_t version, EntryHeader* h) {
  if (Status s = r.get_u8(&h->kind); !s.is_ok()) return malformed_from(s, "kind");
  if (Status s = r.get_fixed16(&h->reserved); !s.is_ok()) return malformed_from(s, "reserved");
  if (Status s = r.get_fixed64(&h->ts); !s.is_ok()) return malformed_from(s, "commit ts");
  if (Status s = r.get_fixed32(&h->count); !s.is_ok()) return malformed_from(s, "op count");
  if (!kind_valid(h->kind)) return malformed("unknown kind", kKindOffset).with("kind", h->kind);
  if (version != kind_format_version(h->kind)) {
    return malformed("format version is not the one of the entry's kind", kVersionOffset)
        .with("format_version", version)
        .with("kind", h->kind);
  }
  if (h->reserved != 0) return malformed("nonzero reserved field", kReservedOffset);
  if (h->ts == 0) return malformed("commit timestamp is zero", kTsOffset);
  uint32_t count_min = 1;
  if (h->kind == static_cast<uint8_t>(LogEntryKind::kHeartbeat)) count_min = 0;
  if (h->kind == static_cast<uint8_t>(LogEntryKind::kBatches)) count_min = 2;
  const uint32_t count_max = count_min == 0 ? 0 : kLogEntryOpsMax;
  if (h->count < count_min || h->count > count_max) {
    return malformed("op count out of bounds", kCountOffset).with("count", h->count);
  }
  return Status::ok();
}

// One write: table id, op, key and (puts only) value, each field in its canonical form.
Status decode_write(ByteReader& r, uint32_t i, LogWrite* w) {
  const size_t start = r.position();
  uint8_t op = 0;
  if (Status s = r.get_fixed64(&w->table.value); !s.is_ok()) return malformed_from(s, "table id");
  if (Status s = r.get_u8(&op); !s.is_ok()) return malformed_from(s, "op");
  if (w->table.value < kFirstUserTable) {
    return malformed("write to a reserved table", start)
        .with("op", i)
        .with("table", w->table.value);
  }
  if (op != kOpPut && op != kOpDelete) {
    return malformed("unknown op", start + kTableIdBytes).with("op", i).with("code", op);
  }
  QUIRE_RETURN_IF_ERROR(get_canonical_string(r, kLogEntryKeyBytesMax, "key", &w->key));
  if (op == kOpPut) {
    w->value.emplace();
    QUIRE_RETURN_IF_ERROR(get_canonical_string(r, kLogEntryValueBytesMax, "value", &*w->value));
  }
  return Status::ok();
}

// `count` writes; `first` numbers the first one in errors (a kBatches entry numbers its
// ops across its batches).
Status decode_writes(ByteReader& r, uint32_t count, uint32_t first, std::vector<LogWrite>* out) {
  // Every write takes at least kWriteBytesMin, so the input bounds the reservation too.
  out->reserve(std::min<size_t>(count, r.remaining() / kWriteBytesMin));
  for (uint32_t i = 0; i < count; i++) {
    LogWrite w;
    QUIRE_RETURN_IF_ERROR(decode_write(r, first + i, &w));
    out->push_back(std::move(w));
  }
  return Status::ok();
}

// `count` batches, each at a timestamp above the one before, the last at the header's
// `ts`, all of them holding kLogEntryOpsMax ops at most.
Status decode_batches(ByteReader& r, uint32_t count, uint64_t ts, LogEntry* e) {
  // Every batch takes at least its timestamp, its count and one write.
  e->batches.reserve(std::min<size_t>(count, r.remaining() / (kBatchTsBytes + 1 + kWriteBytesMin)));
  uint32_t ops = 0;
  uint64_t prev_ts = 0;
  for (uint32_t i = 0; i < count; i++) {
    const size_t start = r.position();
    LogBatch b;
    if (Status s = r.get_fixed64(&b.ts.value); !s.is_ok()) {
      return malformed_from(s, "batch timestamp").with("batch", i);
    }
    if (b.ts.value <= prev_ts) {
      return malformed("batch timestamps do not strictly increase", start).with("batch", i);
    }
    prev_ts = b.ts.value;
    uint64_t n = 0;
    if (Status s = r.get_varint64(&n); !s.is_ok()) {
      return malformed_from(s, "batch op count").with("batch", i);
    }
    if (r.position() - start != kBatchTsBytes + varint_length(n)) {
      return malformed("batch op count is an overlong varint", start).with("batch", i);
    }
    if (n == 0 || n > kLogEntryOpsMax - ops) {
      return malformed("batch op count out of bounds", start).with("batch", i).with("count", n);
    }
    QUIRE_RETURN_IF_ERROR(decode_writes(r, static_cast<uint32_t>(n), ops, &b.writes));
    ops += static_cast<uint32_t>(n);
    e->batches.push_back(std::move(b));
  }
  if (prev_ts != ts) {
    return malformed("the last batch's timestamp is not the entry's", kTsOffset);
  }
  return Status::ok();
}

// The keystore base version and `count` changes, each only in its canonical encoding
// (`in` is the whole entry, which `r` reads).
Status decode_keystore_changes(ByteReader& r, ByteView in, uint32_t count, LogEntry* e) {
  if (Status s = r.get_fixed64(&e->keystore_base_version); !s.is_ok()) {
    return malformed_from(s, "keystore base version");
  }
  e->changes.reserve(std::min<size_t>(count, r.remaining()));
  for (uint32_t i = 0; i < count; i++) {
    const size_t start = r.position();
    Result<KeystoreChange> c = KeystoreChange::decode(r);
    if (!c.is_ok()) return malformed_from(c.status(), "keystore change").with("op", i);
    // KeystoreChange's varints accept overlong forms; only the canonical one is an entry.
    Bytes again;
    ByteWriter aw(again);
    c->encode(aw);
    const ByteView consumed = in.subspan(start, r.position() - start);
    if (!std::equal(again.begin(), again.end(), consumed.begin(), consumed.end())) {
      return malformed("keystore change is not in canonical form", start).with("op", i);
    }
    e->changes.push_back(std::move(c).value());
  }
  return Status::ok();
}

// ---- Bounds and encoding shared by every kind -------------------------------------------

// One write's bounds; `i` numbers it in errors.
Status check_write(const LogWrite& w, size_t i) {
  if (w.table.value < kFirstUserTable) {
    return out_of_bounds("table id is reserved").with("op", i).with("table", w.table.value);
  }
  if (w.key.size() > kLogEntryKeyBytesMax) {
    return out_of_bounds("key too long").with("op", i).with("key_bytes", w.key.size());
  }
  if (w.value && w.value->size() > kLogEntryValueBytesMax) {
    return out_of_bounds("value too long").with("op", i).with("value_bytes", w.value->size());
  }
  return Status::ok();
}

// Checks `writes` (numbered from `first` in errors) and adds their size to `*total`,
// refusing once it passes kLogEntryBytesMax.
Status check_writes(std::span<const LogWrite> writes, size_t first, size_t* total) {
  for (size_t i = 0; i < writes.size(); i++) {
    QUIRE_RETURN_IF_ERROR(check_write(writes[i], first + i));
    *total += write_size(writes[i]);
    // Checked per op so a huge batch is refused before its size is summed any further.
    if (*total > kLogEntryBytesMax) {
      return out_of_bounds("entry too large")
          .with("op", first + i)
          .with("bytes_max", kLogEntryBytesMax);
    }
  }
  return Status::ok();
}

// A batch of a kBatches entry, wherever its writes live.
struct BatchView {
  Timestamp ts;
  std::span<const LogWrite> writes;
};

// The bounds of a kBatches entry's batches (the header comment); the entry's encoded size.
Result<size_t> check_batches(std::span<const BatchView> batches) {
  if (batches.size() < 2) {
    return out_of_bounds("a kBatches entry holds two or more batches")
        .with("batches", batches.size());
  }
  size_t total = kLogEntryHeaderBytes;
  size_t ops = 0;
  uint64_t prev_ts = 0;
  for (size_t b = 0; b < batches.size(); b++) {
    const BatchView& batch = batches[b];
    if (batch.ts.value <= prev_ts) {
      return out_of_bounds("batch timestamps do not strictly increase").with("batch", b);
    }
    prev_ts = batch.ts.value;
    if (batch.writes.empty()) return out_of_bounds("empty write batch").with("batch", b);
    if (batch.writes.size() > kLogEntryOpsMax - ops) {
      return out_of_bounds("too many ops").with("batch", b).with("ops_max", kLogEntryOpsMax);
    }
    total += kBatchTsBytes + varint_length(batch.writes.size());
    QUIRE_RETURN_IF_ERROR(check_writes(batch.writes, ops, &total));
    ops += batch.writes.size();
  }
  return total;
}

void put_header(ByteWriter& w, LogEntryKind kind, Timestamp ts, size_t count) {
  w.put_fixed32(kLogEntryMagic);
  w.put_u8(kind_format_version(static_cast<uint8_t>(kind)));
  w.put_u8(static_cast<uint8_t>(kind));
  w.put_fixed16(0);
  w.put_fixed64(ts.value);
  w.put_fixed32(static_cast<uint32_t>(count));
}

void put_writes(ByteWriter& w, std::span<const LogWrite> writes) {
  for (const LogWrite& op : writes) {
    w.put_fixed64(op.table.value);
    w.put_u8(op.value ? kOpPut : kOpDelete);
    w.put_length_prefixed(as_bytes(op.key));
    if (op.value) w.put_length_prefixed(as_bytes(*op.value));
  }
}

// A kBatches entry of batches check_batches accepted, `size` bytes long.
Bytes encode_batches(std::span<const BatchView> batches, size_t size) {
  Bytes out;
  out.reserve(size);
  ByteWriter w(out);
  put_header(w, LogEntryKind::kBatches, batches.back().ts, batches.size());
  for (const BatchView& b : batches) {
    w.put_fixed64(b.ts.value);
    w.put_varint64(b.writes.size());
    put_writes(w, b.writes);
  }
  QUIRE_ASSERT(out.size() == size && out.size() <= kLogEntryBytesMax);
  return out;
}

std::vector<BatchView> views_of(const std::vector<LogBatch>& batches) {
  std::vector<BatchView> views;
  views.reserve(batches.size());
  for (const LogBatch& b : batches) views.push_back({b.ts, b.writes});
  return views;
}

// A kBatches entry's own bounds (validate_log_entry checked its kind); its encoded size.
Result<size_t> check_batches_entry(const LogEntry& e, std::span<const BatchView> views) {
  if (!e.writes.empty() || !e.changes.empty() || e.keystore_base_version != 0) {
    return out_of_bounds("a kBatches entry carries only batches");
  }
  Result<size_t> size = check_batches(views);
  if (!size.is_ok()) return size;
  if (e.ts != e.batches.back().ts) {
    return out_of_bounds("the entry's timestamp is not its last batch's");
  }
  return size;
}

Status check_log_dek(const DataKey& log_dek, Lsn lsn) {
  if (log_dek.ref().id == kLogTable.value) return Status::ok();
  return invalid_argument("log records are sealed under the log's DEK")
      .at("seal_log_record")
      .with("dek_id", log_dek.ref().id)
      .with("lsn", lsn.value);
}

// A LOG record of `plain`, sealed at `lsn`.
Result<Record> seal_plain(ByteView plain, DataKey& log_dek, Lsn lsn, Term term, Random& random) {
  Record r;
  r.type = RecordType::kLog;
  r.table = kLogTable;
  r.page = kLogPage;
  r.lsn = lsn;
  r.term = term;
  QUIRE_RETURN_IF_ERROR(log_dek.seal(log_place(lsn), plain, random, r.payload));
  return r;
}

}  // namespace

Status validate_log_entry(const LogEntry& e) {
  if (!kind_valid(static_cast<uint8_t>(e.kind))) {
    return out_of_bounds("unknown kind").with("kind", static_cast<uint64_t>(e.kind));
  }
  if (e.ts.is_zero()) return out_of_bounds("commit timestamp is zero");
  if (e.kind == LogEntryKind::kBatches) {
    return check_batches_entry(e, views_of(e.batches)).status();
  }
  if (!e.batches.empty()) return out_of_bounds("only a kBatches entry carries batches");
  if (e.kind == LogEntryKind::kHeartbeat) {
    if (!e.writes.empty() || !e.changes.empty() || e.keystore_base_version != 0) {
      return out_of_bounds("a heartbeat carries nothing");
    }
    return Status::ok();
  }
  const bool writes = e.kind == LogEntryKind::kWrites;
  if (writes && e.keystore_base_version != 0)
    return out_of_bounds("a write batch carries a keystore version");
  const size_t ops = writes ? e.writes.size() : e.changes.size();
  const size_t others = writes ? e.changes.size() : e.writes.size();
  if (others != 0) {
    return out_of_bounds(writes ? "a write batch carries keystore changes"
                                : "a keystore entry carries writes");
  }
  if (ops == 0) return out_of_bounds(writes ? "empty write batch" : "no keystore changes");
  if (ops > kLogEntryOpsMax) {
    return out_of_bounds("too many ops").with("ops", ops).with("ops_max", kLogEntryOpsMax);
  }

  size_t total = kLogEntryHeaderBytes + (writes ? 0 : kKeystoreBaseVersionBytes);
  QUIRE_RETURN_IF_ERROR(check_writes(e.writes, 0, &total));
  for (size_t i = 0; i < e.changes.size(); i++) {
    const KeystoreChange& c = e.changes[i];
    if (c.wrapped.blob.size() > kLogEntryBytesMax) {
      return out_of_bounds("entry too large").with("op", i).with("bytes_max", kLogEntryBytesMax);
    }
    // KeystoreChange owns its encoding and its decoder's bounds (type, blob size); asking
    // the decoder is the one way to know the change will read back.
    Bytes scratch;
    ByteWriter sw(scratch);
    c.encode(sw);
    ByteReader sr(scratch);
    Result<KeystoreChange> back = KeystoreChange::decode(sr);
    if (!back.is_ok() || !sr.at_end()) {
      return out_of_bounds(fmt::format("keystore change does not decode: {}",
                                       back.is_ok() ? "trailing bytes" : back.status().message()))
          .with("op", i);
    }
    total += scratch.size();
    if (total > kLogEntryBytesMax) {
      return out_of_bounds("entry too large").with("op", i).with("bytes_max", kLogEntryBytesMax);
    }
  }
  return Status::ok();
}

Result<Bytes> encode_log_entry(const LogEntry& e) {
  if (e.kind == LogEntryKind::kBatches && !e.ts.is_zero()) {
    // validate_log_entry's kBatches part, whose size the encoding reserves.
    const std::vector<BatchView> views = views_of(e.batches);
    Result<size_t> size = check_batches_entry(e, views);
    if (!size.is_ok()) return size.status();
    return encode_batches(views, *size);
  }
  QUIRE_RETURN_IF_ERROR(validate_log_entry(e));
  Bytes out;
  ByteWriter w(out);
  switch (e.kind) {
    case LogEntryKind::kWrites:
      out.reserve(kLogEntryHeaderBytes + writes_size(e.writes));
      put_header(w, e.kind, e.ts, e.writes.size());
      put_writes(w, e.writes);
      break;
    case LogEntryKind::kKeystore:
      put_header(w, e.kind, e.ts, e.changes.size());
      w.put_fixed64(e.keystore_base_version);
      for (const KeystoreChange& c : e.changes) c.encode(w);
      break;
    case LogEntryKind::kHeartbeat:
      put_header(w, e.kind, e.ts, 0);
      break;
    case LogEntryKind::kBatches:
      QUIRE_UNREACHABLE("encoded above");
  }
  QUIRE_ASSERT(out.size() <= kLogEntryBytesMax);
  return out;
}

Result<LogEntry> decode_log_entry(ByteView in) {
  if (in.size() > kLogEntryBytesMax) {
    return malformed("longer than the entry bound", 0).with("size", in.size());
  }
  ByteReader r(in);
  uint8_t version = 0;
  QUIRE_RETURN_IF_ERROR(decode_magic_and_version(r, &version));
  EntryHeader h;
  QUIRE_RETURN_IF_ERROR(decode_header_fields(r, version, &h));
  LogEntry e;
  e.kind = static_cast<LogEntryKind>(h.kind);
  e.ts = Timestamp(h.ts);
  switch (e.kind) {
    case LogEntryKind::kHeartbeat:
      break;  // nothing follows the header
    case LogEntryKind::kWrites:
      QUIRE_RETURN_IF_ERROR(decode_writes(r, h.count, 0, &e.writes));
      break;
    case LogEntryKind::kBatches:
      QUIRE_RETURN_IF_ERROR(decode_batches(r, h.count, h.ts, &e));
      break;
    case LogEntryKind::kKeystore:
      QUIRE_RETURN_IF_ERROR(decode_keystore_changes(r, in, h.count, &e));
      break;
  }
  if (!r.at_end()) {
    return malformed("trailing bytes", r.position()).with("trailing", r.remaining());
  }
  return e;
}

Result<Record> seal_log_record(const LogEntry& e, DataKey& log_dek, Lsn lsn, Term term,
                               Random& random) {
  QUIRE_RETURN_IF_ERROR(check_log_dek(log_dek, lsn));
  Result<Bytes> plain = encode_log_entry(e);
  if (!plain.is_ok()) return std::move(plain).take_status().with("lsn", lsn.value);
  return seal_plain(*plain, log_dek, lsn, term, random);
}

size_t log_batch_bytes(const LogEntry& writes) {
  return batch_size(writes.writes);
}

Result<Record> seal_log_batches(std::span<const LogEntry* const> batches, DataKey& log_dek, Lsn lsn,
                                Term term, Random& random) {
  QUIRE_RETURN_IF_ERROR(check_log_dek(log_dek, lsn));
  std::vector<BatchView> views;
  views.reserve(batches.size());
  for (size_t b = 0; b < batches.size(); b++) {
    const LogEntry& e = *batches[b];
    if (e.kind != LogEntryKind::kWrites || !e.changes.empty() || !e.batches.empty() ||
        e.keystore_base_version != 0) {
      return out_of_bounds("only write batches merge into a kBatches entry")
          .with("batch", b)
          .with("lsn", lsn.value);
    }
    views.push_back({e.ts, e.writes});
  }
  Result<size_t> size = check_batches(views);
  if (!size.is_ok()) return std::move(size).take_status().with("lsn", lsn.value);
  return seal_plain(encode_batches(views, *size), log_dek, lsn, term, random);
}

Result<LogEntry> open_log_record(const Record& r, const DekLookup& lookup) {
  if (r.type != RecordType::kLog || r.table != kLogTable) {
    return corruption("not a log record")
        .at("open_log_record")
        .with("lsn", r.lsn.value)
        .with("type", static_cast<uint64_t>(r.type))
        .with("table", r.table.value);
  }
  // The AAD binds the DEK id too, but a table's DEK must never open a log entry even if a
  // writer once misused it, so the id is checked before any key is looked up.
  Result<DekRef> dek = sealed_dek(r.payload);
  if (dek.is_ok() && dek->id != kLogTable.value) {
    return corruption("log record sealed under a DEK that is not the log's")
        .at("open_log_record")
        .with("lsn", r.lsn.value)
        .with("dek_id", dek->id);
  }
  Result<Bytes> plain = open_sealed(lookup, log_place(r.lsn), r.payload);
  if (!plain.is_ok()) return std::move(plain).take_status();
  Result<LogEntry> e = decode_log_entry(*plain);
  if (!e.is_ok()) return std::move(e).take_status().with("lsn", r.lsn.value);
  return e;
}

}  // namespace quire
