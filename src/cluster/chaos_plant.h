// Planted faults for `quire chaos real --plant`: a fault the schedule does not know of, put
// on the real cluster after the chaos phase (healed, quiet, last checkpoint taken) and
// before the checkers run, so that a run shows its checker failing on a real process, a
// real page server's directory and a real write:
//   - abort: SIGKILL one page server outside the schedule (it stays down; W of N still
//     serve), so the supervisor records an exit the nemesis did not cause;
//   - lost_write: DEL, on the primary, the key of the newest acknowledged write, through a
//     client the workload's history does not know of: an acknowledged write dropped;
//   - plaintext: a page-sized file holding a value the workload wrote, in clear, in one page
//     server's data directory.
// A planted run must fail, and on that checker alone; scripts/chaos-real-checks.sh checks so.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cluster/chaos_history.h"
#include "cluster/cluster_spec.h"

namespace quire::cluster {

enum class PlantedFault { kNone, kAbort, kLostWrite, kPlaintext };

// "abort", "lost_write", "plaintext" (the checker each must trip); "" is kNone.
Result<PlantedFault> parse_planted_fault(std::string_view name);
std::string_view planted_fault_name(PlantedFault f);

// Plants `f` on the cluster. `history` is the workload's; `seed` picks the page server.
// Returns what was done, one line for the report.
Result<std::string> plant_fault(PlantedFault f, const ClusterSpec& spec,
                                const std::vector<Op>& history, uint64_t seed);

}  // namespace quire::cluster
