#include "runtime/real/blocking_worker.h"

#include <utility>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "runtime/scheduler.h"

namespace quire {

struct BlockingWorker::Job {
  std::function<Status()> call;
  Status result;
  bool done = false;  // loop thread only
  SlotRef waiter;     // loop thread only
};

struct BlockingWorker::Shared {
  Shared(asio::io_context& io_in, Scheduler& scheduler_in) : io(io_in), scheduler(scheduler_in) {}

  // Worker thread: runs jobs until told to stop.
  void run() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mu);
        ready.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      Status result = job->call();
      job->call = nullptr;  // what it captured (a descriptor) goes now, on this thread
      {
        std::lock_guard lock(mu);
        calls_run++;
      }
      Scheduler* s = &scheduler;
      asio::post(io, [job, s, result = std::move(result)]() mutable {
        job->result = std::move(result);
        job->done = true;
        s->wake(job->waiter, Status());  // a stale ref (the task gave up) is a no-op
      });
    }
  }

  asio::io_context& io;
  Scheduler& scheduler;
  mutable std::mutex mu;
  std::condition_variable ready;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  size_t calls_run = 0;
};

BlockingWorker::BlockingWorker(RealLoop& loop)
    : loop_(loop), shared_(std::make_shared<Shared>(loop.io(), loop.scheduler())) {
  thread_ = std::thread([shared = shared_] { shared->run(); });
}

BlockingWorker::~BlockingWorker() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
    shared_->queue.clear();
  }
  shared_->ready.notify_all();
  thread_.join();
}

size_t BlockingWorker::calls_run() const {
  std::lock_guard lock(shared_->mu);
  return shared_->calls_run;
}

Task<Status> BlockingWorker::run(std::function<Status()> call) {
  auto job = std::make_shared<Job>();
  job->call = std::move(call);
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->queue.size() >= kQueuedMax) {
      co_return Status(Code::kBusy, "too many blocking calls queued")
          .with("queued_max", kQueuedMax);
    }
    shared_->queue.push_back(job);
  }
  shared_->ready.notify_one();
  // The completion is posted to this loop, so it cannot run before this task has parked.
  // g++ 12: the register callable captures a plain pointer (see scheduler.h).
  Job* pending = job.get();
  Status waited = co_await park_until(loop_.scheduler(), Deadline::never(),
                                      [pending](SlotRef ref) { pending->waiter = ref; });
  if (!waited.is_ok()) co_return waited;
  QUIRE_ASSERT(job->done);  // only the completion wakes the wait with OK
  co_return std::move(job->result);
}

}  // namespace quire
