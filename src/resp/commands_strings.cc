// The string commands: GET, SET, SETNX, DEL, EXISTS, STRLEN, MGET, MSET, MSETNX,
// INCR/INCRBY/DECR/DECRBY, GETDEL, APPEND, GETRANGE, SETRANGE, INCRBYFLOAT, RENAME(NX)
// (UNLINK, GETSET, SUBSTR and TOUCH run DEL, SET ... GET, GETRANGE and EXISTS). Reads run on the
// primary or a standby at one timestamp; writes run on the primary under the key locks
// (key_locks.h: exclusive across a read-modify-write, shared for a blind write) and reply once
// durable at W.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// Redis's string2ld: the whole argument is a long double (strtold's syntax, hexadecimal and
// "inf" included; a NUL byte ends it short, which refuses it), with no leading space, not
// NaN, not out of range. Redis copies it into a buffer of MAX_LONG_DOUBLE_CHARS (5 KiB)
// first: a longer one is refused.
std::optional<long double> parse_long_double(std::string_view s) {
  constexpr size_t kMaxChars = 5 * 1024;
  if (s.empty() || s.size() >= kMaxChars) return std::nullopt;
  const std::string buf(s);
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(buf.c_str(), &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || *end != '\0' ||
      static_cast<size_t>(end - buf.c_str()) != buf.size() ||
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) ||
      std::isnan(v)) {
    return std::nullopt;
  }
  return v;
}

// Redis's ld2string in LD_STR_HUMAN mode: %.17Lf without trailing zeros, "-0" as "0".
std::string format_long_double(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[5 * 1024];
  const int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n <= 0 || static_cast<size_t>(n) + 1 > sizeof buf) return "";
  std::string out(buf, static_cast<size_t>(n));
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

}  // namespace

class RespCommands::PendingWrite : public PendingReply {
 public:
  // `owner` records the call (INFO commandstats, SLOWLOG): the server finishes its started
  // commands before the handler goes.
  PendingWrite(HeldLocks held, Primary::QueuedWrite queued, RespCommands& owner, CallStart call)
      : held_(std::move(held)), queued_(std::move(queued)), owner_(owner), call_(std::move(call)) {}
  Task<void> finish(ClientState& client, ReplyWriter& out) override {
    Result<Timestamp> r = co_await queued_.outcome();
    held_.release();
    const size_t mark = out.size();
    if (r.is_ok()) {
      client.last_write = std::max(client.last_write, *r);
      out.ok();
    } else {
      write_failed(r.status(), out);
    }
    owner_.record_call(call_, client, std::string_view(out.buffer()).substr(mark));
  }

 private:
  // Released once the write is applied (or failed): a read-modify-write of these keys
  // waits until then, as for a blind write run by execute().
  HeldLocks held_;
  Primary::QueuedWrite queued_;
  RespCommands& owner_;
  CallStart call_;
};

Task<std::unique_ptr<PendingReply>> RespCommands::start(std::vector<std::string>& a,
                                                        ClientState& c) {
  if (a.size() < 3 || a.size() % 2 == 0) co_return nullptr;  // SET k v, MSET k v [k v ...]
  // Over the bound: execute() refuses it before taking any lock.
  if ((a.size() - 1) / 2 > kLogEntryOpsMax) co_return nullptr;
  if (c.multi) co_return nullptr;  // execute() queues it
  const CommandSpec* spec = find_command(lower(a[0]));
  if (spec == nullptr || (spec->id != CommandId::kMset && spec->id != CommandId::kSet) ||
      (spec->id == CommandId::kSet && a.size() != 3)) {
    co_return nullptr;
  }
  c.last_command = spec->name;
  c.last_subcommand = {};
  ReplyWriter refusal;
  if (!admit(*spec, c, refusal)) co_return nullptr;  // execute() answers it
  std::vector<std::string> keys;
  for (size_t j = 1; j < a.size(); j += 2) keys.push_back(a[j]);
  std::optional<HeldLocks> held =
      locks_.try_lock(c.db, LockMode::kShared, std::move(keys), LockMode::kShared);
  if (!held) co_return nullptr;  // contended: run in turn, waiting for the locks
  commands_executed_++;
  CallStart call = start_call(*spec, a);  // before the arguments move into the batch
  std::vector<LogWrite> batch;
  for (size_t j = 1; j < a.size(); j += 2) {
    batch.push_back(put(c.db, std::move(a[j]), std::move(a[j + 1])));
  }
  std::optional<Primary::QueuedWrite> queued = co_await enqueue(std::move(batch), refusal);
  if (!queued) {
    record_call(call, c, refusal.buffer());
    co_return std::make_unique<ReadyReply>(std::move(refusal.buffer()));
  }
  co_return std::make_unique<PendingWrite>(std::move(*held), std::move(*queued), *this,
                                           std::move(call));
}

