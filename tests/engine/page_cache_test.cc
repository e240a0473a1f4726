#include "engine/page_cache.h"

#include <algorithm>
#include <list>
#include <memory>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

PageKey key(uint64_t page, uint64_t lsn = 1, uint64_t table = 1) {
  return PageKey{TableId(table), PageId(page), Lsn(lsn)};
}

// A distinct leaf per tag, so a test can tell which page came back.
std::shared_ptr<const BtreeNode> node(uint64_t tag) {
  auto n = std::make_shared<BtreeNode>();
  n->entries.push_back({"k", "v", Timestamp(tag)});
  return n;
}

uint64_t tag_of(const std::shared_ptr<const BtreeNode>& n) {
  return n->entries.at(0).ts.value;
}

TEST(PageCache, MissThenHit) {
  PageCache cache(1000);
  EXPECT_EQ(cache.get(key(1)), nullptr);
  cache.put(key(1), node(1), 100);
  auto got = cache.get(key(1));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(tag_of(got), 1u);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().evictions, 0u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), 100u);
  EXPECT_EQ(cache.budget_bytes(), 1000u);
}

TEST(PageCache, EveryKeyFieldDistinguishesPages) {
  PageCache cache(1000);
  cache.put(key(1, 1, 1), node(1), 10);
  cache.put(key(1, 2, 1), node(2), 10);  // a newer version of the same page
  cache.put(key(1, 1, 2), node(3), 10);  // the same page id in another table
  cache.put(key(2, 1, 1), node(4), 10);
  EXPECT_EQ(cache.size(), 4u);
  EXPECT_EQ(tag_of(cache.get(key(1, 1, 1))), 1u);
  EXPECT_EQ(tag_of(cache.get(key(1, 2, 1))), 2u);
  EXPECT_EQ(tag_of(cache.get(key(1, 1, 2))), 3u);
  EXPECT_EQ(tag_of(cache.get(key(2, 1, 1))), 4u);
  EXPECT_EQ(cache.get(key(2, 2, 1)), nullptr);
}

TEST(PageCache, EvictsLeastRecentlyUsedFirst) {
  PageCache cache(300);
  cache.put(key(1), node(1), 100);
  cache.put(key(2), node(2), 100);
  cache.put(key(3), node(3), 100);
  cache.put(key(4), node(4), 100);  // evicts 1, the oldest
  EXPECT_EQ(cache.get(key(1)), nullptr);
  EXPECT_NE(cache.get(key(2)), nullptr);
  EXPECT_NE(cache.get(key(3)), nullptr);
  EXPECT_NE(cache.get(key(4)), nullptr);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.bytes(), 300u);
}

TEST(PageCache, GetRefreshesRecency) {
  PageCache cache(300);
  cache.put(key(1), node(1), 100);
  cache.put(key(2), node(2), 100);
  cache.put(key(3), node(3), 100);
  ASSERT_NE(cache.get(key(1)), nullptr);  // 2 is now the least recently used
  cache.put(key(4), node(4), 100);
  EXPECT_EQ(cache.get(key(2)), nullptr);
  EXPECT_NE(cache.get(key(1)), nullptr);
  EXPECT_NE(cache.get(key(3)), nullptr);
  EXPECT_NE(cache.get(key(4)), nullptr);
}

TEST(PageCache, PutRefreshesAndRechargesAnExistingPage) {
  PageCache cache(300);
  cache.put(key(1), node(1), 100);
  cache.put(key(2), node(2), 100);
  cache.put(key(1), node(1), 150);  // 1 becomes most recent, charged anew
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), 250u);
  cache.put(key(3), node(3), 100);  // 350 > 300: evicts 2, not 1
  EXPECT_EQ(cache.get(key(2)), nullptr);
  EXPECT_NE(cache.get(key(1)), nullptr);
  EXPECT_EQ(cache.bytes(), 250u);
}

TEST(PageCache, OneLargePutEvictsSeveral) {
  PageCache cache(300);
  for (uint64_t i = 1; i <= 3; i++) cache.put(key(i), node(i), 100);
  cache.put(key(9), node(9), 250);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), 250u);
  EXPECT_EQ(cache.stats().evictions, 3u);
  EXPECT_NE(cache.get(key(9)), nullptr);
}

