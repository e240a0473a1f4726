// TcpNet's bounds against hostile peers (see tcp_net.h), over real loopback sockets with
// small budgets and short timeouts.
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
#include "runtime/real/tcp_net.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::kTestNode;
using real_test::run_task;

constexpr size_t kPartialBudgetBytes = size_t{4} << 20;

TcpNetOptions small_options() {
  TcpNetOptions o;
  o.receive_budget_bytes = TcpNet::kCompleteFrameReserveBytes + kPartialBudgetBytes;
  o.send_queue_bytes_max = size_t{1} << 20;
  o.send_budget_bytes = size_t{3} << 20;
  o.send_stall_timeout = 500ms;
  o.frame_timeout = 1s;
  o.idle_timeout = 500ms;
  return o;
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

// True when the peer ended the connection (EOF or reset); bytes it sent first are skipped.
bool raw_ended(int fd) {
  uint8_t buffer[4096];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) continue;
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
}

size_t count_log_id(const RingLogSink& sink, uint32_t id) {
  std::string needle = "\"id\":" + std::to_string(id) + ",";
  size_t n = 0;
  for (const std::string& line : sink.lines()) n += line.find(needle) != std::string::npos;
  return n;
}

class RealNetBoundsTest : public ::testing::Test {
 public:
  void SetUp() override {
    Result<std::unique_ptr<Listener>> l = net.listen("127.0.0.1:0");
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    listener = std::move(*l);
    Result<TcpAddress> bound = parse_tcp_address(listener->address());
    ASSERT_TRUE(bound.is_ok());
    port = bound->port;
  }
  void TearDown() override {
    for (int fd : raws) ::close(fd);
    listener.reset();
    loop.scheduler().destroy_node(kTestNode);
  }

  int raw() {
    int fd = raw_connect(port);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    raws.push_back(fd);
    return fd;
  }

  // True when the peer of raw socket `fd` ends it within `timeout_ms`; runs the loop.
  bool raw_sees_end(int fd, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 5) {
      if (raw_ended(fd)) return true;
      run_for(5ms);
    }
    return false;
  }

  // Runs the loop for `d` (its tasks and handlers make progress meanwhile).
  void run_for(Nanos d) {
    (void)loop.run_until([] { return false; }, d);
  }

  // Accepts every connection; each receives and echoes (a refused echo is counted, not
  // fatal) until it ends, its end status going to ends[i].
  Task<void> serve() {
    while (true) {
      Result<std::unique_ptr<Connection>> conn = co_await listener->accept(Deadline::never());
      if (!conn.is_ok()) co_return;
      ends.push_back(Status(Code::kIo, "still running"));
      exec.spawn("echo", echo(std::move(*conn), ends.size() - 1));
    }
  }
  Task<void> echo(std::unique_ptr<Connection> conn, size_t index) {
    while (true) {
      Result<Bytes> m = co_await conn->receive(Deadline::never());
      if (!m.is_ok()) {
        ends[index] = m.status();
        co_return;
      }
      received++;
      if (conn->send(*m).code() == Code::kBusy) busy++;
    }
  }

  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  real_test::FixedLogContext log_context;
  Logger log{&sink, &log_context, Severity::kDebug};
  TcpNet net{loop, &log, small_options()};
  Executor exec{loop.scheduler(), kTestNode};
  std::unique_ptr<Listener> listener;
  uint16_t port = 0;
  std::vector<int> raws;
  std::vector<Status> ends;
  size_t received = 0;
  size_t busy = 0;
};

TEST_F(RealNetBoundsTest, AnnouncedLengthsAreNotAllocated) {
  exec.spawn("serve", serve());
  constexpr int kPeers = 8;
  for (int i = 0; i < kPeers; ++i) {
    uint8_t frame[4 + 100] = {};
    encode_fixed32(frame, static_cast<uint32_t>(Connection::kMaxMessageBytes));
    ASSERT_EQ(::send(raw(), frame, sizeof(frame), MSG_NOSIGNAL),
              static_cast<ssize_t>(sizeof(frame)));
  }
  ASSERT_TRUE(loop.run_until([&] { return ends.size() == kPeers; }, 10s));
  run_for(200ms);
  // Each holds the first step of its frame's buffer (64 KiB), not the 64 MiB announced.
  EXPECT_GT(net.receive_budget_used(), 0u);
  EXPECT_LE(net.receive_budget_used(), kPeers * (size_t{64} << 10));
}

