// The page service protocol: its operations, and one typed request and response per
// operation with their encodings. Pure functions over bytes; the transport is rpc.h, the
// server page_server.h and the client page_client.h.
//
// A request travels as an RpcRequest (op, term, body); a response as a status and, on OK,
// a body. The writer's term is in the request header for the writes that are fenced
// (append, abandon_after, set_retention, commit_hint) and for fence; every other request
// sends term 0.
// Bodies, every integer a varint64:
//
//   op                   request body                  response body
//   1 append             records                       [sync_us]
//   2 read_log           from, max_bytes               records, through
//   3 get_page           table, page, as_of            records [, more]
//                          [, first, after, max_bytes]
//   4 latest_checkpoint  -                             records (exactly one)
//   5 list_checkpoints   [first, after, max_bytes]     records [, more]
//   6 seal               -                             -
//   7 abandon_after      lsn                           -
//   8 set_retention      lsn                           -
//   9 status             -                             PageServerStatus (see encode())
//  10 scan               after, max_bytes              records, through
//                          [, beyond_complete]
//  11 fence              -                             PageServerStatus (as status)
//  12 commit_hint        lsn                           -
//
// where `records` is a count followed by that many framed records (record.h). fence makes
// the server fence every term below the request's durably before it answers (Fenced when
// it has seen a higher one), and answers with its status read after that.
//
// Every response fits one frame (Connection::kMaxMessageBytes): its records are at most
// kResponseRecordBytesMax bytes. read_log and scan stop at their byte budget (at least
// one record) and say `through`, where the next read continues. get_page and
// list_checkpoints answer in parts: a request with max_bytes > 0 gets the records after
// its cursor within that budget (at least one), and `more` (a trailing varint 1, absent
// on the last part) when records remain; the next part's cursor is `first` (the LSN of
// the first record received) and `after` (the last one). A cursor whose records are no
// longer the list's (garbage collection or an abandon changed it between parts) is the
// retriable Busy: read again from the start. A request without the bracketed fields (an
// older client's) is max_bytes 0: the whole answer in one response, or InvalidArgument
// when it does not fit; a response that is complete is therefore the bytes it always was.
//
// Decoders never assert on what they are given: a malformed body is a typed error
// (Corruption for records and responses, InvalidArgument for the fixed fields of a
// request). Request decoders read the fields they need (an optional group whole or not at
// all) and ignore bytes after them, and a message with no body ignores whatever it is
// given, as the server always has; record lists, chunks and statuses must be exact.
#pragma once

#include <cstdint>
#include <vector>

#include "base/assert.h"
#include "pagelog/record.h"
#include "pagelog/rpc.h"
#include "pagelog/segment_format.h"

namespace quire {

enum class PageOp : uint8_t {
  kAppend = 1,
  kReadLog = 2,
  kGetPage = 3,
  kLatestCheckpoint = 4,
  kListCheckpoints = 5,
  kSeal = 6,
  kAbandonAfter = 7,
  kSetRetention = 8,
  kStatus = 9,
  kScan = 10,
  kFence = 11,
  kCommitHint = 12,
};

// Bounds a decoder enforces, so a corrupt count cannot make it allocate without limit.
inline constexpr size_t kMessageRecordsMax = 1u << 20;   // records in one message
inline constexpr size_t kStatusDamagedRangesMax = 1024;  // ranges reported in a status
// The longest a read_log may ask to be held (ReadLogRequest::wait_ms).
inline constexpr uint64_t kReadLogWaitMsMax = 1000;

// What a response carries besides its records, at most: the RPC header (kind, id, code,
// and an error message of up to 1 KiB) and the body's count, `through` (and a log chunk's
// commit hint) or `more`.
inline constexpr size_t kResponseOverheadBytesMax = 4096;
// The framed records one response may carry, so that it fits one frame.
inline constexpr size_t kResponseRecordBytesMax =
    Connection::kMaxMessageBytes - kResponseOverheadBytesMax;
// One record always fits: a part, a log chunk or latest_checkpoint can always make progress.
static_assert(kRecordHeaderBytes + kRecordPayloadMax <= kResponseRecordBytesMax);

// Where a read in parts continues: the LSNs of the first and the last record received so
// far; both 0 for the first part.
struct PartCursor {
  Lsn first;
  Lsn after;

  bool at_start() const { return first.is_zero() && after.is_zero(); }
  friend bool operator==(const PartCursor&, const PartCursor&) = default;
};

// A count-prefixed list of framed records: the body shared by several messages.
Bytes encode_records(const std::vector<Record>& records);
// Corruption for a bad count, a damaged or cut-short record, or trailing bytes.
Result<std::vector<Record>> decode_records(ByteView in);

// ---- Responses

// The response of a write that returns only its status.
struct Ack {
  Bytes encode() const { return {}; }
  static Result<Ack> decode(ByteView) { return Ack{}; }
  friend bool operator==(const Ack&, const Ack&) = default;
};

// An append's response: how long, in microseconds, the server's latest fdatasync took
// (usually the one that made these records durable there; for a request whose records were
// all stored already, an earlier one). It is the disk's speed, from which a writer chooses
// how to group its writes (Primary::note_sync_speed). 0 when the server has none to report
// (no write synced since it started, or an older server): then the body is empty, the
// bytes it always was.
struct AppendAck {
  uint64_t sync_micros = 0;

