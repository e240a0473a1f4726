// EtcdCoordinator against a real etcd 3.4 (/usr/bin/etcd, installed by scripts/setup.sh):
// each test starts its own etcd on free loopback ports in a temp dir, and stops it by pid
// (SIGTERM, then SIGKILL) and removes the dir, also when the test fails. A missing etcd
// fails the test; nothing is skipped.
#include "coord/etcd_coordinator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <curl/curl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "coord/elector.h"
#include "coord/etcd_gateway.h"
#include "runtime/real/certs.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

extern char** environ;

namespace quire {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kEtcdBinary = "/usr/bin/etcd";
constexpr Nanos kEtcdStartMax = 20s;
constexpr Nanos kCallTimeout = 5s;
constexpr const char* kElection = "/quire/test/primary";

std::string make_temp_dir() {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-etcd-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  QUIRE_ASSERT_MSG(made != nullptr, "mkdtemp failed");
  return pattern;
}

// A loopback port nobody listens on right now (the kernel's choice for port 0).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  QUIRE_ASSERT(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  QUIRE_ASSERT(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  QUIRE_ASSERT(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

size_t append_to_string(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// The files of a TLS client (empty: plain HTTP).
struct TlsFiles {
  std::string ca, cert, key;
};

// One blocking HTTP request from the test itself (never from the loop): the status and
// body, or status 0 when nothing answered.
GatewayReply http_request(const std::string& url, const std::string* post_body, long timeout_ms,
                          const TlsFiles& tls = {}) {
  GatewayReply reply;
  CURL* easy = curl_easy_init();
  QUIRE_ASSERT(easy != nullptr);
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  if (!tls.ca.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.cert.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.key.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &reply.body);
  if (post_body) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post_body->c_str());
  }
  if (curl_easy_perform(easy) == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    reply.http_status = static_cast<int>(status);
  }
  curl_easy_cleanup(easy);
  return reply;
}

// One etcd server of its own.
class EtcdProcess {
 public:
  EtcdProcess() : dir_(make_temp_dir()) {}
  // Serves clients over https only, and only clients whose certificate the CA in
  // `certs` signed (--client-cert-auth); its own certificate is certs/etcd/node.*, and
  // the test's own requests (health, post) present certs/client/node.*.
  void use_tls(std::string certs) { tls_ = std::move(certs); }
  TlsFiles client_tls() const {
    if (tls_.empty()) return {};
    return {tls_ + "/ca.crt", tls_ + "/client/node.crt", tls_ + "/client/node.key"};
  }
  ~EtcdProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Starts etcd (on fresh ports the first time, the same ones after) and waits until it is
  // healthy. A port someone took between picking and binding makes etcd exit: new ports.
  ::testing::AssertionResult start() {
    if (!std::filesystem::exists(kEtcdBinary)) {
      return ::testing::AssertionFailure() << kEtcdBinary << " is missing (scripts/setup.sh)";
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (client_port_ == 0 || attempt > 0) {
        client_port_ = free_port();
        peer_port_ = free_port();
      }
      if (spawn() && wait_healthy()) return ::testing::AssertionSuccess();
      stop();
    }
    return ::testing::AssertionFailure()
           << "etcd did not become healthy; see " << dir_ << "/etcd.log";
  }

