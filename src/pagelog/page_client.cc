#include "pagelog/page_client.h"

namespace quire {

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
  // Encoded straight from the caller's records: no copy into an AppendRequest.
  RpcRequest request = AppendRequest::encode(records, term);
  auto r = co_await send<Ack>(std::move(request), deadline);
  co_return r.status();
}

Task<Result<LogChunk>> PageServerClient::read_log(Lsn from, size_t max_bytes, Deadline deadline) {
  const ReadLogRequest request{from, max_bytes};
  co_return co_await call(request, deadline);
}

Task<Result<LogChunk>> PageServerClient::scan(Lsn after, size_t max_bytes, Deadline deadline) {
  const ScanRequest request{after, max_bytes};
  co_return co_await call(request, deadline);
}

Task<Result<std::vector<Record>>> PageServerClient::get_page(TableId table, PageId page, Lsn as_of,
                                                             Deadline deadline) {
  const GetPageRequest request{table, page, as_of};
  auto r = co_await call(request, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return std::move(r->records);
}

Task<Result<Record>> PageServerClient::latest_checkpoint(Deadline deadline) {
  const LatestCheckpointRequest request{};
  auto r = co_await call(request, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return std::move(r->checkpoint);
}

Task<Result<std::vector<Record>>> PageServerClient::list_checkpoints(Deadline deadline) {
  const ListCheckpointsRequest request{};
  auto r = co_await call(request, deadline);
  if (!r.is_ok()) co_return r.status();
  co_return std::move(r->checkpoints);
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

Task<Result<PageServerStatus>> PageServerClient::status(Deadline deadline) {
  const StatusRequest request{};
  co_return co_await call(request, deadline);
}

}  // namespace quire
