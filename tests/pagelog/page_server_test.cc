#include "pagelog/page_server.h"

#include <map>

#include <gtest/gtest.h>

#include "pagelog/replication_client.h"
#include "support/sim_node.h"

namespace quire {
namespace {

using testing_support::IdleApp;

Record log_record(uint64_t lsn, uint64_t prev) {
  Record r;
  r.type = RecordType::kLog;
  r.lsn = Lsn(lsn);
  r.prev_lsn = Lsn(prev);
  r.term = Term(1);
  r.payload = Bytes(100, static_cast<uint8_t>(lsn));
  return r;
}

Record page_record(uint64_t page, uint64_t lsn, uint64_t prev) {
  Record r = log_record(lsn, prev);
  r.type = RecordType::kPage;
  r.table = TableId(3);
  r.page = PageId(page);
  return r;
}

// A change to page `page` since its image at `base`; `backlink` is the chain's previous one.
Record delta_record(uint64_t page, uint64_t lsn, uint64_t prev, uint64_t base) {
  Record r = page_record(page, lsn, prev);
  r.type = RecordType::kDelta;
  r.base_lsn = Lsn(base);
  r.backlink_lsn = Lsn(prev);
  return r;
}

Record checkpoint_record(uint64_t lsn, uint64_t prev) {
  Record r = log_record(lsn, prev);
  r.type = RecordType::kCheckpointComplete;
  return r;
}

// Parts of one record each: a record here is 172 framed bytes.
PageClientOptions one_record_parts() {
  PageClientOptions o;
  o.part_bytes_max = 200;
  return o;
}

Record with_term(Record r, uint64_t term) {
  r.term = Term(term);
  return r;
}

// g++ 12 rejects a braced list inside a co_await expression; this builds the vector.
template <typename... R>
std::vector<Record> recs(R... r) {
  return std::vector<Record>{r...};
}

// Three page servers (ps1..ps3, each knowing the others as peers) and a client node.
class PageServerTest : public ::testing::Test {
 protected:
  PageServerTest() {
    for (int i = 1; i <= 3; ++i) {
      std::string name = "ps" + std::to_string(i);
      PageServerOptions o;
      o.listen = name + ":7000";
      for (int j = 1; j <= 3; ++j) {
        if (j != i) o.peers.push_back("ps" + std::to_string(j) + ":7000");
      }
      servers_.push_back(
          world_.add_node(name, [o](Env& env) { return std::make_unique<PageServer>(env, o); }));
    }
    client_node_ = world_.add_node("client", [](Env&) { return std::make_unique<IdleApp>(); });
    for (NodeId n : world_.nodes()) world_.start(n);
    world_.run_for(100ms);
  }

  Env& env() { return *world_.env(client_node_); }

  template <typename F>
  void run(F body) {
    ASSERT_TRUE(testing_support::run_in_node(world_, env(), std::move(body)));
  }

  Deadline soon() { return env().executor().deadline_after(2s); }

  SimWorld world_{21};
  std::vector<NodeId> servers_;
  NodeId client_node_;
};

TEST_F(PageServerTest, AppendReadLogGetPageAndCheckpointsOverRpc) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    std::vector<Record> batch{log_record(1, 0), page_record(9, 2, 1), log_record(3, 2)};
    Record ckpt = log_record(4, 3);
    ckpt.type = RecordType::kCheckpointComplete;
    batch.push_back(ckpt);
    EXPECT_TRUE((co_await c.append(batch, Term(1), soon())).is_ok());

    auto log = co_await c.read_log(Lsn(2), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (log.is_ok()) {
      EXPECT_EQ(log->records.size(), 1u);  // only LOG records, from LSN 2 on: just 3
      EXPECT_EQ(log->through, Lsn(4));
      if (!log->records.empty()) {
        EXPECT_EQ(log->records[0], batch[2]);
      }
    }
    EXPECT_EQ((co_await c.read_log(Lsn(6), 1 << 20, soon())).code(), Code::kNotYetMaterialized);
    auto page = co_await c.get_page(TableId(3), PageId(9), Lsn(4), soon());
    EXPECT_TRUE(page.is_ok());
    if (page.is_ok()) {
      EXPECT_EQ(*page, std::vector<Record>{batch[1]});
    }
    auto latest = co_await c.latest_checkpoint(soon());
    EXPECT_TRUE(latest.is_ok());
    if (latest.is_ok()) {
      EXPECT_EQ(latest->lsn, Lsn(4));
    }
    EXPECT_EQ((co_await c.get_page(TableId(3), PageId(8), Lsn(4), soon())).code(), Code::kNotFound);

    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->last_lsn, Lsn(4));
      EXPECT_EQ(st->durable_lsn, Lsn(4));
      EXPECT_EQ(st->term, Term(1));
    }
  });
}

// A reader learns a writer's commit point when the write carrying it arrives, not once
// this server synced it: a standby need not wait out one server's slow sync.
TEST_F(PageServerTest, AReadLogCarriesTheCommitPointOfAWriteNotSyncedYet) {
  PageServerClient c(env(), "ps1:7000");
  Record second = log_record(2, 1);
  second.backlink_lsn = Lsn(1);
  Record older_term = log_record(3, 2);  // a take-over re-sending an older term's record
  older_term.backlink_lsn = Lsn(2);
  Record page = page_record(9, 4, 3);  // a page's backlink is its previous version
  page.term = Term(2);
  page.backlink_lsn = Lsn(3);
  bool second_done = false;
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    auto before = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(before.is_ok() && before->commit_hint.is_zero());
  });
  DiskFaults slow;
  slow.sync_latency_min = slow.sync_latency_max = 300ms;
  world_.disk(servers_[0]).set_faults(slow);
  auto write_second = [&]() -> Task<void> {
    second_done = (co_await c.append(recs(second), Term(1), soon())).is_ok();
  };
  env().executor().spawn("second", write_second());
  world_.run_for(50ms);
  run([&]() -> Task<void> {
    auto log = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (!log.is_ok()) co_return;
    EXPECT_EQ(log->records.size(), 1u);  // record 2 is still being synced
    EXPECT_EQ(log->commit_hint, Lsn(1));
    EXPECT_EQ(log->commit_hint_term, Term(1));
  });
  EXPECT_FALSE(second_done);
  world_.run_for(1s);
  EXPECT_TRUE(second_done);
  world_.disk(servers_[0]).set_faults(DiskFaults{});
  // Neither an older term's record re-sent under a newer term nor a page names a point.
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(older_term, page), Term(2), soon())).is_ok());
    auto log = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (!log.is_ok()) co_return;
    EXPECT_EQ(log->records.size(), 3u);
    EXPECT_EQ(log->commit_hint, Lsn(1));
    EXPECT_EQ(log->commit_hint_term, Term(1));
  });
}

// A long poll: a reader at the end of the chain is held until a write brings records or a
// newer commit point, or its wait is over; a reader ahead of the chain is answered at once.
TEST_F(PageServerTest, AReadAtTheEndOfTheLogWaitsForTheNextWrite) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
  });
  std::optional<Result<LogChunk>> held;
  MonoTime answered_at;
  auto reader = [&]() -> Task<void> {
    held = co_await c.read_log(Lsn(2), 1 << 20, soon(), LogWait{500ms, Lsn(0)});
    answered_at = env().executor().now();
  };
  const MonoTime asked_at = env().executor().now();
  env().executor().spawn("reader", reader());
  world_.run_for(100ms);
  EXPECT_FALSE(held.has_value()) << "answered without waiting";
  Record second = log_record(2, 1);
  second.backlink_lsn = Lsn(1);
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(second), Term(1), soon())).is_ok());
  });
  world_.run_for(10ms);
  ASSERT_TRUE(held.has_value());
  ASSERT_TRUE(held->is_ok()) << held->status().to_string();
  // Woken by the write's commit point as it arrived, or by its record once synced.
  EXPECT_EQ((*held)->commit_hint, Lsn(1));
  EXPECT_LT(answered_at - asked_at, Nanos(200ms));

  // Nothing new: the wait runs out and the answer is empty.
  std::optional<Result<LogChunk>> idle;
  auto idle_reader = [&]() -> Task<void> {
    idle = co_await c.read_log(Lsn(3), 1 << 20, soon(), LogWait{50ms, Lsn(1)});
  };
  env().executor().spawn("idle", idle_reader());
  world_.run_for(40ms);
  EXPECT_FALSE(idle.has_value());
  world_.run_for(30ms);
  ASSERT_TRUE(idle.has_value());
  ASSERT_TRUE(idle->is_ok());
  EXPECT_TRUE((*idle)->records.empty());
  EXPECT_EQ((*idle)->through, Lsn(2));

  run([&]() -> Task<void> {
    // A newer commit hint than the reader has is news: answered at once.
    const MonoTime t0 = env().executor().now();
    auto hinted = co_await c.read_log(Lsn(3), 1 << 20, soon(), LogWait{500ms, Lsn(0)});
    EXPECT_TRUE(hinted.is_ok());
    EXPECT_LT(env().executor().now() - t0, Nanos(50ms));
    // Ahead of the chain: NotYetMaterialized at once, so the reader fails over.
    const MonoTime t1 = env().executor().now();
    auto ahead = co_await c.read_log(Lsn(9), 1 << 20, soon(), LogWait{500ms, Lsn(1)});
    EXPECT_EQ(ahead.code(), Code::kNotYetMaterialized);
    EXPECT_LT(env().executor().now() - t1, Nanos(50ms));
    // A wait above the bound is refused.
    RpcClient rpc(env(), "ps1:7000");
    RpcRequest too_long = ReadLogRequest{Lsn(3), 1 << 20, kReadLogWaitMsMax + 1, Lsn(1)}.encode();
    auto refused = co_await rpc.call(too_long.op, 0, too_long.body, soon());
    EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  });
}