  // SIGKILL, and reaped.
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // SIGTERM, then SIGKILL after 3 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto give_up = Clock::now() + 3s;
    while (Clock::now() < give_up) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    kill_hard();
  }

  std::string url() const {
    return fmt::format("{}://127.0.0.1:{}", tls_.empty() ? "http" : "https", client_port_);
  }
  uint16_t client_port() const { return client_port_; }

  // A POST straight to the gateway, for looking behind the coordinator's back.
  GatewayReply post(const std::string& path, const std::string& body) const {
    return http_request(url() + path, &body, 5000, client_tls());
  }
  // The keys under `prefix` (linearizable range).
  size_t count_keys(const std::string& prefix) const {
    std::string end = prefix;
    end.back()++;
    nlohmann::json req = {
        {"key", base64_encode(prefix)}, {"range_end", base64_encode(end)}, {"count_only", true}};
    GatewayReply r = post("/v3/kv/range", req.dump());
    EXPECT_EQ(r.http_status, 200) << r.body;
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("count")) return 0;  // zero: omitted
    return std::stoul(j["count"].get<std::string>());
  }

 private:
  bool spawn() {
    const std::string data = dir_ + "/data";
    const std::string client = url();
    const std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
    std::vector<std::string> args = {kEtcdBinary,
                                     "--name",
                                     "t",
                                     "--data-dir",
                                     data,
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     "t=" + peer,
                                     "--logger=zap",
                                     "--log-level=warn"};
    if (!tls_.empty()) {
      for (std::string a :
           {"--cert-file=" + tls_ + "/etcd/node.crt", "--key-file=" + tls_ + "/etcd/node.key",
            "--trusted-ca-file=" + tls_ + "/ca.crt", std::string("--client-cert-auth")}) {
        args.push_back(std::move(a));
      }
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/etcd.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, kEtcdBinary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    pid_ = pid;
    return true;
  }

  bool wait_healthy() {
    const auto give_up = Clock::now() + kEtcdStartMax;
    while (Clock::now() < give_up) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;  // exited: a port was taken, say
        return false;
      }
      GatewayReply r = http_request(url() + "/health", nullptr, 500, client_tls());
      if (r.http_status == 200 && r.body.find("true") != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::string dir_;
  std::string tls_;
  pid_t pid_ = -1;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
};

// A loop, a node environment on it, and coordinators over one etcd.
class EtcdCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd.start()); }
  ~EtcdCoordinatorTest() override {
    coordinators.clear();
    envs.clear();
    std::error_code ignored;
    std::filesystem::remove_all(data_dir, ignored);
  }

  Env& env(size_t i = 0) {
    while (envs.size() <= i) {
      const NodeId node = static_cast<NodeId>(envs.size() + 1);
      envs.push_back(std::make_unique<RealEnv>(loop, node, fmt::format("n{}", node),
                                               fmt::format("{}/n{}", data_dir, node), &sink,
                                               Severity::kInfo));
    }
    return *envs[i];
  }

  EtcdOptions options() const {
    EtcdOptions o;
    o.endpoints = {etcd.url()};
    return o;
  }

  // A new coordinator for node `i`.
  EtcdCoordinator& coordinator(size_t i = 0, std::optional<EtcdOptions> o = std::nullopt) {
    auto made = EtcdCoordinator::create(loop, env(i), o ? *o : options());
    QUIRE_ASSERT(made.is_ok());
    coordinators.push_back(std::move(*made));
    return *coordinators.back();
  }

  Deadline after(Nanos d) { return loop.now() + d; }

  // Spawns `task` on node `i`; its result lands in `*out`.
  template <typename T>
  TaskId start(Task<T> task, std::optional<T>* out, size_t i = 0) {
    auto wrap = [](Task<T> t, std::optional<T>* o) -> Task<void> {
      o->emplace(co_await std::move(t));
    };
    return env(i).executor().spawn("call", wrap(std::move(task), out));
  }

  // Runs `task` on node `i` until it finishes (or 30 s pass: a failure).
  template <typename T>
  T run(Task<T> task, size_t i = 0) {
    std::optional<T> out;
    TaskId id = start(std::move(task), &out, i);
    bool done = loop.run_until([&] { return env(i).executor().is_done(id); }, 30s);
    EXPECT_TRUE(done) << "call did not finish";
    if (!done) {
      // Never leave a task behind that writes into this frame later.
      env(i).executor().cancel(id);
      loop.run_until([&] { return env(i).executor().is_done(id); }, 5s);
    }
    if (!out) return T(unavailable("test: call did not finish"));
    return std::move(*out);
  }

  std::string dump_log() const {
    std::string out;
    for (const std::string& line : sink.lines()) out += line + "\n";
    return out;
  }

  void run_for(Nanos d) {
    loop.run_until([] { return false; }, d);
  }

  EtcdProcess etcd;
  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  std::string data_dir = make_temp_dir();
  std::vector<std::unique_ptr<RealEnv>> envs;
  std::vector<std::unique_ptr<EtcdCoordinator>> coordinators;
};

