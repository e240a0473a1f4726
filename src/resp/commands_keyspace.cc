// The keyspace commands: SCAN, KEYS, DBSIZE, FLUSHDB.
//
// SCAN's cursor is a number (redis-cli and redis-py parse it as one) naming a resume key the
// node remembers: each call reads keys in ascending order from the cursor's key and returns
// a cursor for the key just after the last one it read. So a full iteration returns every
// key present throughout exactly once (Redis promises at least once), whatever changes
// meanwhile. The node keeps the newest scan_cursors_max cursors; an older or unknown one
// (or one from another node, e.g. after a failover) answers "-ERR invalid cursor", and the
// client restarts from 0. A cursor may be used again (a retry reads the same range).
#include <fmt/format.h>

#include <cctype>
#include <variant>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/protocol.h"

namespace quire::resp {
namespace {

// The smallest key after `key`.
std::string successor(std::string key) {
  key.push_back('\0');
  return key;
}

// FLUSHDB deletes this many keys per batch.
constexpr size_t kFlushBatchKeys = 256;

}  // namespace

namespace {

struct ScanArgs {
  uint64_t cursor = 0;
  uint64_t count = 10;
  std::optional<std::string> pattern;  // none: every key
  std::optional<std::string> type;
};

// SCAN's arguments, or the error message Redis gives for them.
std::variant<ScanArgs, std::string> parse_scan_args(const std::vector<std::string>& a) {
  ScanArgs s;
  std::optional<uint64_t> cursor = parse_scan_cursor(a[1]);
  if (!cursor) return std::string("invalid cursor");
  s.cursor = *cursor;
  for (size_t j = 2; j < a.size(); j++) {
    const bool has_value = j + 1 < a.size();
    if (iequals(a[j], "count") && has_value) {
      std::optional<int64_t> n = parse_int64(a[++j]);
      if (!n) return std::string("value is not an integer or out of range");
      if (*n < 1) return std::string("syntax error");
      s.count = static_cast<uint64_t>(*n);
    } else if (iequals(a[j], "match") && has_value) {
      // As Redis: "*" is no filter (matching would skip the empty key), and the last MATCH
      // given is the one that counts.
      ++j;
      s.pattern = a[j] == "*" ? std::nullopt : std::optional<std::string>(a[j]);
    } else if (iequals(a[j], "type") && has_value) {
      s.type = a[++j];
    } else {
      return std::string("syntax error");
    }
  }
  return s;
}

}  // namespace

uint64_t RespCommands::remember_cursor(uint32_t db, std::string resume) {
  const uint64_t cursor = next_cursor_++;
  cursors_[cursor] = ScanCursor{db, std::move(resume)};
  cursor_order_.push_back(cursor);
  while (cursor_order_.size() > options_.scan_cursors_max) {
    cursors_.erase(cursor_order_.front());
    cursor_order_.pop_front();
  }
  return cursor;
}

Task<void> RespCommands::cmd_scan(Args& a, ClientState& c, ReplyWriter& out) {
  auto parsed = parse_scan_args(a);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    out.err(*error);
    co_return;
  }
  const ScanArgs& args = std::get<ScanArgs>(parsed);
  std::string from;
  if (args.cursor != 0) {
    auto it = cursors_.find(args.cursor);
    if (it == cursors_.end() || it->second.db != c.db) {
      out.err("invalid cursor");
      co_return;
    }
    from = it->second.resume;
  }
  const size_t limit = static_cast<size_t>(std::min<uint64_t>(args.count, options_.scan_count_max));
  const bool type_ok = !args.type || iequals(*args.type, "string");  // every value is a string
  std::vector<std::string> keys;
  size_t read = 0;
  bool end = false;
  while (read < limit && !end) {
    const size_t want = std::min(options_.scan_chunk_rows, limit - read);
    auto rows = co_await read_range(c.db, from, want, std::nullopt);
    if (!rows.is_ok()) {
      read_failed(rows.status(), out);
      co_return;
    }
    read += rows->size();
    end = rows->size() < want;
    for (auto& [k, v] : *rows) {
      if (type_ok && (!args.pattern || glob_match(*args.pattern, k))) keys.push_back(k);
    }
    if (!rows->empty()) from = successor(rows->back().first);
  }
  const uint64_t next = end ? 0 : remember_cursor(c.db, std::move(from));
  out.array(2);
  out.bulk(fmt::format("{}", next));
  out.array(keys.size());
  for (const std::string& k : keys) out.bulk(k);
}

