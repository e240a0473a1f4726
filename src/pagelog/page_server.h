// The page server: a node that stores records in a SegmentStore and serves them over RPC.
// It never holds keys or plaintext: payloads are the writers' ciphertext.
//
// Operations (their wire format is page_protocol.h): append records (log records, pages,
// deltas, discards, keystore and metadata pages, checkpoint completions: one write path
// for all), read the log from an LSN, get a page as of an LSN, latest and listed
// checkpoints, seal, abandon after an LSN, set retention, status, scan (every record
// after an LSN; peers use it to catch up), and fence. Each has its own handler below.
//
// Writes are acknowledged only once synced, and OK means every record of the request is
// stored (SegmentStore::append). A write (or fence) whose term is below the highest the
// server has seen fails with Fenced; a higher term is made durable (a TERM marker) before
// the request goes on, so fencing survives restarts. fence(T) does only that and answers
// with the status. Every request's LSN and term fields, and every record's, must be
// below 2^63 (kLsnTermLimit), and each record's header term must be at most its request's
// term (a new writer re-writes the tail of an older term it recovered): InvalidArgument
// otherwise. The invariants the server keeps against any writer are listed,
// with the tests that prove them, in docs/pagelog.md ("What the server guarantees"). Reads are
// served only up to complete_lsn, the point up to which the server is sure it holds every record;
// above it they fail with the retriable NotYetMaterialized and the client asks another server. A
// server that comes back empty or stale, or misses writes, fills the gap from its peers in the
// background. A disk failure makes the server ask to be restarted (fail-stop).
//
// The client (PageServerClient) is page_client.h; this header includes it, since the
// server uses it to catch up from its peers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "pagelog/page_client.h"
#include "pagelog/page_protocol.h"
#include "pagelog/record.h"
#include "pagelog/rpc.h"
#include "pagelog/segment_store.h"
#include "runtime/sync.h"

namespace quire {

struct PageServerOptions {
  Address listen;
  std::vector<Address> peers;  // the other page servers, for catching up
  SegmentStoreOptions store;
  // Per read response, records' framed bytes (a response is never over
  // kResponseRecordBytesMax, whatever this says; one record may go over it).
  size_t response_bytes_max = 8u << 20;
  // Catching up: every catchup_interval one peer is asked for its status and, when it is
  // further along, for at most catchup_round_max scans.
  Nanos catchup_interval = 200ms;
  uint64_t catchup_round_max = 64;
  Nanos catchup_status_timeout = 2s;
  Nanos catchup_scan_timeout = 5s;
};

class PageServer : public NodeApp {
 public:
  PageServer(Env& env, PageServerOptions options);
  ~PageServer() override;
  void start() override;

  // For tests and the in-process tools; null until recovery finished.
  SegmentStore* store() { return store_.get(); }
  bool serving() const { return serving_; }
  // The address it listens on (with port 0, the port chosen); valid once serving.
  const Address& address() const { return rpc_->address(); }
  // Why it could not start serving, or OK: the data directory cannot be used as it is
  // (InvalidArgument naming the path, step "open_store": a configuration error; restarting
  // will not help), or listening failed (step "listen"). Any other failure to open the
  // store is a disk failure: the server asks to be restarted instead.
  const Status& start_error() const { return start_error_; }

 private:
  Task<void> run();
  void fail_stop(const Status& why);