// etcd over mutual TLS (https, --client-cert-auth), as `quire cluster` runs it: the
// coordinator verifies etcd's certificate against the cluster's CA and presents its own.
class EtcdTlsTest : public EtcdCoordinatorTest {
 protected:
  void SetUp() override {
    CertOptions o;
    ASSERT_TRUE(create_ca(certs).is_ok());
    o.ca_dir = certs;
    for (const char* name : {"etcd", "client", "node1"}) {
      ASSERT_TRUE(create_node(certs + "/" + name, name, {"127.0.0.1"}, o).is_ok());
    }
    // Another CA, and a node it signed: nothing etcd or the nodes trust.
    ASSERT_TRUE(create_ca(other).is_ok());
    CertOptions p;
    p.ca_dir = other;
    ASSERT_TRUE(create_node(other + "/node1", "node1", {"127.0.0.1"}, p).is_ok());
    etcd.use_tls(certs);
    ASSERT_TRUE(etcd.start());
  }
  ~EtcdTlsTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(certs, ignored);
    std::filesystem::remove_all(other, ignored);
  }
  EtcdOptions tls_options(const std::string& ca_dir, const std::string& node_dir) const {
    EtcdOptions o;
    o.endpoints = {etcd.url()};
    o.tls_ca_file = ca_dir + "/ca.crt";
    o.tls_cert_file = node_dir + "/node.crt";
    o.tls_key_file = node_dir + "/node.key";
    return o;
  }
  std::string certs = make_temp_dir();
  std::string other = make_temp_dir();
};

TEST_F(EtcdTlsTest, TheCoordinatorSpeaksMutualTlsToEtcd) {
  EtcdCoordinator& c = coordinator(0, tls_options(certs, certs + "/node1"));
  auto lease = run(c.grant_lease(2s, after(kCallTimeout)));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string() << dump_log();
  auto won = run(c.campaign(kElection, lease->id, "addr1", after(kCallTimeout)));
  ASSERT_TRUE(won.is_ok()) << won.status().to_string();
  auto leader = run(c.leader(kElection, after(kCallTimeout)));
  ASSERT_TRUE(leader.is_ok()) << leader.status().to_string();
  EXPECT_EQ(leader->epoch, won->epoch);
  EXPECT_TRUE(run(c.keep_alive(lease->id, after(kCallTimeout))).is_ok());
  EXPECT_TRUE(run(c.revoke_lease(lease->id, after(kCallTimeout))).is_ok());
}

TEST_F(EtcdTlsTest, AnUntrustedPeerOnEitherSideIsRefused) {
  // A client certificate from a CA etcd does not trust: etcd refuses the handshake.
  EtcdCoordinator& stranger = coordinator(0, tls_options(certs, other + "/node1"));
  auto refused = run(stranger.grant_lease(2s, after(kCallTimeout)));
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.status().to_string();
  // etcd's certificate checked against another CA: this side refuses it.
  EtcdCoordinator& doubter = coordinator(1, tls_options(other, certs + "/node1"));
  auto unverified = run(doubter.grant_lease(2s, after(kCallTimeout)));
  EXPECT_EQ(unverified.code(), Code::kUnavailable) << unverified.status().to_string();
  // Plain HTTP to a TLS port is no answer either.
  EtcdOptions plain;
  plain.endpoints = {fmt::format("http://127.0.0.1:{}", etcd.client_port())};
  EtcdCoordinator& clear = coordinator(2, plain);
  EXPECT_FALSE(run(clear.grant_lease(2s, after(kCallTimeout))).is_ok());
}

