// FaultProxy over loopback: an echo server behind it, a blocking client in front.
#include "cluster/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

namespace quire::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// An echo server on 127.0.0.1 (a port the kernel picks), one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    for (auto& t : workers_) t.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      workers_.emplace_back([c] {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(c, buf, sizeof(buf))) > 0) {
          if (::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        }
        ::close(c);
      });
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int dial(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads exactly `n` bytes within `timeout`: the bytes, or what came before the end, an
// error ("<error>") or the deadline ("<timeout>").
std::string read_n(int fd, size_t n, milliseconds timeout) {
  std::string out;
  const auto until = Clock::now() + timeout;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
    if (left <= 0) return out + "<timeout>";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t r = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (r < 0) return out + "<error>";
    if (r == 0) return out + "<eof>";
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = FaultProxy::start("127.0.0.1:0", echo_.address());
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    proxy_ = std::move(p).value();
  }
  EchoServer echo_;
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(FaultProxyTest, PassRelaysBothWaysAndLargeTransfersIntact) {
  int fd = dial(proxy_->address());
  ASSERT_GE(fd, 0);
  send_all(fd, "hello");
  EXPECT_EQ(read_n(fd, 5, milliseconds(2000)), "hello");
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7919 % 251);
  std::thread writer([&] { send_all(fd, big); });
  EXPECT_TRUE(read_n(fd, big.size(), milliseconds(10000)) == big);
  writer.join();
  ::close(fd);
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
}

TEST_F(FaultProxyTest, DelayHoldsEveryChunkAtLeastTheDelay) {
  proxy_->set_mode(ProxyMode::kDelay, milliseconds(150));
  int fd = dial(proxy_->address());
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  send_all(fd, "ping");
  EXPECT_EQ(read_n(fd, 4, milliseconds(3000)), "ping");
  // Both directions are held: at least twice the delay.
  EXPECT_GE(Clock::now() - t0, milliseconds(300));
  ::close(fd);
}

TEST_F(FaultProxyTest, ResetBreaksLiveConnectionsAndRefusesNewOnes) {
  int fd = dial(proxy_->address());
  ASSERT_GE(fd, 0);
  send_all(fd, "a");
  ASSERT_EQ(read_n(fd, 1, milliseconds(2000)), "a");
  proxy_->set_mode(ProxyMode::kReset);
  std::string r = read_n(fd, 1, milliseconds(2000));
  EXPECT_TRUE(r == "<error>" || r == "<eof>") << r;
  ::close(fd);
  int fresh = dial(proxy_->address());
  ASSERT_GE(fresh, 0);  // the kernel accepts; the proxy resets it at once
  r = read_n(fresh, 1, milliseconds(2000));
  EXPECT_TRUE(r == "<error>" || r == "<eof>") << r;
  ::close(fresh);
  // The client may see the reset before the proxy counts it.
  const auto until = Clock::now() + milliseconds(2000);
  while (proxy_->connections_reset() < 2 && Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_GE(proxy_->connections_reset(), 2u);
  // Back to pass: new connections work again.
  proxy_->set_mode(ProxyMode::kPass);
  int again = dial(proxy_->address());
  ASSERT_GE(again, 0);
  send_all(again, "b");
  EXPECT_EQ(read_n(again, 1, milliseconds(2000)), "b");
  ::close(again);
}

TEST_F(FaultProxyTest, BlackholeIsSilentThenHealsWithoutLosingBytes) {
  int fd = dial(proxy_->address());
  ASSERT_GE(fd, 0);
  send_all(fd, "x");
  ASSERT_EQ(read_n(fd, 1, milliseconds(2000)), "x");
  proxy_->set_mode(ProxyMode::kBlackhole);
  std::this_thread::sleep_for(milliseconds(50));  // the relay sees the mode
  send_all(fd, "during");
  EXPECT_EQ(read_n(fd, 6, milliseconds(400)), "<timeout>");
  proxy_->set_mode(ProxyMode::kPass);
  EXPECT_EQ(read_n(fd, 6, milliseconds(3000)), "during");
  ::close(fd);
}

TEST_F(FaultProxyTest, ATargetThatIsDownIsAReset) {
  auto p = FaultProxy::start("127.0.0.1:0", "127.0.0.1:1");  // nothing listens on port 1
  ASSERT_TRUE(p.is_ok());
  int fd = dial((*p)->address());
  ASSERT_GE(fd, 0);
  std::string r = read_n(fd, 1, milliseconds(3000));
  EXPECT_TRUE(r == "<error>" || r == "<eof>") << r;
  ::close(fd);
}

TEST(FaultProxy, RefusesMalformedAndNonIpv4Addresses) {
  EXPECT_EQ(FaultProxy::start("nonsense", "127.0.0.1:1").code(), Code::kInvalidArgument);
  EXPECT_EQ(FaultProxy::start("127.0.0.1:0", "[::1]:5").code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace quire::cluster
