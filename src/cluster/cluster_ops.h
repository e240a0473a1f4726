// `quire cluster start|status|stop|kill`: what each does to a local cluster (the command
// line and printing are in cli/cluster_cmd.cc).
#pragma once

#include <chrono>
#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cluster/cluster_spec.h"
#include "cluster/supervisor.h"

namespace quire::cluster {

inline constexpr auto kStartWaitDefault = std::chrono::seconds(60);
inline constexpr auto kStatusQueryTimeout = std::chrono::milliseconds(1000);

// What a compute node says of itself (QUIRE.STATUS), when it answered.
struct NodeReport {
  bool answered = false;
  std::string error;  // why it did not answer
  std::string role;   // "primary", "standby"
  std::string state;  // the primary's or standby's state ("SECONDARY", ...)
  uint64_t term = 0;
  uint64_t applied_ts = 0;
  uint64_t applied_lsn = 0;
  uint64_t checkpoint_lsn = 0;
  uint64_t keystore_version = 0;
  uint64_t step_downs = 0;                  // times this process's primary stepped down
  std::map<std::string, uint64_t> pickups;  // a standby's pick-up counters, by name
  std::string primary;  // the primary this node knows of (its election's leader), or ""
  // A primary that acknowledges writes, or a SECONDARY standby that knows the primary (so
  // it refuses writes with READONLY, naming it, rather than MASTERDOWN).
  bool serving() const;
};

struct ProcessReport {
  ProcessState process;            // from the supervisor's state
  std::optional<NodeReport> node;  // compute nodes only
  int64_t lag_lsn = -1;            // a standby's applied LSN behind the primary's; -1 when unknown
};

struct ClusterReport {
  std::optional<int> supervisor_pid;  // when running
  std::vector<ProcessReport> processes;
};

// A base port P with P..P+count-1 free on loopback now, drawn at random (not from any
// seed: runs may overlap) below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), where no outgoing connection can take one
// of them between this check and the bind; above the range when there is no room below.
Result<uint16_t> pick_base_port(uint16_t count);

// The last `bytes` bytes of the file at `path` ("" when it cannot be read).
std::string file_tail(const std::string& path, size_t bytes);

// Asks the node at `address` for QUIRE.STATUS (after AUTH with `password`, unless empty).
NodeReport query_node(const std::string& address, std::chrono::milliseconds timeout,
                      const std::string& password = "");

// The supervisor's view of every process, and each compute node's own report.
Result<ClusterReport> cluster_status(const ClusterSpec& spec);

// Whether the cluster serves: one primary serving and every other compute node a
// SECONDARY standby. When not, `why` names what is not up.
bool cluster_ready(const ClusterReport& report, std::string* why);

struct StartOutcome {
  bool already_running = false;
  int supervisor_pid = 0;
};
// Starts the supervisor in the background (or, when one runs, asks it to start every
// process that is down), then waits until cluster_ready or `wait` passes (Unavailable,
// naming what did not come up), or the supervisor ended (Unavailable).
Result<StartOutcome> start_cluster(const ClusterSpec& spec, const std::string& quire,
                                   std::chrono::seconds wait);

// Stops the supervisor (which stops every process) and waits for it. When no supervisor
// runs but processes it started are still alive (it was killed), stops those by pid.
Status stop_cluster(const ClusterSpec& spec);

// Sends `signal` to process `name`. NotFound for an unknown name, Unavailable when it is
// not running.
Status kill_process(const ClusterSpec& spec, const std::string& name, int signal);

}  // namespace quire::cluster
