#include "engine/ingest.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

Timestamp ts(uint64_t v) {
  return Timestamp(v);
}

// bytes() charges each version its key, its value and this overhead.
constexpr size_t kOverhead = 32;

KeyVersion kv(std::string key, uint64_t t, std::optional<std::string> value) {
  return KeyVersion{std::move(key), Version{ts(t), std::move(value)}};
}

// --- put ---------------------------------------------------------------------------------

TEST(IngestPut, RefusesTimestampZero) {
  IngestLayer ingest;
  Status s = ingest.put("a", ts(0), "x");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(ingest.key_count(), 0u);
  EXPECT_EQ(ingest.version_count(), 0u);
  EXPECT_EQ(ingest.bytes(), 0u);
}

TEST(IngestPut, TimestampsMustIncreasePerKey) {
  IngestLayer ingest;
  ASSERT_TRUE(ingest.put("a", ts(10), "v10").is_ok());
  EXPECT_EQ(ingest.put("a", ts(9), "v9").code(), Code::kInvalidArgument);
  EXPECT_EQ(ingest.put("a", ts(10), "other").code(), Code::kInvalidArgument);
  EXPECT_EQ(ingest.put("a", ts(10), std::nullopt).code(), Code::kInvalidArgument);
  EXPECT_EQ(ingest.version_count(), 1u);
  ASSERT_TRUE(ingest.put("a", ts(11), "v11").is_ok());
  EXPECT_EQ(ingest.version_count(), 2u);
  // The order is per key: another key may take an older timestamp.
  EXPECT_TRUE(ingest.put("b", ts(1), "b1").is_ok());
  EXPECT_EQ(ingest.key_count(), 2u);
  EXPECT_EQ(ingest.newest_ts(), ts(11));
}

TEST(IngestPut, RedoOfTheNewestVersionIsIdempotent) {
  IngestLayer ingest;
  ASSERT_TRUE(ingest.put("a", ts(5), "v5").is_ok());
  ASSERT_TRUE(ingest.put("a", ts(7), std::nullopt).is_ok());
  size_t bytes = ingest.bytes();

  EXPECT_TRUE(ingest.put("a", ts(7), std::nullopt).is_ok());
  EXPECT_EQ(ingest.version_count(), 2u);
  EXPECT_EQ(ingest.bytes(), bytes);

  // Only the newest version may be redone; an older one is out of order.
  EXPECT_EQ(ingest.put("a", ts(5), "v5").code(), Code::kInvalidArgument);

  ASSERT_TRUE(ingest.put("b", ts(3), "b3").is_ok());
  bytes = ingest.bytes();
  EXPECT_TRUE(ingest.put("b", ts(3), "b3").is_ok());
  EXPECT_EQ(ingest.version_count(), 3u);
  EXPECT_EQ(ingest.bytes(), bytes);
}

TEST(IngestPut, NewestTsTracksTheLargestPutUntilClear) {
  IngestLayer ingest;
  EXPECT_EQ(ingest.newest_ts(), ts(0));
  ASSERT_TRUE(ingest.put("b", ts(20), "x").is_ok());
  ASSERT_TRUE(ingest.put("a", ts(4), "x").is_ok());
  EXPECT_EQ(ingest.newest_ts(), ts(20));
  ingest.prune_through(ts(100));
  EXPECT_EQ(ingest.newest_ts(), ts(20));  // pruning forgets versions, not history
  ingest.clear();
  EXPECT_EQ(ingest.newest_ts(), ts(0));
}

// --- get ---------------------------------------------------------------------------------

TEST(IngestGet, SeesTheNewestVersionAtOrBelowTheReadTs) {
  IngestLayer ingest;
  ASSERT_TRUE(ingest.put("k", ts(10), "ten").is_ok());
  ASSERT_TRUE(ingest.put("k", ts(20), std::nullopt).is_ok());
  ASSERT_TRUE(ingest.put("k", ts(30), "thirty").is_ok());

  EXPECT_EQ(ingest.get("k", ts(9)), nullptr);
  ASSERT_NE(ingest.get("k", ts(10)), nullptr);
  EXPECT_EQ(*ingest.get("k", ts(10)), (Version{ts(10), "ten"}));
  EXPECT_EQ(*ingest.get("k", ts(19)), (Version{ts(10), "ten"}));
  // A tombstone is a version: the reader sees the delete, not the older value.
  EXPECT_EQ(*ingest.get("k", ts(20)), (Version{ts(20), std::nullopt}));
  EXPECT_EQ(*ingest.get("k", ts(29)), (Version{ts(20), std::nullopt}));
  EXPECT_EQ(*ingest.get("k", ts(30)), (Version{ts(30), "thirty"}));
  EXPECT_EQ(*ingest.get("k", ts(UINT64_MAX)), (Version{ts(30), "thirty"}));

  EXPECT_EQ(ingest.get("j", ts(UINT64_MAX)), nullptr);
  EXPECT_EQ(ingest.get("kk", ts(UINT64_MAX)), nullptr);
  EXPECT_EQ(ingest.get("", ts(UINT64_MAX)), nullptr);
}

