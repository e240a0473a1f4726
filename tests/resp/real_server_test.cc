// The RESP wire server over real TCP on loopback, on a RealLoop.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "resp_test_support.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::resp {
namespace {

using namespace std::chrono_literals;
using namespace quire::resp::testing;

constexpr NodeId kNode = 1;
constexpr Nanos kTestTimeout = 60s;

std::string make_temp_dir() {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-resp-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  QUIRE_ASSERT_MSG(made != nullptr, "mkdtemp failed");
  return pattern;
}

class RealServerTest : public ::testing::Test {
 public:
  void start(RespServerOptions options = {}) {
    handler = std::make_unique<EchoHandler>(*env);
    server = std::make_unique<RespServer>(*env, *handler, options);
    Status started = server->start("127.0.0.1:0");
    ASSERT_TRUE(started.is_ok()) << started.to_string();
    address = server->address();
  }
  ~RealServerTest() override {
    server.reset();
    loop.scheduler().destroy_node(kNode);
    env.reset();
    std::error_code ignored;
    std::filesystem::remove_all(data_dir, ignored);
  }

  // Runs `body` as a task until it ends; false on timeout.
  template <typename F>
  bool run(F body) {
    bool done = false;
    auto wrap = [](F b, bool& d) -> Task<void> {
      co_await b();
      d = true;
    };
    env->executor().spawn("test", wrap(std::move(body), done));
    return loop.run_until([&] { return done; }, kTestTimeout);
  }

  // Runs `argv` with stdout to `out_file` while the loop serves; its exit status, or -1 when
  // it could not start or did not end within the test timeout (then it is killed).
  int run_program(const std::vector<std::string>& argv, const std::string& out_file) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_file.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return -1;
    int status = 0;
    bool ended =
        loop.run_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, kTestTimeout);
    if (!ended) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  RealLoop loop;
  RingLogSink sink{1000, 1 << 20};
  std::string data_dir = make_temp_dir();
  std::unique_ptr<RealEnv> env =
      std::make_unique<RealEnv>(loop, kNode, "resp", data_dir, &sink, Severity::kInfo);
  std::unique_ptr<EchoHandler> handler;
  std::unique_ptr<RespServer> server;
  Address address;
};

TEST_F(RealServerTest, PipelineOfOneHundredThousandCommands) {
  start();
  uint64_t first = 0;
  ASSERT_TRUE(run([&]() { return pipeline_scenario(*env, address, *handler, 100'000, &first); }));
  EXPECT_EQ(server->stats().total_commands, 100'000u);
  EXPECT_LT(first, 100'000u);
}

TEST_F(RealServerTest, ClientThatNeverReadsIsDisconnectedOthersServed) {
  RespServerOptions o;
  o.output_hard_bytes = 8u << 20;
  start(o);
  // Enough 1 MB replies to fill the kernel's socket buffers and the hard limit.
  ASSERT_TRUE(run([&]() { return non_reading_client_scenario(*env, address, *server, 64); }));
  bool logged = false;
  for (const std::string& line : sink.lines()) {
    logged = logged || line.find("\"id\":50006") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST_F(RealServerTest, MalformedInputClosesOnlyThatConnection) {
  start();
  ASSERT_TRUE(run([&]() { return malformed_scenario(*env, address); }));
  EXPECT_EQ(server->stats().protocol_errors, 1u);
}

TEST_F(RealServerTest, MaxClients) {
  RespServerOptions o;
  o.max_clients = 2;
  start(o);
  ASSERT_TRUE(run([&]() { return max_clients_scenario(*env, address, *server); }));
}

TEST_F(RealServerTest, QuitRepliesThenCloses) {
  start();
  ASSERT_TRUE(run([&]() { return quit_scenario(*env, address, *handler); }));
}

TEST_F(RealServerTest, StopEndsEveryTask) {
  start();
  ASSERT_TRUE(run([&]() -> Task<void> {
    std::unique_ptr<StreamConnection> c = co_await connect_client(*env, address);
    if (!c) co_return;
    std::string slow = "SLOW 100000\r\n";
    EXPECT_TRUE(c->write(bytes_of(slow)).is_ok());
    Status slept = co_await env->executor().sleep(50ms);
    EXPECT_TRUE(slept.is_ok());
    EXPECT_EQ(server->stats().connected_clients, 1u);
    co_await server->stop();
    std::string got;
    Status end;
    co_await read_to_end(*c, &got, &end, env->executor().deadline_after(5s));
    EXPECT_EQ(end.code(), Code::kUnavailable);
  }));
  EXPECT_EQ(loop.scheduler().live_tasks(kNode), 0u);
}

// Debian's redis-cli and redis-benchmark (7.0) talk to the server unchanged.
TEST_F(RealServerTest, RedisCliAndRedisBenchmarkWork) {
  const std::string cli = "/usr/bin/redis-cli";
  const std::string bench = "/usr/bin/redis-benchmark";
  if (::access(cli.c_str(), X_OK) != 0 || ::access(bench.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "redis-tools not installed";
  }
  start();
  const std::string port = address.substr(address.rfind(':') + 1);
  const std::string out = data_dir + "/out.txt";
  ASSERT_EQ(run_program({cli, "-h", "127.0.0.1", "-p", port, "ECHO", "hello world"}, out), 0);
  EXPECT_EQ(read_file(out), "ECHO\nhello world\n");
  ASSERT_EQ(run_program({cli, "-h", "127.0.0.1", "-p", port, "QUIT"}, out), 0);
  EXPECT_EQ(read_file(out), "OK\n");
  // Pipelined, inline and multibulk PINGs from 5 clients; any error reply would exit 1.
  ASSERT_EQ(run_program({bench, "-h", "127.0.0.1", "-p", port, "-t", "ping", "-n", "20000", "-c",
                         "5", "-P", "16", "-q"},
                        out),
            0);
  EXPECT_NE(read_file(out).find("PING_INLINE"), std::string::npos) << read_file(out);
  EXPECT_GE(server->stats().total_commands, 40'000u);
}

}  // namespace
}  // namespace quire::resp
