// SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP: a string as an array of bits, bit 0 the most
// significant bit of its first byte, ported from Redis 7.0's bitops.c (argument checks in its
// order and with its messages, the BYTE|BIT ranges of 7.0). A value past Quire's value limit
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
    out.err(fmt::format("value is {} bytes; Quire's value limit is {} bytes (kValueBytesMax)",
                        byte + 1, kValueBytesMax));
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
