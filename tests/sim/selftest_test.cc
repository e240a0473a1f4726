#include "sim/selftest.h"

#include <set>

#include <gtest/gtest.h>

namespace quire {
namespace {

SelftestOptions short_run(uint64_t seed) {
  SelftestOptions o;
  o.seed = seed;
  o.fault_phase = Nanos(std::chrono::seconds(10));
  o.heal_phase = Nanos(std::chrono::seconds(10));
  return o;
}

TEST(Selftest, SameSeedSameTraceAndReport) {
  SelftestReport a = run_selftest(short_run(7));
  SelftestReport b = run_selftest(short_run(7));
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.messages_acked, b.messages_acked);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_GT(a.events, 1000u);
}

TEST(Selftest, SeedsPassAndDiffer) {
  std::set<uint64_t> traces;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SelftestReport r = run_selftest(short_run(seed));
    EXPECT_TRUE(r.passed) << "seed " << seed << ": "
                          << (r.violations.empty() ? "" : r.violations[0]);
    EXPECT_GT(r.messages_acked, 0u) << "seed " << seed;
    EXPECT_GT(r.appends_durable, 0u) << "seed " << seed;
    traces.insert(r.trace_hash);
  }
  EXPECT_EQ(traces.size(), 12u);
}

}  // namespace
}  // namespace quire