TEST_F(RealNetBoundsTest, IncompleteFramesStayWithinTheBudgetWhileSmallFramesFlow) {
  exec.spawn("serve", serve());
  constexpr int kPeers = 4;
  std::vector<int> fds;
  for (int i = 0; i < kPeers; ++i) {
    fds.push_back(raw());
    uint8_t header[4];
    encode_fixed32(header, static_cast<uint32_t>(Connection::kMaxMessageBytes));
    ASSERT_EQ(::send(fds.back(), header, 4, MSG_NOSIGNAL), 4);
  }
  // Push body bytes as fast as the kernel takes them, for a while.
  std::vector<uint8_t> chunk(256 << 10);
  size_t pushed = 0;
  for (int round = 0; round < 30; ++round) {
    for (int fd : fds) {
      ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) pushed += static_cast<size_t>(n);
    }
    run_for(10ms);
  }
  EXPECT_GT(pushed, 2 * kPartialBudgetBytes);
  EXPECT_LE(net.receive_budget_used(), kPartialBudgetBytes);
  EXPECT_GE(net.receive_budget_used(), kPartialBudgetBytes / 2);

  // A well-behaved client is still served.
  bool echoed = false;
  ASSERT_TRUE(run_task(loop, [](RealNetBoundsTest* t, bool* echoed) -> Task<void> {
    Result<std::unique_ptr<Connection>> c =
        co_await t->net.connect(t->listener->address(), t->exec.deadline_after(5s));
    EXPECT_TRUE(c.is_ok());
    if (!c.is_ok()) co_return;
    EXPECT_TRUE((*c)->send(Bytes(1000, 7)).is_ok());
    Result<Bytes> m = co_await (*c)->receive(t->exec.deadline_after(5s));
    *echoed = m.is_ok() && *m == Bytes(1000, 7);
  }(this, &echoed)));
  EXPECT_TRUE(echoed);

  // The frames never complete: past frame_timeout their connections close, and the
  // budget is whole again.
  for (int fd : fds) EXPECT_TRUE(raw_sees_end(fd, 5000));
  ASSERT_TRUE(loop.run_until([&] { return net.receive_budget_used() == 0; }, 5s));
  EXPECT_GE(count_log_id(sink, 10106), 1u);
}

TEST_F(RealNetBoundsTest, HalfSentFramesTimeOut) {
  exec.spawn("serve", serve());
  int fd = raw();
  ASSERT_EQ(::send(fd, "\x10\x00", 2, MSG_NOSIGNAL), 2);
  EXPECT_TRUE(raw_sees_end(fd, 5000));
  ASSERT_TRUE(loop.run_until([&] { return ends.size() == 1 && ends[0].code() != Code::kIo; }, 5s));
  EXPECT_EQ(ends[0].code(), Code::kUnavailable);
  EXPECT_NE(ends[0].message().find("incomplete"), std::string::npos) << ends[0].message();
}

TEST_F(RealNetBoundsTest, SilentAcceptedConnectionsTimeOutButOutboundOnesDoNot) {
  exec.spawn("serve", serve());
  int silent = raw();
  EXPECT_TRUE(raw_sees_end(silent, 5000));
  ASSERT_TRUE(loop.run_until([&] { return ends.size() == 1 && ends[0].code() != Code::kIo; }, 5s));
  EXPECT_NE(ends[0].message().find("idle"), std::string::npos) << ends[0].message();

  // An outbound connection to a peer that stays silent is the caller's to keep.
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(server, 4), 0);
  ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  raws.push_back(server);
  std::unique_ptr<Connection> out;
  ASSERT_TRUE(run_task(
      loop, [](RealNetBoundsTest* t, uint16_t p, std::unique_ptr<Connection>* out) -> Task<void> {
        Result<std::unique_ptr<Connection>> c =
            co_await t->net.connect("127.0.0.1:" + std::to_string(p), t->exec.deadline_after(5s));
        EXPECT_TRUE(c.is_ok());
        if (c.is_ok()) *out = std::move(*c);
      }(this, ntohs(addr.sin_port), &out)));
  ASSERT_NE(out, nullptr);
  run_for(1500ms);
  EXPECT_TRUE(out->is_open());
}

