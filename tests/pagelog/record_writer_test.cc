// The record writer: LSNs handed out in order and chained (misuse is a bug that stops the
// process), and recovery after a failed write (abandon after the durable point, then
// continue the chain).
#include "pagelog/record_writer.h"

#include <gtest/gtest.h>

#include "pagelog/page_server.h"
#include "support/sim_node.h"

namespace quire {
namespace {

using testing_support::IdleApp;
using testing_support::run_in_node;

struct Cluster {
  explicit Cluster(uint64_t seed) : world(seed) {
    for (int i = 1; i <= 3; i++) addrs.push_back("ps" + std::to_string(i) + ":7000");
    for (int i = 0; i < 3; i++) {
      PageServerOptions o;
      o.listen = addrs[i];
      for (int j = 0; j < 3; j++) {
        if (j != i) o.peers.push_back(addrs[j]);
      }
      servers.push_back(world.add_node("ps" + std::to_string(i + 1), [o](Env& env) {
        return std::make_unique<PageServer>(env, o);
      }));
    }
    writer_node = world.add_node("writer", [](Env&) { return std::make_unique<IdleApp>(); });
    for (NodeId n : world.nodes()) world.start(n);
    ReplicationOptions ro;
    ro.servers = addrs;
    client = std::make_unique<ReplicationClient>(*world.env(writer_node), ro);
  }
  Env& env() { return *world.env(writer_node); }

  SimWorld world;
  std::vector<Address> addrs;
  std::vector<NodeId> servers;
  NodeId writer_node;
  std::unique_ptr<ReplicationClient> client;
};

Record log_record(Lsn lsn) {
  Record r;
  r.type = RecordType::kLog;
  r.lsn = lsn;
  r.payload = Bytes(16, static_cast<uint8_t>(lsn.value));
  return r;
}

TEST(RecordWriter, ChainsRecordsAndRecoversAfterAFailedWrite) {
  Cluster c(5);
  RecordWriter w(*c.client, Lsn(), Lsn(1));
  ASSERT_TRUE(run_in_node(c.world, c.env(), [&]() -> Task<void> {
    Executor& exec = c.env().executor();
    std::vector<Record> batch;
    batch.push_back(log_record(w.allocate()));
    batch.push_back(log_record(w.allocate()));
    Status st = co_await w.write(batch, exec.deadline_after(2s));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(w.durable_lsn(), Lsn(2));

    // Cut off: the write fails with an unknown outcome; the writer needs recovery.
    c.world.network().isolate(c.writer_node);
    std::vector<Record> lost;
    lost.push_back(log_record(w.allocate()));
    st = co_await w.write(lost, exec.deadline_after(500ms));
    EXPECT_FALSE(st.is_ok());
    EXPECT_TRUE(w.needs_recovery());
    std::vector<Record> refused;
    refused.push_back(log_record(w.allocate()));
    EXPECT_EQ((co_await w.write(refused, exec.deadline_after(1s))).code(), Code::kUnavailable);
    c.world.network().heal_all();
    st = co_await w.recover(exec.deadline_after(5s));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(w.chain_head(), Lsn(2));
    // The chain goes on from the durable point with new LSNs (never reused).
    std::vector<Record> next;
    next.push_back(log_record(w.allocate()));
    EXPECT_EQ(next.front().lsn, Lsn(5));
    st = co_await w.write(next, exec.deadline_after(2s));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(w.durable_lsn(), Lsn(5));
    auto log = co_await c.client->read_log(Lsn(1), 1 << 20, exec.deadline_after(2s));
    EXPECT_TRUE(log.is_ok());
    if (log.is_ok()) {
      std::vector<uint64_t> lsns;
      for (const Record& r : log->records) lsns.push_back(r.lsn.value);
      EXPECT_EQ(lsns, (std::vector<uint64_t>{1, 2, 5}));
    }
  }));
}

// Writing LSNs the writer never handed out, or out of order, is a caller bug: it stops
// the process rather than returning an error someone could ignore.
TEST(RecordWriterDeathTest, RecordsOutOfOrderOrNotAllocatedAreABug) {
  auto write_lsns = [](std::vector<uint64_t> lsns) {
    Cluster c(7);
    RecordWriter w(*c.client, Lsn(), Lsn(1));
    (void)w.allocate();
    (void)w.allocate();
    (void)run_in_node(c.world, c.env(), [&]() -> Task<void> {
      std::vector<Record> records;
      for (uint64_t l : lsns) records.push_back(log_record(Lsn(l)));
      (void)co_await w.write(records, c.env().executor().deadline_after(1s));
    });
  };
  EXPECT_DEATH(write_lsns({99}), "out of order or not allocated");
  EXPECT_DEATH(write_lsns({2, 1}), "out of order or not allocated");
  EXPECT_DEATH(write_lsns({1, 1}), "out of order or not allocated");
}

TEST(ReplicationClient, AbandonIsRefusedWhileAWriteWaitsForItsQuorum) {
  Cluster c(6);
  Status abandon_status;
  ASSERT_TRUE(run_in_node(c.world, c.env(), [&]() -> Task<void> {
    Executor& exec = c.env().executor();
    c.world.network().isolate(c.writer_node);
    auto writing = [&]() -> Task<void> {
      std::vector<Record> one;
      Record r = log_record(Lsn(1));
      one.push_back(std::move(r));
      (void)co_await c.client->write(std::move(one), exec.deadline_after(1s));
    };
    TaskId t = exec.spawn("write", writing());
    co_await exec.yield();
    abandon_status = co_await c.client->abandon_after(Lsn(0), exec.deadline_after(100ms));
    Status joined = co_await exec.join(t);
    EXPECT_TRUE(joined.is_ok());
  }));
  EXPECT_EQ(abandon_status.code(), Code::kBusy);
}

}  // namespace
}  // namespace quire
