#include "runtime/real/tcp_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "real_test_support.h"
#include "runtime/executor.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::kTestNode;
using real_test::run_task;

// A recognizable message: its bytes depend on its size and its index in a stream.
Bytes pattern(size_t size, uint32_t index) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 31 + index * 7 + (i >> 12));
  return b;
}

bool log_has_id(const RingLogSink& sink, uint32_t id) {
  std::string needle = "\"id\":" + std::to_string(id) + ",";
  for (const std::string& line : sink.lines()) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

// Members are public: the tests' coroutines reach them through a RealNetTest pointer.
class RealNetTest : public ::testing::Test {
 public:
  void TearDown() override { loop.scheduler().destroy_node(kTestNode); }

  std::unique_ptr<Listener> listen_local() {
    Result<std::unique_ptr<Listener>> listener = net.listen("127.0.0.1:0");
    EXPECT_TRUE(listener.is_ok()) << listener.status().to_string();
    return listener.is_ok() ? std::move(*listener) : nullptr;
  }

  // Sends every message back until the connection ends; its last status goes to *end.
  Task<void> echo(std::unique_ptr<Connection> conn, Status* end) {
    while (true) {
      Result<Bytes> m = co_await conn->receive(Deadline::never());
      if (!m.is_ok()) {
        *end = m.status();
        co_return;
      }
      Status st = conn->send(*m);
      if (!st.is_ok()) {
        *end = st;
        co_return;
      }
    }
  }

  // Accepts `count` connections and echoes on each; the end of connection i goes to ends[i].
  Task<void> echo_server(Listener* listener, size_t count, std::vector<Status>* ends) {
    ends->resize(count, Status(Code::kIo, "still running"));
    for (size_t i = 0; i < count; ++i) {
      Result<std::unique_ptr<Connection>> conn =
          co_await listener->accept(exec.deadline_after(10s));
      EXPECT_TRUE(conn.is_ok()) << conn.status().to_string();
      if (!conn.is_ok()) co_return;
      exec.spawn("echo", echo(std::move(*conn), &(*ends)[i]));
    }
  }

  Task<Result<std::unique_ptr<Connection>>> connect(const Address& address) {
    co_return co_await net.connect(address, exec.deadline_after(10s));
  }

  // Sends messages of `sizes`, all at once, and checks that the echoes come back in order.
  Task<void> round_trip(Address address, std::vector<size_t> sizes, size_t* matched) {
    Result<std::unique_ptr<Connection>> conn = co_await connect(address);
    EXPECT_TRUE(conn.is_ok()) << conn.status().to_string();
    if (!conn.is_ok()) co_return;
    for (uint32_t i = 0; i < sizes.size(); ++i) {
      Status st = (*conn)->send(pattern(sizes[i], i));
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    for (uint32_t i = 0; i < sizes.size(); ++i) {
      Result<Bytes> m = co_await (*conn)->receive(exec.deadline_after(20s));
      EXPECT_TRUE(m.is_ok()) << m.status().to_string();
      if (!m.is_ok()) co_return;
      EXPECT_EQ(m->size(), sizes[i]) << "message " << i;
      if (*m == pattern(sizes[i], i)) ++*matched;
    }
  }

  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  real_test::FixedLogContext log_context;
  Logger log{&sink, &log_context, Severity::kDebug};
  TcpNet net{loop, &log};
  Executor exec{loop.scheduler(), kTestNode};
};

TEST(RealNetAddressTest, ParsesTheAcceptedForms) {
  Result<TcpAddress> v4 = parse_tcp_address("10.1.2.3:7000");
  ASSERT_TRUE(v4.is_ok());
  EXPECT_EQ(v4->host, "10.1.2.3");
  EXPECT_EQ(v4->port, 7000);

  Result<TcpAddress> local = parse_tcp_address("localhost:0");
  ASSERT_TRUE(local.is_ok());
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 0);

  Result<TcpAddress> v6 = parse_tcp_address("[::1]:65535");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 65535);
}

TEST(RealNetAddressTest, RejectsMalformedAddresses) {
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":7000", "127.0.0.1:http", "127.0.0.1:65536",
        "127.0.0.1:123456", "127.0.0.1:-1", "127.0.0.1:+80", "::1:7000", "[::1:7000", "[]:7000",
        "[nonsense]:7000", "256.0.0.1:80", "example.com:80", "127.0.0.1 :80"}) {
    Result<TcpAddress> r = parse_tcp_address(bad);
    EXPECT_EQ(r.code(), Code::kInvalidArgument) << "'" << bad << "'";
    if (!r.is_ok()) {
      EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
    }
  }
}

