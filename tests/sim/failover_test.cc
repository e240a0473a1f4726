// The directed failover scenario (sim/failover_scenario.h): each forced primary fault
// keeps every acknowledged write, elects a new primary within the lease's bound, and
// replays bit for bit.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "sim/failover_scenario.h"

namespace quire {
namespace {

std::string why(const FailoverReport& r) {
  std::string out;
  for (const auto& v : r.violations) out += "\n  " + v;
  return out;
}

FailoverReport run_case(FailoverCase c, uint64_t seed) {
  FailoverConfig config;
  config.seed = seed;
  config.fault = c;
  return run_failover(config);
}

TEST(FailoverScenario, CrashWithAnUnpublishedTailLosesNothing) {
  FailoverReport r = run_case(FailoverCase::kCrash, 1);
  EXPECT_TRUE(r.passed) << why(r);
  EXPECT_GT(r.writes_acked, 100u);
  EXPECT_GE(r.failovers, 1u);
  EXPECT_GE(r.terms_max, 2u);
  // A 2 s TTL: the lease expires, a standby wins, takes over and writes within ~3 s.
  EXPECT_GT(r.fault_to_first_write, Nanos(0));
  EXPECT_LT(r.fault_to_first_write, std::chrono::milliseconds(3500))
      << std::chrono::duration<double>(r.fault_to_first_write).count() << " s";
}

TEST(FailoverScenario, PartitionFromTheCoordinatorDeposesThePrimary) {
  FailoverReport r = run_case(FailoverCase::kPartition, 2);
  EXPECT_TRUE(r.passed) << why(r);
  EXPECT_GE(r.failovers, 1u);
}

TEST(FailoverScenario, CrashBetweenT1AndT2OfARotation) {
  FailoverReport r = run_case(FailoverCase::kRotation, 3);
  EXPECT_TRUE(r.passed) << why(r);
  EXPECT_GE(r.failovers, 1u);
}

TEST(FailoverScenario, APrimaryPausedPastItsLeaseAcknowledgesNothingAfterwards) {
  FailoverReport r = run_case(FailoverCase::kPause, 4);
  EXPECT_TRUE(r.passed) << why(r);
  EXPECT_GE(r.failovers, 1u);
}

// The page servers hold a term above every epoch the coordinator has given (an etcd wiped
// or restored from an old snapshot). The elected node's take-over is fenced; it resigns
// and campaigns again, each round raising the coordinator's revision, until an epoch
// passes the page servers' term and a primary serves. A leader that kept retrying its
// fenced take-over held the election forever: no primary, ever.
TEST(FailoverScenario, AnElectionBelowThePageServersTermResignsUntilItPassesIt) {
  FailoverConfig config;
  config.seed = 5;
  config.fault = FailoverCase::kCrash;
  config.preset_term = 40;
  config.limit = std::chrono::seconds(120);
  FailoverReport r = run_failover(config);
  EXPECT_TRUE(r.passed) << why(r);
  EXPECT_GT(r.terms_max, 40u);
  EXPECT_GE(r.failovers, 1u);
}

TEST(FailoverScenario, SameSeedSameTrace) {
  FailoverReport a = run_case(FailoverCase::kCrash, 7);
  FailoverReport b = run_case(FailoverCase::kCrash, 7);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.writes_acked, b.writes_acked);
  EXPECT_EQ(a.fault_to_first_write, b.fault_to_first_write);
}

// ---- Mutations: each planted bug must fail a checker (or, where another layer covers it,
// must not) ----

FailoverReport run_planted(FailoverCase c, uint64_t seed, PlantedBugs bugs) {
  FailoverConfig config;
  config.seed = seed;
  config.fault = c;
  config.planted_bugs = bugs;
  config.limit = std::chrono::seconds(10);
  return run_failover(config);
}

// The lease gate is one of two layers: without it, the page servers' fencing alone still
// keeps a deposed primary from acknowledging after the new one fenced or acknowledged.
TEST(FailoverMutations, WithoutTheLeaseGateFencingStillKeepsOnePrimary) {
  PlantedBugs bugs;
  bugs.ignore_primary_lease = true;
  FailoverReport r = run_planted(FailoverCase::kPartition, 2, bugs);
  EXPECT_TRUE(r.passed) << why(r);
}

// Paused with a write in flight, a primary that ignores its lease acknowledges that write
// when it resumes, after the new primary fenced the page servers: split_brain.
TEST(FailoverMutations, APausedPrimaryIgnoringItsLeaseIsCaught) {
  PlantedBugs bugs;
  bugs.ignore_primary_lease = true;
  FailoverReport r = run_planted(FailoverCase::kPause, 4, bugs);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.first_checker, "split_brain") << why(r);
}

TEST(FailoverMutations, ATakeOverThatAbandonsCommittedRecordsIsRefused) {
  PlantedBugs bugs;
  bugs.takeover_from_checkpoint = true;
  FailoverReport r = run_planted(FailoverCase::kCrash, 1, bugs);
  // The page servers refuse the commit marker (it would abandon records a commit point
  // covers), so no take-over completes: liveness fails, nothing is lost.
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.first_checker, "liveness") << why(r);
  EXPECT_NE(r.failure_logs.find("below the commit point"), std::string::npos)
      << "the page servers' refusal is not in the logs";
}

}  // namespace
}  // namespace quire
