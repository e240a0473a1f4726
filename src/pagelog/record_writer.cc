#include "pagelog/record_writer.h"

namespace quire {

RecordWriter::RecordWriter(ReplicationClient& client, Lsn chain_head, Lsn next_lsn)
    : client_(client), chain_head_(chain_head), next_lsn_(std::max(next_lsn, chain_head.next())) {
  client_.continue_chain(chain_head_);
}

Task<Status> RecordWriter::write(std::vector<Record> records, Deadline deadline,
                                 std::function<void()> on_first_ack) {
  if (records.empty()) co_return Status();
  if (needs_recovery_) {
    co_return Status(Code::kUnavailable,
                     "record chain in doubt after a failed write; recover first")
        .at("record_writer")
        .with("chain_head", chain_head_.value);
  }
  Lsn prev = chain_head_;
  for (Record& r : records) {
    // Every caller allocates its LSNs here and writes them in allocation order, under the
    // log writer's lock (the primary's commit groups and chain markers, the engine's
    // checkpoint steps), and after a failed write the chain head only moves down.
    QUIRE_ASSERT_MSG(r.lsn > prev && r.lsn < next_lsn_, "record lsn out of order or not allocated");
    r.prev_lsn = prev;
    r.term = client_.term();  // page servers refuse a header term above the request's
    prev = r.lsn;
  }
  const Lsn last = prev;
  QUIRE_ASSERT(last > chain_head_);
  chain_head_ = last;
  in_doubt_ = records;
  Status st = co_await client_.write(std::move(records), deadline, std::move(on_first_ack));
  if (st.is_ok()) {
    in_doubt_.clear();
  } else {
    needs_recovery_ = true;
  }
  co_return st;
}

Task<Status> RecordWriter::resend(Deadline deadline) {
  if (!needs_recovery_ || in_doubt_.empty()) {
    co_return Status(Code::kInvalidArgument, "no failed write to re-send").at("record_writer");
  }
  std::vector<Record> again = in_doubt_;
  Status st = co_await client_.write(std::move(again), deadline);
  if (st.is_ok()) {
    needs_recovery_ = false;
    in_doubt_.clear();
  }
  co_return st;
}

Task<Status> RecordWriter::recover(Deadline deadline) {
  const Lsn durable = client_.durable_lsn();
  Status st = co_await client_.abandon_after(durable, deadline);
  if (!st.is_ok()) co_return st;
  chain_head_ = durable;
  needs_recovery_ = false;
  in_doubt_.clear();
  co_return Status();
}

}  // namespace quire
