// The page service protocol: every request and response survives encode -> decode, the
// bytes are the ones the wire has always carried (known-answer bodies), and a malformed
// body for each operation is refused with a typed error, never a crash.
#include "pagelog/page_protocol.h"

#include <gtest/gtest.h>

namespace quire {
namespace {

Record record(RecordType type, uint64_t lsn, uint64_t prev) {
  Record r;
  r.type = type;
  r.table = TableId(record_type_is_page(type) ? 3 : 0);
  r.page = PageId(record_type_is_page(type) ? 9 : 0);
  r.lsn = Lsn(lsn);
  r.prev_lsn = Lsn(prev);
  r.term = Term(2);
  r.payload = Bytes(20, static_cast<uint8_t>(lsn));
  return r;
}

std::vector<Record> some_records() {
  return {record(RecordType::kLog, 1, 0), record(RecordType::kPage, 2, 1),
          record(RecordType::kCheckpointComplete, 3, 2)};
}

Bytes varints(std::initializer_list<uint64_t> values) {
  Bytes out;
  ByteWriter w(out);
  for (uint64_t v : values) w.put_varint64(v);
  return out;
}

// encode() then decode() gives the request back, under its own op.
template <typename Request>
void expect_request_round_trip(const Request& request) {
  RpcRequest wire = request.encode();
  EXPECT_EQ(wire.op, static_cast<uint8_t>(Request::kOp));
  auto back = Request::decode(wire);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(*back == request);
}

template <typename Response>
void expect_response_round_trip(const Response& response) {
  auto back = Response::decode(response.encode());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_TRUE(*back == response);
}

// Every strict prefix of a request's body is refused with `code`.
template <typename Request>
void expect_prefixes_refused(const Request& request, Code code) {
  RpcRequest wire = request.encode();
  ASSERT_FALSE(wire.body.empty());
  for (size_t n = 0; n < wire.body.size(); ++n) {
    RpcRequest cut = wire;
    cut.body.resize(n);
    EXPECT_EQ(Request::decode(cut).code(), code) << "prefix of " << n << " bytes";
  }
}

// Every strict prefix of a response's body is refused with Corruption.
template <typename Response>
void expect_response_prefixes_refused(const Response& response) {
  Bytes body = response.encode();
  for (size_t n = 0; n < body.size(); ++n) {
    EXPECT_EQ(Response::decode(ByteView(body).first(n)).code(), Code::kCorruption)
        << "prefix of " << n << " bytes";
  }
}

TEST(PageProtocol, OperationNumbersAreTheWireOnes) {
  EXPECT_EQ(static_cast<int>(AppendRequest::kOp), 1);
  EXPECT_EQ(static_cast<int>(ReadLogRequest::kOp), 2);
  EXPECT_EQ(static_cast<int>(GetPageRequest::kOp), 3);
  EXPECT_EQ(static_cast<int>(LatestCheckpointRequest::kOp), 4);
  EXPECT_EQ(static_cast<int>(ListCheckpointsRequest::kOp), 5);
  EXPECT_EQ(static_cast<int>(SealRequest::kOp), 6);
  EXPECT_EQ(static_cast<int>(AbandonAfterRequest::kOp), 7);
  EXPECT_EQ(static_cast<int>(SetRetentionRequest::kOp), 8);
  EXPECT_EQ(static_cast<int>(StatusRequest::kOp), 9);
  EXPECT_EQ(static_cast<int>(ScanRequest::kOp), 10);
  EXPECT_EQ(static_cast<int>(FenceRequest::kOp), 11);
  EXPECT_EQ(static_cast<int>(CommitHintRequest::kOp), 12);
}

TEST(PageProtocol, EveryRequestRoundTrips) {
  expect_request_round_trip(AppendRequest{some_records(), Term(7)});
  expect_request_round_trip(AppendRequest{{}, Term(1)});
  expect_request_round_trip(ReadLogRequest{Lsn(300), 1u << 20});
  expect_request_round_trip(ReadLogRequest{Lsn(300), 1u << 20, 100, Lsn(299), Lsn(310), true});
  expect_request_round_trip(ReadLogRequest{Lsn(300), 1u << 20, 0, Lsn(), Lsn(), true});
  expect_request_round_trip(GetPageRequest{TableId(3), PageId(uint64_t{1} << 40), Lsn(12345)});
  expect_request_round_trip(
      GetPageRequest{TableId(3), PageId(9), Lsn(500), PartCursor{Lsn(200), Lsn(300)}, 1u << 20});
  expect_request_round_trip(GetPageRequest{TableId(3), PageId(9), Lsn(500), PartCursor{}, 4096});
  expect_request_round_trip(LatestCheckpointRequest{});
  expect_request_round_trip(ListCheckpointsRequest{});
  expect_request_round_trip(ListCheckpointsRequest{PartCursor{Lsn(7), Lsn(9)}, 100});
  expect_request_round_trip(SealRequest{});
  expect_request_round_trip(AbandonAfterRequest{Lsn(99), Term(4)});
  expect_request_round_trip(SetRetentionRequest{Lsn(~uint64_t{0}), Term(5)});
  expect_request_round_trip(StatusRequest{});
  expect_request_round_trip(ScanRequest{Lsn(0), 0});
  expect_request_round_trip(FenceRequest{Term(6)});
  expect_request_round_trip(CommitHintRequest{Lsn(4242), Term(7)});
}

TEST(PageProtocol, EveryResponseRoundTrips) {
  expect_response_round_trip(Ack{});
  expect_response_round_trip(AppendAck{});
  expect_response_round_trip(AppendAck{180});
  expect_response_round_trip(LogChunk{some_records(), Lsn(3)});
  expect_response_round_trip(LogChunk{{}, Lsn(17)});
  expect_response_round_trip(LogChunk{some_records(), Lsn(3), Lsn(2), Term(5)});
  expect_response_round_trip(GetPageResponse{{record(RecordType::kPage, 2, 1)}});
  expect_response_round_trip(GetPageResponse{{record(RecordType::kPage, 2, 1)}, true});
  expect_response_round_trip(ListCheckpointsResponse{some_records(), true});
  expect_response_round_trip(
      LatestCheckpointResponse{record(RecordType::kCheckpointComplete, 3, 2)});
  expect_response_round_trip(ListCheckpointsResponse{some_records()});
  PageServerStatus s;
  s.last_lsn = Lsn(10);
  s.durable_lsn = Lsn(8);
  s.segments = 3;
  s.sealed_count = 2;
  s.term = Term(6);
  s.records = 10;
  s.bytes = 4096;
  s.damaged_ranges = {{1, 32, 100}, {2, 0, 7}};
  expect_response_round_trip(s);
  s.retention_lsn = Lsn(11);
  expect_response_round_trip(s);
  s.copy_gaps = {{Lsn(8), Lsn(9)}, {Lsn(10), Lsn(11)}};  // copying gaps: whole to 8, 9-10, 11-12
  s.chain_lsn = Lsn(12);
  expect_response_round_trip(s);
}

// The bodies the wire has always carried: traces and older peers depend on them.
TEST(PageProtocol, RequestBytesAreTheWireOnes) {
  RpcRequest r = ReadLogRequest{Lsn(300), 5}.encode();
  EXPECT_EQ(r.term, 0u);
  EXPECT_EQ(r.body, (Bytes{0xac, 0x02, 0x05}));
  // A reader that takes the commit hint adds the long poll's wait and what it has seen.
  EXPECT_EQ((ReadLogRequest{Lsn(300), 5, 100, Lsn(7), Lsn(8), true}.encode().body),
            (Bytes{0xac, 0x02, 0x05, 0x64, 0x07, 0x08}));
  EXPECT_EQ((ReadLogRequest{Lsn(300), 5, 0, Lsn(), Lsn(), true}.encode().body),
            (Bytes{0xac, 0x02, 0x05, 0, 0, 0}));
  auto half = ReadLogRequest::decode(RpcRequest{0, 2, 0, Bytes{0xac, 0x02, 0x05, 0x64}});
  EXPECT_EQ(half.code(), Code::kInvalidArgument);  // the optional fields come together
  EXPECT_EQ((ScanRequest{Lsn(300), 5}.encode().body), (Bytes{0xac, 0x02, 0x05}));
  EXPECT_EQ((GetPageRequest{TableId(1), PageId(2), Lsn(3)}.encode().body), (Bytes{1, 2, 3}));
  EXPECT_EQ(
      (GetPageRequest{TableId(1), PageId(2), Lsn(3), PartCursor{Lsn(4), Lsn(5)}, 6}.encode().body),
      (Bytes{1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(ListCheckpointsRequest{}.encode().body.empty());
  EXPECT_EQ((ListCheckpointsRequest{PartCursor{Lsn(4), Lsn(5)}, 6}.encode().body),
            (Bytes{4, 5, 6}));
  r = AbandonAfterRequest{Lsn(128), Term(9)}.encode();
  EXPECT_EQ(r.term, 9u);
  EXPECT_EQ(r.body, (Bytes{0x80, 0x01}));
  EXPECT_EQ((SetRetentionRequest{Lsn(1), Term(2)}.encode().term), 2u);
  r = CommitHintRequest{Lsn(300), Term(4)}.encode();
  EXPECT_EQ(r.op, 12);
  EXPECT_EQ(r.term, 4u);
  EXPECT_EQ(r.body, (Bytes{0xac, 0x02}));
  EXPECT_TRUE(StatusRequest{}.encode().body.empty());
  const std::vector<Record> records = some_records();
  r = AppendRequest{records, Term(3)}.encode();
  EXPECT_EQ(r.term, 3u);
  Bytes expected{3};
  for (const Record& rec : records) encode_record(rec, expected);
  EXPECT_EQ(r.body, expected);
  EXPECT_EQ(AppendRequest::encode(records, Term(3)).body, expected);
}

TEST(PageProtocol, ResponseBytesAreTheWireOnes) {
  const std::vector<Record> records = some_records();
  Bytes list{3};
  for (const Record& rec : records) encode_record(rec, list);
  EXPECT_EQ(encode_records(records), list);
  EXPECT_EQ(GetPageResponse{records}.encode(), list);
  EXPECT_EQ(ListCheckpointsResponse{records}.encode(), list);
  Bytes part = list;  // a part with more to come: the list, then varint 1
  part.push_back(1);
  EXPECT_EQ((GetPageResponse{records, true}.encode()), part);
  EXPECT_EQ((ListCheckpointsResponse{records, true}.encode()), part);
  Bytes chunk = list;
  chunk.push_back(0x2a);
  EXPECT_EQ((LogChunk{records, Lsn(42)}.encode()), chunk);
  chunk.push_back(0x07);  // then a commit hint and its term, for a reader that asked
  chunk.push_back(0x03);
  EXPECT_EQ((LogChunk{records, Lsn(42), Lsn(7), Term(3)}.encode()), chunk);
  EXPECT_EQ(LatestCheckpointResponse{records[2]}.encode(), encode_records({records[2]}));
  PageServerStatus s;
  s.last_lsn = Lsn(1);
  s.durable_lsn = Lsn(2);
  s.segments = 3;
  s.sealed_count = 4;
  s.term = Term(5);
  s.records = 6;
  s.bytes = 7;
  s.damaged_ranges = {{8, 9, 10}};
  EXPECT_EQ(s.encode(), varints({1, 2, 3, 4, 5, 6, 7, 1, 8, 9, 10}));
  EXPECT_TRUE(Ack{}.encode().empty());
  // An append's acknowledgement: empty as it always was, or the server's sync time.
  EXPECT_TRUE(AppendAck{}.encode().empty());
  EXPECT_EQ(AppendAck{300}.encode(), varints({300}));
  EXPECT_EQ(AppendAck::decode({}).value(), AppendAck{});
}

TEST(PageProtocol, MalformedRequestBodiesAreTypedErrors) {
  expect_prefixes_refused(AppendRequest{some_records(), Term(1)}, Code::kCorruption);
  expect_prefixes_refused(ReadLogRequest{Lsn(300), 1u << 20}, Code::kInvalidArgument);
  expect_prefixes_refused(GetPageRequest{TableId(3), PageId(300), Lsn(70000)},
                          Code::kInvalidArgument);
  expect_prefixes_refused(AbandonAfterRequest{Lsn(300), Term(1)}, Code::kInvalidArgument);
  expect_prefixes_refused(SetRetentionRequest{Lsn(300), Term(1)}, Code::kInvalidArgument);
  expect_prefixes_refused(CommitHintRequest{Lsn(300), Term(1)}, Code::kInvalidArgument);
  expect_prefixes_refused(ScanRequest{Lsn(300), 1u << 20}, Code::kInvalidArgument);

  // A varint that never ends, or runs past 64 bits.
  const Bytes endless(11, 0xff);
  for (uint8_t op : {2, 3, 7, 8, 10, 12}) {
    RpcRequest bad{0, op, 1, endless};
    Code c = Code::kOk;
    switch (static_cast<PageOp>(op)) {
      case PageOp::kReadLog:
        c = ReadLogRequest::decode(bad).code();
        break;
      case PageOp::kGetPage:
        c = GetPageRequest::decode(bad).code();
        break;
      case PageOp::kAbandonAfter:
        c = AbandonAfterRequest::decode(bad).code();
        break;
      case PageOp::kSetRetention:
        c = SetRetentionRequest::decode(bad).code();
        break;
      case PageOp::kCommitHint:
        c = CommitHintRequest::decode(bad).code();
        break;
      default:
        c = ScanRequest::decode(bad).code();
        break;
    }
    EXPECT_EQ(c, Code::kInvalidArgument) << int{op};
  }

  // Append: a flipped bit in a record, a count above the bound, trailing bytes.
  RpcRequest append = AppendRequest{some_records(), Term(1)}.encode();
  append.body.back() ^= 1;
  EXPECT_EQ(AppendRequest::decode(append).code(), Code::kCorruption);
  EXPECT_EQ(AppendRequest::decode({0, 1, 1, varints({kMessageRecordsMax + 1})}).code(),
            Code::kCorruption);
  append = AppendRequest{some_records(), Term(1)}.encode();
  append.body.push_back(0);
  EXPECT_EQ(AppendRequest::decode(append).code(), Code::kCorruption);

  // list_checkpoints has an optional body now: a malformed one is refused.
  EXPECT_EQ(ListCheckpointsRequest::decode({0, 5, 0, endless}).code(), Code::kInvalidArgument);

  // Requests without a body ignore what they are given, as the server always has.
  EXPECT_TRUE(StatusRequest::decode({0, 9, 0, endless}).is_ok());
  auto fence = FenceRequest::decode({0, 11, 3, endless});
  EXPECT_TRUE(fence.is_ok());
  if (fence.is_ok()) {
    EXPECT_EQ(fence->term, Term(3));
  }
  EXPECT_TRUE(SealRequest::decode({0, 6, 0, endless}).is_ok());
}

TEST(PageProtocol, MalformedResponseBodiesAreTypedErrors) {
  expect_response_prefixes_refused(LogChunk{some_records(), Lsn(3)});
  expect_response_prefixes_refused(GetPageResponse{some_records()});
  expect_response_prefixes_refused(ListCheckpointsResponse{some_records()});
  expect_response_prefixes_refused(
      LatestCheckpointResponse{record(RecordType::kCheckpointComplete, 3, 2)});
  PageServerStatus s;
  s.damaged_ranges = {{1, 2, 3}};
  expect_response_prefixes_refused(s);

  // Trailing bytes, a second checkpoint, too many damaged ranges.
  Bytes chunk = LogChunk{some_records(), Lsn(3)}.encode();
  chunk.push_back(0);
  EXPECT_EQ(LogChunk::decode(chunk).code(), Code::kCorruption);
  Bytes hinted = LogChunk{some_records(), Lsn(3), Lsn(2), Term(1)}.encode();
  hinted.push_back(0);
  EXPECT_EQ(LogChunk::decode(hinted).code(), Code::kCorruption);
  Bytes status = s.encode();
  status.push_back(0);
  EXPECT_EQ(PageServerStatus::decode(status).code(), Code::kCorruption);
  EXPECT_EQ(LatestCheckpointResponse::decode(encode_records(some_records())).code(),
            Code::kCorruption);
  EXPECT_EQ(LatestCheckpointResponse::decode(encode_records({})).code(), Code::kCorruption);
  EXPECT_EQ(
      PageServerStatus::decode(varints({0, 0, 0, 0, 0, 0, 0, kStatusDamagedRangesMax + 1})).code(),
      Code::kCorruption);
  // After the damaged ranges: the retention point, then gaps that lie ordered and apart
  // between the durable and chain LSNs (durable 5 here), then the chain's end.
  EXPECT_TRUE(PageServerStatus::decode(varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 0})).is_ok());
  EXPECT_TRUE(
      PageServerStatus::decode(varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 2, 5, 6, 7, 8, 9})).is_ok());
  for (const Bytes& bad :
       {varints({9, 5, 0, 0, 0, 0, 0, 0, 4}),                             // no gap count
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, kCopyGapsMax + 1, 5, 6, 9}),  // too many
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 1, 4, 6, 9}),                 // below durable
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 1, 5, 7, 6}),                 // above the chain
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 1, 6, 6, 9}),                 // empty
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 2, 5, 7, 7, 8, 9}),           // adjoining
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 2, 7, 8, 5, 6, 9}),           // out of order
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 1, 5, 6}),                    // no chain end
        varints({9, 5, 0, 0, 0, 0, 0, 0, 4, 0, 9})}) {                    // trailing
    EXPECT_EQ(PageServerStatus::decode(bad).code(), Code::kCorruption);
  }
  Bytes list = encode_records(some_records());
  list[list.size() / 2] ^= 0x10;
  EXPECT_EQ(GetPageResponse::decode(list).code(), Code::kCorruption);

  // An append's acknowledgement: one whole varint or nothing.
  EXPECT_EQ(AppendAck::decode(Bytes{0x81}).code(), Code::kCorruption);
  EXPECT_EQ(AppendAck::decode(varints({5, 0})).code(), Code::kCorruption);

  // A part's tail is nothing or `more` (1), exactly.
  for (const Bytes& tail : {Bytes{0}, Bytes{2}, Bytes{1, 0}, Bytes{0x81}, Bytes{0x81, 0x00}}) {
    Bytes body = encode_records(some_records());
    body.insert(body.end(), tail.begin(), tail.end());
    EXPECT_EQ(GetPageResponse::decode(body).code(), Code::kCorruption);
    EXPECT_EQ(ListCheckpointsResponse::decode(body).code(), Code::kCorruption);
  }
}

