// Mutual TLS over the real TcpNet on loopback sockets, with certificates made by
// runtime/real/certs.h in a temporary directory: a CA-signed pair talks both ways, and each
// kind of bad peer is refused on its own connection while the server keeps serving, and
// sockets stalled in their handshake do not lock out a fresh client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <asio.hpp>
#include <asio/ssl.hpp>

#include "real_test_support.h"
#include "runtime/executor.h"
#include "runtime/real/certs.h"
#include "runtime/real/tcp_net.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::kTestNode;
using real_test::run_task;

constexpr int64_t kDayS = 24 * 3600;

Bytes message_of(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

// Plain TCP sockets to a port, closed when this goes.
class RawSockets {
 public:
  explicit RawSockets(uint16_t port) : port_(port) {}
  ~RawSockets() {
    for (int fd : fds) ::close(fd);
  }
  RawSockets(const RawSockets&) = delete;
  RawSockets& operator=(const RawSockets&) = delete;

  // A connected socket (the kernel completes the connect even when the server does not
  // accept), or -1.
  int connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    return ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 ? fd : -1;
  }

  // True when the peer ended `fd` (EOF or reset); bytes it sent first are skipped.
  static bool ended(int fd) {
    uint8_t buffer[4096];
    while (true) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) continue;
      return n == 0 || (n < 0 && errno == ECONNRESET);
    }
  }

  std::vector<int> fds;

 private:
  uint16_t port_;
};

// One temporary directory of certificates for the whole suite: a cluster CA with a server,
// a client and an expired node certificate, and another CA with one node certificate.
class Certificates {
 public:
  Certificates() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-tls-XXXXXX";
    QUIRE_ASSERT(::mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    const std::vector<std::string> local = {"127.0.0.1", "localhost"};
    ok = create_ca(path("ca")).is_ok() && create_ca(path("other-ca")).is_ok() &&
         create_node(path("server"), "server", local, {.ca_dir = path("ca")}).is_ok() &&
         create_node(path("client"), "client", local, {.ca_dir = path("ca")}).is_ok() &&
         create_node(path("other"), "other", local, {.ca_dir = path("other-ca")}).is_ok() &&
         create_node(path("expired"), "expired", local,
                     {.ca_dir = path("ca"), .not_before_offset_s = -2 * kDayS, .lifetime_s = kDayS})
             .is_ok();
  }
  ~Certificates() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  std::string path(std::string_view name) const { return dir + "/" + std::string(name); }
  // `node`'s certificate and key, trusting the cluster CA.
  TlsOptions identity(std::string_view node) const {
    return TlsOptions{path("ca") + "/ca.crt", path(node) + "/node.crt", path(node) + "/node.key"};
  }

  std::string dir;
  bool ok = false;
};

class RealTlsTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() { certs = new Certificates(); }
  static void TearDownTestSuite() {
    delete certs;
    certs = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(certs->ok); }
  void TearDown() override { loop.scheduler().destroy_node(kTestNode); }

  std::unique_ptr<TcpNet> make_net(const std::optional<TlsOptions>& tls) {
    auto net = std::make_unique<TcpNet>(loop, &log);
    if (tls) {
      Status st = net->enable_tls(*tls);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }
    return net;
  }

  std::unique_ptr<Listener> listen_local(TcpNet& net) {
    Result<std::unique_ptr<Listener>> listener = net.listen("127.0.0.1:0");
    EXPECT_TRUE(listener.is_ok()) << listener.status().to_string();
    return listener.is_ok() ? std::move(*listener) : nullptr;
  }

  // Accepts connections until the listener closes, echoing each message back; counts the
  // connections accept() returned.
  Task<void> echo_server(Listener* listener, size_t* accepted) {
    while (true) {
      Result<std::unique_ptr<Connection>> conn = co_await listener->accept(Deadline::never());
      if (!conn.is_ok()) co_return;
      ++*accepted;
      exec.spawn("echo", echo(std::move(*conn)));
    }
  }

  static Task<void> echo(std::unique_ptr<Connection> conn) {
    while (true) {
      Result<Bytes> m = co_await conn->receive(Deadline::never());
      if (!m.is_ok() || !conn->send(*m).is_ok()) co_return;
    }
  }

  // Connects, sends `text` and reads the reply: OK with the reply, or the first error.
  Task<void> exchange(TcpNet& net, Address address, std::string text, Nanos timeout,
                      Result<Bytes>* out) {
    Result<std::unique_ptr<Connection>> conn =
        co_await net.connect(address, exec.deadline_after(timeout));
    if (!conn.is_ok()) {
      *out = conn.status();
      co_return;
    }
    Status sent = (*conn)->send(message_of(text));
    if (!sent.is_ok()) {
      *out = sent;
      co_return;
    }
    *out = co_await (*conn)->receive(exec.deadline_after(timeout));
  }

  Result<Bytes> run_exchange(TcpNet& net, const Address& address, std::string text,
                             Nanos timeout = 5s) {
    Result<Bytes> out = Status(Code::kCancelled, "not run");
    EXPECT_TRUE(run_task(loop, exchange(net, address, std::move(text), timeout, &out)));
    return out;
  }

  // Runs the loop until `net` counted `failures` failed handshakes (or a few seconds).
  bool wait_for_failures(const TcpNet& net, uint64_t failures) {
    return loop.run_until([&] { return net.tls_handshake_failures() >= failures; }, 5s);
  }

  // The log lines of id `id`.
  std::vector<std::string> lines_of(uint32_t id) const {
    const std::string needle = fmt::format("\"id\":{},", id);
    std::vector<std::string> out;
    for (const std::string& line : sink.lines()) {
      if (line.find(needle) != std::string::npos) out.push_back(line);
    }
    return out;
  }
  std::vector<std::string> handshake_lines() const { return lines_of(10105); }

  // Runs the loop for `d` (its tasks and handlers make progress meanwhile).
  void run_for(Nanos d) {
    (void)loop.run_until([] { return false; }, d);
  }

  static Certificates* certs;
  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  real_test::FixedLogContext log_context;
  Logger log{&sink, &log_context, Severity::kDebug};
  Executor exec{loop.scheduler(), kTestNode};
};

Certificates* RealTlsTest::certs = nullptr;

TEST_F(RealTlsTest, CaSignedPeersExchangeMessagesBothWays) {
  auto server_net = make_net(certs->identity("server"));
  auto client_net = make_net(certs->identity("client"));
  std::unique_ptr<Listener> listener = listen_local(*server_net);
  ASSERT_NE(listener, nullptr);
  size_t accepted = 0;
  exec.spawn("server", echo_server(listener.get(), &accepted));

  for (std::string text : {"first", "second, on a second connection"}) {
    Result<Bytes> reply = run_exchange(*client_net, listener->address(), text);
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    EXPECT_EQ(*reply, message_of(text));
  }
  // A large message crosses many TLS records.
  Result<Bytes> big = run_exchange(*client_net, listener->address(), std::string(300000, 'q'));
  ASSERT_TRUE(big.is_ok()) << big.status().to_string();
  EXPECT_EQ(big->size(), 300000u);
  EXPECT_EQ(accepted, 3u);
  EXPECT_EQ(server_net->tls_handshake_failures(), 0u);
  EXPECT_EQ(client_net->tls_handshake_failures(), 0u);
}

