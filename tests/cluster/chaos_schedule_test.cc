// The real chaos plan: a function of its request, and the rules it keeps (quiet start and
// end, one page server impaired at a time, one process down at a time, no take-over fault
// soon after a wiped restart).
#include "cluster/chaos_schedule.h"

#include <gtest/gtest.h>

namespace quire::cluster {
namespace {

constexpr int64_t kSettleMs = 3000;
constexpr int64_t kSettleWipedMs = 15000;

TEST(ChaosSchedule, TheSameRequestGivesTheSamePlan) {
  PlanRequest r{.seed = 7, .duration_ms = 300'000, .standbys = 2, .pageservers = 3};
  const RealChaosPlan a = draw_real_plan(r);
  const RealChaosPlan b = draw_real_plan(r);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.rotation_every_ms, b.rotation_every_ms);
  EXPECT_FALSE(a.events.empty());
  r.seed = 8;
  EXPECT_NE(draw_real_plan(r).events, a.events);
}

TEST(ChaosSchedule, KeepsItsRulesOverManySeeds) {
  size_t wipes = 0, network = 0, full = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const RealChaosPlan p = draw_real_plan({.seed = seed,
                                            .duration_ms = 120'000,
                                            .standbys = 2,
                                            .pageservers = 3,
                                            .network = seed % 2 == 0,
                                            .disk_full = seed % 3 == 0});
    int64_t page_server_free = 0, down_free = 0, takeover_allowed = 0;
    for (const RealFaultEvent& e : p.events) {
      EXPECT_GE(e.at_ms, 3000);
      EXPECT_LT(e.at_ms, 110'000);
      const int64_t end = e.at_ms + e.duration_ms;
      if (impairs_page_server(e.kind)) {
        EXPECT_GE(e.at_ms, page_server_free) << "seed " << seed << ": " << real_event_text(e);
        page_server_free = end + (e.wipe ? kSettleWipedMs : kSettleMs);
      }
      if (takes_process_down(e.kind)) {
        EXPECT_GE(e.at_ms, down_free) << "seed " << seed << ": " << real_event_text(e);
        down_free = end;
      }
      if (forces_takeover(e.kind)) {
        EXPECT_GE(e.at_ms, takeover_allowed) << "seed " << seed << ": " << real_event_text(e);
      }
      if (e.wipe) {
        takeover_allowed = end + kSettleWipedMs;
        ++wipes;
      }
      if (seed % 2 == 1) {
        EXPECT_NE(e.kind, RealFaultKind::kPageServerNet);
        EXPECT_NE(e.kind, RealFaultKind::kEtcdNet);
      }
      if (seed % 3 != 0) {
        EXPECT_NE(e.kind, RealFaultKind::kPageServerDiskFull);
      }
      network += e.kind == RealFaultKind::kPageServerNet ? 1 : 0;
      full += e.kind == RealFaultKind::kPageServerDiskFull ? 1 : 0;
      if (e.kind == RealFaultKind::kPrimaryPause) {
        EXPECT_GT(e.duration_ms, 2000);  // past the lease
      }
    }
  }
  EXPECT_GT(wipes, 0u);
  EXPECT_GT(network, 0u);
  EXPECT_GT(full, 0u);
}

// Full disks are drawn only when asked for: without them a seed's plan is the one it always
// was, the events the drawing would have had with them aside.
TEST(ChaosSchedule, FullDisksLeaveThePlansWithoutThemAlone) {
  // Seed 43's plan (the chaos-real figures' seed) as it was before full disks existed.
  const RealChaosPlan p = draw_real_plan(
      {.seed = 43, .duration_ms = 240'000, .standbys = 2, .pageservers = 3, .network = true});
  ASSERT_EQ(p.events.size(), 103u);
  EXPECT_EQ(real_event_text(p.events.front()), "   3.291s page_server_pause ps1 stopped 6193 ms");
  EXPECT_EQ(real_event_text(p.events.back()), " 229.585s etcd_net etcd reset for 685 ms");
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    PlanRequest r{.seed = seed, .duration_ms = 120'000, .standbys = 2, .pageservers = 3};
    r.disk_full = true;
    for (const RealFaultEvent& e : draw_real_plan(r).events) {
      if (e.kind != RealFaultKind::kPageServerDiskFull) continue;
      EXPECT_LT(e.target, 3u);
      EXPECT_GE(e.duration_ms, 4000);
      EXPECT_LE(e.count, 512u);
    }
  }
}

}  // namespace
}  // namespace quire::cluster
