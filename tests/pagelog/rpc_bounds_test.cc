// RpcServer against hostile peers over real loopback sockets: full connection slots, unread
// responses and repeated malformed requests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "pagelog/rpc.h"
#include "runtime/real/real_env.h"
#include "runtime/real_test_support.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::kTestNode;
using real_test::run_task;

constexpr uint8_t kOpEcho = 1;
constexpr uint8_t kOpLarge = 2;  // answers with kLargeBytes
constexpr size_t kLargeBytes = size_t{1} << 20;
constexpr uint8_t kOpOversize = 3;  // answers with a body of a whole frame: over the limit

size_t count_log_id(const RingLogSink& sink, uint32_t id) {
  std::string needle = "\"id\":" + std::to_string(id) + ",";
  size_t n = 0;
  for (const std::string& line : sink.lines()) n += line.find(needle) != std::string::npos;
  return n;
}

bool raw_ended(int fd) {
  uint8_t buffer[4096];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) continue;
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }
}

class RpcBoundsTest : public ::testing::Test {
 public:
  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-rpc-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    env = std::make_unique<RealEnv>(loop, kTestNode, "n1", dir, &sink, Severity::kDebug);
    server = std::make_unique<RpcServer>(*env, [](const RpcRequest& r) -> Task<RpcResponse> {
      RpcResponse resp;
      resp.body = r.op == kOpLarge      ? Bytes(kLargeBytes, 3)
                  : r.op == kOpOversize ? Bytes(Connection::kMaxMessageBytes, 4)
                                        : r.body;
      co_return resp;
    });
    ASSERT_TRUE(server->start("127.0.0.1:0").is_ok());
    Result<TcpAddress> bound = parse_tcp_address(server->address());
    ASSERT_TRUE(bound.is_ok());
    port = bound->port;
  }
  void TearDown() override {
    for (int fd : raws) ::close(fd);
    server.reset();
    env.reset();
    std::filesystem::remove_all(dir);
  }

  int raw() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    raws.push_back(fd);
    return fd;
  }
  void send_frame(int fd, const Bytes& message) {
    Bytes frame(4);
    encode_fixed32(frame.data(), static_cast<uint32_t>(message.size()));
    frame.insert(frame.end(), message.begin(), message.end());
    ASSERT_EQ(::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(frame.size()));
  }
  // True when the server ends raw socket `fd` within 5 s; drains what it sends meanwhile.
  bool sees_end(int fd) {
    for (int i = 0; i < 1000; ++i) {
      if (raw_ended(fd)) return true;
      run_for(5ms);
    }
    return false;
  }
  void run_for(Nanos d) {
    (void)loop.run_until([] { return false; }, d);
  }

  // One echo call from a fresh client, within `deadline_after`.
  Status fresh_call(Nanos deadline_after) {
    Status out = Status(Code::kCancelled, "not run");
    auto call = [](RpcBoundsTest* t, Nanos after, Status* out) -> Task<void> {
      const Bytes body{1, 2, 3};
      RpcClient client(*t->env, t->server->address());
      Result<Bytes> r =
          co_await client.call(kOpEcho, 0, body, t->env->executor().deadline_after(after));
      *out = !r.is_ok() ? r.status() : *r == body ? Status() : Status(Code::kIo, "wrong echo");
    };
    const bool ran = run_task(loop, call(this, deadline_after, &out));
    EXPECT_TRUE(ran);
    return out;
  }

  RealLoop loop;
  RingLogSink sink{4000, 4 << 20};
  std::string dir;
  std::unique_ptr<RealEnv> env;
  std::unique_ptr<RpcServer> server;
  uint16_t port = 0;
  std::vector<int> raws;
};

TEST_F(RpcBoundsTest, FullSlotsOfSilentAndHalfSentConnectionsDoNotLockOutAFreshClient) {
  for (size_t i = 0; i < RpcServer::kConnectionsMax; ++i) {
    int fd = raw();
    if (i % 2) {
      ASSERT_EQ(::send(fd, "\x10\x00", 2, MSG_NOSIGNAL), 2);  // half a header
    }
    run_for(1ms);  // the server accepts as they come
  }
  run_for(300ms);
  const auto start = std::chrono::steady_clock::now();
  Status st = fresh_call(1s);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // The oldest silent connection made room; the eviction was logged once, not per socket.
  EXPECT_TRUE(sees_end(raws.front()));
  EXPECT_EQ(count_log_id(sink, 31003), 1u);
}

TEST_F(RpcBoundsTest, APeerThatDoesNotReadItsResponsesIsClosed) {
  int fd = raw();
  int small = 4096;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  // 64 requests of 1 MiB responses: more than a connection's send queue holds.
  for (uint64_t id = 1; id <= RpcServer::kRequestsPerConnectionMax; ++id) {
    send_frame(fd, encode_rpc_request({id, kOpLarge, 0, {}}));
  }
  // The server gives up on it (reading now would drain what it flushes before closing).
  ASSERT_TRUE(loop.run_until([&] { return count_log_id(sink, 31005) == 1; }, 5s));
  // After the close's linger the socket is gone: a byte sent to it is answered by a reset.
  run_for(TcpNet::kCloseLingerMax + 200ms);
  ASSERT_EQ(::send(fd, "x", 1, MSG_NOSIGNAL), 1);
  EXPECT_TRUE(sees_end(fd));
  EXPECT_TRUE(fresh_call(5s).is_ok());
}

TEST_F(RpcBoundsTest, MalformedRequestsAreLoggedOncePerIntervalWithACount) {
  for (int i = 0; i < 5; ++i) {
    int fd = raw();
    send_frame(fd, Bytes{0xff, 0xff});
    EXPECT_TRUE(sees_end(fd));
  }
  EXPECT_EQ(count_log_id(sink, 31004), 1u);
  run_for(RpcServer::kErrorLogInterval);
  int fd = raw();
  send_frame(fd, Bytes{0xff});
  EXPECT_TRUE(sees_end(fd));
  ASSERT_EQ(count_log_id(sink, 31004), 2u);
  EXPECT_NE(sink.lines().back().find("\"suppressed\":4"), std::string::npos) << sink.lines().back();
}

// A response over the frame limit is replaced by InvalidArgument: the call completes with
// a typed error (it used to be dropped, and the call waited until its deadline), the
// connection goes on serving, and the refusals are logged once per interval.
constexpr uint8_t kOversizeCalls[] = {kOpOversize, kOpOversize, kOpEcho};

TEST_F(RpcBoundsTest, AResponseOverOneFrameIsATypedErrorNotADroppedOne) {
  std::vector<Status> results;
  auto calls = [](RpcBoundsTest* t, std::vector<Status>* out) -> Task<void> {
    RpcClient client(*t->env, t->server->address());
    const Bytes body(1, 1);
    for (uint8_t op : kOversizeCalls) {
      Result<Bytes> r = co_await client.call(op, 0, body, t->env->executor().deadline_after(5s));
      out->push_back(r.status());
    }
  };
  ASSERT_TRUE(run_task(loop, calls(this, &results)));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].code(), Code::kInvalidArgument) << results[0].to_string();
  EXPECT_NE(results[0].message().find("frame limit"), std::string::npos) << results[0].to_string();
  EXPECT_EQ(results[1].code(), Code::kInvalidArgument);
  EXPECT_TRUE(results[2].is_ok()) << results[2].to_string();  // the same connection serves on
  EXPECT_EQ(count_log_id(sink, 31006), 1u);
}

}  // namespace
}  // namespace quire