TEST_F(RealNetTest, ListenAndConnectRejectMalformedAddresses) {
  EXPECT_EQ(net.listen("not-an-address").code(), Code::kInvalidArgument);
  Code code = Code::kOk;
  ASSERT_TRUE(run_task(loop, [](RealNetTest* t, Code* code) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect("127.0.0.1:port");
    *code = conn.code();
  }(this, &code)));
  EXPECT_EQ(code, Code::kInvalidArgument);
}

TEST_F(RealNetTest, ListenOnPortZeroReportsTheChosenPort) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Result<TcpAddress> bound = parse_tcp_address(listener->address());
  ASSERT_TRUE(bound.is_ok()) << listener->address();
  EXPECT_EQ(bound->host, "127.0.0.1");
  EXPECT_NE(bound->port, 0);

  // The port is taken now.
  EXPECT_EQ(net.listen(listener->address()).code(), Code::kUnavailable);
}

TEST_F(RealNetTest, EchoesMessagesOfEverySizeInOrder) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 1, &ends));
  std::vector<size_t> sizes = {0, 1, 100 << 10, 4 << 20, 0, 65532, 65533, 200000, 1};
  size_t matched = 0;
  ASSERT_TRUE(run_task(loop, round_trip(listener->address(), sizes, &matched)));
  EXPECT_EQ(matched, sizes.size());
}

TEST_F(RealNetTest, EchoesOverIpv6Loopback) {
  Result<std::unique_ptr<Listener>> listener = net.listen("[::1]:0");
  if (!listener.is_ok()) GTEST_SKIP() << "no IPv6 loopback: " << listener.status().to_string();
  EXPECT_EQ((*listener)->address().rfind("[::1]:", 0), 0u) << (*listener)->address();
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener->get(), 1, &ends));
  size_t matched = 0;
  ASSERT_TRUE(run_task(loop, round_trip((*listener)->address(), {5, 70000}, &matched)));
  EXPECT_EQ(matched, 2u);
}

TEST_F(RealNetTest, PipelinedMessagesArriveInOrder) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 1, &ends));
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 5000; ++i) sizes.push_back((i * 7919) % 3000);
  size_t matched = 0;
  ASSERT_TRUE(run_task(loop, round_trip(listener->address(), sizes, &matched)));
  EXPECT_EQ(matched, sizes.size());
}

// The receiver reads nothing until the sender has sent far more messages than the receive
// queue holds: reading pauses, and everything still arrives, in order, once it drains.
TEST_F(RealNetTest, FullReceiveQueuePausesReadingWithoutLosingMessages) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  constexpr uint32_t kCount = 3 * TcpNet::kReceiveQueueMessagesMax;
  bool sent = false;
  uint32_t in_order = 0;
  Code last = Code::kOk;

  auto receiver = [](RealNetTest* t, Listener* l, const bool* sent, uint32_t* in_order,
                     Code* last) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await l->accept(t->exec.deadline_after(10s));
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    // Wait (boundedly) for the sender, then some more for its bytes to land.
    for (int i = 0; i < 1000 && !*sent; ++i) (void)co_await t->exec.sleep(10ms);
    (void)co_await t->exec.sleep(200ms);
    for (uint32_t i = 0; i < kCount; ++i) {
      Result<Bytes> m = co_await (*conn)->receive(t->exec.deadline_after(10s));
      if (!m.is_ok()) {
        *last = m.code();
        co_return;
      }
      if (*m == pattern(100, i)) ++*in_order;
    }
  };
  auto sender = [](RealNetTest* t, Address address, bool* sent) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect(address);
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    for (uint32_t i = 0; i < kCount; ++i) EXPECT_TRUE((*conn)->send(pattern(100, i)).is_ok());
    *sent = true;
    // Keep the connection open until the receiver has everything.
    (void)co_await t->exec.sleep(5s);
  };
  TaskId send_task = exec.spawn("sender", sender(this, listener->address(), &sent));
  ASSERT_TRUE(run_task(loop, receiver(this, listener.get(), &sent, &in_order, &last)));
  exec.cancel(send_task);
  EXPECT_EQ(last, Code::kOk);
  EXPECT_EQ(in_order, kCount);
}

