// Key material. A SecretKey holds exactly 32 bytes (AES-256), is move-only, wipes its
// bytes (OPENSSL_cleanse) when destroyed or moved from, and has no way to be printed or
// formatted: fmt prints "<secret>" for it. The bytes are reachable only through
// reveal(), whose callers hand them straight to OpenSSL.
#pragma once

#include <array>
#include <cstdint>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/status.h"
#include "runtime/env.h"

namespace quire {

inline constexpr size_t kSecretKeyBytes = 32;

class SecretKey {
 public:
  SecretKey() = default;  // empty: holds no key
  ~SecretKey();
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // 32 fresh bytes from `random` (the node's seam: OpenSSL's CSPRNG in real mode).
  static SecretKey generate(Random& random);
  // InvalidArgument (without echoing the bytes) unless exactly 32 bytes.
  static Result<SecretKey> from_bytes(ByteView bytes);

  bool empty() const { return !present_; }
  // An explicit copy, so every duplication of key material is visible in the code.
  SecretKey clone() const;
  // The raw bytes, for OpenSSL calls only. Never log, format or send them.
  ByteView reveal() const { return ByteView(bytes_.data(), present_ ? bytes_.size() : 0); }
  // Constant-time comparison (CRYPTO_memcmp).
  bool equals(const SecretKey& other) const;
  // Wipes the bytes now; the key becomes empty.
  void wipe();

 private:
  std::array<uint8_t, kSecretKeyBytes> bytes_{};
  bool present_ = false;
};

}  // namespace quire

template <>
struct fmt::formatter<quire::SecretKey> : fmt::formatter<std::string_view> {
  auto format(const quire::SecretKey&, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("<secret>", ctx);
  }
};
