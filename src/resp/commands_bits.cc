// SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO: a string as an array of bits, bit
// 0 the most significant bit of its first byte, ported from Redis 7.0's bitops.c (argument checks
// in its order and with its messages, the BYTE|BIT ranges of 7.0). A value past Quire's value limit
// is refused before it grows (as SETRANGE).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "engine/btree.h"
#include "resp/commands.h"

namespace quire::resp {
namespace {

constexpr std::string_view kBitOffsetError = "bit offset is not an integer or out of range";
// Redis's proto-max-bulk-len: the byte of a bit offset must be below it.
constexpr int64_t kProtoMaxBulkBytes = int64_t{512} << 20;

std::optional<uint64_t> bit_offset(std::string_view arg) {
  std::optional<int64_t> v = parse_int64(arg);
  if (!v || *v < 0 || (*v >> 3) >= kProtoMaxBulkBytes) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

int64_t popcount(const uint8_t* p, size_t n) {
  int64_t bits = 0;
  for (size_t i = 0; i < n; i++) bits += __builtin_popcount(p[i]);
  return bits;
}

// Redis's redisBitpos: the first bit equal to `bit` in n bytes, the bytes past them read as
// zeros (so a clear bit is always found, at n * 8 at the latest; a set bit may not: -1).
int64_t bitpos(const uint8_t* p, size_t n, int bit) {
  const uint8_t skip = bit ? 0x00 : 0xFF;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == skip) continue;
    for (int j = 0; j < 8; j++) {
      if (((p[i] >> (7 - j)) & 1) == bit) return static_cast<int64_t>(i * 8 + j);
    }
  }
  return bit ? -1 : static_cast<int64_t>(n * 8);
}

enum class BitOp : uint8_t { kAnd, kOr, kXor, kNot };

// BITOP yields to the node's other tasks after folding this many bytes.
constexpr size_t kBitopYieldBytes = size_t{8} << 20;

// res = res OP v, v padded with zero bytes to res's length (v is never longer), eight bytes
// at a time.
void bitop_fold(BitOp op, std::string& res, std::string_view v) {
  const size_t n = v.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, res.data() + i, 8);
    std::memcpy(&y, v.data() + i, 8);
    x = op == BitOp::kAnd ? (x & y) : op == BitOp::kOr ? (x | y) : (x ^ y);
    std::memcpy(res.data() + i, &x, 8);
  }
  for (; i < n; i++) {
    const auto x = static_cast<uint8_t>(res[i]);
    const auto y = static_cast<uint8_t>(v[i]);
    res[i] = static_cast<char>(op == BitOp::kAnd ? (x & y) : op == BitOp::kOr ? (x | y) : (x ^ y));
  }
  if (op == BitOp::kAnd) std::memset(res.data() + n, 0, res.size() - n);  // x & 0
}

const uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// BITCOUNT's and BITPOS's [start end [BYTE|BIT]] against a string of `len` bytes: the byte
// range and the masks of the bits outside it in its first and last byte (BIT ranges).
struct BitRange {
  int64_t start = 0;
  int64_t end = 0;
  uint8_t first_mask = 0;
  uint8_t last_mask = 0;
};

void clamp_range(BitRange& r, int64_t total, bool isbit) {
  if (r.start < 0) r.start = total + r.start;
  if (r.end < 0) r.end = total + r.end;
  if (r.start < 0) r.start = 0;
  if (r.end < 0) r.end = 0;
  if (r.end >= total) r.end = total - 1;
  if (isbit && r.start <= r.end) {
    r.first_mask = static_cast<uint8_t>(~((1 << (8 - (r.start & 7))) - 1) & 0xFF);
    r.last_mask = static_cast<uint8_t>((1 << (7 - (r.end & 7))) - 1);
    r.start >>= 3;
    r.end >>= 3;
  }
}

