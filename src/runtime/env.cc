#include "runtime/env.h"

namespace quire {

uint64_t Random::uniform(uint64_t n) {
  QUIRE_ASSERT(n > 0);
  // Lemire's multiply-and-reject: unbiased, usually one draw.
  uint64_t x = next_u64();
  __uint128_t m = static_cast<__uint128_t>(x) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      x = next_u64();
      m = static_cast<__uint128_t>(x) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

int64_t Random::range(int64_t lo, int64_t hi) {
  QUIRE_ASSERT(lo <= hi);
  uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span == UINT64_MAX) return static_cast<int64_t>(next_u64());
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + uniform(span + 1));
}

double Random::unit() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

int64_t Env::log_wall_time_ns() const {
  return const_cast<Env*>(this)->clock().wall_now_ns();
}

std::string_view Env::log_task_name() const {
  return const_cast<Env*>(this)->executor().current_task_name();
}

}  // namespace quire