TEST(EtcdOptionsCheck, HttpsNeedsItsFilesAndOneScheme) {
  const std::string dir = make_temp_dir();
  ASSERT_TRUE(create_ca(dir).is_ok());
  ASSERT_TRUE(create_node(dir + "/n", "n", {"127.0.0.1"}, CertOptions{.ca_dir = dir}).is_ok());
  EtcdOptions o;
  o.endpoints = {"https://127.0.0.1:2379"};
  EXPECT_EQ(validate_etcd_options(o).code(), Code::kInvalidArgument);  // no files
  o.tls_ca_file = dir + "/ca.crt";
  o.tls_cert_file = dir + "/n/node.crt";
  o.tls_key_file = dir + "/n/node.key";
  EXPECT_TRUE(validate_etcd_options(o).is_ok()) << validate_etcd_options(o).to_string();
  o.endpoints.push_back("http://127.0.0.1:2380");  // schemes mixed
  EXPECT_EQ(validate_etcd_options(o).code(), Code::kInvalidArgument);
  o.endpoints = {"http://127.0.0.1:2379"};  // files for http
  EXPECT_EQ(validate_etcd_options(o).code(), Code::kInvalidArgument);
  o.endpoints = {"https://127.0.0.1:2379"};
  o.tls_key_file = dir + "/missing.key";  // a file that cannot be read
  EXPECT_EQ(validate_etcd_options(o).code(), Code::kInvalidArgument);
  o.tls_key_file = dir + "/n/node.key";
  o.tls_cert_file = dir;  // a directory
  EXPECT_EQ(validate_etcd_options(o).code(), Code::kInvalidArgument);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST_F(EtcdCoordinatorTest, GrantKeepAliveRevoke) {
  EtcdCoordinator& c = coordinator();
  // A TTL below etcd's minimum is raised to it.
  auto lease = run(c.grant_lease(1s, after(kCallTimeout)));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  EXPECT_GT(lease->id, 0);
  EXPECT_EQ(lease->ttl, kLeaseTtlMin);
  auto ttl = run(c.keep_alive(lease->id, after(kCallTimeout)));
  ASSERT_TRUE(ttl.is_ok()) << ttl.status().to_string();
  EXPECT_EQ(*ttl, kLeaseTtlMin);
  EXPECT_TRUE(run(c.revoke_lease(lease->id, after(kCallTimeout))).is_ok());
  EXPECT_EQ(run(c.keep_alive(lease->id, after(kCallTimeout))).code(), Code::kNotFound);
  // Revoking what is gone is OK.
  EXPECT_TRUE(run(c.revoke_lease(lease->id, after(kCallTimeout))).is_ok());
  EXPECT_EQ(c.http().requests_in_flight(), 0u);
}

TEST_F(EtcdCoordinatorTest, KeepAliveOfAnExpiredLeaseIsNotFound) {
  EtcdCoordinator& c = coordinator();
  auto lease = run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout)));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  // etcd checks expiry every 500 ms.
  run_for(kLeaseTtlMin + 1500ms);
  auto ttl = run(c.keep_alive(lease->id, after(kCallTimeout)));
  EXPECT_EQ(ttl.code(), Code::kNotFound) << ttl.status().to_string();
}