TEST(IngestGet, KeysAreBinary) {
  IngestLayer ingest;
  std::string key("a\0b", 3);
  std::string value("\0\xff\0", 3);
  ASSERT_TRUE(ingest.put(key, ts(1), value).is_ok());
  ASSERT_NE(ingest.get(key, ts(1)), nullptr);
  EXPECT_EQ(ingest.get(key, ts(1))->value, value);
  EXPECT_EQ(ingest.get("a", ts(1)), nullptr);
  EXPECT_EQ(ingest.bytes(), 3 + 3 + kOverhead);
}

// --- scan --------------------------------------------------------------------------------

class IngestScan : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ingest_.put("a", ts(1), "a1").is_ok());
    ASSERT_TRUE(ingest_.put("b", ts(2), "b2").is_ok());
    ASSERT_TRUE(ingest_.put("b", ts(5), std::nullopt).is_ok());
    ASSERT_TRUE(ingest_.put("c", ts(6), "c6").is_ok());
    ASSERT_TRUE(ingest_.put("d", ts(3), "d3").is_ok());
    ASSERT_TRUE(ingest_.put("d", ts(4), "d4").is_ok());
  }
  IngestLayer ingest_;
};

TEST_F(IngestScan, WholeRangeInKeyOrderWithTombstones) {
  EXPECT_EQ(ingest_.scan("", "", ts(10), 100),
            (std::vector<KeyVersion>{kv("a", 1, "a1"), kv("b", 5, std::nullopt), kv("c", 6, "c6"),
                                     kv("d", 4, "d4")}));
}

TEST_F(IngestScan, KeysWithNothingVisibleAreSkipped) {
  EXPECT_EQ(ingest_.scan("", "", ts(3), 100),
            (std::vector<KeyVersion>{kv("a", 1, "a1"), kv("b", 2, "b2"), kv("d", 3, "d3")}));
  EXPECT_EQ(ingest_.scan("", "", ts(0), 100), std::vector<KeyVersion>{});
}

TEST_F(IngestScan, BoundsAreHalfOpen) {
  EXPECT_EQ(ingest_.scan("b", "d", ts(10), 100),
            (std::vector<KeyVersion>{kv("b", 5, std::nullopt), kv("c", 6, "c6")}));
  EXPECT_EQ(ingest_.scan("bb", "c", ts(10), 100), std::vector<KeyVersion>{});
  EXPECT_EQ(ingest_.scan("bb", "cc", ts(10), 100), (std::vector<KeyVersion>{kv("c", 6, "c6")}));
  EXPECT_EQ(ingest_.scan("c", "", ts(10), 100),
            (std::vector<KeyVersion>{kv("c", 6, "c6"), kv("d", 4, "d4")}));
  EXPECT_EQ(ingest_.scan("e", "", ts(10), 100), std::vector<KeyVersion>{});
  // An inverted range is empty rather than an error.
  EXPECT_EQ(ingest_.scan("d", "b", ts(10), 100), std::vector<KeyVersion>{});
}

TEST_F(IngestScan, LimitCountsOnlyReturnedKeys) {
  EXPECT_EQ(ingest_.scan("", "", ts(10), 0), std::vector<KeyVersion>{});
  EXPECT_EQ(ingest_.scan("", "", ts(10), 2),
            (std::vector<KeyVersion>{kv("a", 1, "a1"), kv("b", 5, std::nullopt)}));
  // "c" is not visible at ts 3, so it does not use up the limit.
  EXPECT_EQ(ingest_.scan("b", "", ts(3), 2),
            (std::vector<KeyVersion>{kv("b", 2, "b2"), kv("d", 3, "d3")}));
}

// --- checkpoints -------------------------------------------------------------------------

