// The kek chaos scenario: fixed seeds pass under the surviving policies, abort is caught,
// runs and reports replay bit for bit, each checker catches a planted bug, and a failing
// schedule shrinks to a replay file that fails the same way.
#include <gtest/gtest.h>

#include <string>

#include "sim/kek_scenario.h"

namespace quire {
namespace {

KekOptions options(uint64_t seed, PickupPolicy policy, int seconds) {
  KekOptions o;
  o.seed = seed;
  o.policy = policy;
  o.duration = std::chrono::seconds(seconds);
  return o;
}

std::string violations(const KekReport& r) {
  std::string out;
  for (const auto& v : r.violations) out += v + "\n";
  return out;
}

bool has_checker(const KekReport& r, const std::string& marker) {
  for (const auto& v : r.violations) {
    if (v.find(marker) != std::string::npos) return true;
  }
  return false;
}

class KekPolicies : public ::testing::TestWithParam<PickupPolicy> {};

TEST_P(KekPolicies, FixedSeedsPass) {
  for (uint64_t seed : {1, 2}) {
    KekReport r = run_kek(options(seed, GetParam(), 60));
    EXPECT_TRUE(r.passed) << "seed " << seed << ":\n" << violations(r);
    EXPECT_GT(r.writes_acked, 1000u);
    EXPECT_EQ(r.writes_lost, 0u);
    EXPECT_GT(r.reads_checked, 1000u);
    EXPECT_GT(r.rotations, 3u);
    EXPECT_GT(r.page_server_bytes_scanned, 1'000'000u);
    EXPECT_FALSE(r.schedule.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Surviving, KekPolicies,
                         ::testing::Values(PickupPolicy::kAccept, PickupPolicy::kSkip,
                                           PickupPolicy::kResync),
                         [](const auto& info) {
                           return std::string(pickup_policy_name(info.param));
                         });

// The report's crash is found: some early seed aborts a standby on a stale keystore.
TEST(Kek, AbortPolicyIsCaughtOnAStaleKeystore) {
  bool found = false;
  for (uint64_t seed = 1; seed <= 10 && !found; seed++) {
    KekReport r = run_kek(options(seed, PickupPolicy::kAbort, 60));
    if (r.passed) continue;
    found = r.failed_checker == "abort" && has_checker(r, "StaleKeystore");
    EXPECT_TRUE(found) << "seed " << seed << " failed otherwise:\n" << violations(r);
    EXPECT_FALSE(r.failure_logs.empty());
    EXPECT_NE(r.failing_node.find("standby"), std::string::npos) << r.failing_node;
  }
  EXPECT_TRUE(found) << "no seed in 1..10 hit the race within 60 simulated seconds";
}

TEST(Kek, SameSeedSameReport) {
  KekReport a = run_kek(options(3, PickupPolicy::kAccept, 40));
  KekReport b = run_kek(options(3, PickupPolicy::kAccept, 40));
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(kek_report_json(a), kek_report_json(b));
  EXPECT_EQ(kek_report_text(a), kek_report_text(b));
  KekReport c = run_kek(options(4, PickupPolicy::kAccept, 40));
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

TEST(Kek, SwarmDrawsDifferentMixesAndBoundedSchedules) {
  FaultMix a = draw_fault_mix(1);
  EXPECT_EQ(a, draw_fault_mix(1));
  bool differ = false;
  for (uint64_t s = 2; s < 20; s++) differ = differ || !(draw_fault_mix(s) == a);
  EXPECT_TRUE(differ);
  // At most one page server impaired at a time.
  for (uint64_t s = 1; s < 30; s++) {
    FaultMix m = draw_fault_mix(s);
    auto events = draw_schedule(s, m, std::chrono::seconds(300), 2);
    int64_t busy_until = -1;
    for (const FaultEvent& e : events) {
      EXPECT_LT(e.at_ms, 300'000);
      const bool server = e.kind == FaultKind::kPageServerKill ||
                          e.kind == FaultKind::kKillStandbyPageServer ||
                          e.kind == FaultKind::kDiskFaults ||
                          (e.kind == FaultKind::kPartition && (e.target > 2 || e.other > 2));
      if (!server) continue;
      EXPECT_GE(e.at_ms, busy_until) << "seed " << s;
      busy_until = e.at_ms + e.duration_ms;
    }
  }
}

// Each planted bug makes its own checker fail.
TEST(Kek, PlantedLostWriteIsCaught) {
  KekOptions o = options(5, PickupPolicy::kAccept, 20);
  o.plant_drop_acked_write = true;
  KekReport r = run_kek(o);
  EXPECT_FALSE(r.passed);
  EXPECT_GT(r.writes_lost, 0u) << violations(r);
  EXPECT_TRUE(has_checker(r, "final content")) << violations(r);
  // And without the plant the same run passes.
  KekReport clean = run_kek(options(5, PickupPolicy::kAccept, 20));
  EXPECT_TRUE(clean.passed) << violations(clean);
}

TEST(Kek, PlantedPlaintextPageIsCaught) {
  KekOptions o = options(5, PickupPolicy::kAccept, 20);
  o.plant_plaintext_page = true;
  KekReport r = run_kek(o);
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(has_checker(r, "[plaintext]")) << violations(r);
  EXPECT_TRUE(has_checker(r, "value")) << violations(r);
}

TEST(Kek, ReplayFileRunsTheSameSchedule) {
  KekReport r = run_kek(options(6, PickupPolicy::kAccept, 30));
  auto spec = parse_replay_file(replay_file_json(r));
  ASSERT_TRUE(spec.is_ok()) << spec.status().to_string();
  EXPECT_EQ(spec->options.seed, 6u);
  ASSERT_TRUE(spec->options.schedule.has_value());
  EXPECT_EQ(*spec->options.schedule, r.schedule);
  EXPECT_EQ(*spec->options.mix, r.mix);
  KekReport again = run_kek(spec->options);
  EXPECT_EQ(again.trace_hash, r.trace_hash);
}

TEST(Kek, BadReplayFilesAreRefused) {
  for (const char* text : {"", "[]", "{\"scenario\":\"race\"}", "{\"scenario\":\"kek\"}",
                           "{\"scenario\":\"kek\",\"seed\":1,\"policy\":\"bogus\",\"standbys\":2}",
                           "{\"scenario\":\"kek\",\"seed\":1,\"policy\":\"accept\",\"standbys\":2,"
                           "\"fault_mix\":{\"kinds\":[\"nope\"]}}"}) {
    auto spec = parse_replay_file(text);
    EXPECT_EQ(spec.code(), Code::kInvalidArgument) << text;
  }
}

// A failing run's schedule shrinks to a smaller one that fails the same checker.
TEST(Kek, ShrinkKeepsTheFailingChecker) {
  KekOptions o = options(5, PickupPolicy::kAccept, 20);
  o.plant_drop_acked_write = true;
  KekReport failing = run_kek(o);
  ASSERT_FALSE(failing.passed);
  size_t trials = 0;
  KekReport small = shrink_kek(o, failing, [&](size_t t, size_t) { trials = t; });
  EXPECT_FALSE(small.passed);
  EXPECT_EQ(small.failed_checker, failing.failed_checker);
  EXPECT_LE(small.schedule.size(), failing.schedule.size());
  // The planted bug needs no fault at all: the minimal schedule is empty.
  EXPECT_TRUE(small.schedule.empty())
      << small.schedule.size() << " events left after " << trials << " trials";
  auto spec = parse_replay_file(replay_file_json(small));
  ASSERT_TRUE(spec.is_ok());
  spec->options.plant_drop_acked_write = true;
  KekReport replay = run_kek(spec->options);
  EXPECT_EQ(replay.failed_checker, failing.failed_checker);
}

}  // namespace
}  // namespace quire
