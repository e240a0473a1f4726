// The string commands: GET, SET, SETNX, DEL, EXISTS, STRLEN, MGET, MSET, MSETNX and
// INCR/INCRBY/DECR/DECRBY. Reads run on the primary or a standby at one timestamp; writes
// run on the primary under the key locks (key_locks.h: exclusive across a read-modify-write,
// shared for a blind write) and reply once durable at W.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "resp/commands.h"

namespace quire::resp {
namespace {

LogWrite put(uint32_t db, std::string key, std::string value) {
  return LogWrite{db_table(db), std::move(key), std::move(value)};
}

// A started command whose reply is already known (a refusal).
class ReadyReply : public PendingReply {
 public:
  explicit ReadyReply(std::string bytes) : bytes_(std::move(bytes)) {}
  Task<void> finish(ClientState& client, ReplyWriter& out) override {
    (void)client;
    out.buffer() += bytes_;
    co_return;
  }

 private:
  std::string bytes_;
};

}  // namespace

class RespCommands::PendingWrite : public PendingReply {
 public:
  PendingWrite(HeldLocks held, Primary::QueuedWrite queued)
      : held_(std::move(held)), queued_(std::move(queued)) {}
  Task<void> finish(ClientState& client, ReplyWriter& out) override {
    Result<Timestamp> r = co_await queued_.outcome();
    held_.release();
    if (!r.is_ok()) {
      write_failed(r.status(), out);
      co_return;
    }
    client.last_write = std::max(client.last_write, *r);
    out.ok();
  }

