#include "crypto/cmk_versions.h"

#include <limits>

#include <fmt/format.h>

namespace quire {

std::vector<uint32_t> CmkVersions::versions() const {
  std::vector<uint32_t> out;
  out.reserve(keys_.size());
  for (const auto& [version, v] : keys_) out.push_back(version);
  return out;
}

const SecretKey& CmkVersions::key(uint32_t version) const {
  auto it = keys_.find(version);
  QUIRE_ASSERT(it != keys_.end());
  return it->second.key;
}

void CmkVersions::add(uint32_t version, SecretKey key) {
  QUIRE_ASSERT(version != 0 && !key.empty() && !contains(version));
  auto cipher = std::make_unique<Aes256Gcm>(key);
  keys_.emplace(version, Version{std::move(key), std::move(cipher)});
}

void CmkVersions::activate(uint32_t version) {
  QUIRE_ASSERT(contains(version));
  active_ = version;
}

Result<uint32_t> CmkVersions::next_version() const {
  if (keys_.size() >= kVersionsMax) {
    return invalid_argument(
        fmt::format("CMK '{}' already has {} versions, its bound (kVersionsMax); Quire keeps "
                    "every CMK version (no retirement tool exists yet), so it cannot rotate the "
                    "CMK again",
                    key_id_, keys_.size()));
  }
  uint32_t newest = keys_.empty() ? 0 : keys_.rbegin()->first;
  if (newest == std::numeric_limits<uint32_t>::max()) {
    return invalid_argument(
        fmt::format("CMK '{}' has no version number left after {}", key_id_, newest));
  }
  return newest + 1;
}

Status CmkVersions::check_retire(uint32_t version) const {
  if (version == active_) {
    return invalid_argument(
               fmt::format("CMK '{}' version {} is the active version; rotate before retiring it",
                           key_id_, version))
        .with("cmk_version", version);
  }
  if (!contains(version)) return version_not_found(version, "cannot retire it");
  return Status();
}

void CmkVersions::remove(uint32_t version) {
  QUIRE_ASSERT(version != active_);
  keys_.erase(version);
}

CmkVersions CmkVersions::clone() const {
  CmkVersions out(key_id_);
  for (const auto& [version, v] : keys_) out.add(version, v.key.clone());
  out.active_ = active_;
  return out;
}

Result<WrappedKey> CmkVersions::wrap(ByteView context, const SecretKey& key, Random& random) {
  auto it = keys_.find(active_);
  QUIRE_ASSERT(it != keys_.end());
  if (key.empty()) {
    return invalid_argument(
        fmt::format("wrap under CMK '{}' version {}: the key to wrap is empty", key_id_, active_));
  }
  Result<Bytes> blob = wrap_key(*it->second.cipher, context, key, random);
  if (!blob.is_ok()) {
    Status st = blob.status();
    return Status(st.code(),
                  fmt::format("wrap under CMK '{}' version {}: {}", key_id_, active_, st.message()))
        .with("cmk_version", active_);
  }
  return WrappedKey{active_, std::move(blob).value()};
}

Result<SecretKey> CmkVersions::unwrap(ByteView context, const WrappedKey& wrapped) {
  auto it = keys_.find(wrapped.cmk_version);
  if (it == keys_.end()) return version_not_found(wrapped.cmk_version, "cannot unwrap");
  Result<SecretKey> key = unwrap_key(*it->second.cipher, context, wrapped.blob);
  if (!key.is_ok()) {
    // The AEAD's own message is generic; what an operator needs is which key failed. Its
    // code stays: Corruption for a tag mismatch, whatever else the AEAD reported otherwise.
    Status st = key.status();
    std::string what = st.code() == Code::kCorruption
                           ? "the wrapped key or its context does not match"
                           : st.message();
    return Status(st.code(), fmt::format("unwrap under CMK '{}' version {}: {}", key_id_,
                                         wrapped.cmk_version, what))
        .with("cmk_version", wrapped.cmk_version);
  }
  return key;
}

Status CmkVersions::version_not_found(uint32_t version, std::string_view why) const {
  return not_found(
             fmt::format(
                 "CMK '{}' version {} is not available (retired, refused or never created); {}",
                 key_id_, version, why))
      .with("cmk_version", version);
}

}  // namespace quire