TEST_F(EtcdCoordinatorTest, SecondCandidateWinsAfterResignWithAHigherEpoch) {
  EtcdCoordinator& a = coordinator(0);
  EtcdCoordinator& b = coordinator(1);
  auto la = run(a.grant_lease(10s, after(kCallTimeout)), 0);
  auto lb = run(b.grant_lease(10s, after(kCallTimeout)), 1);
  ASSERT_TRUE(la.is_ok() && lb.is_ok());
  auto won_a = run(a.campaign(kElection, la->id, "node-a", after(kCallTimeout)), 0);
  ASSERT_TRUE(won_a.is_ok()) << won_a.status().to_string();
  EXPECT_EQ(won_a->key, candidate_key(kElection, la->id));
  EXPECT_EQ(won_a->value, "node-a");
  // Campaigning again under the same lease is idempotent.
  auto again = run(a.campaign(kElection, la->id, "node-a", after(kCallTimeout)), 0);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*again, *won_a);

  auto current = run(b.leader(kElection, after(kCallTimeout)), 1);
  ASSERT_TRUE(current.is_ok()) << current.status().to_string();
  EXPECT_EQ(*current, *won_a);
  auto seen = run(b.observe(kElection, 0, after(kCallTimeout)), 1);
  ASSERT_TRUE(seen.is_ok()) << seen.status().to_string();
  EXPECT_EQ(*seen, *won_a);

  // B waits behind A; an observer waits for a leader other than A.
  std::optional<Result<Leadership>> won_b;
  std::optional<Result<Leadership>> next;
  start(b.campaign(kElection, lb->id, "node-b", after(20s)), &won_b, 1);
  start(a.observe(kElection, won_a->epoch, after(20s)), &next, 0);
  run_for(500ms);
  EXPECT_FALSE(won_b.has_value());
  EXPECT_FALSE(next.has_value());

  ASSERT_TRUE(run(a.resign(*won_a, after(kCallTimeout)), 0).is_ok());
  ASSERT_TRUE(loop.run_until([&] { return won_b.has_value() && next.has_value(); }, 10s));
  ASSERT_TRUE(won_b->is_ok()) << won_b->status().to_string();
  EXPECT_GT((*won_b)->epoch, won_a->epoch);
  EXPECT_EQ((*won_b)->value, "node-b");
  ASSERT_TRUE(next->is_ok()) << next->status().to_string();
  EXPECT_EQ(**next, **won_b);
  current = run(a.leader(kElection, after(kCallTimeout)), 0);
  ASSERT_TRUE(current.is_ok());
  EXPECT_EQ(*current, **won_b);
  // Resigning an old leadership again changes nothing.
  EXPECT_TRUE(run(a.resign(*won_a, after(kCallTimeout)), 0).is_ok());
  EXPECT_EQ(run(a.leader(kElection, after(kCallTimeout)), 0)->epoch, (*won_b)->epoch);
}

TEST_F(EtcdCoordinatorTest, SecondCandidateWinsAfterTheLeadersLeaseExpires) {
  EtcdCoordinator& a = coordinator(0);
  EtcdCoordinator& b = coordinator(1);
  EXPECT_EQ(run(a.leader(kElection, after(kCallTimeout))).code(), Code::kNotFound);
  auto la = run(a.grant_lease(kLeaseTtlMin, after(kCallTimeout)), 0);
  auto lb = run(b.grant_lease(20s, after(kCallTimeout)), 1);
  ASSERT_TRUE(la.is_ok() && lb.is_ok());
  auto won_a = run(a.campaign(kElection, la->id, "a", after(kCallTimeout)), 0);
  ASSERT_TRUE(won_a.is_ok()) << won_a.status().to_string();
  // Nobody renews A's lease: B wins once etcd expires it.
  const auto t0 = Clock::now();
  auto won_b = run(b.campaign(kElection, lb->id, "b", after(15s)), 1);
  ASSERT_TRUE(won_b.is_ok()) << won_b.status().to_string();
  EXPECT_GT(won_b->epoch, won_a->epoch);
  EXPECT_GE(Clock::now() - t0, 1s);
  EXPECT_EQ(run(a.keep_alive(la->id, after(kCallTimeout))).code(), Code::kNotFound);
  // A campaign under the expired lease is NotFound.
  EXPECT_EQ(run(a.campaign(kElection, la->id, "a", after(kCallTimeout))).code(), Code::kNotFound);
}

