// The supervisor of a local cluster (`quire cluster supervise DIR`, started in the
// background by `quire cluster start`). It owns every process of the cluster as its
// children:
//  - starts them in order (etcd, page servers, compute nodes), each once the previous
//    kind's ports accept connections (or after kPortWaitMax, logged);
//  - restarts a process that exits 75 (a fail-stop: "restart me") after a backoff that
//    doubles from kBackoffMin to kBackoffMax, and is reset by kBackoffResetAfter of uptime;
//  - leaves down a process that ended any other way (killed by a fault, or failed with 1):
//    it is reported, and SIGHUP (what a second `quire cluster start` sends) starts every
//    process that is down;
//  - on SIGTERM or SIGINT stops the compute nodes, then the page servers, then etcd: SIGTERM
//    (and SIGCONT, in case it was stopped), then SIGKILL after kStopGrace.
// Each child's stdout and stderr append to DIR/logs/NAME.log. DIR/run/state.json is
// rewritten (temp file, rename) on every change; DIR/run/supervisor.lock is held (flock)
// for the supervisor's life, so a second supervisor refuses to run.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cluster/cluster_spec.h"

namespace quire::cluster {

inline constexpr auto kBackoffMin = std::chrono::milliseconds(200);
inline constexpr auto kBackoffMax = std::chrono::seconds(10);
inline constexpr auto kBackoffResetAfter = std::chrono::seconds(30);
inline constexpr auto kStopGrace = std::chrono::seconds(10);
inline constexpr auto kPortWaitMax = std::chrono::seconds(15);

// One process as the supervisor last saw it (DIR/run/state.json).
struct ProcessState {
  std::string name;
  ProcessKind kind = ProcessKind::kNode;
  std::string address;
  int pid = 0;  // of the running incarnation; 0 when down
  bool alive = false;
  uint64_t starts = 0;
  uint64_t restarts = 0;  // automatic, after exit 75
  std::string last_exit;  // "exit 75", "signal 9 (Killed)", ... ("" when it never ended)
};

struct SupervisorState {
  int supervisor_pid = 0;
  bool stopping = false;
  std::vector<ProcessState> processes;
};

// Runs the supervisor in this process until SIGTERM or SIGINT; returns the exit code (0,
// or 1 when it cannot run: the lock is held, the spec is unreadable). `quire` is the quire
// program's path.
int run_supervisor(const ClusterSpec& spec, const std::string& quire);

// DIR/run/state.json. NotFound when it does not exist.
Result<SupervisorState> read_state(const ClusterSpec& spec);
// Whether a supervisor holds DIR/run/supervisor.lock now, and its pid.
std::optional<int> running_supervisor(const ClusterSpec& spec);

}  // namespace quire::cluster
