#include "engine/checkpoint_format.h"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/crc32c.h"

namespace quire {

namespace {

Status metadata_corruption(std::string what) {
  return Status(Code::kCorruption, "metadata page: " + std::move(what)).at("metadata_page");
}

}  // namespace

Bytes encode_metadata_page(const CheckpointMetadata& m) {
  Bytes out(kMetadataHeaderBytes);
  ByteWriter w(out);
  w.put_fixed64(m.checkpoint_ts.value);
  w.put_fixed64(m.oldest_ts.value);
  w.put_fixed64(m.largest_page_id.value);
  w.put_fixed64(m.database_size);
  w.put_fixed64(m.log_lsn.value);
  w.put_fixed64(m.keystore.page_lsn.value);
  w.put_fixed64(m.keystore.version);
  w.put_fixed64(m.keystore.push_ts.value);
  w.put_bytes(ByteView(m.keystore.digest.data(), m.keystore.digest.size()));
  w.put_fixed32(static_cast<uint32_t>(m.tables.size()));
  for (const TableRoot& t : m.tables) {
    w.put_fixed64(t.table.value);
    w.put_fixed64(t.root_page.value);
    w.put_fixed64(t.root_lsn.value);
    w.put_fixed64(t.pages);
    w.put_fixed64(t.bytes);
  }
  encode_fixed32(out.data(), kMetadataMagic);
  out[4] = static_cast<uint8_t>(m.version);
  out[5] = static_cast<uint8_t>(m.compatible_version);
  encode_fixed16(out.data() + 6, 0);
  encode_fixed32(out.data() + 8, static_cast<uint32_t>(out.size() - kMetadataHeaderBytes));
  encode_fixed32(out.data() + 12, 0);
  encode_fixed32(out.data() + 12, crc32c::mask(crc32c::value(out.data(), out.size())));
  return out;
}

Result<CheckpointMetadata> decode_metadata_page(ByteView page) {
  if (page.size() < kMetadataHeaderBytes) return metadata_corruption("shorter than its header");
  if (decode_fixed32(page.data()) != kMetadataMagic) return metadata_corruption("bad magic");
  CheckpointMetadata m;
  m.version = page[4];
  m.compatible_version = page[5];
  const uint32_t body = decode_fixed32(page.data() + 8);
  if (body != page.size() - kMetadataHeaderBytes)
    return metadata_corruption("body size does not match");
  Bytes copy(page.begin(), page.end());
  encode_fixed32(copy.data() + 12, 0);
  if (crc32c::mask(crc32c::value(copy.data(), copy.size())) != decode_fixed32(page.data() + 12)) {
    return metadata_corruption("checksum mismatch");
  }
  if (m.compatible_version > kCheckpointVersion) {
    return Status(Code::kVersionTooNew, "metadata page needs a newer reader")
        .at("metadata_page")
        .with("compatible_version", m.compatible_version);
  }
  if (m.version < m.compatible_version || decode_fixed16(page.data() + 6) != 0) {
    return metadata_corruption("bad version fields");
  }
  ByteReader r(page.subspan(kMetadataHeaderBytes));
  uint64_t ts = 0, oldest = 0, largest = 0, log_lsn = 0, ks_lsn = 0, ks_push = 0;
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&ts));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&oldest));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&largest));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&m.database_size));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&log_lsn));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&ks_lsn));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&m.keystore.version));
  QUIRE_RETURN_IF_ERROR(r.get_fixed64(&ks_push));
  ByteView digest;
  QUIRE_RETURN_IF_ERROR(r.get_bytes(m.keystore.digest.size(), &digest));
  std::memcpy(m.keystore.digest.data(), digest.data(), digest.size());
  m.checkpoint_ts = Timestamp(ts);
  m.oldest_ts = Timestamp(oldest);
  m.largest_page_id = PageId(largest);
  m.log_lsn = Lsn(log_lsn);
  m.keystore.page_lsn = Lsn(ks_lsn);
  m.keystore.push_ts = Timestamp(ks_push);
  uint32_t n = 0;
  QUIRE_RETURN_IF_ERROR(r.get_fixed32(&n));
  if (n > kMetadataTablesMax || static_cast<size_t>(n) * 40 != r.remaining()) {
    return metadata_corruption("bad table count");
  }
  for (uint32_t i = 0; i < n; i++) {
    TableRoot t;
    uint64_t id = 0, page_id = 0, lsn = 0;
    QUIRE_RETURN_IF_ERROR(r.get_fixed64(&id));
    QUIRE_RETURN_IF_ERROR(r.get_fixed64(&page_id));
    QUIRE_RETURN_IF_ERROR(r.get_fixed64(&lsn));
    QUIRE_RETURN_IF_ERROR(r.get_fixed64(&t.pages));
    QUIRE_RETURN_IF_ERROR(r.get_fixed64(&t.bytes));
    t.table = TableId(id);
    t.root_page = PageId(page_id);
    t.root_lsn = Lsn(lsn);
    if (!m.tables.empty() && m.tables.back().table >= t.table)
      return metadata_corruption("tables out of order");
    if (t.root_page.is_zero() != t.root_lsn.is_zero())
      return metadata_corruption("half a root reference");
    if (t.root_page > m.largest_page_id)
      return metadata_corruption("root page above the largest page id");
    m.tables.push_back(t);
  }
  return m;
}