TEST_F(EtcdCoordinatorTest, ACampaignDeadlineOrCancelWithdrawsTheCandidacy) {
  EtcdCoordinator& a = coordinator(0);
  EtcdCoordinator& b = coordinator(1);
  auto la = run(a.grant_lease(20s, after(kCallTimeout)), 0);
  auto lb = run(b.grant_lease(20s, after(kCallTimeout)), 1);
  ASSERT_TRUE(la.is_ok() && lb.is_ok());
  ASSERT_TRUE(run(a.campaign(kElection, la->id, "a", after(kCallTimeout)), 0).is_ok());
  const std::string prefix = std::string(kElection) + "/";

  // The deadline: DeadlineExceeded, and B's key is gone by then.
  const auto t0 = Clock::now();
  auto timed_out = run(b.campaign(kElection, lb->id, "b", after(500ms)), 1);
  EXPECT_EQ(timed_out.code(), Code::kDeadlineExceeded) << timed_out.status().to_string();
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_EQ(etcd.count_keys(prefix), 1u);

  // A cancel: the same, withdrawn in the background.
  std::optional<Result<Leadership>> cancelled;
  TaskId id = start(b.campaign(kElection, lb->id, "b", after(20s)), &cancelled, 1);
  ASSERT_TRUE(loop.run_until([&] { return etcd.count_keys(prefix) == 2; }, 5s));
  env(1).executor().cancel(id);
  ASSERT_TRUE(loop.run_until([&] { return cancelled.has_value(); }, 5s));
  EXPECT_EQ(cancelled->code(), Code::kCancelled);
  EXPECT_TRUE(loop.run_until([&] { return etcd.count_keys(prefix) == 1; }, 5s));

  // A coordinator destroyed mid-campaign: prompt, and the candidacy goes with the
  // connection (etcd resigns it when the request is cancelled).
  std::optional<Result<Leadership>> orphaned;
  start(b.campaign(kElection, lb->id, "b", after(20s)), &orphaned, 1);
  ASSERT_TRUE(loop.run_until([&] { return etcd.count_keys(prefix) == 2; }, 5s));
  const auto t1 = Clock::now();
  coordinators.erase(coordinators.begin() + 1);
  EXPECT_LT(Clock::now() - t1, 1s);
  envs.erase(envs.begin() + 1);  // destroys the waiting task's frame
  EXPECT_TRUE(loop.run_until([&] { return etcd.count_keys(prefix) == 1; }, 5s));
  EXPECT_FALSE(orphaned.has_value());

  // After A resigns, no one leads: nothing of B was left behind.
  EXPECT_TRUE(run(a.revoke_lease(la->id, after(kCallTimeout)), 0).is_ok());
  EXPECT_EQ(run(a.leader(kElection, after(kCallTimeout)), 0).code(), Code::kNotFound);
}

TEST_F(EtcdCoordinatorTest, KilledEtcdIsUnavailablePromptlyAndARestartedOneServes) {
  EtcdCoordinator& c = coordinator();
  auto lease = run(c.grant_lease(20s, after(kCallTimeout)));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  // A wait in flight when etcd dies.
  std::optional<Result<Leadership>> observing;
  start(c.observe(kElection, 0, after(20s)), &observing);
  run_for(200ms);
  etcd.kill_hard();
  auto t0 = Clock::now();
  ASSERT_TRUE(loop.run_until([&] { return observing.has_value(); }, 5s));
  EXPECT_EQ(observing->code(), Code::kUnavailable) << observing->status().to_string();
  auto refused = run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout)));
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.status().to_string();
  EXPECT_LT(Clock::now() - t0, 1s);

  ASSERT_TRUE(etcd.start());
  auto again = run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout)));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  // The lease granted before the crash survived it (etcd's leases outlive a restart).
  EXPECT_TRUE(run(c.keep_alive(lease->id, after(kCallTimeout))).is_ok());
}

