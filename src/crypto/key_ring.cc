#include "crypto/key_ring.h"

#include <algorithm>

#include <fmt/format.h>

namespace quire {

namespace {

Status with_dek(Status s, const char* step, const DekRef& ref, uint32_t kek_version) {
  return std::move(s)
      .at(step)
      .with("dek_id", ref.id)
      .with("dek_version", ref.version)
      .with("kek_version", kek_version);
}

}  // namespace

Task<Status> KeyRing::sync(Kms& kms, const Keystore& keystore_ref) {
  // A snapshot, taken before the first suspension: the caller's keystore may move on (or
  // be replaced by adopt()) while we wait on the KMS.
  const Keystore keystore = keystore_ref;
  const uint64_t cluster = keystore.cluster_id();

  // KEKs first: every DEK is wrapped by a live KEK. Retired KEKs are unwrapped too, so
  // make_rewrap_kek can still move them to a new CMK version.
  for (const auto& [version, entry] : keystore.keks()) {
    if (entry.state == KekState::kDestroyed) {
      keks_.erase(version);
      continue;
    }
    auto held = keks_.find(version);
    if (held != keks_.end() && held->second.wrapped == entry.wrapped) continue;
    Bytes context = kek_wrap_context(cluster, version);
    WrappedKey wrapped = entry.wrapped;
    Result<SecretKey> key = co_await kms.unwrap(std::move(context), std::move(wrapped));
    Status s = key.is_ok() ? hold_kek(version, entry, std::move(key).value())
                           : std::move(key).take_status();
    if (!s.is_ok()) {
      co_return std::move(s)
          .at("key_ring_sync")
          .with("kek_version", version)
          .with("cluster_id", cluster);
    }
  }
  QUIRE_CO_RETURN_IF_ERROR(sync_deks(keystore));
  synced_version_ = std::max(synced_version_, keystore.version());
  co_return Status();
}

Status KeyRing::hold_kek(uint32_t version, const KekEntry& entry, SecretKey key) {
  if (key.empty()) return Status(Code::kCorruption, "KMS returned an empty KEK");
  // Looked up again: another sync may have added this KEK while we waited.
  auto held = keks_.find(version);
  if (held == keks_.end()) {
    auto cipher = std::make_unique<Aes256Gcm>(key);
    keks_.emplace(version, Kek{std::move(key), entry.wrapped, std::move(cipher)});
  } else if (held->second.key.equals(key)) {
    held->second.wrapped = entry.wrapped;  // rewrapped under another CMK version: same key
  } else {
    return Status(Code::kCorruption, "the keystore's KEK differs from the one the key ring holds");
  }
  return Status::ok();
}

Status KeyRing::sync_deks(const Keystore& keystore) {
  const uint64_t cluster = keystore.cluster_id();
  for (const auto& [ref, entry] : keystore.deks()) {
    auto held = deks_.find(ref);
    if (held != deks_.end() && held->second.kek_version == entry.kek_version &&
        held->second.wrapped == entry.wrapped) {
      continue;
    }
    auto kek = keks_.find(entry.kek_version);
    if (kek == keks_.end()) {
      return with_dek(not_found("the ring lacks the KEK that wraps this DEK"), "key_ring_sync", ref,
                      entry.kek_version);
    }
    QUIRE_ASSERT(kek->second.cipher != nullptr);  // hold_kek makes every KEK with its cipher
    Bytes context = dek_wrap_context(cluster, ref, entry.kek_version);
    Result<SecretKey> key = unwrap_key(*kek->second.cipher, context, entry.wrapped);
    if (!key.is_ok())
      return with_dek(std::move(key).take_status(), "key_ring_sync", ref, entry.kek_version);
    if (held == deks_.end()) {
      auto data_key = std::make_unique<DataKey>(ref, *key, uses_hard_limit_);
      deks_.emplace(
          ref, Dek{std::move(key).value(), entry.kek_version, entry.wrapped, std::move(data_key)});
    } else if (held->second.key.equals(*key)) {
      // Rewrapped under another KEK: same material, so the DataKey (and its use count) stays.
      held->second.kek_version = entry.kek_version;
      held->second.wrapped = entry.wrapped;
    } else {
      return with_dek(corruption("the keystore's DEK differs from the one the key ring holds"),
                      "key_ring_sync", ref, entry.kek_version);
    }
  }
  return Status::ok();
}

DataKey* KeyRing::find(const DekRef& ref) {
  auto it = deks_.find(ref);
  return it == deks_.end() ? nullptr : it->second.data_key.get();
}

DataKey* KeyRing::newest(uint64_t dek_id) {
  // The entry just below {dek_id + 1, 0}: the highest version of dek_id, if any.
  auto it = deks_.upper_bound(DekRef{dek_id, UINT32_MAX});
  if (it == deks_.begin()) return nullptr;
  --it;
  return it->first.id == dek_id ? it->second.data_key.get() : nullptr;
}

Aes256Gcm* KeyRing::kek(uint32_t version) {
  auto it = keks_.find(version);
  return it == keks_.end() ? nullptr : it->second.cipher.get();
}

Task<Result<KeystoreChange>> make_new_kek(Kms& kms, Random& random, const Keystore& keystore) {
  const uint64_t cluster = keystore.cluster_id();
  const uint32_t newest = keystore.newest_kek_version();
  if (newest == UINT32_MAX) {
    co_return invalid_argument("KEK versions exhausted")
        .at("make_new_kek")
        .with("cluster_id", cluster);
  }
  const uint32_t version = newest + 1;
  SecretKey key = SecretKey::generate(random);
  Bytes context = kek_wrap_context(cluster, version);
  Result<WrappedKey> wrapped = co_await kms.wrap(std::move(context), std::move(key));
  if (!wrapped.is_ok()) {
    Status s = std::move(wrapped).take_status();
    co_return std::move(s)
        .at("make_new_kek")
        .with("kek_version", version)
        .with("cluster_id", cluster);
  }
  KeystoreChange change;
  change.type = KeystoreChangeType::kNewKek;
  change.kek_version = version;
  change.wrapped = std::move(wrapped).value();
  co_return change;
}

Result<KeystoreChange> make_new_dek(KeyRing& ring, Random& random, const Keystore& keystore,
                                    uint64_t dek_id) {
  if (!keystore.active_kek()) {
    return invalid_argument("no active KEK to wrap a new DEK")
        .at("make_new_dek")
        .with("dek_id", dek_id);
  }
  const uint32_t kek_version = *keystore.active_kek();
  Aes256Gcm* kek = ring.kek(kek_version);
  if (kek == nullptr) {
    return not_found("the ring lacks the active KEK")
        .at("make_new_dek")
        .with("dek_id", dek_id)
        .with("kek_version", kek_version);
  }
  std::optional<DekRef> newest = keystore.newest_dek(dek_id);
  if (newest && newest->version == UINT32_MAX) {
    return invalid_argument("DEK versions exhausted").at("make_new_dek").with("dek_id", dek_id);
  }
  const DekRef ref{dek_id, newest ? newest->version + 1 : 1};
  // The plaintext key dies with this scope; the ring learns it by unwrapping at its next
  // sync, so a change that is never applied leaves no key behind.
  SecretKey key = SecretKey::generate(random);
  Bytes context = dek_wrap_context(keystore.cluster_id(), ref, kek_version);
  Result<Bytes> wrapped = wrap_key(*kek, context, key, random);
  if (!wrapped.is_ok())
    return with_dek(std::move(wrapped).take_status(), "make_new_dek", ref, kek_version);
  KeystoreChange change;
  change.type = KeystoreChangeType::kNewDek;
  change.kek_version = kek_version;
  change.dek_id = ref.id;
  change.dek_version = ref.version;
  change.wrapped.blob = std::move(wrapped).value();
  return change;
}

Result<KeystoreChange> make_rewrap_dek(KeyRing& ring, Random& random, const Keystore& keystore,
                                       const DekRef& ref) {
  auto entry = keystore.deks().find(ref);
  if (entry == keystore.deks().end()) {
    return with_dek(not_found("no such DEK in the keystore"), "make_rewrap_dek", ref, 0);
  }
  const uint32_t old_kek_version = entry->second.kek_version;
  if (!keystore.active_kek()) {
    return with_dek(invalid_argument("no active KEK to rewrap under"), "make_rewrap_dek", ref,
                    old_kek_version);
  }
  const uint32_t new_kek_version = *keystore.active_kek();
  Aes256Gcm* old_kek = ring.kek(old_kek_version);
  Aes256Gcm* new_kek = ring.kek(new_kek_version);
  if (old_kek == nullptr) {
    return with_dek(not_found("the ring lacks the KEK that wraps this DEK"), "make_rewrap_dek", ref,
                    old_kek_version);
  }
  if (new_kek == nullptr) {
    return with_dek(not_found("the ring lacks the active KEK"), "make_rewrap_dek", ref,
                    new_kek_version);
  }
  // Unwrap from the keystore's bytes rather than reuse the ring's DataKey: the material
  // must be exactly what the keystore holds, and a DataKey does not hand its key out.
  Bytes old_context = dek_wrap_context(keystore.cluster_id(), ref, old_kek_version);
  Result<SecretKey> key = unwrap_key(*old_kek, old_context, entry->second.wrapped);
  if (!key.is_ok())
    return with_dek(std::move(key).take_status(), "make_rewrap_dek", ref, old_kek_version);
  Bytes new_context = dek_wrap_context(keystore.cluster_id(), ref, new_kek_version);
  Result<Bytes> wrapped = wrap_key(*new_kek, new_context, *key, random);
  if (!wrapped.is_ok())
    return with_dek(std::move(wrapped).take_status(), "make_rewrap_dek", ref, new_kek_version);
  KeystoreChange change;
  change.type = KeystoreChangeType::kRewrapDek;
  change.kek_version = new_kek_version;
  change.dek_id = ref.id;
  change.dek_version = ref.version;
  change.wrapped.blob = std::move(wrapped).value();
  return change;
}

Task<Result<KeystoreChange>> make_rewrap_kek(Kms& kms, KeyRing& ring, const Keystore& keystore,
                                             uint32_t kek_version) {
  const uint64_t cluster = keystore.cluster_id();
  auto entry = keystore.keks().find(kek_version);
  if (entry == keystore.keks().end() || entry->second.state == KekState::kDestroyed) {
    co_return invalid_argument("no such KEK, or it is destroyed")
        .at("make_rewrap_kek")
        .with("kek_version", kek_version)
        .with("cluster_id", cluster);
  }
  auto held = ring.keks_.find(kek_version);
  if (held == ring.keks_.end()) {
    co_return not_found("the ring lacks this KEK")
        .at("make_rewrap_kek")
        .with("kek_version", kek_version)
        .with("cluster_id", cluster);
  }
  // kms.wrap takes the key by value; the ring keeps its own copy.
  SecretKey key = held->second.key.clone();
  Bytes context = kek_wrap_context(cluster, kek_version);
  Result<WrappedKey> wrapped = co_await kms.wrap(std::move(context), std::move(key));
  if (!wrapped.is_ok()) {
    Status s = std::move(wrapped).take_status();
    co_return std::move(s)
        .at("make_rewrap_kek")
        .with("kek_version", kek_version)
        .with("cluster_id", cluster);
  }
  KeystoreChange change;
  change.type = KeystoreChangeType::kRewrapKek;
  change.kek_version = kek_version;
  change.wrapped = std::move(wrapped).value();
  co_return change;
}

void KeyRing::forget_unknown(const Keystore& keystore) {
  std::erase_if(keks_, [&](const auto& entry) { return keystore.keks().count(entry.first) == 0; });
  std::erase_if(deks_, [&](const auto& entry) { return keystore.deks().count(entry.first) == 0; });
}

}  // namespace quire
