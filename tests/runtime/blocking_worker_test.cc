#include "runtime/real/blocking_worker.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "real_test_support.h"
#include "runtime/real/posix_disk.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using real_test::run_task;

class BlockingWorkerTest : public ::testing::Test {
 protected:
  void TearDown() override { loop.scheduler().destroy_node(real_test::kTestNode); }
  RealLoop loop;
};

// The call runs on the worker's thread while the loop goes on running its tasks, and its
// status comes back to the awaiting task.
TEST_F(BlockingWorkerTest, TheLoopRunsWhileACallBlocks) {
  BlockingWorker worker(loop);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<bool> ran_elsewhere{false};
  int ticks = 0;
  bool call_done = false;
  Status result;
  auto ticker = [&]() -> Task<void> {
    while (!call_done) {
      ticks++;
      (void)co_await park_until(loop.scheduler(), loop.now() + 1ms, NoRegister{});
    }
  };
  auto caller = [&]() -> Task<void> {
    result = co_await worker.run([&] {
      ran_elsewhere = std::this_thread::get_id() != loop_thread;
      std::this_thread::sleep_for(100ms);
      return Status(Code::kIo, "the device said no");
    });
    call_done = true;
  };
  loop.scheduler().spawn(real_test::kTestNode, "ticker", ticker());
  ASSERT_TRUE(run_task(loop, caller()));
  EXPECT_TRUE(ran_elsewhere);
  EXPECT_EQ(result.code(), Code::kIo);
  EXPECT_EQ(result.message(), "the device said no");
  EXPECT_GE(ticks, 20) << "the loop stood still while the call blocked";
  EXPECT_EQ(worker.calls_run(), 1u);
}

// Calls run one at a time, in order; beyond the queue's bound run() answers Busy at once.
TEST_F(BlockingWorkerTest, CallsRunInOrderAndTheQueueIsBounded) {
  BlockingWorker worker(loop);
  std::atomic<bool> release{false};
  std::vector<int> order;  // worker thread only until every call is done
  std::vector<Status> results(BlockingWorker::kQueuedMax + 2);
  int finished = 0;
  auto call = [&](size_t i) -> Task<void> {
    results[i] = co_await worker.run([&, i] {
      while (i == 0 && !release) std::this_thread::sleep_for(1ms);
      order.push_back(static_cast<int>(i));
      return Status();
    });
    finished++;
  };
  // The first call holds the worker; kQueuedMax more fill the queue; the last is refused.
  for (size_t i = 0; i < results.size(); ++i) {
    loop.scheduler().spawn(real_test::kTestNode, "call", call(i));
    if (i == 0) {
      loop.run_until([&] { return false; }, 20ms);  // the worker takes call 0 off the queue
    }
  }
  ASSERT_TRUE(loop.run_until([&] { return finished == 1; }, 5s));
  EXPECT_EQ(results.back().code(), Code::kBusy);
  release = true;
  ASSERT_TRUE(loop.run_until([&] { return finished == static_cast<int>(results.size()); }, 10s));
  ASSERT_EQ(order.size(), results.size() - 1);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<int>(i));
  for (size_t i = 0; i + 1 < results.size(); ++i) EXPECT_TRUE(results[i].is_ok()) << i;
}

// A file's sync goes through the worker when the disk has one; the file's descriptor stays
// open for the call even when the file is closed meanwhile.
TEST_F(BlockingWorkerTest, APosixFileSyncsOnTheWorker) {
  BlockingWorker worker(loop);
  const std::string root = std::filesystem::temp_directory_path().string() + "/quire-worker-" +
                           std::to_string(::getpid());
  PosixDisk disk(root, &worker);
  Status synced;
  auto body = [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk.make_dirs("")).is_ok());
    OpenOptions o;
    o.create = true;
    auto file = co_await disk.open("f", o);
    EXPECT_TRUE(file.is_ok());
    if (!file.is_ok()) co_return;
    Bytes data(4096, 7);
    EXPECT_TRUE((co_await (*file)->append(data)).is_ok());
    synced = co_await (*file)->sync();
  };
  ASSERT_TRUE(run_task(loop, body()));
  EXPECT_TRUE(synced.is_ok()) << synced.to_string();
  EXPECT_EQ(worker.calls_run(), 1u);
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
}

}  // namespace
}  // namespace quire
