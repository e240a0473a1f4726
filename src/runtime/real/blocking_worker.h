// BlockingWorker: one thread that runs a loop's blocking system calls (a file's fdatasync)
// so the loop goes on serving its network meanwhile. A page server's event loop would
// otherwise stop for the length of every sync (p99 29 ms on a shared virtual disk, stalls
// of 50-90 ms seen): no log read, no new request, not even the commit point of a write
// that arrived (docs/figures.md, "The lag: one server's sync, and polling").
//
// run() hands a call to the worker and parks the awaiting task; the result is handed back
// to the loop thread (asio::post), which wakes the task. Calls run one at a time, in the
// order given. A task woken early (Cancelled: nothing in a page server cancels a store
// write, so this is a shutdown) gets Cancelled while its call still runs; the call owns
// what it needs (a file's descriptor is shared with it), and its late result is dropped.
//
// Bounds: at most kQueuedMax calls wait for the worker; run() beyond it answers Busy.
//
// Destroy it on the loop's thread before the loop. The destructor lets the call that is
// running finish (a sync cannot be interrupted), drops the queued ones and joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "runtime/real/real_loop.h"
#include "runtime/task.h"

namespace quire {

class BlockingWorker {
 public:
  static constexpr size_t kQueuedMax = 1024;

  explicit BlockingWorker(RealLoop& loop);
  ~BlockingWorker();
  BlockingWorker(const BlockingWorker&) = delete;
  BlockingWorker& operator=(const BlockingWorker&) = delete;

  // Runs `call` on the worker thread and returns its status on the loop thread. Call it
  // from a task on the loop. `call` must not touch the loop's state.
  Task<Status> run(std::function<Status()> call);

  // Calls run so far (for tests).
  size_t calls_run() const;

 private:
  struct Job;
  struct Shared;
  RealLoop& loop_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace quire
