// The RESP commands Quire answers: one table with each command's name, arity, flags and key
// positions (as Redis's COMMAND reports them). The dispatcher (commands.cc) checks arity and
// flags from here, and COMMAND / COMMAND INFO / COMMAND DOCS / COMMAND COUNT render it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quire::resp {

enum class CommandId : uint8_t {
  kPing,
  kEcho,
  kQuit,
  kMulti,
  kExec,
  kDiscard,
  kWatch,
  kUnwatch,
  kHello,
  kReset,
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
  kUnlink,
  kGetDel,
  kGetSet,
  kAppend,
  kGetRange,
  kSubstr,
  kSetRange,
  kIncrByFloat,
  kSetBit,
  kGetBit,
  kBitCount,
  kBitPos,
  kBitOp,
  kBitField,
  kBitFieldRo,
  kLcs,
  kRename,
  kRenameNx,
  kCopy,
  kMove,
  kTouch,
  kPersist,
  kSetEx,
  kPSetEx,
  kExpire,
  kPExpire,
  kExpireAt,
  kPExpireAt,
  kGetEx,
  kExpireTime,
  kPExpireTime,
  kFlushAll,
  kScan,
  kKeys,
  kDbSize,
  kFlushDb,
  kInfo,
  kSlowlog,
  kMonitor,
  kMemory,
  kConfig,
  kCommand,
  kWait,
  kTime,
  kRole,
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

// One argument as COMMAND DOCS describes it (Redis 7.0's format), which redis-cli turns
// into its help and its hints (`SET key value [NX|XX] [GET]`).
enum ArgFlag : uint8_t { kArgOptional = 1u << 0, kArgMultiple = 1u << 1 };
struct ArgDoc {
  std::string_view name;
  // key, string, integer, pattern, pure-token (the token alone), oneof, block (the last
  // two hold `args`)
  std::string_view type;
  std::string_view token = {};
  uint8_t flags = 0;
  int key_spec_index = -1;  // a key argument: its key spec (0: the only one)
  std::string_view since = {};
  std::span<const ArgDoc> args = {};
};

// A container command's subcommand (CLIENT ID, CONFIG GET, COMMAND DOCS): the dispatcher
// refuses an unknown one or a wrong number of arguments before anything else (as Redis
// 7.0's processCommand does, before NOAUTH), naming it 'client|id'.
struct SubcommandSpec {
  std::string_view name;  // lower case
  int arity;              // counting the container's name and the subcommand's
  std::string_view since;
  std::string_view summary;
  std::string_view complexity;
  std::span<const ArgDoc> args = {};
  uint32_t flags = 0;  // COMMAND INFO's flags beyond the container's (kFlagReadonly: reads keys)
  int first_key = 0;   // key positions, counting the container's name (0: none)
  int last_key = 0;
  int key_step = 0;
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
  std::string_view complexity;
  std::span<const ArgDoc> args = {};
  std::span<const SubcommandSpec> subcommands = {};  // a container command's
};

std::span<const CommandSpec> command_table();
// The command named `lower_name` (already lower case), or null.
const CommandSpec* find_command(std::string_view lower_name);
// The subcommand of `c` named `lower_name` (already lower case), or null.
const SubcommandSpec* find_subcommand(const CommandSpec& c, std::string_view lower_name);
// The argument positions of the keys of a command of `argc` arguments (its name included)
// whose key positions are first, last (negative: from the end) and step; none when first
// is 0.
std::vector<size_t> key_positions(int first, int last, int step, size_t argc);
// INFO commandstats' counters: one slot per command, and one per subcommand of a container
// ("client|list"). Slots are numbered 0 .. command_stat_slots() - 1.
size_t command_stat_slots();
// `sub` null: the command's own slot.
size_t command_stat_slot(const CommandSpec& spec, const SubcommandSpec* sub);
// "get", "client|list".
const std::string& command_stat_name(size_t slot);
// True when `args` (the name included) satisfies `arity`.
bool arity_ok(int arity, size_t args);
// The flag names COMMAND lists for `flags` ("write", "readonly", "fast", ...), in order.
std::span<const std::string_view> flag_names();
bool has_flag_name(uint32_t flags, size_t index);

}  // namespace quire::resp
