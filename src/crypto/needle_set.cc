#include "crypto/needle_set.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "base/assert.h"
#include "crypto/aead.h"

namespace quire {

namespace {

constexpr size_t kNeedleSlotsMin = 1024;
constexpr size_t kLabelSlotsMin = 64;
// Filter bits per needle-table slot: at least 32 bits a needle, since the table is at
// most half full.
constexpr size_t kFilterBitsPerSlot = 16;

uint64_t load_prefix(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The filter's hash: one multiply, so find() spends a few instructions a byte. Its top
// bits pick the filter word and bits 20..31 the two bits in it (a blocked Bloom filter
// with k = 2: about 0.4% false positives at 32 bits a needle).
uint64_t filter_hash(uint64_t prefix) {
  return prefix * 0x9e3779b97f4a7c15ull;
}

// The table's hash (only for positions the filter passes): splitmix64's finalizer.
uint64_t table_hash(uint64_t prefix) {
  uint64_t z = prefix;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t filter_mask(uint64_t h) {
  return (uint64_t{1} << ((h >> 20) & 63)) | (uint64_t{1} << ((h >> 26) & 63));
}

size_t power_of_two_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int log2_of(size_t power_of_two) {
  int n = 0;
  while ((size_t{1} << n) < power_of_two) n++;
  return n;
}

}  // namespace

void NeedleSet::add(ByteView bytes, const std::string& what) {
  QUIRE_ASSERT(bytes.size() >= kNeedleBytes);
  uint32_t label = kEmpty;  // interned with the first window actually added
  for (size_t i = 0; i + kNeedleBytes <= bytes.size(); i++) {
    const uint8_t* window = bytes.data() + i;
    if (find_needle(window, table_hash(load_prefix(window))) != kEmpty) continue;
    if (label == kEmpty) label = intern_label(what);
    add_window(window, label);
  }
}

void NeedleSet::add_prefix(ByteView bytes, const std::string& what) {
  QUIRE_ASSERT(bytes.size() >= kNeedleBytes);
  if (find_needle(bytes.data(), table_hash(load_prefix(bytes.data()))) != kEmpty) return;
  add_window(bytes.data(), intern_label(what));
}

ByteView NeedleSet::bytes(size_t index) const {
  QUIRE_ASSERT(index < needles_.size());
  return ByteView(needles_[index].data(), kNeedleBytes);
}

const std::string& NeedleSet::what(size_t index) const {
  QUIRE_ASSERT(index < needles_.size());
  return labels_[needle_label_[index]];
}

bool NeedleSet::has_label(const std::string& what) const {
  return find_label(what) != kEmpty;
}

void NeedleSet::find(ByteView hay, std::set<size_t>& found) const {
  if (hay.size() < kNeedleBytes || needles_.empty()) return;
  const uint8_t* data = hay.data();
  const uint64_t* filter = filter_.data();
  const int shift = filter_shift_;
  const size_t end = hay.size() - kNeedleBytes + 1;
  for (size_t i = 0; i < end; i++) {
    const uint64_t prefix = load_prefix(data + i);
    const uint64_t h = filter_hash(prefix);
    const uint64_t mask = filter_mask(h);
    if ((filter[h >> shift] & mask) != mask) continue;
    const uint32_t index = find_needle(data + i, table_hash(prefix));
    if (index != kEmpty) found.insert(index);
  }
}

void NeedleSet::add_window(const uint8_t* window, uint32_t label) {
  QUIRE_ASSERT(needles_.size() < kEmpty - 1);
  const uint32_t index = static_cast<uint32_t>(needles_.size());
  Needle& needle = needles_.emplace_back();
  std::memcpy(needle.data(), window, kNeedleBytes);
  needle_label_.push_back(label);
  if (2 * needles_.size() > needle_slots_.size()) {
    grow_needle_index(2 * needles_.size());
  } else {
    index_needle(index);
  }
}

uint32_t NeedleSet::intern_label(const std::string& what) {
  // Consecutive needles mostly share a label (the windows of one key).
  if (!labels_.empty() && labels_.back() == what) return static_cast<uint32_t>(labels_.size() - 1);
  const uint32_t known = find_label(what);
  if (known != kEmpty) return known;
  QUIRE_ASSERT(labels_.size() < kEmpty - 1);
  const uint32_t index = static_cast<uint32_t>(labels_.size());
  labels_.push_back(what);
  if (2 * labels_.size() > label_slots_.size()) {
    grow_label_index(2 * labels_.size());
  } else {
    index_label(index);
  }
  return index;
}

uint32_t NeedleSet::find_label(const std::string& what) const {
  if (label_slots_.empty()) return kEmpty;
  const size_t mask = label_slots_.size() - 1;
  for (size_t s = std::hash<std::string>{}(what)&mask;; s = (s + 1) & mask) {
    const uint32_t index = label_slots_[s];
    if (index == kEmpty || labels_[index] == what) return index;
  }
}

uint32_t NeedleSet::find_needle(const uint8_t* window, uint64_t hash) const {
  if (needle_slots_.empty()) return kEmpty;
  const size_t mask = needle_slots_.size() - 1;
  for (size_t s = hash & mask;; s = (s + 1) & mask) {
    const uint32_t index = needle_slots_[s];
    if (index == kEmpty) return kEmpty;
    if (std::memcmp(needles_[index].data(), window, kNeedleBytes) == 0) return index;
  }
}

void NeedleSet::index_needle(uint32_t index) {
  const uint64_t prefix = load_prefix(needles_[index].data());
  const uint64_t h = filter_hash(prefix);
  filter_[h >> filter_shift_] |= filter_mask(h);
  const size_t mask = needle_slots_.size() - 1;
  size_t s = table_hash(prefix) & mask;
  while (needle_slots_[s] != kEmpty) s = (s + 1) & mask;
  needle_slots_[s] = index;
}

void NeedleSet::index_label(uint32_t index) {
  const size_t mask = label_slots_.size() - 1;
  size_t s = std::hash<std::string>{}(labels_[index]) & mask;
  while (label_slots_[s] != kEmpty) s = (s + 1) & mask;
  label_slots_[s] = index;
}

void NeedleSet::grow_needle_index(size_t count) {
  const size_t slots = power_of_two_at_least(std::max(count, kNeedleSlotsMin));
  const size_t filter_words = slots * kFilterBitsPerSlot / 64;
  needle_slots_.assign(slots, kEmpty);
  filter_.assign(filter_words, 0);
  filter_shift_ = 64 - log2_of(filter_words);
  for (uint32_t index = 0; index < needles_.size(); index++) index_needle(index);
}

void NeedleSet::grow_label_index(size_t count) {
  label_slots_.assign(power_of_two_at_least(std::max(count, kLabelSlotsMin)), kEmpty);
  for (uint32_t index = 0; index < labels_.size(); index++) index_label(index);
}

std::string kek_needle_label(uint32_t kek_version) {
  return fmt::format("KEK v{}", kek_version);
}

std::string dek_needle_label(const DekRef& ref) {
  return fmt::format("DEK {} v{}", ref.id, ref.version);
}

Task<Status> add_keystore_keys(Kms& kms, const Keystore& keystore_ref, NeedleSet& needles) {
  // A snapshot, taken before the first suspension: the caller's keystore may move on while
  // we wait on the KMS.
  const Keystore keystore = keystore_ref;
  const uint64_t cluster = keystore.cluster_id();

  // The KEKs that wrap a DEK not added yet: unwrapped even when added already.
  std::set<uint32_t> keks_needed;
  for (const auto& [ref, entry] : keystore.deks()) {
    if (!needles.has_label(dek_needle_label(ref))) keks_needed.insert(entry.kek_version);
  }

  std::map<uint32_t, std::unique_ptr<Aes256Gcm>> keks;
  for (const auto& [version, entry] : keystore.keks()) {
    if (entry.state == KekState::kDestroyed) continue;
    const std::string label = kek_needle_label(version);
    const bool needed = keks_needed.count(version) > 0;
    if (!needed && needles.has_label(label)) continue;
    Bytes context = kek_wrap_context(cluster, version);
    WrappedKey wrapped = entry.wrapped;
    Result<SecretKey> kek = co_await kms.unwrap(std::move(context), std::move(wrapped));
    if (!kek.is_ok()) {
      Status s = std::move(kek).take_status();
      co_return std::move(s)
          .at("add_keystore_keys")
          .with("kek_version", version)
          .with("cluster_id", cluster);
    }
    if (kek->empty()) {
      co_return corruption("KMS returned an empty KEK")
          .at("add_keystore_keys")
          .with("kek_version", version)
          .with("cluster_id", cluster);
    }
    needles.add(kek->reveal(), label);
    if (needed) keks.emplace(version, std::make_unique<Aes256Gcm>(*kek));
  }

  for (const auto& [ref, entry] : keystore.deks()) {
    const std::string label = dek_needle_label(ref);
    if (needles.has_label(label)) continue;
    auto kek = keks.find(entry.kek_version);
    if (kek == keks.end()) {
      co_return corruption("the KEK that wraps this DEK is destroyed")
          .at("add_keystore_keys")
          .with("dek_id", ref.id)
          .with("dek_version", ref.version)
          .with("kek_version", entry.kek_version);
    }
    Bytes context = dek_wrap_context(cluster, ref, entry.kek_version);
    Result<SecretKey> dek = unwrap_key(*kek->second, context, entry.wrapped);
    if (!dek.is_ok()) {
      Status s = std::move(dek).take_status();
      co_return std::move(s)
          .at("add_keystore_keys")
          .with("dek_id", ref.id)
          .with("dek_version", ref.version)
          .with("kek_version", entry.kek_version);
    }
    needles.add(dek->reveal(), label);
  }
  co_return Status();
}

}  // namespace quire