TEST_F(IngestScan, CollectThroughTakesEachKeysNewestVersionAtOrBelow) {
  EXPECT_EQ(ingest_.collect_through(ts(0)), std::vector<KeyVersion>{});
  EXPECT_EQ(ingest_.collect_through(ts(3)),
            (std::vector<KeyVersion>{kv("a", 1, "a1"), kv("b", 2, "b2"), kv("d", 3, "d3")}));
  EXPECT_EQ(
      ingest_.collect_through(ts(5)),
      (std::vector<KeyVersion>{kv("a", 1, "a1"), kv("b", 5, std::nullopt), kv("d", 4, "d4")}));
  EXPECT_EQ(ingest_.collect_through(ts(UINT64_MAX)),
            ingest_.scan("", "", ts(UINT64_MAX), SIZE_MAX));
  // Collecting changes nothing.
  EXPECT_EQ(ingest_.version_count(), 6u);
}

TEST_F(IngestScan, PruneThroughDropsVersionsAtOrBelowAndEmptyKeys) {
  size_t bytes_before = ingest_.bytes();
  ingest_.prune_through(ts(4));
  // a@1 and d@3, d@4 go, so do keys a and d; b@2 goes but b@5 stays.
  EXPECT_EQ(ingest_.key_count(), 2u);
  EXPECT_EQ(ingest_.version_count(), 2u);
  EXPECT_EQ(ingest_.bytes(),
            bytes_before - (1 + 2 + kOverhead) - (1 + 2 + kOverhead) - 2 * (1 + 2 + kOverhead));
  EXPECT_EQ(ingest_.get("a", ts(10)), nullptr);
  EXPECT_EQ(ingest_.get("d", ts(10)), nullptr);
  EXPECT_EQ(ingest_.get("b", ts(4)), nullptr);
  EXPECT_EQ(*ingest_.get("b", ts(5)), (Version{ts(5), std::nullopt}));
  EXPECT_EQ(ingest_.scan("", "", ts(10), 100),
            (std::vector<KeyVersion>{kv("b", 5, std::nullopt), kv("c", 6, "c6")}));

  ingest_.prune_through(ts(4));  // again: nothing left to drop
  EXPECT_EQ(ingest_.version_count(), 2u);

  ingest_.prune_through(ts(6));
  EXPECT_EQ(ingest_.key_count(), 0u);
  EXPECT_EQ(ingest_.version_count(), 0u);
  EXPECT_EQ(ingest_.bytes(), 0u);
}

TEST_F(IngestScan, APrunedKeyAcceptsAnyTimestampAgain) {
  ingest_.prune_through(ts(4));
  // The order rule is against the key's remaining history, and d has none left.
  EXPECT_TRUE(ingest_.put("d", ts(2), "d2").is_ok());
  EXPECT_EQ(ingest_.put("b", ts(5), "other").code(), Code::kInvalidArgument);
}

TEST_F(IngestScan, ClearEmptiesEverything) {
  ingest_.clear();
  EXPECT_EQ(ingest_.key_count(), 0u);
  EXPECT_EQ(ingest_.version_count(), 0u);
  EXPECT_EQ(ingest_.bytes(), 0u);
  EXPECT_EQ(ingest_.scan("", "", ts(UINT64_MAX), 100), std::vector<KeyVersion>{});
  EXPECT_TRUE(ingest_.put("a", ts(1), "again").is_ok());
}

// --- bytes -------------------------------------------------------------------------------

TEST(IngestBytes, EachVersionIsChargedKeyValueAndOverhead) {
  IngestLayer ingest;
  ASSERT_TRUE(ingest.put("key", ts(1), "value").is_ok());
  EXPECT_EQ(ingest.bytes(), 3 + 5 + kOverhead);
  ASSERT_TRUE(ingest.put("key", ts(2), std::nullopt).is_ok());
  EXPECT_EQ(ingest.bytes(), (3 + 5 + kOverhead) + (3 + kOverhead));
  ASSERT_TRUE(ingest.put("k2", ts(1), "").is_ok());
  EXPECT_EQ(ingest.bytes(), (3 + 5 + kOverhead) + (3 + kOverhead) + (2 + kOverhead));
  // Refused puts charge nothing.
  EXPECT_FALSE(ingest.put("key", ts(2), "zz").is_ok());
  EXPECT_FALSE(ingest.put("new", ts(0), "zz").is_ok());
  EXPECT_EQ(ingest.bytes(), (3 + 5 + kOverhead) + (3 + kOverhead) + (2 + kOverhead));
  ingest.prune_through(ts(1));
  EXPECT_EQ(ingest.bytes(), 3 + kOverhead);
}

