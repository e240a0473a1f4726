// Scheduler benchmarks (Google Benchmark): how many events per second the simulated
// scheduler runs. Figures, not pass/fail: run `build/release/bench/quire_runtime_bench`.
//
//   BM_SleepingTasks/1000: 1,000 tasks each sleeping a random short time in a loop; one
//                          event is one timer firing and one coroutine resumption.
//   BM_PingPong:           two tasks handing a token back and forth through wait queues;
//                          one event is one wake-up and resumption.
//   BM_RawHeapBaseline:    the same number of pushes/pops on a bare std::priority_queue,
//                          the floor any timer-driven scheduler pays.
#include <benchmark/benchmark.h>

#include <queue>

#include "runtime/executor.h"
#include "runtime/sim/sim_random.h"
#include "runtime/sync.h"

namespace quire {
namespace {

Task<void> sleeper(Executor& exec, uint64_t seed, bool& stop) {
  SimRandom rng(seed);
  while (!stop) {
    Status st = co_await exec.sleep(Nanos(1000 + rng.uniform(100000)));
    if (!st.is_ok()) co_return;
  }
}

void BM_SleepingTasks(benchmark::State& state) {
  const int tasks = static_cast<int>(state.range(0));
  uint64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Scheduler s;
    Executor exec(s, 1);
    bool stop = false;
    for (int i = 0; i < tasks; ++i) exec.spawn("sleeper", sleeper(exec, i, stop));
    uint64_t before = s.events_run();
    state.ResumeTiming();
    for (int i = 0; i < 1'000'000; ++i) s.run_next();
    events += s.events_run() - before;
    state.PauseTiming();
    stop = true;
    s.destroy_node(1);
    state.ResumeTiming();
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SleepingTasks)->Arg(1000)->Unit(benchmark::kMillisecond);

Task<void> ponger(WaitQueue& mine, WaitQueue& theirs, int& turn, int me, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    while (turn != me) {
      Status st = co_await mine.wait();
      if (!st.is_ok()) co_return;
    }
    turn = 1 - me;
    theirs.notify_one();
  }
}

void BM_PingPong(benchmark::State& state) {
  const int rounds = 500'000;
  uint64_t events = 0;
  for (auto _ : state) {
    Scheduler s;
    Executor exec(s, 1);
    WaitQueue a(s), b(s);
    int turn = 0;
    exec.spawn("ping", ponger(a, b, turn, 0, rounds));
    exec.spawn("pong", ponger(b, a, turn, 1, rounds));
    while (s.run_next()) {
    }
    events += s.events_run();
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PingPong)->Unit(benchmark::kMillisecond);

void BM_RawHeapBaseline(benchmark::State& state) {
  uint64_t ops = 0;
  for (auto _ : state) {
    std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>,
                        std::greater<>>
        q;
    SimRandom rng(1);
    for (int i = 0; i < 1000; ++i) q.push({static_cast<int64_t>(rng.uniform(100000)), i});
    for (int i = 0; i < 1'000'000; ++i) {
      auto top = q.top();
      q.pop();
      q.push({top.first + 1000 + static_cast<int64_t>(rng.uniform(100000)), top.second});
    }
    benchmark::DoNotOptimize(q.top());
    ops += 1'000'000;
  }
  state.counters["pops_per_s"] =
      benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RawHeapBaseline)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace quire

BENCHMARK_MAIN();
