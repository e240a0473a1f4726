// The kek chaos scenario (`quire chaos kek`), after the report's pali_chaos_kek.js: a
// replica set of K+1 compute nodes elected through a simulated coordinator (one primary,
// K standbys at a time; ReplicaSetSim's elected mode) and three page servers under a
// client workload with unique values, a rotation driver (rotateActiveKEK every few
// seconds, rotateCMK now and then), and chaos drawn from the seed.
//
// Each seed first draws its fault mix (swarm testing: which fault kinds it uses at all,
// and how hard; every mix holds at least one primary fault), then an explicit schedule of
// fault events. The schedule is the unit of replay and shrinking: a run is a function of
// (seed, policy, standbys, duration, schedule), so a shrunk schedule written to a replay
// file runs the same way again.
//
// Fault kinds ("the primary" and "standby i" are the roles when the event fires):
//   kill_standby_page_server  the page server a standby prefers, now or exactly as that
//                             standby's next pick-up starts; back later with its disk
//                             intact, empty, or stale (an older snapshot)
//   rapid_seal_burst          tens of seals within milliseconds (each prompts a checkpoint)
//   page_server_kill          any page server, back later (intact, empty or stale)
//   partition                 symmetric, one-way, or isolating one node, for a while
//   message_faults            a window of message delay, loss and duplication
//   disk_faults               a window of EIO on one page server's disk (it fail-stops and
//                             restarts; unsynced writes are lost, tails torn)
//   clock_skew                one node's wall clock jumps and drifts
//   standby_restart           a standby crashes and restarts later
//   primary_kill              the primary crashes; a standby takes over (or the node
//                             itself, restarted later as a standby, wins again)
//   primary_pause             the primary stops (as SIGSTOP) just after a client write was
//                             handed to it, for longer than its lease, then resumes: a
//                             standby took over meanwhile, and the resumed node must
//                             acknowledge nothing, step down and follow
//   primary_partition         the primary is cut from the coordinator only (it must stop
//                             acknowledging before its lease can expire; a standby takes
//                             over), or from the page servers only (it keeps its lease and
//                             cannot write), for a while
//   coordinator_kill          the coordinator crashes and restarts later (from its disk);
//                             meanwhile no lease is renewed, so the primary steps down and
//                             an election follows the restart
// A primary fault that finds no serving primary is skipped (and not counted). At most one
// page server is impaired (down, wiped, stale, isolated, failing its disk) at a time: the
// fault model keeps a quorum intact, so no acknowledged write may be lost. A server back
// empty or stale lacks acknowledged records until it caught up, so no fault that forces a
// take-over starts within 15 s of such a restart, and such a restart is made intact within
// 10 s of a take-over-forcing fault's end (a take-over reads N - W + 1 servers).
//
// Checkers, on every run: no node aborts; no majority-acknowledged write is lost, across
// every failover; every read on any node equals the reference model at its timestamp;
// installedCheckpointLsn and the keystore version never decrease within a node's life and
// role (a primary that steps down rebuilds from a fresh engine); no write is acknowledged
// under a term after a higher term fenced the page servers or acknowledged a write
// (split_brain); once faults heal, a primary serves and every other node converges within
// a bound (same applied ts, the latest checkpoint installed, same content as the primary
// and the model); no plaintext canary and no raw key bytes on any page server disk (every
// byte every disk was asked to write, including torn and later deleted files); writes are
// not acknowledged for longer than a bound while the coordinator and a quorum of page
// servers are up and some compute node reaches both (stall).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/pickup.h"
#include "repl/standby.h"
#include "sim/replica_set_sim.h"
#include "sim/scenario_report.h"

