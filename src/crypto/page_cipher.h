// Encryption of everything a compute node writes to the page service: pages, deltas, log
// records, metadata pages. Each payload is AES-256-GCM under a data encryption key (DEK)
// with AAD binding where the bytes belong, so a payload moved to another table, page, LSN
// or record type, or re-labelled with another key, fails to decrypt.
//
// Sealed payload, format version 1 (little-endian):
//
//   offset  size  field
//        0     4  magic "QENC" (0x434e4551)
//        4     1  format version (1)
//        5     3  reserved (zero)
//        8     8  DEK id
//       16     4  DEK version
//       20    12  nonce
//       32     n  ciphertext, then the 16-byte tag
//
// AAD (40 bytes) = table id (8) | page id (8) | lsn (8) | record type (1) |
//                  DEK id (8) | DEK version (4) | format version (1) | reserved (2, zero)
//
// The record type is the caller's one-byte tag (pagelog's RecordType value): this layer
// binds it into the AAD without knowing what it names.
//
// Nonces are 96 random bits from the node's Random. Random nonces are safe for 2^32
// messages under one key (NIST SP 800-38D); a DataKey counts its uses, asks for a new DEK
// version at kDekUsesSoftLimit, and refuses to encrypt at kDekUsesHardLimit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>

#include "base/coding.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/aead.h"

namespace quire {

inline constexpr uint32_t kSealedMagic = 0x434e4551;  // "QENC"
inline constexpr uint8_t kSealedFormatVersion = 1;
inline constexpr size_t kSealedHeaderBytes = 32;
inline constexpr size_t kSealedOverheadBytes = kSealedHeaderBytes + kGcmTagBytes;
inline constexpr uint64_t kDekUsesSoftLimit = uint64_t{1} << 30;
inline constexpr uint64_t kDekUsesHardLimit = uint64_t{1} << 31;

// Which key: a DEK id (a table's id; the log has its own) and its version.
struct DekRef {
  uint64_t id = 0;
  uint32_t version = 0;
  friend bool operator==(const DekRef&, const DekRef&) = default;
  friend auto operator<=>(const DekRef&, const DekRef&) = default;
};

// A one-byte enum the caller uses to say what kind of record a payload is (pagelog's
// RecordType); crypto takes its value as an opaque tag.
template <typename E>
concept OneByteTag = std::is_enum_v<E> && std::is_same_v<std::underlying_type_t<E>, uint8_t>;

// Where the payload belongs: bound into the AAD. `type` is the record type's byte.
struct PayloadPlace {
  TableId table;
  PageId page;
  Lsn lsn;
  uint8_t type = 0;

  constexpr PayloadPlace(TableId table_, PageId page_, Lsn lsn_, uint8_t type_)
      : table(table_), page(page_), lsn(lsn_), type(type_) {}
  // From the caller's record-type enum: the AAD byte is the enum's value, unchanged.
  template <OneByteTag E>
  constexpr PayloadPlace(TableId table_, PageId page_, Lsn lsn_, E type_)
      : PayloadPlace(table_, page_, lsn_, static_cast<uint8_t>(type_)) {}
};

// A DEK ready to use: its ref, its cipher, and its use count.
class DataKey {
 public:
  DataKey(DekRef ref, const SecretKey& key, uint64_t uses_hard_limit = kDekUsesHardLimit);
  const DekRef& ref() const { return ref_; }
  uint64_t uses() const { return uses_; }
  uint64_t uses_hard_limit() const { return uses_hard_limit_; }
  // True once half the hard limit is used: the owner should create a new DEK version.
  bool wants_new_version() const { return uses_ >= uses_hard_limit_ / 2; }
  Aes256Gcm& cipher() { return cipher_; }

  // Encrypts `plaintext` for `place`, appending the sealed payload to `out`. Counts one
  // use; at the hard limit returns KeyExhausted (naming the DEK) and encrypts nothing.
  Status seal(const PayloadPlace& place, ByteView plaintext, Random& random, Bytes& out);

 private:
  DekRef ref_;
  Aes256Gcm cipher_;
  uint64_t uses_ = 0;
  uint64_t uses_hard_limit_;
};

// The DEK a sealed payload names, from its header. Corruption for a payload too short or
// with a bad magic; VersionTooNew for a format version above kSealedFormatVersion.
Result<DekRef> sealed_dek(ByteView sealed);

// Finds the DataKey for a ref; nullptr when this node does not have it.
using DekLookup = std::function<DataKey*(const DekRef&)>;

// Decrypts a sealed payload written for `place`. Errors name the table, page, lsn, type
// and DEK: Corruption for a malformed header or a failed tag (a tampered, swapped or
// replayed payload), VersionTooNew for a newer format, NotFound when `lookup` has no
// such DEK. Never returns unauthenticated bytes.
Result<Bytes> open_sealed(const DekLookup& lookup, const PayloadPlace& place, ByteView sealed);

}  // namespace quire
