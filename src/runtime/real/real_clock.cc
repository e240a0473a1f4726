#include "runtime/real/real_clock.h"

#include <chrono>

namespace quire {

int64_t RealClock::wall_now_ns() const {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<Nanos>(since_epoch).count() + wall_offset_.count();
}

}  // namespace quire
