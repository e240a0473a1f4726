// CmkVersions: the CMK versions a KMS holds and the wrapping under them, shared by every
// Kms implementation so they all answer with the same codes and the same error text.
//
// Each version keeps its key (for writing it back to wherever the KMS stores it) and an
// AES-256-GCM context keyed with it. Errors name the key id and the version, never key
// bytes: NotFound for a version it does not hold, Corruption when the wrapped bytes or
// the context do not match.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/kms.h"
#include "crypto/secret.h"
#include "runtime/env.h"

namespace quire {

class CmkVersions {
 public:
  // More versions than this is a KMS no one retires from; rotate() refuses to add one.
  static constexpr size_t kVersionsMax = 1024;

  explicit CmkVersions(std::string key_id) : key_id_(std::move(key_id)) {}
  CmkVersions(CmkVersions&&) noexcept = default;
  CmkVersions& operator=(CmkVersions&&) noexcept = default;

  const std::string& key_id() const { return key_id_; }
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // 0 while empty.
  uint32_t active() const { return active_; }
  bool contains(uint32_t version) const { return keys_.count(version) > 0; }
  // Oldest first.
  std::vector<uint32_t> versions() const;
  // The key of a version it holds, for persisting it.
  const SecretKey& key(uint32_t version) const;

  // Adds a version it does not hold yet (the key must not be empty). Does not change which
  // version is active.
  void add(uint32_t version, SecretKey key);
  // Makes a held version the active one.
  void activate(uint32_t version);
  // The version the next rotation adds: one past the newest. InvalidArgument when the
  // bound or the version space is exhausted.
  Result<uint32_t> next_version() const;
  // InvalidArgument for the active version, NotFound for one it does not hold.
  Status check_retire(uint32_t version) const;
  void remove(uint32_t version);
  // An independent copy (every key cloned), to build the next state beside the current.
  CmkVersions clone() const;

  // Wraps under the active version with a fresh nonce from `random`.
  Result<WrappedKey> wrap(ByteView context, const SecretKey& key, Random& random);
  Result<SecretKey> unwrap(ByteView context, const WrappedKey& wrapped);
  // The NotFound a KMS returns for a version it does not hold (or refuses to use).
  Status version_not_found(uint32_t version, std::string_view why) const;

 private:
  struct Version {
    SecretKey key;
    std::unique_ptr<Aes256Gcm> cipher;
  };

  std::string key_id_;
  std::map<uint32_t, Version> keys_;
  uint32_t active_ = 0;
};

}  // namespace quire
