#include "engine/ingest.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/assert.h"

namespace quire {

namespace {

// What one version is charged in bytes(): its key, its value and a fixed overhead for the
// vector slot and allocator headers. The key is charged per version, not per key, so a
// version's charge depends only on itself and pruning can subtract it exactly.
constexpr size_t kVersionOverheadBytes = 32;

size_t version_charge(size_t key_size, const Version& v) {
  return key_size + (v.value ? v.value->size() : 0) + kVersionOverheadBytes;
}

// The newest version at or below read_ts in a ts-ordered history, or nullptr.
const Version* newest_at_or_below(const std::vector<Version>& versions, Timestamp read_ts) {
  auto it = std::upper_bound(versions.begin(), versions.end(), read_ts,
                             [](Timestamp ts, const Version& v) { return ts < v.ts; });
  if (it == versions.begin()) return nullptr;
  return &*std::prev(it);
}

// A key's first 16 bytes as two big-endian numbers, zero padded: comparing them compares
// the keys' first 16 bytes as the keys' own order does (a tie needs the whole keys).
void key_prefix(std::string_view key, uint64_t* hi, uint64_t* lo) {
  unsigned char bytes[16] = {};
  // An empty view may hold a null pointer, which memcpy must not be given.
  if (!key.empty()) std::memcpy(bytes, key.data(), std::min<size_t>(key.size(), sizeof bytes));
  uint64_t h = 0;
  uint64_t l = 0;
  for (int i = 0; i < 8; i++) {
    h = (h << 8) | bytes[i];
    l = (l << 8) | bytes[8 + i];
  }
  *hi = h;
  *lo = l;
}

}  // namespace

IngestLayer::Slot IngestLayer::slot_of(Keys::value_type& entry) {
  Slot slot;
  key_prefix(entry.first, &slot.hi, &slot.lo);
  slot.entry = &entry;
  return slot;
}

bool IngestLayer::slot_less(const Slot& a, const Slot& b) {
  if (a.hi != b.hi) return a.hi < b.hi;
  if (a.lo != b.lo) return a.lo < b.lo;
  return a.entry->first < b.entry->first;
}

size_t IngestLayer::lower_slot(std::string_view key) const {
  uint64_t hi = 0;
  uint64_t lo = 0;
  key_prefix(key, &hi, &lo);
  auto it = std::partition_point(order_.begin(), order_.end(), [&](const Slot& s) {
    if (s.hi != hi) return s.hi < hi;
    if (s.lo != lo) return s.lo < lo;
    return std::string_view(s.entry->first) < key;
  });
  return static_cast<size_t>(it - order_.begin());
}

void IngestLayer::order() const {
  if (empty_keys_ > 0) drop_empty_keys();
  if (added_.empty()) return;
  std::sort(added_.begin(), added_.end(), slot_less);
  const auto mid = static_cast<std::ptrdiff_t>(order_.size());
  order_.insert(order_.end(), added_.begin(), added_.end());
  std::inplace_merge(order_.begin(), order_.begin() + mid, order_.end(), slot_less);
  added_.clear();
}

void IngestLayer::drop_empty_keys() const {
  if (empty_keys_ == 0) return;
  std::erase_if(order_, [&](const Slot& s) {
    if (!s.entry->second.empty()) return false;
    keys_.erase(keys_.find(std::string_view(s.entry->first)));
    return true;
  });
  // A key with no version is in order_ only: prune steps walk order_ alone.
  empty_keys_ = 0;
}

Status IngestLayer::put(std::string key, Timestamp ts, std::optional<std::string> value) {
  if (ts.is_zero()) return invalid_argument("ingest put at timestamp 0").at("ingest_put");
  const size_t key_size = key.size();
  // One lookup: the key is moved in only if it is new.
  auto [found, fresh] = keys_.try_emplace(std::move(key));
  if (fresh) {
    added_.push_back(slot_of(*found));
    live_keys_++;
  } else if (found->second.empty()) {
    // A key a prune step left with no version (still in order_): any timestamp is new.
    QUIRE_ASSERT(empty_keys_ > 0);
    empty_keys_--;
    live_keys_++;
  } else {
    const Version& newest = found->second.back();
    if (newest.ts == ts && newest.value == value) return Status::ok();  // a replayed write
    if (newest.ts >= ts) {
      return Status(Code::kInvalidArgument, "ingest put not above the key's newest version")
          .at("ingest_put")
          .with("ts", ts.value)
          .with("newest_ts", newest.ts.value);
    }
  }
  Version v{ts, std::move(value)};
  bytes_ += version_charge(key_size, v);
  found->second.push_back(std::move(v));
  versions_++;
  newest_ts_ = std::max(newest_ts_, ts);
  return Status::ok();
}

const Version* IngestLayer::get(std::string_view key, Timestamp read_ts) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return nullptr;
  return newest_at_or_below(it->second, read_ts);
}

