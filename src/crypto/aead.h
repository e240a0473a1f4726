// AES-256-GCM through OpenSSL 3 EVP, and key wrapping built on it.
//
// Aes256Gcm keeps one fetched cipher and one encrypt and one decrypt context, keyed once,
// so each message costs only its IV set-up and the cipher work. Nonces are 12 bytes and
// the tag is the full 16 bytes. An object is used by one task at a time (OpenSSL
// contexts are not thread-safe).
//
// Key wrapping is AES-256-GCM with AAD naming the wrapped key (its purpose, ids and
// versions, and the cluster): wrapped = nonce(12) | ciphertext(32) | tag(16), 60 bytes.
// A wrapped key that is moved to another name, or altered, fails to unwrap.
#pragma once

#include <memory>

#include "base/coding.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace quire {

inline constexpr size_t kGcmNonceBytes = 12;
inline constexpr size_t kGcmTagBytes = 16;
inline constexpr size_t kWrappedKeyBytes = kGcmNonceBytes + kSecretKeyBytes + kGcmTagBytes;

class Aes256Gcm {
 public:
  // The key must not be empty.
  explicit Aes256Gcm(const SecretKey& key);
  ~Aes256Gcm();
  Aes256Gcm(const Aes256Gcm&) = delete;
  Aes256Gcm& operator=(const Aes256Gcm&) = delete;

  // Appends ciphertext and then the 16-byte tag to `out`. InvalidArgument for a nonce
  // that is not 12 bytes; Io if OpenSSL fails (it does not, short of memory).
  Status seal(ByteView nonce, ByteView aad, ByteView plaintext, Bytes& out);
  // Checks the tag (inside EVP_DecryptFinal_ex) and appends the plaintext to `out` only
  // when it is authentic; otherwise Corruption and `out` is unchanged.
  Status open(ByteView nonce, ByteView aad, ByteView ciphertext_and_tag, Bytes& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Wraps `key` under `wrapping` with a fresh random nonce from `random`.
Result<Bytes> wrap_key(Aes256Gcm& wrapping, ByteView aad, const SecretKey& key, Random& random);
// Corruption when the wrapped bytes or the AAD do not match what was wrapped.
Result<SecretKey> unwrap_key(Aes256Gcm& wrapping, ByteView aad, ByteView wrapped);

}  // namespace quire
