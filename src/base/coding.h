// Byte coding for everything Quire puts on a disk or a wire: little-endian fixed-width
// integers, LEB128 varints and length-prefixed byte strings. Writing appends to a byte
// vector; reading is bounds-checked and reports malformed input as Corruption.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace quire {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// The longest varint encodings of a 32-bit and a 64-bit value.
inline constexpr size_t kVarint32LengthMax = 5;
inline constexpr size_t kVarint64LengthMax = 10;

// Writes `v` little-endian into dst[0, 2), dst[0, 4) or dst[0, 8). For patching a header in
// place after its body has been written.
inline void encode_fixed16(uint8_t* dst, uint16_t v) {
  dst[0] = static_cast<uint8_t>(v);
  dst[1] = static_cast<uint8_t>(v >> 8);
}
inline void encode_fixed32(uint8_t* dst, uint32_t v) {
  for (int i = 0; i < 4; i++) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void encode_fixed64(uint8_t* dst, uint64_t v) {
  for (int i = 0; i < 8; i++) dst[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Reads a little-endian value from src[0, 2), src[0, 4) or src[0, 8). The caller guarantees
// the bytes exist; ByteReader is the checked way to decode untrusted input.
inline uint16_t decode_fixed16(const uint8_t* src) {
  return static_cast<uint16_t>(src[0] | (src[1] << 8));
}
inline uint32_t decode_fixed32(const uint8_t* src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t{src[i]} << (8 * i);
  return v;
}
inline uint64_t decode_fixed64(const uint8_t* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t{src[i]} << (8 * i);
  return v;
}

// Returns the number of bytes put_varint64(v) writes: 1 to 10.
constexpr size_t varint_length(uint64_t v) {
  size_t length = 1;
  while (v >= 0x80) {
    v >>= 7;
    length++;
  }
  return length;
}

// Appends encoded values to a byte vector it references but does not own; the vector must
// outlive the writer. Several writers may append to the same vector in turn.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& dst) : dst_(dst) {}

  void put_u8(uint8_t v) { dst_.push_back(v); }
  void put_fixed16(uint16_t v);
  void put_fixed32(uint32_t v);
  void put_fixed64(uint64_t v);
  // LEB128: seven bits per byte, least significant group first, high bit set on all but
  // the last byte.
  void put_varint32(uint32_t v) { put_varint64(v); }
  void put_varint64(uint64_t v);
  // Appends the bytes as they are. `bytes` must not view the destination vector itself.
  void put_bytes(ByteView bytes);
  // Appends varint64(bytes.size()) and then the bytes.
  void put_length_prefixed(ByteView bytes);
  // Appends the string length-prefixed, like put_length_prefixed().
  void put_string(std::string_view s);

  // The size of the destination vector, i.e. the offset the next put writes at (useful for
  // remembering where a header goes before patching it with encode_fixed32()).
  size_t size() const { return dst_.size(); }

 private:
  Bytes& dst_;
};

// Decodes values from a view of bytes it does not own, front to back. Every get either
// succeeds and advances, or returns Corruption (naming what was being read, with the
// "offset" it started at) and leaves the position and the output untouched. It never reads
// outside the view and never asserts on the bytes' content.
class ByteReader {
 public:
  explicit ByteReader(ByteView input) : input_(input) {}

  Status get_u8(uint8_t* out);
  Status get_fixed16(uint16_t* out);
  Status get_fixed32(uint32_t* out);
  Status get_fixed64(uint64_t* out);
  // Rejects encodings longer than 5 bytes or carrying bits beyond 32.
  Status get_varint32(uint32_t* out);
  // Rejects encodings longer than 10 bytes or carrying bits beyond 64.
  Status get_varint64(uint64_t* out);
  // Sets *out to a view of the next n bytes (no copy; valid as long as the input is).
  Status get_bytes(size_t n, ByteView* out);
  // Reads what put_length_prefixed() wrote. A length above `length_max` is Corruption, so
  // a caller can bound what a corrupt length makes it accept; the remaining bytes always
  // bound it.
  Status get_length_prefixed(ByteView* out, size_t length_max = std::numeric_limits<size_t>::max());
  // Reads what put_string() wrote, copying it into *out.
  Status get_string(std::string* out, size_t length_max = std::numeric_limits<size_t>::max());

  size_t position() const { return position_; }
  size_t remaining() const { return input_.size() - position_; }
  bool at_end() const { return position_ == input_.size(); }

 private:
  // Decodes a varint of at most `length_max` bytes whose value fits in `bits` bits.
  Status get_varint(const char* what, size_t length_max, int bits, uint64_t* out);
  Status truncated(const char* what) const;

  ByteView input_;
  size_t position_ = 0;
};

}  // namespace quire