Task<void> RespCommands::cmd_keys(Args& a, ClientState& c, ReplyWriter& out) {
  const std::string pattern = a[1];
  const bool all = pattern == "*";
  std::vector<std::string> keys;
  size_t reply_bytes = 0;  // about what the keys take in the reply
  std::string from;
  while (true) {
    auto rows = co_await read_range(c.db, from, options_.scan_chunk_rows, std::nullopt);
    if (!rows.is_ok()) {
      read_failed(rows.status(), out);
      co_return;
    }
    for (auto& [k, v] : *rows) {
      if (all || glob_match(pattern, k)) {
        reply_bytes += k.size() + 16;
        keys.push_back(k);
      }
    }
    if (keys.size() > options_.keys_reply_max) {
      out.err(
          fmt::format("KEYS would return more than {} keys; use SCAN", options_.keys_reply_max));
      co_return;
    }
    if (reply_bytes > out.bytes_max()) {
      out.err(fmt::format("KEYS would return more than {} bytes; use SCAN", out.bytes_max()));
      co_return;
    }
    if (rows->size() < options_.scan_chunk_rows) break;
    from = successor(rows->back().first);
  }
  out.array(keys.size());
  for (const std::string& k : keys) out.bulk(k);
}

Task<void> RespCommands::cmd_dbsize(ClientState& c, ReplyWriter& out) {
  auto n = co_await count_keys(c.db);
  if (!n.is_ok()) {
    read_failed(n.status(), out);
    co_return;
  }
  out.integer(static_cast<int64_t>(*n));
}

Task<void> RespCommands::cmd_flushdb(Args& a, ClientState& c, ReplyWriter& out, bool all) {
  if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "sync") && !iequals(a[1], "async"))) {
    out.err("syntax error");
    co_return;
  }
  // FLUSHALL empties one database after the other (each as FLUSHDB does).
  uint64_t deleted = 0;
  for (uint32_t db = all ? 0 : c.db; db < (all ? options_.databases : c.db + 1); db++) {
    if (!co_await flush_db(db, all ? "FLUSHALL" : "FLUSHDB", deleted, c, out)) co_return;
  }
  out.ok();
}

Task<bool> RespCommands::flush_db(uint32_t db, std::string_view command, uint64_t& deleted,
                                  ClientState& c, ReplyWriter& out) {
  // Writers of this database wait until the flush is done; readers may see it part done.
  std::vector<std::string> no_keys;
  auto held = co_await lock_keys_at(db, LockMode::kExclusive, std::move(no_keys),
                                    LockMode::kExclusive, out);
  if (!held) co_return false;
  while (true) {
    std::string from;
    auto rows = co_await read_range(db, std::move(from), kFlushBatchKeys, std::nullopt);
    if (!rows.is_ok()) {
      read_failed(rows.status(), out);
      co_return false;
    }
    if (rows->empty()) co_return true;
    std::vector<LogWrite> batch;
    for (auto& [k, v] : *rows) batch.push_back(LogWrite{db_table(db), k, std::nullopt});
    const size_t n = batch.size();
    ReplyWriter failure;
    if (!co_await commit(std::move(batch), c, failure)) {
      std::string why = failure.buffer().substr(1);  // "-CODE message\r\n"
      if (why.size() >= 2) why.resize(why.size() - 2);
      out.error(deleted == 0
                    ? why
                    : fmt::format("TRYAGAIN {} deleted {} keys, then: {}", command, deleted, why));
      co_return false;
    }
    deleted += n;
  }
}

}  // namespace quire::resp
