// The RESP commands Quire answers: one table with each command's name, arity, flags and key
// positions (as Redis's COMMAND reports them). The dispatcher (commands.cc) checks arity and
// flags from here, and COMMAND / COMMAND INFO / COMMAND DOCS / COMMAND COUNT render it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace quire::resp {

enum class CommandId : uint8_t {
  kPing,
  kEcho,
  kQuit,
  kHello,
  kAuth,
  kSelect,
  kClient,
  kGet,
  kSet,
  kSetNx,
  kDel,
  kExists,
  kStrlen,
  kType,
  kTtl,
  kPttl,
  kMget,
  kMset,
  kMsetNx,
  kIncr,
  kIncrBy,
  kDecr,
  kDecrBy,
  kScan,
  kKeys,
  kDbSize,
  kFlushDb,
  kInfo,
  kConfig,
  kCommand,
  kWait,
  kQuireRotateKek,
  kQuireRotateCmk,
  kQuireCheckpoint,
  kQuireSeal,
  kQuireStatus,
  kQuireReport,
};

// Flags, named as COMMAND reports Redis's.
enum CommandFlag : uint32_t {
  kFlagWrite = 1u << 0,     // changes data: the primary only (READONLY elsewhere)
  kFlagReadonly = 1u << 1,  // reads data: needs a serving node (LOADING otherwise)
  kFlagAdmin = 1u << 2,
  kFlagFast = 1u << 3,
  kFlagNoAuth = 1u << 4,   // allowed before AUTH when a password is configured
  kFlagLoading = 1u << 5,  // answered while the node is starting or re-syncing
  kFlagStale = 1u << 6,    // answered without a primary
};

struct CommandSpec {
  CommandId id;
  std::string_view name;  // lower case, as COMMAND reports it
  // Redis's arity: n > 0 exactly n arguments counting the name; n < 0 at least -n.
  int arity;
  uint32_t flags;
  int first_key;  // key positions (0: none); last -1 means the last argument
  int last_key;
  int key_step;
  std::string_view group;    // COMMAND DOCS "group"
  std::string_view since;    // the Redis version that introduced it (Quire's own: Quire's)
  std::string_view summary;  // COMMAND DOCS "summary"
};

std::span<const CommandSpec> command_table();
// The command named `lower_name` (already lower case), or null.
const CommandSpec* find_command(std::string_view lower_name);
// True when `args` (the name included) satisfies `arity`.
bool arity_ok(int arity, size_t args);
// The flag names COMMAND lists for `flags` ("write", "readonly", "fast", ...), in order.
std::span<const std::string_view> flag_names();
bool has_flag_name(uint32_t flags, size_t index);

}  // namespace quire::resp
