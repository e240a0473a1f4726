#include "runtime/sim/sim_world.h"

#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace quire {
namespace {

// A node that appends a counter to a file every few milliseconds and syncs it, and pings
// its peer; enough to exercise every seam.
class CounterApp : public NodeApp {
 public:
  CounterApp(Env& env, int* starts) : env_(env) { ++*starts; }
  void start() override { env_.executor().spawn("count", run()); }
  Task<void> run() {
    auto f = co_await env_.disk().open("count", {.create = true});
    if (!f.is_ok()) co_return;
    (void)co_await env_.disk().sync_dir("");
    env_.log().info("test", 99001, "started", {{"size", (*f)->size().value()}});
    while (true) {
      Bytes b(1 + env_.random().uniform(700), static_cast<uint8_t>(env_.random().next_u64()));
      if (!(co_await (*f)->append(b)).is_ok()) co_return;
      Status st = co_await (*f)->sync();
      if (!st.is_ok()) {
        env_.request_restart(st);
        co_return;
      }
      if (!(co_await env_.executor().sleep(env_.random().duration(1ms, 5ms))).is_ok()) co_return;
    }
  }

 private:
  Env& env_;
};

uint64_t run_world(uint64_t seed, uint64_t* events) {
  SimWorld world(seed);
  int starts = 0;
  for (const char* n : {"x", "y", "z"}) {
    world.add_node(n, [&starts](Env& env) { return std::make_unique<CounterApp>(env, &starts); });
  }
  for (NodeId id : world.nodes()) world.start(id);
  auto rng = world.random_stream("test");
  for (int i = 0; i < 20; ++i) {
    world.run_for(rng->duration(5ms, 50ms));
    NodeId victim = static_cast<NodeId>(1 + rng->uniform(3));
    world.crash(victim, static_cast<UnsyncedOnCrash>(rng->uniform(3)));
    world.run_for(rng->duration(1ms, 10ms));
    world.start(victim);
  }
  *events = world.events();
  return world.trace_hash();
}

TEST(SimWorld, SameSeedSameTraceOverThousandsOfEvents) {
  uint64_t e1 = 0, e2 = 0;
  uint64_t h1 = run_world(99, &e1);
  uint64_t h2 = run_world(99, &e2);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(e1, e2);
  EXPECT_GE(e1, 1000u);
}

TEST(SimWorld, FiftySeedsGiveFiftyTraces) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    uint64_t events = 0;
    hashes.insert(run_world(seed, &events));
  }
  EXPECT_EQ(hashes.size(), 50u);
}

TEST(SimWorld, CrashDestroysTheNodeAndRestartRebuildsItFromDisk) {
  SimWorld world(5);
  int starts = 0;
  NodeId x = world.add_node(
      "x", [&starts](Env& env) { return std::make_unique<CounterApp>(env, &starts); });
  world.start(x);
  world.run_for(100ms);
  size_t synced = world.disk(x).durable_content("count")->size();
  EXPECT_GT(synced, 0u);
  world.crash(x, UnsyncedOnCrash::kLose);
  EXPECT_FALSE(world.is_up(x));
  EXPECT_EQ(world.scheduler().live_tasks(x), 0u);
  EXPECT_EQ(world.disk(x).current_content("count")->size(),
            world.disk(x).durable_content("count")->size());
  world.start(x);
  EXPECT_EQ(starts, 2);
  EXPECT_EQ(world.incarnation(x), 2u);
  world.run_for(100ms);
  EXPECT_GT(world.disk(x).durable_content("count")->size(), synced);
}

TEST(SimWorld, RequestRestartCrashesAndRestartsTheNode) {
  SimWorld world(6);
  int starts = 0;
  NodeId x = world.add_node(
      "x", [&starts](Env& env) { return std::make_unique<CounterApp>(env, &starts); });
  world.start(x);
  world.run_for(20ms);
  DiskFaults f;
  f.sync_eio = 1.0;
  world.disk(x).set_faults(f);
  world.run_for(20ms);
  EXPECT_EQ(world.restarts_requested(x), 1u);
  world.disk(x).set_faults(DiskFaults{});
  world.run_for(200ms);
  EXPECT_TRUE(world.is_up(x));
  EXPECT_EQ(starts, 2);
}

TEST(SimWorld, LogLinesCarryVirtualTimeNodeTaskAndAttributes) {
  SimWorld world(7);
  int starts = 0;
  NodeId x = world.add_node(
      "x", [&starts](Env& env) { return std::make_unique<CounterApp>(env, &starts); });
  world.clock(x).set_offset_ns(1'000'000'000);
  world.start(x);
  world.run_for(10ms);
  const auto& lines = world.log_ring(x).lines();
  ASSERT_FALSE(lines.empty());
  auto j = nlohmann::json::parse(lines.front());
  EXPECT_EQ(j["s"], "I");
  EXPECT_EQ(j["c"], "test");
  EXPECT_EQ(j["id"], 99001);
  EXPECT_EQ(j["ctx"], "count");
  EXPECT_EQ(j["msg"], "started");
  EXPECT_EQ(j["attr"]["size"], 0);
  // Virtual wall time: the simulation epoch plus the node's one-second offset.
  EXPECT_EQ(j["t"].get<std::string>().substr(0, 20), "2026-01-01T00:00:01.");
}

}  // namespace
}  // namespace quire
