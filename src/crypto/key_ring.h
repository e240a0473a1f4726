// KeyRing: the unwrapped keys a node holds, derived from its keystore. KEKs are unwrapped
// through the KMS (so a ring needs the KMS only when the keystore gains a KEK or a
// KEK is rewrapped); DEKs are unwrapped locally under their KEK.
//
// sync() brings the ring up to a keystore version: it unwraps what is missing and
// forgets destroyed KEKs. Nothing is replaced under the same ref (a DEK version's
// material never changes; a redo of a change that is already there is a no-op; a
// keystore whose key under a ref differs from the ring's is Corruption). A DEK is usable
// until the node drops it; old versions stay for reading old pages.
#pragma once

#include <map>
#include <memory>

#include "crypto/keystore.h"
#include "crypto/page_cipher.h"

namespace quire {

class KeyRing {
 public:
  // `uses_hard_limit` is given to every DataKey the ring makes (tests use small ones).
  explicit KeyRing(uint64_t uses_hard_limit = kDekUsesHardLimit)
      : uses_hard_limit_(uses_hard_limit) {}
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  // Unwraps every KEK and DEK of `keystore` this ring lacks, and every one whose wrapped
  // bytes changed (a rewrap) to check it is still the same key. Unavailable when the KMS
  // is; Corruption (naming the key) when a wrapped key does not unwrap, or unwraps to
  // material other than the ring holds under that ref. On error the ring keeps what it
  // had plus whatever was fully unwrapped before the error.
  Task<Status> sync(Kms& kms, const Keystore& keystore);

  // Forgets every key `keystore` does not hold: after keys were unwrapped for a draft of
  // changes that was then abandoned, so a later, different key under the same version
  // is not refused as a conflict.
  void forget_unknown(const Keystore& keystore);

  // The DataKey for a ref, or nullptr.
  DataKey* find(const DekRef& ref);
  // The newest version of a DEK id (what writers use), or nullptr.
  DataKey* newest(uint64_t dek_id);
  // For open_sealed.
  DekLookup lookup() {
    return [this](const DekRef& r) { return find(r); };
  }

  // A KEK's cipher (for wrapping new DEKs), or nullptr.
  Aes256Gcm* kek(uint32_t version);
  uint64_t synced_version() const { return synced_version_; }
  size_t dek_count() const { return deks_.size(); }

 private:
  friend Task<Result<KeystoreChange>> make_rewrap_kek(Kms& kms, KeyRing& ring,
                                                      const Keystore& keystore,
                                                      uint32_t kek_version);

  // sync's steps. hold_kek keeps an unwrapped KEK (Corruption when it is empty or differs
  // from the one held under `version`); sync_deks unwraps the DEKs the ring lacks or whose
  // wrapped bytes changed, under KEKs the ring already holds.
  Status hold_kek(uint32_t version, const KekEntry& entry, SecretKey key);
  Status sync_deks(const Keystore& keystore);

  // Each key keeps its material and the wrapped form it was last checked against: when the
  // keystore's wrapped bytes change (a rewrap), sync unwraps them again and refuses
  // material that differs from what the ring holds instead of silently keeping either.
  // The KEK's material also lets make_rewrap_kek wrap it under a new CMK version without
  // asking the KMS to unwrap it first.
  struct Kek {
    SecretKey key;
    WrappedKey wrapped;
    std::unique_ptr<Aes256Gcm> cipher;
  };
  struct Dek {
    SecretKey key;
    uint32_t kek_version = 0;
    Bytes wrapped;
    std::unique_ptr<DataKey> data_key;
  };
  std::map<uint32_t, Kek> keks_;
  std::map<DekRef, Dek> deks_;
  uint64_t synced_version_ = 0;
  uint64_t uses_hard_limit_;
};

// Keystore changes that create keys. Each returns the change to apply (the caller
// applies it to its keystore and logs it); key material is generated from `random` and
// wrapped at once, so no plaintext key outlives the call except inside `ring`.
//
// A new KEK version, wrapped by the KMS's active CMK version.
Task<Result<KeystoreChange>> make_new_kek(Kms& kms, Random& random, const Keystore& keystore);
// A new version of DEK `dek_id`, wrapped by the active KEK (which `ring` must hold).
Result<KeystoreChange> make_new_dek(KeyRing& ring, Random& random, const Keystore& keystore,
                                    uint64_t dek_id);
// DEK `ref` rewrapped under the active KEK.
Result<KeystoreChange> make_rewrap_dek(KeyRing& ring, Random& random, const Keystore& keystore,
                                       const DekRef& ref);
// KEK `kek_version` rewrapped under the KMS's active CMK version.
Task<Result<KeystoreChange>> make_rewrap_kek(Kms& kms, KeyRing& ring, const Keystore& keystore,
                                             uint32_t kek_version);

}  // namespace quire
