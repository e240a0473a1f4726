#include "base/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Nearest rank, the definition Histogram::percentile documents: the value at 1-based rank
// ceil(p * n / 100), at least 1.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  const double rank_exact = std::ceil(p * static_cast<double>(sorted.size()) / 100.0);
  const size_t rank = std::clamp<size_t>(static_cast<size_t>(rank_exact), 1, sorted.size());
  return sorted[rank - 1];
}

// Within 1% above the exact value, never below it (and equal when the exact value is small
// enough to have a bucket of its own).
bool close_enough(uint64_t got, uint64_t exact) {
  if (got < exact) return false;
  return static_cast<double>(got - exact) <= static_cast<double>(exact) / 100.0;
}

// Values spread across every magnitude: small exact ones, mid-range, and near 2^64.
rc::Gen<uint64_t> latency() {
  return rc::gen::oneOf(
      rc::gen::inRange<uint64_t>(0, 200), rc::gen::inRange<uint64_t>(0, 1'000'000),
      rc::gen::map(rc::gen::inRange(0, 64), [](int bits) { return (uint64_t{1} << bits) - 1; }),
      rc::gen::arbitrary<uint64_t>());
}

const double kPercentiles[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

TEST(Histogram, EmptyReportsZeros) {
  auto h = std::make_unique<Histogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->mean(), 0.0);
  for (double p : kPercentiles) EXPECT_EQ(h->percentile(p), 0u) << p;
  EXPECT_EQ(h->summary("us"), "n=0 p50=0 p99=0 p999=0 max=0 us");
}

TEST(Histogram, SmallValuesAreExact) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v = 1; v <= 100; v++) h->record(v);
  EXPECT_EQ(h->count(), 100u);
  EXPECT_EQ(h->min(), 1u);
  EXPECT_EQ(h->max(), 100u);
  EXPECT_DOUBLE_EQ(h->mean(), 50.5);
  EXPECT_EQ(h->percentile(0), 1u);
  EXPECT_EQ(h->p50(), 50u);
  EXPECT_EQ(h->p99(), 99u);
  EXPECT_EQ(h->p999(), 100u);
  EXPECT_EQ(h->percentile(100), 100u);
  EXPECT_EQ(h->summary("ms"), "n=100 p50=50 p99=99 p999=100 max=100 ms");
  EXPECT_EQ(h->summary(""), "n=100 p50=50 p99=99 p999=100 max=100");
}

TEST(Histogram, LargeValuesStayWithinOnePart128) {
  auto h = std::make_unique<Histogram>();
  h->record(1000);
  h->record(kU64Max);
  // 1000 shares a bucket of width 8 with 1000..1007.
  EXPECT_GE(h->p50(), 1000u);
  EXPECT_LE(h->p50(), 1007u);
  EXPECT_EQ(h->percentile(100), kU64Max);
  EXPECT_EQ(h->max(), kU64Max);
  EXPECT_DOUBLE_EQ(h->mean(), (1000.0 + static_cast<double>(kU64Max)) / 2);
}

TEST(Histogram, PercentileIsClampedToMax) {
  auto h = std::make_unique<Histogram>();
  h->record(1000);  // bucket [1000, 1007]
  EXPECT_EQ(h->p50(), 1000u);
  EXPECT_EQ(h->percentile(100), 1000u);
}

TEST(Histogram, ClearForgetsEverything) {
  auto h = std::make_unique<Histogram>();
  h->record(5);
  h->record(500000);
  h->clear();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->p99(), 0u);
  h->record(7);
  EXPECT_EQ(h->min(), 7u);
  EXPECT_EQ(h->max(), 7u);
  EXPECT_EQ(h->p50(), 7u);
}

RC_GTEST_PROP(Histogram, MatchesSortedReference, ()) {
  const auto values = *rc::gen::nonEmpty(rc::gen::container<std::vector<uint64_t>>(latency()));
  auto h = std::make_unique<Histogram>();
  for (uint64_t v : values) h->record(v);
  auto sorted = values;
  std::sort(sorted.begin(), sorted.end());

  RC_ASSERT(h->count() == sorted.size());
  RC_ASSERT(h->min() == sorted.front());
  RC_ASSERT(h->max() == sorted.back());
  for (double p : kPercentiles) {
    const uint64_t exact = exact_percentile(sorted, p);
    const uint64_t got = h->percentile(p);
    RC_LOG() << "p=" << p << " exact=" << exact << " got=" << got << "\n";
    RC_ASSERT(close_enough(got, exact));
    if (exact < Histogram::kSubBucketCount) RC_ASSERT(got == exact);
  }
  const double p = *rc::gen::inRange(0, 100001) / 1000.0;
  RC_ASSERT(close_enough(h->percentile(p), exact_percentile(sorted, p)));
  RC_ASSERT(h->percentile(100) == sorted.back());
}

RC_GTEST_PROP(Histogram, MergeEqualsRecordingBoth, ()) {
  const auto a = *rc::gen::container<std::vector<uint64_t>>(latency());
  const auto b = *rc::gen::container<std::vector<uint64_t>>(latency());
  auto merged = std::make_unique<Histogram>();
  auto other = std::make_unique<Histogram>();
  auto both = std::make_unique<Histogram>();
  for (uint64_t v : a) merged->record(v);
  for (uint64_t v : b) other->record(v);
  for (uint64_t v : a) both->record(v);
  for (uint64_t v : b) both->record(v);
  merged->merge(*other);

  RC_ASSERT(merged->count() == both->count());
  RC_ASSERT(merged->min() == both->min());
  RC_ASSERT(merged->max() == both->max());
  RC_ASSERT(merged->mean() == both->mean());
  for (double p : kPercentiles) RC_ASSERT(merged->percentile(p) == both->percentile(p));
  RC_ASSERT(merged->summary("ns") == both->summary("ns"));
}

RC_GTEST_PROP(Histogram, MeanIsExact, ()) {
  const auto values = *rc::gen::nonEmpty(
      rc::gen::container<std::vector<uint64_t>>(rc::gen::inRange<uint64_t>(0, uint64_t{1} << 40)));
  auto h = std::make_unique<Histogram>();
  long double sum = 0;
  for (uint64_t v : values) {
    h->record(v);
    sum += static_cast<long double>(v);
  }
  const double expected = static_cast<double>(sum / static_cast<long double>(values.size()));
  RC_ASSERT(std::abs(h->mean() - expected) <= std::abs(expected) * 1e-12);
}

}  // namespace
}  // namespace quire