TEST_F(RealTlsTest, BadClientsAreRefusedOneByOneWhileTheServerKeepsServing) {
  auto server_net = make_net(certs->identity("server"));
  auto good_net = make_net(certs->identity("client"));
  std::unique_ptr<Listener> listener = listen_local(*server_net);
  ASSERT_NE(listener, nullptr);
  const Address address = listener->address();
  size_t accepted = 0;
  exec.spawn("server", echo_server(listener.get(), &accepted));

  // A certificate from another CA, an expired one (same CA), and no TLS at all.
  TlsOptions other = certs->identity("other");
  auto other_net = make_net(other);
  auto expired_net = make_net(certs->identity("expired"));
  auto plain_net = make_net(std::nullopt);
  uint64_t bad = 0;
  for (TcpNet* bad_net : {other_net.get(), expired_net.get(), plain_net.get()}) {
    Result<Bytes> refused = run_exchange(*bad_net, address, "let me in");
    EXPECT_FALSE(refused.is_ok()) << "bad client " << bad;
    ++bad;
    EXPECT_TRUE(wait_for_failures(*server_net, bad)) << "bad client " << bad;
    Result<Bytes> reply = run_exchange(*good_net, address, "still there?");
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    EXPECT_EQ(*reply, message_of("still there?"));
  }

  // A TLS client that presents no certificate at all (TcpNet always presents one).
  asio::ssl::context bare(asio::ssl::context::tls_client);
  asio::error_code ec;
  bare.load_verify_file(certs->path("ca") + "/ca.crt", ec);
  ASSERT_FALSE(ec) << ec.message();
  asio::ssl::stream<asio::ip::tcp::socket> stream(loop.io(), bare);
  Result<TcpAddress> parsed = parse_tcp_address(address);
  ASSERT_TRUE(parsed.is_ok());
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address(parsed->host), parsed->port);
  bool finished = false;
  asio::error_code outcome;
  std::array<uint8_t, 16> buffer;
  stream.next_layer().async_connect(endpoint, [&](const asio::error_code& connect_ec) {
    if (connect_ec) {
      outcome = connect_ec;
      finished = true;
      return;
    }
    stream.async_handshake(asio::ssl::stream_base::client, [&](const asio::error_code& hs_ec) {
      if (hs_ec) {
        outcome = hs_ec;
        finished = true;
        return;
      }
      // TLS 1.3: the client finishes first; the server's refusal arrives as an alert.
      stream.async_read_some(asio::buffer(buffer), [&](const asio::error_code& read_ec, size_t) {
        outcome = read_ec;
        finished = true;
      });
    });
  });
  ASSERT_TRUE(loop.run_until([&] { return finished; }, 5s));
  EXPECT_TRUE(outcome) << "the server read nothing from a client without a certificate";
  ++bad;
  EXPECT_TRUE(wait_for_failures(*server_net, bad));
  Result<Bytes> reply = run_exchange(*good_net, address, "and now?");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();

  // Only the good connections ever came out of accept().
  EXPECT_EQ(accepted, 4u);
  EXPECT_EQ(server_net->tls_handshake_failures(), bad);
  // Logged, rate-limited: the first failure makes a line and the ones within the interval
  // after it do not; the next line, once the interval has passed, counts them.
  EXPECT_EQ(handshake_lines().size(), 1u);
  Status slept = Status(Code::kCancelled, "not run");
  auto pause = [](Executor& e, Status* out) -> Task<void> {
    *out = co_await e.sleep(TcpNet::kTlsFailureLogInterval + 100ms);
  };
  ASSERT_TRUE(run_task(loop, pause(exec, &slept)));
  EXPECT_FALSE(run_exchange(*plain_net, address, "again").is_ok());
  EXPECT_TRUE(wait_for_failures(*server_net, bad + 1));
  std::vector<std::string> lines = handshake_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"suppressed\":0"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(fmt::format("\"suppressed\":{}", bad - 1)), std::string::npos)
      << lines[1];
}

TEST_F(RealTlsTest, AClientRefusesAServerCertificateFromAnotherCa) {
  // The server presents a certificate from another CA (and trusts it); the client refuses.
  TlsOptions stranger = certs->identity("other");
  stranger.ca_file = certs->path("other-ca") + "/ca.crt";
  auto server_net = make_net(stranger);
  auto client_net = make_net(certs->identity("client"));
  std::unique_ptr<Listener> listener = listen_local(*server_net);
  ASSERT_NE(listener, nullptr);
  size_t accepted = 0;
  exec.spawn("server", echo_server(listener.get(), &accepted));
  Result<Bytes> refused = run_exchange(*client_net, listener->address(), "hello?");
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.status().to_string();
  EXPECT_EQ(client_net->tls_handshake_failures(), 1u);
  EXPECT_EQ(accepted, 0u);
}