// BYTE or BIT (as Redis: strcasecmp, so up to a NUL byte); nullopt for anything else.
std::optional<bool> index_unit(std::string_view arg) {
  const std::string_view unit = c_string(arg);
  if (iequals(unit, "bit")) return true;
  if (iequals(unit, "byte")) return false;
  return std::nullopt;
}

// ---- BITFIELD: integers of 1 to 64 bits (unsigned: 1 to 63) at any bit offset, bit 0 the
// most significant (Redis 7.0's bitfieldGeneric and its helpers).

enum class BitfieldOp : uint8_t { kGet, kSet, kIncrBy };
enum class Overflow : uint8_t { kWrap, kSat, kFail };

struct BitfieldStep {
  BitfieldOp op = BitfieldOp::kGet;
  Overflow overflow = Overflow::kWrap;
  bool sign = false;
  uint64_t bits = 0;
  uint64_t offset = 0;
  int64_t value = 0;  // SET's value, INCRBY's increment
};

uint64_t get_unsigned_field(const uint8_t* p, uint64_t offset, uint64_t bits) {
  uint64_t value = 0;
  for (uint64_t j = 0; j < bits; j++, offset++) {
    value = (value << 1) | ((p[offset >> 3] >> (7 - (offset & 7))) & 1);
  }
  return value;
}

int64_t get_signed_field(const uint8_t* p, uint64_t offset, uint64_t bits) {
  uint64_t u = get_unsigned_field(p, offset, bits);
  if (bits < 64 && (u & (uint64_t{1} << (bits - 1)))) u |= ~uint64_t{0} << bits;
  return static_cast<int64_t>(u);
}

void set_unsigned_field(uint8_t* p, uint64_t offset, uint64_t bits, uint64_t value) {
  for (uint64_t j = 0; j < bits; j++, offset++) {
    const uint64_t bit = (value >> (bits - 1 - j)) & 1;
    const int shift = 7 - static_cast<int>(offset & 7);
    p[offset >> 3] = static_cast<uint8_t>((p[offset >> 3] & ~(1 << shift)) | (bit << shift));
  }
}

// Whether value + incr leaves the field's range: 0 no, 1 above, -1 below; `limit` is then
// what WRAP or SAT makes of it (Redis's checkUnsignedBitfieldOverflow).
int unsigned_overflow(uint64_t value, int64_t incr, uint64_t bits, Overflow ow, uint64_t* limit) {
  const uint64_t max = bits == 64 ? UINT64_MAX : (uint64_t{1} << bits) - 1;
  const auto maxincr = static_cast<int64_t>(max - value);
  const auto minincr = static_cast<int64_t>(0 - value);
  const auto wrap = [&] {
    *limit = (value + static_cast<uint64_t>(incr)) & ~(~uint64_t{0} << bits);
  };
  if (value > max || (incr > 0 && incr > maxincr)) {
    if (ow == Overflow::kWrap) {
      wrap();
    } else if (ow == Overflow::kSat) {
      *limit = max;
    }
    return 1;
  }
  if (incr < 0 && incr < minincr) {
    if (ow == Overflow::kWrap) {
      wrap();
    } else if (ow == Overflow::kSat) {
      *limit = 0;
    }
    return -1;
  }
  return 0;
}

