#include "pagelog/record.h"

#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "base/crc32c.h"

namespace quire {

std::string_view record_type_name(RecordType t) {
  switch (t) {
    case RecordType::kLog:
      return "LOG";
    case RecordType::kPage:
      return "PAGE";
    case RecordType::kDelta:
      return "DELTA";
    case RecordType::kDiscard:
      return "DISCARD";
    case RecordType::kKeystore:
      return "KEYSTORE";
    case RecordType::kMetadata:
      return "METADATA";
    case RecordType::kCheckpointComplete:
      return "CHECKPOINT_COMPLETE";
    case RecordType::kAbandon:
      return "ABANDON";
    case RecordType::kTerm:
      return "TERM";
  }
  return "UNKNOWN";
}

bool record_type_valid(uint8_t t) {
  return t >= static_cast<uint8_t>(RecordType::kLog) &&
         t <= static_cast<uint8_t>(RecordType::kTerm);
}

bool record_type_is_internal(RecordType t) {
  return t == RecordType::kAbandon || t == RecordType::kTerm;
}

bool record_type_is_page(RecordType t) {
  return t == RecordType::kPage || t == RecordType::kDelta || t == RecordType::kDiscard ||
         t == RecordType::kKeystore || t == RecordType::kMetadata;
}

namespace {

uint32_t frame_crc(const uint8_t* header, ByteView payload) {
  uint8_t h[kRecordHeaderBytes];
  std::memcpy(h, header, kRecordHeaderBytes);
  std::memset(h + kRecordCrcOffset, 0, 4);
  uint32_t crc = crc32c::extend(0, h, kRecordHeaderBytes);
  crc = crc32c::extend(crc, payload.data(), payload.size());
  return crc32c::mask(crc);
}

}  // namespace

void encode_record(const Record& r, Bytes& out) {
  QUIRE_ASSERT(r.payload.size() <= kRecordPayloadMax);
  size_t start = out.size();
  out.resize(start + kRecordHeaderBytes);
  uint8_t* h = out.data() + start;
  encode_fixed32(h + 0, kRecordMagic);
  h[4] = kRecordFormatVersion;
  h[5] = static_cast<uint8_t>(r.type);
  encode_fixed16(h + 6, r.flags);
  encode_fixed32(h + 8, static_cast<uint32_t>(r.payload.size()));
  encode_fixed32(h + kRecordCrcOffset, 0);
  encode_fixed64(h + 16, r.table.value);
  encode_fixed64(h + 24, r.page.value);
  encode_fixed64(h + 32, r.lsn.value);
  encode_fixed64(h + 40, r.base_lsn.value);
  encode_fixed64(h + 48, r.backlink_lsn.value);
  encode_fixed64(h + 56, r.term.value);
  encode_fixed64(h + 64, r.prev_lsn.value);
  out.insert(out.end(), r.payload.begin(), r.payload.end());
  h = out.data() + start;  // insert may have moved the buffer
  encode_fixed32(h + kRecordCrcOffset,
                 frame_crc(h, ByteView(out).subspan(start + kRecordHeaderBytes)));
}

Result<RecordHeader> decode_record_header(ByteView in) {
  if (in.size() < 4)
    return Status(Code::kCorruption, "truncated record header").with("bytes", in.size());
  if (decode_fixed32(in.data()) != kRecordMagic) return corruption("bad record magic");
  if (in.size() < kRecordHeaderBytes) {
    return Status(Code::kCorruption, "truncated record header").with("bytes", in.size());
  }
  const uint8_t* h = in.data();
  if (h[4] != kRecordFormatVersion) {
    return Status(
        h[4] > kRecordFormatVersion ? Code::kVersionTooNew : Code::kCorruption,
        fmt::format("record format version {} (this build reads {})", h[4], kRecordFormatVersion));
  }
  if (!record_type_valid(h[5]))
    return Status(Code::kCorruption, "unknown record type").with("type", h[5]);
  RecordHeader r;
  r.type = static_cast<RecordType>(h[5]);
  r.flags = decode_fixed16(h + 6);
  r.payload_size = decode_fixed32(h + 8);
  r.crc = decode_fixed32(h + kRecordCrcOffset);
  r.table = TableId(decode_fixed64(h + 16));
  r.page = PageId(decode_fixed64(h + 24));
  r.lsn = Lsn(decode_fixed64(h + 32));
  r.base_lsn = Lsn(decode_fixed64(h + 40));
  r.backlink_lsn = Lsn(decode_fixed64(h + 48));
  r.term = Term(decode_fixed64(h + 56));
  r.prev_lsn = Lsn(decode_fixed64(h + 64));
  if (r.payload_size > kRecordPayloadMax) {
    return Status(Code::kCorruption, "record payload length out of bounds")
        .with("length", r.payload_size);
  }
  return r;
}

DecodeOutcome check_record(ByteView in, RecordHeader* header_out, size_t* size_out, Status* error) {
  // A prefix of the magic is a torn header; anything else that short is not a record.
  if (in.size() < kRecordHeaderBytes) {
    uint8_t magic[4];
    encode_fixed32(magic, kRecordMagic);
    size_t n = std::min<size_t>(in.size(), 4);
    // An empty view may have a null data(), which memcmp must not be given even for n == 0.
    if (n > 0 && std::memcmp(in.data(), magic, n) != 0) {
      if (error) *error = corruption("bad record magic");
      return DecodeOutcome::kCorrupt;
    }
    if (in.size() > 4 && in[4] != kRecordFormatVersion) {
      if (error) {
        *error = Status(in[4] > kRecordFormatVersion ? Code::kVersionTooNew : Code::kCorruption,
                        "bad record format version");
      }
      return DecodeOutcome::kCorrupt;
    }
    if (in.size() > 5 && !record_type_valid(in[5])) {
      if (error) *error = corruption("unknown record type");
      return DecodeOutcome::kCorrupt;
    }
    return DecodeOutcome::kTruncated;
  }
  auto header = decode_record_header(in);
  if (!header.is_ok()) {
    if (error) *error = header.status();
    return DecodeOutcome::kCorrupt;
  }
  size_t total = kRecordHeaderBytes + header->payload_size;
  if (in.size() < total) return DecodeOutcome::kTruncated;
  if (frame_crc(in.data(), in.subspan(kRecordHeaderBytes, header->payload_size)) != header->crc) {
    if (error)
      *error = Status(Code::kCorruption, "record checksum mismatch").with("lsn", header->lsn.value);
    return DecodeOutcome::kCorrupt;
  }
  if (header_out) *header_out = *header;
  if (size_out) *size_out = total;
  return DecodeOutcome::kOk;
}

DecodedRecord decode_record(ByteView in) {
  DecodedRecord d;
  RecordHeader h{};
  d.outcome = check_record(in, &h, &d.size, &d.error);
  if (d.outcome != DecodeOutcome::kOk) return d;
  Record& r = d.record;
  r.type = h.type;
  r.flags = h.flags;
  r.table = h.table;
  r.page = h.page;
  r.lsn = h.lsn;
  r.base_lsn = h.base_lsn;
  r.backlink_lsn = h.backlink_lsn;
  r.term = h.term;
  r.prev_lsn = h.prev_lsn;
  ByteView payload = in.subspan(kRecordHeaderBytes, h.payload_size);
  r.payload.assign(payload.begin(), payload.end());
  return d;
}

Status validate_record(const Record& r) {
  if (!record_type_valid(static_cast<uint8_t>(r.type)) || record_type_is_internal(r.type)) {
    return Status(Code::kInvalidArgument, "record type not writable")
        .with("type", static_cast<uint64_t>(r.type));
  }
  if (r.lsn.is_zero()) return invalid_argument("record lsn is 0");
  const std::pair<const char*, uint64_t> bounded[] = {{"lsn", r.lsn.value},
                                                      {"base_lsn", r.base_lsn.value},
                                                      {"backlink_lsn", r.backlink_lsn.value},
                                                      {"prev_lsn", r.prev_lsn.value},
                                                      {"term", r.term.value}};
  for (const auto& [field, value] : bounded) {
    if (value >= kLsnTermLimit) {
      return Status(Code::kInvalidArgument, fmt::format("record {} at or above 2^63", field))
          .with("lsn", r.lsn.value)
          .with(field, value);
    }
  }
  if (r.payload.size() > kRecordPayloadMax) {
    return Status(Code::kInvalidArgument, "record payload too large")
        .with("lsn", r.lsn.value)
        .with("bytes", r.payload.size());
  }
  if (record_type_is_page(r.type) && r.page.is_zero()) {
    return Status(Code::kInvalidArgument, "page record without a page id").with("lsn", r.lsn.value);
  }
  if (r.type == RecordType::kDelta && (r.base_lsn.is_zero() || r.base_lsn >= r.lsn)) {
    return Status(Code::kInvalidArgument, "delta without a base image below it")
        .with("lsn", r.lsn.value);
  }
  if (r.type == RecordType::kCheckpointComplete && r.base_lsn >= r.lsn) {
    return Status(Code::kInvalidArgument, "checkpoint log position not below its completion")
        .with("lsn", r.lsn.value);
  }
  if (r.prev_lsn >= r.lsn) {
    return Status(Code::kInvalidArgument, "prev lsn not below the record").with("lsn", r.lsn.value);
  }
  if (!r.backlink_lsn.is_zero() && r.backlink_lsn >= r.lsn) {
    return Status(Code::kInvalidArgument, "backlink not below the record").with("lsn", r.lsn.value);
  }
  return Status();
}

}  // namespace quire