 private:
  // Released once the write is applied (or failed): a read-modify-write of these keys
  // waits until then, as for a blind write run by execute().
  HeldLocks held_;
  Primary::QueuedWrite queued_;
};

Task<std::unique_ptr<PendingReply>> RespCommands::start(std::vector<std::string>& a,
                                                        ClientState& c) {
  if (a.size() < 3 || a.size() % 2 == 0) co_return nullptr;  // SET k v, MSET k v [k v ...]
  const CommandSpec* spec = find_command(lower(a[0]));
  if (spec == nullptr || (spec->id != CommandId::kMset && spec->id != CommandId::kSet) ||
      (spec->id == CommandId::kSet && a.size() != 3)) {
    co_return nullptr;
  }
  ReplyWriter refusal;
  if (!admit(*spec, c, refusal)) co_return nullptr;  // execute() answers it
  std::vector<std::string> keys;
  for (size_t j = 1; j < a.size(); j += 2) keys.push_back(a[j]);
  std::optional<HeldLocks> held =
      locks_.try_lock(c.db, LockMode::kShared, std::move(keys), LockMode::kShared);
  if (!held) co_return nullptr;  // contended: run in turn, waiting for the locks
  commands_executed_++;
  std::vector<LogWrite> batch;
  for (size_t j = 1; j < a.size(); j += 2) {
    batch.push_back(put(c.db, std::move(a[j]), std::move(a[j + 1])));
  }
  std::optional<Primary::QueuedWrite> queued = co_await enqueue(std::move(batch), refusal);
  if (!queued) co_return std::make_unique<ReadyReply>(std::move(refusal.buffer()));
  co_return std::make_unique<PendingWrite>(std::move(*held), std::move(*queued));
}

Task<void> RespCommands::cmd_get(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys{a[1]};
  auto r = co_await read_keys(c.db, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
  } else if ((*r)[0]) {
    out.bulk(*(*r)[0]);
  } else {
    out.null_bulk();
  }
}

Task<void> RespCommands::cmd_set(Args& a, ClientState& c, ReplyWriter& out) {
  bool nx = false;
  bool xx = false;
  bool get = false;
  for (size_t j = 3; j < a.size(); j++) {
    const std::string_view opt = a[j];
    if (iequals(opt, "nx") && !xx) {
      nx = true;
    } else if (iequals(opt, "xx") && !nx) {
      xx = true;
    } else if (iequals(opt, "get")) {
      get = true;
    } else if (iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") ||
               iequals(opt, "pxat") || iequals(opt, "keepttl")) {
      out.err(fmt::format("SET {} is not supported: Quire keys never expire", a[j]));
      co_return;
    } else {
      out.err("syntax error");
      co_return;
    }
  }
  std::vector<std::string> keys{a[1]};
  if (!nx && !xx && !get) {  // a blind write
    auto held =
        co_await lock_for_write(c.db, LockMode::kShared, std::move(keys), LockMode::kShared, out);
    if (!held) co_return;
    std::vector<LogWrite> batch{put(c.db, a[1], std::move(a[2]))};
    if (co_await commit(std::move(batch), c, out)) out.ok();
    co_return;
  }
  auto held = co_await lock_for_write(c.db, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  auto old = co_await read_keys(c.db, std::move(keys));
  if (!old.is_ok()) {
    read_failed(old.status(), out);
    co_return;
  }
  const std::optional<std::string>& was = (*old)[0];
  const bool set = !(nx && was) && !(xx && !was);
  if (set) {
    std::vector<LogWrite> batch{put(c.db, a[1], std::move(a[2]))};
    if (!co_await commit(std::move(batch), c, out)) co_return;
  }
  if (get) {
    if (was) {
      out.bulk(*was);
    } else {
      out.null_bulk();
    }
  } else if (set) {
    out.ok();
  } else {
    out.null_bulk();
  }
}

Task<void> RespCommands::cmd_setnx(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys{a[1]};
  auto held = co_await lock_for_write(c.db, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  auto old = co_await read_keys(c.db, std::move(keys));
  if (!old.is_ok()) {
    read_failed(old.status(), out);
    co_return;
  }
  if ((*old)[0]) {
    out.integer(0);
    co_return;
  }
  std::vector<LogWrite> batch{put(c.db, a[1], std::move(a[2]))};
  if (co_await commit(std::move(batch), c, out)) out.integer(1);
}

Task<void> RespCommands::cmd_del(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys(a.begin() + 1, a.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  auto held = co_await lock_for_write(c.db, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  auto old = co_await read_keys(c.db, keys);
  if (!old.is_ok()) {
    read_failed(old.status(), out);
    co_return;
  }
  std::vector<LogWrite> batch;
  for (size_t i = 0; i < keys.size(); i++) {
    if ((*old)[i]) batch.push_back(LogWrite{db_table(c.db), std::move(keys[i]), std::nullopt});
  }
  const int64_t deleted = static_cast<int64_t>(batch.size());
  if (deleted > 0 && !co_await commit(std::move(batch), c, out)) co_return;
  out.integer(deleted);
}

Task<void> RespCommands::cmd_exists(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys(a.begin() + 1, a.end());
  auto r = co_await read_keys(c.db, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  int64_t n = 0;
  for (const auto& v : *r) n += v ? 1 : 0;
  out.integer(n);
}

Task<void> RespCommands::cmd_strlen(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys{a[1]};
  auto r = co_await read_keys(c.db, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  out.integer((*r)[0] ? static_cast<int64_t>((*r)[0]->size()) : 0);
}

Task<void> RespCommands::cmd_type_ttl(Args& a, ClientState& c, ReplyWriter& out, CommandId id) {
  std::vector<std::string> keys{a[1]};
  auto r = co_await read_keys(c.db, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  const bool exists = (*r)[0].has_value();
  if (id == CommandId::kType) {
    out.simple(exists ? "string" : "none");
  } else {
    out.integer(exists ? -1 : -2);
  }
}

Task<void> RespCommands::cmd_mget(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys(a.begin() + 1, a.end());
  auto r = co_await read_keys(c.db, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  out.array(r->size());
  for (const auto& v : *r) {
    if (v) {
      out.bulk(*v);
    } else {
      out.null_bulk();
    }
  }
}

Task<void> RespCommands::cmd_mset(Args& a, ClientState& c, ReplyWriter& out, bool nx) {
  if ((a.size() - 1) % 2 != 0) {
    out.err(fmt::format("wrong number of arguments for '{}' command", nx ? "msetnx" : "mset"));
    co_return;
  }
  std::vector<std::string> keys;
  for (size_t j = 1; j < a.size(); j += 2) keys.push_back(a[j]);
  const LockMode mode = nx ? LockMode::kExclusive : LockMode::kShared;
  auto held = co_await lock_for_write(c.db, LockMode::kShared, keys, mode, out);
  if (!held) co_return;
  if (nx) {
    auto old = co_await read_keys(c.db, std::move(keys));
    if (!old.is_ok()) {
      read_failed(old.status(), out);
      co_return;
    }
    for (const auto& v : *old) {
      if (v) {
        out.integer(0);
        co_return;
      }
    }
  }
  std::vector<LogWrite> batch;
  for (size_t j = 1; j < a.size(); j += 2) {
    batch.push_back(put(c.db, std::move(a[j]), std::move(a[j + 1])));
  }
  if (!co_await commit(std::move(batch), c, out)) co_return;
  if (nx) {
    out.integer(1);
  } else {
    out.ok();
  }
}

Task<void> RespCommands::cmd_incr(Args& a, ClientState& c, ReplyWriter& out, int64_t sign,
                                  bool by) {
  int64_t incr = 1;
  if (by) {
    std::optional<int64_t> n = parse_int64(a[2]);
    if (!n) {
      out.err("value is not an integer or out of range");
      co_return;
    }
    if (sign < 0 && *n == INT64_MIN) {
      out.err("decrement would overflow");
      co_return;
    }
    incr = *n;
  }
  incr *= sign;
  std::vector<std::string> keys{a[1]};
  auto held = co_await lock_for_write(c.db, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  auto old = co_await read_keys(c.db, std::move(keys));
  if (!old.is_ok()) {
    read_failed(old.status(), out);
    co_return;
  }
  int64_t value = 0;
  if ((*old)[0]) {
    std::optional<int64_t> v = parse_int64(*(*old)[0]);
    if (!v) {
      out.err("value is not an integer or out of range");
      co_return;
    }
    value = *v;
  }
  if ((incr < 0 && value < 0 && incr < INT64_MIN - value) ||
      (incr > 0 && value > 0 && incr > INT64_MAX - value)) {
    out.err("increment or decrement would overflow");
    co_return;
  }
  value += incr;
  std::vector<LogWrite> batch{put(c.db, a[1], fmt::format("{}", value))};
  if (co_await commit(std::move(batch), c, out)) out.integer(value);
}

}  // namespace quire::resp