// The same for a signed field (Redis's checkSignedBitfieldOverflow).
int signed_overflow(int64_t value, int64_t incr, uint64_t bits, Overflow ow, int64_t* limit) {
  const int64_t max = bits == 64 ? INT64_MAX : (int64_t{1} << (bits - 1)) - 1;
  const int64_t min = -max - 1;
  // Both may overflow, but are used only once `value` is known to be in range.
  const auto maxincr =
      static_cast<int64_t>(static_cast<uint64_t>(max) - static_cast<uint64_t>(value));
  const auto minincr =
      static_cast<int64_t>(static_cast<uint64_t>(min) - static_cast<uint64_t>(value));
  const auto wrap = [&] {
    uint64_t c = static_cast<uint64_t>(value) + static_cast<uint64_t>(incr);
    if (bits < 64) {
      const uint64_t mask = ~uint64_t{0} << bits;
      c = (c & (uint64_t{1} << (bits - 1))) ? (c | mask) : (c & ~mask);
    }
    *limit = static_cast<int64_t>(c);
  };
  if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr)) {
    if (ow == Overflow::kWrap) {
      wrap();
    } else if (ow == Overflow::kSat) {
      *limit = max;
    }
    return 1;
  }
  if (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr)) {
    if (ow == Overflow::kWrap) {
      wrap();
    } else if (ow == Overflow::kSat) {
      *limit = min;
    }
    return -1;
  }
  return 0;
}

constexpr std::string_view kBitfieldTypeError =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 "
    "is.";

// "i1".."i64" or "u1".."u63" (as Redis: the digits up to a NUL byte).
bool bitfield_type(std::string_view arg, BitfieldStep& step) {
  const std::string_view t = c_string(arg);
  if (t.empty() || (t[0] != 'i' && t[0] != 'u')) return false;
  step.sign = t[0] == 'i';
  std::optional<int64_t> bits = parse_int64(t.substr(1));
  if (!bits || *bits < 1 || *bits > (step.sign ? 64 : 63)) return false;
  step.bits = static_cast<uint64_t>(*bits);
  return true;
}

// An offset in bits, or "#n": the n-th field of the type's width.
bool bitfield_offset(std::string_view arg, BitfieldStep& step) {
  const bool hash = !arg.empty() && arg[0] == '#';
  std::optional<int64_t> v = parse_int64(hash ? arg.substr(1) : arg);
  if (!v) return false;
  int64_t offset = *v;
  if (hash) {
    const auto bits = static_cast<int64_t>(step.bits);
    if (offset > INT64_MAX / bits || offset < INT64_MIN / bits) return false;
    offset *= bits;
  }
  if (offset < 0 || (offset >> 3) >= kProtoMaxBulkBytes) return false;
  step.offset = static_cast<uint64_t>(offset);
  return true;
}

// Runs one SET or INCRBY on `value` (long enough for it) and writes its reply.
void bitfield_write(const BitfieldStep& step, std::string& value, ReplyWriter& out) {
  auto* p = reinterpret_cast<uint8_t*>(value.data());
  bool failed = false;
  if (step.sign) {
    const int64_t old = get_signed_field(p, step.offset, step.bits);
    int64_t wrapped = 0;
    int64_t next = step.value;
    int64_t reply = old;
    if (step.op == BitfieldOp::kIncrBy) {
      const int over = signed_overflow(old, step.value, step.bits, step.overflow, &wrapped);
      next = over ? wrapped
                  : static_cast<int64_t>(static_cast<uint64_t>(old) +
                                         static_cast<uint64_t>(step.value));
      reply = next;
      failed = over != 0 && step.overflow == Overflow::kFail;
    } else if (signed_overflow(next, 0, step.bits, step.overflow, &wrapped) != 0) {
      next = wrapped;
      failed = step.overflow == Overflow::kFail;
    }
    if (!failed) {
      set_unsigned_field(p, step.offset, step.bits, static_cast<uint64_t>(next));
      out.integer(reply);
    }
  } else {
    const uint64_t old = get_unsigned_field(p, step.offset, step.bits);
    uint64_t wrapped = 0;
    uint64_t next = static_cast<uint64_t>(step.value);
    uint64_t reply = old;
    if (step.op == BitfieldOp::kIncrBy) {
      const int over = unsigned_overflow(old, step.value, step.bits, step.overflow, &wrapped);
      next = over ? wrapped : old + static_cast<uint64_t>(step.value);
      reply = next;
      failed = over != 0 && step.overflow == Overflow::kFail;
    } else if (unsigned_overflow(next, 0, step.bits, step.overflow, &wrapped) != 0) {
      next = wrapped;
      failed = step.overflow == Overflow::kFail;
    }
    if (!failed) {
      set_unsigned_field(p, step.offset, step.bits, next);
      out.integer(static_cast<int64_t>(reply));
    }
  }
  if (failed) out.null_bulk();  // FAIL: nothing written
}