// A writer's commit point without a record to carry it (commit_hint): a held long poll is
// answered by it at once, an older point changes nothing, a fenced writer's is refused, a
// newer term's wins, and nothing of it is stored.
// An append's acknowledgement says how long the server's fdatasync took, and a writer
// learns from them how long its quorum's disks take: the W-th fastest server's average.
TEST_F(PageServerTest, AppendsReportTheirSyncTimeAndTheWriterItsQuorums) {
  PageServerClient c(env(), "ps1:7000");
  ReplicationOptions ro;
  ro.servers = {"ps1:7000", "ps2:7000", "ps3:7000"};
  ro.write_quorum = 2;
  ReplicationClient writer(env(), ro);
  const auto set_sync = [&](size_t server, Nanos sync) {
    DiskFaults f;
    f.sync_latency_min = f.sync_latency_max = sync;
    world_.disk(servers_[server]).set_faults(f);
  };
  uint64_t next = 1;
  const auto write_some = [&](int count) -> Task<void> {
    for (int i = 0; i < count; ++i, ++next) {
      EXPECT_TRUE((co_await writer.write(recs(log_record(next, next - 1)), soon())).is_ok());
    }
  };
  run([&]() -> Task<void> {
    EXPECT_EQ(writer.quorum_sync(), Nanos(0));  // nothing reported yet
    // The simulated disk syncs in 100-300 us.
    auto encoded = std::make_shared<const Bytes>(encode_records(recs(log_record(next, 0))));
    auto ack = co_await c.append_encoded(encoded, Term(1), soon());
    EXPECT_TRUE(ack.is_ok());
    if (!ack.is_ok()) co_return;
    EXPECT_GE(ack->sync_micros, 100u);
    EXPECT_LE(ack->sync_micros, 300u);
    // Already stored: a replay syncs nothing and reports the latest sync.
    auto again = co_await c.append_encoded(encoded, Term(1), soon());
    EXPECT_TRUE(again.is_ok());
    if (again.is_ok()) {
      EXPECT_EQ(again->sync_micros, ack->sync_micros);
    }
    ++next;
    co_await write_some(5);
    EXPECT_GE(writer.quorum_sync(), 100us);
    EXPECT_LE(writer.quorum_sync(), 300us);
  });
  // One slow disk of three: W=2 still syncs fast.
  set_sync(0, 3ms);
  run([&]() -> Task<void> { co_await write_some(30); });
  world_.run_for(100ms);  // the slow server's last acknowledgements
  EXPECT_LE(writer.quorum_sync(), 300us);
  // Two slow disks: every quorum waits for one of them.
  set_sync(1, 3ms);
  run([&]() -> Task<void> { co_await write_some(30); });
  world_.run_for(100ms);
  EXPECT_GE(writer.quorum_sync(), 2500us);
  EXPECT_LE(writer.quorum_sync(), 3500us);
  // Fast again: the averages come down within a few writes.
  set_sync(0, 200us);
  set_sync(1, 200us);
  run([&]() -> Task<void> { co_await write_some(30); });
  EXPECT_LT(writer.quorum_sync(), 500us);
  for (NodeId s : servers_) world_.disk(s).set_faults(DiskFaults{});
}

// A server that answers an append OK with a body that is no AppendAck (broken, or hostile)
// is not counted towards the quorum: its answer says nothing it can be held to.
class UnreadableAckServer : public NodeApp {
 public:
  explicit UnreadableAckServer(Env& env) : env_(env) {}
  void start() override {
    rpc_ = std::make_unique<RpcServer>(env_, [](const RpcRequest& r) -> Task<RpcResponse> {
      (void)r;
      RpcResponse resp;
      resp.body = Bytes{0x81};  // a varint cut short
      co_return resp;
    });
    EXPECT_TRUE(rpc_->start("liar:7000").is_ok());
  }

 private:
  Env& env_;
  std::unique_ptr<RpcServer> rpc_;
};

TEST_F(PageServerTest, AnUnreadableAcknowledgementIsNoAcknowledgement) {
  NodeId liar =
      world_.add_node("liar", [](Env& env) { return std::make_unique<UnreadableAckServer>(env); });
  world_.start(liar);
  world_.run_for(10ms);
  PageServerClient c(env(), "liar:7000");
  ReplicationOptions ro;
  ro.servers = {"ps1:7000", "ps2:7000", "liar:7000"};
  ro.write_quorum = 2;
  ReplicationClient two_of_three(env(), ro);
  ro.write_quorum = 3;
  ReplicationClient all_three(env(), ro);
  run([&]() -> Task<void> {
    auto ack = co_await c.append(recs(log_record(1, 0)), Term(1), soon());
    EXPECT_EQ(ack.code(), Code::kCorruption);
    // W=2 is reached without it; W=3 is not, and says why.
    EXPECT_TRUE((co_await two_of_three.write(recs(log_record(1, 0)), soon())).is_ok());
    EXPECT_EQ(two_of_three.durable_lsn(), Lsn(1));
    Status st = co_await all_three.write(recs(log_record(2, 1)), soon());
    EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
    EXPECT_LT(all_three.durable_lsn(), Lsn(2));
  });
}

TEST_F(PageServerTest, ACommitHintReachesReadersWithoutARecord) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    std::vector<Record> batch;
    for (uint64_t l = 1; l <= 3; ++l) batch.push_back(log_record(l, l - 1));
    EXPECT_TRUE((co_await c.append(batch, Term(1), soon())).is_ok());  // backlinks all 0
  });
  std::optional<Result<LogChunk>> held;
  auto reader = [&]() -> Task<void> {
    held = co_await c.read_log(Lsn(4), 1 << 20, soon(), LogWait{500ms, Lsn(0), Lsn(3)});
  };
  env().executor().spawn("reader", reader());
  world_.run_for(50ms);
  EXPECT_FALSE(held.has_value()) << "answered without news";
  const MonoTime hinted_at = env().executor().now();
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.commit_hint(Lsn(3), Term(1), soon())).is_ok());
  });
  world_.run_for(5ms);
  ASSERT_TRUE(held.has_value());
  ASSERT_TRUE(held->is_ok()) << held->status().to_string();
  EXPECT_TRUE((*held)->records.empty());
  EXPECT_EQ((*held)->commit_hint, Lsn(3));
  EXPECT_EQ((*held)->commit_hint_term, Term(1));
  EXPECT_LT(env().executor().now() - hinted_at, Nanos(20ms));
  auto hint_now = [&]() -> Task<std::pair<Lsn, Term>> {
    auto log = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok()) << log.status().to_string();
    if (!log.is_ok()) co_return std::pair(Lsn(), Term());
    co_return std::pair(log->commit_hint, log->commit_hint_term);
  };
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.commit_hint(Lsn(2), Term(1), soon())).is_ok());
    EXPECT_EQ(co_await hint_now(), std::pair(Lsn(3), Term(1)));  // an older point: no change
    EXPECT_TRUE((co_await c.fence(Term(2), soon())).is_ok());
    EXPECT_EQ((co_await c.commit_hint(Lsn(3), Term(1), soon())).code(), Code::kFenced);
    EXPECT_TRUE((co_await c.commit_hint(Lsn(1), Term(2), soon())).is_ok());
    EXPECT_EQ(co_await hint_now(), std::pair(Lsn(1), Term(2)));  // the newer term's point
    EXPECT_EQ((co_await c.commit_hint(Lsn(uint64_t{1} << 63), Term(2), soon())).code(),
              Code::kInvalidArgument);
    EXPECT_EQ((co_await c.commit_hint(Lsn(1), Term(uint64_t{1} << 63), soon())).code(),
              Code::kInvalidArgument);
  });
  world_.crash(servers_[0], UnsyncedOnCrash::kLose);
  world_.start(servers_[0]);
  world_.run_for(100ms);
  run([&]() -> Task<void> {
    EXPECT_EQ(co_await hint_now(), std::pair(Lsn(), Term()));  // kept in memory only
    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->last_lsn, Lsn(3));
      EXPECT_EQ(st->term, Term(2));
    }
  });
}

