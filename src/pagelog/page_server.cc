#include "pagelog/page_server.h"

#include <fmt/format.h>

namespace quire {

namespace {
constexpr const char* kComponent = "pageserver";
constexpr size_t kRecordsMax = 1u << 20;  // per message
constexpr size_t kDamagedMax = 1024;      // ranges reported in a status
}  // namespace

Bytes encode_records(const std::vector<Record>& records) {
  Bytes out;
  ByteWriter w(out);
  w.put_varint64(records.size());
  for (const auto& r : records) encode_record(r, out);
  return out;
}

namespace {
// Decodes a count-prefixed list of records from the front of `in`; `consumed` gets the
// bytes it used.
Result<std::vector<Record>> decode_record_list(ByteView in, size_t* consumed) {
  ByteReader r(in);
  uint64_t n = 0;
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&n));
  if (n > kRecordsMax)
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
  *consumed = pos;
  return out;
}
}  // namespace

Result<std::vector<Record>> decode_records(ByteView in) {
  size_t consumed = 0;
  auto records = decode_record_list(in, &consumed);
  if (records.is_ok() && consumed != in.size())
    return corruption("trailing bytes after the records");
  return records;
}

namespace {
// A chunk is encode_records() followed by the through LSN.
Result<LogChunk> decode_chunk(ByteView in) {
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
}  // namespace

Bytes encode_status(const PageServerStatus& s) {
  Bytes out;
  ByteWriter w(out);
  w.put_varint64(s.last_lsn.value);
  w.put_varint64(s.durable_lsn.value);
  w.put_varint64(s.segments);
  w.put_varint64(s.sealed_count);
  w.put_varint64(s.term.value);
  w.put_varint64(s.records);
  w.put_varint64(s.bytes);
  size_t n = std::min(s.damaged_ranges.size(), kDamagedMax);
  w.put_varint64(n);
  for (size_t i = 0; i < n; ++i) {
    w.put_varint64(s.damaged_ranges[i].segment);
    w.put_varint64(s.damaged_ranges[i].begin);
    w.put_varint64(s.damaged_ranges[i].end);
  }
  return out;
}

Result<PageServerStatus> decode_status(ByteView in) {
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
  if (n > kDamagedMax) return corruption("too many damaged ranges in a status");
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

// ---- Server

PageServer::PageServer(Env& env, PageServerOptions options)
    : env_(env), options_(std::move(options)) {}
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
  auto store = co_await SegmentStore::open(env_, options_.store);
  if (!store.is_ok()) {
    fail_stop(store.status());
    co_return;
  }
  store_ = std::move(store).value();
  copying_from_empty_ = store_->last_lsn().is_zero() && !options_.peers.empty();
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
    peer_clients_.push_back(std::make_unique<RpcClient>(env_, p));
  if (!peer_clients_.empty()) env_.executor().spawn("catch-up", catch_up_loop());
}

Task<Status> PageServer::check_term(uint64_t term) {
  if (Term(term) < max_term_) {
    co_return Status(Code::kFenced, "a newer writer term has been seen")
        .with("term", term)
        .with("highest_term", max_term_.value);
  }
  max_term_ = Term(term);
  co_return Status();
}

Task<RpcResponse> PageServer::handle(const RpcRequest& request) {
  RpcResponse resp;
  auto fail = [&](Status st) {
    resp.status = std::move(st);
    return resp;
  };
  if (!serving_ || !store_ || store_->broken())
    co_return fail(unavailable("page server is not serving"));
  ByteReader in(request.body);
  SegmentStore& store = *store_;
  const Lsn complete = store.complete_lsn();
  auto read_refs = [&](const std::vector<RecordRef>& refs) -> Task<Result<std::vector<Record>>> {
    std::vector<Record> out;
    for (const auto& ref : refs) {
      auto r = co_await store.read(ref);
      if (!r.is_ok()) co_return r.status();
      out.push_back(std::move(r).value());
    }
    co_return out;
  };

  const auto op = static_cast<PageOp>(request.op);
  // Until a retention point arrives the chain from LSN 0 is honest; after one, complete_lsn
  // may have jumped over records not copied yet.
  if (copying_from_empty_ && !store.retention_lsn().is_zero() &&
      (op == PageOp::kReadLog || op == PageOp::kGetPage || op == PageOp::kLatestCheckpoint ||
       op == PageOp::kListCheckpoints)) {
    co_return fail(Status(Code::kNotYetMaterialized,
                          "this server restarted empty and is still copying from its peers")
                       .with("copied_through", copy_cursor_.value));
  }
  switch (op) {
    case PageOp::kAppend: {
      auto records = decode_records(request.body);
      if (!records.is_ok()) co_return fail(records.status());
      for (const auto& r : *records) {
        Status v = validate_record(r);
        if (!v.is_ok()) co_return fail(v);
      }
      Status t = co_await check_term(request.term);
      if (!t.is_ok()) co_return fail(t);
      Status st = co_await store.append(std::move(records).value());
      if (st.code() == Code::kIo) fail_stop(st);
      co_return fail(st);
    }
    case PageOp::kReadLog:
    case PageOp::kScan: {
      uint64_t from = 0, max_bytes = 0;
      if (!in.get_varint64(&from).is_ok() || !in.get_varint64(&max_bytes).is_ok()) {
        co_return fail(invalid_argument("malformed read request"));
      }
      bool log_only = static_cast<PageOp>(request.op) == PageOp::kReadLog;
      // read_log starts at `from`; scan continues after it. Nothing past a gap is served.
      Lsn after = log_only ? Lsn(from == 0 ? 0 : from - 1) : Lsn(from);
      if (log_only && !store.retention_lsn().is_zero() && Lsn(from) <= store.retention_lsn()) {
        // Garbage collection may have dropped log records there: a reader must not take
        // what is left for the whole log.
        co_return fail(Status(Code::kOlder, "log records at or below the retention point are gone")
                           .with("from", from)
                           .with("retention_lsn", store.retention_lsn().value));
      }
      if (after > complete) {
        co_return fail(Status(Code::kNotYetMaterialized, "this server has not reached that lsn")
                           .with("from", from)
                           .with("complete_lsn", complete.value));
      }
      size_t budget = std::min<uint64_t>(max_bytes, options_.response_bytes_max);
      Lsn through;
      std::vector<RecordRef> refs = store.scan_after(after, complete, budget, log_only, &through);
      auto records = co_await read_refs(refs);
      if (!records.is_ok()) co_return fail(records.status());
      resp.body = encode_records(*records);
      ByteWriter(resp.body).put_varint64(through.value);
      co_return resp;
    }
    case PageOp::kGetPage: {
      uint64_t table = 0, page = 0, as_of = 0;
      if (!in.get_varint64(&table).is_ok() || !in.get_varint64(&page).is_ok() ||
          !in.get_varint64(&as_of).is_ok()) {
        co_return fail(invalid_argument("malformed get_page request"));
      }
      if (Lsn(as_of) > complete) {
        co_return fail(Status(Code::kNotYetMaterialized, "this server has not reached that lsn")
                           .with("as_of", as_of)
                           .with("complete_lsn", complete.value));
      }
      auto chain = store.page_chain(TableId(table), PageId(page), Lsn(as_of));
      if (!chain.is_ok()) co_return fail(chain.status());
      auto records = co_await read_refs(*chain);
      if (!records.is_ok()) co_return fail(records.status());
      resp.body = encode_records(*records);
      co_return resp;
    }
    case PageOp::kLatestCheckpoint:
    case PageOp::kListCheckpoints: {
      std::vector<RecordRef> refs = store.checkpoints();
      std::erase_if(refs, [&](const RecordRef& r) { return r.lsn > complete; });
      if (static_cast<PageOp>(request.op) == PageOp::kLatestCheckpoint) {
        if (refs.empty()) co_return fail(not_found("no completed checkpoint"));
        refs = {refs.back()};
      }
      auto records = co_await read_refs(refs);
      if (!records.is_ok()) co_return fail(records.status());
      resp.body = encode_records(*records);
      co_return resp;
    }
    case PageOp::kSeal: {
      Status st = co_await store.seal();
      if (st.code() == Code::kIo) fail_stop(st);
      co_return fail(st);
    }
    case PageOp::kAbandonAfter:
    case PageOp::kSetRetention: {
      uint64_t lsn = 0;
      if (!in.get_varint64(&lsn).is_ok()) co_return fail(invalid_argument("malformed request"));
      Status t = co_await check_term(request.term);
      if (!t.is_ok()) co_return fail(t);
      // Not a conditional expression of two co_awaits: g++ 12 destroys its temporaries twice.
      Status st;
      if (static_cast<PageOp>(request.op) == PageOp::kAbandonAfter) {
        st = co_await store.abandon_after(Lsn(lsn));
      } else {
        st = co_await store.set_retention(Lsn(lsn));
      }
      if (st.code() == Code::kIo) fail_stop(st);
      co_return fail(st);
    }
    case PageOp::kStatus: {
      SegmentStoreStats s = store.stats();
      PageServerStatus ps;
      ps.last_lsn = s.last_lsn;
      ps.durable_lsn = s.complete_lsn;
      ps.segments = s.segments;
      ps.sealed_count = s.sealed_segments;
      ps.term = max_term_;
      ps.records = s.records;
      ps.bytes = s.bytes;
      ps.damaged_ranges = s.damaged;
      resp.body = encode_status(ps);
      co_return resp;
    }
  }
  co_return fail(
      Status(Code::kInvalidArgument, "unknown page service operation").with("op", request.op));
}

Task<void> PageServer::catch_up_loop() {
  size_t next = 0;
  while (!stopping_) {
    if (!(co_await env_.executor().sleep(options_.catch_up_interval)).is_ok()) co_return;
    if (!store_ || store_->broken()) co_return;
    Status st = co_await catch_up_from(options_.peers[next % options_.peers.size()]);
    if (st.code() == Code::kCancelled) co_return;
    next++;
  }
}

// Copies the records a peer has past our complete_lsn, as long as the peer is further
// along and its records extend our chain.
Task<Status> PageServer::catch_up_from(const Address& peer) {
  RpcClient* client = nullptr;
  for (auto& c : peer_clients_) {
    if (c->server() == peer) client = c.get();
  }
  QUIRE_ASSERT(client != nullptr);
  auto deadline = env_.executor().deadline_after(2s);
  auto st_bytes = co_await client->call(static_cast<uint8_t>(PageOp::kStatus), 0, {}, deadline);
  if (!st_bytes.is_ok()) co_return st_bytes.status();
  auto status = decode_status(*st_bytes);
  if (!status.is_ok()) co_return status.status();
  if (copying_from_empty_ && status->durable_lsn <= copy_cursor_) {
    copying_from_empty_ = false;  // the peer has nothing we have not copied
    env_.log().info(kComponent, 32005, "copy from peers complete; serving reads", {{"peer", peer}});
  }
  for (int rounds = 0;
       rounds < 64 && (copying_from_empty_ ? status->durable_lsn > copy_cursor_
                                           : status->durable_lsn > store_->complete_lsn());
       ++rounds) {
    // A store that restarted empty copies everything the peer holds, from the start; one
    // that is merely behind continues from its complete point.
    Lsn before = copying_from_empty_ ? copy_cursor_ : store_->complete_lsn();
    Bytes req;
    ByteWriter w(req);
    w.put_varint64(before.value);
    w.put_varint64(options_.response_bytes_max);
    auto body = co_await client->call(static_cast<uint8_t>(PageOp::kScan), 0, std::move(req),
                                      env_.executor().deadline_after(5s));
    if (!body.is_ok()) co_return body.status();
    auto chunk = decode_chunk(*body);
    if (!chunk.is_ok()) co_return chunk.status();
    const Lsn through = chunk->through;
    if (chunk->records.empty()) {
      if (copying_from_empty_ && through >= status->durable_lsn) {
        copying_from_empty_ = false;
        env_.log().info(kComponent, 32005, "copy from peers complete; serving reads",
                        {{"peer", peer}});
      }
      break;
    }
    for (const auto& r : chunk->records) QUIRE_CO_RETURN_IF_ERROR(validate_record(r));
    size_t n = chunk->records.size();
    Status st = co_await store_->append(std::move(chunk->records));
    if (st.code() == Code::kIo) {
      fail_stop(st);
      co_return st;
    }
    if (!st.is_ok()) co_return st;
    env_.log().info(kComponent, 32004, "caught up from a peer",
                    {{"peer", peer},
                     {"records", n},
                     {"from_lsn", before},
                     {"complete_lsn", store_->complete_lsn()}});
    if (copying_from_empty_) {
      copy_cursor_ = std::max(copy_cursor_, through);
      if (copy_cursor_ >= status->durable_lsn) {
        copying_from_empty_ = false;
        env_.log().info(kComponent, 32005, "copy from peers complete; serving reads",
                        {{"peer", peer}, {"copied_through", copy_cursor_}});
      }
      continue;
    }
    if (store_->complete_lsn() == before) break;  // the peer's records do not extend our chain
  }
  co_return Status();
}

// ---- Client

namespace {
Bytes lsn_body(uint64_t a) {
  Bytes b;
  ByteWriter(b).put_varint64(a);
  return b;
}
}  // namespace

Task<Status> PageServerClient::append(const std::vector<Record>& records, Term term,
                                      Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kAppend), term.value,
                              encode_records(records), deadline);
  co_return r.status();
}

