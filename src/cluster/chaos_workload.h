// The real chaos harness's client side: finding the primary, and the workload of
// concurrent RESP clients whose every operation is recorded (chaos_history.h).
//
// Writers (one thread each, client c): 15% reads of any client's hot key through the node
// they believe is the primary, 40% writes of one of their own hot keys, 45% writes of a new
// key of their own (written once). Each op is timed and classified; a client that hears
// READONLY, MASTERDOWN or LOADING, or loses its connection, looks for the primary again.
// Readers (one thread per compute node): reads of hot keys on that node whatever its role;
// refusals are not recorded. Every op waits at most kWriteTimeout / kReadTimeout.
// Writers are paced (kWriterOpInterval). The history is bounded: kHistoryOpsMax in all; a
// client whose share is full stops.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "cluster/chaos_history.h"
#include "cluster/resp_client.h"
#include "cluster/stop_signal.h"

namespace quire::cluster {

inline constexpr auto kWriteTimeout = std::chrono::milliseconds(3000);
inline constexpr auto kReadTimeout = std::chrono::milliseconds(1000);
inline constexpr auto kConnectTimeout = std::chrono::milliseconds(500);
inline constexpr auto kLocateTimeout = std::chrono::milliseconds(300);
inline constexpr size_t kHistoryOpsMax = 4'000'000;
// A writer starts an op at most this often (about 200 ops/s each): enough to keep every
// commit group busy, and a 300 s run's history and page-server data stay small.
inline constexpr auto kWriterOpInterval = std::chrono::milliseconds(5);

// Which compute node serves as primary now: asks every node (QUIRE.STATUS) and picks the
// serving primary of the highest term. Caches the answer for kLocateCache; thread-safe.
class PrimaryLocator {
 public:
  static constexpr auto kLocateCache = std::chrono::milliseconds(200);
  explicit PrimaryLocator(std::vector<std::string> node_addresses)
      : addresses_(std::move(node_addresses)) {}
  // The node's index; nullopt when no node says it serves as primary.
  std::optional<size_t> find();
  // Forget the cached answer (a client heard the node is not the primary).
  void invalidate();
  // Sends `args` to the primary (a new connection each round) until `accept` takes its
  // reply; after anything else forgets the primary and sleeps `poll`. Unavailable, naming
  // the last failure, when `wait` passes.
  struct Answer {
    size_t index = 0;  // the node that answered
    RespReply reply;
  };
  Result<Answer> command_until(const std::vector<std::string>& args,
                               const std::function<bool(const RespReply&)>& accept,
                               std::chrono::milliseconds wait, std::chrono::milliseconds poll,
                               std::chrono::milliseconds command_timeout);
  const std::vector<std::string>& addresses() const { return addresses_; }

 private:
  std::vector<std::string> addresses_;
  std::mutex mu_;
  std::optional<size_t> cached_;
  std::chrono::steady_clock::time_point cached_at_{};
};

struct WorkloadCounts {
  std::atomic<uint64_t> writes_ok{0};
  std::atomic<uint64_t> writes_failed{0};
  std::atomic<uint64_t> writes_unknown{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> reads_refused{0};
};

class Workload {
 public:
  Workload(PrimaryLocator& locator, size_t writers, uint64_t seed,
           std::chrono::steady_clock::time_point t0)
      : locator_(locator), writers_(writers), seed_(seed), t0_(t0) {}
  ~Workload() { stop(); }

  void start();
  // Stops every client and waits for them (each ends within its op timeout).
  void stop();
  // Every op of every client (after stop()).
  std::vector<Op> history() const;
  const WorkloadCounts& counts() const { return counts_; }

 private:
  void run_writer(uint32_t client, std::vector<Op>& ops);
  void run_reader(uint16_t node, std::vector<Op>& ops);
  int64_t now_us() const;

  PrimaryLocator& locator_;
  size_t writers_;
  uint64_t seed_;
  std::chrono::steady_clock::time_point t0_;
  StopSignal stop_;
  WorkloadCounts counts_;
  std::vector<std::vector<Op>> ops_;  // one per thread
  std::vector<std::thread> threads_;
};

}  // namespace quire::cluster
