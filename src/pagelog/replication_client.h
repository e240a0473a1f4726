// ReplicationClient: how compute nodes use the page service.
//
// Writes go to every page server and count as durable once W of N acknowledged them
// (each acknowledgement means synced on that server). A server that answers Sealed,
// Busy or Unavailable, or does not answer, gets the write again after a bounded,
// jittered backoff until the write's deadline; a server still lagging after the write
// became durable keeps getting it in the background (bounded), and otherwise catches up
// from its peers. durable_lsn() is the LSN up to which every record written through
// this client reached W servers.
//
// Reads go to a preferred server and fail over to the others on Unavailable,
// NotYetMaterialized, Corruption, Busy or DeadlineExceeded. get_page reads a chain in parts
// from one server (page_client.h); a chain that changed between parts is Busy, so the
// read starts over, from the next server.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "pagelog/page_client.h"
#include "runtime/log_limiter.h"

namespace quire {

struct ReplicationOptions {
  std::vector<Address> servers;
  size_t write_quorum = 2;  // W
  Term term{1};
  Nanos retry_backoff_min = 2ms;
  Nanos retry_backoff_max = 200ms;
  // How long a server that missed a durable write keeps getting it re-sent.
  Nanos lagging_resend_window = 5s;
  // Reads try every server in rounds, this many at most, with this pause between rounds.
  uint64_t read_round_max = 100;
  Nanos read_round_pause = 10ms;
  // Each server's client: how get_page reads a chain in parts, and its bounds.
  PageClientOptions page_client;
};

struct WriteProgress;  // replication_client.cc

class ReplicationClient {
 public:
  ReplicationClient(Env& env, ReplicationOptions options);
  ~ReplicationClient();
  ReplicationClient(const ReplicationClient&) = delete;
  ReplicationClient& operator=(const ReplicationClient&) = delete;

  // Writes `records` (in LSN order, each naming the previous one in prev_lsn) and returns
  // once W servers acknowledged them: OK, Fenced (a newer writer exists: stop writing),
  // InvalidArgument (the servers refused the records), or DeadlineExceeded /
  // Unavailable when fewer than W acknowledged in time (the outcome is then unknown:
  // the records may still become durable, and re-writing them is safe).
  // `on_first_ack`, when set, runs once, when the first server acknowledged (a write
  // concern of one; it may run after write() returned).
  Task<Status> write(std::vector<Record> records, Deadline deadline,
                     std::function<void()> on_first_ack = {});
  // The same, for records shared with the caller (sent again unchanged after a failure).
  Task<Status> write(std::shared_ptr<const std::vector<Record>> records, Deadline deadline,
                     std::function<void()> on_first_ack = {});

  // write() in two halves, for a caller with several writes in flight: start_write puts
  // the write on its way to the servers now, in the caller's turn; finish_write waits for
  // its quorum as write() does. A PendingWrite counts as a write waiting for its quorum
  // (abandon_after is Busy) until it is destroyed.
  class PendingWrite {
   public:
    PendingWrite() = default;
    PendingWrite(PendingWrite&& o) noexcept;
    PendingWrite& operator=(PendingWrite&& o) noexcept;
    PendingWrite(const PendingWrite&) = delete;
    PendingWrite& operator=(const PendingWrite&) = delete;
    ~PendingWrite();

   private:
    friend class ReplicationClient;
    size_t* waiting_ = nullptr;  // the client's writes_waiting_
    std::shared_ptr<WriteProgress> progress_;
    Status refused_;  // not sent (Busy)
    size_t asked_ = 0;
    Lsn first_prev_;
    Lsn last_;
  };
  PendingWrite start_write(std::shared_ptr<const std::vector<Record>> records, Deadline deadline,
                           std::function<void()> on_first_ack = {});
  Task<Status> finish_write(PendingWrite pending, Deadline deadline);
  Lsn durable_lsn() const { return durable_lsn_; }
  // How long the page servers' disks take to sync a write, as their acknowledgements
  // report it: the W-th shortest of each server's moving average, so a write waits about
  // this long for its quorum's fdatasyncs. Zero until W servers reported one.
  Nanos quorum_sync() const;
  // A writer (re)starts the chain after `durable` (every record up to it durable at W; 0
  // for an empty log): durable_lsn() continues from there, and what an earlier writer's
  // chain left behind is dropped. A node that was primary before, stepped down and takes
  // over again writes a chain far past its old one.
  void continue_chain(Lsn durable);

