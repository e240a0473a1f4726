// The page server: a node that stores records in a SegmentStore and serves them over RPC.
// It never holds keys or plaintext: payloads are the writers' ciphertext.
//
// Operations (PageOp): append records (log records, pages, deltas, discards, keystore and
// metadata pages, checkpoint completions: one write path for all), read the log from an
// LSN, get a page as of an LSN, latest and listed checkpoints, seal, abandon after an
// LSN, set retention, status, and scan (every record after an LSN; peers use it to catch
// up).
//
// Writes are acknowledged only once synced. A write whose term is below the highest the
// server has seen fails with Fenced. Reads are served only up to complete_lsn, the point
// up to which the server is sure it holds every record; above it they fail with the
// retriable NotYetMaterialized and the client asks another server. A server that comes
// back empty or stale, or misses writes, fills the gap from its peers in the background.
// A disk failure makes the server ask to be restarted (fail-stop).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pagelog/record.h"
#include "pagelog/rpc.h"
#include "pagelog/segment_store.h"

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
};

struct PageServerOptions {
  Address listen;
  std::vector<Address> peers;  // the other page servers, for catching up
  SegmentStoreOptions store;
  Nanos catch_up_interval = 200ms;
  size_t response_bytes_max = 8u << 20;  // per read response
};

struct PageServerStatus {
  Lsn last_lsn;
  Lsn durable_lsn;  // every record up to here is stored and synced here (complete_lsn)
  uint64_t segments = 0;
  uint64_t sealed_count = 0;
  Term term;
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::vector<DamagedRange> damaged_ranges;
};

// A piece of the log: the records, and the LSN up to which the server looked (read on
// from through + 1; records past a server's complete_lsn are never in a piece).
struct LogChunk {
  std::vector<Record> records;
  Lsn through;
};

// Bodies of the requests and responses.
Bytes encode_records(const std::vector<Record>& records);
Result<std::vector<Record>> decode_records(ByteView in);
Bytes encode_status(const PageServerStatus& s);
Result<PageServerStatus> decode_status(ByteView in);

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
  // Why it could not start serving (listen failed), or OK.
  const Status& start_error() const { return start_error_; }

 private:
  Task<void> run();
  Task<RpcResponse> handle(const RpcRequest& request);
  Task<Status> check_term(uint64_t term);
  Task<void> catch_up_loop();
  Task<Status> catch_up_from(const Address& peer);
  void fail_stop(const Status& why);

  Env& env_;
  PageServerOptions options_;
  std::unique_ptr<SegmentStore> store_;
  std::unique_ptr<RpcServer> rpc_;
  std::vector<std::unique_ptr<RpcClient>> peer_clients_;
  Term max_term_;
  Status start_error_;
  bool serving_ = false;
  // Opened with an empty store (a new disk, or one that was lost): once a retention point
  // arrives, client reads are refused with NotYetMaterialized until a full copy from a peer
  // is done, because retention makes the chain look complete from there while older live
  // records (page versions a checkpoint still uses) may not have been copied yet.
  bool copying_from_empty_ = false;
  Lsn copy_cursor_;  // how far the full copy has scanned
  bool stopping_ = false;
};

// A typed client for one page server.
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
  // read_log and scan: (lsn, max_bytes) in, a log chunk out.
  Task<Result<LogChunk>> chunk_call(PageOp op, Lsn lsn, size_t max_bytes, Deadline deadline);

  RpcClient rpc_;
};

}  // namespace quire