TEST_F(RealNetTest, OversizedSendIsInvalidArgument) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 1, &ends));
  Code too_big = Code::kOk;
  size_t matched = 0;
  auto client = [](RealNetTest* t, Address address, Code* too_big, size_t* matched) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect(address);
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    *too_big = (*conn)->send(Bytes(Connection::kMaxMessageBytes + 1)).code();
    // The connection is still usable.
    EXPECT_TRUE((*conn)->send(pattern(10, 0)).is_ok());
    Result<Bytes> m = co_await (*conn)->receive(t->exec.deadline_after(10s));
    if (m.is_ok() && *m == pattern(10, 0)) ++*matched;
  };
  ASSERT_TRUE(run_task(loop, client(this, listener->address(), &too_big, &matched)));
  EXPECT_EQ(too_big, Code::kInvalidArgument);
  EXPECT_EQ(matched, 1u);
}

TEST_F(RealNetTest, SendQueueBeyondItsBoundIsBusy) {
  static constexpr size_t kFrameBytes = size_t{1} << 20;
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  // The peer accepts but never reads, so sends pile up in the sender's queue.
  auto acceptor = [](RealNetTest* t, Listener* l) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await l->accept(t->exec.deadline_after(10s));
    EXPECT_TRUE(conn.is_ok());
    (void)co_await t->exec.sleep(30s);
  };
  exec.spawn("acceptor", acceptor(this, listener.get()));
  int accepted_sends = 0;
  Code busy_code = Code::kOk;
  auto client = [](RealNetTest* t, Address address, int* accepted, Code* busy_code) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect(address);
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    Bytes frame(kFrameBytes);
    const int sends_max = static_cast<int>(2 * t->net.options().send_queue_bytes_max / kFrameBytes);
    for (int i = 0; i < sends_max; ++i) {
      Status st = (*conn)->send(frame);
      if (!st.is_ok()) {
        *busy_code = st.code();
        co_return;
      }
      ++*accepted;
    }
  };
  ASSERT_TRUE(run_task(loop, client(this, listener->address(), &accepted_sends, &busy_code)));
  EXPECT_EQ(busy_code, Code::kBusy);
  // The queue holds as many whole frames (with their 4-byte headers) as fit in its bound.
  EXPECT_EQ(accepted_sends,
            static_cast<int>(net.options().send_queue_bytes_max / (kFrameBytes + 4)));
}

TEST_F(RealNetTest, ReceiveDeadlineIsDeadlineExceeded) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 1, &ends));
  Code code = Code::kOk;
  Nanos waited{};
  auto client = [](RealNetTest* t, Address address, Code* code, Nanos* waited) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect(address);
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    MonoTime start = t->exec.now();
    Result<Bytes> m = co_await (*conn)->receive(t->exec.deadline_after(50ms));
    *waited = t->loop.now() - start;
    *code = m.code();
    EXPECT_TRUE((*conn)->is_open());
  };
  ASSERT_TRUE(run_task(loop, client(this, listener->address(), &code, &waited)));
  EXPECT_EQ(code, Code::kDeadlineExceeded);
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(RealNetTest, PeerCloseIsUnavailableAfterQueuedMessages) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  // The server sends three messages (one large, so close() has to flush it) and closes.
  auto server = [](RealNetTest* t, Listener* l) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await l->accept(t->exec.deadline_after(10s));
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    EXPECT_TRUE((*conn)->send(pattern(1, 0)).is_ok());
    EXPECT_TRUE((*conn)->send(pattern(4 << 20, 1)).is_ok());
    EXPECT_TRUE((*conn)->send(pattern(0, 2)).is_ok());
    (*conn)->close();
    (*conn)->close();  // idempotent
    EXPECT_FALSE((*conn)->is_open());
    EXPECT_EQ((*conn)->send(pattern(1, 3)).code(), Code::kUnavailable);
  };
  exec.spawn("server", server(this, listener.get()));
  std::vector<Code> codes;
  Code send_after = Code::kOk;
  auto client = [](RealNetTest* t, Address address, std::vector<Code>* codes,
                   Code* send_after) -> Task<void> {
    Result<std::unique_ptr<Connection>> conn = co_await t->connect(address);
    EXPECT_TRUE(conn.is_ok());
    if (!conn.is_ok()) co_return;
    // Let the close arrive before reading anything.
    (void)co_await t->exec.sleep(200ms);
    std::vector<size_t> sizes = {1, 4 << 20, 0};
    for (uint32_t i = 0; i < 4; ++i) {
      Result<Bytes> m = co_await (*conn)->receive(t->exec.deadline_after(10s));
      codes->push_back(m.code());
      if (m.is_ok()) {
        EXPECT_EQ(*m, pattern(sizes[i], i)) << i;
      }
    }
    EXPECT_FALSE((*conn)->is_open());
    *send_after = (*conn)->send(pattern(1, 0)).code();
    Result<Bytes> again = co_await (*conn)->receive(t->exec.deadline_after(10s));
    codes->push_back(again.code());
  };
  ASSERT_TRUE(run_task(loop, client(this, listener->address(), &codes, &send_after)));
  EXPECT_EQ(codes, (std::vector<Code>{Code::kOk, Code::kOk, Code::kOk, Code::kUnavailable,
                                      Code::kUnavailable}));
  EXPECT_EQ(send_after, Code::kUnavailable);
}