TEST_F(PageServerTest, LowerTermsAreFenced) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(with_term(log_record(1, 0), 5)), Term(5), soon())).is_ok());
    Status st = co_await c.append(recs(with_term(log_record(2, 1), 4)), Term(4), soon());
    EXPECT_EQ(st.code(), Code::kFenced);
    EXPECT_EQ((co_await c.abandon_after(Lsn(0), Term(3), soon())).code(), Code::kFenced);
  });
}

// fence(T) raises the term durably before it answers, answers with the status read after
// the raise, and fences lower terms from then on, across a restart; an equal term is OK,
// a lower one Fenced, one at 2^63 InvalidArgument (and fences nobody).
TEST_F(PageServerTest, FenceRaisesTheTermDurablyAndAnswersTheStatus) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    std::vector<Record> batch;
    for (uint64_t l = 1; l <= 3; ++l) batch.push_back(log_record(l, l - 1));
    EXPECT_TRUE((co_await c.append(batch, Term(1), soon())).is_ok());
    auto fenced = co_await c.fence(Term(3), soon());
    EXPECT_TRUE(fenced.is_ok()) << fenced.status().to_string();
    if (fenced.is_ok()) {
      EXPECT_EQ(fenced->term, Term(3));
      EXPECT_EQ(fenced->last_lsn, Lsn(3));
      EXPECT_EQ(fenced->durable_lsn, Lsn(3));
      EXPECT_EQ(fenced->records, 3u);
    }
    EXPECT_EQ((co_await c.append(recs(log_record(4, 3)), Term(1), soon())).code(), Code::kFenced);
    EXPECT_EQ((co_await c.fence(Term(2), soon())).code(), Code::kFenced);
    EXPECT_TRUE((co_await c.fence(Term(3), soon())).is_ok());
    EXPECT_EQ((co_await c.fence(Term(uint64_t{1} << 63), soon())).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await c.fence(Term(~uint64_t{0}), soon())).code(), Code::kInvalidArgument);
  });
  world_.crash(servers_[0], UnsyncedOnCrash::kLose);
  world_.start(servers_[0]);
  world_.run_for(100ms);
  run([&]() -> Task<void> {
    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->term, Term(3));  // no record of term 3 is stored: the marker holds it
      EXPECT_EQ(st->last_lsn, Lsn(3));
      EXPECT_EQ(st->records, 3u);
    }
    EXPECT_EQ((co_await c.append(recs(log_record(4, 3)), Term(1), soon())).code(), Code::kFenced);
    EXPECT_EQ((co_await c.abandon_after(Lsn(3), Term(2), soon())).code(), Code::kFenced);
    EXPECT_EQ((co_await c.fence(Term(2), soon())).code(), Code::kFenced);
    // The writer of term 3 re-writes the recovered tail (header term 1) and continues.
    EXPECT_TRUE((co_await c.append(recs(log_record(3, 2)), Term(3), soon())).is_ok());
    EXPECT_TRUE((co_await c.append(recs(with_term(log_record(4, 3), 3)), Term(3), soon())).is_ok());
    EXPECT_EQ((co_await c.append(recs(with_term(log_record(5, 4), 4)), Term(3), soon())).code(),
              Code::kInvalidArgument);
    auto after = co_await c.status(soon());
    EXPECT_TRUE(after.is_ok());
    if (after.is_ok()) {
      EXPECT_EQ(after->term, Term(3));
      EXPECT_EQ(after->durable_lsn, Lsn(4));
    }
  });
}

// A take-over over RPC: the new writer fences, then re-writes the old term's tail above the
// commit point under its own term (replacing what differs), while the old writer's late
// records are Fenced and its copies of replaced records Older.
TEST_F(PageServerTest, ANewerWriterReplacesTheOlderTermsUncommittedTail) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    std::vector<Record> batch{log_record(1, 0), log_record(2, 1), log_record(3, 2),
                              log_record(4, 3)};
    batch[2].backlink_lsn = Lsn(2);  // 3 says 2 is committed
    EXPECT_TRUE((co_await c.append(batch, Term(1), soon())).is_ok());
    EXPECT_TRUE((co_await c.fence(Term(2), soon())).is_ok());
    Record replacement = with_term(log_record(4, 3), 2);
    replacement.payload.assign(replacement.payload.size(), 0x44);
    EXPECT_TRUE(
        (co_await c.append(recs(replacement, with_term(log_record(5, 4), 2)), Term(2), soon()))
            .is_ok());
    Record committed = with_term(log_record(2, 1), 2);
    committed.payload.assign(committed.payload.size(), 0x22);
    EXPECT_EQ((co_await c.append(recs(committed), Term(2), soon())).code(), Code::kInvalidArgument);
    // A stored record of a newer term: the older one is Older (at the writer's own term).
    Record stale = log_record(4, 3);
    EXPECT_EQ((co_await c.append(recs(stale), Term(2), soon())).code(), Code::kOlder);
    auto log = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (log.is_ok()) {
      EXPECT_EQ(log->records.size(), 5u);
      if (log->records.size() == 5) {
        EXPECT_EQ(log->records[3], replacement);
        EXPECT_EQ(log->records[1], log_record(2, 1));
      }
    }
  });
}

// Appends of a lower term racing a fence: every one acknowledged is within the status the
// fence answered with (none is stored after it); the others are Fenced.
TEST_F(PageServerTest, NoLowerTermWriteIsStoredAfterAFenceAnswered) {
  PageServerClient writer(env(), "ps1:7000");
  PageServerClient taker(env(), "ps1:7000");
  constexpr uint64_t kRecords = 40;
  std::vector<Status> results(kRecords + 1, cancelled("unset"));
  Result<PageServerStatus> fenced = cancelled("unset");
  auto write = [&](uint64_t lsn) -> Task<void> {
    Status st = co_await writer.append(recs(log_record(lsn, lsn - 1)), Term(1), soon());
    results[lsn] = st;
  };
  auto fence = [&]() -> Task<void> {
    (void)co_await env().executor().sleep(3ms);
    fenced = co_await taker.fence(Term(2), soon());
  };
  for (uint64_t l = 1; l <= kRecords; ++l) {
    env().executor().spawn("write", write(l));
    world_.run_for(500us);
    if (l == kRecords / 4) env().executor().spawn("fence", fence());
  }
  world_.run_for(3s);
  ASSERT_TRUE(fenced.is_ok()) << fenced.status().to_string();
  uint64_t ok = 0, refused = 0;
  for (uint64_t l = 1; l <= kRecords; ++l) {
    if (results[l].is_ok()) {
      ok++;
      EXPECT_LE(l, fenced->last_lsn.value) << l;
    } else {
      refused++;
      EXPECT_EQ(results[l].code(), Code::kFenced) << l << " " << results[l].to_string();
    }
  }
  EXPECT_GT(ok, 0u);       // the race did happen: some writes came before the fence
  EXPECT_GT(refused, 0u);  // and some after
}

// Issue 12 item 1 over RPC: the chain attack with the largest LSN is refused, and the
// writer's next records are stored, not acknowledged and lost.
TEST_F(PageServerTest, AnAcknowledgedAppendIsStoredAfterAChainAttack) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    Record attack = log_record(~uint64_t{0}, 1);
    EXPECT_EQ((co_await c.append(recs(attack), Term(1), soon())).code(), Code::kInvalidArgument);
    for (uint64_t l : {2, 3}) {
      Status st = co_await c.append(recs(log_record(l, l - 1)), Term(1), soon());
      EXPECT_TRUE(st.is_ok()) << l << " " << st.to_string();
    }
    // Within the bounds the same attack makes the writer's records refused, never lost.
    EXPECT_TRUE((co_await c.append(recs(log_record(1000, 3)), Term(1), soon())).is_ok());
    EXPECT_EQ((co_await c.append(recs(log_record(4, 3)), Term(1), soon())).code(), Code::kOlder);
    auto log = co_await c.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (log.is_ok()) {
      std::vector<uint64_t> lsns;
      for (const auto& r : log->records) lsns.push_back(r.lsn.value);
      EXPECT_EQ(lsns, (std::vector<uint64_t>{1, 2, 3, 1000}));
    }
  });
}