TEST_F(RealTlsTest, PlaintextAndTlsDoNotMixAndEachSideKeepsServing) {
  // Plaintext against a TLS port: refused, and the TLS server still serves.
  auto tls_server = make_net(certs->identity("server"));
  auto tls_client = make_net(certs->identity("client"));
  auto plain = make_net(std::nullopt);
  std::unique_ptr<Listener> tls_listener = listen_local(*tls_server);
  std::unique_ptr<Listener> plain_listener = listen_local(*plain);
  ASSERT_NE(tls_listener, nullptr);
  ASSERT_NE(plain_listener, nullptr);
  size_t tls_accepted = 0;
  size_t plain_accepted = 0;
  exec.spawn("tls-server", echo_server(tls_listener.get(), &tls_accepted));
  exec.spawn("plain-server", echo_server(plain_listener.get(), &plain_accepted));

  EXPECT_FALSE(run_exchange(*plain, tls_listener->address(), "plain").is_ok());
  EXPECT_TRUE(wait_for_failures(*tls_server, 1));
  EXPECT_TRUE(run_exchange(*tls_client, tls_listener->address(), "tls").is_ok());
  EXPECT_EQ(tls_accepted, 1u);

  // TLS against a plaintext port: the handshake never gets an answer and gives up at the
  // deadline; the plaintext server still serves.
  Result<Bytes> refused = run_exchange(*tls_client, plain_listener->address(), "tls", 500ms);
  EXPECT_FALSE(refused.is_ok());
  EXPECT_EQ(tls_client->tls_handshake_failures(), 1u);
  Result<Bytes> reply = run_exchange(*plain, plain_listener->address(), "plain");
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
  EXPECT_EQ(*reply, message_of("plain"));
}

TEST_F(RealTlsTest, StalledHandshakesDoNotHoldTheAcceptQueue) {
  auto server_net = make_net(certs->identity("server"));
  auto client_net = make_net(certs->identity("client"));
  std::unique_ptr<Listener> listener = listen_local(*server_net);
  ASSERT_NE(listener, nullptr);
  size_t accepted = 0;
  exec.spawn("server", echo_server(listener.get(), &accepted));
  Result<TcpAddress> bound = parse_tcp_address(listener->address());
  ASSERT_TRUE(bound.is_ok());

  // More sockets than the accept queue holds, none finishing its handshake: half send
  // nothing, half the start of a ClientHello (a record header announcing 512 bytes, then
  // the handshake's first bytes) and nothing more.
  constexpr size_t kStalled = TcpNet::kAcceptQueueMax + 16;
  static_assert(kStalled < TcpNet::kListenBacklog);
  const uint8_t partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
  RawSockets raws(bound->port);
  const auto burst_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kStalled; ++i) {
    int fd = raws.connect();
    ASSERT_GE(fd, 0) << std::strerror(errno);
    if (i % 2) {
      ASSERT_EQ(::send(fd, partial_hello, sizeof(partial_hello), MSG_NOSIGNAL),
                static_cast<ssize_t>(sizeof(partial_hello)));
    }
    run_for(1ms);  // the server accepts as they come
  }
  run_for(300ms);

  const auto start = std::chrono::steady_clock::now();
  Result<Bytes> reply = run_exchange(*client_net, listener->address(), "fresh", 3s);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const auto elapsed_ms = std::chrono::duration<double, std::milli>(elapsed).count();
  std::printf("fresh TLS client behind %zu stalled handshakes served in %.1f ms\n", kStalled,
              elapsed_ms);
  ASSERT_TRUE(reply.is_ok()) << reply.status().to_string() << " after " << elapsed_ms << " ms";
  EXPECT_EQ(*reply, message_of("fresh"));
  EXPECT_LT(elapsed, 1s);
  EXPECT_EQ(accepted, 1u);

  // The oldest stalled sockets made room (the 16 past the queue and the fresh client's
  // connection evicted one each); the newest still hold their slots until the timeout.
  for (size_t i = 0; i <= kStalled - TcpNet::kAcceptQueueMax; ++i) {
    EXPECT_TRUE(loop.run_until([&] { return RawSockets::ended(raws.fds[i]); }, 2s))
        << "stalled socket " << i;
  }
  EXPECT_FALSE(RawSockets::ended(raws.fds.back()));
  // Evictions are not failed handshakes, and are logged rate-limited: one line for the
  // burst (when it took less than the interval, as it does but on a starved machine),
  // counting none suppressed before it.
  EXPECT_EQ(server_net->tls_handshake_failures(), 0u);
  std::vector<std::string> evicted = lines_of(10108);
  ASSERT_FALSE(evicted.empty());
  if (start + elapsed - burst_start < TcpNet::kErrorLogInterval) {
    EXPECT_EQ(evicted.size(), 1u);
  }
  EXPECT_NE(evicted[0].find("\"suppressed\":0"), std::string::npos) << evicted[0];
}

