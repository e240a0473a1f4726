// The ingest layer: an in-memory MVCC map. Every write is a version of a key with its
// commit timestamp (a value, or a tombstone for a delete); a read at timestamp T sees the
// newest version at or below T. Checkpoints move versions into the stable tree and then
// prune them here.
//
// Writes and point reads find their key with one hash lookup. The key order that scans,
// checkpoints and pruning walk is kept apart and brought up to date only when one of them
// asks (order()): keeping a tree ordered on every write cost a quarter of a primary's
// user CPU and half a standby's under random-key SETs (a cold descent of ~17 nodes per
// new key), while one sort of a checkpoint interval's new keys, on 16-byte prefixes held
// in a flat array, costs a few milliseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/node_hash_map.h>

#include "base/ids.h"
#include "base/status.h"

namespace quire {

// One version of a key: a value, or a tombstone (nullopt) for a delete.
struct Version {
  Timestamp ts;
  std::optional<std::string> value;
  friend bool operator==(const Version&, const Version&) = default;
};

struct KeyVersion {
  std::string key;
  Version version;
  friend bool operator==(const KeyVersion&, const KeyVersion&) = default;
};

class IngestLayer {
 public:
  IngestLayer() = default;
  // The key order points into keys_' nodes: moved along with them, never copied.
  IngestLayer(const IngestLayer&) = delete;
  IngestLayer& operator=(const IngestLayer&) = delete;
  IngestLayer(IngestLayer&&) = default;
  IngestLayer& operator=(IngestLayer&&) = default;

  // Adds a version. InvalidArgument when ts is zero or not above the key's newest
  // version (each key's history is in timestamp order). Redoing the newest version
  // exactly (same ts and value) is OK and changes nothing, so log replay is idempotent.
  Status put(std::string key, Timestamp ts, std::optional<std::string> value);

  // The newest version of `key` at or below `read_ts`, or nullptr.
  const Version* get(std::string_view key, Timestamp read_ts) const;

  // Keys in [lo, hi) (hi empty = no upper bound), in order, each with its newest version
  // at or below `read_ts` (tombstones included, so a merge can hide stable entries), at
  // most `limit` of them. Sorts the keys put since the last ordered walk into the order
  // first (linear in the keys held, plus the sort of the new ones).
  std::vector<KeyVersion> scan(std::string_view lo, std::string_view hi, Timestamp read_ts,
                               size_t limit) const;

  // For a checkpoint at `ts`: each key's newest version at or below ts, in key order.
  std::vector<KeyVersion> collect_through(Timestamp ts) const;

  // Drops every version at or below `ts`; a key whose versions are all gone is removed.
  void prune_through(Timestamp ts);
  // prune_through in steps: the keys from `from` on (in key order), at most `max_keys` of
  // them. Returns the key the next step starts from, or nullopt when none is left. Reads
  // between steps see, for a key not pruned yet, versions the tree of a checkpoint at `ts`
  // holds too (the newest at or below ts), so they answer the same. A step walks the
  // order as it was when the walk began (from ""), and keys put since only once it
  // reaches the end, so steps cost what they look at.
  std::optional<std::string> prune_some(Timestamp ts, std::string_view from, size_t max_keys);
  void clear();

  // Approximate memory held: key and value bytes plus a per-version overhead.
  size_t bytes() const { return bytes_; }
  size_t key_count() const { return live_keys_; }
  size_t version_count() const { return versions_; }
  // The newest timestamp ever put (zero when none since the last clear()).
  Timestamp newest_ts() const { return newest_ts_; }

 private:
  // Transparent, so a read looks a string_view up without a copy. The table is Abseil's
  // node_hash_map: open addressing over a flat array of control bytes, so a lookup that
  // misses reads one cache line, and one that hits one more, the node (whose address never
  // changes: the order points at it). std::unordered_map reads a bucket, the node before
  // the key's, then the node, and took twice as long for both in a microbenchmark; its
  // lookups were a quarter of a primary's CPU under GET -P 16, which this table serves
  // about 1.4 times as fast (docs/figures.md, session 22). Abseil salts each table's slot
  // order with its address, so the order differs run to run; nothing iterates the table
  // (walks go over the order), so the simulator's runs stay the same.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };
  struct KeyEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  using Keys = absl::node_hash_map<std::string, std::vector<Version>, KeyHash, KeyEq>;
  // A key's place in the order: its first 16 bytes as two big-endian numbers (zero padded),
  // which decide almost every comparison without reading the key, and its entry in keys_
  // (whose nodes never move).
  struct Slot {
    uint64_t hi = 0;
    uint64_t lo = 0;
    Keys::value_type* entry = nullptr;
  };
  static Slot slot_of(Keys::value_type& entry);
  static bool slot_less(const Slot& a, const Slot& b);
  // Index in order_ of the first key not below `key` (after order()).
  size_t lower_slot(std::string_view key) const;
  // Brings order_ up to date: sorts added_ into it, dropping keys left with no version.
  void order() const;
  // Erases the keys left with no version (a prune walk's end).
  void drop_empty_keys() const;

  // Every key to its versions, oldest first. A key whose versions a prune step dropped
  // stays, empty, until the walk ends or the order is rebuilt: order_ still names it.
  mutable Keys keys_;
  // The keys in key order as of the last order(), and the keys put since (unordered).
  // Every key of keys_ is in exactly one of them.
  mutable std::vector<Slot> order_;
  mutable std::vector<Slot> added_;
  size_t live_keys_ = 0;           // keys with at least one version
  mutable size_t empty_keys_ = 0;  // keys with none, waiting for drop_empty_keys()
  size_t bytes_ = 0;
  size_t versions_ = 0;
  Timestamp newest_ts_;
};

}  // namespace quire