namespace quire {

enum class FaultKind : uint8_t {
  kKillStandbyPageServer = 1,
  kRapidSealBurst = 2,
  kPageServerKill = 3,
  kPartition = 4,
  kMessageFaults = 5,
  kDiskFaults = 6,
  kClockSkew = 7,
  kStandbyRestart = 8,
  kPrimaryKill = 9,
  kPrimaryPause = 10,
  kPrimaryPartition = 11,
  kCoordinatorKill = 12,
  kDiskFull = 13,  // opt-in (KekOptions::extra_kinds): not in kAllFaultKinds
};
inline constexpr FaultKind kAllFaultKinds[] = {
    FaultKind::kKillStandbyPageServer,
    FaultKind::kRapidSealBurst,
    FaultKind::kPageServerKill,
    FaultKind::kPartition,
    FaultKind::kMessageFaults,
    FaultKind::kDiskFaults,
    FaultKind::kClockSkew,
    FaultKind::kStandbyRestart,
    FaultKind::kPrimaryKill,
    FaultKind::kPrimaryPause,
    FaultKind::kPrimaryPartition,
    FaultKind::kCoordinatorKill,
};
// The kinds a seed's mix is drawn from. Kinds added later are opt-in (KekOptions::
// extra_kinds, `quire chaos kek --add-fault`), so every seed keeps the mix and schedule it
// always had.
// The faults of the primary's role and of the coordinator (one in every drawn mix).
bool is_primary_fault(FaultKind k);
std::string_view fault_kind_name(FaultKind k);
std::optional<FaultKind> parse_fault_kind(std::string_view name);

// How a killed page server comes back.
enum class RestartDisk : uint8_t { kIntact = 0, kEmpty = 1, kStale = 2 };
// The shape of a partition.
enum class PartitionShape : uint8_t { kSymmetric = 0, kOneWay = 1, kIsolate = 2 };
// What a primary_partition cuts the primary from.
enum class PrimaryCut : uint8_t { kFromCoordinator = 0, kFromPageServers = 1 };

// One scheduled fault. In replay files `restart`, `shape` and `cut` are one field, "mode"
// (the shape for partitions, the cut for primary partitions, else the restart), and
// `duplicate_rate` is "rate2". Node indexes: page servers 0..N-1; for partitions and clock
// skew, nodes are numbered primary = 0, standbys 1..K, page servers K+1..K+N, by their
// roles when the event fires (with no primary serving, the last one is 0).
struct FaultEvent {
  int64_t at_ms = 0;  // after the chaos phase began
  FaultKind kind = FaultKind::kRapidSealBurst;
  uint32_t target = 0;      // server, standby or node index (see above)
  uint32_t other = 0;       // the second node of a symmetric or one-way partition
  int64_t duration_ms = 0;  // down, paused, partitioned, or the window's length
  // kill_standby_page_server, page_server_kill: how the server comes back.
  RestartDisk restart = RestartDisk::kIntact;
  PartitionShape shape = PartitionShape::kSymmetric;  // partition
  PrimaryCut cut = PrimaryCut::kFromCoordinator;      // primary_partition
  bool at_pickup = false;     // kill_standby_page_server: as the standby's next pick-up starts
  double rate = 0;            // loss (message faults), EIO probability (disk), drift ppm (skew)
  double duplicate_rate = 0;  // message faults: the chance a message is delivered twice
  int64_t amount_ms = 0;      // extra latency (message faults), clock jump (skew)
  uint32_t count = 0;         // seals in a burst
  friend bool operator==(const FaultEvent&, const FaultEvent&) = default;
};

// What a seed draws before its schedule.
struct FaultMix {
  std::vector<FaultKind> kinds;   // the kinds this seed uses
  int64_t mean_interval_ms = 0;   // mean time between fault events
  int64_t rotation_every_ms = 0;  // rotateActiveKEK period
  int cmk_every = 0;              // a CMK rotation every this many KEK rotations
  int64_t rotation_gap_max_ms = 0;
  int64_t checkpoint_every_ms = 0;
  // Standbys long-poll the log with this wait (StandbyOptions::log_wait, as real nodes
  // do), or poll it (0).
  int64_t standby_log_wait_ms = 0;
  friend bool operator==(const FaultMix&, const FaultMix&) = default;
};

struct KekOptions {
  uint64_t seed = 1;
  PickupPolicy policy = PickupPolicy::kAccept;
  Nanos duration = Nanos(std::chrono::seconds(300));  // the chaos phase
  size_t standbys = 2;
  // Replay: run this mix and schedule instead of drawing them from the seed.
  std::optional<FaultMix> mix;
  std::optional<std::vector<FaultEvent>> schedule;
  // Kinds added to the seed's drawn mix (not to a replayed one), e.g. kDiskFull.
  std::vector<FaultKind> extra_kinds;
  // Test-only planted bugs, so each checker can be shown to catch its fault.
  bool plant_drop_acked_write = false;      // the primary acknowledges one write it never logs
  bool plant_plaintext_page = false;        // one checkpoint page is written unencrypted
  bool plant_ignore_primary_lease = false;  // a primary acknowledges without its lease
};

struct ChaosCounts {
  uint64_t kill_standby_page_server = 0;
  uint64_t rapid_seal_burst = 0;
  uint64_t page_server_kills = 0;
  uint64_t partitions = 0;
  uint64_t message_faults = 0;
  uint64_t disk_faults = 0;
  uint64_t disk_full = 0;
  uint64_t clock_skews = 0;
  uint64_t standby_restarts = 0;
  // Primary faults that found a serving primary (coordinator kills: a running coordinator).
  uint64_t primary_kill = 0;
  uint64_t primary_pause = 0;
  uint64_t primary_partition = 0;
  uint64_t coordinator_kill = 0;
};

struct KekReport : ScenarioReport {
  KekReport() { scenario = "kek"; }
  size_t standbys = 0;
  double duration_s = 0;  // of the chaos phase
  uint64_t page_server_bytes_scanned = 0;
  double longest_stall_seconds = 0;  // while a quorum was up
  uint64_t failovers = 0;            // times a new term's primary served after the first
  uint64_t terms_max = 0;            // the highest term that served or fenced
  // Writes the page servers refused for space during disk_full windows, and the fail-stop
  // restarts page servers asked for (a full disk must cause none).
  uint64_t no_space_refusals = 0;
  uint64_t page_server_fail_stops = 0;
  ChaosCounts chaos;
  FaultMix mix;
  std::vector<FaultEvent> schedule;
  // The checker of the first violation (nullopt and "" when passed).
  std::optional<Checker> failed_checker_id;
  std::string failed_checker;
  std::string failing_node;  // whose log ring failure_logs holds
  std::string all_logs;      // every node's log ring, when it failed (for --log)
};

// The seed's mix and schedule (what a run without a replay uses).
FaultMix draw_fault_mix(uint64_t seed);
// The run's mix: the replayed one, else the seed's with the extra kinds.
FaultMix kek_fault_mix(const KekOptions& options);
std::vector<FaultEvent> draw_schedule(uint64_t seed, const FaultMix& mix, Nanos duration,
                                      size_t standbys);

KekReport run_kek(const KekOptions& options);

// One line: the mix's kinds, fault interval, rotation and checkpoint periods.
std::string fault_mix_text(const FaultMix& m);

std::string kek_report_json(const KekReport& r);
std::string kek_report_text(const KekReport& r);

// Replay files: {seed, policy, standbys, duration_s, mix, schedule, failed_checker}.
std::string replay_file_json(const KekReport& r);
struct ReplaySpec {
  KekOptions options;
  std::string failed_checker;
};
// InvalidArgument naming what does not parse.
Result<ReplaySpec> parse_replay_file(std::string_view text);

// Delta debugging (ddmin) over the schedule: the smallest schedule (1-minimal) whose run
// still fails the same checker as `failing`. Calls `progress` after each trial run.
KekReport shrink_kek(const KekOptions& options, const KekReport& failing,
                     const std::function<void(size_t trials, size_t events)>& progress = {});

}  // namespace quire
