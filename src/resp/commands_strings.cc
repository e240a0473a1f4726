// The string commands: GET, SET, SETNX, DEL, EXISTS, STRLEN, MGET, MSET, MSETNX and
// INCR/INCRBY/DECR/DECRBY. Reads run on the primary or a standby at one timestamp; writes
// run on the primary under the key locks (key_locks.h: exclusive across a read-modify-write,
// shared for a blind write) and reply once durable at W.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "resp/commands.h"

namespace quire::resp {
namespace {

LogWrite put(uint32_t db, std::string key, std::string value) {
  return LogWrite{db_table(db), std::move(key), std::move(value)};
}

}  // namespace

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
