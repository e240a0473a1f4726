#include "runtime/real/csprng_random.h"

#include <algorithm>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace quire {
namespace {

TEST(RealRandomTest, DrawsAreDistinct) {
  CsprngRandom random;
  std::set<uint64_t> seen;
  // Crosses the 4 KiB buffer many times over.
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) seen.insert(random.next_u64());
  EXPECT_EQ(seen.size(), size_t{kDraws});
}

TEST(RealRandomTest, StreamsAreIndependent) {
  CsprngRandom a;
  CsprngRandom b;
  EXPECT_NE(a.next_u64(), b.next_u64());
}

TEST(RealRandomTest, FillsAnySizeWithFreshBytes) {
  CsprngRandom random;
  // Sizes below, at and above the buffer, and ones that straddle a refill.
  for (size_t size :
       {size_t{1}, size_t{3}, size_t{4093}, size_t{4096}, size_t{5000}, size_t{1} << 20}) {
    std::vector<uint8_t> a(size, 0);
    std::vector<uint8_t> b(size, 0);
    random.fill(a);
    random.fill(b);
    if (size >= 16) {
      EXPECT_NE(a, b) << size;
      // 16 or more zero bytes in a row from a CSPRNG is a 2^-128 event: the fill was skipped.
      EXPECT_NE(std::count(a.begin(), a.end(), 0), static_cast<long>(size)) << size;
    }
  }
  random.fill(std::span<uint8_t>());  // empty fill is a no-op
}

TEST(RealRandomTest, UniformCoversItsRange) {
  CsprngRandom random;
  std::set<uint64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    uint64_t v = random.uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
}

}  // namespace
}  // namespace quire
