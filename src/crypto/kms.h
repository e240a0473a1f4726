// The key management service: holds the customer master key (CMK), in versions, and
// wraps and unwraps key-encryption keys (KEKs) under it. The CMK never leaves the KMS.
//
// Every wrap names what it wraps in `context` (bound as AAD: the cluster, the key's id
// and version), so a wrapped key unwraps only under the name it was wrapped for.
// Errors: Unavailable (retriable: the service is down or slow past the deadline),
// NotFound (no such CMK version, or it was retired), Corruption (the wrapped bytes or
// the context do not match), InvalidArgument (a malformed request).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/status.h"
#include "crypto/secret.h"
#include "runtime/task.h"

namespace quire {

struct WrappedKey {
  uint32_t cmk_version = 0;
  Bytes blob;  // opaque to everyone but the KMS
  friend bool operator==(const WrappedKey&, const WrappedKey&) = default;
};

class Kms {
 public:
  virtual ~Kms() = default;
  // The id of the CMK, e.g. "quire-cmk". For error text and logs.
  virtual const std::string& key_id() const = 0;
  // The version new wraps should use.
  virtual Task<Result<uint32_t>> active_version() = 0;
  // Wraps under the active CMK version.
  virtual Task<Result<WrappedKey>> wrap(Bytes context, SecretKey key) = 0;
  virtual Task<Result<SecretKey>> unwrap(Bytes context, WrappedKey wrapped) = 0;
  // Adds a CMK version and makes it active; the old versions stay usable for unwrap.
  virtual Task<Result<uint32_t>> rotate() = 0;
  // Removes an old version once nothing needs it (every KEK rewrapped, and that
  // durable). InvalidArgument for the active version.
  virtual Task<Status> retire(uint32_t version) = 0;
  // Versions that can still unwrap, oldest first.
  virtual Task<Result<std::vector<uint32_t>>> versions() = 0;
};

}  // namespace quire