TEST_F(EtcdCoordinatorTest, FailsOverToTheNextEndpointAndRemembersIt) {
  EtcdOptions o = options();
  o.endpoints = {fmt::format("http://127.0.0.1:{}", free_port()), etcd.url()};
  EtcdCoordinator& c = coordinator(0, o);
  EXPECT_EQ(c.http().preferred_endpoint(), 0u);
  auto lease = run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout)));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  EXPECT_EQ(c.http().preferred_endpoint(), 1u);
  EXPECT_TRUE(run(c.keep_alive(lease->id, after(kCallTimeout))).is_ok());
  EXPECT_EQ(c.http().preferred_endpoint(), 1u);

  // Every endpoint dead: Unavailable.
  o.endpoints = {fmt::format("http://127.0.0.1:{}", free_port())};
  EtcdCoordinator& dead = coordinator(0, o);
  EXPECT_EQ(run(dead.grant_lease(kLeaseTtlMin, after(kCallTimeout))).code(), Code::kUnavailable);
  // Options that are not valid are refused up front.
  for (std::vector<std::string> endpoints :
       {std::vector<std::string>{}, {"https://127.0.0.1:1"}, {"127.0.0.1:1"}, {"http://"}}) {
    o.endpoints = endpoints;
    EXPECT_EQ(EtcdCoordinator::create(loop, env(0), o).code(), Code::kInvalidArgument);
  }
}

TEST_F(EtcdCoordinatorTest, RequestsBeyondTheInFlightBoundAreBusy) {
  EtcdOptions o = options();
  o.requests_in_flight_max = 2;
  EtcdCoordinator& c = coordinator(0, o);
  std::optional<Result<Leadership>> w1, w2;
  TaskId t1 = start(c.observe(kElection, 0, after(20s)), &w1);
  TaskId t2 = start(c.observe(kElection, 0, after(20s)), &w2);
  run_for(100ms);
  EXPECT_EQ(c.http().requests_in_flight(), 2u);
  EXPECT_EQ(run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout))).code(), Code::kBusy);
  // A cancelled wait frees its place.
  env(0).executor().cancel(t1);
  env(0).executor().cancel(t2);
  ASSERT_TRUE(loop.run_until([&] { return c.http().requests_in_flight() == 0; }, 5s));
  EXPECT_EQ(w1->code(), Code::kCancelled);
  EXPECT_TRUE(run(c.grant_lease(kLeaseTtlMin, after(kCallTimeout))).is_ok());
  // An observe deadline: DeadlineExceeded, on time.
  const auto t0 = Clock::now();
  EXPECT_EQ(run(c.observe(kElection, 0, after(300ms))).code(), Code::kDeadlineExceeded);
  EXPECT_LT(Clock::now() - t0, 2s);
}

// Two Electors over etcd: one leads; when it resigns, or its lease is revoked behind its
// back, the other leads with a higher epoch.
TEST_F(EtcdCoordinatorTest, ElectorsOverEtcdHandOverWithHigherEpochs) {
  struct Seen {
    std::vector<uint64_t> elected;
    int deposed = 0;
  };
  Seen seen[2];
  ElectorOptions eo;
  eo.election = kElection;
  std::vector<std::unique_ptr<Elector>> electors;
  for (size_t i = 0; i < 2; ++i) {
    EtcdCoordinator& c = coordinator(i);
    eo.value = fmt::format("node-{}", i);
    electors.push_back(std::make_unique<Elector>(
        env(i), c, eo, [&seen, i](const Leadership& l) { seen[i].elected.push_back(l.epoch); },
        [&seen, i](const Leadership&, const Status&) { seen[i].deposed++; }));
    electors.back()->start();
  }
  auto leader_index = [&]() -> int {
    int found = -1;
    for (int i = 0; i < 2; ++i) {
      if (electors[i]->may_lead(loop.now())) {
        if (found >= 0) return -2;  // two leaders
        found = i;
      }
    }
    return found;
  };
  ASSERT_TRUE(loop.run_until([&] { return leader_index() >= 0; }, 10s));
  const int first = leader_index();
  const uint64_t epoch1 = electors[first]->leadership()->epoch;
  // It holds across renewals.
  run_for(1500ms);
  EXPECT_EQ(leader_index(), first);
  EXPECT_EQ(seen[first].elected.size(), 1u);

  electors[first]->resign(cancelled("test"));
  const int second = 1 - first;
  ASSERT_TRUE(loop.run_until([&] { return leader_index() == second; }, 10s)) << dump_log();
  EXPECT_GE(seen[second].elected.size(), 1u);
  const uint64_t epoch2 = electors[second]->leadership()->epoch;
  EXPECT_GT(epoch2, epoch1);
  EXPECT_EQ(seen[first].deposed, 1);

  // Revoke the leader's lease from outside: its renewal sees NotFound, the other wins.
  EtcdCoordinator& outsider = coordinator(2);
  auto current = run(outsider.leader(kElection, after(kCallTimeout)), 2);
  ASSERT_TRUE(current.is_ok()) << current.status().to_string();
  EXPECT_EQ(current->epoch, epoch2);
  ASSERT_TRUE(run(outsider.revoke_lease(current->lease, after(kCallTimeout)), 2).is_ok());
  ASSERT_TRUE(
      loop.run_until([&] { return leader_index() == first && seen[second].deposed == 1; }, 10s))
      << dump_log();
  EXPECT_GT(electors[first]->leadership()->epoch, epoch2);
  EXPECT_EQ(seen[second].deposed, 1);
  EXPECT_EQ(seen[first].elected.size(), 2u);
  electors.clear();
}