TEST(PageCache, APageLargerThanTheBudgetIsNotKept) {
  PageCache cache(300);
  cache.put(key(1), node(1), 100);
  cache.put(key(2), node(2), 301);
  EXPECT_EQ(cache.get(key(2)), nullptr);
  // Nothing was evicted to make room for a page that could never fit.
  EXPECT_NE(cache.get(key(1)), nullptr);
  EXPECT_EQ(cache.bytes(), 100u);
  EXPECT_EQ(cache.stats().evictions, 0u);

  // Exactly the budget fits (and pushes everything else out).
  cache.put(key(3), node(3), 300);
  EXPECT_NE(cache.get(key(3)), nullptr);
  EXPECT_EQ(cache.bytes(), 300u);
  EXPECT_EQ(cache.size(), 1u);

  // Refreshing a cached page at a size that no longer fits drops it.
  cache.put(key(3), node(3), 400);
  EXPECT_EQ(cache.get(key(3)), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PageCache, HandedOutPagesOutliveEviction) {
  PageCache cache(100);
  cache.put(key(1), node(1), 100);
  auto held = cache.get(key(1));
  cache.put(key(2), node(2), 100);
  EXPECT_EQ(cache.get(key(1)), nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(tag_of(held), 1u);
}

TEST(PageCache, ClearDropsPagesAndKeepsStats) {
  PageCache cache(300);
  cache.put(key(1), node(1), 100);
  ASSERT_NE(cache.get(key(1)), nullptr);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.get(key(1)), nullptr);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  cache.put(key(1), node(1), 300);
  EXPECT_EQ(cache.bytes(), 300u);
}

TEST(PageKeyHash, EveryFieldChangesTheHash) {
  PageKeyHash h;
  std::unordered_set<size_t> hashes;
  for (uint64_t t = 0; t < 4; t++) {
    for (uint64_t p = 0; p < 4; p++) {
      for (uint64_t l = 0; l < 4; l++) hashes.insert(h(key(p, l, t)));
    }
  }
  EXPECT_EQ(hashes.size(), 64u);
  EXPECT_EQ(h(key(1, 2, 3)), h(key(1, 2, 3)));
  // Swapping fields is a different key and should hash differently.
  EXPECT_NE(h(key(1, 2, 3)), h(key(2, 1, 3)));
  EXPECT_NE(h(key(1, 2, 3)), h(key(3, 2, 1)));
}

// Against a reference LRU list: same contents, same order of eviction, byte budget held
// after every operation.
RC_GTEST_PROP(PageCacheModel, MatchesAReferenceLru, ()) {
  const size_t budget = *rc::gen::inRange<size_t>(0, 500);
  PageCache cache(budget);
  struct ModelEntry {
    uint64_t page;
    size_t bytes;
  };
  std::list<ModelEntry> model;  // front = most recently used
  PageCacheStats stats;
  auto find = [&](uint64_t page) {
    return std::find_if(model.begin(), model.end(),
                        [&](const ModelEntry& e) { return e.page == page; });
  };
  auto model_bytes = [&] {
    size_t total = 0;
    for (const ModelEntry& e : model) total += e.bytes;
    return total;
  };

  const int steps = *rc::gen::inRange(1, 150);
  for (int step = 0; step < steps; step++) {
    const uint64_t page = *rc::gen::inRange<uint64_t>(0, 12);
    if (*rc::gen::arbitrary<bool>()) {
      auto got = cache.get(key(page));
      auto it = find(page);
      RC_ASSERT((got != nullptr) == (it != model.end()));
      if (it != model.end()) {
        RC_ASSERT(tag_of(got) == page);
        model.splice(model.begin(), model, it);
        stats.hits++;
      } else {
        stats.misses++;
      }
    } else {
      const size_t bytes = *rc::gen::inRange<size_t>(0, 200);
      cache.put(key(page), node(page), bytes);
      if (auto it = find(page); it != model.end()) model.erase(it);
      if (bytes <= budget) {
        model.push_front({page, bytes});
        while (model_bytes() > budget) {
          model.pop_back();
          stats.evictions++;
        }
      }
    }
    RC_ASSERT(cache.bytes() <= budget);
    RC_ASSERT(cache.bytes() == model_bytes());
    RC_ASSERT(cache.size() == model.size());
    RC_ASSERT(cache.stats().hits == stats.hits);
    RC_ASSERT(cache.stats().misses == stats.misses);
    RC_ASSERT(cache.stats().evictions == stats.evictions);
  }
}

}  // namespace
}  // namespace quire