std::string encode_completion(const CheckpointCompletion& c) {
  return fmt::format(
      "metadata_lsn={},metadata_checksum={:08x},database_size={},version={},compatible_version={},"
      "checkpoint_ts={}",
      c.metadata_lsn.value, c.metadata_checksum, c.database_size, c.version, c.compatible_version,
      c.checkpoint_ts.value);
}

namespace {

Status completion_corruption(std::string what) {
  return Status(Code::kCorruption, "checkpoint completion: " + std::move(what))
      .at("completion_record");
}

bool parse_u64(std::string_view s, int base, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<CheckpointCompletion> decode_completion(std::string_view text) {
  constexpr size_t kTextMax = 4096;
  if (text.size() > kTextMax) return completion_corruption("too long");
  enum Field { kMetaLsn, kChecksum, kSize, kVersion, kCompat, kTs, kFieldCount };
  static constexpr std::string_view kNames[kFieldCount] = {
      "metadata_lsn", "metadata_checksum",  "database_size",
      "version",      "compatible_version", "checkpoint_ts"};
  uint64_t values[kFieldCount] = {};
  bool seen[kFieldCount] = {};
  std::vector<std::string> unknown;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return completion_corruption("an item without '='");
    std::string_view key = item.substr(0, eq);
    std::string_view val = item.substr(eq + 1);
    int f = -1;
    for (int i = 0; i < kFieldCount; i++) {
      if (kNames[i] == key) f = i;
    }
    if (f < 0) {
      unknown.emplace_back(key);
    } else {
      if (seen[f]) return completion_corruption(fmt::format("{} given twice", key));
      if (!parse_u64(val, f == kChecksum ? 16 : 10, &values[f])) {
        return completion_corruption(fmt::format("{} is not a number", key));
      }
      seen[f] = true;
    }
    pos = end + 1;
  }
  for (int i = 0; i < kFieldCount; i++) {
    if (!seen[i]) return completion_corruption(fmt::format("{} missing", kNames[i]));
  }
  CheckpointCompletion c;
  if (values[kChecksum] > 0xffffffffu || values[kVersion] > 0xffffffffu ||
      values[kCompat] > 0xffffffffu) {
    return completion_corruption("a field out of range");
  }
  c.metadata_lsn = Lsn(values[kMetaLsn]);
  c.metadata_checksum = static_cast<uint32_t>(values[kChecksum]);
  c.database_size = values[kSize];
  c.version = static_cast<uint32_t>(values[kVersion]);
  c.compatible_version = static_cast<uint32_t>(values[kCompat]);
  c.checkpoint_ts = Timestamp(values[kTs]);
  if (!unknown.empty() && c.version <= kCheckpointVersion) {
    return completion_corruption(fmt::format("unknown field {}", unknown.front()));
  }
  if (c.metadata_lsn.is_zero()) return completion_corruption("metadata_lsn is 0");
  return c;
}

}  // namespace quire
