// The supervisor of a local cluster (`quire cluster supervise DIR`, started in the
// background by `quire cluster start`). It owns every process of the cluster as its
// children:
//  - starts them in order (etcd, page servers, compute nodes), each once the previous
//    kind's ports accept connections (or after kPortWaitMax, logged);
//  - restarts a process that exits 75 (a fail-stop: "restart me") after a backoff that
//    doubles from kBackoffMin to kBackoffMax, and is reset by kBackoffResetAfter of uptime;
//  - leaves down a process that ended any other way (killed by a fault, or failed with 1):
//    it is reported, and SIGHUP (what a second `quire cluster start` sends) starts every
//    process that is down (`start` sends it again every 2 s while it waits and something
//    is down: a process still ending at the first one was not down yet);
//  - on SIGTERM or SIGINT stops the compute nodes, then the page servers, then etcd: SIGTERM
//    (and SIGCONT, in case it was stopped), then SIGKILL after kStopGrace.
// Each child's stdout and stderr append to DIR/logs/NAME.log. DIR/run/state.json is
// rewritten (temp file, rename) on every change, with each process's start time and the
// machine's boot id, so that a pid is taken for the cluster's only while it names the
// same process (a pid is reused once its process ended). DIR/run/supervisor.lock is held
// (an fcntl write lock) for the supervisor's life, so a second supervisor refuses to run;
// others ask who holds it (F_GETLK) without taking it.
// The supervisor and every process it starts begin with default signal handling (SIGCHLD
// included: one ignored by whoever ran `quire cluster start` would hide its children's
// ends) and no descriptors but 0, 1 and 2.
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
  uint64_t restarts = 0;    // automatic, after exit 75
  std::string last_exit;    // "exit 75", "signal 9 (Killed)", ... ("" when it never ended)
  uint64_t start_time = 0;  // of the incarnation at `pid`: /proc/PID/stat's starttime
};

struct SupervisorState {
  int supervisor_pid = 0;
  bool stopping = false;
  std::string boot_id;  // the machine's boot when the state was written
  std::vector<ProcessState> processes;
};

// Runs the supervisor in this process until SIGTERM or SIGINT; returns the exit code (0,
// or 1 when it cannot run: the lock is held, the spec is unreadable). `quire` is the quire
// program's path.
int run_supervisor(const ClusterSpec& spec, const std::string& quire);

// In a forked child, before exec: default handling for every signal the supervisor or
// its caller may have changed, nothing blocked, no descriptor above 2 (async-signal-safe).
void reset_for_exec();

// DIR/run/state.json. NotFound when it does not exist.
Result<SupervisorState> read_state(const ClusterSpec& spec);
// Writes DIR/run/state.json (a temp file renamed over it; the old one stays when writing
// fails).
Status write_state(const ClusterSpec& spec, const SupervisorState& state);
// Whether `p` (as `state` recorded it) still runs: alive in the state, written during
// this boot, and its pid's process started when the state says. Never a reused pid.
bool still_runs(const SupervisorState& state, const ProcessState& p);
// Whether `pid` runs. A zombie (ended, not yet reaped by its parent) does not.
bool pid_alive(int pid);
// /proc/PID/stat's starttime (clock ticks after boot); nullopt when the pid is gone.
std::optional<uint64_t> process_start_time(int pid);
// /proc/sys/kernel/random/boot_id ("" when unreadable).
std::string current_boot_id();
// Whether a supervisor holds DIR/run/supervisor.lock now, and its pid.
std::optional<int> running_supervisor(const ClusterSpec& spec);

}  // namespace quire::cluster
