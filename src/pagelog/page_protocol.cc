#include "pagelog/page_protocol.h"

#include <algorithm>

namespace quire {

namespace {

// Decodes a count-prefixed list of records from the front of `in`; `consumed` gets the
// bytes it used.
Result<std::vector<Record>> decode_record_list(ByteView in, size_t* consumed) {
  ByteReader r(in);
  uint64_t n = 0;
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&n));
  if (n > kMessageRecordsMax)
    return Status(Code::kCorruption, "too many records in a message").with("count", n);
  std::vector<Record> out;
  size_t pos = r.position();
  for (uint64_t i = 0; i < n; ++i) {
    DecodedRecord d = decode_record(in.subspan(pos));
    if (d.outcome != DecodeOutcome::kOk) {
      Status err = d.outcome == DecodeOutcome::kTruncated
                       ? corruption("record cut short in a message")
                       : d.error;
      return std::move(err).with("index", i);
    }
    pos += d.size;
    out.push_back(std::move(d.record));
  }
  QUIRE_ASSERT(pos <= in.size() && out.size() == n);
  *consumed = pos;
  return out;
}

// Reads the varint64 fields of a request body in order; `malformed` names the error.
Status read_fields(const RpcRequest& request, std::initializer_list<uint64_t*> fields,
                   const char* malformed) {
  ByteReader in(request.body);
  for (uint64_t* f : fields) {
    if (!in.get_varint64(f).is_ok()) return invalid_argument(malformed);
  }
  return Status();
}

// Like read_fields, then the `optional` fields when any bytes follow: all of them or none
// (left 0; `*present`, when given, says which).
Status read_fields_and_optional(const RpcRequest& request, std::initializer_list<uint64_t*> fields,
                                std::initializer_list<uint64_t*> optional, const char* malformed,
                                bool* present = nullptr) {
  ByteReader in(request.body);
  for (uint64_t* f : fields) {
    if (!in.get_varint64(f).is_ok()) return invalid_argument(malformed);
  }
  if (present != nullptr) *present = !in.at_end();
  if (in.at_end()) return Status();
  for (uint64_t* f : optional) {
    if (!in.get_varint64(f).is_ok()) return invalid_argument(malformed);
  }
  return Status();
}

// A cursor names both ends of what was received, or neither.
Status check_cursor(const PartCursor& c) {
  if (c.first.is_zero() != c.after.is_zero() || c.first > c.after) {
    return Status(Code::kInvalidArgument, "malformed part cursor")
        .with("first", c.first.value)
        .with("after", c.after.value);
  }
  return Status();
}

// A part's body: its records, then `more` only when set, so a complete answer is the bare
// record list an older peer sends and expects.
Bytes encode_part(const std::vector<Record>& records, bool more) {
  Bytes out = encode_records(records);
  if (more) ByteWriter(out).put_varint64(1);
  return out;
}

Status decode_part(ByteView in, std::vector<Record>* records, bool* more) {
  size_t consumed = 0;
  auto list = decode_record_list(in, &consumed);
  if (!list.is_ok()) return list.status();
  *records = std::move(list).value();
  // `more` is the one byte varint 1; anything else after the records is damage.
  const ByteView tail = in.subspan(consumed);
  *more = !tail.empty();
  if (*more && (tail.size() != 1 || tail[0] != 1))
    return corruption("trailing bytes after the records of a part");
  return Status();
}

RpcRequest request_of(PageOp op, Term term, std::initializer_list<uint64_t> fields) {
  RpcRequest r{0, static_cast<uint8_t>(op), term.value, {}};
  ByteWriter w(r.body);
  for (uint64_t f : fields) w.put_varint64(f);
  return r;
}

}  // namespace

Bytes encode_records(const std::vector<Record>& records) {
  size_t size = kVarint64LengthMax;
  for (const auto& r : records) size += kRecordHeaderBytes + r.payload.size();
  Bytes out;
  out.reserve(size);
  ByteWriter w(out);
  w.put_varint64(records.size());
  for (const auto& r : records) encode_record(r, out);
  return out;
}

Result<std::vector<Record>> decode_records(ByteView in) {
  size_t consumed = 0;
  auto records = decode_record_list(in, &consumed);
  if (records.is_ok() && consumed != in.size())
    return corruption("trailing bytes after the records");
  return records;
}

// ---- Responses

Bytes AppendAck::encode() const {
  Bytes out;
  if (sync_micros == 0) return out;
  ByteWriter w(out);
  w.put_varint64(sync_micros);
  return out;
}

Result<AppendAck> AppendAck::decode(ByteView in) {
  AppendAck ack;
  ByteReader r(in);
  if (r.at_end()) return ack;
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&ack.sync_micros));
  if (!r.at_end()) return corruption("trailing bytes after an append's acknowledgement");
  return ack;
}

