// StopSignal: how the real chaos harness's threads are told to stop, and sleep until
// then: every wait is bounded by its own deadline and ends early once stop() is called.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace quire::cluster {

class StopSignal {
 public:
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }
  // Sleeps for `d`; false when stop() came first (or had already come).
  bool sleep_for(std::chrono::steady_clock::duration d) const {
    return sleep_until(std::chrono::steady_clock::now() + d);
  }
  bool sleep_until(std::chrono::steady_clock::time_point t) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, t, [this] { return stopped_; });
    return !stopped_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace quire::cluster