// GET of a field of `value` (bytes past its end read as zeros).
void bitfield_get(const BitfieldStep& step, const std::string* value, ReplyWriter& out) {
  std::array<uint8_t, 9> buf{};  // a 64-bit field spans at most 9 bytes
  const uint64_t byte = step.offset >> 3;
  for (uint64_t i = 0; i < buf.size() && value != nullptr && byte + i < value->size(); i++) {
    buf[i] = static_cast<uint8_t>((*value)[byte + i]);
  }
  const uint64_t at = step.offset - byte * 8;
  if (step.sign) {
    out.integer(get_signed_field(buf.data(), at, step.bits));
  } else {
    out.integer(static_cast<int64_t>(get_unsigned_field(buf.data(), at, step.bits)));
  }
}

}  // namespace

Task<void> RespCommands::cmd_setbit(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<uint64_t> offset = bit_offset(a[2]);
  if (!offset) {
    out.err(kBitOffsetError);
    co_return;
  }
  std::optional<int64_t> on = parse_int64(a[3]);
  if (!on || (*on & ~int64_t{1}) != 0) {
    out.err("bit is not an integer or out of range");
    co_return;
  }
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  const size_t byte = *offset >> 3;
  std::string value = old->value ? std::move(*old->value) : std::string();
  const bool grows = !old->value || value.size() < byte + 1;
  if (grows && byte + 1 > kValueBytesMax) {
    out.err(value_too_large(byte + 1));
    co_return;
  }
  if (value.size() < byte + 1) value.resize(byte + 1, '\0');
  const int shift = 7 - static_cast<int>(*offset & 7);
  auto byteval = static_cast<uint8_t>(value[byte]);
  const int was = (byteval >> shift) & 1;
  if (grows || was != *on) {  // as Redis: no write when nothing changes
    byteval = static_cast<uint8_t>((byteval & ~(1 << shift)) | (*on << shift));
    value[byte] = static_cast<char>(byteval);
    std::vector<LogWrite> batch{LogWrite{db_table(c.db), a[1], std::move(value)}};
    if (!co_await commit(std::move(batch), c, out)) co_return;
  }
  out.integer(was);
}

Task<void> RespCommands::cmd_getbit(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<uint64_t> offset = bit_offset(a[2]);
  if (!offset) {
    out.err(kBitOffsetError);
    co_return;
  }
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  const size_t byte = *offset >> 3;
  int bit = 0;
  if (*r && byte < (*r)->size()) {
    bit = (static_cast<uint8_t>((**r)[byte]) >> (7 - (*offset & 7))) & 1;
  }
  out.integer(bit);
}

Task<void> RespCommands::cmd_bitcount(Args& a, ClientState& c, ReplyWriter& out) {
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  if (!*r) {  // as Redis: a missing key counts 0 before the arguments are looked at
    out.integer(0);
    co_return;
  }
  const std::string& s = **r;
  BitRange range;
  if (a.size() == 4 || a.size() == 5) {
    std::optional<int64_t> start = parse_int64(a[2]);
    std::optional<int64_t> end = start ? parse_int64(a[3]) : std::nullopt;
    if (!end) {
      out.err("value is not an integer or out of range");
      co_return;
    }
    if (*start < 0 && *end < 0 && *start > *end) {
      out.integer(0);
      co_return;
    }
    bool isbit = false;
    if (a.size() == 5) {
      std::optional<bool> unit = index_unit(a[4]);
      if (!unit) {
        out.err("syntax error");
        co_return;
      }
      isbit = *unit;
    }
    range.start = *start;
    range.end = *end;
    const auto len = static_cast<int64_t>(s.size());
    clamp_range(range, isbit ? len << 3 : len, isbit);
  } else if (a.size() == 2) {
    range.end = static_cast<int64_t>(s.size()) - 1;
  } else {
    out.err("syntax error");
    co_return;
  }
  if (range.start > range.end) {
    out.integer(0);
    co_return;
  }
  const uint8_t* p = bytes_of(s);
  int64_t count = popcount(p + range.start, static_cast<size_t>(range.end - range.start + 1));
  if (range.first_mask != 0) count -= __builtin_popcount(p[range.start] & range.first_mask);
  if (range.last_mask != 0) count -= __builtin_popcount(p[range.end] & range.last_mask);
  out.integer(count);
}

