#include "cluster/chaos_schedule.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

using Rng = std::mt19937_64;

int64_t uniform(Rng& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
bool chance(Rng& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}
int64_t ms(std::chrono::seconds s) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(s).count();
}

// The windows the drawing keeps apart (all in ms of the chaos phase).
struct Windows {
  int64_t down_free_at = 0;         // no process is down from here on
  int64_t page_server_free_at = 0;  // no page server is impaired from here on
  int64_t takeover_allowed_at = 0;  // 15 s after the last wiped restart
  int64_t last_takeover_end = -1'000'000;
};

// The kinds weighted: the report's triggers most, as in the simulator's mix.
RealFaultKind draw_kind(Rng& rng, const PlanRequest& r) {
  struct Weighted {
    RealFaultKind kind;
    int weight;
  };
  static constexpr Weighted kWeights[] = {
      {RealFaultKind::kKillStandbyPageServer, 6}, {RealFaultKind::kRapidSealBurst, 5},
      {RealFaultKind::kPageServerKill, 2},        {RealFaultKind::kPageServerPause, 2},
      {RealFaultKind::kPrimaryKill, 2},           {RealFaultKind::kPrimaryPause, 2},
      {RealFaultKind::kStandbyKill, 2},           {RealFaultKind::kEtcdKill, 1},
      {RealFaultKind::kPageServerNet, 3},         {RealFaultKind::kEtcdNet, 1},
      {RealFaultKind::kPageServerDiskFull, 4},
  };
  auto drawn = [&r](RealFaultKind k) {
    if (k == RealFaultKind::kPageServerNet || k == RealFaultKind::kEtcdNet) return r.network;
    if (k == RealFaultKind::kPageServerDiskFull) return r.disk_full;
    return true;
  };
  int total = 0;
  for (const auto& w : kWeights) {
    if (drawn(w.kind)) total += w.weight;
  }
  int pick = static_cast<int>(uniform(rng, 0, total - 1));
  for (const auto& w : kWeights) {
    if (!drawn(w.kind)) continue;
    if (pick < w.weight) return w.kind;
    pick -= w.weight;
  }
  return RealFaultKind::kRapidSealBurst;
}

// The event's parameters (target, duration, mode) for its kind.
RealFaultEvent draw_event(Rng& rng, RealFaultKind kind, int64_t at_ms, const PlanRequest& r) {
  RealFaultEvent e;
  e.at_ms = at_ms;
  e.kind = kind;
  const auto servers = static_cast<int64_t>(r.pageservers);
  switch (kind) {
    case RealFaultKind::kKillStandbyPageServer:
      e.target = static_cast<uint32_t>(uniform(rng, 1, static_cast<int64_t>(r.standbys)));
      e.duration_ms = uniform(rng, 1000, 15000);
      e.wipe = chance(rng, 0.4);
      e.at_pickup = chance(rng, 0.5);
      break;
    case RealFaultKind::kRapidSealBurst:
      e.count = static_cast<uint32_t>(uniform(rng, 10, 60));
      break;
    case RealFaultKind::kPageServerKill:
      e.target = static_cast<uint32_t>(uniform(rng, 0, servers - 1));
      e.duration_ms = uniform(rng, 500, 15000);
      e.wipe = chance(rng, 0.4);
      break;
    case RealFaultKind::kPageServerPause:
      e.target = static_cast<uint32_t>(uniform(rng, 0, servers - 1));
      e.duration_ms = uniform(rng, 500, 8000);
      break;
    case RealFaultKind::kPrimaryKill:
      e.duration_ms = uniform(rng, 500, 10000);
      break;
    case RealFaultKind::kPrimaryPause:
      e.duration_ms = uniform(rng, 2500, 6000);  // past the 2 s lease
      break;
    case RealFaultKind::kStandbyKill:
      e.target = static_cast<uint32_t>(uniform(rng, 1, static_cast<int64_t>(r.standbys)));
      e.duration_ms = uniform(rng, 200, 10000);
      break;
    case RealFaultKind::kEtcdKill:
      e.duration_ms = uniform(rng, 500, 8000);
      break;
    case RealFaultKind::kPageServerNet:
    case RealFaultKind::kEtcdNet:
      if (kind == RealFaultKind::kPageServerNet)
        e.target = static_cast<uint32_t>(uniform(rng, 0, servers - 1));
      e.duration_ms = uniform(rng, 500, 8000);
      e.net = static_cast<NetFault>(uniform(rng, 1, 3));
      if (e.net == NetFault::kDelay) e.delay_ms = uniform(rng, 10, 400);
      break;
    case RealFaultKind::kPageServerDiskFull:
      e.target = static_cast<uint32_t>(uniform(rng, 0, servers - 1));
      // Long enough to pass the zeros a server writes ahead of its records (1 MiB, already
      // allocated) at a chaos run's 0.5-1 MB/s, so the kernel refuses writes.
      e.duration_ms = uniform(rng, 4000, 12000);
      e.count = static_cast<uint32_t>(uniform(rng, 0, 512));
      break;
  }
  return e;
}