// A server that answers every request with one canned HTTP response, for answers etcd
// never gives: on its own thread, blocking sockets, one connection at a time.
class CannedHttpServer {
 public:
  explicit CannedHttpServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    QUIRE_ASSERT(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    QUIRE_ASSERT(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    QUIRE_ASSERT(::listen(fd_, 8) == 0);
    QUIRE_ASSERT(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedHttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }

 private:
  void serve() {
    while (!stop_) {
      int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      // Read the request head and body (small: the coordinator's JSON).
      char buf[65536];
      std::string request;
      timeval tv{0, 200000};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      size_t off = 0;
      while (off < response_.size()) {
        ssize_t n = ::send(conn, response_.data() + off, response_.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(conn);
    }
  }

  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string http_response(int status, const std::string& body) {
  return fmt::format(
      "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      status, body.size(), body);
}

TEST_F(EtcdCoordinatorTest, UnexpectedAnswersAreTypedErrorsNeverCrashes) {
  struct Case {
    std::string response;
    Code want;
  };
  const Case cases[] = {
      {http_response(200, "not json"), Code::kInvalidArgument},
      {http_response(200, R"({"ID":"-3","TTL":"5"})"), Code::kInvalidArgument},
      {http_response(200, std::string(2u << 20, ' ')), Code::kInvalidArgument},  // > 1 MiB
      {http_response(404, "404 page not found"), Code::kInvalidArgument},
      {http_response(503, "<html>down</html>"), Code::kUnavailable},
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ID\"", Code::kUnavailable},  // cut
      {"garbage\r\n\r\n", Code::kUnavailable},
      {"", Code::kUnavailable},  // closed without a word
  };
  for (const Case& c : cases) {
    CannedHttpServer server(c.response);
    EtcdOptions o = options();
    o.endpoints = {server.url()};
    EtcdCoordinator& coord = coordinator(0, o);
    auto granted = run(coord.grant_lease(kLeaseTtlMin, after(kCallTimeout)));
    EXPECT_EQ(granted.code(), c.want)
        << c.response.substr(0, 80) << " -> " << granted.status().to_string();
    EXPECT_EQ(run(coord.leader(kElection, after(kCallTimeout))).code() == Code::kOk, false);
    coordinators.pop_back();
  }
  // A stream line above the bound ends the observe with InvalidArgument.
  CannedHttpServer streaming(http_response(200, std::string(2u << 20, 'x') + "\n"));
  EtcdOptions o = options();
  o.endpoints = {streaming.url()};
  EtcdCoordinator& coord = coordinator(0, o);
  EXPECT_EQ(run(coord.observe(kElection, 0, after(kCallTimeout))).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace quire
