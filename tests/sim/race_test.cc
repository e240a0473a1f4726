// The directed race scenario of the seed bug report, under each policy (quire chaos race).
#include <gtest/gtest.h>

#include <string>

#include "sim/race_scenario.h"

namespace quire {
namespace {

RaceReport race(PickupPolicy policy, uint64_t seed = 11) {
  RaceOptions o;
  o.seed = seed;
  o.policy = policy;
  o.chaos_phase = std::chrono::seconds(12);
  return run_race(o);
}

std::string violations(const RaceReport& r) {
  std::string out;
  for (const auto& v : r.violations) out += v + "\n";
  return out;
}

// Every policy but abort survives the race: the checkpoint inside the rotation gap is
// picked up (or waited out, or re-synced past) while the standby's page server dies.
TEST(RaceScenario, AcceptInstallsTheStaleCheckpointAndConverges) {
  RaceReport r = race(PickupPolicy::kAccept);
  EXPECT_TRUE(r.passed) << violations(r);
  EXPECT_TRUE(r.race_reached);
  EXPECT_LT(r.race_checkpoint_keystore_version, r.standby_keystore_version_at_pickup);
  EXPECT_NE(r.race_pickup_result.find("StaleKeystore"), std::string::npos) << r.race_pickup_result;
  EXPECT_GE(r.pickups.stale_keystore_accepted, 1u);
  EXPECT_EQ(r.writes_lost, 0u);
  EXPECT_GT(r.writes_acked, 1000u);
  EXPECT_GT(r.reads_checked, 100u);
  EXPECT_GE(r.rotations, 1u);
}

TEST(RaceScenario, SkipWaitsForANewerCheckpointAndConverges) {
  RaceReport r = race(PickupPolicy::kSkip);
  EXPECT_TRUE(r.passed) << violations(r);
  EXPECT_TRUE(r.race_reached);
  EXPECT_GE(r.pickups.skipped, 1u);
  EXPECT_EQ(r.pickups.stale_keystore_accepted, 0u);
  EXPECT_GT(r.pickups.installed, 0u);
}

TEST(RaceScenario, ResyncStepsDownAndConverges) {
  RaceReport r = race(PickupPolicy::kResync);
  EXPECT_TRUE(r.passed) << violations(r);
  EXPECT_TRUE(r.race_reached);
  EXPECT_GE(r.standby_resyncs, 1u);
  // While it re-synced, reads were refused (retriable), never answered wrongly.
  EXPECT_GT(r.reads_refused, 0u);
}

// The report's behaviour: the standby aborts on the stale keystore, and the run names it.
TEST(RaceScenario, AbortReproducesTheReportsCrash) {
  RaceReport r = race(PickupPolicy::kAbort);
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.race_reached);
  ASSERT_FALSE(r.violations.empty());
  EXPECT_NE(r.violations.front().find("standby1 aborted"), std::string::npos)
      << r.violations.front();
  EXPECT_NE(r.violations.front().find("StaleKeystore"), std::string::npos) << r.violations.front();
  EXPECT_NE(r.violations.front().find(std::to_string(r.race_checkpoint_lsn)), std::string::npos)
      << r.violations.front();
  EXPECT_FALSE(r.failure_logs.empty());
}

TEST(RaceScenario, SameSeedSameTraceAndReport) {
  RaceReport a = race(PickupPolicy::kAccept, 5);
  RaceReport b = race(PickupPolicy::kAccept, 5);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(race_report_json(a), race_report_json(b));
  RaceReport c = race(PickupPolicy::kAccept, 6);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

TEST(RaceScenario, ReportHasTheIssuesFields) {
  RaceReport r = race(PickupPolicy::kAccept, 3);
  const std::string j = race_report_json(r);
  for (const char* field : {"\"scenario\"",
                            "\"policy\"",
                            "\"seed\"",
                            "\"passed\"",
                            "\"trace_hash\"",
                            "\"sim_seconds\"",
                            "\"wall_seconds\"",
                            "\"writes_acked\"",
                            "\"writes_lost\"",
                            "\"reads_checked\"",
                            "\"rotations\"",
                            "\"checkpoints_written\"",
                            "\"pickups\"",
                            "\"installed\"",
                            "\"stale_keystore_accepted\"",
                            "\"skipped\"",
                            "\"keystore_ahead_retries\"",
                            "\"unavailable_retries\"",
                            "\"resyncs\"",
                            "\"older_ignored\"",
                            "\"violations\""}) {
    EXPECT_NE(j.find(field), std::string::npos) << field;
  }
}

}  // namespace
}  // namespace quire