// LSNs and terms at or above 2^63 are InvalidArgument in every request and record field,
// and a refused huge term fences nobody.
TEST_F(PageServerTest, LsnsAndTermsAtOrAbove2To63AreInvalidArgument) {
  PageServerClient c(env(), "ps1:7000");
  const uint64_t big = uint64_t{1} << 63;
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    std::vector<Record> bad;
    for (int field = 0; field < 4; ++field) {
      Record r = log_record(2, 1);
      if (field == 0) r.lsn = Lsn(big);
      if (field == 1) r.backlink_lsn = Lsn(big);
      if (field == 2) r.base_lsn = Lsn(big);
      if (field == 3) r.term = Term(big);
      Status st = co_await c.append(recs(r), r.term, soon());
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << field << " " << st.to_string();
    }
    EXPECT_EQ((co_await c.abandon_after(Lsn(big), Term(1), soon())).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await c.abandon_after(Lsn(1), Term(big), soon())).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await c.set_retention(Lsn(~uint64_t{0}), Term(1), soon())).code(),
              Code::kInvalidArgument);
    EXPECT_EQ((co_await c.read_log(Lsn(big), 1024, soon())).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await c.get_page(TableId(3), PageId(1), Lsn(big), soon())).code(),
              Code::kInvalidArgument);
    EXPECT_EQ((co_await c.scan(Lsn(big), 1024, soon())).code(), Code::kInvalidArgument);
    // Nobody was fenced and nothing was stored.
    EXPECT_TRUE((co_await c.append(recs(log_record(2, 1)), Term(1), soon())).is_ok());
    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->term, Term(1));
      EXPECT_EQ(st->last_lsn, Lsn(2));
    }
  });
}

// A header term raises the store's term, so it must not be above the request's term; one
// below it is a newer writer re-writing an older term's tail, and is accepted.
TEST_F(PageServerTest, ARecordWhoseTermIsAboveItsRequestsIsRefused) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    Status st =
        co_await c.append(recs(log_record(2, 1), with_term(log_record(3, 2), 9)), Term(1), soon());
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  });
  world_.crash(servers_[0], UnsyncedOnCrash::kLose);
  world_.start(servers_[0]);
  world_.run_for(100ms);
  run([&]() -> Task<void> {
    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->term, Term(1));     // term 9 never took effect
      EXPECT_EQ(st->last_lsn, Lsn(1));  // and no record of the refused request was stored
    }
    EXPECT_TRUE((co_await c.append(recs(log_record(2, 1)), Term(1), soon())).is_ok());
    // Header term 1 under request term 2: accepted, and term 2 is the server's from here on.
    EXPECT_TRUE((co_await c.append(recs(log_record(3, 2)), Term(2), soon())).is_ok());
    EXPECT_EQ((co_await c.append(recs(log_record(4, 3)), Term(1), soon())).code(), Code::kFenced);
  });
}

// Issue 12 item 2 over RPC: a writer at the current term cannot abandon committed records
// nor move retention past the newest complete checkpoint.
TEST_F(PageServerTest, CommittedRecordsAreSafeFromTheWriter) {
  PageServerClient c(env(), "ps1:7000");
  run([&]() -> Task<void> {
    std::vector<Record> batch;
    for (uint64_t l = 1; l <= 4; ++l) batch.push_back(log_record(l, l - 1));
    Record committing = log_record(5, 4);
    committing.backlink_lsn = Lsn(4);
    batch.push_back(committing);
    EXPECT_TRUE((co_await c.append(batch, Term(1), soon())).is_ok());
    EXPECT_EQ((co_await c.abandon_after(Lsn(0), Term(1), soon())).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await c.append(recs(log_record(6, 2)), Term(1), soon())).code(),
              Code::kInvalidArgument);  // an implicit abandon_after(2)
    EXPECT_EQ((co_await c.set_retention(Lsn(3), Term(1), soon())).code(),
              Code::kNotYetMaterialized);
    auto st = co_await c.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->last_lsn, Lsn(5));
      EXPECT_EQ(st->durable_lsn, Lsn(5));
      EXPECT_EQ(st->records, 5u);
    }
    EXPECT_TRUE((co_await c.abandon_after(Lsn(4), Term(1), soon())).is_ok());
  });
}

TEST_F(PageServerTest, ReadsPastAGapAreNotYetMaterialized) {
  PageServerClient c(env(), "ps2:7000");
  run([&]() -> Task<void> {
    // ps2 misses records 2 and 3 (sent only to ps1); its chain stops at 1.
    PageServerClient c1(env(), "ps1:7000");
    EXPECT_TRUE((co_await c1.append(recs(log_record(1, 0), page_record(1, 2, 1), log_record(3, 2)),
                                    Term(1), soon()))
                    .is_ok());
    EXPECT_TRUE((co_await c.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    EXPECT_TRUE((co_await c.append(recs(page_record(1, 4, 3)), Term(1), soon())).is_ok());
    Status st = (co_await c.get_page(TableId(3), PageId(1), Lsn(4), soon())).status();
    // Either still behind, or it already caught up from ps1 in the background.
    EXPECT_TRUE(st.code() == Code::kNotYetMaterialized || st.is_ok()) << st.to_string();
    if (st.code() == Code::kNotYetMaterialized) {
      EXPECT_TRUE(st.retriable());
    }
  });
  // The catch-up task fills the gap from ps1.
  world_.run_for(2s);
  run([&]() -> Task<void> {
    auto page = co_await c.get_page(TableId(3), PageId(1), Lsn(4), soon());
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    auto st = co_await c.status(soon());
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(4));
    }
  });
}

TEST_F(PageServerTest, ServerRestartedEmptyCatchesUpFromPeers) {
  std::vector<Record> all;
  for (uint64_t l = 1; l <= 200; ++l)
    all.push_back(l % 5 == 0 ? page_record(l % 7 + 1, l, l - 1) : log_record(l, l - 1));
  run([&]() -> Task<void> {
    for (int i = 1; i <= 3; ++i) {
      PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
      EXPECT_TRUE((co_await c.append(all, Term(1), soon())).is_ok());
    }
  });
  world_.crash(servers_[2], UnsyncedOnCrash::kLose);
  world_.disk(servers_[2]).wipe();
  world_.start(servers_[2]);
  world_.run_for(3s);
  PageServerClient c3(env(), "ps3:7000");
  run([&]() -> Task<void> {
    auto st = co_await c3.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(200));
    }
    auto log = co_await c3.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok());
    if (log.is_ok()) {
      EXPECT_EQ(log->records.size(), 160u);
    }
  });
}

// Retention makes an empty server's chain look complete from the retention point on. It
// must not serve reads until it has copied every live record from a peer, older page
// versions a checkpoint still uses included.
TEST_F(PageServerTest, ServerRestartedEmptyServesNoReadsBeforeItsCopyIsDone) {
  std::vector<Record> first;
  first.push_back(page_record(3, 1, 0));  // page 3's only image: live whatever the retention
  for (uint64_t l = 2; l <= 300; ++l) first.push_back(log_record(l, l - 1));
  std::vector<Record> later;
  for (uint64_t l = 301; l < 400; ++l) later.push_back(log_record(l, l - 1));
  Record completion = log_record(400, 399);
  completion.type = RecordType::kCheckpointComplete;
  completion.base_lsn = Lsn(350);  // the checkpoint's log position
  later.push_back(completion);
  auto to_all = [&](std::vector<Record> records) {
    run([&]() -> Task<void> {
      for (int i = 1; i <= 3; ++i) {
        PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
        EXPECT_TRUE((co_await c.append(records, Term(1), soon())).is_ok()) << i;
      }
    });
  };
  to_all(first);
  // ps3 comes back empty, cut off from its peers (not from the writer).
  world_.crash(servers_[2], UnsyncedOnCrash::kLose);
  world_.disk(servers_[2]).wipe();
  world_.network().partition(servers_[2], servers_[0]);
  world_.network().partition(servers_[2], servers_[1]);
  world_.start(servers_[2]);
  world_.run_for(500ms);
  // New writes and a retention point reach it before any copy: its chain from 350 on is
  // whole, but page 3 is missing, so it must refuse the read (the client fails over).
  to_all(later);
  PageServerClient c3(env(), "ps3:7000");
  run([&]() -> Task<void> {
    for (int i = 1; i <= 3; ++i) {
      PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
      Status st = co_await c.set_retention(Lsn(350), Term(1), soon());
      EXPECT_TRUE(st.is_ok()) << i << " " << st.to_string();
    }
    auto page = co_await c3.get_page(TableId(3), PageId(3), Lsn(400), soon());
    EXPECT_EQ(page.code(), Code::kNotYetMaterialized)
        << (page.is_ok() ? "served" : page.status().to_string());
  });
  world_.network().heal_all();
  world_.run_for(3s);  // the copy from a peer completes
  run([&]() -> Task<void> {
    auto page = co_await c3.get_page(TableId(3), PageId(3), Lsn(400), soon());
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    if (page.is_ok()) {
      EXPECT_EQ(page->size(), 1u);
    }
  });
}