Task<Result<LogChunk>> PageServerClient::chunk_call(PageOp op, Lsn lsn, size_t max_bytes,
                                                    Deadline deadline) {
  Bytes b;
  ByteWriter w(b);
  w.put_varint64(lsn.value);
  w.put_varint64(max_bytes);
  auto r = co_await rpc_.call(static_cast<uint8_t>(op), 0, std::move(b), deadline);
  if (!r.is_ok()) co_return r.status();
  co_return decode_chunk(*r);
}

Task<Result<LogChunk>> PageServerClient::read_log(Lsn from, size_t max_bytes, Deadline deadline) {
  return chunk_call(PageOp::kReadLog, from, max_bytes, deadline);
}

Task<Result<LogChunk>> PageServerClient::scan(Lsn after, size_t max_bytes, Deadline deadline) {
  return chunk_call(PageOp::kScan, after, max_bytes, deadline);
}

Task<Result<std::vector<Record>>> PageServerClient::get_page(TableId table, PageId page, Lsn as_of,
                                                             Deadline deadline) {
  Bytes b;
  ByteWriter w(b);
  w.put_varint64(table.value);
  w.put_varint64(page.value);
  w.put_varint64(as_of.value);
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kGetPage), 0, std::move(b), deadline);
  if (!r.is_ok()) co_return r.status();
  co_return decode_records(*r);
}

Task<Result<Record>> PageServerClient::latest_checkpoint(Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kLatestCheckpoint), 0, {}, deadline);
  if (!r.is_ok()) co_return r.status();
  auto records = decode_records(*r);
  if (!records.is_ok()) co_return records.status();
  if (records->size() != 1)
    co_return corruption("latest_checkpoint returned other than one record");
  co_return std::move(records->front());
}

Task<Result<std::vector<Record>>> PageServerClient::list_checkpoints(Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kListCheckpoints), 0, {}, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return decode_records(*r);
}

Task<Status> PageServerClient::seal(Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kSeal), 0, {}, deadline);
  co_return r.status();
}

Task<Status> PageServerClient::abandon_after(Lsn lsn, Term term, Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kAbandonAfter), term.value,
                              lsn_body(lsn.value), deadline);
  co_return r.status();
}

Task<Status> PageServerClient::set_retention(Lsn lsn, Term term, Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kSetRetention), term.value,
                              lsn_body(lsn.value), deadline);
  co_return r.status();
}

Task<Result<PageServerStatus>> PageServerClient::status(Deadline deadline) {
  auto r = co_await rpc_.call(static_cast<uint8_t>(PageOp::kStatus), 0, {}, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return decode_status(*r);
}

}  // namespace quire
