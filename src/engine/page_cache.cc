#include "engine/page_cache.h"

#include <utility>

#include "base/assert.h"
#include "base/hash.h"

namespace quire {

size_t PageKeyHash::operator()(const PageKey& k) const noexcept {
  // Every field is folded in, starting from a constant: seeding with mix64(table) instead
  // would make the first fold symmetric in table and page.
  uint64_t h = hash_fold(0, k.table.value);
  h = hash_fold(h, k.page.value);
  h = hash_fold(h, k.lsn.value);
  return static_cast<size_t>(h);
}

std::shared_ptr<const BtreeNode> PageCache::get(const PageKey& key) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    stats_.misses++;
    return nullptr;
  }
  stats_.hits++;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->node;
}

void PageCache::put(const PageKey& key, std::shared_ptr<const BtreeNode> node, size_t bytes) {
  QUIRE_ASSERT(node != nullptr);
  // A refresh replaces the old entry outright, so its charge never counts twice.
  if (auto it = map_.find(key); it != map_.end()) {
    QUIRE_ASSERT(bytes_ >= it->second->bytes);
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    map_.erase(it);
  }
  // Keeping it would evict everything else and still break the budget.
  if (bytes > budget_bytes_) return;

  lru_.push_front(Entry{key, std::move(node), bytes});
  map_.emplace(key, lru_.begin());
  bytes_ += bytes;
  // The new entry is at the front and fits alone, so the loop stops before reaching it;
  // each pass removes one entry, so it runs at most size() times.
  while (bytes_ > budget_bytes_) {
    QUIRE_ASSERT(lru_.size() > 1);
    Entry& victim = lru_.back();
    QUIRE_ASSERT(bytes_ >= victim.bytes);
    bytes_ -= victim.bytes;
    map_.erase(victim.key);
    lru_.pop_back();
    stats_.evictions++;
  }
  QUIRE_ASSERT(map_.size() == lru_.size());
}

void PageCache::clear() {
  map_.clear();
  lru_.clear();
  bytes_ = 0;
}

}  // namespace quire
