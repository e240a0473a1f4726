#include "runtime/real/csprng_random.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <openssl/rand.h>

namespace quire {

namespace {

// RAND_bytes fails only when the process cannot seed OpenSSL's DRBG at all (no getrandom,
// no /dev/urandom): not a state a sane system reaches, and no caller could recover from it.
void rand_bytes_or_die(uint8_t* out, size_t n) {
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, std::numeric_limits<int>::max());
    int rc = RAND_bytes(out, static_cast<int>(chunk));
    QUIRE_ASSERT_MSG(rc == 1, "OpenSSL RAND_bytes failed");
    out += chunk;
    n -= chunk;
  }
}

}  // namespace

void CsprngRandom::refill() {
  rand_bytes_or_die(buffer_.data(), buffer_.size());
  used_ = 0;
}

uint64_t CsprngRandom::next_u64() {
  uint64_t v;
  fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof(v)));
  return v;
}

void CsprngRandom::fill(std::span<uint8_t> out) {
  if (out.size() >= kBufferBytes) {
    rand_bytes_or_die(out.data(), out.size());
    return;
  }
  size_t done = 0;
  while (done < out.size()) {
    if (used_ == buffer_.size()) refill();
    size_t n = std::min(out.size() - done, buffer_.size() - used_);
    std::memcpy(out.data() + done, buffer_.data() + used_, n);
    // Bytes handed out are wiped so a later dump of this object cannot reveal them.
    std::memset(buffer_.data() + used_, 0, n);
    used_ += n;
    done += n;
  }
}

}  // namespace quire