Task<void> RespCommands::cmd_bitpos(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<int64_t> bit = parse_int64(a[2]);
  if (!bit) {
    out.err("value is not an integer or out of range");
    co_return;
  }
  if (*bit != 0 && *bit != 1) {
    out.err("The bit argument must be 1 or 0.");
    co_return;
  }
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  if (!*r) {  // an endless run of zero bits
    out.integer(*bit ? -1 : 0);
    co_return;
  }
  const std::string& s = **r;
  const auto len = static_cast<int64_t>(s.size());
  BitRange range;
  bool end_given = false;
  if (a.size() >= 4 && a.size() <= 6) {
    std::optional<int64_t> start = parse_int64(a[3]);
    if (!start) {
      out.err("value is not an integer or out of range");
      co_return;
    }
    bool isbit = false;
    if (a.size() == 6) {
      std::optional<bool> unit = index_unit(a[5]);
      if (!unit) {
        out.err("syntax error");
        co_return;
      }
      isbit = *unit;
    }
    int64_t end = isbit ? (len << 3) + 7 : len - 1;
    if (a.size() >= 5) {
      std::optional<int64_t> e = parse_int64(a[4]);
      if (!e) {
        out.err("value is not an integer or out of range");
        co_return;
      }
      end = *e;
      end_given = true;
    }
    range.start = *start;
    range.end = end;
    clamp_range(range, isbit ? len << 3 : len, isbit);
  } else if (a.size() == 3) {
    range.end = len - 1;
  } else {
    out.err("syntax error");
    co_return;
  }
  if (range.start > range.end) {  // an empty range holds neither bit
    out.integer(-1);
    co_return;
  }
  const uint8_t* p = bytes_of(s);
  const int want = static_cast<int>(*bit);
  int64_t start = range.start;
  int64_t bytes = range.end - range.start + 1;
  int64_t pos = -1;
  // The range's first and last byte with the bits outside it set to what is not sought.
  const auto edge = [&](uint8_t b, uint8_t mask) {
    return static_cast<uint8_t>(want ? (b & ~mask) : (b | mask));
  };
  bool done = false;
  if (range.first_mask != 0) {
    uint8_t first = edge(p[start], range.first_mask);
    if (range.last_mask != 0 && bytes == 1) first = edge(first, range.last_mask);
    pos = bitpos(&first, 1, want);
    if (bytes == 1 || (pos != -1 && pos != 8)) done = true;
    if (!done) {
      start++;
      bytes--;
    }
  }
  if (!done) {
    const int64_t middle = bytes - (range.last_mask != 0 ? 1 : 0);
    if (middle > 0) {
      pos = bitpos(p + start, static_cast<size_t>(middle), want);
      if (bytes == middle || (pos != -1 && pos != middle << 3)) done = true;
      if (!done) {
        start += middle;
        bytes -= middle;
      }
    }
  }
  if (!done) {
    const uint8_t last = edge(p[range.end], range.last_mask);
    pos = bitpos(&last, 1, want);
  }
  // A clear bit found only past an explicit end is not in the range.
  if (end_given && want == 0 && pos == bytes << 3) {
    out.integer(-1);
    co_return;
  }
  if (pos != -1) pos += start << 3;
  out.integer(pos);
}