Task<void> RespCommands::cmd_get(Args& a, ClientState& c, ReplyWriter& out) {
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  if (*r) {
    out.bulk(**r);
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
        co_await lock_for_write(c, LockMode::kShared, std::move(keys), LockMode::kShared, out);
    if (!held) co_return;
    std::vector<LogWrite> batch{put(c.db, a[1], std::move(a[2]))};
    if (co_await commit(std::move(batch), c, out)) out.ok();
    co_return;
  }
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  const std::optional<std::string>& was = old->value;
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
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  if (old->value) {
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
  auto held = co_await lock_for_write(c, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  auto old = co_await read_keys(c, keys);
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
  auto r = co_await read_keys(c, std::move(keys));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  int64_t n = 0;
  for (const auto& v : *r) n += v ? 1 : 0;
  out.integer(n);
}

Task<void> RespCommands::cmd_strlen(Args& a, ClientState& c, ReplyWriter& out) {
  auto r = co_await read_one(c, a[1], out);
  if (r) out.integer(*r ? static_cast<int64_t>((*r)->size()) : 0);
}

Task<void> RespCommands::cmd_type_ttl(Args& a, ClientState& c, ReplyWriter& out, CommandId id) {
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  const bool exists = r->has_value();
  if (id == CommandId::kType) {
    out.simple(exists ? "string" : "none");
  } else {
    out.integer(exists ? -1 : -2);
  }
}

Task<void> RespCommands::cmd_mget(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> keys(a.begin() + 1, a.end());
  auto r = co_await read_keys(c, std::move(keys));
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
  auto held = co_await lock_for_write(c, LockMode::kShared, keys, mode, out);
  if (!held) co_return;
  if (nx) {
    auto old = co_await read_keys(c, std::move(keys));
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
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  int64_t value = 0;
  if (old->value) {
    std::optional<int64_t> v = parse_int64(*old->value);
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

Task<void> RespCommands::cmd_getdel(Args& a, ClientState& c, ReplyWriter& out) {
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  std::optional<std::string>& was = old->value;
  if (!was) {
    out.null_bulk();
    co_return;
  }
  std::vector<LogWrite> batch{LogWrite{db_table(c.db), a[1], std::nullopt}};
  if (co_await commit(std::move(batch), c, out)) out.bulk(*was);
}

Task<void> RespCommands::cmd_append(Args& a, ClientState& c, ReplyWriter& out) {
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  std::optional<std::string>& was = old->value;
  if (was && a[2].empty()) {  // nothing changes, but as Redis a watcher sees a write
    touch_watched({LogWrite{db_table(c.db), a[1], std::nullopt}});
    out.integer(static_cast<int64_t>(was->size()));
    co_return;
  }
  // A missing key is created, even with an empty value (as Redis does).
  std::string value = was ? std::move(*was) : std::string();
  if (value.size() + a[2].size() > kValueBytesMax) {
    out.err(value_too_large(value.size() + a[2].size()));
    co_return;
  }
  value += a[2];
  const auto length = static_cast<int64_t>(value.size());
  std::vector<LogWrite> batch{put(c.db, a[1], std::move(value))};
  if (co_await commit(std::move(batch), c, out)) out.integer(length);
}

Task<void> RespCommands::cmd_getrange(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<int64_t> start = parse_int64(a[2]);
  std::optional<int64_t> end = parse_int64(a[3]);
  if (!start || !end) {
    out.err("value is not an integer or out of range");
    co_return;
  }
  auto r = co_await read_one(c, a[1], out);
  if (!r) co_return;
  const std::string value = r->value_or(std::string());
  // Redis 7.0's getrangeCommand, index for index.
  int64_t s = *start;
  int64_t e = *end;
  const auto len = static_cast<int64_t>(value.size());
  if (s < 0 && e < 0 && s > e) {
    out.bulk("");
    co_return;
  }
  if (s < 0) s = len + s;
  if (e < 0) e = len + e;
  if (s < 0) s = 0;
  if (e < 0) e = 0;
  if (e >= len) e = len - 1;
  if (s > e || len == 0) {
    out.bulk("");
  } else {
    out.bulk(
        std::string_view(value).substr(static_cast<size_t>(s), static_cast<size_t>(e - s + 1)));
  }
}

Task<void> RespCommands::cmd_setrange(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<int64_t> offset = parse_int64(a[2]);
  if (!offset) {
    out.err("value is not an integer or out of range");
    co_return;
  }
  if (*offset < 0) {
    out.err("offset is out of range");
    co_return;
  }
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  std::optional<std::string>& was = old->value;
  const std::string& patch = a[3];
  if (patch.empty()) {  // nothing to set: the length as it is (0 for a missing key)
    out.integer(was ? static_cast<int64_t>(was->size()) : 0);
    co_return;
  }
  // Checked before the value grows: an offset may ask for gigabytes.
  const uint64_t total = static_cast<uint64_t>(*offset) + patch.size();
  if (total > kValueBytesMax) {
    out.err(value_too_large(total));
    co_return;
  }
  std::string value = was ? std::move(*was) : std::string();
  if (value.size() < total) value.resize(total, '\0');
  value.replace(static_cast<size_t>(*offset), patch.size(), patch);
  const auto length = static_cast<int64_t>(value.size());
  std::vector<LogWrite> batch{put(c.db, a[1], std::move(value))};
  if (co_await commit(std::move(batch), c, out)) out.integer(length);
}

Task<void> RespCommands::cmd_incrbyfloat(Args& a, ClientState& c, ReplyWriter& out) {
  auto old = co_await read_locked(c, a[1], out);
  if (!old) co_return;
  // As Redis: the key's value is read first, then the increment; 0 for a missing key.
  std::optional<long double> value = 0.0L;
  if (old->value) value = parse_long_double(*old->value);
  std::optional<long double> incr = value ? parse_long_double(a[2]) : std::nullopt;
  if (!value || !incr) {
    out.err("value is not a valid float");
    co_return;
  }
  const long double sum = *value + *incr;
  if (std::isnan(sum) || std::isinf(sum)) {
    out.err("increment would produce NaN or Infinity");
    co_return;
  }
  std::string text = format_long_double(sum);
  std::vector<LogWrite> batch{put(c.db, a[1], text)};
  if (co_await commit(std::move(batch), c, out)) out.bulk(text);
}

Task<void> RespCommands::cmd_rename(Args& a, ClientState& c, ReplyWriter& out, bool nx) {
  const bool same = a[1] == a[2];
  std::vector<std::string> keys{a[1]};
  if (!same) keys.push_back(a[2]);
  std::sort(keys.begin(), keys.end());
  auto held = co_await lock_for_write(c, LockMode::kShared, keys, LockMode::kExclusive, out);
  if (!held) co_return;
  std::vector<std::string> wanted{a[1], a[2]};
  auto r = co_await read_keys(c, std::move(wanted));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  std::optional<std::string>& source = (*r)[0];
  if (!source) {
    out.err("no such key");
    co_return;
  }
  if (same) {  // nothing moves; the key exists
    if (nx) {
      out.integer(0);
    } else {
      out.ok();
    }
    co_return;
  }
  if (nx && (*r)[1]) {
    out.integer(0);
    co_return;
  }
  // One batch: both keys change at one commit timestamp, or neither does.
  std::vector<LogWrite> batch{put(c.db, a[2], std::move(*source)),
                              LogWrite{db_table(c.db), a[1], std::nullopt}};
  if (!co_await commit(std::move(batch), c, out)) co_return;
  if (nx) {
    out.integer(1);
  } else {
    out.ok();
  }
}

// Locks `key_a` of database `db_a` and `key_b` of `db_b` exclusively (each database shared),
// the lower database first as EXEC does, so lockers of several databases never wait in a
// cycle. Inside EXEC nothing is locked: the transaction holds its keys (its one database).
Task<std::optional<std::vector<HeldLocks>>> RespCommands::lock_pair(ClientState& c, uint32_t db_a,
                                                                    std::string key_a,
                                                                    uint32_t db_b,
                                                                    std::string key_b,
                                                                    ReplyWriter& out) {
  std::vector<HeldLocks> held;
  if (db_a == db_b) {
    std::vector<std::string> keys{std::move(key_a)};
    if (key_b != keys[0]) keys.push_back(std::move(key_b));
    std::sort(keys.begin(), keys.end());
    auto h =
        co_await lock_for_write(c, LockMode::kShared, std::move(keys), LockMode::kExclusive, out);
    if (!h) co_return std::nullopt;
    held.push_back(std::move(*h));
    co_return held;
  }
  QUIRE_ASSERT(c.exec == nullptr);  // callers refuse other databases inside EXEC
  if (db_b < db_a) {
    std::swap(db_a, db_b);
    std::swap(key_a, key_b);
  }
  std::vector<std::string> keys_a(1, std::move(key_a));
  std::vector<std::string> keys_b(1, std::move(key_b));
  auto first =
      co_await lock_keys_at(db_a, LockMode::kShared, std::move(keys_a), LockMode::kExclusive, out);
  if (!first) co_return std::nullopt;
  held.push_back(std::move(*first));
  auto second =
      co_await lock_keys_at(db_b, LockMode::kShared, std::move(keys_b), LockMode::kExclusive, out);
  if (!second) co_return std::nullopt;
  held.push_back(std::move(*second));
  co_return held;
}

// COPY source destination [DB n] [REPLACE], as Redis 7.0 (its checks in its order). The
// value is read and written under both keys' locks; the copy is one write.
Task<void> RespCommands::cmd_copy(Args& a, ClientState& c, ReplyWriter& out) {
  uint32_t dst_db = c.db;
  bool replace = false;
  for (size_t j = 3; j < a.size(); j++) {
    const std::string_view opt = c_string(a[j]);
    if (iequals(opt, "replace")) {
      replace = true;
    } else if (iequals(opt, "db") && j + 1 < a.size()) {
      std::optional<uint32_t> db = parse_db(a[j + 1], out);
      if (!db) co_return;
      dst_db = *db;
      j++;
    } else {
      out.err("syntax error");
      co_return;
    }
  }
  if (dst_db == c.db && a[1] == a[2]) {
    out.err("source and destination objects are the same");
    co_return;
  }
  if (c.exec != nullptr && dst_db != c.db) {
    out.err(
        "COPY to another database is not run inside a transaction by Quire (a transaction "
        "writes one database)");
    co_return;
  }
  auto held = co_await lock_pair(c, c.db, a[1], dst_db, a[2], out);
  if (!held) co_return;
  std::optional<std::string> source;
  bool dst_exists = false;
  if (dst_db == c.db) {
    std::vector<std::string> wanted{a[1], a[2]};
    auto r = co_await read_keys(c, std::move(wanted));
    if (!r.is_ok()) {
      read_failed(r.status(), out);
      co_return;
    }
    source = std::move((*r)[0]);
    dst_exists = (*r)[1].has_value();
  } else {
    std::vector<std::string> src_key(1, a[1]);
    auto src = co_await read_keys_at(c.db, std::move(src_key));
    if (!src.is_ok()) {
      read_failed(src.status(), out);
      co_return;
    }
    source = std::move((*src)[0]);
    if (source) {
      std::vector<std::string> dst_key(1, a[2]);
      auto dst = co_await read_keys_at(dst_db, std::move(dst_key));
      if (!dst.is_ok()) {
        read_failed(dst.status(), out);
        co_return;
      }
      dst_exists = (*dst)[0].has_value();
    }
  }
  if (!source || (dst_exists && !replace)) {
    out.integer(0);
    co_return;
  }
  std::vector<LogWrite> batch{put(dst_db, a[2], std::move(*source))};
  if (!co_await commit(std::move(batch), c, out)) co_return;
  out.integer(1);
}

// MOVE key db, as Redis 7.0: 1 once moved, 0 when the key is missing here or present there.
// Both databases change in one write. Refused inside MULTI (a transaction writes one
// database).
Task<void> RespCommands::cmd_move(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<uint32_t> dst_db = parse_db(a[2], out);
  if (!dst_db) co_return;
  if (*dst_db == c.db) {
    out.err("source and destination objects are the same");
    co_return;
  }
  QUIRE_ASSERT(c.exec == nullptr);  // MOVE is not queued after MULTI
  auto held = co_await lock_pair(c, c.db, a[1], *dst_db, a[1], out);
  if (!held) co_return;
  std::vector<std::string> key(1, a[1]);
  auto src = co_await read_keys_at(c.db, key);
  if (!src.is_ok()) {
    read_failed(src.status(), out);
    co_return;
  }
  if (!(*src)[0]) {
    out.integer(0);
    co_return;
  }
  auto dst = co_await read_keys_at(*dst_db, std::move(key));
  if (!dst.is_ok()) {
    read_failed(dst.status(), out);
    co_return;
  }
  if ((*dst)[0]) {
    out.integer(0);
    co_return;
  }
  std::vector<LogWrite> batch{put(*dst_db, a[1], std::move(*(*src)[0])),
                              LogWrite{db_table(c.db), a[1], std::nullopt}};
  if (!co_await commit(std::move(batch), c, out)) co_return;
  out.integer(1);
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN], ported from Redis 7.0's
// lcsCommand: the dynamic programming table of (len1 + 1) * (len2 + 1) counters, at most
// RespCommandsOptions::lcs_table_bytes_max bytes of it (Redis's bound is proto-max-bulk-len).
Task<void> RespCommands::cmd_lcs(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<std::string> wanted{a[1], a[2]};
  auto r = co_await read_keys(c, std::move(wanted));
  if (!r.is_ok()) {
    read_failed(r.status(), out);
    co_return;
  }
  bool getlen = false;
  bool getidx = false;
  bool withmatchlen = false;
  int64_t minmatchlen = 0;
  for (size_t j = 3; j < a.size(); j++) {
    const std::string_view opt = c_string(a[j]);
    if (iequals(opt, "idx")) {
      getidx = true;
    } else if (iequals(opt, "len")) {
      getlen = true;
    } else if (iequals(opt, "withmatchlen")) {
      withmatchlen = true;
    } else if (iequals(opt, "minmatchlen") && j + 1 < a.size()) {
      std::optional<int64_t> v = parse_int64(a[j + 1]);
      if (!v) {
        out.err("value is not an integer or out of range");
        co_return;
      }
      minmatchlen = std::max<int64_t>(*v, 0);
      j++;
    } else {
      out.err("syntax error");
      co_return;
    }
  }
  if (getlen && getidx) {
    out.err("If you want both the length and indexes, please just use IDX.");
    co_return;
  }
  const std::string sa = (*r)[0] ? std::move(*(*r)[0]) : std::string();
  const std::string sb = (*r)[1] ? std::move(*(*r)[1]) : std::string();
  const auto alen = static_cast<uint32_t>(sa.size());  // values are at most kValueBytesMax
  const auto blen = static_cast<uint32_t>(sb.size());
  const uint64_t cells = (uint64_t{alen} + 1) * (uint64_t{blen} + 1);
  if (cells * sizeof(uint32_t) > options_.lcs_table_bytes_max) {
    out.err(fmt::format(
        "Insufficient memory, transient memory for LCS exceeds Quire's lcs_table_bytes_max "
        "({} bytes; this one needs {})",
        options_.lcs_table_bytes_max, cells * sizeof(uint32_t)));
    co_return;
  }
  std::vector<uint32_t> table(cells, 0);
  const auto at = [&](uint32_t i, uint32_t j) -> uint32_t& { return table[j + i * (blen + 1)]; };
  for (uint32_t i = 1; i <= alen; i++) {
    for (uint32_t j = 1; j <= blen; j++) {
      if (sa[i - 1] == sb[j - 1]) {
        at(i, j) = at(i - 1, j - 1) + 1;
      } else {
        at(i, j) = std::max(at(i - 1, j), at(i, j - 1));
      }
    }
  }
  uint32_t idx = at(alen, blen);
  const bool computelcs = getidx || !getlen;
  std::string result(computelcs ? idx : 0, '\0');
  ReplyWriter ranges;  // IDX's matches, counted as they are found
  size_t range_count = 0;
  uint32_t arange_start = alen;  // alen: no range under way
  uint32_t arange_end = 0;
  uint32_t brange_start = 0;
  uint32_t brange_end = 0;
  uint32_t i = alen;
  uint32_t j = blen;
  while (computelcs && i > 0 && j > 0) {
    bool emit_range = false;
    if (sa[i - 1] == sb[j - 1]) {
      result[idx - 1] = sa[i - 1];
      if (arange_start == alen) {
        arange_start = i - 1;
        arange_end = i - 1;
        brange_start = j - 1;
        brange_end = j - 1;
      } else if (arange_start == i && brange_start == j) {  // extends the range backward
        arange_start--;
        brange_start--;
      } else {
        emit_range = true;
      }
      if (arange_start == 0 || brange_start == 0) emit_range = true;
      idx--;
      i--;
      j--;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) {
        i--;
      } else {
        j--;
      }
      if (arange_start != alen) emit_range = true;
    }
    const uint32_t match_len = arange_end - arange_start + 1;
    if (emit_range) {
      if (getidx && (minmatchlen == 0 || int64_t{match_len} >= minmatchlen)) {
        ranges.array(withmatchlen ? 3 : 2);
        ranges.array(2);
        ranges.integer(arange_start);
        ranges.integer(arange_end);
        ranges.array(2);
        ranges.integer(brange_start);
        ranges.integer(brange_end);
        if (withmatchlen) ranges.integer(match_len);
        range_count++;
      }
      arange_start = alen;
    }
  }
  if (getidx) {  // RESP2's form of Redis's map
    out.array(4);
    out.bulk("matches");
    out.array(range_count);
    out.append(ranges);
    out.bulk("len");
    out.integer(at(alen, blen));
  } else if (getlen) {
    out.integer(at(alen, blen));
  } else {
    out.bulk(result);
  }
}

Task<void> RespCommands::cmd_getex(Args& a, ClientState& c, ReplyWriter& out) {
  // Redis 7.0's options: EX/PX/EXAT/PXAT take a value, PERSIST none (and may repeat).
  for (size_t j = 2; j < a.size(); j++) {
    const bool has_next = j + 1 < a.size();
    if (has_next && (iequals(a[j], "ex") || iequals(a[j], "px") || iequals(a[j], "exat") ||
                     iequals(a[j], "pxat"))) {
      out.err(fmt::format("GETEX {} is not supported: Quire keys never expire", a[j]));
      co_return;
    }
    if (iequals(a[j], "persist")) continue;
    out.err("syntax error");
    co_return;
  }
  co_await cmd_get(a, c, out);  // PERSIST: no key has an expiration to remove
}

}  // namespace quire::resp
