#include "resp/command_table.h"

#include <array>

#include "base/assert.h"

namespace quire::resp {
namespace {

constexpr uint32_t kW = kFlagWrite;
constexpr uint32_t kR = kFlagReadonly;
constexpr uint32_t kF = kFlagFast;
constexpr uint32_t kConn = kFlagFast | kFlagLoading | kFlagStale;

// ---- Arguments, as Redis 7.0's COMMAND DOCS gives them (Quire's own where it differs:
// SET has no expiration). Names, types, tokens, flags and `since` as Redis's.

constexpr uint8_t kOpt = kArgOptional;
constexpr uint8_t kMulti = kArgMultiple;

constexpr ArgDoc kKeyArg[] = {{"key", "key", {}, 0, 0}};
constexpr ArgDoc kKeysArg[] = {{"key", "key", {}, kMulti, 0}};
constexpr ArgDoc kKeyValueArgs[] = {{"key", "key", {}, 0, 0}, {"value", "string"}};
constexpr ArgDoc kKeyValueBlock[] = {{"key_value", "block", {}, kMulti, -1, {}, kKeyValueArgs}};
constexpr ArgDoc kPingArgs[] = {{"message", "string", {}, kOpt}};
constexpr ArgDoc kEchoArgs[] = {{"message", "string"}};
constexpr ArgDoc kHelloAuthArgs[] = {{"username", "string"}, {"password", "string"}};
constexpr ArgDoc kHelloBlockArgs[] = {
    {"protover", "integer"},
    {"username_password", "block", "AUTH", kOpt, -1, {}, kHelloAuthArgs},
    {"clientname", "string", "SETNAME", kOpt}};
constexpr ArgDoc kHelloArgs[] = {{"arguments", "block", {}, kOpt, -1, {}, kHelloBlockArgs}};
constexpr ArgDoc kAuthArgs[] = {{"username", "string", {}, kOpt, -1, "6.0.0"},
                                {"password", "string"}};
constexpr ArgDoc kSelectArgs[] = {{"index", "integer"}};
constexpr ArgDoc kSetCondition[] = {{"nx", "pure-token", "NX"}, {"xx", "pure-token", "XX"}};
constexpr ArgDoc kSetArgs[] = {{"key", "key", {}, 0, 0},
                               {"value", "string"},
                               {"condition", "oneof", {}, kOpt, -1, "2.6.12", kSetCondition},
                               {"get", "pure-token", "GET", kOpt, -1, "6.2.0"}};
constexpr ArgDoc kIncrByArgs[] = {{"key", "key", {}, 0, 0}, {"increment", "integer"}};
constexpr ArgDoc kDecrByArgs[] = {{"key", "key", {}, 0, 0}, {"decrement", "integer"}};
constexpr ArgDoc kRangeArgs[] = {
    {"key", "key", {}, 0, 0}, {"start", "integer"}, {"end", "integer"}};
constexpr ArgDoc kSetRangeArgs[] = {
    {"key", "key", {}, 0, 0}, {"offset", "integer"}, {"value", "string"}};
constexpr ArgDoc kIncrByFloatArgs[] = {{"key", "key", {}, 0, 0}, {"increment", "double"}};
constexpr ArgDoc kSetBitArgs[] = {
    {"key", "key", {}, 0, 0}, {"offset", "integer"}, {"value", "integer"}};
constexpr ArgDoc kGetBitArgs[] = {{"key", "key", {}, 0, 0}, {"offset", "integer"}};
constexpr ArgDoc kIndexUnits[] = {{"byte", "pure-token", "BYTE"}, {"bit", "pure-token", "BIT"}};
constexpr ArgDoc kBitCountIndex[] = {{"start", "integer"},
                                     {"end", "integer"},
                                     {"index_unit", "oneof", {}, kOpt, -1, "7.0.0", kIndexUnits}};
constexpr ArgDoc kBitCountArgs[] = {{"key", "key", {}, 0, 0},
                                    {"index", "block", {}, kOpt, -1, {}, kBitCountIndex}};
constexpr ArgDoc kBitPosEnd[] = {{"end", "integer"},
                                 {"index_unit", "oneof", {}, kOpt, -1, "7.0.0", kIndexUnits}};
constexpr ArgDoc kBitPosIndex[] = {{"start", "integer"},
                                   {"end_index", "block", {}, kOpt, -1, {}, kBitPosEnd}};
constexpr ArgDoc kBitPosArgs[] = {{"key", "key", {}, 0, 0},
                                  {"bit", "integer"},
                                  {"index", "block", {}, kOpt, -1, {}, kBitPosIndex}};
constexpr ArgDoc kBitOpArgs[] = {
    {"operation", "string"}, {"destkey", "key", {}, 0, 0}, {"key", "key", {}, kMulti, 1}};
constexpr ArgDoc kFieldArgs[] = {{"encoding", "string"}, {"offset", "integer"}};
constexpr ArgDoc kFieldSetArgs[] = {
    {"encoding", "string"}, {"offset", "integer"}, {"value", "integer"}};
constexpr ArgDoc kFieldIncrArgs[] = {
    {"encoding", "string"}, {"offset", "integer"}, {"increment", "integer"}};
constexpr ArgDoc kOverflowTypes[] = {
    {"wrap", "pure-token", "WRAP"}, {"sat", "pure-token", "SAT"}, {"fail", "pure-token", "FAIL"}};
constexpr ArgDoc kFieldWriteOps[] = {
    {"set_block", "block", "SET", 0, -1, {}, kFieldSetArgs},
    {"incrby_block", "block", "INCRBY", 0, -1, {}, kFieldIncrArgs}};
constexpr ArgDoc kFieldWrite[] = {
    {"overflow_block", "oneof", "OVERFLOW", kOpt, -1, {}, kOverflowTypes},
    {"write_operation", "oneof", {}, 0, -1, {}, kFieldWriteOps}};
constexpr ArgDoc kFieldOps[] = {{"get_block", "block", "GET", 0, -1, {}, kFieldArgs},
                                {"write", "block", {}, 0, -1, {}, kFieldWrite}};
constexpr ArgDoc kBitFieldArgs[] = {{"key", "key", {}, 0, 0},
                                    {"operation", "oneof", {}, kOpt | kMulti, -1, {}, kFieldOps}};
constexpr ArgDoc kBitFieldRoArgs[] = {
    {"key", "key", {}, 0, 0}, {"get_block", "block", "GET", kOpt | kMulti, -1, {}, kFieldArgs}};
constexpr ArgDoc kLcsArgs[] = {{"key1", "key", {}, 0, 0},
                               {"key2", "key", {}, 0, 0},
                               {"len", "pure-token", "LEN", kOpt},
                               {"idx", "pure-token", "IDX", kOpt},
                               {"len", "integer", "MINMATCHLEN", kOpt},
                               {"withmatchlen", "pure-token", "WITHMATCHLEN", kOpt}};
constexpr ArgDoc kCopyArgs[] = {{"source", "key", {}, 0, 0},
                                {"destination", "key", {}, 0, 1},
                                {"destination-db", "integer", "DB", kOpt},
                                {"replace", "pure-token", "REPLACE", kOpt}};
constexpr ArgDoc kMoveArgs[] = {{"key", "key", {}, 0, 0}, {"db", "integer"}};
constexpr ArgDoc kRenameArgs[] = {{"key", "key", {}, 0, 0}, {"newkey", "key", {}, 0, 1}};
constexpr ArgDoc kSetExArgs[] = {
    {"key", "key", {}, 0, 0}, {"seconds", "integer"}, {"value", "string"}};
constexpr ArgDoc kPSetExArgs[] = {
    {"key", "key", {}, 0, 0}, {"milliseconds", "integer"}, {"value", "string"}};
constexpr ArgDoc kExpireConditions[] = {{"nx", "pure-token", "NX"},
                                        {"xx", "pure-token", "XX"},
                                        {"gt", "pure-token", "GT"},
                                        {"lt", "pure-token", "LT"}};
constexpr ArgDoc kExpireArgs[] = {{"key", "key", {}, 0, 0},
                                  {"seconds", "integer"},
                                  {"condition", "oneof", {}, kOpt, -1, "7.0.0", kExpireConditions}};
constexpr ArgDoc kPExpireArgs[] = {
    {"key", "key", {}, 0, 0},
    {"milliseconds", "integer"},
    {"condition", "oneof", {}, kOpt, -1, "7.0.0", kExpireConditions}};
constexpr ArgDoc kExpireAtArgs[] = {
    {"key", "key", {}, 0, 0},
    {"unix-time-seconds", "unix-time"},
    {"condition", "oneof", {}, kOpt, -1, "7.0.0", kExpireConditions}};
constexpr ArgDoc kPExpireAtArgs[] = {
    {"key", "key", {}, 0, 0},
    {"unix-time-milliseconds", "unix-time"},
    {"condition", "oneof", {}, kOpt, -1, "7.0.0", kExpireConditions}};
constexpr ArgDoc kGetExExpiration[] = {{"seconds", "integer", "EX"},
                                       {"milliseconds", "integer", "PX"},
                                       {"unix-time-seconds", "unix-time", "EXAT"},
                                       {"unix-time-milliseconds", "unix-time", "PXAT"},
                                       {"persist", "pure-token", "PERSIST"}};
constexpr ArgDoc kGetExArgs[] = {{"key", "key", {}, 0, 0},
                                 {"expiration", "oneof", {}, kOpt, -1, {}, kGetExExpiration}};
constexpr ArgDoc kScanArgs[] = {{"cursor", "integer"},
                                {"pattern", "pattern", "MATCH", kOpt},
                                {"count", "integer", "COUNT", kOpt},
                                {"type", "string", "TYPE", kOpt, -1, "6.0.0"}};
constexpr ArgDoc kPatternArg[] = {{"pattern", "pattern"}};
constexpr ArgDoc kFlushModes[] = {{"async", "pure-token", "ASYNC", 0, -1, "4.0.0"},
                                  {"sync", "pure-token", "SYNC", 0, -1, "6.2.0"}};
constexpr ArgDoc kFlushDbArgs[] = {{"async", "oneof", {}, kOpt, -1, {}, kFlushModes}};
constexpr ArgDoc kInfoArgs[] = {{"section", "string", {}, kOpt | kMulti}};
constexpr ArgDoc kWaitArgs[] = {{"numreplicas", "integer"}, {"timeout", "integer"}};
constexpr ArgDoc kClientNameArg[] = {{"connection-name", "string"}};
constexpr ArgDoc kClientListTypes[] = {{"normal", "pure-token", "NORMAL"},
                                       {"master", "pure-token", "MASTER"},
                                       {"replica", "pure-token", "REPLICA"},
                                       {"pubsub", "pure-token", "PUBSUB"}};
constexpr ArgDoc kClientReplyModes[] = {
    {"on", "pure-token", "ON"}, {"off", "pure-token", "OFF"}, {"skip", "pure-token", "SKIP"}};
constexpr ArgDoc kClientReplyArgs[] = {{"on_off_skip", "oneof", {}, 0, -1, {}, kClientReplyModes}};
constexpr ArgDoc kClientIds[] = {{"client-id", "integer", {}, kMulti}};
constexpr ArgDoc kClientListArgs[] = {
    {"normal_master_replica_pubsub", "oneof", "TYPE", kOpt, -1, "5.0.0", kClientListTypes},
    {"id", "block", "ID", kOpt, -1, "6.2.0", kClientIds}};
constexpr ArgDoc kClientKillTypes[] = {{"normal", "pure-token", "NORMAL"},
                                       {"master", "pure-token", "MASTER", 0, -1, "3.2.0"},
                                       {"slave", "pure-token", "SLAVE"},
                                       {"replica", "pure-token", "REPLICA", 0, -1, "5.0.0"},
                                       {"pubsub", "pure-token", "PUBSUB"}};
constexpr ArgDoc kClientKillFilters[] = {
    {"client-id", "integer", "ID", kOpt, -1, "2.8.12"},
    {"normal_master_slave_pubsub", "oneof", "TYPE", kOpt, -1, "2.8.12", kClientKillTypes},
    {"username", "string", "USER", kOpt},
    {"ip:port", "string", "ADDR", kOpt},
    {"ip:port", "string", "LADDR", kOpt, -1, "6.2.0"},
    {"yes/no", "string", "SKIPME", kOpt}};
constexpr ArgDoc kClientKillForms[] = {
    {"ip:port", "string"}, {"new-format", "oneof", {}, kMulti, -1, {}, kClientKillFilters}};
constexpr ArgDoc kClientKillArgs[] = {{"filter", "oneof", {}, 0, -1, {}, kClientKillForms}};
constexpr ArgDoc kMemoryUsageArgs[] = {{"key", "key", {}, 0, 0},
                                       {"count", "integer", "SAMPLES", kOpt}};
constexpr ArgDoc kConfigGetParam[] = {{"parameter", "string"}};
constexpr ArgDoc kConfigGetArgs[] = {{"parameter", "block", {}, kMulti, -1, {}, kConfigGetParam}};
constexpr ArgDoc kConfigSetPair[] = {{"parameter", "string"}, {"value", "string"}};
constexpr ArgDoc kConfigSetArgs[] = {
    {"parameter_value", "block", {}, kMulti, -1, {}, kConfigSetPair}};
constexpr ArgDoc kCommandNames[] = {{"command-name", "string", {}, kOpt | kMulti}};
constexpr ArgDoc kCommandListFilters[] = {{"module-name", "string", "MODULE"},
                                          {"category", "string", "ACLCAT"},
                                          {"pattern", "pattern", "PATTERN"}};
constexpr ArgDoc kCommandListArgs[] = {
    {"filterby", "oneof", "FILTERBY", kOpt, -1, {}, kCommandListFilters}};
constexpr ArgDoc kRotateKekArgs[] = {{"gap-ms", "integer", {}, kOpt}};
constexpr ArgDoc kSealArgs[] = {{"count", "integer", {}, kOpt}};
constexpr ArgDoc kReportArgs[] = {{"name", "string"},
                                  {"address", "string"},
                                  {"applied-ts", "integer"},
                                  {"applied-lsn", "integer"},
                                  {"serving", "integer"}};

// ---- Subcommands (Redis 7.0's arities; those Quire does not have answer "unknown
// subcommand", as Redis does for a name it does not know).

constexpr std::string_view kHelpSummary = "Show helpful text about the different subcommands";

constexpr SubcommandSpec kClientSubcommands[] = {
    {"id", 2, "5.0.0", "Returns the client ID for the current connection", "O(1)"},
    {"getname", 2, "2.6.9", "Get the current connection name", "O(1)"},
    {"setname", 3, "2.6.9", "Set the current connection name", "O(1)", kClientNameArg},
    {"info", 2, "6.2.0", "Returns information about the current client connection.", "O(1)"},
    {"list", -2, "2.4.0", "Get the list of client connections",
     "O(N) where N is the number of client connections", kClientListArgs, kFlagAdmin},
    {"kill", -3, "2.4.0", "Kill the connection of a client",
     "O(N) where N is the number of client connections", kClientKillArgs, kFlagAdmin},
    {"reply", 3, "3.2.0", "Instruct the server whether to reply to commands", "O(1)",
     kClientReplyArgs},
    {"help", 2, "5.0.0", kHelpSummary, "O(1)"},
};
constexpr SubcommandSpec kMemorySubcommands[] = {
    {"usage", -3, "4.0.0",
     "Estimate the memory usage of a key (in Quire: the bytes its entry takes in a page)",
     "O(N) where N is the number of samples.", kMemoryUsageArgs, kR, 2, 2, 1},
    {"help", 2, "4.0.0", kHelpSummary, "O(1)"},
};
constexpr ArgDoc kSlowlogGetArgs[] = {{"count", "integer", {}, kOpt}};
constexpr SubcommandSpec kSlowlogSubcommands[] = {
    {"get", -2, "2.2.12", "Get the slow log's entries",
     "O(N) where N is the number of entries returned", kSlowlogGetArgs},
    {"len", 2, "2.2.12", "Get the slow log's length", "O(1)"},
    {"reset", 2, "2.2.12", "Clear all entries from the slow log",
     "O(N) where N is the number of entries in the slowlog"},
    {"help", 2, "6.2.0", kHelpSummary, "O(1)"},
};
constexpr SubcommandSpec kConfigSubcommands[] = {
    {"get", -3, "2.0.0", "Get the values of configuration parameters",
     "O(N) when N is the number of configuration parameters provided", kConfigGetArgs},
    {"set", -4, "2.0.0", "Refused: a Quire node is configured by its flags",
     "O(N) when N is the number of configuration parameters provided", kConfigSetArgs},
    {"resetstat", 2, "2.0.0", "Reset the stats returned by INFO", "O(1)"},
    {"rewrite", 2, "2.8.0", "Refused: a Quire node has no configuration file", "O(1)"},
    {"help", 2, "5.0.0", kHelpSummary, "O(1)"},
};
constexpr SubcommandSpec kCommandSubcommands[] = {
    {"count", 2, "2.8.13", "Get total number of commands", "O(1)"},
    {"list", -2, "7.0.0", "Get an array of command names", "O(N) where N is the number of commands",
     kCommandListArgs},
    {"getkeys", -4, "2.8.13", "Extract keys given a full command",
     "O(N) where N is the number of arguments to the command"},
    {"docs", -2, "7.0.0", "Get array of specific command documentation",
     "O(N) where N is the number of commands to look up", kCommandNames},
    {"info", -2, "2.8.13",
     "Get array of specific command details, or all when no argument is given.",
     "O(N) where N is the number of commands to look up", kCommandNames},
    {"help", 2, "5.0.0", kHelpSummary, "O(1)"},
};

constexpr std::string_view kO1 = "O(1)";
constexpr std::string_view kOKeys = "O(N) where N is the number of keys in the command";

constexpr std::array kCommands = {
    CommandSpec{CommandId::kPing, "ping", -1, kF | kFlagStale, 0, 0, 0, "connection", "1.0.0",
                "Returns the server's liveliness response.", kO1, kPingArgs},
    CommandSpec{CommandId::kEcho, "echo", 2, kF | kFlagStale, 0, 0, 0, "connection", "1.0.0",
                "Returns the given string.", kO1, kEchoArgs},
    CommandSpec{CommandId::kQuit, "quit", -1, kConn | kFlagNoAuth, 0, 0, 0, "connection", "1.0.0",
                "Closes the connection.", kO1},
    CommandSpec{CommandId::kMulti, "multi", 1, kConn, 0, 0, 0, "transactions", "1.2.0",
                "Starts a transaction.", kO1},
    CommandSpec{CommandId::kExec, "exec", 1, kFlagLoading | kFlagStale, 0, 0, 0, "transactions",
                "1.2.0",
                "Executes all commands in a transaction (their writes as one atomic batch).",
                "Depends on commands in the transaction"},
    CommandSpec{CommandId::kDiscard, "discard", 1, kConn, 0, 0, 0, "transactions", "2.0.0",
                "Discards a transaction.", "O(N), when N is the number of queued commands"},
    CommandSpec{CommandId::kWatch, "watch", -2, kConn, 1, -1, 1, "transactions", "2.2.0",
                "Monitors changes to keys to determine the execution of a transaction.",
                "O(1) for every key.", kKeysArg},
    CommandSpec{CommandId::kUnwatch, "unwatch", 1, kConn, 0, 0, 0, "transactions", "2.2.0",
                "Forgets about watched keys of a transaction.", kO1},
    CommandSpec{CommandId::kHello, "hello", -1, kConn | kFlagNoAuth, 0, 0, 0, "connection", "6.0.0",
                "Handshakes with the server (RESP2 only).", kO1, kHelloArgs},
    CommandSpec{CommandId::kReset, "reset", 1, kConn | kFlagNoAuth, 0, 0, 0, "connection", "6.2.0",
                "Reset the connection", kO1},
    CommandSpec{CommandId::kAuth, "auth", -2, kConn | kFlagNoAuth, 0, 0, 0, "connection", "1.0.0",
                "Authenticates the connection.", kO1, kAuthArgs},
    CommandSpec{CommandId::kSelect, "select", 2, kConn, 0, 0, 0, "connection", "1.0.0",
                "Changes the selected database (a Quire table).", kO1, kSelectArgs},
    CommandSpec{CommandId::kClient,
                "client",
                -2,
                kFlagLoading | kFlagStale,
                0,
                0,
                0,
                "connection",
                "2.4.0",
                "A container for client connection commands.",
                "Depends on subcommand.",
                {},
                kClientSubcommands},
    CommandSpec{CommandId::kGet, "get", 2, kR | kF, 1, 1, 1, "string", "1.0.0",
                "Returns the string value of a key.", kO1, kKeyArg},
    CommandSpec{CommandId::kSet, "set", -3, kW, 1, 1, 1, "string", "1.0.0",
                "Sets the string value of a key (NX, XX, GET; no expiry in Quire).", kO1, kSetArgs},
    CommandSpec{CommandId::kSetNx, "setnx", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Sets the value of a key only when the key does not exist.", kO1, kKeyValueArgs},
    CommandSpec{CommandId::kDel, "del", -2, kW, 1, -1, 1, "generic", "1.0.0",
                "Deletes one or more keys.", kOKeys, kKeysArg},
    CommandSpec{CommandId::kExists, "exists", -2, kR | kF, 1, -1, 1, "generic", "1.0.0",
                "Determines whether one or more keys exist.", kOKeys, kKeysArg},
    CommandSpec{CommandId::kStrlen, "strlen", 2, kR | kF, 1, 1, 1, "string", "2.2.0",
                "Returns the length of a string value.", kO1, kKeyArg},
    CommandSpec{CommandId::kType, "type", 2, kR | kF, 1, 1, 1, "generic", "1.0.0",
                "Determines the type of value stored at a key (every Quire value is a string).",
                kO1, kKeyArg},
    CommandSpec{CommandId::kTtl, "ttl", 2, kR | kF, 1, 1, 1, "generic", "1.0.0",
                "Returns the expiration time in seconds of a key (-1: Quire keys never expire).",
                kO1, kKeyArg},
    CommandSpec{CommandId::kPttl, "pttl", 2, kR | kF, 1, 1, 1, "generic", "2.6.0",
                "Returns the expiration time in milliseconds of a key (-1: never).", kO1, kKeyArg},
    CommandSpec{CommandId::kMget, "mget", -2, kR | kF, 1, -1, 1, "string", "1.0.0",
                "Atomically returns the string values of one or more keys.", kOKeys, kKeysArg},
    CommandSpec{CommandId::kMset, "mset", -3, kW, 1, -1, 2, "string", "1.0.1",
                "Atomically creates or modifies the string values of one or more keys.", kOKeys,
                kKeyValueBlock},
    CommandSpec{CommandId::kMsetNx, "msetnx", -3, kW, 1, -1, 2, "string", "1.0.1",
                "Atomically sets keys only when none of them exist.", kOKeys, kKeyValueBlock},
    CommandSpec{CommandId::kIncr, "incr", 2, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Increments the integer value of a key by one.", kO1, kKeyArg},
    CommandSpec{CommandId::kIncrBy, "incrby", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Increments the integer value of a key by a number.", kO1, kIncrByArgs},
    CommandSpec{CommandId::kDecr, "decr", 2, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Decrements the integer value of a key by one.", kO1, kKeyArg},
    CommandSpec{CommandId::kDecrBy, "decrby", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Decrements the integer value of a key by a number.", kO1, kDecrByArgs},
    CommandSpec{CommandId::kUnlink, "unlink", -2, kW | kF, 1, -1, 1, "generic", "4.0.0",
                "Deletes one or more keys (as DEL).", kOKeys, kKeysArg},
    CommandSpec{CommandId::kGetDel, "getdel", 2, kW | kF, 1, 1, 1, "string", "6.2.0",
                "Returns the string value of a key after deleting the key.", kO1, kKeyArg},
    CommandSpec{CommandId::kGetSet, "getset", 3, kW | kF, 1, 1, 1, "string", "1.0.0",
                "Returns the previous string value of a key after setting it to a new value.", kO1,
                kKeyValueArgs},
    CommandSpec{CommandId::kAppend, "append", 3, kW | kF, 1, 1, 1, "string", "2.0.0",
                "Appends a string to the value of a key. Creates the key if it does not exist.",
                "O(N) where N is the length of the new value", kKeyValueArgs},
    CommandSpec{CommandId::kGetRange, "getrange", 4, kR, 1, 1, 1, "string", "2.4.0",
                "Returns a substring of the string stored at a key.",
                "O(N) where N is the length of the returned string", kRangeArgs},
    CommandSpec{CommandId::kSubstr, "substr", 4, kR, 1, 1, 1, "string", "1.0.0",
                "Returns a substring of the string stored at a key (as GETRANGE).",
                "O(N) where N is the length of the returned string", kRangeArgs},
    CommandSpec{CommandId::kSetRange, "setrange", 4, kW, 1, 1, 1, "string", "2.2.0",
                "Overwrites a part of a string value with another by an offset. Creates the key "
                "if it does not exist.",
                "O(N) where N is the length of the new value", kSetRangeArgs},
    CommandSpec{CommandId::kIncrByFloat, "incrbyfloat", 3, kW | kF, 1, 1, 1, "string", "2.6.0",
                "Increments the floating point value of a key by a number.", kO1, kIncrByFloatArgs},
    CommandSpec{CommandId::kSetBit, "setbit", 4, kW, 1, 1, 1, "bitmap", "2.2.0",
                "Sets or clears the bit at offset in the string value stored at key", kO1,
                kSetBitArgs},
    CommandSpec{CommandId::kGetBit, "getbit", 3, kR | kF, 1, 1, 1, "bitmap", "2.2.0",
                "Returns the bit value at offset in the string value stored at key", kO1,
                kGetBitArgs},
    CommandSpec{CommandId::kBitCount, "bitcount", -2, kR, 1, 1, 1, "bitmap", "2.6.0",
                "Count set bits in a string", "O(N)", kBitCountArgs},
    CommandSpec{CommandId::kBitPos, "bitpos", -3, kR, 1, 1, 1, "bitmap", "2.8.7",
                "Find first bit set or clear in a string", "O(N)", kBitPosArgs},
    CommandSpec{CommandId::kBitOp, "bitop", -4, kW, 2, -1, 1, "bitmap", "2.6.0",
                "Perform bitwise operations between strings", "O(N)", kBitOpArgs},
    CommandSpec{CommandId::kBitField, "bitfield", -2, kW, 1, 1, 1, "bitmap", "3.2.0",
                "Perform arbitrary bitfield integer operations on strings",
                "O(1) for each subcommand specified", kBitFieldArgs},
    CommandSpec{CommandId::kBitFieldRo, "bitfield_ro", -2, kR | kF, 1, 1, 1, "bitmap", "6.0.0",
                "Perform arbitrary bitfield integer operations on strings. Read-only variant of "
                "BITFIELD",
                "O(1) for each subcommand specified", kBitFieldRoArgs},
    CommandSpec{CommandId::kLcs, "lcs", -3, kR, 1, 2, 1, "string", "7.0.0",
                "Find longest common substring",
                "O(N*M) where N and M are the lengths of s1 and s2, respectively", kLcsArgs},
    CommandSpec{CommandId::kRename, "rename", 3, kW, 1, 2, 1, "generic", "1.0.0",
                "Renames a key and overwrites the destination (one atomic write).", kO1,
                kRenameArgs},
    CommandSpec{CommandId::kRenameNx, "renamenx", 3, kW | kF, 1, 2, 1, "generic", "1.0.0",
                "Renames a key only when the target key name does not exist.", kO1, kRenameArgs},
    CommandSpec{CommandId::kCopy, "copy", -3, kW, 1, 2, 1, "generic", "6.2.0", "Copy a key",
                "O(N) worst case for collections, where N is the number of nested items. O(1) "
                "for string values.",
                kCopyArgs},
    CommandSpec{CommandId::kMove, "move", 3, kW | kF, 1, 1, 1, "generic", "1.0.0",
                "Move a key to another database", kO1, kMoveArgs},
    CommandSpec{CommandId::kTouch, "touch", -2, kR | kF, 1, -1, 1, "generic", "3.2.1",
                "Returns the number of existing keys specified (Quire keeps no access time).",
                kOKeys, kKeysArg},
    CommandSpec{CommandId::kPersist, "persist", 2, kW | kF, 1, 1, 1, "generic", "2.2.0",
                "Removes the expiration time of a key (0: Quire keys never expire).", kO1, kKeyArg},
    CommandSpec{CommandId::kSetEx, "setex", 4, kW, 1, 1, 1, "string", "2.0.0",
                "Refused: Quire keys never expire.", kO1, kSetExArgs},
    CommandSpec{CommandId::kPSetEx, "psetex", 4, kW, 1, 1, 1, "string", "2.6.0",
                "Refused: Quire keys never expire.", kO1, kPSetExArgs},
    CommandSpec{CommandId::kExpire, "expire", -3, kW | kF, 1, 1, 1, "generic", "1.0.0",
                "Refused: Quire keys never expire.", kO1, kExpireArgs},
    CommandSpec{CommandId::kPExpire, "pexpire", -3, kW | kF, 1, 1, 1, "generic", "2.6.0",
                "Refused: Quire keys never expire.", kO1, kPExpireArgs},
    CommandSpec{CommandId::kExpireAt, "expireat", -3, kW | kF, 1, 1, 1, "generic", "1.2.0",
                "Refused: Quire keys never expire.", kO1, kExpireAtArgs},
    CommandSpec{CommandId::kPExpireAt, "pexpireat", -3, kW | kF, 1, 1, 1, "generic", "2.6.0",
                "Refused: Quire keys never expire.", kO1, kPExpireAtArgs},
    CommandSpec{CommandId::kGetEx, "getex", -2, kW | kF, 1, 1, 1, "string", "6.2.0",
                "Returns the string value of a key (PERSIST only: Quire keys never expire).", kO1,
                kGetExArgs},
    CommandSpec{CommandId::kExpireTime, "expiretime", 2, kR | kF, 1, 1, 1, "generic", "7.0.0",
                "Returns the expiration time of a key as a Unix timestamp (-1: never).", kO1,
                kKeyArg},
    CommandSpec{CommandId::kPExpireTime, "pexpiretime", 2, kR | kF, 1, 1, 1, "generic", "7.0.0",
                "Returns the expiration time of a key as a Unix milliseconds timestamp (-1: "
                "never).",
                kO1, kKeyArg},
    CommandSpec{CommandId::kFlushAll, "flushall", -1, kW, 0, 0, 0, "server", "1.0.0",
                "Removes all keys from all databases (one database after the other).",
                "O(N) where N is the total number of keys in all databases", kFlushDbArgs},
    CommandSpec{CommandId::kScan, "scan", -2, kR, 0, 0, 0, "generic", "2.8.0",
                "Iterates over the key names in the database.",
                "O(1) for every call. O(N) for a complete iteration, N the number of keys.",
                kScanArgs},
    CommandSpec{CommandId::kKeys, "keys", 2, kR, 0, 0, 0, "generic", "1.0.0",
                "Returns all key names that match a pattern.",
                "O(N) with N the number of keys in the database", kPatternArg},
    CommandSpec{CommandId::kDbSize, "dbsize", 1, kR | kF, 0, 0, 0, "server", "1.0.0",
                "Returns the number of keys in the database.",
                "O(N) where N is the number of keys in the database"},
    CommandSpec{CommandId::kFlushDb, "flushdb", -1, kW, 0, 0, 0, "server", "1.0.0",
                "Removes all keys from the current database.",
                "O(N) where N is the number of keys in the selected database", kFlushDbArgs},
    CommandSpec{CommandId::kMonitor, "monitor", 1, kFlagAdmin | kFlagLoading | kFlagStale, 0, 0, 0,
                "server", "1.0.0", "Listen for all requests received by the server in real time",
                kO1},
    CommandSpec{CommandId::kSlowlog,
                "slowlog",
                -2,
                kFlagAdmin | kFlagLoading | kFlagStale,
                0,
                0,
                0,
                "server",
                "2.2.12",
                "A container for slow log commands",
                "Depends on subcommand.",
                {},
                kSlowlogSubcommands},
    CommandSpec{CommandId::kInfo, "info", -1, kFlagLoading | kFlagStale, 0, 0, 0, "server", "1.0.0",
                "Returns information and statistics about the server.", kO1, kInfoArgs},
    CommandSpec{CommandId::kMemory,
                "memory",
                -2,
                0,
                0,
                0,
                0,
                "server",
                "4.0.0",
                "A container for memory diagnostics commands",
                "Depends on subcommand.",
                {},
                kMemorySubcommands},
    CommandSpec{CommandId::kConfig,
                "config",
                -2,
                kFlagAdmin | kFlagLoading | kFlagStale,
                0,
                0,
                0,
                "server",
                "2.0.0",
                "A container for server configuration commands (GET).",
                "Depends on subcommand.",
                {},
                kConfigSubcommands},
    CommandSpec{CommandId::kCommand,
                "command",
                -1,
                kFlagLoading | kFlagStale,
                0,
                0,
                0,
                "server",
                "2.8.13",
                "Returns detailed information about all commands.",
                "O(N) where N is the total number of commands",
                {},
                kCommandSubcommands},
    CommandSpec{CommandId::kWait, "wait", 3, 0, 0, 0, 0, "generic", "3.0.0",
                "Blocks until this connection's last write is applied by N standbys.", kO1,
                kWaitArgs},
    CommandSpec{CommandId::kTime, "time", 1, kF | kFlagLoading | kFlagStale, 0, 0, 0, "server",
                "2.6.0", "Returns the server time (seconds and microseconds since the epoch).",
                kO1},
    CommandSpec{CommandId::kRole, "role", 1, kF | kFlagLoading | kFlagStale, 0, 0, 0, "server",
                "2.8.12", "Returns the replication role: master with its standbys, or replica.",
                kO1},
    CommandSpec{CommandId::kQuireRotateKek, "quire.rotatekek", -1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Rotates the active KEK (push mode); replies its new version.",
                "O(N) where N is the number of DEKs", kRotateKekArgs},
    CommandSpec{CommandId::kQuireRotateCmk, "quire.rotatecmk", 1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Rotates the CMK; replies its new version.",
                "O(N) where N is the number of KEKs"},
    CommandSpec{CommandId::kQuireCheckpoint, "quire.checkpoint", 1, kW | kFlagAdmin, 0, 0, 0,
                "server", "0.1.0", "Writes a checkpoint now; replies its completion LSN.",
                "O(N) where N is the number of keys written since the last checkpoint"},
    CommandSpec{CommandId::kQuireSeal, "quire.seal", -1, kW | kFlagAdmin, 0, 0, 0, "server",
                "0.1.0", "Seals the page servers' active segments [count] times.", kO1, kSealArgs},
    CommandSpec{CommandId::kQuireStatus, "quire.status", 1, kFlagAdmin | kFlagLoading | kFlagStale,
                0, 0, 0, "server", "0.1.0",
                "The node's role, state, term, timestamps, LSNs and key versions as JSON.", kO1},
    CommandSpec{CommandId::kQuireReport, "quire.report", 6, kConn | kFlagAdmin, 0, 0, 0, "server",
                "0.1.0", "A standby's progress report to the primary (WAIT, INFO replication).",
                kO1, kReportArgs},
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

const SubcommandSpec* find_subcommand(const CommandSpec& c, std::string_view lower_name) {
  for (const SubcommandSpec& sub : c.subcommands) {
    if (sub.name == lower_name) return &sub;
  }
  return nullptr;
}

namespace {

struct StatSlots {
  std::vector<size_t> first;  // per command (table order): its own slot; its subcommands' follow
  std::vector<std::string> names;
};

const StatSlots& stat_slots() {
  static const StatSlots slots = [] {
    StatSlots s;
    for (const CommandSpec& c : kCommands) {
      s.first.push_back(s.names.size());
      s.names.emplace_back(c.name);
      for (const SubcommandSpec& sub : c.subcommands) {
        s.names.push_back(std::string(c.name) + "|" + std::string(sub.name));
      }
    }
    return s;
  }();
  return slots;
}

}  // namespace

size_t command_stat_slots() {
  return stat_slots().names.size();
}

size_t command_stat_slot(const CommandSpec& spec, const SubcommandSpec* sub) {
  const auto index = static_cast<size_t>(&spec - kCommands.data());
  QUIRE_ASSERT(index < kCommands.size());
  size_t slot = stat_slots().first[index];
  if (sub != nullptr) {
    const auto sub_index = static_cast<size_t>(sub - spec.subcommands.data());
    QUIRE_ASSERT(sub_index < spec.subcommands.size());
    slot += 1 + sub_index;
  }
  return slot;
}

const std::string& command_stat_name(size_t slot) {
  return stat_slots().names.at(slot);
}

std::vector<size_t> key_positions(int first, int last, int step, size_t argc) {
  std::vector<size_t> positions;
  if (first <= 0 || step <= 0) return positions;
  const int64_t end = last >= 0 ? last : static_cast<int64_t>(argc) + last;
  for (int64_t j = first; j <= end && j < static_cast<int64_t>(argc); j += step) {
    positions.push_back(static_cast<size_t>(j));
  }
  return positions;
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