// Requests from before reads in parts (no cursor, no budget) still decode: the whole
// answer from the start. The optional group is read whole or refused, and a cursor must
// name both ends of what was received.
TEST(PageProtocol, RequestsWithoutACursorAreOldFormatOnes) {
  auto old_page = GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3}});
  ASSERT_TRUE(old_page.is_ok());
  EXPECT_TRUE(*old_page == (GetPageRequest{TableId(1), PageId(2), Lsn(3), PartCursor{}, 0}));
  auto old_list = ListCheckpointsRequest::decode({0, 5, 0, {}});
  ASSERT_TRUE(old_list.is_ok());
  EXPECT_TRUE(*old_list == ListCheckpointsRequest{});

  // Every prefix of a request with a cursor: only the old-format one decodes.
  const GetPageRequest page{TableId(300), PageId(70000), Lsn(1u << 20),
                            PartCursor{Lsn(1u << 19), Lsn(1u << 20)}, 8u << 20};
  const RpcRequest wire = page.encode();
  const size_t old_size = varints({300, 70000, 1u << 20}).size();
  for (size_t n = 0; n < wire.body.size(); ++n) {
    RpcRequest cut = wire;
    cut.body.resize(n);
    EXPECT_EQ(GetPageRequest::decode(cut).code(),
              n == old_size ? Code::kOk : Code::kInvalidArgument)
        << "prefix of " << n << " bytes";
  }
  const RpcRequest list_wire = ListCheckpointsRequest{PartCursor{Lsn(300), Lsn(400)}, 500}.encode();
  for (size_t n = 1; n < list_wire.body.size(); ++n) {
    RpcRequest cut = list_wire;
    cut.body.resize(n);
    EXPECT_EQ(ListCheckpointsRequest::decode(cut).code(), Code::kInvalidArgument) << n;
  }
  // Bytes after the whole group are ignored, as after any request's fields.
  EXPECT_TRUE(GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3, 4, 5, 6, 7}}).is_ok());

  // A cursor with one end, or its ends reversed.
  EXPECT_EQ(GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3, 0, 5, 6}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3, 4, 0, 6}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3, 6, 5, 6}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ListCheckpointsRequest::decode({0, 5, 0, Bytes{0, 5, 6}}).code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(GetPageRequest::decode({0, 3, 0, Bytes{1, 2, 3, 5, 5, 0}}).is_ok());
}

