#include "pagelog/record_writer.h"

namespace quire {

RecordWriter::RecordWriter(ReplicationClient& client, Lsn chain_head, Lsn next_lsn)
    : client_(client), chain_head_(chain_head), next_lsn_(std::max(next_lsn, chain_head.next())) {
  client_.continue_chain(chain_head_);
}

RecordWriter::Chained RecordWriter::chain(std::vector<Record> records) {
  QUIRE_ASSERT(!records.empty());
  QUIRE_ASSERT(!needs_recovery());
  Lsn prev = chain_head_;
  for (Record& r : records) {
    // Every caller allocates its LSNs here and chains them in allocation order, under the
    // log writer's lock (the primary's commit groups and chain markers, the engine's
    // checkpoint steps), and after a failed write the chain head only moves down.
    QUIRE_ASSERT_MSG(r.lsn > prev && r.lsn < next_lsn_, "record lsn out of order or not allocated");
    r.prev_lsn = prev;
    r.term = client_.term();  // page servers refuse a header term above the request's
    prev = r.lsn;
  }
  QUIRE_ASSERT(prev > chain_head_);
  chain_head_ = prev;
  return std::make_shared<const std::vector<Record>>(std::move(records));
}

Task<Status> RecordWriter::send(Chained write, Deadline deadline,
                                std::function<void()> on_first_ack) {
  ReplicationClient::PendingWrite pending = start_send(write, deadline, std::move(on_first_ack));
  co_return co_await finish_send(std::move(write), std::move(pending), deadline);
}

ReplicationClient::PendingWrite RecordWriter::start_send(const Chained& write, Deadline deadline,
                                                         std::function<void()> on_first_ack) {
  QUIRE_ASSERT(write != nullptr && !write->empty());
  return client_.start_write(write, deadline, std::move(on_first_ack));
}

Task<Status> RecordWriter::finish_send(Chained write, ReplicationClient::PendingWrite pending,
                                       Deadline deadline) {
  QUIRE_ASSERT(write != nullptr && !write->empty());
  const Lsn last = write->back().lsn;
  Status st = co_await client_.finish_write(std::move(pending), deadline);
  if (st.is_ok()) {
    failed_.erase(last);
  } else {
    failed_.insert(last);
  }
  co_return st;
}

Task<Status> RecordWriter::write(std::vector<Record> records, Deadline deadline,
                                 std::function<void()> on_first_ack) {
  if (records.empty()) co_return Status();
  if (needs_recovery()) {
    co_return Status(Code::kUnavailable,
                     "record chain in doubt after a failed write; recover first")
        .at("record_writer")
        .with("chain_head", chain_head_.value);
  }
  Chained chained = chain(std::move(records));
  co_return co_await send(std::move(chained), deadline, std::move(on_first_ack));
}

Task<Status> RecordWriter::recover(Deadline deadline) {
  const Lsn durable = client_.durable_lsn();
  Status st = co_await client_.abandon_after(durable, deadline);
  if (!st.is_ok()) co_return st;
  chain_head_ = durable;
  failed_.clear();
  co_return Status();
}

}  // namespace quire
