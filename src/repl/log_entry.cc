#include "repl/log_entry.h"

#include <algorithm>
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

bool kind_valid(uint8_t k) {
  return k >= 1 && k <= 3;
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
// "too new", not corrupt.
Status decode_magic_and_version(ByteReader& r) {
  uint32_t magic = 0;
  if (Status s = r.get_fixed32(&magic); !s.is_ok()) return malformed_from(s, "magic");
  if (magic != kLogEntryMagic) return malformed("bad magic", 0);
  uint8_t version = 0;
  if (Status s = r.get_u8(&version); !s.is_ok()) return malformed_from(s, "format version");
  if (version > kLogEntryFormatVersion) {
    return Status(Code::kVersionTooNew, "log_entry has a newer format version")
        .at("log_entry_decode")
        .with("format_version", version);
  }
  if (version != kLogEntryFormatVersion) {
    return malformed("unknown format version", kVersionOffset).with("format_version", version);
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

Status decode_header_fields(ByteReader& r, EntryHeader* h) {
  if (Status s = r.get_u8(&h->kind); !s.is_ok()) return malformed_from(s, "kind");
  if (Status s = r.get_fixed16(&h->reserved); !s.is_ok()) return malformed_from(s, "reserved");
  if (Status s = r.get_fixed64(&h->ts); !s.is_ok()) return malformed_from(s, "commit ts");
  if (Status s = r.get_fixed32(&h->count); !s.is_ok()) return malformed_from(s, "op count");
  if (!kind_valid(h->kind)) return malformed("unknown kind", kKindOffset).with("kind", h->kind);
  if (h->reserved != 0) return malformed("nonzero reserved field", kReservedOffset);
  if (h->ts == 0) return malformed("commit timestamp is zero", kTsOffset);
  const bool heartbeat = h->kind == static_cast<uint8_t>(LogEntryKind::kHeartbeat);
  if (heartbeat ? h->count != 0 : (h->count == 0 || h->count > kLogEntryOpsMax)) {
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

Status decode_writes(ByteReader& r, uint32_t count, LogEntry* e) {
  // Every write takes at least kWriteBytesMin, so the input bounds the reservation too.
  e->writes.reserve(std::min<size_t>(count, r.remaining() / kWriteBytesMin));
  for (uint32_t i = 0; i < count; i++) {
    LogWrite w;
    QUIRE_RETURN_IF_ERROR(decode_write(r, i, &w));
    e->writes.push_back(std::move(w));
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

}  // namespace

Status validate_log_entry(const LogEntry& e) {
  if (!kind_valid(static_cast<uint8_t>(e.kind))) {
    return out_of_bounds("unknown kind").with("kind", static_cast<uint64_t>(e.kind));
  }
  if (e.ts.is_zero()) return out_of_bounds("commit timestamp is zero");
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
  for (size_t i = 0; i < e.writes.size(); i++) {
    const LogWrite& w = e.writes[i];
    if (w.table.value < kFirstUserTable) {
      return out_of_bounds("table id is reserved").with("op", i).with("table", w.table.value);
    }
    if (w.key.size() > kLogEntryKeyBytesMax) {
      return out_of_bounds("key too long").with("op", i).with("key_bytes", w.key.size());
    }
    if (w.value && w.value->size() > kLogEntryValueBytesMax) {
      return out_of_bounds("value too long").with("op", i).with("value_bytes", w.value->size());
    }
    total += write_size(w);
    // Checked per op so a huge batch is refused before its size is summed any further.
    if (total > kLogEntryBytesMax) {
      return out_of_bounds("entry too large").with("op", i).with("bytes_max", kLogEntryBytesMax);
    }
  }
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
  QUIRE_RETURN_IF_ERROR(validate_log_entry(e));
  Bytes out;
  ByteWriter w(out);
  w.put_fixed32(kLogEntryMagic);
  w.put_u8(kLogEntryFormatVersion);
  w.put_u8(static_cast<uint8_t>(e.kind));
  w.put_fixed16(0);
  w.put_fixed64(e.ts.value);
  if (e.kind == LogEntryKind::kWrites) {
    w.put_fixed32(static_cast<uint32_t>(e.writes.size()));
    for (const LogWrite& op : e.writes) {
      w.put_fixed64(op.table.value);
      w.put_u8(op.value ? kOpPut : kOpDelete);
      w.put_length_prefixed(as_bytes(op.key));
      if (op.value) w.put_length_prefixed(as_bytes(*op.value));
    }
  } else if (e.kind == LogEntryKind::kKeystore) {
    w.put_fixed32(static_cast<uint32_t>(e.changes.size()));
    w.put_fixed64(e.keystore_base_version);
    for (const KeystoreChange& c : e.changes) c.encode(w);
  } else {
    w.put_fixed32(0);
  }
  QUIRE_ASSERT(out.size() <= kLogEntryBytesMax);
  return out;
}

Result<LogEntry> decode_log_entry(ByteView in) {
  if (in.size() > kLogEntryBytesMax) {
    return malformed("longer than the entry bound", 0).with("size", in.size());
  }
  ByteReader r(in);
  QUIRE_RETURN_IF_ERROR(decode_magic_and_version(r));
  EntryHeader h;
  QUIRE_RETURN_IF_ERROR(decode_header_fields(r, &h));
  LogEntry e;
  e.kind = static_cast<LogEntryKind>(h.kind);
  e.ts = Timestamp(h.ts);
  switch (e.kind) {
    case LogEntryKind::kHeartbeat:
      break;  // nothing follows the header
    case LogEntryKind::kWrites:
      QUIRE_RETURN_IF_ERROR(decode_writes(r, h.count, &e));
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
  if (log_dek.ref().id != kLogTable.value) {
    return invalid_argument("log records are sealed under the log's DEK")
        .at("seal_log_record")
        .with("dek_id", log_dek.ref().id)
        .with("lsn", lsn.value);
  }
  Result<Bytes> plain = encode_log_entry(e);
  if (!plain.is_ok()) return std::move(plain).take_status().with("lsn", lsn.value);
  Record r;
  r.type = RecordType::kLog;
  r.table = kLogTable;
  r.page = kLogPage;
  r.lsn = lsn;
  r.term = term;
  QUIRE_RETURN_IF_ERROR(log_dek.seal(log_place(lsn), *plain, random, r.payload));
  return r;
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