// A chain of 300 records in three parts for the gap tests: `first` (1-100) holds page 5's
// old image at 1, `gap` (101-200) its newest at 150, live at any retention point, and
// `later` (201-300) ends with a checkpoint completion whose log position is 250.
struct GapRecords {
  std::vector<Record> first, gap, later;
};
GapRecords page5_gap_records() {
  GapRecords r;
  r.first.push_back(page_record(5, 1, 0));
  for (uint64_t l = 2; l <= 100; ++l) r.first.push_back(log_record(l, l - 1));
  for (uint64_t l = 101; l <= 200; ++l) r.gap.push_back(log_record(l, l - 1));
  r.gap[49] = page_record(5, 150, 149);
  for (uint64_t l = 201; l < 300; ++l) r.later.push_back(log_record(l, l - 1));
  Record completion = checkpoint_record(300, 299);
  completion.base_lsn = Lsn(250);
  r.later.push_back(completion);
  return r;
}

// Issue 13 (quire chaos kek seed 79): a server restarted stale got a retention point above
// its chain's end before it caught up. It took its chain for complete from there and never
// copied the page image in the gap that the checkpoint at the retention point still used:
// get_page returned the older image it held. Now the jump persists where the gap starts,
// reads are refused until the gap is copied, across a restart, and its status tells peers
// it is whole only to the gap.
TEST_F(PageServerTest, AServerWhoseRetentionPointJumpsAGapCopiesItBeforeServingReads) {
  const auto [first, gap, later] = page5_gap_records();
  auto append_to = [&](std::vector<Record> records, int servers) {
    run([&]() -> Task<void> {
      for (int i = 1; i <= servers; ++i) {
        PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
        EXPECT_TRUE((co_await c.append(records, Term(1), soon())).is_ok()) << i;
      }
    });
  };
  append_to(first, 3);
  // ps3 misses the gap and is cut off from its peers (not from the writer).
  world_.network().partition(servers_[2], servers_[0]);
  world_.network().partition(servers_[2], servers_[1]);
  append_to(gap, 2);
  append_to(later, 3);
  PageServerClient c3(env(), "ps3:7000");
  auto page5 = [&](Code want, uint64_t want_lsn) {
    run([&]() -> Task<void> {
      auto page = co_await c3.get_page(TableId(3), PageId(5), Lsn(300), soon());
      EXPECT_EQ(page.code(), want) << (page.is_ok() ? "served" : page.status().to_string());
      if (page.is_ok() && want_lsn != 0) {
        EXPECT_EQ(page->size(), 1u);
        if (!page->empty()) {
          EXPECT_EQ(page->front().lsn, Lsn(want_lsn));
        }
      }
    });
  };
  run([&]() -> Task<void> {
    for (int i = 1; i <= 3; ++i) {
      PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
      Status st = co_await c.set_retention(Lsn(250), Term(1), soon());
      EXPECT_TRUE(st.is_ok()) << i << " " << st.to_string();
    }
    auto status = co_await c3.status(soon());
    EXPECT_TRUE(status.is_ok());
    if (status.is_ok()) {
      EXPECT_EQ(status->durable_lsn, Lsn(100));  // whole only to the gap, for its peers
    }
  });
  auto ps3_copy_from = [&] {
    auto* ps3 = static_cast<PageServer*>(world_.app(servers_[2]));
    return ps3 != nullptr && ps3->store() != nullptr ? ps3->store()->copy_from() : std::nullopt;
  };
  page5(Code::kNotYetMaterialized, 0);  // not the old image at 1
  EXPECT_EQ(ps3_copy_from(), Lsn(100));
  // A restart before the copy keeps refusing: the gap is durable.
  world_.crash(servers_[2], UnsyncedOnCrash::kLose);
  world_.start(servers_[2]);
  world_.run_for(500ms);
  page5(Code::kNotYetMaterialized, 0);
  world_.network().heal_all();
  world_.run_for(3s);  // the copy from a peer completes
  page5(Code::kOk, 150);
  EXPECT_EQ(ps3_copy_from(), std::nullopt);
}

// The hole docs/pagelog.md once named as known: a server copying (from empty, or a gap
// of its own) whose only reachable peer is itself copying a gap moved its cursor to the
// end of that peer's scan, past the peer's gap, and finished without the gap's records;
// then it served page 5's old image. Now a copy moves only across the ranges a peer holds
// whole, so ps1 waits for ps2, and serves the image in the gap once ps2 is back.
TEST_F(PageServerTest, ACopyDoesNotTakeAPeersOwnGapForCopied) {
  const auto [first, gap, later] = page5_gap_records();
  auto append_to = [&](std::vector<Record> records, std::vector<int> servers) {
    run([&]() -> Task<void> {
      for (int i : servers) {
        PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
        EXPECT_TRUE((co_await c.append(records, Term(1), soon())).is_ok()) << i;
      }
    });
  };
  auto set_retention = [&](std::vector<int> servers) {
    run([&]() -> Task<void> {
      for (int i : servers) {
        PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
        Status st = co_await c.set_retention(Lsn(250), Term(1), soon());
        EXPECT_TRUE(st.is_ok()) << i << " " << st.to_string();
      }
    });
  };
  append_to(first, {1, 2, 3});
  // ps3 misses the gap, cut off from its peers; the retention point jumps it.
  world_.network().partition(servers_[2], servers_[0]);
  world_.network().partition(servers_[2], servers_[1]);
  append_to(gap, {1, 2});
  append_to(later, {1, 2, 3});
  set_retention({1, 2, 3});
  // ps1 comes back empty; its only reachable peer is ps3, copying its gap.
  world_.network().heal_all();
  world_.network().partition(servers_[0], servers_[1]);
  world_.network().partition(servers_[2], servers_[1]);
  world_.crash(servers_[0], UnsyncedOnCrash::kLose);
  world_.disk(servers_[0]).wipe();
  world_.start(servers_[0]);
  world_.run_for(3s);  // ps1 copies what ps3 has: the checkpoint at 300 included
  set_retention({1});  // jumps ps1's chain too (it ends at 100)
  world_.run_for(3s);
  PageServerClient c1(env(), "ps1:7000");
  PageServerClient c3(env(), "ps3:7000");
  auto page5 = [&](PageServerClient& c, Code want) {
    run([&]() -> Task<void> {
      auto page = co_await c.get_page(TableId(3), PageId(5), Lsn(300), soon());
      EXPECT_EQ(page.code(), want)
          << c.server() << " " << (page.is_ok() ? "served" : page.status().to_string());
      if (page.is_ok()) {
        EXPECT_EQ(page->size(), 1u);
        if (!page->empty()) {
          EXPECT_EQ(page->front().lsn, Lsn(150)) << c.server();
        }
      }
    });
  };
  auto ps1 = [&] { return static_cast<PageServer*>(world_.app(servers_[0])); };
  ASSERT_NE(ps1(), nullptr);
  ASSERT_NE(ps1()->store(), nullptr);
  EXPECT_TRUE(ps1()->store()->copy_from().has_value());  // still copying
  page5(c1, Code::kNotYetMaterialized);                  // not the old image at 1
  page5(c3, Code::kNotYetMaterialized);
  world_.network().heal_all();
  world_.run_for(3s);  // both copy the gap from ps2
  page5(c1, Code::kOk);
  page5(c3, Code::kOk);
  EXPECT_EQ(ps1()->store()->copy_from(), std::nullopt);
}

