// 64-bit mixing for trace hashes and seed derivation. Not cryptographic: the runtime uses
// it to fold events into a trace hash and to derive per-concern random streams, where
// what matters is that every input bit changes the output.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace quire {

// The SplitMix64 finalizer: a bijection with full avalanche.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Folds v into h; order matters, so a sequence of folds identifies the sequence.
constexpr uint64_t hash_fold(uint64_t h, uint64_t v) {
  return mix64(h ^ mix64(v));
}

// Hash of a byte string, 8 bytes at a time.
inline uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = mix64(seed ^ n);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = hash_fold(h, w);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = hash_fold(h, w ^ (uint64_t{n} << 56));
  }
  return h;
}

inline uint64_t hash_bytes(std::span<const uint8_t> b, uint64_t seed = 0) {
  return hash_bytes(b.data(), b.size(), seed);
}
inline uint64_t hash_string(std::string_view s, uint64_t seed = 0) {
  return hash_bytes(s.data(), s.size(), seed);
}

}  // namespace quire
