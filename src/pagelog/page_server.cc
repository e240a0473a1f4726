#include "pagelog/page_server.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include <fmt/format.h>

namespace quire {

namespace {
constexpr const char* kComponent = "pageserver";

RpcResponse response_of(Status st) {
  RpcResponse resp;
  resp.status = std::move(st);
  return resp;
}

template <typename T>
RpcResponse response_of(Result<T> r) {
  if (!r.is_ok()) return response_of(r.status());
  RpcResponse resp;
  resp.body = r->encode();
  return resp;
}

// One part of a read in parts (get_page, list_checkpoints; page_protocol.h): the records of
// `list` (in LSN order) after `cursor`, within max_bytes lowered to `budget_max` and at
// least one, with `more` set when records remain; with max_bytes 0 all of them, or
// InvalidArgument when they do not fit one response. Busy when the cursor's records are
// no longer the list's: it must start at cursor.first and hold cursor.after. The store only
// drops a list's oldest records (retention) or its newest (abandon), so then the records
// the reader holds are intact.
Result<std::vector<RecordRef>> plan_part(const std::vector<RecordRef>& list,
                                         const PartCursor& cursor, uint64_t max_bytes,
                                         size_t budget_max, const char* what, bool* more) {
  size_t begin = 0;
  if (!cursor.at_start()) {
    auto held = std::find_if(list.begin(), list.end(),
                             [&](const RecordRef& r) { return r.lsn == cursor.after; });
    if (list.empty() || list.front().lsn != cursor.first || held == list.end()) {
      return Status(Code::kBusy, fmt::format("the {} changed between parts; read it again", what))
          .with("first", cursor.first.value)
          .with("after", cursor.after.value);
    }
    begin = static_cast<size_t>(held - list.begin()) + 1;
  }
  const size_t budget =
      max_bytes == 0 ? kResponseRecordBytesMax : std::min<uint64_t>(max_bytes, budget_max);
  size_t end = begin, bytes = 0;
  for (; end < list.size(); ++end) {
    if (end > begin && bytes + list[end].size > budget) break;
    bytes += list[end].size;
  }
  *more = end < list.size();
  if (*more && max_bytes == 0) {
    return Status(Code::kInvalidArgument,
                  fmt::format("the {} does not fit one response; read it in parts", what))
        .with("records", list.size() - begin)
        .with("response_bytes_max", kResponseRecordBytesMax);
  }
  QUIRE_ASSERT(bytes <= budget || end == begin + 1);  // over budget only by its one record
  return std::vector<RecordRef>(list.begin() + begin, list.begin() + end);
}

// A request's LSN and term fields must be below kLsnTermLimit (record.h): InvalidArgument
// naming the first that is not.
Status check_below_limit(std::initializer_list<std::pair<const char*, uint64_t>> fields) {
  for (const auto& [name, value] : fields) {
    if (value >= kLsnTermLimit) {
      return Status(Code::kInvalidArgument, fmt::format("request {} at or above 2^63", name))
          .with(name, value);
    }
  }
  return Status();
}

// The request-level fields of each operation (records are checked by validate_record).
template <typename Request>
Status check_request_bounds(const Request&) {
  return Status();  // no LSN or term fields
}
Status check_request_bounds(const AppendRequest& r) {
  return check_below_limit({{"term", r.term.value}});
}
Status check_request_bounds(const AbandonAfterRequest& r) {
  return check_below_limit({{"term", r.term.value}, {"lsn", r.lsn.value}});
}
Status check_request_bounds(const FenceRequest& r) {
  return check_below_limit({{"term", r.term.value}});
}
Status check_request_bounds(const SetRetentionRequest& r) {
  return check_below_limit({{"term", r.term.value}, {"lsn", r.lsn.value}});
}
Status check_request_bounds(const CommitHintRequest& r) {
  return check_below_limit({{"term", r.term.value}, {"lsn", r.lsn.value}});
}
Status check_request_bounds(const ReadLogRequest& r) {
  if (r.wait_ms > kReadLogWaitMsMax) {
    return Status(Code::kInvalidArgument, "read_log wait above the bound")
        .with("wait_ms", r.wait_ms)
        .with("wait_ms_max", kReadLogWaitMsMax);
  }
  return check_below_limit({{"from", r.from.value},
                            {"seen_hint", r.seen_hint.value},
                            {"seen_through", r.seen_through.value}});
}
Status check_request_bounds(const GetPageRequest& r) {
  return check_below_limit({{"as_of", r.as_of.value}});
}
Status check_request_bounds(const ScanRequest& r) {
  return check_below_limit({{"after", r.after.value}});
}
}  // namespace

PageServer::PageServer(Env& env, PageServerOptions options)
    : env_(env), options_(std::move(options)), log_changed_(env.executor().scheduler()) {}
PageServer::~PageServer() = default;

void PageServer::start() {
  env_.executor().spawn("page-server", run());
}

void PageServer::fail_stop(const Status& why) {
  if (stopping_) return;
  stopping_ = true;
  serving_ = false;
  env_.log().error(kComponent, 32001, "disk failure; restarting to recover from what was synced",
                   {{"error", why}});
  env_.request_restart(why);
}

Task<void> PageServer::run() {
  QUIRE_ASSERT(store_ == nullptr && rpc_ == nullptr);  // a node runs its app once
  auto store = co_await SegmentStore::open(env_, options_.store);
  if (store.code() == Code::kInvalidArgument) {
    env_.log().error(kComponent, 32020, "the data directory cannot be used; not starting",
                     {{"error", store.status()}});
    start_error_ = Status(store.status()).at("open_store");
    co_return;
  }
  if (!store.is_ok()) {
    fail_stop(store.status());
    co_return;
  }
  store_ = std::move(store).value();
  // A store opened empty copies everything its peers hold; one whose retention point
  // jumped a gap before it stopped copies what is after the gap's start.
  copying_ =
      !options_.peers.empty() && (store_->copy_from().has_value() || store_->last_lsn().is_zero());
  copy_cursor_ = store_->copy_from().value_or(Lsn(0));
  max_term_ = store_->max_term();
  rpc_ = std::make_unique<RpcServer>(env_, [this](const RpcRequest& r) { return handle(r); });
  Status st = rpc_->start(options_.listen);
  if (!st.is_ok()) {
    env_.log().error(kComponent, 32002, "cannot listen",
                     {{"address", options_.listen}, {"error", st}});
    start_error_ = std::move(st).at("listen");
    co_return;
  }
  serving_ = true;
  env_.log().info(kComponent, 32003, "page server serving",
                  {{"address", rpc_->address()},
                   {"complete_lsn", store_->complete_lsn()},
                   {"term", max_term_}});
  for (const auto& p : options_.peers)
    peer_clients_.push_back(std::make_unique<PageServerClient>(env_, p));
  if (!peer_clients_.empty()) env_.executor().spawn("catch-up", catch_up_loop());
}

// ---- Requests

Task<RpcResponse> PageServer::handle(const RpcRequest& request) {
  if (!serving_ || !store_ || store_->broken())
    co_return response_of(unavailable("page server is not serving"));
  const auto op = static_cast<PageOp>(request.op);
  Status refused = refuse_reads_while_copying(op);
  if (!refused.is_ok()) co_return response_of(std::move(refused));
  switch (op) {
    case PageOp::kAppend:
      co_return co_await decode_and_handle(request, &PageServer::handle_append);
    case PageOp::kReadLog:
      co_return co_await decode_and_handle(request, &PageServer::handle_read_log);
    case PageOp::kGetPage:
      co_return co_await decode_and_handle(request, &PageServer::handle_get_page);
    case PageOp::kLatestCheckpoint:
      co_return co_await decode_and_handle(request, &PageServer::handle_latest_checkpoint);
    case PageOp::kListCheckpoints:
      co_return co_await decode_and_handle(request, &PageServer::handle_list_checkpoints);
    case PageOp::kSeal:
      co_return co_await decode_and_handle(request, &PageServer::handle_seal);
    case PageOp::kAbandonAfter:
      co_return co_await decode_and_handle(request, &PageServer::handle_abandon_after);
    case PageOp::kSetRetention:
      co_return co_await decode_and_handle(request, &PageServer::handle_set_retention);
    case PageOp::kStatus:
      co_return co_await decode_and_handle(request, &PageServer::handle_status);
    case PageOp::kScan:
      co_return co_await decode_and_handle(request, &PageServer::handle_scan);
    case PageOp::kFence:
      co_return co_await decode_and_handle(request, &PageServer::handle_fence);
    case PageOp::kCommitHint:
      co_return co_await decode_and_handle(request, &PageServer::handle_commit_hint);
  }
  co_return response_of(
      Status(Code::kInvalidArgument, "unknown page service operation").with("op", request.op));
}

// Until a retention point arrives the chain from LSN 0 is honest; after one, complete_lsn
// may have jumped over records not copied yet.
Status PageServer::refuse_reads_while_copying(PageOp op) const {
  const bool client_read = op == PageOp::kReadLog || op == PageOp::kGetPage ||
                           op == PageOp::kLatestCheckpoint || op == PageOp::kListCheckpoints;
  // Gaps count from the moment the store has them: set_retention returns (and the copy
  // starts, start_gap_copy) only after the jump's segments are deleted, and reads in
  // between must not be served from the older images the store kept.
  const bool gaps = store_->copy_from().has_value() && !options_.peers.empty();
  if (!client_read || !(copying_ || gaps) || store_->retention_lsn().is_zero()) return Status();
  return Status(Code::kNotYetMaterialized,
                "this server restarted empty or stale and is still copying from its peers")
      .with("copied_through", copy_cursor_.value);
}

template <typename Request, typename Out>
Task<RpcResponse> PageServer::decode_and_handle(const RpcRequest& request,
                                                Task<Out> (PageServer::*handler)(Request)) {
  Result<Request> decoded = Request::decode(request);
  if (!decoded.is_ok()) co_return response_of(decoded.status());
  Status bounds = check_request_bounds(*decoded);
  if (!bounds.is_ok()) co_return response_of(std::move(bounds));
  Out out = co_await (this->*handler)(std::move(decoded).value());
  co_return response_of(std::move(out));
}

Task<Status> PageServer::check_term(Term term) {
  if (term > max_term_) {
    // Durable before anything acts on it: a restart must not forget a fence.
    Status raised = store_result(co_await store_->raise_term(term));
    if (!raised.is_ok()) co_return raised;
    // Another request may have raised it further meanwhile (the store holds the highest).
    max_term_ = std::max(max_term_, store_->max_term());
    QUIRE_ASSERT(max_term_ >= term);
  }
  if (term < max_term_) {
    co_return Status(Code::kFenced, "a newer writer term has been seen")
        .with("term", term.value)
        .with("highest_term", max_term_.value);
  }
  co_return Status();
}

Status PageServer::store_result(Status st) {
  // Every change to the store passes here: the chain may have grown for a waiting reader.
  log_changed_.notify_all();
  if (st.code() == Code::kIo) fail_stop(st);
  return st;
}

Task<Result<std::vector<Record>>> PageServer::read_records(const std::vector<RecordRef>& refs) {
  auto records = co_await store_->read_many(refs);
  if (!records.is_ok()) co_return records.status();
  QUIRE_ASSERT(records->size() == refs.size());
  // read_many checks each record it found is the one asked for.
  for (size_t i = 0; i < refs.size(); i++) QUIRE_ASSERT((*records)[i].lsn == refs[i].lsn);
  co_return records;
}

Task<Result<AppendAck>> PageServer::handle_append(AppendRequest request) {
  for (const auto& r : request.records) {
    Status v = validate_record(r);
    if (!v.is_ok()) co_return v;
    if (r.term > request.term) {
      // The header term raises the store's max_term, so it must not be above the term this
      // request was fenced with. Below it is a newer writer re-writing the tail of an older
      // term it recovered at take-over; fencing is durable through TERM markers, so a
      // lower header term weakens nothing.
      co_return Status(Code::kInvalidArgument, "record term above the request's term")
          .with("lsn", r.lsn.value)
          .with("record_term", r.term.value)
          .with("request_term", request.term.value);
    }
  }
  Status t = co_await check_term(request.term);
  if (!t.is_ok()) co_return t;
  note_commit_hint(request);
  // The store checks the term again under its write lock: a fence that came meanwhile wins.
  Status st = store_result(
      co_await store_->append(std::move(request.records), AppendSource::kWriter, request.term));
  if (!st.is_ok()) co_return st;
  const auto micros = std::chrono::ceil<std::chrono::microseconds>(store_->last_sync()).count();
  co_return AppendAck{static_cast<uint64_t>(std::max<int64_t>(micros, 0))};
}

// A LOG record names, in its backlink, the LSN up to which its writer's log was durable
// at W when it was written. Taken as the write arrives, not once it is synced here, it
// lets a standby apply what it already read up to there while the record carrying the
// point is still on its way to this disk (one server's slow fdatasync no longer delays
// what W others made durable). The point is the writer's word about its own chain: a
// standby uses it only where the record it holds at that LSN is of the writer's term
// (Standby::take_commit_hint), since LSNs above a commit point can be re-used by a later
// term. Only records of the request's term count (a writer re-sending an older term's
// tail at take-over makes no claim of its own for it).
void PageServer::note_commit_hint(const AppendRequest& request) {
  for (const Record& r : request.records) {
    if (r.type != RecordType::kLog || r.term != request.term) continue;
    raise_commit_hint(r.term, r.backlink_lsn);
  }
}

void PageServer::raise_commit_hint(Term term, Lsn lsn) {
  if (std::pair(term, lsn) <= std::pair(commit_hint_term_, commit_hint_)) return;
  commit_hint_term_ = term;
  commit_hint_ = lsn;
  log_changed_.notify_all();
}

// The writer's commit point on its own, when no record of its carries it soon: its last
// group became durable and nothing followed it yet, or the groups still in flight were
// sealed before it was durable (their backlinks name an older point). The same word as a
// backlink, under the same fence: nothing is stored, so a server that restarts forgets it
// and readers wait for the next record or heartbeat, as before.
Task<Status> PageServer::handle_commit_hint(CommitHintRequest request) {
  Status t = co_await check_term(request.term);
  if (!t.is_ok()) co_return t;
  raise_commit_hint(request.term, request.lsn);
  co_return Status();
}

Task<Result<LogChunk>> PageServer::handle_read_log(ReadLogRequest request) {
  Status refused = refuse_below_retention(request);
  if (refused.is_ok()) {
    Status waited = co_await wait_for_log(request);
    if (!waited.is_ok()) co_return waited;
    // While the read was held, retention may have moved, and a jump may have started a
    // copy from peers.
    refused = refuse_reads_while_copying(PageOp::kReadLog);
    if (refused.is_ok()) refused = refuse_below_retention(request);
  }
  if (!refused.is_ok()) co_return refused;
  // read_log starts at `from`; scan continues after it.
  const Lsn after = request.from.is_zero() ? Lsn(0) : Lsn(request.from.value - 1);
  auto chunk = co_await read_chunk(request.from.value, after, request.max_bytes, true, false);
  if (chunk.is_ok() && request.hint) {
    chunk->commit_hint = commit_hint_;
    chunk->commit_hint_term = commit_hint_term_;
  }
  co_return chunk;
}

// Garbage collection may have dropped log records at or below the retention point: a
// reader must not take what is left for the whole log.
Status PageServer::refuse_below_retention(const ReadLogRequest& request) const {
  const Lsn retention = store_->retention_lsn();
  if (retention.is_zero() || request.from > retention) return Status();
  return Status(Code::kOlder, "log records at or below the retention point are gone")
      .with("from", request.from.value)
      .with("retention_lsn", retention.value);
}

// A long poll: holds a reader that is at the end of this server's chain, with no newer
// commit hint than it has seen, until one of those changes or its wait is over. Changes
// wake it (log_changed_); it also looks again every kLogWaitSliceMax, so a change that
// no path announced costs at most that. Cancelled only when the server stops. (Holding a
// newer hint back for a millisecond, so that one answer brings it with its write's
// records, saved the standbys 16% of their CPU and cost 0.6 ms of visibility lag at the
// median: docs/figures.md, session 9.)
Task<Status> PageServer::wait_for_log(const ReadLogRequest& request) {
  if (request.wait_ms == 0) co_return Status();
  const Deadline until = env_.executor().deadline_after(std::chrono::milliseconds(request.wait_ms));
  const Lsn end = request.from.is_zero() ? Lsn(0) : Lsn(request.from.value - 1);
  auto nothing_new = [&] {
    const Lsn complete = store_->complete_lsn();
    return (complete == end || (complete > end && complete == request.seen_through)) &&
           commit_hint_ <= request.seen_hint;
  };
  while (nothing_new() && !stopping_) {
    const MonoTime now = env_.executor().now();
    if (now >= until) break;
    Status st = co_await log_changed_.wait(std::min(until, now + kLogWaitSliceMax));
    if (st.code() == Code::kCancelled) co_return st;
  }
  co_return Status();
}

Task<Result<LogChunk>> PageServer::handle_scan(ScanRequest request) {
  co_return co_await read_chunk(request.after.value, request.after, request.max_bytes, false,
                                request.beyond_complete);
}

Task<Result<LogChunk>> PageServer::read_chunk(uint64_t from, Lsn after, uint64_t max_bytes,
                                              bool log_only, bool beyond_complete) {
  // Nothing past a gap in the chain is served, unless the reader assembles the chain
  // itself from several servers (a writer taking over).
  const Lsn complete = beyond_complete ? std::max(store_->complete_lsn(), store_->last_lsn())
                                       : store_->complete_lsn();
  if (after > complete) {
    co_return Status(Code::kNotYetMaterialized, "this server has not reached that lsn")
        .with("from", from)
        .with("complete_lsn", complete.value);
  }
  // Within one frame: the budget, or a single record over it (kResponseRecordBytesMax).
  size_t budget =
      std::min<uint64_t>({max_bytes, options_.response_bytes_max, kResponseRecordBytesMax});
  LogChunk chunk;
  std::vector<RecordRef> refs =
      store_->scan_after(after, complete, budget, log_only, &chunk.through);
  QUIRE_ASSERT(chunk.through >= after && chunk.through <= complete);
  QUIRE_ASSERT(refs.empty() || (refs.front().lsn > after && refs.back().lsn <= chunk.through));
  auto records = co_await read_records(refs);
  if (!records.is_ok()) co_return records.status();
  chunk.records = std::move(records).value();
  co_return chunk;
}

Task<Result<GetPageResponse>> PageServer::handle_get_page(GetPageRequest request) {
  const Lsn complete = store_->complete_lsn();
  if (request.as_of > complete) {
    co_return Status(Code::kNotYetMaterialized, "this server has not reached that lsn")
        .with("as_of", request.as_of.value)
        .with("complete_lsn", complete.value);
  }
  auto chain = store_->page_chain(request.table, request.page, request.as_of);
  if (!chain.is_ok()) co_return chain.status();
  QUIRE_ASSERT(!chain->empty() && chain->back().lsn <= request.as_of);
  GetPageResponse response;
  auto part = plan_part(*chain, request.cursor, request.max_bytes, part_budget_max(),
                        "page's chain", &response.more);
  if (!part.is_ok()) co_return part.status();
  auto records = co_await read_records(*part);
  if (!records.is_ok()) co_return records.status();
  response.records = std::move(records).value();
  co_return response;
}

Task<Result<LatestCheckpointResponse>> PageServer::handle_latest_checkpoint(
    LatestCheckpointRequest) {
  const Lsn complete = store_->complete_lsn();
  std::vector<RecordRef> refs = store_->checkpoints();
  std::erase_if(refs, [&](const RecordRef& r) { return r.lsn > complete; });
  if (refs.empty()) co_return not_found("no completed checkpoint");
  std::vector<RecordRef> newest{refs.back()};
  auto records = co_await read_records(newest);
  if (!records.is_ok()) co_return records.status();
  QUIRE_ASSERT(records->size() == 1);
  co_return LatestCheckpointResponse{std::move(records->front())};
}

Task<Result<ListCheckpointsResponse>> PageServer::handle_list_checkpoints(
    ListCheckpointsRequest request) {
  const Lsn complete = store_->complete_lsn();
  std::vector<RecordRef> refs = store_->checkpoints();
  std::erase_if(refs, [&](const RecordRef& r) { return r.lsn > complete; });
  ListCheckpointsResponse response;
  auto part = plan_part(refs, request.cursor, request.max_bytes, part_budget_max(),
                        "checkpoint list", &response.more);
  if (!part.is_ok()) co_return part.status();
  auto records = co_await read_records(*part);
  if (!records.is_ok()) co_return records.status();
  response.checkpoints = std::move(records).value();
  co_return response;
}

Task<Status> PageServer::handle_seal(SealRequest) {
  Status st = co_await store_->seal();
  co_return store_result(std::move(st));
}

Task<Status> PageServer::handle_abandon_after(AbandonAfterRequest request) {
  Status t = co_await check_term(request.term);
  if (!t.is_ok()) co_return t;
  Status st = co_await store_->abandon_after(request.lsn, request.term);
  co_return store_result(std::move(st));
}

Task<Status> PageServer::handle_set_retention(SetRetentionRequest request) {
  Status t = co_await check_term(request.term);
  if (!t.is_ok()) co_return t;
  Status st = co_await store_->set_retention(request.lsn);
  if (st.is_ok()) start_gap_copy(request.lsn);
  co_return store_result(std::move(st));
}

// After a retention point at `lsn` was set: when it jumped gaps in this server's chain (it
// restarted stale, or missed writes), the live records in them come from a peer before
// reads do.
void PageServer::start_gap_copy(Lsn lsn) {
  if (!store_->copy_from() || options_.peers.empty()) return;
  // From the first gap, even when a copy from empty had gone further: the chain it
  // copied may have been cut since (an abandon), and the gaps are what is missing now.
  copy_cursor_ = *store_->copy_from();
  if (copying_) return;
  copying_ = true;
  env_.log().info(kComponent, 32006, "retention jumped a gap; copying from peers",
                  {{"retention_lsn", lsn}, {"copy_from", copy_cursor_}});
}

Task<Result<PageServerStatus>> PageServer::handle_status(StatusRequest) {
  SegmentStoreStats s = store_->stats();
  PageServerStatus ps;
  ps.last_lsn = s.last_lsn;
  ps.durable_lsn = s.complete_lsn;
  ps.retention_lsn = s.retention_lsn;
  if (store_->copy_from()) {
    // The chain looks complete past gaps still being copied: peers catching up from this
    // server (and a writer taking over) are told only how far it is whole, and where its
    // gaps are. They may copy more from it, but count as copied only what it holds whole
    // (copy_reach); so servers that all restarted stale copy from one another without
    // waiting, each the stretches the others hold.
    ps.durable_lsn = std::min(s.complete_lsn, *store_->copy_from());
    const std::vector<CopyGap>& gaps = store_->copy_gaps();
    if (gaps.back().to <= s.complete_lsn) {  // not so after a jump cut short by a crash
      ps.copy_gaps = gaps;
      ps.chain_lsn = s.complete_lsn;
    }
  }
  ps.segments = s.segments;
  ps.sealed_count = s.sealed_segments;
  ps.term = max_term_;
  ps.records = s.records;
  ps.bytes = s.bytes;
  ps.damaged_ranges = s.damaged;
  co_return ps;
}

// The status is read after the raise: no write of a lower term is stored after it
// (SegmentStore::append checks the term under its write lock), so last_lsn and
// durable_lsn cover every record this server will ever hold of the fenced terms.
Task<Result<PageServerStatus>> PageServer::handle_fence(FenceRequest request) {
  Status t = co_await check_term(request.term);
  if (!t.is_ok()) co_return t;
  const StatusRequest status;
  co_return co_await handle_status(status);
}

// ---- Catching up from peers

Task<void> PageServer::catch_up_loop() {
  QUIRE_ASSERT(!peer_clients_.empty() && peer_clients_.size() == options_.peers.size());
  size_t next = 0;
  while (!stopping_) {
    if (!(co_await env_.executor().sleep(options_.catchup_interval)).is_ok()) co_return;
    if (!store_ || store_->broken()) co_return;
    Status st = co_await catch_up_from(*peer_clients_[next % peer_clients_.size()]);
    if (st.code() == Code::kCancelled) co_return;
    next++;
  }
}

// How far a full copy at `cursor` may move on records scanned from `peer`: to the end of
// the range, holding `cursor`, that the peer holds whole (every record live at its
// retention point). A peer copying gaps of its own holds its chain whole outside them up
// to its chain's end, not inside: a copy must not take a peer's gap for copied because
// the peer's scan returned the records after it (a server copying from empty whose only
// reachable peer was copying a gap finished without the gap's records). `cursor` itself
// when the peer holds nothing whole past it.
Lsn PageServer::copy_reach(const PageServerStatus& peer, Lsn cursor) {
  const Lsn end = peer.copy_gaps.empty() ? peer.durable_lsn : peer.chain_lsn;
  if (cursor >= end) return cursor;
  for (const CopyGap& g : peer.copy_gaps) {
    if (cursor < g.from) return g.from;
    if (cursor < g.to) return cursor;  // in the gap: records after it may be missing there
  }
  return end;
}

// Whether `peer` holds records this server has not got: past the full copy's cursor, in a
// range the peer holds whole, while copying; past complete_lsn otherwise.
bool PageServer::behind(const PageServerStatus& peer) const {
  // A peer copying a gap below our chain's end still extends it past the gap: not copying,
  // the chain's links alone decide what counts.
  return copying_ ? copy_reach(peer, copy_cursor_) > copy_cursor_
                  : std::max(peer.durable_lsn, peer.chain_lsn) > store_->complete_lsn();
}

// Copies the records a peer has past our complete_lsn, as long as the peer is further
// along and its records extend our chain.
Task<Status> PageServer::catch_up_from(PageServerClient& peer) {
  auto status =
      co_await peer.status(env_.executor().deadline_after(options_.catchup_status_timeout));
  if (!status.is_ok()) co_return status.status();
  // The peer has nothing we have not copied.
  QUIRE_CO_RETURN_IF_ERROR(
      co_await finish_copy_if_done(peer.server(), copy_cursor_, status->durable_lsn));
  for (uint64_t round = 0; round < options_.catchup_round_max && behind(*status); ++round) {
    if (round > 0 && copying_) {
      // What the peer holds whole is read again before each scan a copy counts: the peer
      // may have restarted, or jumped gaps of its own, since the last one.
      status =
          co_await peer.status(env_.executor().deadline_after(options_.catchup_status_timeout));
      if (!status.is_ok()) co_return status.status();
      if (!behind(*status)) break;
    }
    const Lsn peer_complete = status->durable_lsn;
    // A store that restarted empty copies everything the peer holds, from the start; one
    // that is merely behind continues from its complete point.
    const Lsn before = copying_ ? copy_cursor_ : store_->complete_lsn();
    const Lsn reach = copy_reach(*status, before);
    auto chunk = co_await peer.scan(before, options_.response_bytes_max,
                                    env_.executor().deadline_after(options_.catchup_scan_timeout));
    if (!chunk.is_ok()) co_return chunk.status();
    if (chunk->records.empty()) {
      // Nothing past `before` at all: the peer's whole range holds no live record more.
      QUIRE_CO_RETURN_IF_ERROR(co_await finish_copy_if_done(
          peer.server(), std::max(copy_cursor_, std::min(chunk->through, reach)), peer_complete));
      break;
    }
    const bool copying = copying_;
    Status st = co_await append_from_peer(peer.server(), std::move(chunk).value(), before, reach,
                                          peer_complete);
    if (!st.is_ok()) co_return st;
    if (copying) continue;
    if (store_->complete_lsn() == before) break;  // the peer's records do not extend our chain
  }
  co_return co_await adopt_retention(peer.server(), *status);
}

// A chain that ends below a peer's retention point cannot be extended from that peer: it
// dropped the log records below it. This server missed that retention point (it was down
// or cut off when the writer set it), and a writer sends it again only with its next
// checkpoint, which an idle database may never take: so it takes the peer's, which jumps
// its chain, and copies the gaps (a server that stayed at its chain's end kept standbys
// reading from it at that end: PrimarySealChaosTest seed 8). Once the scans above stored a
// checkpoint at or above that point; until then the store refuses it and this waits.
Task<Status> PageServer::adopt_retention(const Address& peer, const PageServerStatus& status) {
  const Lsn lsn = status.retention_lsn;
  if (copying_ || lsn <= store_->retention_lsn() || lsn <= store_->complete_lsn() ||
      lsn > store_->checkpoint_log_lsn()) {
    co_return Status();
  }
  env_.log().info(
      kComponent, 32007, "adopting a peer's retention point above this chain's end",
      {{"peer", peer}, {"retention_lsn", lsn}, {"complete_lsn", store_->complete_lsn()}});
  Status st = store_result(co_await store_->set_retention(lsn));
  if (!st.is_ok()) co_return st;
  start_gap_copy(lsn);
  co_return Status();
}

// Stores one chunk a peer sent, and moves the full copy's cursor past it, within `reach`
// (copy_reach: the records beyond it are stored, but do not count as copied).
Task<Status> PageServer::append_from_peer(const Address& peer, LogChunk chunk, Lsn before,
                                          Lsn reach, Lsn peer_complete) {
  for (const auto& r : chunk.records) QUIRE_CO_RETURN_IF_ERROR(validate_record(r));
  const size_t n = chunk.records.size();
  // A peer's copy may hold records the chain has since abandoned: dropped, not refused.
  Status st = co_await store_->append(std::move(chunk.records), AppendSource::kPeer);
  QUIRE_CO_RETURN_IF_ERROR(store_result(std::move(st)));
  env_.log().info(kComponent, 32004, "caught up from a peer",
                  {{"peer", peer},
                   {"records", n},
                   {"from_lsn", before},
                   {"complete_lsn", store_->complete_lsn()}});
  if (copying_) {
    copy_cursor_ = std::max(copy_cursor_, std::min(chunk.through, reach));
    QUIRE_CO_RETURN_IF_ERROR(co_await finish_copy_if_done(peer, copy_cursor_, peer_complete));
  }
  co_return Status();
}

// Records how far the copy reached. Copying gaps: the store forgets those below
// `copied_through` (durably, before reads are served: a restart must not take a gap for
// copied), and the cursor moves on to the next one, since between them the store holds
// its chain itself; the copy is done when none is left. Copying from empty, before any
// retention point (so without gaps): done once it reached the peer's complete point.
Task<Status> PageServer::finish_copy_if_done(const Address& peer, Lsn copied_through,
                                             Lsn peer_complete) {
  if (!copying_) co_return Status();
  if (store_->copy_from()) {
    if (copied_through <= *store_->copy_from()) co_return Status();
    Status st = store_result(co_await store_->finish_copy(copied_through));
    if (!st.is_ok()) co_return st;
    if (!copying_) co_return Status();
    if (store_->copy_from()) {
      copy_cursor_ = std::max(copy_cursor_, *store_->copy_from());
      co_return Status();
    }
  } else if (copied_through < peer_complete || copied_through < store_->retention_lsn()) {
    co_return Status();
  }
  copying_ = false;
  env_.log().info(kComponent, 32005, "copy from peers complete; serving reads",
                  {{"peer", peer}, {"copied_through", copy_cursor_}});
  co_return Status();
}

}  // namespace quire
