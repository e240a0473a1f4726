// The simulated byte streams: in order and exactly once, split at random, flow-controlled,
// closed with FIN, broken by partitions and crashes.
#include <set>

#include <gtest/gtest.h>

#include "runtime/sim/sim_net.h"

namespace quire {
namespace {

Bytes pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed * 7 + (i >> 10));
  return b;
}

struct StreamHarness {
  Scheduler s;
  SimNetwork net{s, 7};
  Executor a{s, 1};
  Executor b{s, 2};
  std::unique_ptr<Net> net_a = net.make_net(1);
  std::unique_ptr<Net> net_b = net.make_net(2);
  std::unique_ptr<StreamListener> listener;
  std::unique_ptr<StreamConnection> client;
  std::unique_ptr<StreamConnection> server;

  StreamHarness() {
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

  void connect() {
    listener = std::move(net_b->listen_stream("b:6379")).value();
    auto acc = [](StreamHarness* h) -> Task<void> {
      auto c = co_await h->listener->accept(h->b.deadline_after(1s));
      if (c.is_ok()) h->server = std::move(c).value();
    };
    auto con = [](StreamHarness* h) -> Task<void> {
      auto c = co_await h->net_a->connect_stream("b:6379", h->a.deadline_after(1s));
      if (c.is_ok()) h->client = std::move(c).value();
    };
    b.spawn("accept", acc(this));
    a.spawn("connect", con(this));
    run_for(100ms);
    ASSERT_TRUE(client && server);
  }

  // Reads from `c` until `want` bytes arrived, the stream ends or `d` passes; the sizes of
  // the reads go to *reads, the last status to *last.
  Bytes read_all(StreamConnection& c, Executor& e, size_t want, Nanos d,
                 std::vector<size_t>* reads = nullptr, Status* last = nullptr) {
    Bytes got;
    auto rx = [](StreamConnection& c, Executor& e, size_t want, Nanos d, Bytes& got,
                 std::vector<size_t>* reads, Status* last) -> Task<void> {
      Deadline deadline = e.deadline_after(d);
      std::vector<uint8_t> buf(4096);
      while (got.size() < want) {
        Result<size_t> n = co_await c.read_some(std::span<uint8_t>(buf), deadline);
        if (!n.is_ok()) {
          if (last) *last = n.status();
          co_return;
        }
        if (reads) reads->push_back(*n);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n));
      }
    };
    e.spawn("rx", rx(c, e, want, d, got, reads, last));
    run_for(d + 1ms);
    return got;
  }
};