// --- against a reference model -----------------------------------------------------------

// Every key's full history; a pruned version is erased, as the ingest layer erases it.
using Model = std::map<std::string, std::map<uint64_t, std::optional<std::string>>>;

const std::optional<std::string>* model_get(const Model& model, const std::string& key,
                                            uint64_t read_ts, uint64_t* version_ts) {
  auto k = model.find(key);
  if (k == model.end()) return nullptr;
  auto v = k->second.upper_bound(read_ts);
  if (v == k->second.begin()) return nullptr;
  --v;
  *version_ts = v->first;
  return &v->second;
}

std::vector<KeyVersion> model_scan(const Model& model, const std::string& lo, const std::string& hi,
                                   uint64_t read_ts, size_t limit) {
  std::vector<KeyVersion> out;
  for (const auto& [key, versions] : model) {
    if (out.size() >= limit) break;
    if (key < lo || (!hi.empty() && key >= hi)) continue;
    uint64_t version_ts = 0;
    if (const auto* value = model_get(model, key, read_ts, &version_ts)) {
      out.push_back(kv(key, version_ts, *value));
    }
  }
  return out;
}

size_t model_bytes(const Model& model) {
  size_t bytes = 0;
  for (const auto& [key, versions] : model) {
    for (const auto& [t, value] : versions) {
      bytes += key.size() + (value ? value->size() : 0) + kOverhead;
    }
  }
  return bytes;
}

RC_GTEST_PROP(IngestModel, MatchesAReferenceModel, ()) {
  const std::vector<std::string> keys = {"", "a", "ab", "b", std::string("b\0", 2), "c", "zz"};
  const auto key_gen = rc::gen::elementOf(keys);
  const auto ts_gen = rc::gen::inRange<uint64_t>(0, 60);

  IngestLayer ingest;
  Model model;
  uint64_t newest_ts = 0;
  const int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; step++) {
    const int op = *rc::gen::inRange(0, 100);
    if (op < 55) {
      // Few keys, timestamps and values, so refusals, redos and successes all occur.
      const std::string key = *key_gen;
      const uint64_t t = *ts_gen;
      std::optional<std::string> value;
      if (*rc::gen::inRange(0, 4) != 0) {
        value = *rc::gen::container<std::string>(*rc::gen::inRange(0, 3),
                                                 rc::gen::elementOf(std::string("xy\0", 3)));
      }
      Status s = ingest.put(key, Timestamp(t), value);

      auto& versions = model[key];
      bool ok;
      if (t == 0) {
        ok = false;
      } else if (versions.empty() || versions.rbegin()->first < t) {
        versions[t] = value;
        newest_ts = std::max(newest_ts, t);
        ok = true;
      } else {
        ok = versions.rbegin()->first == t && versions.rbegin()->second == value;
      }
      if (versions.empty()) model.erase(key);
      RC_ASSERT(s.is_ok() == ok);
      if (!ok) RC_ASSERT(s.code() == Code::kInvalidArgument);
    } else if (op < 62) {
      const uint64_t p = *ts_gen;
      ingest.prune_through(Timestamp(p));
      for (auto it = model.begin(); it != model.end();) {
        auto& versions = it->second;
        versions.erase(versions.begin(), versions.upper_bound(p));
        it = versions.empty() ? model.erase(it) : std::next(it);
      }
    } else if (op < 63) {
      ingest.clear();
      model.clear();
      newest_ts = 0;
    } else if (op < 85) {
      const std::string key = *key_gen;
      const uint64_t read_ts = *ts_gen;
      uint64_t version_ts = 0;
      const auto* expected = model_get(model, key, read_ts, &version_ts);
      const Version* got = ingest.get(key, Timestamp(read_ts));
      RC_ASSERT((got == nullptr) == (expected == nullptr));
      if (got != nullptr) RC_ASSERT(*got == (Version{Timestamp(version_ts), *expected}));
    } else if (op < 95) {
      const std::string lo = *key_gen;
      const std::string hi = *key_gen;
      const uint64_t read_ts = *ts_gen;
      const size_t limit = *rc::gen::inRange<size_t>(0, 8);
      RC_ASSERT(ingest.scan(lo, hi, Timestamp(read_ts), limit) ==
                model_scan(model, lo, hi, read_ts, limit));
    } else {
      const uint64_t t = *ts_gen;
      RC_ASSERT(ingest.collect_through(Timestamp(t)) == model_scan(model, "", "", t, SIZE_MAX));
    }

    size_t versions = 0;
    for (const auto& [key, history] : model) versions += history.size();
    RC_ASSERT(ingest.key_count() == model.size());
    RC_ASSERT(ingest.version_count() == versions);
    RC_ASSERT(ingest.bytes() == model_bytes(model));
    RC_ASSERT(ingest.newest_ts() == Timestamp(newest_ts));
  }
}

