// CsprngRandom: a Random stream drawn from OpenSSL's CSPRNG (RAND_bytes), for the real
// world. Small draws come from a buffer refilled 4 KiB at a time; large fills go straight
// to RAND_bytes. Not reproducible, by design: the simulated world is the one with seeds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/env.h"

namespace quire {

class CsprngRandom : public Random {
 public:
  static constexpr size_t kBufferBytes = 4096;

  CsprngRandom() = default;

  uint64_t next_u64() override;
  void fill(std::span<uint8_t> out) override;

 private:
  void refill();

  std::array<uint8_t, kBufferBytes> buffer_{};
  size_t used_ = kBufferBytes;  // bytes of buffer_ already handed out
};

}  // namespace quire
