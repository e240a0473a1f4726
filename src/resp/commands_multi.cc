// MULTI, EXEC and DISCARD.
//
// After MULTI a connection's commands are checked as always (unknown, arity, NOAUTH,
// READONLY, LOADING: each refusal discards the transaction, EXEC then answers EXECABORT)
// and queued (+QUEUED). EXEC runs them in order while holding every key they name
// exclusively (their database shared), so no other command reads or writes those keys
// meanwhile; their writes join one batch (ExecOverlay: later commands read them) that EXEC
// commits at once, atomic and durable at W before the reply, as any write. A command's own
// error (INCR of a non-integer) is its element of the reply, as in Redis; a failed read
// stops the transaction with nothing committed, and a failed commit answers its error
// instead of the replies.
//
// Quire queues the key and string commands, PING, ECHO, TIME and MEMORY; the others (SCAN,
// KEYS, DBSIZE, FLUSHDB, FLUSHALL, SELECT, the server commands, QUIRE.*) are refused inside
// MULTI.
//
// WATCH (outside MULTI, on the primary) remembers, per key, how many writes to it this node
// had queued (RespCommands::watched_ counts them for watched keys only, at enqueue: every
// write of a primary goes through it) and the primary's term. EXEC locks the watched keys
// with its own, then aborts with a null array when one of them was
// written since, or the node is no longer the primary of that term; EXEC, DISCARD, UNWATCH
// and the connection's end forget the watches. EXEC holds the watched keys of every
// database, not only its own, from the check to its commit.
#include <fmt/format.h>

#include <absl/cleanup/cleanup.h>

#include <algorithm>
#include <map>
#include <set>

#include "engine/btree.h"
#include "repl/log_entry.h"
#include "resp/commands.h"

namespace quire::resp {
namespace {

bool allowed_in_multi(CommandId id) {
  switch (id) {
    case CommandId::kGet:
    case CommandId::kSet:
    case CommandId::kSetNx:
    case CommandId::kDel:
    case CommandId::kExists:
    case CommandId::kStrlen:
    case CommandId::kType:
    case CommandId::kTtl:
    case CommandId::kPttl:
    case CommandId::kMget:
    case CommandId::kMset:
    case CommandId::kMsetNx:
    case CommandId::kIncr:
    case CommandId::kIncrBy:
    case CommandId::kDecr:
    case CommandId::kDecrBy:
    case CommandId::kUnlink:
    case CommandId::kGetDel:
    case CommandId::kGetSet:
    case CommandId::kAppend:
    case CommandId::kGetRange:
    case CommandId::kSubstr:
    case CommandId::kSetRange:
    case CommandId::kIncrByFloat:
    case CommandId::kSetBit:
    case CommandId::kGetBit:
    case CommandId::kBitCount:
    case CommandId::kBitPos:
    case CommandId::kBitOp:
    case CommandId::kBitField:
    case CommandId::kBitFieldRo:
    case CommandId::kLcs:
    case CommandId::kCopy:
    case CommandId::kRename:
    case CommandId::kRenameNx:
    case CommandId::kTouch:
    case CommandId::kPersist:
    case CommandId::kSetEx:
    case CommandId::kPSetEx:
    case CommandId::kExpire:
    case CommandId::kPExpire:
    case CommandId::kExpireAt:
    case CommandId::kPExpireAt:
    case CommandId::kGetEx:
    case CommandId::kExpireTime:
    case CommandId::kPExpireTime:
    case CommandId::kPing:
    case CommandId::kEcho:
    case CommandId::kTime:
    case CommandId::kMemory:
    case CommandId::kUnwatch:
      return true;
    default:
      return false;
  }
}

// The keys of an admitted command (its own or its subcommand's key positions).
void add_keys(const std::vector<std::string>& a, std::vector<std::string>& keys) {
  const CommandSpec* spec = find_command(lower(a[0]));
  QUIRE_ASSERT(spec != nullptr);  // queued only once known
  int first = spec->first_key;
  int last = spec->last_key;
  int step = spec->key_step;
  if (!spec->subcommands.empty()) {
    const SubcommandSpec* sub = find_subcommand(*spec, lower(a[1]));
    QUIRE_ASSERT(sub != nullptr);  // the dispatcher checked it
    first = sub->first_key;
    last = sub->last_key;
    step = sub->key_step;
  }
  for (size_t j : key_positions(first, last, step, a.size())) keys.push_back(a[j]);
}

// Clears ClientState::exec when EXEC ends, however it ends.
class ExecScope {
 public:
  ExecScope(ClientState& c, ExecOverlay& tx) : c_(c) { c_.exec = &tx; }
  ~ExecScope() { c_.exec = nullptr; }
  ExecScope(const ExecScope&) = delete;
  ExecScope& operator=(const ExecScope&) = delete;