  Bytes encode() const;
  // Corruption for a malformed or overlong body.
  static Result<AppendAck> decode(ByteView in);
  friend bool operator==(const AppendAck&, const AppendAck&) = default;
};

// A piece of the log: the records, and the LSN up to which the server looked (read on
// from through + 1; records past a server's complete_lsn are never in a piece).
struct LogChunk {
  std::vector<Record> records;
  Lsn through;
  // read_log asked with `hint` only: the newest commit point a writer sent this server (a
  // LOG record's backlink, taken when its write arrived, before it is synced here), with
  // the writer's term. It covers only records of that term (PageServer::note_commit_hint);
  // zero when none. On the wire after `through` only when not zero, so a scan's chunk and
  // an older reader's are the bytes they always were.
  Lsn commit_hint;
  Term commit_hint_term;

  Bytes encode() const;
  static Result<LogChunk> decode(ByteView in);
  friend bool operator==(const LogChunk&, const LogChunk&) = default;
};

struct PageServerStatus {
  Lsn last_lsn;
  Lsn durable_lsn;  // every record up to here is stored and synced here (complete_lsn)
  uint64_t segments = 0;
  uint64_t sealed_count = 0;
  Term term;
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::vector<DamagedRange> damaged_ranges;  // the first kStatusDamagedRangesMax travel
  // The server's retention point: a peer whose chain ends below it cannot extend its
  // chain from this server (the log records below it are dropped) and adopts it.
  Lsn retention_lsn;
  // A server copying gaps its retention point jumped (SegmentStore::copy_gaps) reports as
  // durable_lsn only where the first starts; it holds every record of its chain up to
  // `chain_lsn` (its complete_lsn) outside `copy_gaps`. A peer copying from it advances its
  // own copy only across what it holds whole, never across a gap. Empty otherwise.
  // These three are on the wire after the damaged ranges only when one is not zero or
  // empty, so a status without them is the bytes it always was.
  std::vector<CopyGap> copy_gaps;
  Lsn chain_lsn;

  Bytes encode() const;
  static Result<PageServerStatus> decode(ByteView in);
  friend bool operator==(const PageServerStatus&, const PageServerStatus&) = default;
};

// A page as of an LSN: its newest full image at or below it, then the later deltas; or
// one part of that chain, with `more` when parts remain.
struct GetPageResponse {
  std::vector<Record> records;
  bool more = false;

  Bytes encode() const;
  // Corruption for a bad record list, or a tail other than nothing or `more` (1).
  static Result<GetPageResponse> decode(ByteView in);
  friend bool operator==(const GetPageResponse&, const GetPageResponse&) = default;
};

struct LatestCheckpointResponse {
  Record checkpoint;

  Bytes encode() const;
  // Corruption unless the body holds exactly one record.
  static Result<LatestCheckpointResponse> decode(ByteView in);
  friend bool operator==(const LatestCheckpointResponse&,
                         const LatestCheckpointResponse&) = default;
};

struct ListCheckpointsResponse {
  std::vector<Record> checkpoints;  // oldest first
  bool more = false;                // parts remain (as GetPageResponse)

  Bytes encode() const;
  static Result<ListCheckpointsResponse> decode(ByteView in);
  friend bool operator==(const ListCheckpointsResponse&, const ListCheckpointsResponse&) = default;
};

// ---- Requests
//
// Each has kOp, its Response type, encode() into an RpcRequest (id left 0) and decode()
// from one. decode() must be given a request of its own op (the dispatcher's job).

struct AppendRequest {
  static constexpr PageOp kOp = PageOp::kAppend;
  using Response = AppendAck;
  std::vector<Record> records;
  Term term;

  RpcRequest encode() const { return encode(records, term); }
  // The same bytes without building the request. (A client's append sends the records'
  // encode_records bytes, encoded once for every server: PageServerClient::append_encoded.)
  static RpcRequest encode(const std::vector<Record>& records, Term term);
  static Result<AppendRequest> decode(const RpcRequest& request);
  friend bool operator==(const AppendRequest&, const AppendRequest&) = default;
};

// LOG records from `from` on. With `wait_ms`, a server with nothing new for the reader
// (its chain ends just before `from` or at `seen_through`, the `through` the reader was
// last answered, and its commit hint is not above `seen_hint`) holds the request until it
// has, or for at most `wait_ms` (a long poll, in place of a standby polling an idle log);
// a reader ahead of its chain is answered at once.
struct ReadLogRequest {
  static constexpr PageOp kOp = PageOp::kReadLog;
  using Response = LogChunk;
  Lsn from;
  uint64_t max_bytes = 0;
  uint64_t wait_ms = 0;  // at most kReadLogWaitMsMax
  Lsn seen_hint;
  Lsn seen_through;
  // The reader takes the commit hint (LogChunk). Not a field of its own: a request with
  // the three fields above on the wire asks for it, one without them is an older
  // reader's, answered with the older chunk.
  bool hint = false;

