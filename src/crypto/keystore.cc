#include "crypto/keystore.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace quire {

namespace {

// Bounds for decoding untrusted bytes. A KMS blob or a wrapped DEK is tens of bytes; the
// bound only keeps a corrupt length from making us accept megabytes.
constexpr size_t kWrappedBlobBytesMax = 4096;
constexpr size_t kDigestBytes = sizeof(KeystoreDigest);
// Every encoded KEK or DEK entry takes at least this many bytes, which bounds a decoded
// entry count by the input.
constexpr size_t kEntryBytesMin = 4;

bool change_type_valid(uint8_t t) {
  return t >= 1 && t <= 7;
}
bool kek_state_valid(uint8_t s) {
  return s >= 1 && s <= 3;
}

KeystoreDigest next_digest(const KeystoreDigest& previous, const KeystoreChange& change) {
  Bytes input(previous.begin(), previous.end());
  ByteWriter w(input);
  change.encode(w);
  uint8_t full[EVP_MAX_MD_SIZE];
  unsigned int full_bytes = 0;
  // SHA-256 of a buffer cannot fail short of a broken OpenSSL install.
  int ok = EVP_Digest(input.data(), input.size(), full, &full_bytes, EVP_sha256(), nullptr);
  QUIRE_ASSERT(ok == 1 && full_bytes >= kDigestBytes);
  KeystoreDigest d;
  std::memcpy(d.data(), full, kDigestBytes);
  return d;
}

Status refuse(const KeystoreChange& c, std::string_view why) {
  Status s(Code::kInvalidArgument,
           fmt::format("keystore change {} refused: {}", keystore_change_name(c.type), why));
  s.at("keystore_apply").with("kek_version", c.kek_version);
  if (c.type == KeystoreChangeType::kNewDek || c.type == KeystoreChangeType::kRewrapDek) {
    s.with("dek_id", c.dek_id).with("dek_version", c.dek_version);
  }
  return s;
}

Status malformed(std::string what) {
  return Status(Code::kCorruption, fmt::format("malformed keystore: {}", what))
      .at("keystore_decode");
}

}  // namespace

std::string_view keystore_change_name(KeystoreChangeType t) {
  switch (t) {
    case KeystoreChangeType::kNewKek:
      return "NEW_KEK";
    case KeystoreChangeType::kActivateKek:
      return "ACTIVATE_KEK";
    case KeystoreChangeType::kNewDek:
      return "NEW_DEK";
    case KeystoreChangeType::kRewrapDek:
      return "REWRAP_DEK";
    case KeystoreChangeType::kRewrapKek:
      return "REWRAP_KEK";
    case KeystoreChangeType::kRetireKek:
      return "RETIRE_KEK";
    case KeystoreChangeType::kDestroyKek:
      return "DESTROY_KEK";
  }
  return "UNKNOWN";
}

void KeystoreChange::encode(ByteWriter& w) const {
  w.put_u8(static_cast<uint8_t>(type));
  w.put_varint32(kek_version);
  w.put_varint64(dek_id);
  w.put_varint32(dek_version);
  w.put_varint32(wrapped.cmk_version);
  w.put_length_prefixed(wrapped.blob);
}

Result<KeystoreChange> KeystoreChange::decode(ByteReader& r) {
  KeystoreChange c;
  uint8_t type = 0;
  QUIRE_RETURN_IF_ERROR(r.get_u8(&type));
  if (!change_type_valid(type)) {
    return Status(Code::kCorruption, fmt::format("unknown keystore change type {}", type));
  }
  c.type = static_cast<KeystoreChangeType>(type);
  QUIRE_RETURN_IF_ERROR(r.get_varint32(&c.kek_version));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&c.dek_id));
  QUIRE_RETURN_IF_ERROR(r.get_varint32(&c.dek_version));
  QUIRE_RETURN_IF_ERROR(r.get_varint32(&c.wrapped.cmk_version));
  ByteView blob;
  QUIRE_RETURN_IF_ERROR(r.get_length_prefixed(&blob, kWrappedBlobBytesMax));
  c.wrapped.blob.assign(blob.begin(), blob.end());
  return c;
}

KeystoreDigest Keystore::digest_at(uint64_t v) const {
  QUIRE_ASSERT(v <= version());
  if (v == 0) return KeystoreDigest{};
  return digests_[v - 1];
}

