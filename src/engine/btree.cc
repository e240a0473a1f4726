#include "engine/btree.h"

#include <algorithm>

#include <fmt/format.h>

#include "crypto/page_cipher.h"

namespace quire {

namespace {

size_t sealed_size(const BtreeNode& node, bool encrypt) {
  return node.encoded_size() + (encrypt ? kSealedOverheadBytes : 0);
}

size_t leaf_entry_bytes(const LeafEntry& e) {
  return e.key.size() + e.value.size() + 8 + 2 * kVarint32LengthMax;
}
size_t child_bytes(const ChildRef& c) {
  return c.first_key.size() + 16 + kVarint32LengthMax;
}

// Splits `n` items into chunks whose byte sum stays near `target` (at least one item each).
template <typename T, typename SizeOf>
std::vector<std::vector<T>> chunk(std::vector<T> items, size_t limit, size_t count_max,
                                  SizeOf size_of) {
  size_t total = 0;
  for (const T& t : items) total += size_of(t);
  std::vector<std::vector<T>> out;
  if (total <= limit && items.size() <= count_max) {
    out.push_back(std::move(items));
    return out;
  }
  // Aim for three-quarters full so the next few inserts do not split again, but give
  // every part at least two items: a level of n references then becomes at most n/2
  // pages, so growing roots always converges, however large the keys.
  size_t parts = std::max<size_t>({2, (total + limit * 3 / 4 - 1) / (limit * 3 / 4),
                                   (items.size() + count_max * 3 / 4 - 1) / (count_max * 3 / 4)});
  if (items.size() >= 4) parts = std::min(parts, items.size() / 2);
  size_t per_part_bytes = (total + parts - 1) / parts;
  size_t per_part_count = (items.size() + parts - 1) / parts;
  const size_t min_count = items.size() >= 4 ? 2 : 1;
  std::vector<T> cur;
  size_t cur_bytes = 0;
  size_t left = items.size();
  for (T& t : items) {
    size_t b = size_of(t);
    // Close the part when it is full, unless it is still below the minimum or closing it
    // would leave the last part below the minimum.
    if (cur.size() >= min_count && left >= min_count &&
        (cur_bytes + b > per_part_bytes || cur.size() >= per_part_count)) {
      out.push_back(std::move(cur));
      cur.clear();
      cur_bytes = 0;
    }
    cur_bytes += b;
    cur.push_back(std::move(t));
    left--;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Seals `node` as a new version of `page` (a fresh page id when `page` is 0) and adds
// its record to the build. Returns the reference a parent stores.
Result<ChildRef> emit(TreeBuild& build, PageId page, Lsn backlink, BtreeNode node,
                      std::string first_key) {
  if (page.is_zero()) {
    build.largest_page_id = build.largest_page_id.next();
    page = build.largest_page_id;
    build.pages_delta++;
  }
  Record r;
  r.type = RecordType::kPage;
  r.table = build.table;
  r.page = page;
  r.lsn = build.writer.allocate();
  r.backlink_lsn = backlink;
  Bytes plain = encode_btree_node(node);
  if (build.dek) {
    PayloadPlace place{build.table, page, r.lsn, RecordType::kPage};
    QUIRE_RETURN_IF_ERROR(build.dek->seal(place, plain, build.random, r.payload));
  } else {
    r.payload = std::move(plain);
  }
  build.bytes_delta += static_cast<int64_t>(r.payload.size());
  node.index_keys();
  PageKey key{build.table, page, r.lsn};
  build.new_pages.emplace_back(key, std::make_shared<const BtreeNode>(std::move(node)));
  ChildRef ref{std::move(first_key), page, r.lsn};
  build.records.push_back(std::move(r));
  return ref;
}

void emit_discard(TreeBuild& build, PageId page, Lsn backlink) {
  Record r;
  r.type = RecordType::kDiscard;
  r.table = build.table;
  r.page = page;
  r.lsn = build.writer.allocate();
  r.backlink_lsn = backlink;
  build.records.push_back(std::move(r));
  build.pages_delta--;
}

std::vector<LeafEntry> merge_leaf(const std::vector<LeafEntry>& old,
                                  std::span<const KeyVersion> changes) {
  std::vector<LeafEntry> out;
  out.reserve(old.size() + changes.size());
  size_t i = 0, j = 0;
  while (i < old.size() || j < changes.size()) {
    if (j == changes.size() || (i < old.size() && old[i].key < changes[j].key)) {
      out.push_back(old[i++]);
      continue;
    }
    const KeyVersion& c = changes[j++];
    if (i < old.size() && old[i].key == c.key) i++;  // replaced or deleted
    if (c.version.value) out.push_back(LeafEntry{c.key, *c.version.value, c.version.ts});
  }
  return out;
}

// Builds pages for `children` (already emitted) under a parent level, splitting by
// fanout; the first returned ref's page is `page` (0 = new).
Result<std::vector<ChildRef>> emit_internal(TreeBuild& build, PageId page, Lsn backlink,
                                            std::vector<ChildRef> children) {
  auto parts =
      chunk(std::move(children), build.shape.leaf_bytes_max, build.shape.fanout_max, child_bytes);
  std::vector<ChildRef> refs;
  for (size_t p = 0; p < parts.size(); p++) {
    std::string first = parts[p].front().first_key;
    parts[p].front().first_key.clear();
    BtreeNode node;
    node.type = BtreePageType::kInternal;
    node.children = std::move(parts[p]);
    auto ref = emit(build, p == 0 ? page : PageId(), p == 0 ? backlink : Lsn(), std::move(node),
                    std::move(first));
    if (!ref.is_ok()) return ref.status();
    refs.push_back(std::move(*ref));
  }
  return refs;
}

Result<std::vector<ChildRef>> emit_leaves(TreeBuild& build, PageId page, Lsn backlink,
                                          std::vector<LeafEntry> entries) {
  std::vector<ChildRef> refs;
  if (entries.empty()) return refs;
  auto parts = chunk(std::move(entries), build.shape.leaf_bytes_max, kBtreePageEntriesMax / 2,
                     leaf_entry_bytes);
  for (size_t p = 0; p < parts.size(); p++) {
    std::string first = parts[p].front().key;
    BtreeNode node;
    node.type = BtreePageType::kLeaf;
    node.entries = std::move(parts[p]);
    auto ref = emit(build, p == 0 ? page : PageId(), p == 0 ? backlink : Lsn(), std::move(node),
                    std::move(first));
    if (!ref.is_ok()) return ref.status();
    refs.push_back(std::move(*ref));
  }
  return refs;
}

// Rewrites the subtree at `ref` with `changes` (all within its range). Returns what
// replaces it in its parent: nothing (it emptied), itself, or itself and split siblings.
Task<Result<std::vector<ChildRef>>> rewrite(PageSource& source, TreeBuild& build, ChildRef ref,
                                            std::span<const KeyVersion> changes) {
  auto loaded = co_await load_page(source, build.table, ref.page, ref.lsn);
  if (!loaded.is_ok()) co_return loaded.status();
  std::shared_ptr<const BtreeNode> node = std::move(*loaded);
  build.bytes_delta -= static_cast<int64_t>(sealed_size(*node, build.dek != nullptr));

  if (node->is_leaf()) {
    if (build.between_steps && ++build.leaves_since_step >= build.leaves_per_step) {
      build.leaves_since_step = 0;
      Status st = co_await build.between_steps();
      if (!st.is_ok()) co_return st;
    }
    std::vector<LeafEntry> merged = merge_leaf(node->entries, changes);
    if (merged.empty()) {
      emit_discard(build, ref.page, ref.lsn);
      co_return std::vector<ChildRef>{};
    }
    auto refs = emit_leaves(build, ref.page, ref.lsn, std::move(merged));
    if (!refs.is_ok()) co_return refs.status();
    (*refs)[0].first_key = ref.first_key;  // the parent's separator still bounds it
    co_return std::move(*refs);
  }

  std::vector<ChildRef> children;
  size_t j = 0;
  for (size_t i = 0; i < node->children.size(); i++) {
    ChildRef child = node->children[i];
    size_t end = j;
    if (i + 1 == node->children.size()) {
      end = changes.size();
    } else {
      while (end < changes.size() && changes[end].key < node->children[i + 1].first_key) end++;
    }
    if (end == j) {
      children.push_back(std::move(child));
      continue;
    }
    auto sub = co_await rewrite(source, build, child, changes.subspan(j, end - j));
    if (!sub.is_ok()) co_return sub.status();
    for (ChildRef& c : *sub) children.push_back(std::move(c));
    j = end;
  }
  if (children.empty()) {
    emit_discard(build, ref.page, ref.lsn);
    co_return std::vector<ChildRef>{};
  }
  // The first child now covers everything below the second (its old range may be gone).
  children.front().first_key.clear();
  auto refs = emit_internal(build, ref.page, ref.lsn, std::move(children));
  if (!refs.is_ok()) co_return refs.status();
  (*refs)[0].first_key = ref.first_key;
  co_return std::move(*refs);
}

}  // namespace

Task<Result<std::shared_ptr<const BtreeNode>>> load_page(PageSource& source, TableId table,
                                                         PageId page, Lsn lsn) {
  if (auto hit = source.cache.get(PageKey{table, page, lsn})) co_return hit;
  co_return co_await fetch_page(source, table, page, lsn);
}

Task<Result<std::shared_ptr<const BtreeNode>>> fetch_page(PageSource& source, TableId table,
                                                          PageId page, Lsn lsn) {
  const PageKey key{table, page, lsn};
  auto records = co_await source.client.get_page(table, page, lsn,
                                                 source.executor.deadline_after(source.timeout));
  if (!records.is_ok()) {
    co_return Status(records.status())
        .at("load_page")
        .with("table", table.value)
        .with("page", page.value)
        .with("lsn", lsn.value);
  }
  // A stable page is always one full image at exactly the LSN its parent names.
  if (records->size() != 1 || records->front().type != RecordType::kPage ||
      records->front().lsn != lsn || records->front().table != table ||
      records->front().page != page) {
    co_return Status(Code::kCorruption, "page service returned another version of the page")
        .at("load_page")
        .with("table", table.value)
        .with("page", page.value)
        .with("lsn", lsn.value)
        .with("got_lsn", records->empty() ? 0 : records->back().lsn.value);
  }
  Result<Bytes> plain = records->front().payload;
  if (source.encrypt) {
    PayloadPlace place{table, page, lsn, RecordType::kPage};
    plain = open_sealed(source.ring.lookup(), place, records->front().payload);
    if (!plain.is_ok()) co_return plain.status();
  }
  auto node = decode_btree_node(*plain);
  if (!node.is_ok()) {
    co_return Status(node.status())
        .with("table", table.value)
        .with("page", page.value)
        .with("lsn", lsn.value);
  }
  auto shared = std::make_shared<const BtreeNode>(std::move(*node));
  source.cache.put(key, shared, sealed_size(*shared, source.encrypt));
  co_return shared;
}

namespace {

constexpr int kTreeDepthMax = 64;

// One level of a point read: a leaf answers it (true, `value` set), an internal node names
// the child to read next (false, `page` and `lsn` set).
bool point_step(const BtreeNode& n, std::string_view key, std::optional<std::string>* value,
                PageId* page, Lsn* lsn) {
  if (n.is_leaf()) {
    if (const LeafEntry* e = n.find(key)) {
      *value = e->value;
    } else {
      value->reset();
    }
    return true;
  }
  const ChildRef& c = n.children[n.child_index(key)];
  *page = c.page;
  *lsn = c.lsn;
  return false;
}

}  // namespace

std::optional<std::optional<std::string>> tree_get_cached(PageCache& cache, TableRoot root,
                                                          std::string_view key) {
  if (root.root_page.is_zero()) return std::optional<std::string>();
  PageId page = root.root_page;
  Lsn lsn = root.root_lsn;
  std::optional<std::string> value;
  for (int depth = 0; depth < kTreeDepthMax; depth++) {
    std::shared_ptr<const BtreeNode> node = cache.get(PageKey{root.table, page, lsn});
    if (!node) return std::nullopt;
    if (point_step(*node, key, &value, &page, &lsn)) return value;
  }
  return std::nullopt;
}

Task<Result<std::optional<std::string>>> tree_get(PageSource& source, TableRoot root,
                                                  const std::string& key) {
  if (root.root_page.is_zero()) co_return std::optional<std::string>();
  PageId page = root.root_page;
  Lsn lsn = root.root_lsn;
  std::optional<std::string> value;
  for (int depth = 0; depth < kTreeDepthMax; depth++) {
    // A cached page without a coroutine frame for load_page: the common case of a read.
    std::shared_ptr<const BtreeNode> node = source.cache.get(PageKey{root.table, page, lsn});
    if (!node) {
      auto loaded = co_await fetch_page(source, root.table, page, lsn);
      if (!loaded.is_ok()) co_return loaded.status();
      node = std::move(*loaded);
    }
    if (point_step(*node, key, &value, &page, &lsn)) co_return value;
  }
  co_return Status(Code::kCorruption, "tree deeper than 64 levels")
      .at("tree_get")
      .with("table", root.table.value);
}

Task<Status> TreeCursor::seek(std::string key) {
  stack_.clear();
  if (root_.root_page.is_zero()) co_return Status();
  PageId page = root_.root_page;
  Lsn lsn = root_.root_lsn;
  for (int depth = 0; depth < 64; depth++) {
    auto node = co_await load_page(source_, root_.table, page, lsn);
    if (!node.is_ok()) {
      stack_.clear();
      co_return node.status();
    }
    std::shared_ptr<const BtreeNode> n = std::move(*node);
    if (n->is_leaf()) {
      const size_t index = n->lower_bound(key);
      stack_.push_back(Frame{std::move(n), index});
      co_return co_await settle();
    }
    const size_t index = n->child_index(key);
    page = n->children[index].page;
    lsn = n->children[index].lsn;
    stack_.push_back(Frame{std::move(n), index});
  }
  stack_.clear();
  co_return Status(Code::kCorruption, "tree deeper than 64 levels")
      .at("tree_seek")
      .with("table", root_.table.value);
}

Task<Status> TreeCursor::next() {
  if (stack_.empty()) co_return Status();
  stack_.back().index++;
  co_return co_await settle();
}

Task<Status> TreeCursor::settle() {
  while (!stack_.empty()) {
    Frame& top = stack_.back();
    size_t size = top.node->is_leaf() ? top.node->entries.size() : top.node->children.size();
    if (top.index < size) {
      if (top.node->is_leaf()) co_return Status();
      Status st = co_await descend_leftmost();
      if (!st.is_ok()) co_return st;
      continue;
    }
    stack_.pop_back();
    if (!stack_.empty()) stack_.back().index++;
  }
  co_return Status();
}

Task<Status> TreeCursor::descend_leftmost() {
  const ChildRef c = stack_.back().node->children[stack_.back().index];
  if (stack_.size() >= 64) {
    stack_.clear();
    co_return Status(Code::kCorruption, "tree deeper than 64 levels").at("tree_cursor");
  }
  auto node = co_await load_page(source_, root_.table, c.page, c.lsn);
  if (!node.is_ok()) {
    stack_.clear();
    co_return node.status();
  }
  stack_.push_back(Frame{std::move(*node), 0});
  co_return Status();
}

Task<Result<TableRoot>> tree_apply(PageSource& source, TreeBuild& build, TableRoot root,
                                   std::vector<KeyVersion> changes) {
  TableRoot out = root;
  if (changes.empty()) co_return out;
  std::vector<ChildRef> level;
  if (root.root_page.is_zero()) {
    std::vector<LeafEntry> entries;
    for (const KeyVersion& c : changes) {
      if (c.version.value) entries.push_back(LeafEntry{c.key, *c.version.value, c.version.ts});
    }
    auto refs = emit_leaves(build, PageId(), Lsn(), std::move(entries));
    if (!refs.is_ok()) co_return refs.status();
    level = std::move(*refs);
  } else {
    ChildRef top{std::string(), root.root_page, root.root_lsn};
    auto refs = co_await rewrite(source, build, top, std::span<const KeyVersion>(changes));
    if (!refs.is_ok()) co_return refs.status();
    level = std::move(*refs);
  }
  // Grow new roots until one page holds the level.
  for (int depth = 0; level.size() > 1; depth++) {
    QUIRE_ASSERT(depth < 64);
    level.front().first_key.clear();
    auto refs = emit_internal(build, PageId(), Lsn(), std::move(level));
    if (!refs.is_ok()) co_return refs.status();
    level = std::move(*refs);
  }
  if (level.empty()) {
    out.root_page = PageId();
    out.root_lsn = Lsn();
  } else {
    out.root_page = level.front().page;
    out.root_lsn = level.front().lsn;
  }
  out.pages = static_cast<uint64_t>(
      std::max<int64_t>(0, static_cast<int64_t>(root.pages) + build.pages_delta));
  out.bytes = static_cast<uint64_t>(
      std::max<int64_t>(0, static_cast<int64_t>(root.bytes) + build.bytes_delta));
  co_return out;
}

}  // namespace quire