// prune_some in steps ends where prune_through ends, and between steps every read at or
// above the prune point answers as it does after the whole prune (a pick-up prunes in
// steps while the node serves reads at its applied timestamp).
RC_GTEST_PROP(IngestPruneSome, StepsEndAsOnePruneAndReadsAnswerTheSameBetween, ()) {
  const std::vector<std::string> keys = {"", "a", "ab", "b", std::string("b\0", 2), "c", "zz"};
  IngestLayer stepped;
  IngestLayer whole;
  const int puts = *rc::gen::inRange(0, 80);
  for (int i = 0; i < puts; i++) {
    const std::string key = *rc::gen::elementOf(keys);
    const uint64_t t = *rc::gen::inRange<uint64_t>(1, 60);
    std::optional<std::string> value;
    if (*rc::gen::inRange(0, 4) != 0) value = std::string(*rc::gen::inRange(0, 3), 'v');
    Status a = stepped.put(key, Timestamp(t), value);
    Status b = whole.put(key, Timestamp(t), value);
    RC_ASSERT(a.is_ok() == b.is_ok());
  }
  const Timestamp prune_ts(*rc::gen::inRange<uint64_t>(0, 60));
  const size_t step = *rc::gen::inRange<size_t>(1, 4);
  whole.prune_through(prune_ts);
  std::vector<std::string> more_keys = keys;
  for (const char* k : {"0", "aa", "b\x01", "bz", "zzz", "\xff"}) more_keys.push_back(k);
  std::optional<std::string> next = std::string();
  int steps = 0;
  while (next) {
    next = stepped.prune_some(prune_ts, *next, step);
    steps++;
    RC_ASSERT(steps <= 200);
    // Between steps the node keeps applying writes, all above the prune point, new keys
    // among them: the walk takes them in (or not) and ends as the whole prune does.
    const int between = *rc::gen::inRange(0, 3);
    for (int i = 0; i < between; i++) {
      const std::string key = *rc::gen::elementOf(more_keys);
      const uint64_t t = *rc::gen::inRange<uint64_t>(prune_ts.value + 1, prune_ts.value + 40);
      Status a = stepped.put(key, Timestamp(t), "w");
      Status b = whole.put(key, Timestamp(t), "w");
      RC_ASSERT(a.is_ok() == b.is_ok());
    }
    if (*rc::gen::inRange(0, 3) == 0) {
      // A scan between steps brings the order up to date mid-walk.
      RC_ASSERT(stepped.scan("", "", Timestamp(UINT64_MAX), SIZE_MAX).size() ==
                stepped.key_count());
    }
    for (uint64_t read = prune_ts.value; read <= 100; read += 7) {
      for (const std::string& key : more_keys) {
        const Version* x = stepped.get(key, Timestamp(read));
        const Version* y = whole.get(key, Timestamp(read));
        // A key not pruned yet may still hold its version at or below the point, which a
        // checkpoint at the point holds too: what a read sees is the same value.
        if (y != nullptr) {
          RC_ASSERT(x != nullptr);
          RC_ASSERT(x->value == y->value);
        } else if (x != nullptr) {
          RC_ASSERT(x->ts <= prune_ts);
        }
      }
    }
  }
  RC_ASSERT(stepped.key_count() == whole.key_count());
  RC_ASSERT(stepped.version_count() == whole.version_count());
  RC_ASSERT(stepped.bytes() == whole.bytes());
  RC_ASSERT(stepped.scan("", "", Timestamp(UINT64_MAX), SIZE_MAX) ==
            whole.scan("", "", Timestamp(UINT64_MAX), SIZE_MAX));
}

