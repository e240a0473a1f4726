// The Redis commands over a Quire compute node (a ReplicaNode, in either world): what each
// command does, on a primary, on a standby, and while the node has no role to serve with.
// The wire (parsing, connections, output limits) is resp/server.h's; this file only
// executes one parsed command and writes its one reply (resp/handler.h).
//
// Databases. Database n (SELECT n, 0 <= n < databases) is Quire table kFirstUserTable + n
// (16 + n). A table needs no creation: the engine makes it on first use and the primary
// gives it a DEK on its first write (add resp_tables() to PrimaryOptions::tables to have
// every DEK at bootstrap instead). Reads of a table never written see no keys.
//
// Roles. A primary that is serving executes everything. A standby in SECONDARY serves reads
// at its applied timestamp and answers writes "-READONLY ..." (or "-MASTERDOWN ..." when
// it knows of no primary). A standby starting, catching up or re-syncing answers reads
// "-LOADING <reason>". A primary that is starting answers "-LOADING"; one that is deposed,
// fenced or stepping down answers as a standby does. Connection and server commands
// (PING, INFO, QUIRE.STATUS, ...) are answered in every role.
//
// Atomicity. Every write command is one batch (Primary::write), acknowledged only once
// durable at W and applied. Read-modify-write commands (INCR*, SET NX/XX/GET, SETNX,
// MSETNX, DEL's count) hold their keys exclusively across read and write (key_locks.h);
// blind writes hold them shared. FLUSHDB holds its database exclusively (writers wait) and
// deletes in batches: readers may see a partial flush, writers never interleave.
//
// Failures. Keys above kKeyBytesMax, values above kValueBytesMax and batches above the log
// entry's bounds are refused before anything is sent, naming the limit. A write the primary
// could not commit answers "-TRYAGAIN write not committed ..."; one whose outcome is
// unknown answers "-TRYAGAIN write outcome unknown ..." (read before retrying a command
// that is not idempotent).
//
// WAIT counts the standbys whose reported applied timestamp reached the connection's last
// write (standby_progress.h: standbys report to the primary with QUIRE.REPORT).
//
// Lifetime: one RespCommands per node, made after the node and destroyed before it; its
// commands run as tasks of the node, so a crash of the node ends them with it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "repl/replica_node.h"
#include "resp/command_table.h"
#include "resp/handler.h"
#include "resp/key_locks.h"
#include "resp/standby_progress.h"

