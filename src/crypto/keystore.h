// The keystore: an append-only, versioned log of key changes, and the state it builds.
//
// Version n is the state after n changes; version n+1 is version n plus exactly one
// change. Each version has a digest (SHA-256 of the previous digest and the change's
// encoding, first 16 bytes), so `a.is_prefix_of(b)` compares one digest: every change
// `a` holds is in `b`, in the same order. A node's keystore only moves forward: apply()
// appends one change, adopt() replaces the whole state only with a longer keystore that
// this one is a prefix of.
//
// The state holds only wrapped keys (KEKs wrapped by the CMK in the KMS, DEKs wrapped by
// a KEK), never key material: a keystore can be written anywhere. KeyRing (key_ring.h)
// unwraps what a node needs.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/status.h"
#include "crypto/keystore_codes.h"
#include "crypto/kms.h"
#include "crypto/page_cipher.h"

namespace quire {

enum class KeystoreChangeType : uint8_t {
  kNewKek = 1,       // KEK `kek_version` (= newest + 1), wrapped by the CMK: `wrapped`
  kActivateKek = 2,  // new DEKs and rewraps use KEK `kek_version` from now on
  kNewDek = 3,  // DEK {dek_id, dek_version} (= newest of that id + 1), wrapped by KEK `kek_version`
  kRewrapDek = 4,   // DEK {dek_id, dek_version} now wrapped by KEK `kek_version`: `wrapped`
  kRewrapKek = 5,   // KEK `kek_version` now wrapped by CMK `wrapped.cmk_version`: `wrapped`
  kRetireKek = 6,   // KEK `kek_version` wraps nothing and is not active; kept for old data
  kDestroyKek = 7,  // a retired KEK is forgotten: its wrapped bytes are dropped
};

std::string_view keystore_change_name(KeystoreChangeType t);

struct KeystoreChange {
  KeystoreChangeType type = KeystoreChangeType::kNewKek;
  uint32_t kek_version = 0;
  uint64_t dek_id = 0;
  uint32_t dek_version = 0;
  WrappedKey wrapped;  // kNewKek, kRewrapKek: under the CMK; kNewDek, kRewrapDek: under the KEK

  void encode(ByteWriter& w) const;
  static Result<KeystoreChange> decode(ByteReader& r);
  friend bool operator==(const KeystoreChange&, const KeystoreChange&) = default;
};

enum class KekState : uint8_t { kLive = 1, kRetired = 2, kDestroyed = 3 };

struct KekEntry {
  uint32_t version = 0;
  KekState state = KekState::kLive;
  WrappedKey wrapped;  // empty once destroyed
  friend bool operator==(const KekEntry&, const KekEntry&) = default;
};

struct DekEntry {
  DekRef ref;
  uint32_t kek_version = 0;
  Bytes wrapped;  // under KEK kek_version (wrap_key, AAD = dek_wrap_context)
  friend bool operator==(const DekEntry&, const DekEntry&) = default;
};

using KeystoreDigest = std::array<uint8_t, 16>;

class Keystore {
 public:
  // An empty keystore (version 0) of a cluster. The cluster id is bound into every
  // wrap context and into the keystore page's authentication.
  explicit Keystore(uint64_t cluster_id = 0) : cluster_id_(cluster_id) {}

  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t version() const { return digests_.size(); }
  // The digest of version v (1..version()); v = 0 is all zeros.
  KeystoreDigest digest_at(uint64_t v) const;
  KeystoreDigest digest() const { return digest_at(version()); }

  // Appends one change: InvalidArgument (naming the change and ids) when it does not
  // follow from the current state (a KEK version out of order, an unknown or retired KEK,
  // retiring the active KEK or one that still wraps a DEK, destroying a live KEK, ...).
  // Nothing changes on error.
  Status apply(const KeystoreChange& change);

  // True when every change of this keystore is in `other`, in order (same cluster,
  // version() <= other.version(), same digest at version()).
  bool is_prefix_of(const Keystore& other) const;

  // Replaces this state with `newer` when this is a prefix of it and it is longer.
  // OK and no change when `newer` is a prefix of this (never goes backwards);
  // KeystoreConflict when neither is a prefix of the other.
  Status adopt(const Keystore& newer);

  // State.
  std::optional<uint32_t> active_kek() const { return active_kek_; }
  const std::map<uint32_t, KekEntry>& keks() const { return keks_; }
  // Every DEK version ever created, by ref.
  const std::map<DekRef, DekEntry>& deks() const { return deks_; }
  // The newest version of DEK `dek_id`, if any.
  std::optional<DekRef> newest_dek(uint64_t dek_id) const;
  uint32_t newest_kek_version() const { return keks_.empty() ? 0 : keks_.rbegin()->first; }

  // Whole-state encoding (the keystore page's plaintext body): cluster id, digests,
  // state. decode checks the structure (Corruption when malformed).
  void encode(ByteWriter& w) const;
  static Result<Keystore> decode(ByteView bytes);

  friend bool operator==(const Keystore& a, const Keystore& b);

 private:
  // apply's two steps: check_change refuses (InvalidArgument) a change that does not follow
  // from the state; apply_checked makes a checked change.
  Status check_change(const KeystoreChange& change) const;
  void apply_checked(const KeystoreChange& change);

  // decode's steps, one encoded section each, in order.
  Status decode_digests(ByteReader& r);
  Status decode_active_kek(ByteReader& r);
  Status decode_keks(ByteReader& r);
  Status decode_deks(ByteReader& r);

  uint64_t cluster_id_;
  std::vector<KeystoreDigest> digests_;
  std::optional<uint32_t> active_kek_;
  std::map<uint32_t, KekEntry> keks_;
  std::map<DekRef, DekEntry> deks_;
};

// AAD contexts for wraps, so a wrapped key unwraps only under its own name.
Bytes kek_wrap_context(uint64_t cluster_id, uint32_t kek_version);
Bytes dek_wrap_context(uint64_t cluster_id, const DekRef& dek, uint32_t kek_version);

}  // namespace quire
