// A log-linear histogram of latencies (or any uint64_t), in the manner of HdrHistogram:
// exact below 128, and 128 linear sub-buckets per power of two above, so every percentile
// it reports is within 1/128 (relative) of the true one. The buckets live inside the object
// (about 58 KiB), so record() never allocates; keep histograms in long-lived objects rather
// than on small stacks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace quire {

class Histogram {
 public:
  // Values below 2^kSubBits get a bucket each; each power of two above is split into
  // 2^kSubBits equal sub-buckets.
  static constexpr int kSubBits = 7;
  static constexpr size_t kSubBucketCount = size_t{1} << kSubBits;
  // Buckets 0..127 exact, then 128 for each exponent 7..63.
  static constexpr size_t kBucketCount = kSubBucketCount * (64 - kSubBits + 1);

  // An empty histogram.
  Histogram() = default;

  // Adds one value; any uint64_t is accepted.
  void record(uint64_t value);
  // Adds every value recorded in `other`, as if they had been recorded here.
  void merge(const Histogram& other);
  // Forgets every value.
  void clear();

  // The number of values recorded; the exact smallest and largest (0 when empty); and the
  // mean, from an exact 128-bit sum (0 when empty).
  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;

  // The nearest-rank percentile, p in [0, 100] (asserted): of the recorded values sorted
  // ascending, the one at 1-based rank ceil(p * count / 100) (at least 1). The result is the
  // upper bound of that value's bucket clamped to max(), so it is at least the true value,
  // exceeds it by at most 1/128 of it, and percentile(100) == max(). 0 when empty.
  uint64_t percentile(double p) const;
  uint64_t p50() const { return percentile(50); }
  uint64_t p99() const { return percentile(99); }
  uint64_t p999() const { return percentile(99.9); }

  // "n=1000 p50=12 p99=40 p999=55 max=60 us" with `unit` at the end (omitted when empty).
  std::string summary(std::string_view unit) const;

 private:
  static size_t bucket_index(uint64_t value);
  static uint64_t bucket_upper(size_t index);

  std::array<uint64_t, kBucketCount> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;  // meaningful only when count_ > 0
  uint64_t max_ = 0;
  unsigned __int128 sum_ = 0;  // 128 bits so the mean stays exact for any input
};

}  // namespace quire
