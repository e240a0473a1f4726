// The real chaos harness's status probe: every kProbeEvery it reads the supervisor's state
// (which process runs, under which pid, how the last one ended) and every compute node's
// QUIRE.STATUS. From the samples it keeps: the monotonic checker's verdicts, the current
// primary and term, failovers (a new term's primary serving after the first) and the
// highest term, the standbys' lag, the pick-up counters summed over every process
// incarnation, and the first compute node seen killed by SIGABRT (or another crash
// signal) and when.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/chaos_checkers.h"
#include "cluster/cluster_ops.h"
#include "cluster/stop_signal.h"

namespace quire::cluster {

inline constexpr auto kProbeEvery = std::chrono::milliseconds(500);
inline constexpr auto kProbeQueryTimeout = std::chrono::milliseconds(400);

struct ProbeView {
  std::string primary;  // "" when none serves
  uint64_t term = 0;
  std::vector<std::pair<std::string, int64_t>> standby_lag;  // name, LSNs behind (-1 unknown)
  uint64_t failovers = 0;
  uint64_t terms_max = 0;
  std::map<std::string, uint64_t> pickups;  // summed over every node incarnation
  std::vector<Violation> monotonic;
  // The first compute node that crashed (SIGABRT, SIGSEGV, a core dump), when.
  std::string crashed_node;
  std::string crashed_how;
  int64_t crashed_at_ms = -1;
  uint64_t samples = 0;
};

class StatusProbe {
 public:
  StatusProbe(const ClusterSpec& spec, std::chrono::steady_clock::time_point t0)
      : spec_(spec), t0_(t0) {}
  ~StatusProbe() { stop(); }
  void start();
  void stop();
  ProbeView view() const;

 private:
  void run();
  void sample_once();
  void note_crashes(const SupervisorState& state, int64_t at_ms);
  void note_node(const std::string& name, int pid, const NodeReport& r, int64_t at_us);

  ClusterSpec spec_;
  std::chrono::steady_clock::time_point t0_;
  StopSignal stop_;
  std::thread thread_;
  mutable std::mutex mu_;
  ProbeView view_;
  MonotonicTracker monotonic_;
  uint64_t primary_term_seen_ = 0;  // the term of the last primary seen serving
  // Pick-up counters of each (node, pid), the latest seen.
  std::map<std::pair<std::string, int>, std::map<std::string, uint64_t>> pickups_;
};

}  // namespace quire::cluster
