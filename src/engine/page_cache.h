// The page cache: decoded stable pages by (table, page id, lsn), with a byte budget and
// least-recently-used eviction. A page version never changes, so entries are never
// invalidated, only evicted. Pages handed out stay valid while the caller holds them.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

#include "base/ids.h"
#include "engine/btree_page.h"

namespace quire {

struct PageKey {
  TableId table;
  PageId page;
  Lsn lsn;
  friend bool operator==(const PageKey&, const PageKey&) = default;
};

struct PageKeyHash {
  size_t operator()(const PageKey& k) const noexcept;
};

struct PageCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
};

class PageCache {
 public:
  explicit PageCache(size_t budget_bytes) : budget_bytes_(budget_bytes) {}

  // The page, marked most recently used; nullptr on a miss.
  std::shared_ptr<const BtreeNode> get(const PageKey& key);
  // Inserts (or refreshes) a page charged at `bytes`, then evicts least recently used
  // pages until the total is within the budget. A page larger than the whole budget is
  // not kept.
  void put(const PageKey& key, std::shared_ptr<const BtreeNode> node, size_t bytes);
  void clear();

  size_t bytes() const { return bytes_; }
  size_t budget_bytes() const { return budget_bytes_; }
  size_t size() const { return map_.size(); }
  const PageCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    PageKey key;
    std::shared_ptr<const BtreeNode> node;
    size_t bytes;
  };
  size_t budget_bytes_;
  size_t bytes_ = 0;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<PageKey, std::list<Entry>::iterator, PageKeyHash> map_;
  PageCacheStats stats_;
};

}  // namespace quire
