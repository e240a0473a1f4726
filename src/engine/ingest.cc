#include "engine/ingest.h"

#include <algorithm>
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

}  // namespace

Status IngestLayer::put(std::string key, Timestamp ts, std::optional<std::string> value) {
  if (ts.is_zero()) return invalid_argument("ingest put at timestamp 0").at("ingest_put");
  std::vector<Version>* versions = nullptr;
  size_t key_size = key.size();
  if (auto found = index_.find(key); found != index_.end()) {
    versions = found->second;
    QUIRE_ASSERT(!versions->empty());
    const Version& newest = versions->back();
    if (newest.ts == ts && newest.value == value) return Status::ok();  // a replayed write
    if (newest.ts >= ts) {
      return Status(Code::kInvalidArgument, "ingest put not above the key's newest version")
          .at("ingest_put")
          .with("ts", ts.value)
          .with("newest_ts", newest.ts.value);
    }
  } else {
    auto it = keys_.emplace(std::move(key), std::vector<Version>()).first;
    versions = &it->second;
    index_.emplace(std::string_view(it->first), versions);
  }
  Version v{ts, std::move(value)};
  bytes_ += version_charge(key_size, v);
  versions->push_back(std::move(v));
  versions_++;
  newest_ts_ = std::max(newest_ts_, ts);
  return Status::ok();
}

const Version* IngestLayer::get(std::string_view key, Timestamp read_ts) const {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  return newest_at_or_below(*it->second, read_ts);
}

std::vector<KeyVersion> IngestLayer::scan(std::string_view lo, std::string_view hi,
                                          Timestamp read_ts, size_t limit) const {
  std::vector<KeyVersion> out;
  for (auto it = keys_.lower_bound(lo); it != keys_.end() && out.size() < limit; ++it) {
    if (!hi.empty() && it->first >= hi) break;
    const Version* v = newest_at_or_below(it->second, read_ts);
    if (v != nullptr) out.push_back(KeyVersion{it->first, *v});
  }
  return out;
}

std::vector<KeyVersion> IngestLayer::collect_through(Timestamp ts) const {
  std::vector<KeyVersion> out;
  for (const auto& [key, versions] : keys_) {
    const Version* v = newest_at_or_below(versions, ts);
    if (v != nullptr) out.push_back(KeyVersion{key, *v});
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
    // needs looking at, nor the index updating one key at a time. (In steps, only when
    // they all fit in this one: freeing them is most of the cost.)
    index_.clear();
    keys_.clear();
    bytes_ = 0;
    versions_ = 0;
    return std::nullopt;
  }
  size_t looked_at = 0;
  for (auto it = keys_.lower_bound(from); it != keys_.end();) {
    if (looked_at++ == max_keys) return it->first;
    std::vector<Version>& versions = it->second;
    auto keep = std::upper_bound(versions.begin(), versions.end(), ts,
                                 [](Timestamp t, const Version& v) { return t < v.ts; });
    for (auto v = versions.begin(); v != keep; ++v) {
      size_t charge = version_charge(it->first.size(), *v);
      QUIRE_ASSERT(bytes_ >= charge && versions_ > 0);
      bytes_ -= charge;
      versions_--;
    }
    versions.erase(versions.begin(), keep);
    if (versions.empty()) {
      index_.erase(std::string_view(it->first));
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
  return std::nullopt;
}

void IngestLayer::clear() {
  index_.clear();
  keys_.clear();
  bytes_ = 0;
  versions_ = 0;
  newest_ts_ = Timestamp();
}

}  // namespace quire