// BITFIELD and BITFIELD_RO: every step is checked before any runs (Redis's messages, in its
// order). Only GETs: a read. Otherwise the key is held exclusively, grown to the farthest
// bit a SET or INCRBY names (created if missing, even when every step then FAILs, as
// Redis), and written once with every step's change.
Task<void> RespCommands::cmd_bitfield(Args& a, ClientState& c, ReplyWriter& out, bool read_only) {
  std::vector<BitfieldStep> steps;
  Overflow overflow = Overflow::kWrap;
  bool writes = false;
  uint64_t highest_bit = 0;
  for (size_t j = 2; j < a.size(); j++) {
    const size_t rest = a.size() - j - 1;
    const std::string_view sub = c_string(a[j]);
    BitfieldStep step;
    if (iequals(sub, "get") && rest >= 2) {
      step.op = BitfieldOp::kGet;
    } else if (iequals(sub, "set") && rest >= 3) {
      step.op = BitfieldOp::kSet;
    } else if (iequals(sub, "incrby") && rest >= 3) {
      step.op = BitfieldOp::kIncrBy;
    } else if (iequals(sub, "overflow") && rest >= 1) {
      const std::string_view type = c_string(a[++j]);
      if (iequals(type, "wrap")) {
        overflow = Overflow::kWrap;
      } else if (iequals(type, "sat")) {
        overflow = Overflow::kSat;
      } else if (iequals(type, "fail")) {
        overflow = Overflow::kFail;
      } else {
        out.err("Invalid OVERFLOW type specified");
        co_return;
      }
      continue;
    } else {
      out.err("syntax error");  // BITFIELD_RO's own refusal comes once every step parsed
      co_return;
    }
    if (!bitfield_type(a[j + 1], step)) {
      out.err(kBitfieldTypeError);
      co_return;
    }
    if (!bitfield_offset(a[j + 2], step)) {
      out.err(kBitOffsetError);
      co_return;
    }
    if (step.op != BitfieldOp::kGet) {
      writes = true;
      highest_bit = std::max(highest_bit, step.offset + step.bits - 1);
      std::optional<int64_t> v = parse_int64(a[j + 3]);
      if (!v) {
        out.err("value is not an integer or out of range");
        co_return;
      }
      step.value = *v;
    }
    step.overflow = overflow;
    steps.push_back(step);
    j += step.op == BitfieldOp::kGet ? 2 : 3;
  }
  if (!writes) {
    auto r = co_await read_one(c, a[1], out);
    if (!r) co_return;
    out.array(steps.size());
    for (const BitfieldStep& step : steps) bitfield_get(step, *r ? &**r : nullptr, out);
    co_return;
  }
  if (read_only) {
    out.err("BITFIELD_RO only supports the GET subcommand");
    co_return;
  }
  const uint64_t bytes = (highest_bit >> 3) + 1;
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  std::string value = old->value ? std::move(*old->value) : std::string();
  const bool grows = !old->value || value.size() < bytes;
  if (grows && bytes > kValueBytesMax) {
    out.err(value_too_large(bytes));
    co_return;
  }
  if (value.size() < bytes) value.resize(bytes, '\0');
  const std::string before = grows ? std::string() : value;
  ReplyWriter replies;
  for (const BitfieldStep& step : steps) {
    if (step.op == BitfieldOp::kGet) {
      bitfield_get(step, &value, replies);
    } else {
      bitfield_write(step, value, replies);
    }
  }
  if (grows || value != before) {
    std::vector<LogWrite> batch{LogWrite{db_table(c.db), a[1], std::move(value)}};
    if (!co_await commit(std::move(batch), c, out)) co_return;
  }
  out.array(steps.size());
  out.append(replies);
}