std::optional<DekRef> Keystore::newest_dek(uint64_t dek_id) const {
  // The entry just below {dek_id + 1, 0}, i.e. the highest version of dek_id.
  auto it = deks_.upper_bound(DekRef{dek_id, UINT32_MAX});
  if (it == deks_.begin()) return std::nullopt;
  --it;
  if (it->first.id != dek_id) return std::nullopt;
  return it->first;
}

Status Keystore::apply(const KeystoreChange& c) {
  // Validate everything first, then mutate, so a refused change leaves no trace.
  QUIRE_RETURN_IF_ERROR(check_change(c));
  apply_checked(c);
  digests_.push_back(next_digest(digest(), c));
  return Status();
}

Status Keystore::check_change(const KeystoreChange& c) const {
  auto kek = keks_.find(c.kek_version);
  bool kek_live = kek != keks_.end() && kek->second.state == KekState::kLive;
  switch (c.type) {
    case KeystoreChangeType::kNewKek:
      if (c.kek_version != newest_kek_version() + 1) {
        return refuse(c, fmt::format("KEK version must be {}", newest_kek_version() + 1));
      }
      if (c.wrapped.blob.empty()) return refuse(c, "empty wrapped KEK");
      break;
    case KeystoreChangeType::kActivateKek:
      if (!kek_live) return refuse(c, "KEK is not live");
      break;
    case KeystoreChangeType::kNewDek: {
      std::optional<DekRef> newest = newest_dek(c.dek_id);
      uint32_t expected = newest ? newest->version + 1 : 1;
      if (newest && newest->version == UINT32_MAX) return refuse(c, "DEK versions exhausted");
      if (c.dek_version != expected)
        return refuse(c, fmt::format("DEK version must be {}", expected));
      if (!kek_live) return refuse(c, "wrapping KEK is not live");
      if (c.wrapped.blob.empty()) return refuse(c, "empty wrapped DEK");
      break;
    }
    case KeystoreChangeType::kRewrapDek:
      if (!deks_.contains(DekRef{c.dek_id, c.dek_version})) return refuse(c, "no such DEK");
      if (!kek_live) return refuse(c, "wrapping KEK is not live");
      if (c.wrapped.blob.empty()) return refuse(c, "empty wrapped DEK");
      break;
    case KeystoreChangeType::kRewrapKek:
      if (kek == keks_.end()) return refuse(c, "no such KEK");
      if (kek->second.state == KekState::kDestroyed) return refuse(c, "KEK is destroyed");
      if (c.wrapped.blob.empty()) return refuse(c, "empty wrapped KEK");
      break;
    case KeystoreChangeType::kRetireKek: {
      if (!kek_live) return refuse(c, "KEK is not live");
      if (active_kek_ == c.kek_version) return refuse(c, "KEK is active");
      bool wraps_a_dek = std::any_of(deks_.begin(), deks_.end(), [&](const auto& e) {
        return e.second.kek_version == c.kek_version;
      });
      if (wraps_a_dek) return refuse(c, "KEK still wraps a DEK");
      break;
    }
    case KeystoreChangeType::kDestroyKek:
      if (kek == keks_.end() || kek->second.state != KekState::kRetired) {
        return refuse(c, "KEK is not retired");
      }
      break;
    default:
      return refuse(c, "unknown change type");
  }
  return Status();
}

void Keystore::apply_checked(const KeystoreChange& c) {
  auto kek = keks_.find(c.kek_version);
  // check_change found the KEK for every change but a new one.
  QUIRE_ASSERT(c.type == KeystoreChangeType::kNewKek || kek != keks_.end());
  switch (c.type) {
    case KeystoreChangeType::kNewKek:
      keks_[c.kek_version] = KekEntry{c.kek_version, KekState::kLive, c.wrapped};
      break;
    case KeystoreChangeType::kActivateKek:
      active_kek_ = c.kek_version;
      break;
    case KeystoreChangeType::kNewDek:
    case KeystoreChangeType::kRewrapDek: {
      DekRef ref{c.dek_id, c.dek_version};
      deks_[ref] = DekEntry{ref, c.kek_version, c.wrapped.blob};
      break;
    }
    case KeystoreChangeType::kRewrapKek:
      kek->second.wrapped = c.wrapped;
      break;
    case KeystoreChangeType::kRetireKek:
      kek->second.state = KekState::kRetired;
      break;
    case KeystoreChangeType::kDestroyKek:
      kek->second.state = KekState::kDestroyed;
      kek->second.wrapped = WrappedKey{};
      break;
  }
}