TEST_F(RealTlsTest, EnableTlsRefusesMissingOrExposedFiles) {
  TcpNet net(loop, &log);
  TlsOptions missing = certs->identity("server");
  missing.cert_file = certs->path("nowhere.crt");
  EXPECT_EQ(net.enable_tls(missing).code(), Code::kInvalidArgument);
  EXPECT_EQ(net.enable_tls(TlsOptions{}).code(), Code::kInvalidArgument);
  TlsOptions mismatched = certs->identity("server");
  mismatched.key_file = certs->path("client") + "/node.key";
  Status st = net.enable_tls(mismatched);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  EXPECT_FALSE(net.tls_enabled());

  // A key file others can read is refused, naming the chmod to run.
  const std::string exposed_dir = certs->path("exposed");
  ASSERT_TRUE(
      create_node(exposed_dir, "exposed", {"127.0.0.1"}, {.ca_dir = certs->path("ca")}).is_ok());
  ASSERT_EQ(::chmod((exposed_dir + "/node.key").c_str(), 0640), 0);
  st = net.enable_tls(certs->identity("exposed"));
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("chmod 600"), std::string::npos) << st.message();
  EXPECT_TRUE(net.enable_tls(certs->identity("server")).is_ok());
  EXPECT_TRUE(net.tls_enabled());
}

// A node checks its own certificate at start (quire node and pageserver, before they
// listen or dial): an expired one, or one another CA signed, is refused naming the reason,
// where it used to show only as every handshake failing. And a TLS file that is not a
// regular file (a FIFO would block the loader for ever) is refused at once.
TEST_F(RealTlsTest, ANodesOwnCertificateAndFilesAreCheckedAtStart) {
  const std::string ca = certs->path("ca") + "/ca.crt";
  EXPECT_TRUE(verify_node_certificate(ca, certs->path("server") + "/node.crt").is_ok());
  Status expired = verify_node_certificate(ca, certs->path("expired") + "/node.crt");
  EXPECT_EQ(expired.code(), Code::kInvalidArgument);
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired.message();
  Status foreign = verify_node_certificate(ca, certs->path("other") + "/node.crt");
  EXPECT_EQ(foreign.code(), Code::kInvalidArgument) << foreign.to_string();
  EXPECT_EQ(verify_node_certificate(ca, certs->path("nowhere.crt")).code(), Code::kInvalidArgument);
  const std::string fifo = certs->path("fifo.key");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  TcpNet net(loop, &log);
  TlsOptions blocked = certs->identity("server");
  blocked.key_file = fifo;
  Status st = net.enable_tls(blocked);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("not a regular file"), std::string::npos) << st.message();
  ::unlink(fifo.c_str());
}

TEST_F(RealTlsTest, CertificatesKeepKeysPrivateAndNeverOverwrite) {
  for (const std::string& key :
       {certs->path("ca") + "/ca.key", certs->path("server") + "/node.key"}) {
    struct stat st;
    ASSERT_EQ(::stat(key.c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  struct stat cert_stat;
  ASSERT_EQ(::stat((certs->path("server") + "/node.crt").c_str(), &cert_stat), 0);
  EXPECT_EQ(cert_stat.st_mode & 0777, 0644u);

  EXPECT_EQ(create_ca(certs->path("ca")).code(), Code::kInvalidArgument);
  EXPECT_EQ(
      create_node(certs->path("server"), "server", {"127.0.0.1"}, {.ca_dir = certs->path("ca")})
          .code(),
      Code::kInvalidArgument);
  EXPECT_EQ(create_node(certs->path("n"), "n", {}, {.ca_dir = certs->path("ca")}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(create_node(certs->path("n"), "n", {"a,b"}, {.ca_dir = certs->path("ca")}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      create_node(certs->path("n"), "n", {"127.0.0.1"}, {.ca_dir = certs->path("none")}).code(),
      Code::kNotFound);
}

}  // namespace
}  // namespace quire
