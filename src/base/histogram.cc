#include "base/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

#include "base/assert.h"

namespace quire {

// Value v >= 2^kSubBits with highest set bit e lands in sub-bucket (v >> (e - kSubBits)) -
// 2^kSubBits of exponent e; buckets are laid out exponent after exponent, after the exact
// ones.
size_t Histogram::bucket_index(uint64_t value) {
  if (value < kSubBucketCount) return static_cast<size_t>(value);
  const int exponent = std::bit_width(value) - 1;
  const int shift = exponent - kSubBits;
  const size_t sub = static_cast<size_t>(value >> shift) - kSubBucketCount;
  const size_t index = static_cast<size_t>(exponent - kSubBits + 1) * kSubBucketCount + sub;
  QUIRE_ASSERT(index < kBucketCount);
  return index;
}

uint64_t Histogram::bucket_upper(size_t index) {
  QUIRE_ASSERT(index < kBucketCount);
  if (index < kSubBucketCount) return index;
  const int exponent = static_cast<int>(index / kSubBucketCount) + kSubBits - 1;
  const int shift = exponent - kSubBits;
  const uint64_t sub = index % kSubBucketCount;
  const uint64_t lower = (kSubBucketCount + sub) << shift;
  return lower + ((uint64_t{1} << shift) - 1);
}

void Histogram::record(uint64_t value) {
  counts_[bucket_index(value)]++;
  count_++;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < kBucketCount; i++) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::clear() {
  counts_.fill(0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double Histogram::mean() const {
  if (count_ == 0) return 0;
  return static_cast<double>(sum_) / static_cast<double>(count_);
}

uint64_t Histogram::percentile(double p) const {
  QUIRE_ASSERT(p >= 0 && p <= 100);
  if (count_ == 0) return 0;
  // p * count first: exact for integral p, so percentile(99) of 100 values is rank 99.
  const double rank_exact = std::ceil(p * static_cast<double>(count_) / 100.0);
  uint64_t rank = count_;
  if (rank_exact < static_cast<double>(count_)) {
    rank = std::max<uint64_t>(static_cast<uint64_t>(rank_exact), 1);
  }
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; i++) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_upper(i), max_);
  }
  QUIRE_UNREACHABLE("histogram bucket counts sum to less than count()");
}

std::string Histogram::summary(std::string_view unit) const {
  std::string out =
      fmt::format("n={} p50={} p99={} p999={} max={}", count_, p50(), p99(), p999(), max());
  if (!unit.empty()) fmt::format_to(std::back_inserter(out), " {}", unit);
  return out;
}

}  // namespace quire