namespace quire::resp {

// The Redis version INFO and HELLO report: what Redis clients check features against.
inline constexpr std::string_view kRedisCompatVersion = "7.0.15";
inline constexpr uint32_t kDatabasesMax = 1024;

// The process's memory, for INFO memory (a real process's; the simulator has none).
struct ProcessMemory {
  uint64_t allocated_bytes = 0;  // the allocator's live allocations (Redis's used_memory)
  uint64_t resident_bytes = 0;   // resident set (used_memory_rss)
  std::string allocator;         // mem_allocator: "jemalloc-5.3.0", "libc"
};

// The process's CPU time so far, for INFO cpu (a real process's; the simulator has none).
struct ProcessCpu {
  Nanos user{0};
  Nanos system{0};
};

struct RespCommandsOptions {
  // AUTH: empty means no password (every connection is authenticated).
  std::string requirepass;
  uint32_t databases = 16;  // SELECT 0 .. databases-1 (at most kDatabasesMax)
  // INFO server.
  uint16_t tcp_port = 6379;
  uint64_t process_id = 0;
  std::string quire_version = "0.1.0";
  // A write (or FLUSHDB) waits at most this long for its keys' locks: then -TRYAGAIN.
  Nanos lock_wait_max = std::chrono::seconds(10);
  // SCAN: rows read per engine call (values come along: bounds memory), COUNT's cap, and
  // how many resume positions (cursors) the node remembers.
  size_t scan_chunk_rows = 64;
  size_t scan_count_max = 10'000;
  size_t scan_cursors_max = 16'384;
  // MULTI: at most this many commands, and bytes of their arguments, are queued (past
  // either the command is refused and EXEC aborts).
  size_t multi_commands_max = 10'000;
  size_t multi_bytes_max = size_t{16} << 20;
  // EXEC: its replies may hold at most this many bytes (past them nothing is written).
  size_t multi_reply_bytes_max = size_t{64} << 20;
  // LCS: its table of counters may take at most this many bytes (Redis: 512 MB).
  size_t lcs_table_bytes_max = size_t{64} << 20;
  // SLOWLOG: commands that took at least this long (from their start to their reply; a
  // write's includes its wait for durability) are logged; negative: none. The log keeps the
  // newest slowlog_max_len entries.
  Nanos slowlog_log_slower_than = std::chrono::milliseconds(10);
  size_t slowlog_max_len = 128;
  // WATCH: at most this many keys per connection.
  size_t watch_keys_max = 10'000;
  // A read of several keys (MGET, BITOP's sources, ...) stops once their values pass this
  // many bytes: a reply above the server's output hard limit (64 MiB) would only close the
  // connection, after the node held it all.
  size_t read_bytes_max = size_t{64} << 20;
  // KEYS refuses to answer more keys than this (use SCAN).
  size_t keys_reply_max = 1'000'000;
  // A snapshot read (MGET, DBSIZE) that a checkpoint overtook is retried this many times.
  int snapshot_attempts_max = 8;
  // WAIT polls the standbys' progress this often.
  Nanos wait_poll_interval = std::chrono::milliseconds(1);
  // The primary this node believes in ("host:port"), for INFO replication and to choose
  // READONLY (a primary exists) or MASTERDOWN (none known) for writes on a standby.
  // Unset: a fixed-role replica set, whose primary is assumed to exist.
  std::function<std::optional<Address>()> primary_address;
  // The standbys' applied positions, from a source other than their QUIRE.REPORT commands
  // (the simulator's harness reads its standby objects). Unset: the reports
  // (standby_progress.h) are the source.
  std::function<std::vector<StandbyProgress>()> standby_progress;
  // INFO memory's figures. Unset (the simulator): the section has only the limits.
  std::function<ProcessMemory()> process_memory;
  // INFO cpu's figures. Unset (the simulator): the section is empty.
  std::function<ProcessCpu()> process_cpu;
};

// A transaction's effects while EXEC runs its commands one after the other: reads of its
// keys see its own writes first; writes join it instead of committing (EXEC commits them as
// one batch). A read that fails stops the transaction, uncommitted.
struct ExecOverlay {
  uint32_t db = 0;
  std::map<std::string, std::optional<std::string>> values;  // nullopt: deleted
  std::vector<std::string> order;                            // keys, first write first
  size_t bytes = 0;  // of the batch `values` make (bounded by one log entry's)
  Status failed;
};

// The tables databases 0..databases-1 map to.
std::vector<TableId> resp_tables(uint32_t databases);
inline TableId db_table(uint32_t db) {
  return TableId(kFirstUserTable + db);
}

class RespCommands : public CommandHandler {
 public:
  RespCommands(ReplicaNode& node, RespCommandsOptions options);
  ~RespCommands() override;

  Task<void> execute(std::vector<std::string> args, ClientState& client, ReplyWriter& out) override;
  // The commands that never wait (run_immediate), refusals, and a GET whose value is in
  // memory (the ingest layer or cached pages): no coroutine frame for them.
  bool execute_now(std::vector<std::string>& args, ClientState& client, ReplyWriter& out) override;
  // Starts the blind writes, SET key value and MSET, when their locks are free at once:
  // they hold the locks (shared) and their place in the primary's commit queue until
  // finished. Everything else, and a blind write whose locks are taken or waited for, runs
  // with execute() instead.
  Task<std::unique_ptr<PendingReply>> start(std::vector<std::string>& args,
                                            ClientState& client) override;
  // Forgets the connection's watched keys.
  void disconnected(ClientState& client) override;

  // The server's statistics, for INFO clients (the wire server keeps them current).
  void set_server_stats(const ServerStats* stats) { server_stats_ = stats; }
  // The server's connections, for CLIENT LIST and CLIENT KILL (unset: the caller alone).
  void set_client_directory(ClientDirectory* directory) { directory_ = directory; }
  const RespCommandsOptions& options() const { return options_; }
  // Locks in use: zero whenever no command runs.
  size_t locks_active() const { return locks_.active(); }
  // Keys some connection watches (WATCH): zero once every watcher ended.
  size_t watched_keys() const { return watched_.size(); }