// Each server missed a different stretch, each record reached two of the three, and the
// retention point jumps all three at once: none holds the whole chain, yet each holds
// whole what the others missed (PrimarySealChaosTest seed 111 got there with two
// stretches on one server). Each copies only its own stretches, from a peer whole there,
// and then serves the page images they held.
TEST_F(PageServerTest, ServersThatEachMissedADifferentStretchFillItFromOneAnother) {
  std::vector<Record> all;
  for (uint64_t l = 1; l < 100; ++l) all.push_back(log_record(l, l - 1));
  for (uint64_t page : {5, 6, 7}) {  // images inside the stretches: live at any point
    const uint64_t l = 15 + (page - 5) * 20;
    all[l - 1] = page_record(page, l, l - 1);
  }
  Record completion = checkpoint_record(100, 99);
  completion.base_lsn = Lsn(90);
  all.push_back(completion);
  // ps1 misses 11-20, ps2 31-40, ps3 51-60; the servers cannot reach one another.
  world_.network().partition(servers_[0], servers_[1]);
  world_.network().partition(servers_[0], servers_[2]);
  world_.network().partition(servers_[1], servers_[2]);
  run([&]() -> Task<void> {
    for (int i = 1; i <= 3; ++i) {
      const uint64_t lo = 11 + (i - 1) * 20;
      std::vector<Record> mine;
      for (const Record& r : all) {
        if (r.lsn.value < lo || r.lsn.value >= lo + 10) mine.push_back(r);
      }
      PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
      EXPECT_TRUE((co_await c.append(mine, Term(1), soon())).is_ok()) << i;
      Status st = co_await c.set_retention(Lsn(90), Term(1), soon());
      EXPECT_TRUE(st.is_ok()) << i << " " << st.to_string();
    }
  });
  for (size_t i = 0; i < 3; ++i) {
    auto* ps = static_cast<PageServer*>(world_.app(servers_[i]));
    ASSERT_NE(ps, nullptr);
    ASSERT_NE(ps->store(), nullptr);
    const Lsn from(10 + i * 20);
    EXPECT_EQ(ps->store()->copy_gaps(), (std::vector<CopyGap>{{from, Lsn(from.value + 10)}}));
  }
  world_.network().heal_all();
  world_.run_for(3s);
  for (int i = 1; i <= 3; ++i) {
    PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
    run([&]() -> Task<void> {
      for (uint64_t page : {5, 6, 7}) {
        auto got = co_await c.get_page(TableId(3), PageId(page), Lsn(100), soon());
        EXPECT_TRUE(got.is_ok()) << i << " page " << page << " " << got.status().to_string();
        if (got.is_ok() && !got->empty()) {
          EXPECT_EQ(got->front().lsn, Lsn(15 + (page - 5) * 20)) << i;
        }
      }
    });
    EXPECT_EQ(static_cast<PageServer*>(world_.app(servers_[i - 1]))->store()->copy_from(),
              std::nullopt);
  }
}

// A server that missed a retention point (down or cut off when the writer set it) has a
// chain that ends below it, and its peers dropped the log records it would extend it with.
// A writer sends the point again only with its next checkpoint, which an idle database may
// never take: the server takes its peers' point, jumps, and copies the gap. Before, it
// stayed at its chain's end for good, and a standby reading from it read "nothing new"
// there (PrimarySealChaosTest seed 8, pipelined).
TEST_F(PageServerTest, AServerThatMissedTheRetentionPointTakesItsPeers) {
  const auto [first, gap, later] = page5_gap_records();
  auto append_to = [&](const std::vector<Record>& records, std::vector<int> servers) {
    run([&]() -> Task<void> {
      for (int i : servers) {
        PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
        EXPECT_TRUE((co_await c.append(records, Term(1), soon())).is_ok()) << i;
      }
    });
  };
  append_to(first, {1, 2, 3});
  world_.network().partition(servers_[2], servers_[0]);
  world_.network().partition(servers_[2], servers_[1]);
  append_to(gap, {1, 2});
  append_to(later, {1, 2});
  run([&]() -> Task<void> {
    for (int i = 1; i <= 2; ++i) {
      PageServerClient c(env(), "ps" + std::to_string(i) + ":7000");
      Status st = co_await c.set_retention(Lsn(250), Term(1), soon());
      EXPECT_TRUE(st.is_ok()) << i << " " << st.to_string();
    }
  });
  world_.network().heal_all();
  world_.run_for(3s);
  PageServerClient c3(env(), "ps3:7000");
  run([&]() -> Task<void> {
    auto status = co_await c3.status(soon());
    EXPECT_TRUE(status.is_ok()) << status.status().to_string();
    if (status.is_ok()) {
      EXPECT_EQ(status->durable_lsn, Lsn(300));
      EXPECT_EQ(status->retention_lsn, Lsn(250));
      EXPECT_TRUE(status->copy_gaps.empty());
    }
    auto page = co_await c3.get_page(TableId(3), PageId(5), Lsn(300), soon());
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    if (page.is_ok() && !page->empty()) {
      EXPECT_EQ(page->front().lsn, Lsn(150));
    }
  });
}

TEST_F(PageServerTest, SealWhileWritingGivesRetriableSealedOrSuccess) {
  PageServerClient c(env(), "ps1:7000");
  int ok = 0, sealed = 0, other = 0, seals_done = 0;
  // A writer re-sends on retriable errors (Sealed, and Busy from the per-connection bound).
  auto writer = [&](uint64_t lsn) -> Task<void> {
    std::vector<Record> batch{log_record(lsn, lsn - 1)};
    (void)co_await env().executor().sleep(Nanos(lsn * 100'000));  // spread over the seals
    for (int attempt = 0; attempt < 50; ++attempt) {
      Status st = co_await c.append(batch, Term(1), env().executor().deadline_after(2s));
      if (st.is_ok()) {
        ok++;
        co_return;
      }
      if (st.code() == Code::kSealed) sealed++;
      if (!st.retriable()) {
        other++;
        ADD_FAILURE() << st.to_string();
        co_return;
      }
      (void)co_await env().executor().sleep(100us);
    }
    other++;
  };
  auto sealer = [&]() -> Task<void> {
    for (int i = 0; i < 30; ++i) {
      if ((co_await c.seal(env().executor().deadline_after(2s))).is_ok()) seals_done++;
      (void)co_await env().executor().sleep(150us);
    }
  };
  for (uint64_t l = 1; l <= 100; ++l) env().executor().spawn("w", writer(l));
  env().executor().spawn("seal", sealer());
  world_.run_for(5s);
  EXPECT_EQ(ok, 100);
  EXPECT_EQ(other, 0);
  EXPECT_GT(sealed, 0) << "some writes should have been in flight during a seal";
  EXPECT_GT(seals_done, 0);
  run([&]() -> Task<void> {
    auto st = co_await c.status(soon());
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(100));
      // A seal of a segment that is still empty creates no new one.
      EXPECT_LE(st->sealed_count, static_cast<uint64_t>(seals_done));
      EXPECT_GT(st->sealed_count, 0u);
    }
  });
}

TEST_F(PageServerTest, MalformedMessageClosesOnlyThatConnection) {
  PageServerClient good(env(), "ps1:7000");
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await good.append(recs(log_record(1, 0)), Term(1), soon())).is_ok());
    auto raw = co_await env().net().connect("ps1:7000", soon());
    EXPECT_TRUE(raw.is_ok());
    if (!raw.is_ok()) co_return;
    EXPECT_TRUE((*raw)->send(Bytes{0xff, 0x01, 0x02}).is_ok());
    auto r = co_await (*raw)->receive(soon());
    EXPECT_EQ(r.code(), Code::kUnavailable);  // the server closed it
    EXPECT_TRUE((co_await good.status(soon())).is_ok());
    // A record corrupted in transit is refused with Corruption.
    Bytes body = encode_records({log_record(2, 1)});
    body.back() ^= 1;
    auto conn = co_await env().net().connect("ps1:7000", soon());
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    EXPECT_TRUE((*conn)
                    ->send(encode_rpc_request({1, static_cast<uint8_t>(PageOp::kAppend), 1, body}))
                    .is_ok());
    auto reply = co_await (*conn)->receive(soon());
    EXPECT_TRUE(reply.is_ok());
    if (reply.is_ok()) {
      auto resp = decode_rpc_response(*reply);
      EXPECT_TRUE(resp.is_ok());
      if (resp.is_ok()) {
        EXPECT_EQ(resp->status.code(), Code::kCorruption);
      }
    }
  });
}

// Over RPC, a malformed body for each operation gets a typed error back and the server
// goes on serving; operations without a body ignore it (list_checkpoints has one: an
// optional cursor).
TEST_F(PageServerTest, MalformedBodyForEachOpIsATypedError) {
  PageServerClient good(env(), "ps1:7000");
  run([&]() -> Task<void> {
    auto conn = co_await env().net().connect("ps1:7000", soon());
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    const Bytes endless(11, 0xff);  // a varint that never ends
    const std::map<uint8_t, Code> expected{{0, Code::kInvalidArgument},
                                           {1, Code::kCorruption},
                                           {2, Code::kInvalidArgument},
                                           {3, Code::kInvalidArgument},
                                           {4, Code::kNotFound},
                                           {5, Code::kInvalidArgument},
                                           {6, Code::kOk},
                                           {7, Code::kInvalidArgument},
                                           {8, Code::kInvalidArgument},
                                           {9, Code::kOk},
                                           {10, Code::kInvalidArgument},
                                           {11, Code::kOk},
                                           {12, Code::kInvalidArgument},
                                           {13, Code::kInvalidArgument}};
    uint64_t id = 1;
    for (const auto& [op, code] : expected) {
      RpcRequest request{id++, op, 1, endless};
      EXPECT_TRUE((*conn)->send(encode_rpc_request(request)).is_ok());
      auto reply = co_await (*conn)->receive(soon());
      EXPECT_TRUE(reply.is_ok()) << int{op};
      if (!reply.is_ok()) co_return;
      auto resp = decode_rpc_response(*reply);
      EXPECT_TRUE(resp.is_ok()) << int{op};
      if (resp.is_ok()) {
        EXPECT_EQ(resp->status.code(), code) << int{op} << " " << resp->status.to_string();
      }
    }
    EXPECT_TRUE((co_await good.status(soon())).is_ok());
  });
}