  // Requests: checks that apply to every operation, then one handler per operation.
  Task<RpcResponse> handle(const RpcRequest& request);
  Status refuse_reads_while_copying(PageOp op) const;
  template <typename Request, typename Out>
  Task<RpcResponse> decode_and_handle(const RpcRequest& request,
                                      Task<Out> (PageServer::*handler)(Request));
  Task<Result<AppendAck>> handle_append(AppendRequest request);
  Task<Result<LogChunk>> handle_read_log(ReadLogRequest request);
  // The longest one wait of a long poll lasts before it looks at the chain again.
  static constexpr Nanos kLogWaitSliceMax = std::chrono::milliseconds(20);
  Task<Status> wait_for_log(const ReadLogRequest& request);
  Status refuse_below_retention(const ReadLogRequest& request) const;
  Task<Result<GetPageResponse>> handle_get_page(GetPageRequest request);
  Task<Result<LatestCheckpointResponse>> handle_latest_checkpoint(LatestCheckpointRequest request);
  Task<Result<ListCheckpointsResponse>> handle_list_checkpoints(ListCheckpointsRequest request);
  Task<Status> handle_seal(SealRequest request);
  Task<Status> handle_abandon_after(AbandonAfterRequest request);
  Task<Status> handle_set_retention(SetRetentionRequest request);
  Task<Result<PageServerStatus>> handle_status(StatusRequest request);
  Task<Result<PageServerStatus>> handle_fence(FenceRequest request);
  Task<Status> handle_commit_hint(CommitHintRequest request);
  Task<Result<LogChunk>> handle_scan(ScanRequest request);
  // read_log and scan: records in (after, complete_lsn] (or up to the last LSN held, when
  // `beyond_complete`), within max_bytes. `from` is what the request asked for, for the
  // error.
  Task<Result<LogChunk>> read_chunk(uint64_t from, Lsn after, uint64_t max_bytes, bool log_only,
                                    bool beyond_complete);
  Task<Result<std::vector<Record>>> read_records(const std::vector<RecordRef>& refs);
  // The most record bytes one part of get_page or list_checkpoints carries.
  size_t part_budget_max() const {
    return std::min(options_.response_bytes_max, kResponseRecordBytesMax);
  }
  // Fenced for a term below the highest seen; a higher one is first made durable
  // (SegmentStore::raise_term), then becomes the highest.
  Task<Status> check_term(Term term);
  // Keeps the newest commit point an accepted write names, for read_log (LogChunk).
  void note_commit_hint(const AppendRequest& request);
  void raise_commit_hint(Term term, Lsn lsn);
  // A write's store status; Io also makes the server fail-stop. Wakes waiting readers.
  Status store_result(Status st);

  // Catching up from peers.
  Task<void> catch_up_loop();
  Task<Status> catch_up_from(PageServerClient& peer);
  static Lsn copy_reach(const PageServerStatus& peer, Lsn cursor);
  bool behind(const PageServerStatus& peer) const;
  void start_gap_copy(Lsn lsn);
  Task<Status> adopt_retention(const Address& peer, const PageServerStatus& status);
  Task<Status> append_from_peer(const Address& peer, LogChunk chunk, Lsn before, Lsn reach,
                                Lsn peer_complete);
  // Ends the full copy once it reached `peer_complete` and the retention point (the
  // store's copy_from() is cleared first): reads are served again.
  Task<Status> finish_copy_if_done(const Address& peer, Lsn copied_through, Lsn peer_complete);

  Env& env_;
  PageServerOptions options_;
  std::unique_ptr<SegmentStore> store_;
  std::unique_ptr<RpcServer> rpc_;
  std::vector<std::unique_ptr<PageServerClient>> peer_clients_;  // one per options_.peers
  Term max_term_;
  // The newest (term, commit point) a writer's LOG record carried (note_commit_hint).
  Term commit_hint_term_;
  Lsn commit_hint_;
  WaitQueue log_changed_;  // readers in a long poll (wait_for_log)
  Status start_error_;
  bool serving_ = false;
  // Opened with an empty store (a new disk, or one that was lost), or a retention point
  // jumped a gap in the chain (SegmentStore::copy_from: a store that restarted stale or
  // missed writes got it before it caught up): once a retention point is set, client reads
  // are refused with NotYetMaterialized until a full copy from a peer is done, because
  // retention makes the chain look complete from there while older live records (page
  // versions a checkpoint still uses) may not have been copied yet. After a jump, the
  // status tells peers only how far the chain is whole (SegmentStore::copy_from) and where
  // its gaps are (copy_gaps), so none counts this server's gaps as copied.
  bool copying_ = false;
  Lsn copy_cursor_;  // how far the full copy has scanned
  bool stopping_ = false;
};

}  // namespace quire