bool Keystore::is_prefix_of(const Keystore& other) const {
  return cluster_id_ == other.cluster_id_ && version() <= other.version() &&
         digest() == other.digest_at(version());
}

Status Keystore::adopt(const Keystore& newer) {
  if (newer.is_prefix_of(*this)) return Status();  // same or older: never go backwards
  if (is_prefix_of(newer)) {
    *this = newer;
    return Status();
  }
  name_keystore_codes();
  return Status(kKeystoreConflict, "keystores diverge: neither is a prefix of the other")
      .at("keystore_adopt")
      .with("keystore_version", version())
      .with("other_keystore_version", newer.version())
      .with("cluster_id", cluster_id_)
      .with("other_cluster_id", newer.cluster_id_);
}

// Layout: cluster id fixed64 | digest count varint | digests (16 bytes each) |
// has-active u8 [| active varint] | KEK count varint | KEKs | DEK count varint | DEKs.
void Keystore::encode(ByteWriter& w) const {
  w.put_fixed64(cluster_id_);
  w.put_varint64(digests_.size());
  for (const KeystoreDigest& d : digests_) w.put_bytes(d);
  w.put_u8(active_kek_ ? 1 : 0);
  if (active_kek_) w.put_varint32(*active_kek_);
  w.put_varint64(keks_.size());
  for (const auto& [v, e] : keks_) {
    w.put_varint32(v);
    w.put_u8(static_cast<uint8_t>(e.state));
    w.put_varint32(e.wrapped.cmk_version);
    w.put_length_prefixed(e.wrapped.blob);
  }
  w.put_varint64(deks_.size());
  for (const auto& [ref, e] : deks_) {
    w.put_varint64(ref.id);
    w.put_varint32(ref.version);
    w.put_varint32(e.kek_version);
    w.put_length_prefixed(e.wrapped);
  }
}

// Each step reads one section into *this; errors are Corruption at "keystore_decode".
Status Keystore::decode_digests(ByteReader& r) {
  uint64_t digest_count = 0;
  Status s = r.get_varint64(&digest_count);
  if (!s.is_ok()) return std::move(s).at("keystore_decode");
  // Bound the count by the bytes present before reserving anything.
  if (digest_count > r.remaining() / kDigestBytes)
    return malformed("digest count exceeds the input");
  digests_.resize(digest_count);
  for (KeystoreDigest& d : digests_) {
    ByteView raw;
    s = r.get_bytes(kDigestBytes, &raw);
    if (!s.is_ok()) return std::move(s).at("keystore_decode");
    std::memcpy(d.data(), raw.data(), kDigestBytes);
  }
  return Status::ok();
}

Status Keystore::decode_active_kek(ByteReader& r) {
  uint8_t has_active = 0;
  Status s = r.get_u8(&has_active);
  if (!s.is_ok()) return std::move(s).at("keystore_decode");
  if (has_active > 1) return malformed("bad active-KEK flag");
  if (has_active) {
    uint32_t active = 0;
    s = r.get_varint32(&active);
    if (!s.is_ok()) return std::move(s).at("keystore_decode");
    active_kek_ = active;
  }
  return Status::ok();
}

Status Keystore::decode_keks(ByteReader& r) {
  uint64_t kek_count = 0;
  Status s = r.get_varint64(&kek_count);
  if (!s.is_ok()) return std::move(s).at("keystore_decode");
  if (kek_count > r.remaining() / kEntryBytesMin) return malformed("KEK count exceeds the input");
  for (uint64_t i = 0; i < kek_count; ++i) {
    KekEntry e;
    uint8_t state = 0;
    ByteView blob;
    s = r.get_varint32(&e.version);
    if (s.is_ok()) s = r.get_u8(&state);
    if (s.is_ok()) s = r.get_varint32(&e.wrapped.cmk_version);
    if (s.is_ok()) s = r.get_length_prefixed(&blob, kWrappedBlobBytesMax);
    if (!s.is_ok()) return std::move(s).at("keystore_decode");
    if (!kek_state_valid(state))
      return malformed(fmt::format("KEK {} has state {}", e.version, state));
    e.state = static_cast<KekState>(state);
    e.wrapped.blob.assign(blob.begin(), blob.end());
    // KEK versions are created 1, 2, 3, ... and never removed (destroyed ones stay as markers).
    if (e.version != i + 1)
      return malformed(fmt::format("KEK version {} at position {}", e.version, i + 1));
    bool destroyed = e.state == KekState::kDestroyed;
    if (destroyed != e.wrapped.blob.empty()) {
      return malformed(fmt::format("KEK {} wrapped bytes do not match its state", e.version));
    }
    if (destroyed && e.wrapped.cmk_version != 0) {
      return malformed(fmt::format("destroyed KEK {} names a CMK version", e.version));
    }
    keks_.emplace(e.version, std::move(e));
  }
  if (active_kek_) {
    auto it = keks_.find(*active_kek_);
    if (it == keks_.end() || it->second.state != KekState::kLive) {
      return malformed(fmt::format("active KEK {} is not a live KEK", *active_kek_));
    }
  }
  return Status::ok();
}

