// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every record and
// page Quire writes. Uses the SSE4.2 crc32 instruction when the CPU has it and a portable
// slicing-by-8 table otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace quire::crc32c {

// Returns the CRC-32C of the concatenation A + data[0, n), where `crc` is the CRC-32C of
// A (0 for the empty string). So extend(value(a), b) == value(a + b).
uint32_t extend(uint32_t crc, const void* data, size_t n);

// Same result as extend(), always computed with the portable table path. Exposed so tests
// and benchmarks can compare the two paths.
uint32_t extend_portable(uint32_t crc, const void* data, size_t n);

// True when extend() uses the SSE4.2 crc32 instruction on this CPU.
bool hardware_available();

// Returns the CRC-32C of data[0, n).
inline uint32_t value(const void* data, size_t n) {
  return extend(0, data, n);
}
inline uint32_t value(std::span<const uint8_t> data) {
  return extend(0, data.data(), data.size());
}

// LevelDB's constant. Masked CRCs are stored on disk, so it can never change.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

// Returns a masked form of `crc` for storing next to data. Computing the CRC of a string
// that contains embedded CRCs is error-prone (the CRC of data followed by its own CRC is a
// constant), so stored CRCs are rotated and offset first.
constexpr uint32_t mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

// Returns the CRC whose mask() is `masked_crc`.
constexpr uint32_t unmask(uint32_t masked_crc) {
  uint32_t rotated = masked_crc - kMaskDelta;
  return (rotated >> 17) | (rotated << 15);
}

}  // namespace quire::crc32c
