// TcpNet's byte streams over loopback: round trips in arbitrary chunks, end of stream,
// flow control through TCP, deadlines.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "real_test_support.h"
#include "runtime/executor.h"
#include "runtime/real/tcp_net.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::kTestNode;
using real_test::run_task;

Bytes pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed * 7 + (i >> 10));
  return b;
}

class RealStreamTest : public ::testing::Test {
 public:
  void TearDown() override { loop.scheduler().destroy_node(kTestNode); }

  // Connects to a fresh listener and accepts: client and server ends.
  Task<void> open_pair() {
    Result<std::unique_ptr<StreamListener>> l = net.listen_stream("127.0.0.1:0");
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    if (!l.is_ok()) co_return;
    listener = std::move(*l);
    Address address = listener->address();
    Result<std::unique_ptr<StreamConnection>> c =
        co_await net.connect_stream(address, exec.deadline_after(5s));
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    if (!c.is_ok()) co_return;
    client = std::move(*c);
    Result<std::unique_ptr<StreamConnection>> s =
        co_await listener->accept(exec.deadline_after(5s));
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (!s.is_ok()) co_return;
    server = std::move(*s);
  }

  // Reads until `want` bytes or the end of the stream (its status to *last).
  Task<void> read_until(StreamConnection& c, size_t want, Bytes* got, Status* last,
                        Nanos limit = 10s) {
    Deadline deadline = exec.deadline_after(limit);
    std::vector<uint8_t> buf(8192);
    while (got->size() < want) {
      Result<size_t> n = co_await c.read_some(std::span<uint8_t>(buf), deadline);
      if (!n.is_ok()) {
        *last = n.status();
        co_return;
      }
      got->insert(got->end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n));
    }
  }

  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  real_test::FixedLogContext log_context;
  Logger log{&sink, &log_context, Severity::kDebug};
  TcpNet net{loop, &log};
  Executor exec{loop.scheduler(), kTestNode};
  std::unique_ptr<StreamListener> listener;
  std::unique_ptr<StreamConnection> client;
  std::unique_ptr<StreamConnection> server;
};

TEST_F(RealStreamTest, RoundTripAndEndOfStream) {
  auto body = [](RealStreamTest* t) -> Task<void> {
    co_await t->open_pair();
    if (!t->server) co_return;
    Bytes sent = pattern(3'000'000, 1);
    for (size_t at = 0; at < sent.size(); at += 100'003) {
      size_t n = std::min<size_t>(100'003, sent.size() - at);
      EXPECT_TRUE(t->client->write(ByteView(sent.data() + at, n)).is_ok());
    }
    t->client->close();  // what was queued still goes out
    Bytes got;
    Status last;
    co_await t->read_until(*t->server, sent.size() + 1, &got, &last);
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent);
    EXPECT_EQ(last.code(), Code::kUnavailable) << last.to_string();
  };
  ASSERT_TRUE(run_task(loop, body(this)));
}

TEST_F(RealStreamTest, UnreadBytesStayQueuedUntilThePeerReads) {
  auto body = [](RealStreamTest* t) -> Task<void> {
    co_await t->open_pair();
    if (!t->server) co_return;
    Bytes sent = pattern(64u << 20, 2);
    EXPECT_TRUE(t->server->write(sent).is_ok());
    // The client reads nothing: the kernel's buffers fill and the rest stays queued.
    Status still = co_await t->server->drained(0, t->exec.deadline_after(300ms));
    EXPECT_EQ(still.code(), Code::kDeadlineExceeded);
    EXPECT_GT(t->server->queued_bytes(), size_t{32} << 20);
    Bytes got;
    Status last;
    co_await t->read_until(*t->client, sent.size(), &got, &last, 30s);
    EXPECT_TRUE(got == sent);
    Status drained = co_await t->server->drained(0, t->exec.deadline_after(5s));
    EXPECT_TRUE(drained.is_ok()) << drained.to_string();
  };
  ASSERT_TRUE(run_task(loop, body(this)));
}

TEST_F(RealStreamTest, ReadDeadlineThenDataStillArrives) {
  auto body = [](RealStreamTest* t) -> Task<void> {
    co_await t->open_pair();
    if (!t->server) co_return;
    uint8_t buf[16];
    Result<size_t> none =
        co_await t->server->read_some(std::span<uint8_t>(buf), t->exec.deadline_after(50ms));
    EXPECT_EQ(none.code(), Code::kDeadlineExceeded);
    Bytes sent = pattern(10, 3);
    EXPECT_TRUE(t->client->write(sent).is_ok());
    Bytes got;
    Status last;
    co_await t->read_until(*t->server, sent.size(), &got, &last);
    EXPECT_TRUE(got == sent);
    // The peer's destruction ends the stream.
    t->client.reset();
    got.clear();
    co_await t->read_until(*t->server, 1, &got, &last);
    EXPECT_EQ(last.code(), Code::kUnavailable);
    EXPECT_FALSE(t->server->is_open());
  };
  ASSERT_TRUE(run_task(loop, body(this)));
}

TEST_F(RealStreamTest, ConnectRefusedAndMalformedAddress) {
  auto body = [](RealStreamTest* t) -> Task<void> {
    Result<std::unique_ptr<StreamListener>> bad = t->net.listen_stream("nohost:1");
    EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
    // A port nobody listens on: bind one, learn its number, close it.
    Result<std::unique_ptr<StreamListener>> l = t->net.listen_stream("127.0.0.1:0");
    EXPECT_TRUE(l.is_ok());
    if (!l.is_ok()) co_return;
    Address address = (*l)->address();
    l->reset();
    Result<std::unique_ptr<StreamConnection>> c =
        co_await t->net.connect_stream(address, t->exec.deadline_after(5s));
    EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().to_string();
  };
  ASSERT_TRUE(run_task(loop, body(this)));
}

}  // namespace
}  // namespace quire
