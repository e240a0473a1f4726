#include "base/ids.h"

#include <type_traits>
#include <unordered_set>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace quire {
namespace {

// Ids mix with nothing: not with each other, not with Timestamp, not implicitly with
// integers.
static_assert(!std::is_convertible_v<Lsn, Term>);
static_assert(!std::is_convertible_v<Term, Lsn>);
static_assert(!std::is_constructible_v<Term, Lsn>);
static_assert(!std::is_convertible_v<Lsn, Timestamp>);
static_assert(!std::is_convertible_v<Timestamp, Lsn>);
static_assert(!std::is_convertible_v<PageId, TableId>);
static_assert(!std::is_convertible_v<uint64_t, Lsn>);
static_assert(!std::is_convertible_v<Lsn, uint64_t>);
static_assert(!std::is_convertible_v<uint64_t, Timestamp>);
static_assert(std::is_trivially_copyable_v<Lsn>);
static_assert(sizeof(Lsn) == sizeof(uint64_t));
static_assert(sizeof(Timestamp) == sizeof(uint64_t));

TEST(Ids, LsnOrdering) {
  const Lsn a(1), b(2);
  EXPECT_LT(a, b);
  EXPECT_GT(b, a);
  EXPECT_EQ(a, Lsn(1));
  EXPECT_NE(a, b);
  EXPECT_EQ(a.next(), b);
  EXPECT_TRUE(Lsn().is_zero());
  EXPECT_FALSE(a.is_zero());
  EXPECT_EQ(Lsn().value, 0u);
}

TEST(Ids, TimestampParts) {
  const Timestamp ts = Timestamp::from_parts(1700000000u, 42u);
  EXPECT_EQ(ts.seconds(), 1700000000u);
  EXPECT_EQ(ts.increment(), 42u);
  EXPECT_EQ(ts.value, (uint64_t{1700000000u} << 32) | 42u);
  const Timestamp max = Timestamp::from_parts(UINT32_MAX, UINT32_MAX);
  EXPECT_EQ(max.seconds(), UINT32_MAX);
  EXPECT_EQ(max.increment(), UINT32_MAX);
  EXPECT_TRUE(Timestamp().is_zero());
  EXPECT_FALSE(ts.is_zero());
}

TEST(Ids, TimestampOrdersBySecondsThenIncrement) {
  EXPECT_LT(Timestamp::from_parts(1, 5), Timestamp::from_parts(1, 6));
  EXPECT_LT(Timestamp::from_parts(1, UINT32_MAX), Timestamp::from_parts(2, 0));
  EXPECT_EQ(Timestamp::from_parts(3, 4), Timestamp::from_parts(3, 4));
}

TEST(Ids, FmtFormatting) {
  EXPECT_EQ(fmt::format("{}", Lsn(42)), "42");
  EXPECT_EQ(fmt::format("{}", Term(7)), "7");
  EXPECT_EQ(fmt::format("{:>5}", PageId(9)), "    9");
  EXPECT_EQ(fmt::format("{}", Timestamp::from_parts(5, 7)), "5:7");
}

TEST(Ids, Hashable) {
  std::unordered_set<Lsn> seen = {Lsn(1), Lsn(2), Lsn(1)};
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen.count(Lsn(2)), 1u);
}

}  // namespace
}  // namespace quire
