#include "crypto/secret.h"

#include <algorithm>

#include <openssl/crypto.h>

namespace quire {

SecretKey::~SecretKey() {
  wipe();
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_), present_(other.present_) {
  other.wipe();
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    present_ = other.present_;
    other.wipe();
  }
  return *this;
}

SecretKey SecretKey::generate(Random& random) {
  SecretKey key;
  random.fill(key.bytes_);
  key.present_ = true;
  return key;
}

Result<SecretKey> SecretKey::from_bytes(ByteView bytes) {
  // The size is safe to report; the bytes are not, even when they are the wrong length.
  if (bytes.size() != kSecretKeyBytes) {
    return invalid_argument("a secret key must be exactly 32 bytes")
        .at("secret_from_bytes")
        .with("size", bytes.size());
  }
  SecretKey key;
  std::copy(bytes.begin(), bytes.end(), key.bytes_.begin());
  key.present_ = true;
  return key;
}

SecretKey SecretKey::clone() const {
  SecretKey copy;
  copy.bytes_ = bytes_;
  copy.present_ = present_;
  return copy;
}

bool SecretKey::equals(const SecretKey& other) const {
  if (present_ != other.present_) return false;
  return CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

void SecretKey::wipe() {
  // OPENSSL_cleanse, unlike memset, is not removed by the optimiser as a dead store.
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
  present_ = false;
}

}  // namespace quire