// BITOP holds its destination and its sources exclusively while it reads and writes, so the
// result is of one state of its sources. Missing sources are empty strings; the result is as
// long as the longest source (shorter ones padded with zero bytes), and an empty result
// deletes the destination. Each distinct source is read once, all of them at most
// read_bytes_max bytes (a key named twice is one source for AND and OR; for XOR a key named
// an even number of times cancels out, its length still counting), and the fold yields to
// the node's other tasks every few MiB.
Task<void> RespCommands::cmd_bitop(Args& a, ClientState& c, ReplyWriter& out) {
  const std::string_view name = c_string(a[1]);  // as Redis's strcasecmp sees it
  BitOp op;
  if (iequals(name, "and")) {
    op = BitOp::kAnd;
  } else if (iequals(name, "or")) {
    op = BitOp::kOr;
  } else if (iequals(name, "xor")) {
    op = BitOp::kXor;
  } else if (iequals(name, "not")) {
    op = BitOp::kNot;
  } else {
    out.err("syntax error");
    co_return;
  }
  if (op == BitOp::kNot && a.size() != 4) {
    out.err("BITOP NOT must be called with a single source key.");
    co_return;
  }
  std::map<std::string, size_t> times;  // each distinct source, and how often it is named
  for (size_t j = 3; j < a.size(); j++) times[a[j]]++;
  std::vector<std::string> keys;
  for (const auto& [key, n] : times) keys.push_back(key);
  if (!times.contains(a[2])) keys.push_back(a[2]);
  if (keys.size() > kLogEntryOpsMax) {  // before any lock is taken
    out.err(
        fmt::format("BITOP may name at most {} distinct keys (Quire's bound, "
                    "kLogEntryOpsMax); this one names {}",
                    kLogEntryOpsMax, keys.size()));
    co_return;
  }
  std::sort(keys.begin(), keys.end());
  auto held = co_await lock_for_write(c, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  // The sources, then the destination (at the same timestamp).
  std::vector<std::string> wanted;
  std::vector<size_t> named;
  for (const auto& [key, n] : times) {
    wanted.push_back(key);
    named.push_back(n);
  }
  wanted.push_back(a[2]);
  auto r = co_await read_keys(c, std::move(wanted));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  const bool dest_exists = r->back().has_value();
  r->pop_back();
  const std::vector<std::optional<std::string>>& src = *r;
  size_t maxlen = 0;
  for (const auto& v : src) maxlen = std::max(maxlen, v ? v->size() : 0);
  std::string res(maxlen, '\0');
  bool first = true;
  size_t since_yield = 0;
  for (size_t k = 0; k < src.size(); k++) {
    if (op == BitOp::kXor && named[k] % 2 == 0) continue;  // x ^ x = 0
    const std::string_view v = src[k] ? std::string_view(*src[k]) : std::string_view();
    if (first) {
      std::copy(v.begin(), v.end(), res.begin());  // zeros past it (v may be empty)
      if (op == BitOp::kNot) {
        for (char& ch : res) ch = static_cast<char>(~static_cast<uint8_t>(ch));
      }
      first = false;
    } else {
      bitop_fold(op, res, v);
    }
    since_yield += maxlen;
    if (since_yield >= kBitopYieldBytes) {
      since_yield = 0;
      if (!(co_await node_.env().executor().yield()).is_ok()) {
        out.err("BITOP not run: the node is stopping");
        co_return;
      }
    }
  }
  std::vector<LogWrite> batch;
  if (maxlen > 0) {
    batch.push_back(LogWrite{db_table(c.db), a[2], std::move(res)});
  } else if (dest_exists) {  // as Redis: an empty result deletes the destination
    batch.push_back(LogWrite{db_table(c.db), a[2], std::nullopt});
  }
  if (!batch.empty() && !co_await commit(std::move(batch), c, out)) co_return;
  out.integer(static_cast<int64_t>(maxlen));
}

}  // namespace quire::resp