std::vector<KeyVersion> IngestLayer::scan(std::string_view lo, std::string_view hi,
                                          Timestamp read_ts, size_t limit) const {
  std::vector<KeyVersion> out;
  if (limit == 0) return out;
  order();
  for (size_t i = lower_slot(lo); i < order_.size() && out.size() < limit; ++i) {
    const auto& [key, versions] = *order_[i].entry;
    if (!hi.empty() && key >= hi) break;
    const Version* v = newest_at_or_below(versions, read_ts);
    if (v != nullptr) out.push_back(KeyVersion{key, *v});
  }
  return out;
}

std::vector<KeyVersion> IngestLayer::collect_through(Timestamp ts) const {
  std::vector<KeyVersion> out;
  order();
  for (const Slot& slot : order_) {
    const Version* v = newest_at_or_below(slot.entry->second, ts);
    if (v != nullptr) out.push_back(KeyVersion{slot.entry->first, *v});
  }
  return out;
}

void IngestLayer::prune_through(Timestamp ts) {
  prune_some(ts, std::string_view(), SIZE_MAX);
}

std::optional<std::string> IngestLayer::prune_some(Timestamp ts, std::string_view from,
                                                   size_t max_keys) {
  if (ts >= newest_ts_ && keys_.size() <= max_keys) {
    // Every version goes (a checkpoint of everything applied, the common case): no key
    // needs looking at. (In steps, only when they all fit in this one: freeing them is
    // most of the cost.)
    keys_.clear();
    order_.clear();
    added_.clear();
    live_keys_ = 0;
    empty_keys_ = 0;
    bytes_ = 0;
    versions_ = 0;
    return std::nullopt;
  }
  // A walk begins: every key put so far takes its place in the order.
  if (from.empty()) order();
  size_t looked_at = 0;
  std::optional<std::string> last;  // the last key this call looked at, once it reached the end
  size_t i = lower_slot(from);
  while (true) {
    const size_t first = i;
    for (; i < order_.size(); ++i) {
      auto& [key, versions] = *order_[i].entry;
      if (looked_at++ == max_keys) return key;
      if (versions.empty()) continue;
      auto keep = std::upper_bound(versions.begin(), versions.end(), ts,
                                   [](Timestamp t, const Version& v) { return t < v.ts; });
      for (auto v = versions.begin(); v != keep; ++v) {
        size_t charge = version_charge(key.size(), *v);
        QUIRE_ASSERT(bytes_ >= charge && versions_ > 0);
        bytes_ -= charge;
        versions_--;
      }
      versions.erase(versions.begin(), keep);
      if (versions.empty()) {
        QUIRE_ASSERT(live_keys_ > 0);
        live_keys_--;
        empty_keys_++;
      }
    }
    if (added_.empty()) break;
    // The end of the order, and keys were put since it was brought up to date: those
    // after where this call got to are part of the walk too.
    if (i > first) last = order_.back().entry->first;
    order();
    if (last) {
      i = lower_slot(*last);
      if (i < order_.size() && order_[i].entry->first == *last) ++i;
    } else {
      i = lower_slot(from);
    }
  }
  drop_empty_keys();
  return std::nullopt;
}

void IngestLayer::clear() {
  keys_.clear();
  order_.clear();
  added_.clear();
  live_keys_ = 0;
  empty_keys_ = 0;
  bytes_ = 0;
  versions_ = 0;
  newest_ts_ = Timestamp();
}

}  // namespace quire
