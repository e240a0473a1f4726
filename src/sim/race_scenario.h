// The directed race scenario (`quire chaos race`): the exact sequence of the seed bug
// report, forced rather than waited for.
//
//  1. A primary, one standby and three page servers come up; clients write, the standby
//     follows and installs checkpoints.
//  2. The primary runs rotateActiveKEK with a long gap between its two steps: T1 commits
//     KEK vN to its in-memory keystore; a checkpoint is taken inside the gap, so it
//     carries the keystore of vN-1; T2 writes vN into the log.
//  3. The standby applies the vN log entry (its keystore is now newer than the
//     checkpoint's), with pick-ups held meanwhile so the checkpoint is still waiting.
//  4. Pick-ups resume. As the pick-up of that checkpoint starts, the standby's preferred
//     page server is killed (kill_standby_page_server); it restarts later.
//  5. Writes, KEK and CMK rotations and checkpoints go on for a while, then the run
//     heals and checks: no node aborted, every read matched the model at its ts,
//     installedCheckpointLsn and the keystore version never went backwards, and the
//     standby converged (same applied ts, the latest checkpoint installed, same content).
//
// Under accept, skip and resync it passes; under abort the standby aborts on the stale
// keystore, as in the report, and the run fails naming that pick-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/pickup.h"
#include "repl/standby.h"
#include "sim/scenario_report.h"

namespace quire {

struct RaceOptions {
  uint64_t seed = 1;
  PickupPolicy policy = PickupPolicy::kAccept;
  Nanos chaos_phase = Nanos(std::chrono::seconds(20));  // writes and rotations after the race
};

struct RaceReport : ScenarioReport {
  RaceReport() { scenario = "race"; }
  // The race itself.
  bool race_reached = false;  // the checkpoint carried vN-1 and the standby held vN
  uint64_t race_checkpoint_lsn = 0;
  uint64_t race_checkpoint_keystore_version = 0;
  uint64_t standby_keystore_version_at_pickup = 0;
  std::string race_pickup_result;
};

RaceReport run_race(const RaceOptions& options);

// The report as JSON (the fields of the issue, plus the race's details).
std::string race_report_json(const RaceReport& r);
// A readable summary.
std::string race_report_text(const RaceReport& r);

}  // namespace quire
