// The stable copy-on-write B+tree of one table, stored in the page service.
//
// A tree is named by its root: (page id, LSN). Every page version is immutable; a
// checkpoint rewrites the pages its changes touch, bottom-up, each as a new version
// (same page id, a new LSN; new page ids for split siblings), so the previous
// checkpoint's tree stays readable until the page service's retention drops it. A
// parent names each child's exact LSN, and the LSN is in the page's AAD, so an older
// version of a page put back anywhere is detected (Corruption), never read.
//
// Pages are sealed under the table's DEK (crypto/page_cipher.h) and decoded pages are
// kept in the PageCache. Deletes remove entries; a leaf or internal page left empty is
// dropped (a DISCARD record); pages are not merged otherwise.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/key_ring.h"
#include "engine/btree_page.h"
#include "engine/checkpoint_format.h"
#include "engine/ingest.h"
#include "engine/page_cache.h"
#include "pagelog/record_writer.h"

namespace quire {

// Where stable pages come from and how they are opened.
struct PageSource {
  Executor& executor;
  ReplicationClient& client;
  KeyRing& ring;
  PageCache& cache;
  Nanos timeout;
  bool encrypt = true;  // false only in benchmarks that measure what encryption costs
};

// Fetches, authenticates and decodes page (table, page, lsn), through the cache.
// Unavailable/NotYetMaterialized (retriable) when no server has it yet; Corruption (with
// the ids) when the bytes are not exactly that page version; NotFound for a missing DEK.
Task<Result<std::shared_ptr<const BtreeNode>>> load_page(PageSource& source, TableId table,
                                                         PageId page, Lsn lsn);
// load_page's fetch, for a caller that looked in the cache already (and missed).
Task<Result<std::shared_ptr<const BtreeNode>>> fetch_page(PageSource& source, TableId table,
                                                          PageId page, Lsn lsn);

// The value of `key` in the tree under `root`, or nullopt. `key` must outlive the call
// (the caller awaits it at once).
Task<Result<std::optional<std::string>>> tree_get(PageSource& source, TableRoot root,
                                                  const std::string& key);
// tree_get without waiting: its answer when every page on the way is in `cache`, nullopt
// when one is not (or the tree is deeper than a read goes; tree_get reports that).
std::optional<std::optional<std::string>> tree_get_cached(PageCache& cache, TableRoot root,
                                                          std::string_view key);

// An in-order cursor over a tree.
class TreeCursor {
 public:
  TreeCursor(PageSource& source, TableRoot root) : source_(source), root_(root) {}
  // Positions at the first entry with key >= `key`.
  Task<Status> seek(std::string key);
  bool valid() const { return !stack_.empty(); }
  const LeafEntry& entry() const { return stack_.back().node->entries[stack_.back().index]; }
  Task<Status> next();

 private:
  struct Frame {
    std::shared_ptr<const BtreeNode> node;
    size_t index;
  };
  // Descends from stack_.back() (an internal frame) to its leftmost leaf.
  Task<Status> descend_leftmost();
  // Pops exhausted frames and advances; leaves the stack on a valid leaf entry or empty.
  Task<Status> settle();

  PageSource& source_;
  TableRoot root_;
  std::vector<Frame> stack_;
};

struct TreeShape {
  size_t leaf_bytes_max = 16 * 1024;  // a leaf's encoded size above this splits (>= 512)
  size_t fanout_max = 64;             // an internal page with more children splits (>= 4)
};

// The largest key and value a table takes (the engine refuses larger writes).
inline constexpr size_t kKeyBytesMax = 4096;
inline constexpr size_t kValueBytesMax = 1u << 20;

// One checkpoint's writes for one table: new page versions and discards, in LSN order.
struct TreeBuild {
  TableId table;
  DataKey* dek;  // null: pages are written unencrypted (benchmarks only)
  Random& random;
  RecordWriter& writer;
  PageId& largest_page_id;  // page ids are allocated above it, never reused
  TreeShape shape;
  std::vector<Record> records;
  std::vector<std::pair<PageKey, std::shared_ptr<const BtreeNode>>> new_pages;
  int64_t pages_delta = 0;
  int64_t bytes_delta = 0;
  // When set, awaited before every `leaves_per_step`-th leaf is rewritten: a long build
  // lets the rest of its node run between its steps (Engine::checkpoint yields there).
  // An error ends the build with it.
  std::function<Task<Status>()> between_steps;
  size_t leaves_per_step = 0;
  size_t leaves_since_step = 0;
};

// Applies `changes` (ascending keys, each key's newest version; tombstones delete) to the
// tree under `root` and returns the new root. The new pages' records are in build.records
// (written by the caller); nothing is written here.
Task<Result<TableRoot>> tree_apply(PageSource& source, TreeBuild& build, TableRoot root,
                                   std::vector<KeyVersion> changes);

}  // namespace quire
