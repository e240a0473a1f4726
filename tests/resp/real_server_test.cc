// The RESP wire server over real TCP on loopback, on a RealLoop.
#include <cstdlib>
#include <filesystem>
#include <memory>
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

}  // namespace
}  // namespace quire::resp