Bytes LogChunk::encode() const {
  Bytes out = encode_records(records);
  ByteWriter w(out);
  w.put_varint64(through.value);
  if (!commit_hint.is_zero() || !commit_hint_term.is_zero()) {
    w.put_varint64(commit_hint.value);
    w.put_varint64(commit_hint_term.value);
  }
  return out;
}

Result<LogChunk> LogChunk::decode(ByteView in) {
  size_t consumed = 0;
  auto records = decode_record_list(in, &consumed);
  if (!records.is_ok()) return records.status();
  LogChunk chunk;
  chunk.records = std::move(records).value();
  ByteReader tail(in.subspan(consumed));
  QUIRE_RETURN_IF_ERROR(tail.get_varint64(&chunk.through.value));
  if (!tail.at_end()) {
    QUIRE_RETURN_IF_ERROR(tail.get_varint64(&chunk.commit_hint.value));
    QUIRE_RETURN_IF_ERROR(tail.get_varint64(&chunk.commit_hint_term.value));
  }
  if (!tail.at_end()) return corruption("trailing bytes after a log chunk");
  return chunk;
}

Bytes PageServerStatus::encode() const {
  Bytes out;
  ByteWriter w(out);
  w.put_varint64(last_lsn.value);
  w.put_varint64(durable_lsn.value);
  w.put_varint64(segments);
  w.put_varint64(sealed_count);
  w.put_varint64(term.value);
  w.put_varint64(records);
  w.put_varint64(bytes);
  size_t n = std::min(damaged_ranges.size(), kStatusDamagedRangesMax);
  w.put_varint64(n);
  for (size_t i = 0; i < n; ++i) {
    w.put_varint64(damaged_ranges[i].segment);
    w.put_varint64(damaged_ranges[i].begin);
    w.put_varint64(damaged_ranges[i].end);
  }
  if (!retention_lsn.is_zero() || !copy_gaps.empty()) {
    w.put_varint64(retention_lsn.value);
    // Never cut short: fewer gaps would claim records the server lacks. A store keeps at
    // most kCopyGapsMax (SegmentStore::bounded_gaps).
    QUIRE_ASSERT(copy_gaps.size() <= kCopyGapsMax);
    w.put_varint64(copy_gaps.size());
    for (const CopyGap& g : copy_gaps) {
      w.put_varint64(g.from.value);
      w.put_varint64(g.to.value);
    }
    if (!copy_gaps.empty()) w.put_varint64(chain_lsn.value);
  }
  return out;
}

Result<PageServerStatus> PageServerStatus::decode(ByteView in) {
  ByteReader r(in);
  PageServerStatus s;
  uint64_t n = 0;
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.last_lsn.value));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.durable_lsn.value));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.segments));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.sealed_count));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.term.value));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.records));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.bytes));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&n));
  if (n > kStatusDamagedRangesMax) return corruption("too many damaged ranges in a status");
  for (uint64_t i = 0; i < n; ++i) {
    DamagedRange d;
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&d.segment));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&d.begin));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&d.end));
    s.damaged_ranges.push_back(d);
  }
  uint64_t gaps = 0;
  if (!r.at_end()) {
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.retention_lsn.value));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&gaps));
    if (gaps > kCopyGapsMax) return corruption("a status's gap count is out of range");
  }
  if (gaps > 0) {
    s.copy_gaps.resize(gaps);
    for (CopyGap& g : s.copy_gaps) {
      QUIRE_RETURN_IF_ERROR(r.get_varint64(&g.from.value));
      QUIRE_RETURN_IF_ERROR(r.get_varint64(&g.to.value));
    }
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&s.chain_lsn.value));
    // Ordered, apart, above the whole prefix and below the chain's end.
    if (!copy_gaps_valid(s.copy_gaps) || s.copy_gaps.front().from < s.durable_lsn ||
        s.chain_lsn < s.copy_gaps.back().to) {
      return corruption("a status's gaps do not lie between its durable and chain LSNs");
    }
  }
  if (!r.at_end()) return corruption("trailing bytes after a status");
  return s;
}

Bytes GetPageResponse::encode() const {
  return encode_part(records, more);
}

Result<GetPageResponse> GetPageResponse::decode(ByteView in) {
  GetPageResponse r;
  QUIRE_RETURN_IF_ERROR(decode_part(in, &r.records, &r.more));
  return r;
}

Bytes LatestCheckpointResponse::encode() const {
  Bytes out;
  ByteWriter(out).put_varint64(1);
  encode_record(checkpoint, out);
  return out;
}

