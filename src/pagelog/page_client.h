// PageServerClient: a typed client for one page server (the protocol is page_protocol.h).
//
// Every call is one request on the RpcClient's connection. It returns the server's answer,
// the server's error status, or the transport's (Unavailable: the outcome is unknown;
// DeadlineExceeded; Busy; Cancelled); a response body that does not decode is Corruption.
// Writes are idempotent by LSN, so re-sending one after an unknown outcome is safe.
//
// get_page and list_checkpoints read in parts (page_protocol.h): one request per part, all
// within the call's deadline, until the server says the answer is complete. A chain or
// list that changed between parts is the server's retriable Busy (read again); an answer
// past the options' bounds is InvalidArgument; parts that do not continue one another are
// Corruption. What the caller gets is therefore always one consistent answer.
#pragma once

#include <vector>

#include "pagelog/page_protocol.h"
#include "pagelog/rpc.h"

namespace quire {

struct PageClientOptions {
  // Each part of a read in parts asks for at most this many bytes of records (the server
  // may lower it, and always sends at least one record).
  size_t part_bytes_max = 8u << 20;
  // A read in parts gives up with InvalidArgument past this many parts or record bytes.
  uint64_t read_parts_max = 1024;
  size_t read_bytes_max = size_t{1} << 30;
};

// A long poll's terms (ReadLogRequest): how long the server may hold the read when it has
// nothing new, and the commit hint and `through` the reader already has.
struct LogWait {
  Nanos wait{0};  // whole milliseconds, at most kReadLogWaitMsMax
  Lsn seen_hint;
  Lsn seen_through;
};

class PageServerClient {
 public:
  PageServerClient(Env& env, Address server, PageClientOptions options = {})
      : rpc_(env, std::move(server)), options_(options) {
    QUIRE_ASSERT(options_.part_bytes_max > 0);  // 0 would ask for the whole answer at once
  }
  const Address& server() const { return rpc_.server(); }

  Task<Status> append(const std::vector<Record>& records, Term term, Deadline deadline);
  // The same with the records already encoded (encode_records), the bytes shared by the
  // calls to every server; with the server's acknowledgement (its fdatasync time).
  Task<Result<AppendAck>> append_encoded(std::shared_ptr<const Bytes> records, Term term,
                                         Deadline deadline);
  // LOG records from `from` on. NotYetMaterialized when this server has not reached it.
  // With a wait, a long poll (ReadLogRequest): the deadline must leave room for it.
  Task<Result<LogChunk>> read_log(Lsn from, size_t max_bytes, Deadline deadline, LogWait wait = {});
  // The newest full image at or below `as_of` and the deltas after it, oldest first, read
  // in parts.
  Task<Result<std::vector<Record>>> get_page(TableId table, PageId page, Lsn as_of,
                                             Deadline deadline);
  // One part of it: the records after `cursor`, and whether more remain.
  Task<Result<GetPageResponse>> get_page_part(TableId table, PageId page, Lsn as_of,
                                              PartCursor cursor, Deadline deadline);
  // NotFound when there is no completed checkpoint.
  Task<Result<Record>> latest_checkpoint(Deadline deadline);
  // Completed checkpoints, oldest first, read in parts.
  Task<Result<std::vector<Record>>> list_checkpoints(Deadline deadline);
  Task<Result<ListCheckpointsResponse>> list_checkpoints_part(PartCursor cursor, Deadline deadline);
  Task<Status> seal(Deadline deadline);
  Task<Status> abandon_after(Lsn lsn, Term term, Deadline deadline);
  Task<Status> set_retention(Lsn lsn, Term term, Deadline deadline);
  Task<Status> commit_hint(Lsn lsn, Term term, Deadline deadline);
  Task<Result<PageServerStatus>> status(Deadline deadline);
  // Makes the server fence every writer term below `term` durably (Fenced when it has seen
  // a higher one), and returns its status read after that: a new writer learns each
  // server's complete and last LSN in the same round trip.
  Task<Result<PageServerStatus>> fence(Term term, Deadline deadline);
  // Records of every type after `after`, for catching up; with `beyond_complete`, also
  // those past a gap in the server's chain (ScanRequest).
  Task<Result<LogChunk>> scan(Lsn after, size_t max_bytes, Deadline deadline,
                              bool beyond_complete = false);
  void disconnect() { rpc_.disconnect(); }

 private:
  // Sends one encoded request and decodes its typed response.
  template <typename Response>
  Task<Result<Response>> send(RpcRequest request, Deadline deadline);
  // Sends one typed request and decodes its typed response.
  template <typename Request>
  Task<Result<typename Request::Response>> call(const Request& request, Deadline deadline);
  // Asks for parts through `part(cursor)` until one says it is the last; see above.
  template <typename Part>
  Task<Result<std::vector<Record>>> read_in_parts(Part part);

  RpcClient rpc_;
  PageClientOptions options_;
};

}  // namespace quire