// A chain and a checkpoint list larger than one part are read whole, one part per record,
// by a client that asks for small parts; an older client (no cursor, no budget) still
// gets the whole chain in one response.
TEST_F(PageServerTest, AChainAndACheckpointListAreReadWholeInParts) {
  PageServerClient c(env(), "ps1:7000", one_record_parts());
  std::vector<Record> chain{page_record(9, 1, 0), delta_record(9, 2, 1, 1),
                            delta_record(9, 3, 2, 1), delta_record(9, 4, 3, 1)};
  std::vector<Record> checkpoints{checkpoint_record(5, 4), checkpoint_record(6, 5),
                                  checkpoint_record(7, 6)};
  run([&]() -> Task<void> {
    std::vector<Record> all = chain;
    all.insert(all.end(), checkpoints.begin(), checkpoints.end());
    EXPECT_TRUE((co_await c.append(all, Term(1), soon())).is_ok());

    auto first = co_await c.get_page_part(TableId(3), PageId(9), Lsn(7), PartCursor{}, soon());
    EXPECT_TRUE(first.is_ok()) << first.status().to_string();
    if (first.is_ok()) {
      EXPECT_EQ(first->records, std::vector<Record>{chain[0]});  // one record per part
      EXPECT_TRUE(first->more);
    }
    auto page = co_await c.get_page(TableId(3), PageId(9), Lsn(7), soon());
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    if (page.is_ok()) {
      EXPECT_EQ(*page, chain);
    }
    auto listed = co_await c.list_checkpoints(soon());
    EXPECT_TRUE(listed.is_ok()) << listed.status().to_string();
    if (listed.is_ok()) {
      EXPECT_EQ(*listed, checkpoints);
    }

    // An older client's request: the whole chain, in a response of the old bytes.
    RpcClient rpc(env(), "ps1:7000");
    RpcRequest old = GetPageRequest{TableId(3), PageId(9), Lsn(3)}.encode();
    EXPECT_EQ(old.body.size(), 3u);
    auto body = co_await rpc.call(old.op, 0, old.body, soon());
    EXPECT_TRUE(body.is_ok()) << body.status().to_string();
    if (body.is_ok()) {
      EXPECT_EQ(*body, encode_records({chain[0], chain[1], chain[2]}));
    }
  });
}

// A read gathers at most read_parts_max parts and read_bytes_max bytes: past either it is
// InvalidArgument, not a longer read.
TEST_F(PageServerTest, AReadInPartsStopsAtItsBounds) {
  PageClientOptions few_parts = one_record_parts();
  few_parts.read_parts_max = 3;
  PageClientOptions few_bytes = one_record_parts();
  few_bytes.read_bytes_max = 500;
  PageServerClient c(env(), "ps1:7000", one_record_parts());
  PageServerClient c_parts(env(), "ps1:7000", few_parts);
  PageServerClient c_bytes(env(), "ps1:7000", few_bytes);
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(page_record(9, 1, 0), delta_record(9, 2, 1, 1),
                                        delta_record(9, 3, 2, 1), delta_record(9, 4, 3, 1)),
                                   Term(1), soon()))
                    .is_ok());
    EXPECT_TRUE((co_await c.get_page(TableId(3), PageId(9), Lsn(4), soon())).is_ok());
    EXPECT_EQ((co_await c_parts.get_page(TableId(3), PageId(9), Lsn(4), soon())).code(),
              Code::kInvalidArgument);
    EXPECT_TRUE((co_await c_parts.get_page(TableId(3), PageId(9), Lsn(3), soon())).is_ok());
    EXPECT_EQ((co_await c_bytes.get_page(TableId(3), PageId(9), Lsn(4), soon())).code(),
              Code::kInvalidArgument);
  });
}

// A chain that changes between parts (here an abandon drops the records a reader already
// holds, and new ones follow) is the retriable Busy for the next part, never a mix of two
// chains; reading again from the start gives the chain as it is now.
TEST_F(PageServerTest, AChainThatChangesBetweenPartsIsARetriableError) {
  PageServerClient c(env(), "ps1:7000", one_record_parts());
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await c.append(recs(page_record(9, 1, 0), delta_record(9, 2, 1, 1),
                                        delta_record(9, 3, 2, 1), delta_record(9, 4, 3, 1)),
                                   Term(1), soon()))
                    .is_ok());
    PartCursor cursor;
    for (uint64_t lsn = 1; lsn <= 2; ++lsn) {
      auto part = co_await c.get_page_part(TableId(3), PageId(9), Lsn(4), cursor, soon());
      EXPECT_TRUE(part.is_ok()) << part.status().to_string();
      if (!part.is_ok()) co_return;
      EXPECT_EQ(part->records.size(), 1u);
      EXPECT_TRUE(part->more);
      cursor = PartCursor{Lsn(1), Lsn(lsn)};
    }
    EXPECT_TRUE((co_await c.abandon_after(Lsn(1), Term(1), soon())).is_ok());
    EXPECT_TRUE(
        (co_await c.append(recs(delta_record(9, 5, 1, 1), log_record(6, 5)), Term(1), soon()))
            .is_ok());
    auto changed = co_await c.get_page_part(TableId(3), PageId(9), Lsn(4), cursor, soon());
    EXPECT_EQ(changed.code(), Code::kBusy)
        << (changed.is_ok() ? "served" : changed.status().to_string());
    EXPECT_TRUE(changed.status().retriable());
    auto again = co_await c.get_page(TableId(3), PageId(9), Lsn(6), soon());
    EXPECT_TRUE(again.is_ok()) << again.status().to_string();
    if (again.is_ok()) {
      EXPECT_EQ(*again, recs(page_record(9, 1, 0), delta_record(9, 5, 1, 1)));
    }
  });
}

// Responses are never over one frame, whatever response_bytes_max says: a scan of four
// records of the largest payload (64 MiB and more) comes in chunks of three and one, a
// chain of them in parts of three and one, and an older client's request for the whole
// chain is InvalidArgument (before, each of these responses was dropped and its call
// never ended).
TEST(PageServerLargeResponses, NoResponseIsLargerThanOneFrame) {
  SimWorld world(5);
  PageServerOptions o;
  o.listen = "ps1:7000";
  o.response_bytes_max = size_t{1} << 30;
  world.add_node("ps1", [o](Env& env) { return std::make_unique<PageServer>(env, o); });
  NodeId client = world.add_node("client", [](Env&) { return std::make_unique<IdleApp>(); });
  for (NodeId n : world.nodes()) world.start(n);
  world.run_for(100ms);
  Env& env = *world.env(client);
  PageClientOptions big_parts;
  big_parts.part_bytes_max = size_t{1} << 30;
  PageServerClient c(env, "ps1:7000", big_parts);
  auto soon = [&] { return env.executor().deadline_after(10s); };
  std::vector<Record> chain{page_record(9, 1, 0)};
  for (uint64_t lsn = 2; lsn <= 4; ++lsn) chain.push_back(delta_record(9, lsn, lsn - 1, 1));
  for (Record& r : chain) r.payload.assign(kRecordPayloadMax, static_cast<uint8_t>(r.lsn.value));
  ASSERT_TRUE(testing_support::run_in_node(world, env, [&]() -> Task<void> {
    for (const Record& r : chain) {
      EXPECT_TRUE((co_await c.append(recs(r), Term(1), soon())).is_ok()) << r.lsn.value;
    }
    auto chunk = co_await c.scan(Lsn(0), size_t{1} << 30, soon());
    EXPECT_TRUE(chunk.is_ok()) << chunk.status().to_string();
    if (chunk.is_ok()) {
      EXPECT_EQ(chunk->records.size(), 3u);
      EXPECT_EQ(chunk->through, Lsn(3));
    }
    auto rest = co_await c.scan(Lsn(3), size_t{1} << 30, soon());
    EXPECT_TRUE(rest.is_ok()) << rest.status().to_string();
    if (rest.is_ok()) {
      EXPECT_EQ(rest->records.size(), 1u);
    }
    auto part = co_await c.get_page_part(TableId(3), PageId(9), Lsn(4), PartCursor{}, soon());
    EXPECT_TRUE(part.is_ok()) << part.status().to_string();
    if (part.is_ok()) {
      EXPECT_EQ(part->records.size(), 3u);
      EXPECT_TRUE(part->more);
    }
    auto page = co_await c.get_page(TableId(3), PageId(9), Lsn(4), soon());
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    if (page.is_ok()) {
      EXPECT_TRUE(*page == chain);
    }
    RpcClient rpc(env, "ps1:7000");
    RpcRequest old = GetPageRequest{TableId(3), PageId(9), Lsn(4)}.encode();
    EXPECT_EQ((co_await rpc.call(old.op, 0, old.body, soon())).code(), Code::kInvalidArgument);
  }));
}