Result<LatestCheckpointResponse> LatestCheckpointResponse::decode(ByteView in) {
  auto records = decode_records(in);
  if (!records.is_ok()) return records.status();
  if (records->size() != 1) return corruption("latest_checkpoint returned other than one record");
  return LatestCheckpointResponse{std::move(records->front())};
}

Bytes ListCheckpointsResponse::encode() const {
  return encode_part(checkpoints, more);
}

Result<ListCheckpointsResponse> ListCheckpointsResponse::decode(ByteView in) {
  ListCheckpointsResponse r;
  QUIRE_RETURN_IF_ERROR(decode_part(in, &r.checkpoints, &r.more));
  return r;
}

// ---- Requests

RpcRequest AppendRequest::encode(const std::vector<Record>& records, Term term) {
  return RpcRequest{0, static_cast<uint8_t>(kOp), term.value, encode_records(records)};
}

Result<AppendRequest> AppendRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  auto records = decode_records(request.body);
  if (!records.is_ok()) return records.status();
  return AppendRequest{std::move(records).value(), Term(request.term)};
}

RpcRequest ReadLogRequest::encode() const {
  // Without a wait, the request an older client sends.
  if (!hint && wait_ms == 0 && seen_hint.is_zero() && seen_through.is_zero()) {
    return request_of(kOp, Term(), {from.value, max_bytes});
  }
  return request_of(kOp, Term(),
                    {from.value, max_bytes, wait_ms, seen_hint.value, seen_through.value});
}

Result<ReadLogRequest> ReadLogRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  ReadLogRequest r;
  QUIRE_RETURN_IF_ERROR(read_fields_and_optional(
      request, {&r.from.value, &r.max_bytes},
      {&r.wait_ms, &r.seen_hint.value, &r.seen_through.value}, "malformed read request",
      &r.hint));  // only a reader that knows the long poll sends its fields: it takes the hint
  return r;
}

RpcRequest GetPageRequest::encode() const {
  // The whole chain from the start is the request an older client sends.
  if (cursor.at_start() && max_bytes == 0)
    return request_of(kOp, Term(), {table.value, page.value, as_of.value});
  return request_of(
      kOp, Term(),
      {table.value, page.value, as_of.value, cursor.first.value, cursor.after.value, max_bytes});
}

Result<GetPageRequest> GetPageRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  GetPageRequest r;
  QUIRE_RETURN_IF_ERROR(read_fields_and_optional(
      request, {&r.table.value, &r.page.value, &r.as_of.value},
      {&r.cursor.first.value, &r.cursor.after.value, &r.max_bytes}, "malformed get_page request"));
  QUIRE_RETURN_IF_ERROR(check_cursor(r.cursor));
  return r;
}

RpcRequest ListCheckpointsRequest::encode() const {
  if (cursor.at_start() && max_bytes == 0) return request_of(kOp, Term(), {});
  return request_of(kOp, Term(), {cursor.first.value, cursor.after.value, max_bytes});
}

Result<ListCheckpointsRequest> ListCheckpointsRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  ListCheckpointsRequest r;
  QUIRE_RETURN_IF_ERROR(read_fields_and_optional(
      request, {}, {&r.cursor.first.value, &r.cursor.after.value, &r.max_bytes},
      "malformed list_checkpoints request"));
  QUIRE_RETURN_IF_ERROR(check_cursor(r.cursor));
  return r;
}

template <PageOp Op>
RpcRequest LsnWriteRequest<Op>::encode() const {
  return request_of(kOp, term, {lsn.value});
}

template <PageOp Op>
Result<LsnWriteRequest<Op>> LsnWriteRequest<Op>::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  LsnWriteRequest r;
  QUIRE_RETURN_IF_ERROR(read_fields(request, {&r.lsn.value}, "malformed request"));
  r.term = Term(request.term);
  return r;
}

template struct LsnWriteRequest<PageOp::kAbandonAfter>;
template struct LsnWriteRequest<PageOp::kSetRetention>;
template struct LsnWriteRequest<PageOp::kCommitHint>;

RpcRequest ScanRequest::encode() const {
  if (!beyond_complete) return request_of(kOp, Term(), {after.value, max_bytes});
  return request_of(kOp, Term(), {after.value, max_bytes, 1});
}

Result<ScanRequest> ScanRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  ScanRequest r;
  uint64_t beyond = 0;
  QUIRE_RETURN_IF_ERROR(read_fields_and_optional(request, {&r.after.value, &r.max_bytes}, {&beyond},
                                                 "malformed read request"));
  if (beyond > 1) {
    return Status(Code::kInvalidArgument, "malformed read request: beyond_complete is 0 or 1")
        .with("beyond_complete", beyond);
  }
  r.beyond_complete = beyond == 1;
  return r;
}

}  // namespace quire
