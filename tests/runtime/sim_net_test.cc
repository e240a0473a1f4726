#include "runtime/sim/sim_net.h"

#include <gtest/gtest.h>

namespace quire {
namespace {

struct NetHarness {
  Scheduler s;
  SimNetwork net{s, 42};
  Executor a{s, 1};
  Executor b{s, 2};
  std::unique_ptr<Net> net_a = net.make_net(1);
  std::unique_ptr<Net> net_b = net.make_net(2);
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Connection> client;
  std::unique_ptr<Connection> server;

  NetHarness() {
    net.add_host("a", 1);
    net.add_host("b", 2);
  }

  void run_for(Nanos d) {
    MonoTime end = s.now() + d;
    while (true) {
      auto next = s.next_event_time();
      if (!next || *next > end) break;
      s.run_next();
    }
    if (s.now() < end) s.advance_to(end);
  }

  // Connects a -> b:1 and accepts it.
  void connect() {
    listener = std::move(net_b->listen("b:1")).value();
    auto acc = [](NetHarness* h) -> Task<void> {
      auto c = co_await h->listener->accept(h->b.deadline_after(1s));
      if (c.is_ok()) h->server = std::move(c).value();
    };
    auto con = [](NetHarness* h) -> Task<void> {
      auto c = co_await h->net_a->connect("b:1", h->a.deadline_after(1s));
      if (c.is_ok()) h->client = std::move(c).value();
    };
    b.spawn("accept", acc(this));
    a.spawn("connect", con(this));
    run_for(100ms);
    ASSERT_TRUE(client && server);
  }

  // Receives on `c` until the deadline, collecting single-byte payloads.
  std::vector<int> drain(Connection& c, Executor& e, Nanos d, Status* last = nullptr) {
    std::vector<int> got;
    auto rx = [](Connection& c, Executor& e, Nanos d, std::vector<int>& got,
                 Status* last) -> Task<void> {
      Deadline deadline = e.deadline_after(d);
      while (true) {
        auto m = co_await c.receive(deadline);
        if (!m.is_ok()) {
          if (last) *last = m.status();
          co_return;
        }
        got.push_back(m->empty() ? -1 : (*m)[0]);
      }
    };
    e.spawn("rx", rx(c, e, d, got, last));
    run_for(d + 1ms);
    return got;
  }
};

Bytes one(int v) {
  return Bytes{static_cast<uint8_t>(v)};
}

TEST(SimNet, DeliversInOrderWithLatency) {
  NetHarness h;
  h.connect();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(h.client->send(one(i)).is_ok());
  auto got = h.drain(*h.server, h.b, 200ms);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(h.net.stats().delivered, 100u);
}

TEST(SimNet, DropLosesMessages) {
  NetHarness h;
  h.connect();
  LinkFaults f;
  f.drop = 1.0;
  h.net.set_link_faults(1, 2, f);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.client->send(one(i)).is_ok());
  Status last;
  auto got = h.drain(*h.server, h.b, 100ms, &last);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(last.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(h.net.stats().dropped, 10u);
}

TEST(SimNet, DuplicateDeliversTwice) {
  NetHarness h;
  h.connect();
  LinkFaults f;
  f.duplicate = 1.0;
  h.net.set_link_faults(1, 2, f);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.client->send(one(i)).is_ok());
  auto got = h.drain(*h.server, h.b, 200ms);
  EXPECT_EQ(got.size(), 20u);
}

TEST(SimNet, ReorderOnlyWhenAsked) {
  NetHarness h;
  h.connect();
  LinkFaults f;
  f.latency_tail_mean = 5ms;
  f.reorder = true;
  h.net.set_link_faults(1, 2, f);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(h.client->send(one(i)).is_ok());
  auto got = h.drain(*h.server, h.b, 200ms);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));

  f.reorder = false;
  h.net.set_link_faults(1, 2, f);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(h.client->send(one(i)).is_ok());
  got = h.drain(*h.server, h.b, 200ms);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
}

TEST(SimNet, SymmetricPartitionBreaksConnectionsAndRefusesNewOnes) {
  NetHarness h;
  h.connect();
  ASSERT_TRUE(h.client->send(one(1)).is_ok());
  h.run_for(10ms);  // delivered before the partition
  h.net.partition(1, 2);
  Status last;
  auto got = h.drain(*h.server, h.b, 10ms, &last);
  EXPECT_EQ(got, std::vector<int>{1});  // what arrived is still read, then the break
  EXPECT_EQ(last.code(), Code::kUnavailable);
  EXPECT_EQ(h.client->send(one(2)).code(), Code::kUnavailable);

  Status connect_status;
  auto con = [](NetHarness* h, Status& out) -> Task<void> {
    out = (co_await h->net_a->connect("b:1", h->a.deadline_after(5s))).status();
  };
  h.a.spawn("connect", con(&h, connect_status));
  h.run_for(2s);
  EXPECT_FALSE(connect_status.is_ok());
  h.net.heal_all();
  h.client.reset();
  h.server.reset();
  h.listener.reset();
  h.connect();
}

TEST(SimNet, OneWayPartitionDropsOneDirectionOnly) {
  NetHarness h;
  h.connect();
  h.net.partition_one_way(1, 2);
  ASSERT_TRUE(h.client->send(one(1)).is_ok());
  ASSERT_TRUE(h.server->send(one(2)).is_ok());
  EXPECT_TRUE(h.drain(*h.server, h.b, 50ms).empty());
  EXPECT_EQ(h.drain(*h.client, h.a, 50ms), std::vector<int>{2});
}

TEST(SimNet, NodeDownBreaksItsConnections) {
  NetHarness h;
  h.connect();
  h.net.node_down(2);
  Status last;
  h.drain(*h.client, h.a, 10ms, &last);
  EXPECT_EQ(last.code(), Code::kUnavailable);
}

TEST(SimNet, OversizedMessageIsInvalidArgument) {
  NetHarness h;
  h.connect();
  Bytes big(Connection::kMaxMessageBytes + 1);
  EXPECT_EQ(h.client->send(big).code(), Code::kInvalidArgument);
}

TEST(SimNet, ConnectWithoutListenerIsRefused) {
  NetHarness h;
  Status st;
  auto con = [](NetHarness* h, Status& out) -> Task<void> {
    out = (co_await h->net_a->connect("b:9", h->a.deadline_after(1s))).status();
  };
  h.a.spawn("connect", con(&h, st));
  h.run_for(100ms);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(h.net_a->listen("nohost").code(), Code::kInvalidArgument);
  EXPECT_EQ(h.net_a->listen("b:1").code(), Code::kUnavailable);  // not a's address
}

}  // namespace
}  // namespace quire
