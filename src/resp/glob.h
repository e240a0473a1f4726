// Redis's glob-style matcher (stringmatchlen in redis/src/util.c), used by SCAN MATCH, KEYS
// and CONFIG GET: `*`, `?`, `[abc]`, `[^a-z]`, and `\` to escape. Binary-safe.
#pragma once

#include <string_view>

namespace quire::resp {

// Recursion (one level per `*` tried) is bounded: a pattern nesting deeper does not match,
// as in Redis 7.2 and later.
inline constexpr int kGlobNestingMax = 1000;

bool glob_match(std::string_view pattern, std::string_view s, bool nocase = false);

}  // namespace quire::resp