TEST_F(RealNetTest, LocalCloseFailsWaitingReceivesAndKeepsReceivedMessages) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 2, &ends));
  std::vector<Code> codes;
  auto client = [](RealNetTest* t, Address address, std::vector<Code>* codes) -> Task<void> {
    // A receive waiting when the connection is closed ends with Unavailable.
    Result<std::unique_ptr<Connection>> first = co_await t->connect(address);
    EXPECT_TRUE(first.is_ok());
    if (!first.is_ok()) co_return;
    auto closer = [](Executor& exec, Connection* c) -> Task<void> {
      (void)co_await exec.sleep(20ms);
      c->close();
    };
    t->exec.spawn("closer", closer(t->exec, first->get()));
    codes->push_back((co_await (*first)->receive(t->exec.deadline_after(10s))).code());
    codes->push_back((co_await (*first)->receive(t->exec.deadline_after(10s))).code());
    codes->push_back((*first)->send(pattern(1, 0)).code());

    // A message received before close() is still returned after it.
    Result<std::unique_ptr<Connection>> second = co_await t->connect(address);
    EXPECT_TRUE(second.is_ok());
    if (!second.is_ok()) co_return;
    EXPECT_TRUE((*second)->send(pattern(7, 0)).is_ok());
    (void)co_await t->exec.sleep(100ms);  // the echo arrives, unread
    (*second)->close();
    Result<Bytes> m = co_await (*second)->receive(t->exec.deadline_after(10s));
    codes->push_back(m.code());
    if (m.is_ok()) {
      EXPECT_EQ(*m, pattern(7, 0));
    }
    codes->push_back((co_await (*second)->receive(t->exec.deadline_after(10s))).code());
  };
  ASSERT_TRUE(run_task(loop, client(this, listener->address(), &codes)));
  EXPECT_EQ(codes, (std::vector<Code>{Code::kUnavailable, Code::kUnavailable, Code::kUnavailable,
                                      Code::kOk, Code::kUnavailable}));
  // The echo server saw each close as the end of its connection.
  ASSERT_TRUE(loop.run_until(
      [&] {
        return ends.size() == 2 && ends[0].code() != Code::kIo && ends[1].code() != Code::kIo;
      },
      10s));
  EXPECT_EQ(ends[0].code(), Code::kUnavailable);
  EXPECT_EQ(ends[1].code(), Code::kUnavailable);
}

TEST_F(RealNetTest, ConnectToAClosedPortIsUnavailable) {
  Address address;
  {
    std::unique_ptr<Listener> listener = listen_local();
    ASSERT_NE(listener, nullptr);
    address = listener->address();
  }
  Status result;
  ASSERT_TRUE(run_task(loop, [](RealNetTest* t, Address address, Status* result) -> Task<void> {
    *result = (co_await t->connect(address)).status();
  }(this, address, &result)));
  EXPECT_EQ(result.code(), Code::kUnavailable) << result.to_string();
  EXPECT_NE(result.message().find(address), std::string::npos) << result.message();
}