  // The node's role for commands (also QUIRE.STATUS's "role").
  enum class Role : uint8_t {
    kPrimary = 1,  // a serving primary
    kStandby = 2,  // a SECONDARY standby
    kLoading = 3,  // starting, catching up, re-syncing, stepping down, promoting
  };
  struct Serving {
    Role role = Role::kLoading;
    Primary* primary = nullptr;  // kPrimary only
    Standby* standby = nullptr;  // kStandby, and a standby that is not SECONDARY yet
    std::string loading_reason;  // kLoading
  };
  Serving serving();
  static std::string_view role_name(Role r);  // "primary", "standby", "loading"

 private:
  using Args = std::vector<std::string>;

  // ---- Dispatch ----
  // The checks before a command runs (auth, role); false when it wrote the refusal.
  bool admit(const CommandSpec& spec, ClientState& c, ReplyWriter& out);
  Task<void> run(const CommandSpec& spec, Args& a, ClientState& c, ReplyWriter& out);
  // The commands that never wait (connection, CONFIG, COMMAND); false for the others.
  bool run_immediate(const CommandSpec& spec, Args& a, ClientState& c, ReplyWriter& out);
  // GET's reply when the value is in memory; false (nothing written) when it must wait.
  bool get_now(uint32_t db, std::string_view key, ReplyWriter& out);

