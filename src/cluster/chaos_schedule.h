// The real chaos harness's plan (`quire chaos real`): what a seed draws before the run.
// The plan is a pure function of (seed, duration, standbys, page servers, network): the
// rotation driver's cadence and an explicit list of timed faults, printed before the run.
// Real processes do not replay bit for bit, but the same seed always asks for the same
// faults at the same offsets.
//
// Fault kinds (roles are the ones at the moment an event fires):
//   kill_standby_page_server  SIGKILL the page server a standby prefers (node i prefers
//                             page server i % N), now or as the standby's next pick-up
//                             starts; back after `duration_ms`, its data intact or wiped
//   rapid_seal_burst          QUIRE.SEAL `count` on the primary (each seal prompts a
//                             checkpoint)
//   page_server_kill          SIGKILL any page server; back later, intact or wiped
//   page_server_pause         SIGSTOP a page server, SIGCONT after `duration_ms`
//   primary_kill              SIGKILL the primary; back later (as a standby, or it wins)
//   primary_pause             SIGSTOP the primary past its 2 s lease, then SIGCONT
//   standby_kill              SIGKILL a standby; back later
//   etcd_kill                 SIGKILL etcd; back later (from its data directory)
//   page_server_net           the fault proxy in front of one page server delays, resets
//                             or black-holes its connections for a while
//   etcd_net                  the same in front of etcd
//   page_server_disk_full     (with `disk_full`: each page server's data directory is a
//                             tmpfs of its own) one page server's file system is shrunk to
//                             what it holds plus `count` KiB for `duration_ms` (4-12 s),
//                             then grown back: once past the room and the zeros it wrote
//                             ahead, it refuses writes (NoSpace) and keeps serving reads
//
// Rules the drawing keeps (as the simulator's nemesis does): no new fault in the first
// kQuietStart nor in the last kQuietEnd of the chaos phase; at most one page server
// impaired at a time, with a settling time after each (kSettle, kSettleWiped after a
// wiped restart), so a write quorum always holds every acknowledged write; at most one
// process down at a time (a restart asks the supervisor to start whatever is down); no
// take-over-forcing fault (primary kill or pause, etcd kill or net fault) within
// kSettleWiped of a wiped restart, and no wipe within kWipeAfterTakeover of such a fault's
// end (a take-over reads N - W + 1 servers).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quire::cluster {

enum class RealFaultKind : uint8_t {
  kKillStandbyPageServer = 1,
  kRapidSealBurst = 2,
  kPageServerKill = 3,
  kPageServerPause = 4,
  kPrimaryKill = 5,
  kPrimaryPause = 6,
  kStandbyKill = 7,
  kEtcdKill = 8,
  kPageServerNet = 9,
  kEtcdNet = 10,
  kPageServerDiskFull = 11,  // drawn only with PlanRequest::disk_full
};
inline constexpr RealFaultKind kAllRealFaultKinds[] = {
    RealFaultKind::kKillStandbyPageServer, RealFaultKind::kRapidSealBurst,
    RealFaultKind::kPageServerKill,        RealFaultKind::kPageServerPause,
    RealFaultKind::kPrimaryKill,           RealFaultKind::kPrimaryPause,
    RealFaultKind::kStandbyKill,           RealFaultKind::kEtcdKill,
    RealFaultKind::kPageServerNet,         RealFaultKind::kEtcdNet,
    RealFaultKind::kPageServerDiskFull,
};
std::string_view real_fault_kind_name(RealFaultKind kind);
// Whether the kind can force a take-over (a new primary).
bool forces_takeover(RealFaultKind kind);
// Whether the kind leaves a process down until the nemesis restarts it.
bool takes_process_down(RealFaultKind kind);
// Whether the kind impairs one page server.
bool impairs_page_server(RealFaultKind kind);

// What a network fault makes the proxy do (fault_proxy.h's modes other than pass).
enum class NetFault : uint8_t { kDelay = 1, kReset = 2, kBlackhole = 3 };
std::string_view net_fault_name(NetFault fault);

inline constexpr auto kQuietStart = std::chrono::seconds(3);
inline constexpr auto kQuietEnd = std::chrono::seconds(10);
inline constexpr auto kSettle = std::chrono::seconds(3);
inline constexpr auto kSettleWiped = std::chrono::seconds(15);
inline constexpr auto kWipeAfterTakeover = std::chrono::seconds(10);
inline constexpr size_t kScheduleEventsMax = 2000;

struct RealFaultEvent {
  int64_t at_ms = 0;  // after the chaos phase began
  RealFaultKind kind = RealFaultKind::kRapidSealBurst;
  // Page server index (page-server kinds), standby rank from 1 (kill_standby_page_server,
  // standby_kill: the k-th standby by node index when the event fires), else 0.
  uint32_t target = 0;
  int64_t duration_ms = 0;  // down, stopped, or the network fault's length
  bool wipe = false;        // a killed page server comes back with an empty data directory
  bool at_pickup = false;   // kill_standby_page_server: as the standby's next pick-up starts
  uint32_t count = 0;       // seals in a burst; KiB of room left on a full disk
  NetFault net = NetFault::kDelay;
  int64_t delay_ms = 0;  // NetFault::kDelay
  friend bool operator==(const RealFaultEvent&, const RealFaultEvent&) = default;
};

struct RealChaosPlan {
  int64_t mean_interval_ms = 0;     // mean time between fault events
  int64_t rotation_every_ms = 0;    // QUIRE.ROTATEKEK period
  int64_t rotation_gap_max_ms = 0;  // each rotation's T1-T2 gap is drawn up to this
  int cmk_every = 0;                // QUIRE.ROTATECMK every this many KEK rotations
  int64_t checkpoint_every_ms = 0;  // QUIRE.CHECKPOINT period (besides those in the gaps)
  std::vector<RealFaultEvent> events;
};

struct PlanRequest {
  uint64_t seed = 1;
  int64_t duration_ms = 300'000;  // the chaos phase
  size_t standbys = 2;
  size_t pageservers = 3;
  bool network = false;  // draw proxy faults (the cluster runs behind fault proxies)
  // Draw full disks (the page servers' data directories are tmpfs mounts). Without it a
  // seed's plan is the one it always was.
  bool disk_full = false;
};

// The seed's plan; the same request always gives the same plan.
RealChaosPlan draw_real_plan(const PlanRequest& request);

// One line for an event ("12.345s primary_pause for 3200 ms").
std::string real_event_text(const RealFaultEvent& e);
// One line for the plan's cadence.
std::string real_plan_text(const RealChaosPlan& plan);

}  // namespace quire::cluster
