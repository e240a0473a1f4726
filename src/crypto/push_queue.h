// The push-mode keystore queue (WiredTiger's set_key model). The leader pushes each new
// keystore version with a timestamp strictly above the previous push and above the
// stable timestamp. A checkpoint at timestamp C writes the newest queued version whose
// push ts is <= C (if it is newer than the last one written); newer versions stay
// queued. Entries are pruned only once a keystore page at or above them is durable. A
// follower prunes up to the version it loaded at pick-up.
//
// Bounded: at most `capacity` entries; a push beyond that is Busy.
#pragma once

#include <deque>
#include <memory>
#include <optional>

#include "base/ids.h"
#include "crypto/keystore.h"

namespace quire {

struct PushEntry {
  Timestamp ts;
  std::shared_ptr<const Keystore> keystore;
};

class KeystorePushQueue {
 public:
  explicit KeystorePushQueue(size_t capacity = 1024) : capacity_(capacity) {}

  // InvalidArgument for a null or empty (version 0) keystore, a ts <= the previous push,
  // a ts <= stable, or a keystore version not above the previous push's. Busy when full.
  Status push(Timestamp ts, std::shared_ptr<const Keystore> keystore);
  // Stable only moves forward; an older value is ignored.
  void set_stable(Timestamp ts);
  Timestamp stable() const { return stable_; }

  // The entry a checkpoint at `checkpoint_ts` should write: the newest with ts <=
  // checkpoint_ts, when its version is above the last durable write. nullopt otherwise.
  std::optional<PushEntry> select(Timestamp checkpoint_ts) const;
  // A keystore page for `version` is durable: prune entries at or below it.
  void mark_durable(uint64_t version);
  // Follower: it loaded `version` at pick-up; prune at or below it.
  void prune_through(uint64_t version) { mark_durable(version); }

  uint64_t durable_version() const { return durable_version_; }
  Timestamp last_push_ts() const { return last_push_ts_; }
  size_t size() const { return entries_.size(); }
  const std::deque<PushEntry>& entries() const { return entries_; }

 private:
  size_t capacity_;
  std::deque<PushEntry> entries_;
  Timestamp stable_;
  Timestamp last_push_ts_;
  uint64_t last_push_version_ = 0;
  uint64_t durable_version_ = 0;
};

}  // namespace quire