  Task<Result<std::vector<Record>>> get_page(TableId table, PageId page, Lsn as_of,
                                             Deadline deadline);
  Task<Result<LogChunk>> read_log(Lsn from, size_t max_bytes, Deadline deadline, LogWait wait = {});
  // The newest completion record among N - W + 1 servers (so one lagging server cannot
  // hide a completed checkpoint); NotFound when none has one.
  Task<Result<Record>> latest_checkpoint(Deadline deadline);
  // To every server; OK once W did it.
  Task<Status> seal(Deadline deadline);
  // Also stops re-sending every earlier write, so the client itself sends no copy of an
  // abandoned record after the marker. Busy while any write is waiting for its quorum
  // (its outcome could still move durable_lsn).
  Task<Status> abandon_after(Lsn lsn, Deadline deadline);
  Task<Status> set_retention(Lsn lsn, Deadline deadline);
  // Tells every server the writer's commit point (CommitHintRequest) under the current
  // term, without waiting: every record up to `lsn` is durable at W, and `lsn` is a LOG
  // record of this term. Best effort, one call in flight per server; a newer point asked
  // meanwhile goes when it returns, and a server that fails it hears again at the next.
  void publish_commit(Lsn lsn);

  // ---- Take-over (repl/takeover.h) ----
  // The writer term of every later fenced operation: a node that won leadership raises it
  // to its epoch before it fences (never lowers it).
  void set_term(Term term);
  // Sends fence(term) to every server and returns once N - W + 1 of them (a read quorum:
  // it meets every write quorum) stored the term durably, with each one's status read
  // after the fence: from then on the old writer cannot reach W. Fenced when any server
  // holds a newer term; Unavailable or DeadlineExceeded when too few answered in time.
  struct FencedServer {
    size_t index = 0;  // into options.servers
    PageServerStatus status;
  };
  Task<Result<std::vector<FencedServer>>> fence(Deadline deadline);
  // One server's records of every type after `after`, including those past a gap in its
  // chain, within max_bytes (ScanRequest::beyond_complete).
  Task<Result<LogChunk>> scan_server(size_t index, Lsn after, size_t max_bytes, Deadline deadline);
  size_t read_quorum() const { return options_.servers.size() - options_.write_quorum + 1; }

  // Reads try this server first (an index into options.servers). A read that another server
  // answered, or none did, moves it on (with_failover in the .cc).
  void set_preferred(size_t index) { preferred_ = index % options_.servers.size(); }
  size_t preferred() const { return preferred_; }
  size_t server_count() const { return options_.servers.size(); }
  Term term() const { return options_.term; }
  size_t write_quorum() const { return options_.write_quorum; }

 private:
  struct Shared;
  template <typename Op>
  Task<Status> to_quorum(Op op, Deadline deadline);
  // `op` on every server, in rounds, until N - W + 1 answered OK: their answers. Fenced or
  // Cancelled at once; `what` names the failure when too few answered.
  // A read with failover that leaves preferred_ where it ended, logging a move.
  template <typename T, typename Op>
  Task<Result<T>> failover_read(Deadline deadline, Op op);
  template <typename Op>
  Task<Result<std::vector<FencedServer>>> from_read_quorum(Op op, Deadline deadline,
                                                           const char* what);

  Env& env_;
  ReplicationOptions options_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Random> jitter_;
  size_t preferred_ = 0;
  LogLimiter moved_log_{std::chrono::seconds(10)};
  Lsn durable_lsn_;
  size_t writes_waiting_ = 0;     // write() calls not yet returned
  std::map<Lsn, Lsn> completed_;  // durable writes not yet contiguous: prev lsn -> last lsn
};

}  // namespace quire
