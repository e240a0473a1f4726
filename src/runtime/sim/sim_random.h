// Deterministic random streams for the simulated world: xoshiro256** seeded through
// SplitMix64 from (run seed, stream name). Streams are independent, so the draws of one
// concern never shift another's.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/hash.h"
#include "runtime/env.h"

namespace quire {

// A 64-bit seed for stream `name` of run `seed`.
inline uint64_t derive_seed(uint64_t seed, std::string_view name) {
  return hash_string(name, mix64(seed ^ 0x5157495245ull));
}

class SimRandom : public Random {
 public:
  explicit SimRandom(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9E3779B97F4A7C15ull;
      w = mix64(x);
    }
  }
  SimRandom(uint64_t seed, std::string_view name) : SimRandom(derive_seed(seed, name)) {}

  uint64_t next_u64() override {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  void fill(std::span<uint8_t> out) override {
    size_t i = 0;
    while (i < out.size()) {
      uint64_t w = next_u64();
      for (int b = 0; b < 8 && i < out.size(); ++b, ++i)
        out[i] = static_cast<uint8_t>(w >> (8 * b));
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace quire