  RpcRequest encode() const;
  static Result<ReadLogRequest> decode(const RpcRequest& request);
  friend bool operator==(const ReadLogRequest&, const ReadLogRequest&) = default;
};

// max_bytes 0: the whole chain in one response (InvalidArgument when it does not fit);
// otherwise the part after `cursor`, within max_bytes (the server may lower it).
// InvalidArgument for a cursor with `after` and not `first`, or the reverse, or first >
// after.
struct GetPageRequest {
  static constexpr PageOp kOp = PageOp::kGetPage;
  using Response = GetPageResponse;
  TableId table;
  PageId page;
  Lsn as_of;
  PartCursor cursor;
  uint64_t max_bytes = 0;

  RpcRequest encode() const;
  static Result<GetPageRequest> decode(const RpcRequest& request);
  friend bool operator==(const GetPageRequest&, const GetPageRequest&) = default;
};

// The operations without a request body share their shape.
template <PageOp Op, typename R>
struct EmptyRequest {
  static constexpr PageOp kOp = Op;
  using Response = R;

  RpcRequest encode() const { return RpcRequest{0, static_cast<uint8_t>(Op), 0, {}}; }
  static Result<EmptyRequest> decode(const RpcRequest& request) {
    QUIRE_ASSERT(request.op == static_cast<uint8_t>(Op));
    return EmptyRequest{};
  }
  friend bool operator==(const EmptyRequest&, const EmptyRequest&) = default;
};
using LatestCheckpointRequest = EmptyRequest<PageOp::kLatestCheckpoint, LatestCheckpointResponse>;
using SealRequest = EmptyRequest<PageOp::kSeal, Ack>;
using StatusRequest = EmptyRequest<PageOp::kStatus, PageServerStatus>;

// The completed checkpoints, in parts as get_page (max_bytes 0: all in one response).
struct ListCheckpointsRequest {
  static constexpr PageOp kOp = PageOp::kListCheckpoints;
  using Response = ListCheckpointsResponse;
  PartCursor cursor;
  uint64_t max_bytes = 0;

  RpcRequest encode() const;
  static Result<ListCheckpointsRequest> decode(const RpcRequest& request);
  friend bool operator==(const ListCheckpointsRequest&, const ListCheckpointsRequest&) = default;
};

// The two fenced writes that carry one LSN share their shape.
template <PageOp Op>
struct LsnWriteRequest {
  static constexpr PageOp kOp = Op;
  using Response = Ack;
  Lsn lsn;
  Term term;

  RpcRequest encode() const;
  static Result<LsnWriteRequest> decode(const RpcRequest& request);
  friend bool operator==(const LsnWriteRequest&, const LsnWriteRequest&) = default;
};
// Drops every record above lsn.
using AbandonAfterRequest = LsnWriteRequest<PageOp::kAbandonAfter>;
// Lets garbage collection drop what no reader at or above lsn needs.
using SetRetentionRequest = LsnWriteRequest<PageOp::kSetRetention>;
// The writer's commit point: every record of its chain up to lsn is durable at W, and the
// record at lsn is a LOG record of the request's term (PageServer::handle_commit_hint).
using CommitHintRequest = LsnWriteRequest<PageOp::kCommitHint>;

// Fences every writer term below `term` (in the RPC header; no body, and a body is ignored
// like that of the other operations without one). Answered with the server's status.
struct FenceRequest {
  static constexpr PageOp kOp = PageOp::kFence;
  using Response = PageServerStatus;
  Term term;

  RpcRequest encode() const { return RpcRequest{0, static_cast<uint8_t>(kOp), term.value, {}}; }
  static Result<FenceRequest> decode(const RpcRequest& request) {
    QUIRE_ASSERT(request.op == static_cast<uint8_t>(kOp));
    return FenceRequest{Term(request.term)};
  }
  friend bool operator==(const FenceRequest&, const FenceRequest&) = default;
};

// Records of every type after `after`, for peers catching up.
struct ScanRequest {
  static constexpr PageOp kOp = PageOp::kScan;
  using Response = LogChunk;
  Lsn after;
  uint64_t max_bytes = 0;
  // Also the records a server holds past a gap in its chain (up to its last LSN), for a
  // writer taking over, which assembles the chain from several servers. Absent: 0.
  bool beyond_complete = false;

  RpcRequest encode() const;
  static Result<ScanRequest> decode(const RpcRequest& request);
  friend bool operator==(const ScanRequest&, const ScanRequest&) = default;
};

}  // namespace quire
