#include "base/coding.h"

#include <functional>

#include <fmt/format.h>

namespace quire {

void ByteWriter::put_fixed16(uint16_t v) {
  uint8_t buf[2];
  encode_fixed16(buf, v);
  dst_.insert(dst_.end(), buf, buf + sizeof(buf));
}

void ByteWriter::put_fixed32(uint32_t v) {
  uint8_t buf[4];
  encode_fixed32(buf, v);
  dst_.insert(dst_.end(), buf, buf + sizeof(buf));
}

void ByteWriter::put_fixed64(uint64_t v) {
  uint8_t buf[8];
  encode_fixed64(buf, v);
  dst_.insert(dst_.end(), buf, buf + sizeof(buf));
}

void ByteWriter::put_varint64(uint64_t v) {
  uint8_t buf[kVarint64LengthMax];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<uint8_t>(v);
  QUIRE_ASSERT(n <= kVarint64LengthMax);
  dst_.insert(dst_.end(), buf, buf + n);
}

void ByteWriter::put_bytes(ByteView bytes) {
  if (bytes.empty()) return;
  // Growing the vector would invalidate a view into it halfway through the copy.
  const uint8_t* dst_begin = dst_.data();
  const uint8_t* dst_end = dst_.data() + dst_.size();
  QUIRE_ASSERT(std::less_equal<const uint8_t*>()(bytes.data() + bytes.size(), dst_begin) ||
               std::less_equal<const uint8_t*>()(dst_end, bytes.data()));
  dst_.insert(dst_.end(), bytes.begin(), bytes.end());
}

void ByteWriter::put_length_prefixed(ByteView bytes) {
  put_varint64(bytes.size());
  put_bytes(bytes);
}

void ByteWriter::put_string(std::string_view s) {
  put_length_prefixed(ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

Status ByteReader::truncated(const char* what) const {
  return corruption(fmt::format("truncated {}", what)).with("offset", position_);
}

Status ByteReader::get_u8(uint8_t* out) {
  if (remaining() < 1) return truncated("u8");
  *out = input_[position_];
  position_ += 1;
  return Status::ok();
}

Status ByteReader::get_fixed16(uint16_t* out) {
  if (remaining() < 2) return truncated("fixed16");
  *out = decode_fixed16(input_.data() + position_);
  position_ += 2;
  return Status::ok();
}

Status ByteReader::get_fixed32(uint32_t* out) {
  if (remaining() < 4) return truncated("fixed32");
  *out = decode_fixed32(input_.data() + position_);
  position_ += 4;
  return Status::ok();
}

Status ByteReader::get_fixed64(uint64_t* out) {
  if (remaining() < 8) return truncated("fixed64");
  *out = decode_fixed64(input_.data() + position_);
  position_ += 8;
  return Status::ok();
}

Status ByteReader::get_varint(const char* what, size_t length_max, int bits, uint64_t* out) {
  uint64_t result = 0;
  for (size_t i = 0; i < length_max; i++) {
    if (i >= remaining()) return truncated(what);
    uint8_t byte = input_[position_ + i];
    int shift = static_cast<int>(7 * i);
    uint64_t group = byte & 0x7f;
    // The last permitted byte may only carry the bits that are left below `bits`.
    if (shift + 7 > bits && (group >> (bits - shift)) != 0) {
      return corruption(fmt::format("{} overflows {} bits", what, bits)).with("offset", position_);
    }
    result |= group << shift;
    if ((byte & 0x80) == 0) {
      *out = result;
      position_ += i + 1;
      return Status::ok();
    }
  }
  return corruption(fmt::format("overlong {}", what)).with("offset", position_);
}

Status ByteReader::get_varint32(uint32_t* out) {
  uint64_t v = 0;
  QUIRE_RETURN_IF_ERROR(get_varint("varint32", kVarint32LengthMax, 32, &v));
  *out = static_cast<uint32_t>(v);
  return Status::ok();
}

Status ByteReader::get_varint64(uint64_t* out) {
  return get_varint("varint64", kVarint64LengthMax, 64, out);
}

Status ByteReader::get_bytes(size_t n, ByteView* out) {
  if (remaining() < n) return truncated("bytes").with("length", n);
  *out = input_.subspan(position_, n);
  position_ += n;
  return Status::ok();
}

Status ByteReader::get_length_prefixed(ByteView* out, size_t length_max) {
  const size_t start = position_;
  uint64_t length = 0;
  QUIRE_RETURN_IF_ERROR(get_varint64(&length));
  if (length > length_max) {
    position_ = start;
    return corruption("length-prefixed bytes longer than allowed")
        .with("offset", start)
        .with("length", length)
        .with("length_max", length_max);
  }
  if (length > remaining()) {
    position_ = start;
    return corruption("truncated length-prefixed bytes")
        .with("offset", start)
        .with("length", length);
  }
  *out = input_.subspan(position_, static_cast<size_t>(length));
  position_ += static_cast<size_t>(length);
  return Status::ok();
}

Status ByteReader::get_string(std::string* out, size_t length_max) {
  ByteView bytes;
  QUIRE_RETURN_IF_ERROR(get_length_prefixed(&bytes, length_max));
  out->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return Status::ok();
}

}  // namespace quire
