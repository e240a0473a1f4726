// Strong identifier types. Each wraps a uint64_t and mixes with no other: passing an Lsn
// where a Timestamp is expected does not compile.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

#include <fmt/format.h>

namespace quire {

template <typename Tag>
struct StrongId {
  uint64_t value = 0;

  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t v) : value(v) {}

  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr bool is_zero() const { return value == 0; }
  constexpr StrongId next() const { return StrongId(value + 1); }
};

struct LsnTag {};
struct TermTag {};
struct TableIdTag {};
struct PageIdTag {};

// Log sequence number: strictly increasing for every record written to the page service,
// across primaries. 0 means "none".
using Lsn = StrongId<LsnTag>;
// Increments on every change of primary; page servers fence writes from a lower term.
using Term = StrongId<TermTag>;
using TableId = StrongId<TableIdTag>;
// Unique within a table, never reused.
using PageId = StrongId<PageIdTag>;

// Commit timestamp: (seconds << 32) | increment, strictly increasing per commit.
struct Timestamp {
  uint64_t value = 0;

  constexpr Timestamp() = default;
  constexpr explicit Timestamp(uint64_t v) : value(v) {}
  static constexpr Timestamp from_parts(uint32_t seconds, uint32_t increment) {
    return Timestamp((uint64_t{seconds} << 32) | increment);
  }
  constexpr uint32_t seconds() const { return static_cast<uint32_t>(value >> 32); }
  constexpr uint32_t increment() const { return static_cast<uint32_t>(value); }
  constexpr auto operator<=>(const Timestamp&) const = default;
  constexpr bool is_zero() const { return value == 0; }
};

}  // namespace quire

template <typename Tag>
struct std::hash<quire::StrongId<Tag>> {
  size_t operator()(const quire::StrongId<Tag>& id) const noexcept {
    return std::hash<uint64_t>()(id.value);
  }
};

template <typename Tag>
struct fmt::formatter<quire::StrongId<Tag>> : fmt::formatter<uint64_t> {
  auto format(const quire::StrongId<Tag>& id, fmt::format_context& ctx) const {
    return fmt::formatter<uint64_t>::format(id.value, ctx);
  }
};

template <>
struct fmt::formatter<quire::Timestamp> : fmt::formatter<uint64_t> {
  auto format(const quire::Timestamp& ts, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{}:{}", ts.seconds(), ts.increment());
  }
};
