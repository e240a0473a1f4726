// `quire chaos real`: the kek chaos scenario (docs/chaos.md) on real processes. It starts a
// local cluster with the `quire cluster` code (its own directory and a free base port),
// then runs at once, for the chaos phase:
//   - the workload (chaos_workload.h): concurrent RESP clients writing unique values, every
//     op recorded with start, end and outcome;
//   - the rotation driver (chaos_rotation.h): KEK rotations with a gap, CMK rotations,
//     checkpoints (some inside the gaps: the report's race);
//   - the nemesis (chaos_nemesis.h): the seed's fault schedule (chaos_schedule.h) as real
//     faults on real processes;
//   - the status probe (chaos_probe.h), and a progress line every kProgressEvery.
// Then it heals, waits for a primary and every standby SECONDARY (kReadyWaitMax), lets the
// workload run kAfterHeal more, stops it, takes a last checkpoint, waits until every
// standby applied the primary's timestamp and installed its latest checkpoint
// (kConvergeWaitMax), reads every node's content, and runs the checkers
// (chaos_checkers.h): abort, lost_write, read, monotonic, convergence, plaintext.
// A compute node crash (policy abort's SIGABRT) ends the chaos phase early: the run has
// failed, and the time from the start of the chaos phase to the crash is reported.
// On every way out the cluster is stopped (stop_cluster, then SIGKILL by pid whatever is
// left), unless `keep`. The seed fixes the plan; real timing does not replay bit for bit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cluster/chaos_checkers.h"
#include "cluster/chaos_nemesis.h"
#include "cluster/chaos_plant.h"
#include "cluster/chaos_schedule.h"
#include "engine/pickup.h"

namespace quire::cluster {

inline constexpr auto kProgressEvery = std::chrono::seconds(5);
inline constexpr auto kStartWaitMax = std::chrono::seconds(90);
inline constexpr auto kReadyWaitMax = std::chrono::seconds(90);
inline constexpr auto kAfterHeal = std::chrono::seconds(3);
inline constexpr auto kConvergeWaitMax = std::chrono::seconds(60);
inline constexpr size_t kLogTailBytesMax = 20000;

struct ChaosRealOptions {
  uint64_t seed = 1;
  PickupPolicy policy = PickupPolicy::kAccept;
  int64_t duration_ms = 300'000;  // the chaos phase
  size_t standbys = 2;
  std::string dir;    // the cluster's directory; "" for a new temporary one
  bool keep = false;  // leave the cluster running and its directory in place
  std::string quire;  // the quire program the cluster runs
  size_t writers = 4;
  bool network = false;    // run behind fault proxies and draw network faults
  bool disk_full = false;  // tmpfs data directories for the page servers; draw full disks
  PlantedFault plant = PlantedFault::kNone;        // chaos_plant.h: a fault outside the schedule
  std::function<void(const std::string&)> say;     // progress lines
  const std::atomic<bool>* interrupted = nullptr;  // ends the chaos phase early (SIGINT)
};

struct ChaosRealReport {
  uint64_t seed = 0;
  PickupPolicy policy = PickupPolicy::kAccept;
  size_t standbys = 0;
  double duration_s = 0;     // of the chaos phase as asked
  double chaos_seconds = 0;  // as it ran (shorter when it ended early)
  double wall_seconds = 0;
  std::string dir;
  uint16_t base_port = 0;
  bool passed = false;
  std::vector<Violation> violations;
  std::string failed_checker;  // the first violation's
  uint64_t writes_acked = 0, writes_failed = 0, writes_unknown = 0, writes_lost = 0;
  uint64_t reads_checked = 0, reads_refused = 0;
  uint64_t rotations = 0, rotation_failures = 0, cmk_rotations = 0;
  uint64_t checkpoints_written = 0, checkpoints_in_gap = 0;
  std::map<std::string, uint64_t> pickups;  // summed over every node incarnation
  std::map<std::string, uint64_t> chaos;    // events that ran, by kind
  uint64_t failovers = 0, terms_max = 0;
  uint64_t page_server_bytes_scanned = 0;
  uint64_t keys_final = 0;  // on the primary at the end
  // Page-server log lines saying the disk was full (log id 30023, at most one per 10 s per
  // server incarnation): full disks that really refused writes.
  uint64_t no_space_log_lines = 0;
  RealChaosPlan plan;
  std::vector<ExecutedEvent> schedule;
  std::string crashed_node;  // the first compute node that crashed, and when
  double crash_after_s = -1;
  std::string failing_node;  // whose log tail failure_log holds
  std::string failure_log;
  std::string rerun;    // the command that runs the same seed again
  std::string planted;  // what --plant did ("" when nothing was planted)
  // A failed run in a temporary directory keeps DIR/logs (and cluster.json), not the data.
  std::string logs_kept;
};

// The plan request the run draws its plan from (the command prints the same plan first).
PlanRequest plan_request(const ChaosRealOptions& options);
ChaosRealReport run_chaos_real(const ChaosRealOptions& options);

std::string chaos_real_report_text(const ChaosRealReport& r);
std::string chaos_real_report_json(const ChaosRealReport& r);
// The schedule as it ran, one line per event.
std::string chaos_real_schedule_text(const std::vector<ExecutedEvent>& schedule);

}  // namespace quire::cluster