// Whether `e` may start now; when it may, the windows it opens are recorded (a wipe that
// would follow a take-over too closely becomes an intact restart).
bool admit(RealFaultEvent& e, Windows& w) {
  const int64_t end = e.at_ms + e.duration_ms;
  if (takes_process_down(e.kind) && e.at_ms < w.down_free_at) return false;
  if (impairs_page_server(e.kind) && e.at_ms < w.page_server_free_at) return false;
  if (forces_takeover(e.kind) && e.at_ms < w.takeover_allowed_at) return false;
  if (e.wipe && end < w.last_takeover_end + ms(kWipeAfterTakeover)) e.wipe = false;
  if (takes_process_down(e.kind)) w.down_free_at = end + 1000;
  if (impairs_page_server(e.kind)) {
    w.page_server_free_at = end + ms(e.wipe ? kSettleWiped : kSettle);
  }
  if (e.wipe) w.takeover_allowed_at = std::max(w.takeover_allowed_at, end + ms(kSettleWiped));
  if (forces_takeover(e.kind)) w.last_takeover_end = std::max(w.last_takeover_end, end);
  return true;
}

}  // namespace

std::string_view real_fault_kind_name(RealFaultKind kind) {
  switch (kind) {
    case RealFaultKind::kKillStandbyPageServer:
      return "kill_standby_page_server";
    case RealFaultKind::kRapidSealBurst:
      return "rapid_seal_burst";
    case RealFaultKind::kPageServerKill:
      return "page_server_kill";
    case RealFaultKind::kPageServerPause:
      return "page_server_pause";
    case RealFaultKind::kPrimaryKill:
      return "primary_kill";
    case RealFaultKind::kPrimaryPause:
      return "primary_pause";
    case RealFaultKind::kStandbyKill:
      return "standby_kill";
    case RealFaultKind::kEtcdKill:
      return "etcd_kill";
    case RealFaultKind::kPageServerNet:
      return "page_server_net";
    case RealFaultKind::kEtcdNet:
      return "etcd_net";
    case RealFaultKind::kPageServerDiskFull:
      return "page_server_disk_full";
  }
  return "?";
}

bool forces_takeover(RealFaultKind kind) {
  return kind == RealFaultKind::kPrimaryKill || kind == RealFaultKind::kPrimaryPause ||
         kind == RealFaultKind::kEtcdKill || kind == RealFaultKind::kEtcdNet;
}

bool takes_process_down(RealFaultKind kind) {
  return kind == RealFaultKind::kKillStandbyPageServer || kind == RealFaultKind::kPageServerKill ||
         kind == RealFaultKind::kPrimaryKill || kind == RealFaultKind::kStandbyKill ||
         kind == RealFaultKind::kEtcdKill;
}

bool impairs_page_server(RealFaultKind kind) {
  return kind == RealFaultKind::kKillStandbyPageServer || kind == RealFaultKind::kPageServerKill ||
         kind == RealFaultKind::kPageServerPause || kind == RealFaultKind::kPageServerNet ||
         kind == RealFaultKind::kPageServerDiskFull;
}