TEST_F(RealNetTest, ConnectPastItsDeadlineIsDeadlineExceeded) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Code code = Code::kOk;
  // A deadline that has already passed fires before the connect can complete.
  ASSERT_TRUE(run_task(loop, [](RealNetTest* t, Address address, Code* code) -> Task<void> {
    *code = (co_await t->net.connect(address, t->exec.now())).code();
  }(this, listener->address(), &code)));
  EXPECT_EQ(code, Code::kDeadlineExceeded);
  // The abandoned attempt leaves nothing behind that breaks the next one.
  size_t matched = 0;
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 2, &ends));
  ASSERT_TRUE(run_task(loop, round_trip(listener->address(), {3}, &matched)));
  EXPECT_EQ(matched, 1u);
}

TEST_F(RealNetTest, CancelledConnectIsCancelled) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Code code = Code::kOk;
  TaskId id = exec.spawn("connect", [](RealNetTest* t, Address address, Code* code) -> Task<void> {
    *code = (co_await t->connect(address)).code();
  }(this, listener->address(), &code));
  exec.cancel(id);
  ASSERT_TRUE(loop.run_until([&] { return exec.is_done(id); }, 10s));
  EXPECT_EQ(code, Code::kCancelled);
}

TEST_F(RealNetTest, CancellingABlockedReceiveReturnsCancelled) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 1, &ends));
  std::unique_ptr<Connection> conn;
  Code code = Code::kOk;
  bool receiving = false;
  auto receiver = [](RealNetTest* t, Address address, std::unique_ptr<Connection>* conn,
                     bool* receiving, Code* code) -> Task<void> {
    Result<std::unique_ptr<Connection>> c = co_await t->connect(address);
    EXPECT_TRUE(c.is_ok());
    if (!c.is_ok()) co_return;
    *conn = std::move(*c);
    *receiving = true;
    *code = (co_await (*conn)->receive(Deadline::never())).code();
  };
  TaskId id = exec.spawn("receiver", receiver(this, listener->address(), &conn, &receiving, &code));
  ASSERT_TRUE(loop.run_until([&] { return receiving; }, 10s));
  ASSERT_FALSE(loop.run_until([&] { return exec.is_done(id); }, 20ms));  // still blocked
  exec.cancel(id);
  ASSERT_TRUE(loop.run_until([&] { return exec.is_done(id); }, 10s));
  EXPECT_EQ(code, Code::kCancelled);
  // Cancelling the wait did not break the connection.
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->is_open());
}