// What a response adds to its records fits kResponseOverheadBytesMax at its largest: the
// RPC header with the longest id and error message, a record count at its bound, and a
// `through` (or `more`) at its longest. So records within kResponseRecordBytesMax (or one
// record, which the static_assert bounds) always make a response that fits one frame.
TEST(PageProtocol, AResponseWithinTheRecordBoundFitsOneFrame) {
  const RpcResponse header{
      ~uint64_t{0}, Status(Code::kInvalidArgument, std::string(5000, 'x')), {}};
  const size_t overhead = encode_rpc_response(header).size() +
                          varints({kMessageRecordsMax}).size() +
                          varints({~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}}).size();
  EXPECT_LE(overhead, kResponseOverheadBytesMax);
  EXPECT_LE(kResponseRecordBytesMax + kResponseOverheadBytesMax, Connection::kMaxMessageBytes);
  // An actual chunk at the bound, one record of the largest payload under it.
  LogChunk chunk{
      {record(RecordType::kLog, 1, 0)}, Lsn(~uint64_t{0}), Lsn(~uint64_t{0}), Term(~uint64_t{0})};
  chunk.records[0].payload.assign(kRecordPayloadMax, 7);
  RpcResponse full{~uint64_t{0}, Status(), chunk.encode()};
  EXPECT_LE(encode_rpc_response(full).size(), Connection::kMaxMessageBytes);
}

TEST(PageProtocol, StatusCarriesAtMostTheBoundOfDamagedRanges) {
  PageServerStatus s;
  for (uint64_t i = 0; i < kStatusDamagedRangesMax + 5; ++i) s.damaged_ranges.push_back({i, 0, 1});
  auto back = PageServerStatus::decode(s.encode());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->damaged_ranges.size(), kStatusDamagedRangesMax);
}

}  // namespace
}  // namespace quire