std::string_view net_fault_name(NetFault fault) {
  switch (fault) {
    case NetFault::kDelay:
      return "delay";
    case NetFault::kReset:
      return "reset";
    case NetFault::kBlackhole:
      return "blackhole";
  }
  return "?";
}

RealChaosPlan draw_real_plan(const PlanRequest& r) {
  Rng rng(r.seed ^ 0x6368616f737265ull);  // "chaosre": apart from the simulator's streams
  RealChaosPlan plan;
  plan.mean_interval_ms = uniform(rng, 1500, 5000);
  plan.rotation_every_ms = uniform(rng, 2000, 5000);
  plan.rotation_gap_max_ms = uniform(rng, 400, 2000);
  plan.cmk_every = static_cast<int>(uniform(rng, 3, 6));
  plan.checkpoint_every_ms = uniform(rng, 300, 1500);
  Windows w;
  const int64_t last = r.duration_ms - ms(kQuietEnd);
  int64_t t = ms(kQuietStart);
  while (plan.events.size() < kScheduleEventsMax) {
    const double gap_ms = std::exponential_distribution<double>(
        1.0 / static_cast<double>(plan.mean_interval_ms))(rng);
    t += static_cast<int64_t>(gap_ms) + 1;
    if (t >= last) break;
    // A few tries for a kind the windows admit now; else this slot stays empty.
    for (int attempt = 0; attempt < 4; ++attempt) {
      RealFaultEvent e = draw_event(rng, draw_kind(rng, r), t, r);
      if (admit(e, w)) {
        plan.events.push_back(e);
        break;
      }
    }
  }
  return plan;
}

std::string real_event_text(const RealFaultEvent& e) {
  std::string out = fmt::format("{:8.3f}s {}", static_cast<double>(e.at_ms) / 1000.0,
                                real_fault_kind_name(e.kind));
  switch (e.kind) {
    case RealFaultKind::kKillStandbyPageServer:
      return out + fmt::format(" standby#{}{} down {} ms, back {}", e.target,
                               e.at_pickup ? " at its next pick-up" : "", e.duration_ms,
                               e.wipe ? "wiped" : "intact");
    case RealFaultKind::kRapidSealBurst:
      return out + fmt::format(" {} seals", e.count);
    case RealFaultKind::kPageServerKill:
      return out + fmt::format(" ps{} down {} ms, back {}", e.target + 1, e.duration_ms,
                               e.wipe ? "wiped" : "intact");
    case RealFaultKind::kPageServerPause:
      return out + fmt::format(" ps{} stopped {} ms", e.target + 1, e.duration_ms);
    case RealFaultKind::kPrimaryKill:
    case RealFaultKind::kEtcdKill:
      return out + fmt::format(" down {} ms", e.duration_ms);
    case RealFaultKind::kPrimaryPause:
      return out + fmt::format(" stopped {} ms", e.duration_ms);
    case RealFaultKind::kStandbyKill:
      return out + fmt::format(" standby#{} down {} ms", e.target, e.duration_ms);
    case RealFaultKind::kPageServerNet:
    case RealFaultKind::kEtcdNet: {
      const std::string who =
          e.kind == RealFaultKind::kEtcdNet ? "etcd" : fmt::format("ps{}", e.target + 1);
      return out + fmt::format(" {} {}{} for {} ms", who, net_fault_name(e.net),
                               e.net == NetFault::kDelay ? fmt::format(" {} ms", e.delay_ms) : "",
                               e.duration_ms);
    }
    case RealFaultKind::kPageServerDiskFull:
      return out + fmt::format(" ps{} full ({} KiB left) for {} ms", e.target + 1, e.count,
                               e.duration_ms);
  }
  return out;
}

std::string real_plan_text(const RealChaosPlan& p) {
  return fmt::format(
      "{} fault events, one every ~{} ms; KEK rotation every {} ms (gap up to {} ms), CMK every {} "
      "KEK rotations; checkpoints every {} ms and inside every rotation's gap",
      p.events.size(), p.mean_interval_ms, p.rotation_every_ms, p.rotation_gap_max_ms, p.cmk_every,
      p.checkpoint_every_ms);
}

}  // namespace quire::cluster
