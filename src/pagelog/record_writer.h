// RecordWriter: the single writer's side of the page service's record chain.
//
// The writer (the primary) assigns every record its LSN, strictly increasing for the life
// of the database, and chains it to the record written before it (prev_lsn), so page
// servers know how far they are complete, and stamps it with the client's term (servers
// refuse a record whose header term is above its request's). Callers allocate LSNs first (page
// and record encryption binds the LSN), build their records, and write them in allocation order.
//
// A write that fails leaves the tail of the chain in doubt: some servers may hold records
// that never reached a quorum. recover() abandons everything after the last durable
// record on a quorum, so the chain continues from a point every reader agrees on. LSNs
// are never reused, even abandoned ones.
//
// Several writes may be in flight at once (the primary's commit groups): chain() links a
// write into the chain without waiting, send() makes it durable. Page servers take
// records in any order and complete their chain as the gaps fill, and the client's
// durable point moves only through contiguous durable writes.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "pagelog/replication_client.h"

namespace quire {

class RecordWriter {
 public:
  // `chain_head` is the last record of the chain (0 for an empty log), durable at W;
  // `next_lsn` is the first LSN to hand out (above every LSN ever used, abandoned ones
  // included). The client's durable point restarts at `chain_head` (continue_chain).
  RecordWriter(ReplicationClient& client, Lsn chain_head, Lsn next_lsn);

  // Hands out the next LSN.
  Lsn allocate() {
    Lsn l = next_lsn_;
    next_lsn_ = next_lsn_.next();
    return l;
  }
  Lsn next_lsn() const { return next_lsn_; }
  // The last record written into the chain (durable or in flight).
  Lsn chain_head() const { return chain_head_; }
  // Up to here every record is durable at W.
  Lsn durable_lsn() const { return client_.durable_lsn(); }
  // True while a write failed and was not sent again successfully, until recover()
  // succeeds: write() and chain() refuse meanwhile.
  bool needs_recovery() const { return !failed_.empty(); }

  // A write linked into the chain: its records with prev_lsn and term set, shared by every
  // send of it (the same bytes each time).
  using Chained = std::shared_ptr<const std::vector<Record>>;
  // Links `records` into the chain after its head (which moves to the last of them)
  // without sending them. The same rules as write(); asserted: !needs_recovery().
  Chained chain(std::vector<Record> records);
  // Sends a chained write at W (again, after a failure: same bytes, same LSNs). A failure
  // puts the chain in doubt until a later send of the same write succeeds or recover().
  Task<Status> send(Chained write, Deadline deadline, std::function<void()> on_first_ack = {});
  // A chained write that will not be sent (its sender could not run): in doubt, as after
  // a failed send.
  void mark_failed(const Chained& write) { failed_.insert(write->back().lsn); }
  // send() in two halves: start_send puts the write on its way now, in the caller's turn
  // (no task switch before the first request leaves); finish_send waits for its quorum.
  ReplicationClient::PendingWrite start_send(const Chained& write, Deadline deadline,
                                             std::function<void()> on_first_ack = {});
  Task<Status> finish_send(Chained write, ReplicationClient::PendingWrite pending,
                           Deadline deadline);

  // Chains `records` and writes them at W. The records must carry LSNs this writer
  // allocated, ascending and above the chain head (asserted: a caller that breaks it is a
  // bug, not an input error). On failure the chain is in doubt: Unavailable/DeadlineExceeded/Busy
  // etc. from the client, and needs_recovery() becomes true. Fenced means a newer writer exists.
  // `on_first_ack`: see ReplicationClient::write.
  Task<Status> write(std::vector<Record> records, Deadline deadline,
                     std::function<void()> on_first_ack = {});

  // Abandons every record after the durable point and continues the chain from it. Busy
  // while a send is still waiting for its quorum.
  Task<Status> recover(Deadline deadline);

  ReplicationClient& client() { return client_; }

 private:
  ReplicationClient& client_;
  Lsn chain_head_;
  Lsn next_lsn_;
  std::set<Lsn> failed_;  // the last LSN of each write whose latest send failed
};

}  // namespace quire
