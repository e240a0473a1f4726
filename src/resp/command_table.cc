#include "resp/command_table.h"

#include <array>

namespace quire::resp {
namespace {

constexpr uint32_t kW = kFlagWrite;
constexpr uint32_t kR = kFlagReadonly;
constexpr uint32_t kF = kFlagFast;
constexpr uint32_t kConn = kFlagFast | kFlagLoading | kFlagStale;

constexpr std::array kCommands = {
    CommandSpec{CommandId::kPing, "ping", -1, kF | kFlagStale, 0, 0, 0, "connection", "1.0.0",
                "Returns the server's liveliness response."},
    CommandSpec{CommandId::kEcho, "echo", 2, kF | kFlagStale, 0, 0, 0, "connection", "1.0.0",
                "Returns the given string."},
    CommandSpec{CommandId::kQuit, "quit", -1, kConn | kFlagNoAuth, 0, 0, 0, "connection", "1.0.0",
                "Closes the connection."},
    CommandSpec{CommandId::kHello, "hello", -1, kConn | kFlagNoAuth, 0, 0, 0, "connection", "6.0.0",
                "Handshakes with the server (RESP2 only)."},
    CommandSpec{CommandId::kAuth, "auth", -2, kConn | kFlagNoAuth, 0, 0, 0, "connection", "1.0.0",
                "Authenticates the connection."},
    CommandSpec{CommandId::kSelect, "select", 2, kConn, 0, 0, 0, "connection", "1.0.0",
                "Changes the selected database (a Quire table)."},
    CommandSpec{CommandId::kClient, "client", -2, kFlagLoading | kFlagStale, 0, 0, 0, "connection",
                "2.4.0", "CLIENT ID, GETNAME, SETNAME, INFO."},
    CommandSpec{CommandId::kGet, "get", 2, kR | kF, 1, 1, 1, "string", "1.0.0",
                "Returns the string value of a key."},
    CommandSpec{CommandId::kSet, "set", -3, kW, 1, 1, 1, "string", "1.0.0",
                "Sets the string value of a key (NX, XX, GET; no expiry in Quire)."},
    CommandSpec{CommandId::kSetNx, "setnx", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Sets the value of a key only when the key does not exist."},
    CommandSpec{CommandId::kDel, "del", -2, kW, 1, -1, 1, "generic", "1.0.0",
                "Deletes one or more keys."},
    CommandSpec{CommandId::kExists, "exists", -2, kR | kF, 1, -1, 1, "generic", "1.0.0",
                "Determines whether one or more keys exist."},
    CommandSpec{CommandId::kStrlen, "strlen", 2, kR | kF, 1, 1, 1, "string", "2.2.0",
                "Returns the length of a string value."},
    CommandSpec{CommandId::kType, "type", 2, kR | kF, 1, 1, 1, "generic", "1.0.0",
                "Determines the type of value stored at a key (every Quire value is a string)."},
    CommandSpec{CommandId::kTtl, "ttl", 2, kR | kF, 1, 1, 1, "generic", "1.0.0",
                "Returns the expiration time in seconds of a key (-1: Quire keys never expire)."},
    CommandSpec{CommandId::kPttl, "pttl", 2, kR | kF, 1, 1, 1, "generic", "2.6.0",
                "Returns the expiration time in milliseconds of a key (-1: never)."},
    CommandSpec{CommandId::kMget, "mget", -2, kR | kF, 1, -1, 1, "string", "1.0.0",
                "Atomically returns the string values of one or more keys."},
    CommandSpec{CommandId::kMset, "mset", -3, kW, 1, -1, 2, "string", "1.0.1",
                "Atomically creates or modifies the string values of one or more keys."},
    CommandSpec{CommandId::kMsetNx, "msetnx", -3, kW, 1, -1, 2, "string", "1.0.1",
                "Atomically sets keys only when none of them exist."},
    CommandSpec{CommandId::kIncr, "incr", 2, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Increments the integer value of a key by one."},
    CommandSpec{CommandId::kIncrBy, "incrby", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Increments the integer value of a key by a number."},
    CommandSpec{CommandId::kDecr, "decr", 2, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Decrements the integer value of a key by one."},
    CommandSpec{CommandId::kDecrBy, "decrby", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Decrements the integer value of a key by a number."},
    CommandSpec{CommandId::kScan, "scan", -2, kR, 0, 0, 0, "generic", "2.8.0",
                "Iterates over the key names in the database."},
    CommandSpec{CommandId::kKeys, "keys", 2, kR, 0, 0, 0, "generic", "1.0.0",
                "Returns all key names that match a pattern."},
    CommandSpec{CommandId::kDbSize, "dbsize", 1, kR | kF, 0, 0, 0, "server", "1.0.0",
                "Returns the number of keys in the database."},
    CommandSpec{CommandId::kFlushDb, "flushdb", -1, kW, 0, 0, 0, "server", "1.0.0",
                "Removes all keys from the current database."},
    CommandSpec{CommandId::kInfo, "info", -1, kFlagLoading | kFlagStale, 0, 0, 0, "server", "1.0.0",
                "Returns information and statistics about the server."},
    CommandSpec{CommandId::kConfig, "config", -2, kFlagAdmin | kFlagLoading | kFlagStale, 0, 0, 0,
                "server", "2.0.0", "CONFIG GET (read only)."},
    CommandSpec{CommandId::kCommand, "command", -1, kFlagLoading | kFlagStale, 0, 0, 0, "server",
                "2.8.13", "Returns detailed information about all commands."},
    CommandSpec{CommandId::kWait, "wait", 3, 0, 0, 0, 0, "generic", "3.0.0",
                "Blocks until this connection's last write is applied by N standbys."},
    CommandSpec{CommandId::kQuireRotateKek, "quire.rotatekek", -1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Rotates the active KEK (push mode); replies its new version."},
    CommandSpec{CommandId::kQuireRotateCmk, "quire.rotatecmk", 1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Rotates the CMK; replies its new version."},
    CommandSpec{CommandId::kQuireCheckpoint, "quire.checkpoint", 1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Writes a checkpoint now; replies its completion LSN."},
    CommandSpec{CommandId::kQuireSeal, "quire.seal", -1, kW | kFlagAdmin, 0, 0, 0, "server",
                "0.1.0", "Seals the page servers' active segments [count] times."},
    CommandSpec{CommandId::kQuireStatus, "quire.status", 1, kFlagAdmin | kFlagLoading | kFlagStale,
                0, 0, 0, "server", "0.1.0",
                "The node's role, state, term, timestamps, LSNs and key versions as JSON."},
    CommandSpec{CommandId::kQuireReport, "quire.report", 6, kConn | kFlagAdmin, 0, 0, 0, "server",
                "0.1.0", "A standby's progress report to the primary (WAIT, INFO replication)."},
};

constexpr std::array<std::string_view, 7> kFlagNames = {"write",   "readonly", "admin", "fast",
                                                        "no_auth", "loading",  "stale"};

}  // namespace

std::span<const CommandSpec> command_table() {
  return kCommands;
}

const CommandSpec* find_command(std::string_view lower_name) {
  for (const CommandSpec& c : kCommands) {
    if (c.name == lower_name) return &c;
  }
  return nullptr;
}

bool arity_ok(int arity, size_t args) {
  if (arity >= 0) return args == static_cast<size_t>(arity);
  return args >= static_cast<size_t>(-arity);
}

std::span<const std::string_view> flag_names() {
  return kFlagNames;
}

bool has_flag_name(uint32_t flags, size_t index) {
  return (flags & (1u << index)) != 0;
}

}  // namespace quire::resp