int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the peer ended the connection (EOF or reset) within `timeout_ms`.
bool raw_sees_end(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  uint8_t byte;
  ssize_t n = ::recv(fd, &byte, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

TEST_F(RealNetTest, OversizedIncomingFrameDropsOnlyThatConnection) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Result<TcpAddress> bound = parse_tcp_address(listener->address());
  ASSERT_TRUE(bound.is_ok());

  // A well-behaved client first, then a raw socket that announces a frame above the max.
  std::vector<Status> ends;
  exec.spawn("server", echo_server(listener.get(), 2, &ends));
  std::unique_ptr<Connection> good;
  ASSERT_TRUE(run_task(
      loop, [](RealNetTest* t, Address address, std::unique_ptr<Connection>* good) -> Task<void> {
        Result<std::unique_ptr<Connection>> c = co_await t->connect(address);
        EXPECT_TRUE(c.is_ok());
        if (!c.is_ok()) co_return;
        *good = std::move(*c);
        // An echo proves the server has accepted it before the raw socket connects.
        EXPECT_TRUE((*good)->send(pattern(5, 0)).is_ok());
        Result<Bytes> m = co_await (*good)->receive(t->exec.deadline_after(10s));
        EXPECT_TRUE(m.is_ok());
      }(this, listener->address(), &good)));
  ASSERT_NE(good, nullptr);

  int raw = raw_connect(bound->port);
  ASSERT_GE(raw, 0) << std::strerror(errno);
  uint8_t header[4];
  encode_fixed32(header, static_cast<uint32_t>(Connection::kMaxMessageBytes + 1));
  ASSERT_EQ(::send(raw, header, sizeof(header), MSG_NOSIGNAL), 4);

  ASSERT_TRUE(loop.run_until([&] { return ends.size() == 2 && ends[1].code() != Code::kIo; }, 10s));
  EXPECT_EQ(ends[1].code(), Code::kUnavailable);
  EXPECT_NE(ends[1].message().find("above the maximum"), std::string::npos) << ends[1].message();
  EXPECT_TRUE(log_has_id(sink, 10101));
  EXPECT_TRUE(raw_sees_end(raw, 5000));
  ::close(raw);

  // The first connection never noticed.
  size_t matched = 0;
  ASSERT_TRUE(run_task(loop, [](RealNetTest* t, Connection* good, size_t* matched) -> Task<void> {
    for (uint32_t i = 1; i <= 3; ++i) EXPECT_TRUE(good->send(pattern(1000 * i, i)).is_ok());
    for (uint32_t i = 1; i <= 3; ++i) {
      Result<Bytes> m = co_await good->receive(t->exec.deadline_after(10s));
      if (m.is_ok() && *m == pattern(1000 * i, i)) ++*matched;
    }
  }(this, good.get(), &matched)));
  EXPECT_EQ(matched, 3u);
  EXPECT_TRUE(good->is_open());
  EXPECT_EQ(ends[0].code(), Code::kIo);  // still running
}

TEST_F(RealNetTest, AcceptDeadlineAndCloseEndAcceptWaits) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Code timed_out = Code::kOk;
  Code closed = Code::kOk;
  Code after = Code::kOk;
  auto waiter = [](RealNetTest* t, Listener* l, Code* timed_out, Code* closed,
                   Code* after) -> Task<void> {
    *timed_out = (co_await l->accept(t->exec.deadline_after(20ms))).code();
    auto closer = [](Executor& exec, Listener* l) -> Task<void> {
      (void)co_await exec.sleep(20ms);
      l->close();
    };
    t->exec.spawn("closer", closer(t->exec, l));
    *closed = (co_await l->accept(t->exec.deadline_after(10s))).code();
    *after = (co_await l->accept(t->exec.deadline_after(10s))).code();
  };
  ASSERT_TRUE(run_task(loop, waiter(this, listener.get(), &timed_out, &closed, &after)));
  EXPECT_EQ(timed_out, Code::kDeadlineExceeded);
  EXPECT_EQ(closed, Code::kUnavailable);
  EXPECT_EQ(after, Code::kUnavailable);
  listener->close();  // idempotent
}

// Objects destroyed with reads, writes, accepts and connects pending must not leave
// handlers behind that touch freed memory (this test is for the ASan build).
TEST_F(RealNetTest, DestroyingObjectsWithOperationsPendingIsSafe) {
  std::unique_ptr<Listener> listener = listen_local();
  ASSERT_NE(listener, nullptr);
  Address address = listener->address();
  std::unique_ptr<Connection> server_side;
  std::unique_ptr<Connection> client_side;
  ASSERT_TRUE(run_task(loop,
                       [](RealNetTest* t, Listener* l, std::unique_ptr<Connection>* server,
                          std::unique_ptr<Connection>* client) -> Task<void> {
                         Result<std::unique_ptr<Connection>> c = co_await t->connect(l->address());
                         EXPECT_TRUE(c.is_ok());
                         Result<std::unique_ptr<Connection>> s =
                             co_await l->accept(t->exec.deadline_after(10s));
                         EXPECT_TRUE(s.is_ok());
                         if (!c.is_ok() || !s.is_ok()) co_return;
                         *client = std::move(*c);
                         *server = std::move(*s);
                       }(this, listener.get(), &server_side, &client_side)));
  ASSERT_NE(client_side, nullptr);
  ASSERT_NE(server_side, nullptr);

  // A write far larger than the socket buffers stays pending; reads are pending on both.
  EXPECT_TRUE(client_side->send(pattern(16 << 20, 0)).is_ok());
  EXPECT_TRUE(server_side->send(pattern(10, 0)).is_ok());
  loop.run_until([] { return false; }, 20ms);
  client_side.reset();
  server_side.reset();
  listener.reset();  // with an accept pending
  // A connect abandoned mid-flight, to a port nobody listens on any more.
  TaskId id = exec.spawn("connect", [](RealNetTest* t, Address address) -> Task<void> {
    (void)co_await t->connect(address);
  }(this, address));
  exec.cancel(id);
  loop.run_until([] { return false; }, 1500ms);  // lets the close linger expire
  EXPECT_TRUE(exec.is_done(id));
}

}  // namespace
}  // namespace quire
