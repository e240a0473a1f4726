#include "crypto/push_queue.h"

#include <algorithm>

#include <fmt/format.h>

namespace quire {

Status KeystorePushQueue::push(Timestamp ts, std::shared_ptr<const Keystore> keystore) {
  if (keystore == nullptr || keystore->version() == 0) {
    return invalid_argument("pushed keystore is empty").at("keystore_push").with("ts", ts.value);
  }
  const uint64_t version = keystore->version();
  auto refuse = [&](std::string why) {
    return invalid_argument(std::move(why))
        .at("keystore_push")
        .with("ts", ts.value)
        .with("keystore_version", version)
        .with("last_push_ts", last_push_ts_.value)
        .with("stable_ts", stable_.value);
  };
  if (ts <= last_push_ts_) return refuse("push ts is not above the previous push");
  if (ts <= stable_) return refuse("push ts is not above the stable ts");
  if (version <= last_push_version_) {
    return refuse(
        fmt::format("keystore version is not above the previous push's ({})", last_push_version_));
  }
  if (entries_.size() >= capacity_) {
    return busy("keystore push queue is full")
        .at("keystore_push")
        .with("ts", ts.value)
        .with("keystore_version", version)
        .with("capacity", capacity_);
  }
  // The checks above keep the queue in increasing ts and version order, within capacity.
  QUIRE_ASSERT(entries_.empty() ||
               (entries_.back().ts < ts && entries_.back().keystore->version() < version));
  entries_.push_back(PushEntry{ts, std::move(keystore)});
  QUIRE_ASSERT(entries_.size() <= capacity_);
  last_push_ts_ = ts;
  last_push_version_ = version;
  return Status();
}

void KeystorePushQueue::set_stable(Timestamp ts) {
  stable_ = std::max(stable_, ts);
}

std::optional<PushEntry> KeystorePushQueue::select(Timestamp checkpoint_ts) const {
  // Entries are in increasing ts (and version) order: the last one at or below the
  // checkpoint is the newest the checkpoint may carry.
  auto after = std::upper_bound(entries_.begin(), entries_.end(), checkpoint_ts,
                                [](Timestamp t, const PushEntry& e) { return t < e.ts; });
  if (after == entries_.begin()) return std::nullopt;
  const PushEntry& chosen = *std::prev(after);
  if (chosen.keystore->version() <= durable_version_) return std::nullopt;
  return chosen;
}

void KeystorePushQueue::mark_durable(uint64_t version) {
  durable_version_ = std::max(durable_version_, version);
  while (!entries_.empty() && entries_.front().keystore->version() <= durable_version_)
    entries_.pop_front();
}

}  // namespace quire