TEST(SimStream, BytesArriveInOrderInArbitraryChunks) {
  StreamHarness h;
  h.connect();
  Bytes sent = pattern(200'000, 1);
  // Writes of uneven sizes.
  size_t at = 0;
  for (size_t size = 1; at < sent.size(); size = size * 3 % 7919 + 1) {
    size_t n = std::min(size, sent.size() - at);
    ASSERT_TRUE(h.client->write(ByteView(sent.data() + at, n)).is_ok());
    at += n;
  }
  std::vector<size_t> reads;
  Bytes got = h.read_all(*h.server, h.b, sent.size(), 2s, &reads);
  ASSERT_EQ(got.size(), sent.size());
  EXPECT_EQ(got, sent);
  // Reads came in many different sizes, none of them a whole buffer's.
  std::set<size_t> sizes(reads.begin(), reads.end());
  EXPECT_GT(sizes.size(), 10u);
  EXPECT_GT(h.net.stats().stream_segments, 20u);
}

TEST(SimStream, FlowControlHoldsBytesAtTheSenderUntilTheReceiverReads) {
  StreamHarness h;
  h.connect();
  Bytes sent = pattern(1 << 20, 2);
  ASSERT_TRUE(h.client->write(sent).is_ok());
  h.run_for(200ms);
  // The receiver read nothing: one window is at or toward it, the rest waits here.
  EXPECT_EQ(h.client->queued_bytes(), sent.size() - SimNetwork::kStreamWindowBytes);
  Status drained = cancelled("not run");
  auto wait = [](StreamConnection& c, Executor& e, Status* out) -> Task<void> {
    *out = co_await c.drained(0, e.deadline_after(5s));
  };
  h.a.spawn("drain", wait(*h.client, h.a, &drained));
  Bytes got = h.read_all(*h.server, h.b, sent.size(), 2s);
  EXPECT_EQ(got, sent);
  EXPECT_TRUE(drained.is_ok()) << drained.to_string();
  EXPECT_EQ(h.client->queued_bytes(), 0u);
}

TEST(SimStream, CloseDeliversQueuedBytesThenEndOfStream) {
  StreamHarness h;
  h.connect();
  Bytes sent = pattern(600'000, 3);  // more than a window: close must keep sending
  ASSERT_TRUE(h.client->write(sent).is_ok());
  h.client->close();
  EXPECT_FALSE(h.client->is_open());
  EXPECT_EQ(h.client->write(sent).code(), Code::kUnavailable);
  Status last;
  Bytes got = h.read_all(*h.server, h.b, sent.size() + 1, 2s, nullptr, &last);
  EXPECT_EQ(got, sent);
  EXPECT_EQ(last.code(), Code::kUnavailable) << last.to_string();
}

TEST(SimStream, DestroyingTheConnectionClosesIt) {
  StreamHarness h;
  h.connect();
  Bytes sent = pattern(1000, 4);
  ASSERT_TRUE(h.server->write(sent).is_ok());
  h.server.reset();
  Status last;
  Bytes got = h.read_all(*h.client, h.a, sent.size() + 1, 1s, nullptr, &last);
  EXPECT_EQ(got, sent);
  EXPECT_EQ(last.code(), Code::kUnavailable);
}

TEST(SimStream, PartitionAndCrashBreakTheStream) {
  {
    StreamHarness h;
    h.connect();
    h.net.partition(1, 2);
    Status last;
    h.read_all(*h.server, h.b, 1, 100ms, nullptr, &last);
    EXPECT_EQ(last.code(), Code::kUnavailable);
    EXPECT_EQ(h.client->write(pattern(10, 0)).code(), Code::kUnavailable);
  }
  {
    StreamHarness h;
    h.connect();
    h.net.partition_one_way(1, 2);
    EXPECT_TRUE(h.client->write(pattern(10, 0)).is_ok());  // queued, then reset
    EXPECT_FALSE(h.client->is_open());
    EXPECT_FALSE(h.server->is_open());
  }
  {
    StreamHarness h;
    h.connect();
    h.net.node_down(1);  // the client's endpoint goes with its node
    Status last;
    h.read_all(*h.server, h.b, 1, 100ms, nullptr, &last);
    EXPECT_EQ(last.code(), Code::kUnavailable);
  }
}

TEST(SimStream, ReadDeadlineAndKindsDoNotMix) {
  StreamHarness h;
  h.connect();
  Status last;
  h.read_all(*h.server, h.b, 1, 50ms, nullptr, &last);
  EXPECT_EQ(last.code(), Code::kDeadlineExceeded);

  // A message connect to a stream listener is refused, and the other way round.
  auto msg_listener = std::move(h.net_b->listen("b:7000")).value();
  Status stream_to_msg, msg_to_stream;
  auto con = [](StreamHarness* h, Status* s1, Status* s2) -> Task<void> {
    auto c1 = co_await h->net_a->connect_stream("b:7000", h->a.deadline_after(1s));
    *s1 = c1.status();
    auto c2 = co_await h->net_a->connect("b:6379", h->a.deadline_after(1s));
    *s2 = c2.status();
  };
  h.a.spawn("connect", con(&h, &stream_to_msg, &msg_to_stream));
  h.run_for(100ms);
  EXPECT_EQ(stream_to_msg.code(), Code::kUnavailable);
  EXPECT_EQ(msg_to_stream.code(), Code::kUnavailable);
  EXPECT_EQ(h.net_b->listen_stream("b:7000").status().code(), Code::kUnavailable);  // in use
}

TEST(SimStream, SameSeedSameSplits) {
  auto run = []() {
    StreamHarness h;
    h.connect();
    Bytes sent = pattern(100'000, 5);
    EXPECT_TRUE(h.client->write(sent).is_ok());
    std::vector<size_t> reads;
    h.read_all(*h.server, h.b, sent.size(), 1s, &reads);
    return std::make_pair(reads, h.s.trace_hash());
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace quire