  // ---- Connection (commands.cc) ----
  void cmd_ping(Args& a, ReplyWriter& out);
  void cmd_hello(Args& a, ClientState& c, ReplyWriter& out);
  void cmd_auth(Args& a, ClientState& c, ReplyWriter& out);
  void cmd_select(Args& a, ClientState& c, ReplyWriter& out);
  // A database index as SELECT, COPY and MOVE read it; nullopt once the refusal is written.
  std::optional<uint32_t> parse_db(std::string_view arg, ReplyWriter& out) const;
  void cmd_reset(ClientState& c, ReplyWriter& out);
  void cmd_client(Args& a, ClientState& c, ReplyWriter& out);
  // MULTI's queueing of one admitted command (or its refusal), EXEC, DISCARD.
  void queue_in_multi(const CommandSpec& spec, Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_exec(ClientState& c, ReplyWriter& out);
  Task<void> cmd_watch(Args& a, ClientState& c, ReplyWriter& out);
  void unwatch_all(ClientState& c);
  // Whether a key c watches was written since, or the primary changed (EXEC aborts).
  bool watch_broken(const ClientState& c);
  // Counts a write to each key of `batch` that a connection watches.
  void touch_watched(const std::vector<LogWrite>& batch);
  // CLIENT INFO's line for `c` (CLIENT LIST's lines), without the newline.
  std::string client_info_line(const ClientState& c);
  void client_list(Args& a, ClientState& c, ReplyWriter& out);
  void client_kill(Args& a, ClientState& c, ReplyWriter& out);

  // ---- Strings (commands_strings.cc) ----
  Task<void> cmd_get(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_set(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_setnx(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_del(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_exists(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_strlen(Args& a, ClientState& c, ReplyWriter& out);
  // TYPE, TTL and PTTL: a string or none; no expiry (-1), or no key (-2).
  Task<void> cmd_type_ttl(Args& a, ClientState& c, ReplyWriter& out, CommandId id);
  Task<void> cmd_mget(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_mset(Args& a, ClientState& c, ReplyWriter& out, bool nx);
  Task<void> cmd_incr(Args& a, ClientState& c, ReplyWriter& out, int64_t sign, bool by);
  Task<void> cmd_getdel(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_append(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_getrange(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_setrange(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_incrbyfloat(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_rename(Args& a, ClientState& c, ReplyWriter& out, bool nx);
  Task<void> cmd_copy(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_move(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_lcs(Args& a, ClientState& c, ReplyWriter& out);
  Task<std::optional<std::vector<HeldLocks>>> lock_pair(ClientState& c, uint32_t db_a,
                                                        std::string key_a, uint32_t db_b,
                                                        std::string key_b, ReplyWriter& out);
  // ---- Bits (commands_bits.cc) ----
  Task<void> cmd_setbit(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_getbit(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_bitcount(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_bitpos(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_bitop(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_bitfield(Args& a, ClientState& c, ReplyWriter& out, bool read_only);

  // ---- Keyspace (commands_keyspace.cc) ----
  Task<void> cmd_scan(Args& a, ClientState& c, ReplyWriter& out);
  // A new SCAN cursor resuming at `resume` (evicting the oldest past scan_cursors_max).
  uint64_t remember_cursor(uint32_t db, std::string resume);
  Task<void> cmd_keys(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_dbsize(ClientState& c, ReplyWriter& out);
  // FLUSHDB, or FLUSHALL (`all`).
  Task<void> cmd_flushdb(Args& a, ClientState& c, ReplyWriter& out, bool all);
  // Deletes every key of `db` in batches under its exclusive lock; false once it failed
  // (the reply written). `deleted` counts the keys deleted so far.
  Task<bool> flush_db(uint32_t db, std::string_view command, uint64_t& deleted, ClientState& c,
                      ReplyWriter& out);
  Task<void> cmd_getex(Args& a, ClientState& c, ReplyWriter& out);

  // ---- Server (commands_server.cc) ----
  Task<void> cmd_info(Args& a, ReplyWriter& out);  // commands_info.cc
  // MEMORY USAGE key [SAMPLES n], MEMORY HELP (commands_info.cc).
  Task<void> cmd_memory(Args& a, ClientState& c, ReplyWriter& out);
  // INFO keyspace's "dbN:keys=..." lines (databases with keys only).
  Task<std::string> keyspace_lines();
  void cmd_config(Args& a, ReplyWriter& out);
  void cmd_command(Args& a, ReplyWriter& out);
  void command_list(Args& a, ReplyWriter& out);
  void command_getkeys(Args& a, ReplyWriter& out);
  void cmd_role(ReplyWriter& out);
  Task<void> cmd_wait(Args& a, ClientState& c, ReplyWriter& out);
  Task<void> cmd_quire(const CommandSpec& spec, Args& a, ReplyWriter& out);
  Task<void> quire_rotate_kek(Primary& p, Args& a, ReplyWriter& out);
  Task<void> quire_seal(Primary& p, Args& a, ReplyWriter& out);
  void quire_report(Args& a, ReplyWriter& out);
  std::string status_json();
  // What the primary knows of its standbys' progress now (the option, else the reports).
  std::vector<StandbyProgress> standbys();

  // ---- Command statistics (INFO commandstats, errorstats) and SLOWLOG ----
  // The counters' slot of the command `a` names (its subcommand's); nullopt for an unknown
  // subcommand.
  static std::optional<size_t> stat_slot(const CommandSpec& spec, const Args& a);
  // A command refused before it ran (`spec` null: unknown); `reply` is its error.
  void record_rejected(const CommandSpec* spec, const Args& a, std::string_view reply);
  // A call as it starts, taken before the command runs (it may move its arguments): its
  // counters' slot, its start, and its arguments as SLOWLOG would show them (none when the
  // slow log is off or never logs the command).
  struct CallStart {
    size_t slot = 0;
    MonoTime started;
    std::vector<std::string> args;
    bool monitored = false;    // some connection monitors, and sees this command
    std::string monitor_args;  // then its arguments as the monitor line shows them
  };
  static bool monitor_sees(const CommandSpec& spec, const Args& a);
  static std::string monitor_args(const CommandSpec& spec, const Args& a);
  CallStart start_call(const CommandSpec& spec, const Args& a);
  // The call ended with `reply` (one reply, possibly an array): counted, and logged in the
  // slow log when it took long enough.
  void record_call(CallStart& call, ClientState& c, std::string_view reply);
  void cmd_slowlog(Args& a, ReplyWriter& out);
  // Counts an error reply ("-CODE message\r\n") under its code.
  void count_error(std::string_view reply);

  // ---- Helpers ----
  // Reads `keys` of `db` at one timestamp (a snapshot), on the primary or a standby.
  Task<Result<std::vector<std::optional<std::string>>>> read_keys_at(uint32_t db,
                                                                     std::vector<std::string> keys);
  // The same for a command of connection `c` (its database; inside EXEC its transaction's
  // writes first).
  Task<Result<std::vector<std::optional<std::string>>>> read_keys(ClientState& c,
                                                                  std::vector<std::string> keys);
  // Up to `limit` live rows of `db` with keys >= `from`, in key order, at `ts` (nullopt:
  // the node's applied ts).
  Task<Result<std::vector<std::pair<std::string, std::string>>>> read_range(
      uint32_t db, std::string from, size_t limit, std::optional<Timestamp> ts);
  // The node's applied timestamp in its current role (zero when loading).
  Timestamp applied_ts();
  // Counts the keys of `db` at one timestamp.
  Task<Result<uint64_t>> count_keys(uint32_t db);
  // Locks for a write; writes the refusal and returns nullopt when it cannot.
  Task<std::optional<HeldLocks>> lock_keys_at(uint32_t db, LockMode db_mode,
                                              std::vector<std::string> keys, LockMode mode,
                                              ReplyWriter& out);
  // The same for a command of `c` in its database; inside EXEC nothing (EXEC holds them).
  Task<std::optional<HeldLocks>> lock_for_write(ClientState& c, LockMode db_mode,
                                                std::vector<std::string> keys, LockMode mode,
                                                ReplyWriter& out);
  // One key's value at this node's read timestamp (nullopt inside: no such key); nullopt
  // once a failed read's reply is written.
  Task<std::optional<std::optional<std::string>>> read_one(ClientState& c, const std::string& key,
                                                           ReplyWriter& out);
  // A read-modify-write's start: holds `key` exclusively (its database shared) and reads
  // it. Nullopt once the refusal is written (a lock that could not be had, a failed read).
  struct LockedRead {
    HeldLocks held;
    std::optional<std::string> value;
  };
  Task<std::optional<LockedRead>> read_locked(ClientState& c, const std::string& key,
                                              ReplyWriter& out);
  // Commits `batch` on the primary (enqueue, then its outcome); sets c.last_write. On
  // failure writes the error reply and returns nullopt. Inside EXEC the batch joins the
  // transaction (its limits checked) and a zero timestamp is returned.
  Task<std::optional<Timestamp>> commit(std::vector<LogWrite> batch, ClientState& c,
                                        ReplyWriter& out);
  // Queues `batch` at the primary (limits and role checked first). On failure writes the
  // error reply and returns nullopt.
  Task<std::optional<Primary::QueuedWrite>> enqueue(std::vector<LogWrite> batch, ReplyWriter& out);
  // Whether `batch` is within Quire's key, value and log entry bounds; else the refusal.
  static bool within_limits(const std::vector<LogWrite>& batch, ReplyWriter& out);
  // The reply for a write the primary refused or could not commit.
  static void write_failed(const Status& st, ReplyWriter& out);
  // A started blind write (start()): its locks and its place in the commit queue.
  class PendingWrite;
  // The reply for a failed read.
  void read_failed(const Status& st, ReplyWriter& out);
  // A read whose values pass read_bytes_max.
  Status read_too_large() const;
  // The refusal for a write on a node that is not a serving primary.
  void refuse_write(const Serving& s, ReplyWriter& out);

  ReplicaNode& node_;
  RespCommandsOptions options_;
  KeyLocks locks_;
  StandbyProgressBoard progress_;
  const ServerStats* server_stats_ = nullptr;
  ClientDirectory* directory_ = nullptr;
  // The keys some connection watches: writes queued to each since it was first watched,
  // and how many connections watch it (the entry goes with the last).
  struct WatchedKey {
    uint64_t writes = 0;
    uint32_t watchers = 0;
  };
  std::map<std::pair<uint32_t, std::string>, WatchedKey> watched_;
  MonoTime started_at_;
  // SCAN cursors: cursor -> (db, the key to resume from), oldest first for eviction.
  struct ScanCursor {
    uint32_t db = 0;
    std::string resume;
  };
  std::map<uint64_t, ScanCursor> cursors_;
  std::deque<uint64_t> cursor_order_;
  uint64_t next_cursor_ = 1;
  uint64_t commands_executed_ = 0;
  uint64_t commands_rejected_ = 0;
  // Keys read by commands, found or not (INFO stats keyspace_hits, keyspace_misses).
  uint64_t keyspace_hits_ = 0;
  uint64_t keyspace_misses_ = 0;
  void note_lookups(const std::vector<std::optional<std::string>>& values);
  // INFO server run_id: 40 hex digits drawn at start.
  std::string run_id_;
  // INFO stats' instantaneous_*: the commands executed and the bytes in and out, sampled
  // at most every kInstantSampleEvery (when a command ends, and at INFO); a rate is taken
  // over the last kInstantWindow, as Redis's 16 samples 100 ms apart.
  struct InstantSample {
    MonoTime at;
    uint64_t ops = 0;
    uint64_t in = 0;
    uint64_t out = 0;
  };
  static constexpr Nanos kInstantSampleEvery = std::chrono::milliseconds(100);
  static constexpr Nanos kInstantWindow = std::chrono::milliseconds(1600);
  std::array<InstantSample, 18> instant_{};  // a ring: 1.6 s of samples and one before
  size_t instant_next_ = 0;
  size_t instant_count_ = 0;
  void sample_instant(MonoTime now);
  // Per second over the window ending now: ops, input bytes, output bytes.
  std::array<double, 3> instant_rates(MonoTime now);
  // INFO commandstats, per command_stat_slot(); errorstats, per error code (at most
  // kErrorCodesMax codes: past them only error_replies_ counts). CONFIG RESETSTAT clears them.
  struct CommandCounters {
    uint64_t calls = 0;
    uint64_t rejected = 0;  // refused before running (arity, NOAUTH, READONLY, in MULTI, ...)
    uint64_t failed = 0;    // ran and answered an error
    Nanos time{0};          // from its start to its reply (a write's: until durable at W)
  };
  static constexpr size_t kErrorCodesMax = 128;
  std::vector<CommandCounters> command_counters_;
  struct SlowlogEntry {
    uint64_t id = 0;
    int64_t unix_seconds = 0;
    int64_t duration_us = 0;
    std::vector<std::string> args;
    std::string peer;
    std::string name;
  };
  std::deque<SlowlogEntry> slowlog_;  // newest first, at most slowlog_max_len
  uint64_t slowlog_next_id_ = 0;
  std::map<std::string, uint64_t, std::less<>> error_counts_;
  uint64_t error_replies_ = 0;
  // The counters as of the last CONFIG RESETSTAT: INFO stats shows what came after (the
  // counters themselves only grow).
  struct StatsBase {
    ServerStats server;
    uint64_t executed = 0;
    uint64_t rejected = 0;
    uint64_t keyspace_hits = 0;
    uint64_t keyspace_misses = 0;
  } stats_base_;
};

// Redis's string2ll: a decimal int64 with no spaces, no '+', no leading zeros.
std::optional<int64_t> parse_int64(std::string_view s);
// The refusal of a value of `bytes` bytes, past Quire's value limit (kValueBytesMax).
std::string value_too_large(uint64_t bytes);
// SCAN's cursor as Redis 7.0 reads it (strtoul in base 10 over the argument as a C string,
// so up to its first NUL byte): an optional '+' or '-' (negation wraps, as in C) and
// digits, or nothing at all (cursor 0); a leading space, anything after the digits, or a
// magnitude beyond 64 bits is refused.
std::optional<uint64_t> parse_scan_cursor(std::string_view s);
// ASCII case folding, as Redis compares command names and options.
std::string lower(std::string_view s);
// A HELP reply: each line a simple string.
void help_reply(std::initializer_list<std::string_view> lines, ReplyWriter& out);
// Redis 7.0's reply to a refused EXEC (execCommandAbort): EXECABORT with the refusal's text,
// `error` one error reply ("-READONLY ...\r\n") or a bare message.
void exec_abort(std::string_view error, ReplyWriter& out);
// Records `a`'s command as the connection's last (ClientState::last_command).
void note_command(ClientState& c, const CommandSpec* spec, const std::vector<std::string>& a);
// An argument as Redis's printf("%s") sees it: up to its first NUL byte.
std::string_view c_string(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace quire::resp
