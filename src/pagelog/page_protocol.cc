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

RpcRequest request_of(PageOp op, Term term, std::initializer_list<uint64_t> fields) {
  RpcRequest r{0, static_cast<uint8_t>(op), term.value, {}};
  ByteWriter w(r.body);
  for (uint64_t f : fields) w.put_varint64(f);
  return r;
}

}  // namespace

Bytes encode_records(const std::vector<Record>& records) {
  Bytes out;
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

Bytes LogChunk::encode() const {
  Bytes out = encode_records(records);
  ByteWriter(out).put_varint64(through.value);
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
  if (!r.at_end()) return corruption("trailing bytes after a status");
  return s;
}

Result<GetPageResponse> GetPageResponse::decode(ByteView in) {
  auto records = decode_records(in);
  if (!records.is_ok()) return records.status();
  return GetPageResponse{std::move(records).value()};
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

Result<ListCheckpointsResponse> ListCheckpointsResponse::decode(ByteView in) {
  auto records = decode_records(in);
  if (!records.is_ok()) return records.status();
  return ListCheckpointsResponse{std::move(records).value()};
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
  return request_of(kOp, Term(), {from.value, max_bytes});
}

Result<ReadLogRequest> ReadLogRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  ReadLogRequest r;
  QUIRE_RETURN_IF_ERROR(
      read_fields(request, {&r.from.value, &r.max_bytes}, "malformed read request"));
  return r;
}

RpcRequest GetPageRequest::encode() const {
  return request_of(kOp, Term(), {table.value, page.value, as_of.value});
}

Result<GetPageRequest> GetPageRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  GetPageRequest r;
  QUIRE_RETURN_IF_ERROR(read_fields(request, {&r.table.value, &r.page.value, &r.as_of.value},
                                    "malformed get_page request"));
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

RpcRequest ScanRequest::encode() const {
  return request_of(kOp, Term(), {after.value, max_bytes});
}

Result<ScanRequest> ScanRequest::decode(const RpcRequest& request) {
  QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
  ScanRequest r;
  QUIRE_RETURN_IF_ERROR(
      read_fields(request, {&r.after.value, &r.max_bytes}, "malformed read request"));
  return r;
}

}  // namespace quire