TEST(IngestPruneSome, StopsAfterMaxKeysAndResumesFromTheKeyItNames) {
  IngestLayer ingest;
  for (std::string k : {"a", "b", "c", "d"}) ASSERT_TRUE(ingest.put(k, ts(1), "v").is_ok());
  ASSERT_TRUE(ingest.put("e", ts(9), "v").is_ok());  // above the point: a walk, not a clear
  auto next = ingest.prune_some(ts(5), "", 2);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, "c");
  EXPECT_EQ(ingest.key_count(), 3u);  // c, d, e
  next = ingest.prune_some(ts(5), *next, 2);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, "e");
  next = ingest.prune_some(ts(5), *next, 2);
  EXPECT_FALSE(next.has_value());
  EXPECT_EQ(ingest.key_count(), 1u);
  // Resuming from a key that is gone (a clear between steps) finds nothing to do.
  ingest.clear();
  EXPECT_FALSE(ingest.prune_some(ts(5), "c", 2).has_value());
}

// Keys put while a walk is under way are not in the order it walks; the walk takes in
// those after where it got to once it reaches the end, as a walk over a tree kept in order
// would have met them.
TEST(IngestPruneSome, AWalkTakesInKeysPutAfterWhereItGotTo) {
  IngestLayer ingest;
  for (std::string k : {"b", "c", "d", "e"}) ASSERT_TRUE(ingest.put(k, ts(1), "v").is_ok());
  ASSERT_TRUE(ingest.put("x", ts(9), "v").is_ok());  // above the point: a walk, not a clear
  auto next = ingest.prune_some(ts(5), "", 2);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, "d");
  // Behind the walk and ahead of it, both at or below the point.
  ASSERT_TRUE(ingest.put("a", ts(2), "v").is_ok());
  ASSERT_TRUE(ingest.put("z", ts(2), "v").is_ok());
  ASSERT_TRUE(ingest.put("c", ts(7), "v").is_ok());  // a key the walk emptied takes writes
  EXPECT_EQ(ingest.key_count(), 6u);                 // a, c, d, e, x, z
  next = ingest.prune_some(ts(5), *next, 10);
  EXPECT_FALSE(next.has_value());
  // d and e went, and z ahead of the walk; a, behind it, stays until the next walk.
  EXPECT_EQ(ingest.scan("", "", ts(UINT64_MAX), 100),
            (std::vector<KeyVersion>{kv("a", 2, "v"), kv("c", 7, "v"), kv("x", 9, "v")}));
  EXPECT_EQ(ingest.key_count(), 3u);
  EXPECT_EQ(ingest.version_count(), 3u);
  EXPECT_EQ(ingest.bytes(), 3 * (1 + 1 + kOverhead));
  ingest.prune_through(ts(5));
  EXPECT_EQ(ingest.scan("", "", ts(UINT64_MAX), 100),
            (std::vector<KeyVersion>{kv("c", 7, "v"), kv("x", 9, "v")}));
}

// Keys sharing their first 16 bytes are ordered by the rest, and a shorter key before a
// longer one it begins (zero bytes included): the prefixes the order compares first must
// never decide against the keys' own order.
TEST(IngestOrder, KeysSharingLongPrefixesKeepTheirOrder) {
  IngestLayer ingest;
  const std::string base(16, 'k');
  const std::vector<std::string> keys = {std::string("a"),
                                         std::string("a\0", 2),
                                         std::string("a\0\0", 3),
                                         std::string("a\x01"),
                                         base,
                                         base + std::string("\0", 1),
                                         base + "a",
                                         base + "b",
                                         base + "b" + base,
                                         std::string(15, 'k') + "l",
                                         std::string("\xff\xff")};
  uint64_t t = 1;
  for (auto it = keys.rbegin(); it != keys.rend(); ++it)
    ASSERT_TRUE(ingest.put(*it, ts(t++), "v").is_ok());
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> got;
  for (const KeyVersion& k : ingest.scan("", "", ts(UINT64_MAX), 100)) got.push_back(k.key);
  EXPECT_EQ(got, sorted);
  // Every key is where a scan starting at it begins.
  for (const std::string& k : keys) {
    auto from = ingest.scan(k, "", ts(UINT64_MAX), 1);
    ASSERT_EQ(from.size(), 1u);
    EXPECT_EQ(from[0].key, k);
  }
  EXPECT_EQ(ingest.scan(base + "a", base + "b", ts(UINT64_MAX), 100).size(), 1u);
}

}  // namespace
}  // namespace quire
