// PageServerClient: a typed client for one page server (the protocol is page_protocol.h).
//
// Every call is one request on the RpcClient's connection. It returns the server's answer,
// the server's error status, or the transport's (Unavailable: the outcome is unknown;
// DeadlineExceeded; Busy; Cancelled); a response body that does not decode is Corruption.
// Writes are idempotent by LSN, so re-sending one after an unknown outcome is safe.
#pragma once

#include <vector>

#include "pagelog/page_protocol.h"
#include "pagelog/rpc.h"

namespace quire {

class PageServerClient {
 public:
  PageServerClient(Env& env, Address server) : rpc_(env, std::move(server)) {}
  const Address& server() const { return rpc_.server(); }

  Task<Status> append(const std::vector<Record>& records, Term term, Deadline deadline);
  // LOG records from `from` on. NotYetMaterialized when this server has not reached it.
  Task<Result<LogChunk>> read_log(Lsn from, size_t max_bytes, Deadline deadline);
  // The newest full image at or below `as_of` and the deltas after it, oldest first.
  Task<Result<std::vector<Record>>> get_page(TableId table, PageId page, Lsn as_of,
                                             Deadline deadline);
  // NotFound when there is no completed checkpoint.
  Task<Result<Record>> latest_checkpoint(Deadline deadline);
  Task<Result<std::vector<Record>>> list_checkpoints(Deadline deadline);
  Task<Status> seal(Deadline deadline);
  Task<Status> abandon_after(Lsn lsn, Term term, Deadline deadline);
  Task<Status> set_retention(Lsn lsn, Term term, Deadline deadline);
  Task<Result<PageServerStatus>> status(Deadline deadline);
  // Records of every type after `after`, for catching up.
  Task<Result<LogChunk>> scan(Lsn after, size_t max_bytes, Deadline deadline);
  void disconnect() { rpc_.disconnect(); }

 private:
  // Sends one encoded request and decodes its typed response.
  template <typename Response>
  Task<Result<Response>> send(RpcRequest request, Deadline deadline);
  // Sends one typed request and decodes its typed response.
  template <typename Request>
  Task<Result<typename Request::Response>> call(const Request& request, Deadline deadline);

  RpcClient rpc_;
};

}  // namespace quire
