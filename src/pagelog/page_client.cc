#include "pagelog/page_client.h"

namespace quire {

namespace {

std::vector<Record>& records_of(GetPageResponse& r) {
  return r.records;
}
std::vector<Record>& records_of(ListCheckpointsResponse& r) {
  return r.checkpoints;
}

// A part continues the records before it: after the cursor, in LSN order, and not empty
// when more follow (the read would not progress).
Status check_part(const std::vector<Record>& records, bool more, Lsn after) {
  Lsn last = after;
  for (const Record& r : records) {
    if (r.lsn <= last) {
      return Status(Code::kCorruption, "a part does not continue the records before it")
          .with("lsn", r.lsn.value)
          .with("after", last.value);
    }
    last = r.lsn;
  }
  if (more && records.empty()) return corruption("an empty part says more parts follow");
  return Status();
}

}  // namespace

template <typename Part>
Task<Result<std::vector<Record>>> PageServerClient::read_in_parts(Part part) {
  std::vector<Record> out;
  PartCursor cursor;
  size_t bytes = 0;
  for (uint64_t n = 0; n < options_.read_parts_max; ++n) {
    auto r = co_await part(cursor);
    if (!r.is_ok()) co_return r.status();
    std::vector<Record>& got = records_of(*r);
    QUIRE_CO_RETURN_IF_ERROR(check_part(got, r->more, cursor.after));
    for (Record& rec : got) {
      bytes += rec.framed_size();
      out.push_back(std::move(rec));
    }
    if (bytes > options_.read_bytes_max) {
      co_return Status(Code::kInvalidArgument, "the answer is larger than this client reads")
          .with("bytes", bytes)
          .with("read_bytes_max", options_.read_bytes_max);
    }
    if (!r->more) co_return out;
    cursor = PartCursor{out.front().lsn, out.back().lsn};
  }
  co_return Status(Code::kInvalidArgument, "the answer has more parts than this client reads")
      .with("read_parts_max", options_.read_parts_max)
      .with("records", out.size());
}

template <typename Response>
Task<Result<Response>> PageServerClient::send(RpcRequest request, Deadline deadline) {
  auto body = co_await rpc_.call(request.op, request.term, std::move(request.body), deadline);
  if (!body.is_ok()) co_return body.status();
  co_return Response::decode(*body);
}

template <typename Request>
Task<Result<typename Request::Response>> PageServerClient::call(const Request& request,
                                                                Deadline deadline) {
  RpcRequest encoded = request.encode();
  co_return co_await send<typename Request::Response>(std::move(encoded), deadline);
}

Task<Status> PageServerClient::append(const std::vector<Record>& records, Term term,
                                      Deadline deadline) {
  auto encoded = std::make_shared<const Bytes>(encode_records(records));
  co_return (co_await append_encoded(std::move(encoded), term, deadline)).status();
}

Task<Result<AppendAck>> PageServerClient::append_encoded(std::shared_ptr<const Bytes> records,
                                                         Term term, Deadline deadline) {
  auto body = co_await rpc_.call(static_cast<uint8_t>(AppendRequest::kOp), term.value,
                                 std::move(records), deadline);
  if (!body.is_ok()) co_return body.status();
  co_return AppendAck::decode(*body);
}

Task<Result<LogChunk>> PageServerClient::read_log(Lsn from, size_t max_bytes, Deadline deadline,
                                                  LogWait wait) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait.wait).count();
  const ReadLogRequest request{
      from,
      max_bytes,
      std::min<uint64_t>(static_cast<uint64_t>(std::max<int64_t>(ms, 0)), kReadLogWaitMsMax),
      wait.seen_hint,
      wait.seen_through,
      /*hint=*/true};
  co_return co_await call(request, deadline);
}

Task<Result<LogChunk>> PageServerClient::scan(Lsn after, size_t max_bytes, Deadline deadline,
                                              bool beyond_complete) {
  const ScanRequest request{after, max_bytes, beyond_complete};
  co_return co_await call(request, deadline);
}

Task<Result<std::vector<Record>>> PageServerClient::get_page(TableId table, PageId page, Lsn as_of,
                                                             Deadline deadline) {
  auto part = [this, table, page, as_of, deadline](PartCursor cursor) {
    return get_page_part(table, page, as_of, cursor, deadline);
  };
  co_return co_await read_in_parts(part);
}

Task<Result<GetPageResponse>> PageServerClient::get_page_part(TableId table, PageId page, Lsn as_of,
                                                              PartCursor cursor,
                                                              Deadline deadline) {
  const GetPageRequest request{table, page, as_of, cursor, options_.part_bytes_max};
  co_return co_await call(request, deadline);
}

Task<Result<Record>> PageServerClient::latest_checkpoint(Deadline deadline) {
  const LatestCheckpointRequest request{};
  auto r = co_await call(request, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return std::move(r->checkpoint);
}

Task<Result<std::vector<Record>>> PageServerClient::list_checkpoints(Deadline deadline) {
  auto part = [this, deadline](PartCursor cursor) {
    return list_checkpoints_part(cursor, deadline);
  };
  co_return co_await read_in_parts(part);
}

Task<Result<ListCheckpointsResponse>> PageServerClient::list_checkpoints_part(PartCursor cursor,
                                                                              Deadline deadline) {
  const ListCheckpointsRequest request{cursor, options_.part_bytes_max};
  co_return co_await call(request, deadline);
}

Task<Status> PageServerClient::seal(Deadline deadline) {
  const SealRequest request{};
  auto r = co_await call(request, deadline);
  co_return r.status();
}

Task<Status> PageServerClient::abandon_after(Lsn lsn, Term term, Deadline deadline) {
  const AbandonAfterRequest request{lsn, term};
  auto r = co_await call(request, deadline);
  co_return r.status();
}

Task<Status> PageServerClient::set_retention(Lsn lsn, Term term, Deadline deadline) {
  const SetRetentionRequest request{lsn, term};
  auto r = co_await call(request, deadline);
  co_return r.status();
}

Task<Status> PageServerClient::commit_hint(Lsn lsn, Term term, Deadline deadline) {
  const CommitHintRequest request{lsn, term};
  auto r = co_await call(request, deadline);
  co_return r.status();
}

Task<Result<PageServerStatus>> PageServerClient::status(Deadline deadline) {
  const StatusRequest request{};
  co_return co_await call(request, deadline);
}

Task<Result<PageServerStatus>> PageServerClient::fence(Term term, Deadline deadline) {
  const FenceRequest request{term};
  co_return co_await call(request, deadline);
}

}  // namespace quire
