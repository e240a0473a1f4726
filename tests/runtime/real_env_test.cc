#include "runtime/real/real_env.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "real_test_support.h"

namespace quire {
namespace {

using namespace std::chrono_literals;

std::string make_temp_dir() {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-env-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  QUIRE_ASSERT_MSG(made != nullptr, "mkdtemp failed");
  return pattern;
}

class RealEnvTest : public ::testing::Test {
 protected:
  ~RealEnvTest() override {
    env.reset();
    std::error_code ignored;
    std::filesystem::remove_all(data_dir, ignored);
  }

  RealLoop loop;
  RingLogSink sink{100, 1 << 16};
  std::string data_dir = make_temp_dir();
  std::unique_ptr<RealEnv> env =
      std::make_unique<RealEnv>(loop, 7, "ps1", data_dir + "/node", &sink, Severity::kInfo);
};

Task<void> use_env(Env& env, bool* done) {
  EXPECT_EQ(env.node_name(), "ps1");
  EXPECT_EQ(env.executor().node(), 7u);
  // The log context is the running task.
  EXPECT_EQ(env.log_task_name(), "use-env");

  // Files land under the node's data directory.
  EXPECT_TRUE((co_await env.disk().make_dirs("")).is_ok());
  Result<std::unique_ptr<File>> f = co_await env.disk().open("marker", {.create = true});
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();

  // Sleeping goes through the node's executor on the real clock.
  MonoTime before = env.executor().now();
  EXPECT_TRUE((co_await env.executor().sleep(5ms)).is_ok());
  EXPECT_GE(env.clock().monotonic_now() - before, 5ms);

  // The network works through the env too.
  Result<std::unique_ptr<Listener>> l = env.net().listen("localhost:0");
  EXPECT_TRUE(l.is_ok());

  std::unique_ptr<Random> a = env.random_stream("retry-jitter");
  std::unique_ptr<Random> b = env.random_stream("retry-jitter");
  EXPECT_NE(a->next_u64(), b->next_u64());
  EXPECT_NE(env.random().next_u64(), env.random().next_u64());
  *done = true;
}

TEST_F(RealEnvTest, WiresTheNodesWorld) {
  bool done = false;
  TaskId id = env->executor().spawn("use-env", use_env(*env, &done));
  ASSERT_TRUE(loop.run_until([&] { return env->executor().is_done(id); }, real_test::kTestTimeout));
  EXPECT_TRUE(done);
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/node/marker"));
  EXPECT_TRUE(env->restart_requested().is_ok());

  // Wall time (and so log time) carries the node's offset.
  env->real_clock().set_wall_offset(std::chrono::hours(24));
  int64_t system_ns =
      std::chrono::duration_cast<Nanos>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_GE(env->log_wall_time_ns(),
            system_ns + std::chrono::nanoseconds(std::chrono::hours(23)).count());
}

Task<void> ask_for_restart(Env& env) {
  env.request_restart(Status(Code::kIo, "fdatasync failed").at("segment-sync"));
  co_return;
}

TEST_F(RealEnvTest, RequestRestartLogsRemembersAndStopsTheLoop) {
  Task<void> again = ask_for_restart(*env);
  env->executor().spawn("sync", ask_for_restart(*env));
  bool backstop = false;
  env->executor().spawn("backstop", [](Env& env, RealLoop& loop, bool* fired) -> Task<void> {
    (void)co_await env.executor().sleep(real_test::kTestTimeout);
    *fired = true;
    loop.stop();
  }(*env, loop, &backstop));
  loop.run();
  EXPECT_FALSE(backstop);
  ASSERT_EQ(env->restart_requested().code(), Code::kIo);
  EXPECT_EQ(env->restart_requested().message(), "fdatasync failed");

  ASSERT_EQ(sink.lines().size(), 1u);
  const std::string& line = sink.lines().front();
  EXPECT_NE(line.find("\"s\":\"E\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"c\":\"runtime\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"id\":10001"), std::string::npos) << line;
  EXPECT_NE(line.find("\"ctx\":\"sync\""), std::string::npos) << line;
  EXPECT_NE(line.find("fdatasync failed"), std::string::npos) << line;

  // A second request keeps the first reason.
  env->request_restart(Status(Code::kCorruption, "later"));
  EXPECT_EQ(env->restart_requested().code(), Code::kIo);
  EXPECT_EQ(kExitRestart, 75);
}

TEST_F(RealEnvTest, DestroyingTheEnvDestroysItsTasks) {
  env->executor().spawn("forever", [](Env& env) -> Task<void> {
    (void)co_await env.executor().sleep(std::chrono::hours(1));
  }(*env));
  EXPECT_EQ(loop.scheduler().live_tasks(7), 1u);
  env.reset();
  EXPECT_EQ(loop.scheduler().live_tasks(7), 0u);
  EXPECT_FALSE(loop.run_until([] { return false; }, 5ms));
}

}  // namespace
}  // namespace quire
