#include "cluster/chaos_history.h"

#include <charconv>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Parses a decimal number ending at `sep`; advances `s` past the separator.
template <typename T>
std::optional<T> take_number(std::string_view& s, char sep) {
  const size_t end = s.find(sep);
  if (end == std::string_view::npos || end == 0) return std::nullopt;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + end, v);
  if (ec != std::errc() || p != s.data() + end) return std::nullopt;
  s.remove_prefix(end + 1);
  return v;
}

}  // namespace

std::string chaos_key(uint32_t owner, uint32_t index) {
  return fmt::format("{}{}:{}", kKeyCanary, owner, index);
}

std::optional<KeyId> parse_chaos_key(std::string_view key) {
  if (!starts_with(key, kKeyCanary)) return std::nullopt;
  key.remove_prefix(kKeyCanary.size());
  std::string_view rest = key;
  auto owner = take_number<uint32_t>(rest, ':');
  if (!owner) return std::nullopt;
  uint32_t index = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
  if (ec != std::errc() || p != rest.data() + rest.size() || rest.empty()) return std::nullopt;
  return KeyId{*owner, index};
}

std::string chaos_value(uint32_t owner, uint64_t seq) {
  std::string v = fmt::format("{}{}:{}:", kValueCanary, owner, seq);
  // Filler that differs per value, so no two values share long runs.
  uint64_t x = (uint64_t{owner} << 40) ^ seq ^ 0x9e3779b97f4a7c15ull;
  while (v.size() < kValueBytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.push_back(static_cast<char>('a' + x % 26));
  }
  return v;
}

std::optional<ValueId> parse_chaos_value(std::string_view value) {
  if (!starts_with(value, kValueCanary)) return std::nullopt;
  value.remove_prefix(kValueCanary.size());
  auto owner = take_number<uint32_t>(value, ':');
  if (!owner) return std::nullopt;
  auto seq = take_number<uint64_t>(value, ':');
  if (!seq || *seq == 0) return std::nullopt;
  return ValueId{*owner, *seq};
}

bool is_not_primary_error(std::string_view error) {
  return starts_with(error, "READONLY") || starts_with(error, "MASTERDOWN") ||
         starts_with(error, "LOADING");
}

OpOutcome classify_write(const Result<RespReply>& reply) {
  if (!reply.is_ok()) return OpOutcome::kUnknown;  // timed out or the connection broke
  if (!reply->is_error()) return OpOutcome::kOk;
  if (starts_with(reply->text, "TRYAGAIN write outcome unknown")) return OpOutcome::kUnknown;
  return OpOutcome::kError;
}

}  // namespace quire::cluster
