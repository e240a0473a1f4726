// RawGcm: raw OpenSSL AES-256-GCM keyed once (as Aes256Gcm is), 12-byte IVs, no AAD, no
// framing and no Status: what the cipher costs with nothing around it. It is the baseline
// `quire bench engine` measures Aes256Gcm's page path (DataKey::seal, open_sealed)
// against; nothing else uses it. An object is used by one thread at a time.
#pragma once

#include <openssl/evp.h>

#include <cstdint>

#include "base/coding.h"
#include "crypto/aead.h"

namespace quire {

class RawGcm {
 public:
  RawGcm() = default;
  ~RawGcm();
  RawGcm(const RawGcm&) = delete;
  RawGcm& operator=(const RawGcm&) = delete;

  // Fetches the cipher and keys both contexts with the 32-byte `key`; false when OpenSSL
  // cannot. Called once, before seal() and open().
  bool init(ByteView key);
  // Writes the ciphertext and then the tag to `out` (plaintext.size() + kGcmTagBytes
  // bytes), under the kGcmNonceBytes-byte `iv`.
  bool seal(const uint8_t* iv, ByteView plaintext, uint8_t* out);
  // Opens what seal() wrote (at least kGcmTagBytes bytes) into `out`; false when the tag
  // does not match.
  bool open(const uint8_t* iv, ByteView sealed, uint8_t* out);

 private:
  EVP_CIPHER* cipher_ = nullptr;
  EVP_CIPHER_CTX* encrypt_ = nullptr;
  EVP_CIPHER_CTX* decrypt_ = nullptr;
};

}  // namespace quire