Status Keystore::decode_deks(ByteReader& r) {
  uint64_t dek_count = 0;
  Status s = r.get_varint64(&dek_count);
  if (!s.is_ok()) return std::move(s).at("keystore_decode");
  if (dek_count > r.remaining() / kEntryBytesMin) return malformed("DEK count exceeds the input");
  std::optional<DekRef> previous;
  for (uint64_t i = 0; i < dek_count; ++i) {
    DekEntry e;
    ByteView blob;
    s = r.get_varint64(&e.ref.id);
    if (s.is_ok()) s = r.get_varint32(&e.ref.version);
    if (s.is_ok()) s = r.get_varint32(&e.kek_version);
    if (s.is_ok()) s = r.get_length_prefixed(&blob, kWrappedBlobBytesMax);
    if (!s.is_ok()) return std::move(s).at("keystore_decode");
    e.wrapped.assign(blob.begin(), blob.end());
    // Versions of one DEK id are 1, 2, 3, ... and entries are in ref order.
    bool continues = previous && previous->id == e.ref.id;
    uint32_t expected = continues ? previous->version + 1 : 1;
    if ((previous && e.ref <= *previous) || e.ref.version != expected) {
      return malformed(fmt::format("DEK {} version {} out of order", e.ref.id, e.ref.version));
    }
    auto kek = keks_.find(e.kek_version);
    if (kek == keks_.end() || kek->second.state != KekState::kLive) {
      return malformed(fmt::format("DEK {} version {} names KEK {}, which is not live", e.ref.id,
                                   e.ref.version, e.kek_version));
    }
    if (e.wrapped.empty())
      return malformed(fmt::format("DEK {} version {} is empty", e.ref.id, e.ref.version));
    previous = e.ref;
    deks_.emplace(e.ref, std::move(e));
  }
  return Status::ok();
}

Result<Keystore> Keystore::decode(ByteView bytes) {
  ByteReader r(bytes);
  uint64_t cluster_id = 0;
  Status s = r.get_fixed64(&cluster_id);
  if (!s.is_ok()) return std::move(s).at("keystore_decode");
  Keystore k(cluster_id);
  QUIRE_RETURN_IF_ERROR(k.decode_digests(r));
  QUIRE_RETURN_IF_ERROR(k.decode_active_kek(r));
  QUIRE_RETURN_IF_ERROR(k.decode_keks(r));
  QUIRE_RETURN_IF_ERROR(k.decode_deks(r));
  if (!r.at_end()) return malformed(fmt::format("{} trailing bytes", r.remaining()));
  // Each KEK, each DEK version and the activation took at least one change.
  uint64_t changes_min = k.keks_.size() + k.deks_.size() + (k.active_kek_ ? 1 : 0);
  if (changes_min > k.version()) {
    return malformed(fmt::format("{} versions cannot hold {} keys", k.version(), changes_min));
  }
  return k;
}

bool operator==(const Keystore& a, const Keystore& b) {
  return a.cluster_id_ == b.cluster_id_ && a.digests_ == b.digests_ &&
         a.active_kek_ == b.active_kek_ && a.keks_ == b.keks_ && a.deks_ == b.deks_;
}

Bytes kek_wrap_context(uint64_t cluster_id, uint32_t kek_version) {
  Bytes out;
  ByteWriter w(out);
  w.put_string("quire-kek");
  w.put_fixed64(cluster_id);
  w.put_fixed32(kek_version);
  return out;
}

Bytes dek_wrap_context(uint64_t cluster_id, const DekRef& dek, uint32_t kek_version) {
  Bytes out;
  ByteWriter w(out);
  w.put_string("quire-dek");
  w.put_fixed64(cluster_id);
  w.put_fixed64(dek.id);
  w.put_fixed32(dek.version);
  w.put_fixed32(kek_version);
  return out;
}

}  // namespace quire
