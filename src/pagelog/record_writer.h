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
#pragma once

#include <cstdint>
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
  // True after a failed write until recover() succeeds: write() refuses meanwhile.
  bool needs_recovery() const { return needs_recovery_; }

  // Chains `records` and writes them at W. The records must carry LSNs this writer
  // allocated, ascending and above the chain head (asserted: a caller that breaks it is a
  // bug, not an input error). On failure the chain is in doubt: Unavailable/DeadlineExceeded/Busy
  // etc. from the client, and needs_recovery() becomes true. Fenced means a newer writer exists.
  // `on_first_ack`: see ReplicationClient::write.
  Task<Status> write(std::vector<Record> records, Deadline deadline,
                     std::function<void()> on_first_ack = {});

  // After a failed write: sends the same records again (same bytes, same LSNs, so a
  // record can never land twice). OK clears needs_recovery().
  Task<Status> resend(Deadline deadline);

  // Abandons every record after the durable point and continues the chain from it.
  Task<Status> recover(Deadline deadline);

  ReplicationClient& client() { return client_; }

 private:
  ReplicationClient& client_;
  Lsn chain_head_;
  Lsn next_lsn_;
  bool needs_recovery_ = false;
  std::vector<Record> in_doubt_;  // the last write, kept until it is durable
};

}  // namespace quire