 private:
  ClientState& c_;
};

}  // namespace

void RespCommands::queue_in_multi(const CommandSpec& spec, Args& a, ClientState& c,
                                  ReplyWriter& out) {
  ClientState::Multi& m = *c.multi;
  const size_t mark = out.size();
  if (!allowed_in_multi(spec.id)) {
    commands_rejected_++;
    m.dirty = true;
    out.err(fmt::format(
        "Command not allowed inside a transaction: Quire queues the key and string commands, "
        "PING, ECHO, TIME and MEMORY, not '{}'",
        spec.name));
    record_rejected(&spec, a, std::string_view(out.buffer()).substr(mark));
    return;
  }
  if (m.dirty) {  // as Redis 7.0: no longer kept, still acknowledged
    out.simple("QUEUED");
    return;
  }
  size_t bytes = 0;  // each argument's own size counted too
  for (const std::string& arg : a) bytes += arg.size() + sizeof(std::string);
  if (m.queued.size() >= options_.multi_commands_max ||
      m.bytes + bytes > options_.multi_bytes_max) {
    commands_rejected_++;
    m.dirty = true;
    out.err(fmt::format(
        "a transaction may queue at most {} commands and {} bytes of arguments (Quire's "
        "multi_commands_max, multi_bytes_max)",
        options_.multi_commands_max, options_.multi_bytes_max));
    record_rejected(&spec, a, std::string_view(out.buffer()).substr(mark));
    return;
  }
  m.bytes += bytes;
  m.queued.push_back(std::move(a));
  out.simple("QUEUED");
}

Task<void> RespCommands::cmd_exec(ClientState& c, ReplyWriter& out) {
  if (!c.multi) {
    out.err("EXEC without MULTI");
    co_return;
  }
  ClientState::Multi m = std::move(*c.multi);
  c.multi.reset();
  absl::Cleanup unwatch = [this, &c] { unwatch_all(c); };  // EXEC forgets the watches
  if (m.dirty) {
    out.error("EXECABORT Transaction discarded because of previous errors.");
    co_return;
  }
  // As Redis 7.0 checks EXEC against its commands' flags: a write on a node that is not the
  // primary, or a read on one that is loading, discards it all.
  for (const Args& q : m.queued) {
    ReplyWriter refusal;
    if (!admit(*find_command(lower(q[0])), c, refusal)) {
      exec_abort(refusal.buffer(), out);
      co_return;
    }
  }
  // Its keys, and the watched keys of every database (unchanged from the check to the
  // commit), locked one database after the other in ascending order, as every command
  // that holds locks of several databases takes them (COPY ... DB, MOVE): no two lockers
  // wait in a cycle.
  std::map<uint32_t, std::vector<std::string>> keys;
  for (const Args& q : m.queued) add_keys(q, keys[c.db]);
  for (const ClientState::Watch& w : c.watching) keys[w.db].push_back(w.key);
  std::vector<HeldLocks> held;
  for (auto& [db, names] : keys) {
    auto h =
        co_await lock_keys_at(db, LockMode::kShared, std::move(names), LockMode::kExclusive, out);
    if (!h) co_return;
    held.push_back(std::move(*h));
  }
  if (watch_broken(c)) {
    out.null_array();  // as Redis: a watched key changed, nothing ran
    co_return;
  }
  ExecOverlay tx;
  tx.db = c.db;
  ReplyWriter replies;
  {
    ExecScope scope(c, tx);
    for (Args& q : m.queued) {
      const CommandSpec* spec = find_command(lower(q[0]));
      commands_executed_++;
      CallStart call = start_call(*spec, q);
      const size_t mark = replies.size();
      co_await run(*spec, q, c, replies);
      record_call(call, c, std::string_view(replies.buffer()).substr(mark));
      if (!tx.failed.is_ok()) break;
      if (replies.size() > options_.multi_reply_bytes_max) {
        tx.failed = Status(Code::kInvalidArgument,
                           fmt::format("the transaction's replies pass {} bytes (Quire's "
                                       "multi_reply_bytes_max)",
                                       options_.multi_reply_bytes_max));
        break;
      }
    }
  }
  if (!tx.failed.is_ok()) {
    if (tx.failed.code() == Code::kInvalidArgument) {
      out.err(fmt::format("transaction not run, nothing written: {}", tx.failed.message()));
    } else {
      out.error(fmt::format("TRYAGAIN transaction not run, nothing written: a read failed: {}",
                            tx.failed.to_string()));
    }
    co_return;
  }
  if (!tx.order.empty()) {
    std::vector<LogWrite> batch;
    batch.reserve(tx.order.size());
    for (const std::string& key : tx.order) {
      batch.push_back(LogWrite{db_table(tx.db), key, std::move(tx.values[key])});
    }
    if (!co_await commit(std::move(batch), c, out)) co_return;  // its error is the reply
  }
  out.array(m.queued.size());
  out.append(replies);
}

// The keys' locks are taken and let go first: a write queued before WATCH holds its key's
// lock until it is applied, so once WATCH answers, reads see every write it did not count.
Task<void> RespCommands::cmd_watch(Args& a, ClientState& c, ReplyWriter& out) {
  if (c.multi) {
    out.err("WATCH inside MULTI is not allowed");
    co_return;
  }
  // Each key once (a key named a million times costs one lookup), and the bound checked
  // before any lock is taken.
  std::vector<std::string> keys(a.begin() + 1, a.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::set<std::string_view> already;
  for (const ClientState::Watch& w : c.watching) {
    if (w.db == c.db) already.insert(w.key);
  }
  std::vector<std::string> adding;  // not watched yet (`already` views c.watching: fixed now)
  for (const std::string& k : keys) {
    if (!already.contains(k)) adding.push_back(k);
  }
  already.clear();
  if (c.watching.size() + adding.size() > options_.watch_keys_max) {
    out.err(fmt::format("a connection may watch at most {} keys (Quire's watch_keys_max)",
                        options_.watch_keys_max));
    co_return;
  }
  auto held = co_await lock_keys_at(c.db, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  if (serving().role != Role::kPrimary) {
    out.err(
        "WATCH is answered by the primary only: Quire counts the writes to watched keys "
        "there");
    co_return;
  }
  for (const std::string& k : keys) {
    if (k.size() > kKeyBytesMax) {  // no such key can exist
      out.err(fmt::format("key is {} bytes; Quire's key limit is {} bytes (kKeyBytesMax)", k.size(),
                          kKeyBytesMax));
      co_return;
    }
  }
  const uint64_t term = node_.client().term().value;
  for (const std::string& k : adding) {
    WatchedKey& w = watched_[{c.db, k}];
    w.watchers++;
    c.watching.push_back(ClientState::Watch{c.db, k, w.writes, term});
  }
  out.ok();
}

void RespCommands::unwatch_all(ClientState& c) {
  for (const ClientState::Watch& w : c.watching) {
    auto it = watched_.find({w.db, w.key});
    QUIRE_ASSERT(it != watched_.end() && it->second.watchers > 0);
    if (--it->second.watchers == 0) watched_.erase(it);
  }
  c.watching.clear();
}

bool RespCommands::watch_broken(const ClientState& c) {
  if (c.watching.empty()) return false;
  if (serving().role != Role::kPrimary) return true;
  const uint64_t term = node_.client().term().value;
  for (const ClientState::Watch& w : c.watching) {
    auto it = watched_.find({w.db, w.key});
    QUIRE_ASSERT(it != watched_.end());
    if (w.term != term || it->second.writes != w.writes) return true;
  }
  return false;
}

void RespCommands::touch_watched(const std::vector<LogWrite>& batch) {
  if (watched_.empty()) return;
  for (const LogWrite& w : batch) {
    const uint32_t db = static_cast<uint32_t>(w.table.value - kFirstUserTable);
    if (auto it = watched_.find({db, w.key}); it != watched_.end()) it->second.writes++;
  }
}

void RespCommands::disconnected(ClientState& client) {
  unwatch_all(client);
}

}  // namespace quire::resp