// A data directory the store cannot use (a directory where a segment file belongs) is a
// configuration error: the server does not start and says why, and it does not ask to be
// restarted, as it would for a disk failure.
TEST_F(PageServerTest, AnUnusableDataDirectoryIsAStartErrorNotARestart) {
  const NodeId ps1 = servers_[0];
  world_.crash(ps1, UnsyncedOnCrash::kLose);
  std::unique_ptr<Disk> ps1_disk = world_.disk(ps1).make_disk(env().executor());
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await ps1_disk->make_dirs("segments/seg-0000000000000002")).is_ok());
  });
  world_.start(ps1);
  world_.run_for(1s);
  auto* server = dynamic_cast<PageServer*>(world_.app(ps1));
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(server->serving());
  EXPECT_EQ(server->start_error().code(), Code::kInvalidArgument);
  EXPECT_NE(server->start_error().message().find("segments/seg-0000000000000002"),
            std::string::npos)
      << server->start_error().to_string();
  EXPECT_EQ(world_.restarts_requested(ps1), 0u);
  EXPECT_TRUE(world_.is_up(ps1));
}

// A page server whose disk fills keeps serving: its appends are refused with NoSpace (no
// restart), reads go on, the writer commits on the other two at W=2 and, when every disk
// is full, is told why its writes time out. Once space is freed the server catches up from
// its peers.
TEST_F(PageServerTest, AServerOnAFullDiskRefusesWritesServesReadsAndCatchesUpOnceSpaceIsFreed) {
  ReplicationOptions ro;
  for (int i = 1; i <= 3; ++i) ro.servers.push_back("ps" + std::to_string(i) + ":7000");
  ro.write_quorum = 2;
  ReplicationClient repl(env(), ro);
  // Records of 100 KiB: the zeros written ahead of the records (1 MiB) fill quickly.
  auto big = [](uint64_t lsn) {
    Record r = log_record(lsn, lsn - 1);
    r.payload.assign(100 << 10, static_cast<uint8_t>(lsn));
    return r;
  };
  uint64_t lsn = 0;
  auto write = [&](Deadline d) -> Task<Status> {
    co_return co_await repl.write(recs(big(lsn + 1)), d);
  };
  run([&]() -> Task<void> {
    for (; lsn < 5; ++lsn) EXPECT_TRUE((co_await write(soon())).is_ok());
  });
  DiskFaults full;
  full.capacity_bytes = world_.disk(servers_[2]).used_bytes();
  world_.disk(servers_[2]).set_faults(full);
  run([&]() -> Task<void> {
    for (; lsn < 40; ++lsn) {
      Status st = co_await write(soon());
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    PageServerClient c3(env(), "ps3:7000");
    auto refused = co_await c3.append(recs(big(lsn + 1)), Term(1), soon());
    EXPECT_EQ(refused.code(), Code::kNoSpace) << refused.to_string();
    auto st = co_await c3.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_GE(st->durable_lsn, Lsn(5));
      EXPECT_LT(st->durable_lsn, Lsn(40));
    }
    auto log = co_await c3.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok()) << log.status().to_string();
    if (log.is_ok()) {
      EXPECT_FALSE(log->records.empty());
      if (!log->records.empty()) {
        EXPECT_EQ(log->records.front().lsn, Lsn(1));
      }
    }
  });
  EXPECT_EQ(world_.restarts_requested(servers_[2]), 0u);
  // Every disk full: the write times out, and says what the servers answered.
  for (int i = 0; i < 2; ++i) {
    full.capacity_bytes = world_.disk(servers_[i]).used_bytes();
    world_.disk(servers_[i]).set_faults(full);
  }
  run([&]() -> Task<void> {
    Status st = Status();
    for (int i = 0; i < 20 && st.is_ok(); ++i, ++lsn) st = co_await write(soon());
    EXPECT_FALSE(st.is_ok());
    EXPECT_TRUE(st.retriable()) << st.to_string();
    EXPECT_NE(st.message().find("NoSpace"), std::string::npos) << st.to_string();
  });
  for (NodeId s : servers_) {
    EXPECT_EQ(world_.restarts_requested(s), 0u);
    world_.disk(s).set_faults(DiskFaults{});
  }
  // Space freed: the write that timed out is sent again and goes in, then more.
  run([&]() -> Task<void> {
    for (int i = 0; i < 10; ++i, ++lsn) {
      Status st = co_await write(soon());
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
  });
  world_.run_for(5s);
  run([&]() -> Task<void> {
    PageServerClient c3(env(), "ps3:7000");
    auto st = co_await c3.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(lsn));
    }
  });
}

// A page server started with an empty data directory on a full disk (a replaced disk
// that filled, a directory wiped): it has no room for a first segment, yet it serves
// without restarting, refuses writes for space, and copies everything from its peers once
// there is room.
TEST_F(PageServerTest, AServerStartedEmptyOnAFullDiskServesAndCopiesOnceThereIsRoom) {
  ReplicationOptions ro;
  for (int i = 1; i <= 3; ++i) ro.servers.push_back("ps" + std::to_string(i) + ":7000");
  ro.write_quorum = 2;
  ReplicationClient repl(env(), ro);
  uint64_t lsn = 0;
  run([&]() -> Task<void> {
    for (; lsn < 10; ++lsn)
      EXPECT_TRUE((co_await repl.write(recs(log_record(lsn + 1, lsn)), soon())).is_ok());
  });
  const NodeId ps3 = servers_[2];
  world_.crash(ps3, UnsyncedOnCrash::kLose);
  std::unique_ptr<Disk> ps3_disk = world_.disk(ps3).make_disk(env().executor());
  run([&]() -> Task<void> {
    auto names = co_await ps3_disk->list("segments");
    EXPECT_TRUE(names.is_ok()) << names.status().to_string();
    if (!names.is_ok()) co_return;
    for (const std::string& name : *names) {
      EXPECT_TRUE((co_await ps3_disk->unlink("segments/" + name)).is_ok()) << name;
    }
    EXPECT_TRUE((co_await ps3_disk->sync_dir("segments")).is_ok());
  });
  DiskFaults full;
  full.capacity_bytes = world_.disk(ps3).used_bytes() + 1;  // 0 is unlimited
  world_.disk(ps3).set_faults(full);
  world_.start(ps3);
  world_.run_for(1s);
  auto* server = dynamic_cast<PageServer*>(world_.app(ps3));
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->serving());
  run([&]() -> Task<void> {
    for (int i = 0; i < 10; ++i, ++lsn) {
      Status st = co_await repl.write(recs(log_record(lsn + 1, lsn)), soon());
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    PageServerClient c3(env(), "ps3:7000");
    auto refused = co_await c3.append(recs(log_record(lsn + 1, lsn)), Term(1), soon());
    EXPECT_EQ(refused.code(), Code::kNoSpace) << refused.to_string();
    auto st = co_await c3.status(soon());
    EXPECT_TRUE(st.is_ok()) << st.status().to_string();
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(0));
    }
  });
  EXPECT_EQ(world_.restarts_requested(ps3), 0u);
  world_.disk(ps3).set_faults(DiskFaults{});
  world_.run_for(5s);
  run([&]() -> Task<void> {
    PageServerClient c3(env(), "ps3:7000");
    auto st = co_await c3.status(soon());
    EXPECT_TRUE(st.is_ok());
    if (st.is_ok()) {
      EXPECT_EQ(st->durable_lsn, Lsn(lsn));
    }
    auto log = co_await c3.read_log(Lsn(1), 1 << 20, soon());
    EXPECT_TRUE(log.is_ok()) << log.status().to_string();
    if (log.is_ok()) {
      EXPECT_EQ(log->records.size(), lsn);
    }
  });
  EXPECT_EQ(world_.restarts_requested(ps3), 0u);
}

}  // namespace
}  // namespace quire