TEST_F(RealNetBoundsTest, UnreadResponsesStopReadingThenCloseAfterTheStall) {
  exec.spawn("serve", serve());
  int fd = raw();
  int small = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  // Requests of 60 KiB that the server echoes; the client never reads the echoes.
  std::vector<uint8_t> frame(4 + (60 << 10), 1);
  encode_fixed32(frame.data(), static_cast<uint32_t>(frame.size() - 4));
  size_t sent = 0;
  constexpr size_t kRounds = 400;
  for (size_t round = 0; round < kRounds; ++round) {
    ssize_t n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) sent += static_cast<size_t>(n);
    run_for(1ms);
  }
  // The server stopped taking what the client sends once its echoes were backlogged.
  EXPECT_LT(sent, kRounds * frame.size());
  EXPECT_LT(received, kRounds / 2) << "busy " << busy << " sent " << sent;
  EXPECT_LE(net.send_budget_used(), net.options().send_queue_bytes_max + frame.size());
  // No write progress for send_stall_timeout: closed.
  ASSERT_TRUE(loop.run_until([&] { return ends.size() == 1 && ends[0].code() != Code::kIo; }, 5s));
  EXPECT_EQ(ends[0].code(), Code::kUnavailable);
  EXPECT_NE(ends[0].message().find("read nothing"), std::string::npos) << ends[0].message();
  ASSERT_TRUE(loop.run_until([&] { return net.send_budget_used() == 0; }, 5s));
}

TEST_F(RealNetBoundsTest, TheSendBudgetIsSharedByAllConnections) {
  exec.spawn("serve", serve());  // reads each frame but the clients never read the echoes
  std::vector<Code> codes;
  ASSERT_TRUE(run_task(loop, [](RealNetBoundsTest* t, std::vector<Code>* codes) -> Task<void> {
    std::vector<std::unique_ptr<Connection>> conns;
    for (int i = 0; i < 4; ++i) {
      Result<std::unique_ptr<Connection>> c =
          co_await t->net.connect(t->listener->address(), t->exec.deadline_after(5s));
      EXPECT_TRUE(c.is_ok());
      if (!c.is_ok()) co_return;
      conns.push_back(std::move(*c));
    }
    // One frame of just under 1 MiB fills each connection's queue; the budget holds three.
    Bytes message((size_t{1} << 20) - 4);
    for (auto& c : conns) codes->push_back(c->send(message).code());
    codes->push_back(conns[0]->send(Bytes(10)).code());
  }(this, &codes)));
  ASSERT_EQ(codes.size(), 5u);
  EXPECT_EQ(codes[0], Code::kOk);
  EXPECT_EQ(codes[1], Code::kOk);
  EXPECT_EQ(codes[2], Code::kOk);
  EXPECT_EQ(codes[3], Code::kBusy);  // the budget
  EXPECT_EQ(codes[4], Code::kBusy);  // the connection's queue
}

TEST_F(RealNetBoundsTest, RepeatedErrorsAreLoggedOncePerIntervalWithACount) {
  exec.spawn("serve", serve());
  auto bad_peer = [&] {
    int fd = raw();
    uint8_t header[4];
    encode_fixed32(header, 0xffffffffu);
    EXPECT_EQ(::send(fd, header, 4, MSG_NOSIGNAL), 4);
    EXPECT_TRUE(raw_sees_end(fd, 5000));
  };
  for (int i = 0; i < 10; ++i) bad_peer();
  ASSERT_TRUE(loop.run_until([&] { return ends.size() == 10; }, 5s));
  run_for(100ms);
  EXPECT_EQ(count_log_id(sink, 10101), 1u);
  run_for(TcpNet::kErrorLogInterval);
  bad_peer();
  ASSERT_TRUE(loop.run_until([&] { return count_log_id(sink, 10101) == 2; }, 5s));
  EXPECT_NE(sink.lines().back().find("\"suppressed\":9"), std::string::npos) << sink.lines().back();
}

}  // namespace
}  // namespace quire
