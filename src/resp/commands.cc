// Dispatch, the connection commands, and the helpers every command shares (reads on either
// role, the write path, limits, error replies). Strings: commands_strings.cc; keyspace:
// commands_keyspace.cc; INFO, CONFIG, COMMAND, WAIT and QUIRE.*: commands_server.cc.
#include "resp/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "engine/btree.h"
#include "repl/log_entry.h"

namespace quire::resp {
namespace {

// Redis 7.0's processCommand message for an unknown command (its name and arguments
// printed as C strings, so each ends at a NUL byte).
std::string unknown_command_message(const std::vector<std::string>& a) {
  std::string args;
  for (size_t i = 1; i < a.size() && args.size() < 128; i++) {
    const size_t room = 128 - args.size();
    args += fmt::format("'{}' ", c_string(a[i]).substr(0, room));
  }
  return fmt::format("unknown command '{}', with args beginning with: {}",
                     c_string(a[0]).substr(0, 128), args);
}

// Redis 7.0's processCommand checks a container command's subcommand, that it exists and
// then its arity, right after the command's own arity and before NOAUTH: the error, if any.
std::optional<std::string> subcommand_error(const CommandSpec& spec,
                                            const std::vector<std::string>& a) {
  if (spec.subcommands.empty() || a.size() < 2) return std::nullopt;
  const std::string sub = lower(a[1]);
  const SubcommandSpec* s = find_subcommand(spec, sub);
  if (s == nullptr) {
    std::string container(spec.name);
    for (char& ch : container) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return fmt::format("unknown subcommand '{}'. Try {} HELP.", c_string(a[1]).substr(0, 128),
                       container);
  }
  if (!arity_ok(s->arity, a.size())) {
    return fmt::format("wrong number of arguments for '{}|{}' command", spec.name, s->name);
  }
  return std::nullopt;
}

}  // namespace

void exec_abort(std::string_view error, ReplyWriter& out) {
  if (error.starts_with('-')) error.remove_prefix(1);
  if (error.ends_with("\r\n")) error.remove_suffix(2);
  out.error(fmt::format("EXECABORT Transaction discarded because of: {}", error));
}

// CLIENT LIST's cmd= for the command `a` names (`spec` its entry, null when unknown): as
// Redis, a container's unknown subcommand names no command.
void note_command(ClientState& c, const CommandSpec* spec, const std::vector<std::string>& a) {
  c.last_command = spec != nullptr ? spec->name : std::string_view();
  c.last_subcommand = {};
  if (spec == nullptr || spec->subcommands.empty() || a.size() < 2) return;
  if (const SubcommandSpec* sub = find_subcommand(*spec, lower(a[1]))) {
    c.last_subcommand = sub->name;
  } else {
    c.last_command = {};
  }
}

namespace {

// The bytes a write occupies in a log entry, over-estimated (varints at their widest).
size_t write_bytes(const LogWrite& w) {
  return 8 + 1 + 10 + w.key.size() + (w.value ? 10 + w.value->size() : 0);
}

bool valid_client_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '!' && ch <= '~'; });
}

std::string too_many_keys(size_t keys) {
  return fmt::format(
      "a command may write at most {} keys at once (Quire's log entry bound, "
      "kLogEntryOpsMax); this one writes {}",
      kLogEntryOpsMax, keys);
}

// A name past kClientNameBytesMax: the reply that refuses it (nullopt: within it). Redis
// has no bound; each connection's name is in every CLIENT LIST line, so here it has one.
std::optional<std::string> client_name_too_long(std::string_view name) {
  if (name.size() <= kClientNameBytesMax) return std::nullopt;
  return fmt::format("Client names are limited to {} bytes in Quire (kClientNameBytesMax)",
                     kClientNameBytesMax);
}

// HELLO's reply: the server's properties as Redis 7.0 lists them (RESP2: a flat array).
void write_hello_reply(uint64_t client_id, bool primary, ReplyWriter& out) {
  out.array(14);
  out.bulk("server");
  out.bulk("redis");
  out.bulk("version");
  out.bulk(kRedisCompatVersion);
  out.bulk("proto");
  out.integer(2);
  out.bulk("id");
  out.integer(static_cast<int64_t>(client_id));
  out.bulk("mode");
  out.bulk("standalone");
  out.bulk("role");
  out.bulk(primary ? "master" : "replica");
  out.bulk("modules");
  out.array(0);
}

}  // namespace

std::string value_too_large(uint64_t bytes) {
  return fmt::format("value is {} bytes; Quire's value limit is {} bytes (kValueBytesMax)", bytes,
                     kValueBytesMax);
}

std::optional<int64_t> parse_int64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  if (s == "0") return 0;
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) i = 1;
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return std::nullopt;
  uint64_t v = 0;
  for (; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > uint64_t{INT64_MAX} + 1) return std::nullopt;
    return static_cast<int64_t>(0 - v);
  }
  if (v > uint64_t{INT64_MAX}) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<uint64_t> parse_scan_cursor(std::string_view s) {
  s = c_string(s);
  if (s.empty()) return 0;  // strtoul converts nothing and stops at the end
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (s[0] == '+' || negative) i = 1;
  if (i >= s.size()) return std::nullopt;  // a sign alone: nothing converted
  uint64_t v = 0;
  for (; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;  // a leading space included
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;  // ERANGE
    v = v * 10 + d;
  }
  return negative ? 0 - v : v;
}

std::vector<TableId> resp_tables(uint32_t databases) {
  std::vector<TableId> out;
  for (uint32_t db = 0; db < databases; db++) out.push_back(db_table(db));
  return out;
}

RespCommands::RespCommands(ReplicaNode& node, RespCommandsOptions options)
    : node_(node),
      options_(std::move(options)),
      locks_(node.env().executor().scheduler()),
      started_at_(node.env().executor().now()) {
  options_.databases = std::clamp<uint32_t>(options_.databases, 1, kDatabasesMax);
  options_.scan_chunk_rows = std::max<size_t>(options_.scan_chunk_rows, 1);
  options_.scan_cursors_max = std::max<size_t>(options_.scan_cursors_max, 1);
  options_.scan_count_max = std::max<size_t>(options_.scan_count_max, 1);
  options_.snapshot_attempts_max = std::max(options_.snapshot_attempts_max, 1);
  command_counters_.resize(command_stat_slots());
  std::unique_ptr<Random> ids = node.env().random_stream("resp run_id");
  run_id_ = fmt::format("{:016x}{:016x}{:08x}", ids->next_u64(), ids->next_u64(),
                        static_cast<uint32_t>(ids->next_u64()));
}

RespCommands::~RespCommands() = default;

void RespCommands::note_lookups(const std::vector<std::optional<std::string>>& values) {
  for (const auto& v : values) (v ? keyspace_hits_ : keyspace_misses_)++;
}

void RespCommands::sample_instant(MonoTime now) {
  if (instant_count_ > 0) {
    const InstantSample& last = instant_[(instant_next_ + instant_.size() - 1) % instant_.size()];
    if (now - last.at < kInstantSampleEvery) return;
  }
  InstantSample& s = instant_[instant_next_];
  s.at = now;
  s.ops = commands_executed_;
  s.in = server_stats_ ? server_stats_->net_input_bytes : 0;
  s.out = server_stats_ ? server_stats_->net_output_bytes : 0;
  instant_next_ = (instant_next_ + 1) % instant_.size();
  instant_count_ = std::min(instant_count_ + 1, instant_.size());
}

std::array<double, 3> RespCommands::instant_rates(MonoTime now) {
  // The newest sample, and the newest at or before the window's start (else the oldest).
  const auto at = [&](size_t back) -> const InstantSample& {
    return instant_[(instant_next_ + instant_.size() - 1 - back) % instant_.size()];
  };
  if (instant_count_ < 2) return {0, 0, 0};
  const InstantSample& newest = at(0);
  size_t back = 1;
  while (back + 1 < instant_count_ && now - at(back).at < kInstantWindow) back++;
  const InstantSample& base = at(back);
  const double seconds = std::chrono::duration<double>(newest.at - base.at).count();
  if (seconds <= 0) return {0, 0, 0};
  return {static_cast<double>(newest.ops - base.ops) / seconds,
          static_cast<double>(newest.in - base.in) / seconds,
          static_cast<double>(newest.out - base.out) / seconds};
}

std::optional<size_t> RespCommands::stat_slot(const CommandSpec& spec, const Args& a) {
  if (spec.subcommands.empty() || a.size() < 2) return command_stat_slot(spec, nullptr);
  const SubcommandSpec* sub = find_subcommand(spec, lower(a[1]));
  if (sub == nullptr) return std::nullopt;  // as Redis: an unknown subcommand is no command
  return command_stat_slot(spec, sub);
}

void RespCommands::count_error(std::string_view reply) {
  if (reply.empty() || reply[0] != '-') return;
  error_replies_++;
  const std::string_view body = reply.substr(1);
  const std::string_view code = body.substr(0, body.find_first_of(" \r"));
  if (auto it = error_counts_.find(code); it != error_counts_.end()) {
    it->second++;
  } else if (error_counts_.size() < kErrorCodesMax) {
    error_counts_.emplace(std::string(code), 1);
  }
}

void RespCommands::record_rejected(const CommandSpec* spec, const Args& a, std::string_view reply) {
  if (spec != nullptr) {
    if (std::optional<size_t> slot = stat_slot(*spec, a)) command_counters_[*slot].rejected++;
  }
  count_error(reply);
}

namespace {

// Redis's sdscatrepr: a quoted string with \\ \" \n \r \t \a \b escaped and every other
// byte outside the printable ASCII range as \xhh.
void append_repr(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    switch (ch) {
      case '\\':
      case '"':
        out += '\\';
        out += ch;
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      default:
        if (ch >= 0x20 && ch <= 0x7e) {
          out += ch;
        } else {
          out += fmt::format("\\x{:02x}", static_cast<uint8_t>(ch));
        }
    }
  }
  out += '"';
}

// A string as a slow log entry keeps it (Redis's slowlogCreateEntry): at most 128 bytes,
// then how many more there were. Client names are cut the same way, so an entry stays
// within about 5 KiB whatever the client sends.
std::string slowlog_string(std::string_view s) {
  constexpr size_t kBytesMax = 128;
  if (s.size() <= kBytesMax) return std::string(s);
  return fmt::format("{}... ({} more bytes)", s.substr(0, kBytesMax), s.size() - kBytesMax);
}

}  // namespace

// As Redis 7.0: admin commands (CONFIG, SLOWLOG, MONITOR, CLIENT LIST and KILL, QUIRE.*)
// are not shown.
bool RespCommands::monitor_sees(const CommandSpec& spec, const Args& a) {
  if ((spec.flags & kFlagAdmin) != 0) return false;
  if (!spec.subcommands.empty() && a.size() > 1) {
    const SubcommandSpec* sub = find_subcommand(spec, lower(a[1]));
    if (sub != nullptr && (sub->flags & kFlagAdmin) != 0) return false;
  }
  return true;
}

// The arguments as a monitor sees them: each quoted (append_repr), a password as
// "(redacted)" (AUTH's arguments, HELLO's after AUTH), as Redis 7.0 redacts them.
std::string RespCommands::monitor_args(const CommandSpec& spec, const Args& a) {
  std::vector<bool> redacted(a.size(), false);
  if (spec.id == CommandId::kAuth) {
    for (size_t j = 1; j < a.size(); j++) redacted[j] = true;
  } else if (spec.id == CommandId::kHello) {
    // helloCommand's walk over its options.
    for (size_t j = 2; j < a.size(); j++) {
      const size_t more = a.size() - 1 - j;
      if (iequals(c_string(a[j]), "auth") && more >= 2) {
        redacted[j + 1] = redacted[j + 2] = true;
        j += 2;
      } else if (iequals(c_string(a[j]), "setname") && more >= 1) {
        j++;
      } else {
        break;
      }
    }
  }
  std::string out;
  for (size_t j = 0; j < a.size(); j++) {
    if (j > 0) out += ' ';
    append_repr(out, redacted[j] ? std::string_view("(redacted)") : std::string_view(a[j]));
  }
  return out;
}

RespCommands::CallStart RespCommands::start_call(const CommandSpec& spec, const Args& a) {
  CallStart call;
  call.slot = stat_slot(spec, a).value_or(0);  // admitted commands name known subcommands
  call.started = node_.env().clock().monotonic_now();
  if (directory_ != nullptr && directory_->monitored() && monitor_sees(spec, a)) {
    call.monitored = true;
    call.monitor_args = monitor_args(spec, a);
  }
  // As Redis: EXEC (its commands are logged one by one) and the commands that carry a
  // password are never logged; nor are the standbys' progress reports.
  const bool never = spec.id == CommandId::kExec || spec.id == CommandId::kAuth ||
                     spec.id == CommandId::kHello || spec.id == CommandId::kQuireReport;
  if (never || options_.slowlog_log_slower_than < Nanos(0) || options_.slowlog_max_len == 0) {
    return call;
  }
  // Redis's slowlogCreateEntry: at most 32 arguments (the last one saying how many more
  // there were), each cut at 128 bytes (saying how many more there were).
  constexpr size_t kArgsMax = 32;
  const size_t n = std::min(a.size(), kArgsMax);
  // CONFIG SET's values may be secrets (requirepass): as Redis 7.0 redacts them.
  const bool config_set = spec.id == CommandId::kConfig && a.size() > 1 && iequals(a[1], "set");
  call.args.reserve(n);
  for (size_t j = 0; j < n; j++) {
    if (n != a.size() && j == n - 1) {
      call.args.push_back(fmt::format("... ({} more arguments)", a.size() - n + 1));
    } else if (config_set && j >= 3 && j % 2 == 1) {
      call.args.emplace_back("(redacted)");
    } else {
      call.args.push_back(slowlog_string(a[j]));
    }
  }
  return call;
}

void RespCommands::record_call(CallStart& call, ClientState& c, std::string_view reply) {
  CommandCounters& k = command_counters_[call.slot];
  // The clock, not the scheduler's time of the current event: a command's own CPU counts.
  const MonoTime now = node_.env().clock().monotonic_now();
  const Nanos took = now - call.started;
  sample_instant(now);
  if (call.monitored && directory_ != nullptr) {
    // As Redis's replicationFeedMonitors, once the command ran: its database then (SELECT's
    // new one) and the client's address.
    const int64_t us = node_.env().clock().wall_now_ns() / 1000;
    const std::string line = fmt::format("+{}.{:06} [{} {}] {}\r\n", us / 1'000'000, us % 1'000'000,
                                         c.db, c.address, call.monitor_args);
    directory_->feed_monitors(line, c.id);
    if (c.monitor && !c.replies_dropped()) c.monitor_echo += line;
  }
  k.calls++;
  k.time += took;
  if (!reply.empty() && reply[0] == '-') {
    k.failed++;
    count_error(reply);
  }
  if (call.args.empty() || took < options_.slowlog_log_slower_than) return;
  slowlog_.push_front(
      SlowlogEntry{slowlog_next_id_++, node_.env().clock().wall_now_ns() / 1'000'000'000,
                   std::chrono::duration_cast<std::chrono::microseconds>(took).count(),
                   std::move(call.args), slowlog_string(c.address), slowlog_string(c.name)});
  while (slowlog_.size() > options_.slowlog_max_len) slowlog_.pop_back();
}

// ---- Roles ------------------------------------------------------------------------------

std::string_view RespCommands::role_name(Role r) {
  switch (r) {
    case Role::kPrimary:
      return "primary";
    case Role::kStandby:
      return "standby";
    case Role::kLoading:
      return "loading";
  }
  return "loading";
}

RespCommands::Serving RespCommands::serving() {
  Serving s;
  if (Primary* p = node_.primary()) {
    const bool lease_ok = !p->may_acknowledge || p->may_acknowledge();
    if (p->running() && lease_ok) {
      s.role = Role::kPrimary;
      s.primary = p;
      return s;
    }
    if (p->state() == PrimaryState::kStopped && !node_.started()) {
      s.loading_reason = "the primary is starting";
    } else {
      s.loading_reason = fmt::format("this node's primary is {} and steps down to a standby",
                                     lease_ok ? primary_state_name(p->state()) : "deposed");
    }
    return s;
  }
  if (Standby* sb = node_.standby()) {
    s.standby = sb;
    switch (sb->state()) {
      case StandbyState::kSecondary:
        s.role = Role::kStandby;
        return s;
      case StandbyState::kStartup:
        s.loading_reason = "the standby is starting (loading the latest checkpoint)";
        break;
      case StandbyState::kCatchingUp:
        s.loading_reason = "the standby is catching up with the log";
        break;
      case StandbyState::kResync:
        s.loading_reason = sb->resync_error().is_ok()
                               ? std::string("the standby is re-syncing")
                               : fmt::format("the standby is re-syncing (last attempt: {})",
                                             sb->resync_error().to_string());
        break;
    }
    return s;
  }
  s.loading_reason = "the node has no role yet";
  return s;
}

void RespCommands::refuse_write(const Serving& s, ReplyWriter& out) {
  if (Primary* p = node_.primary();
      p && s.role == Role::kLoading && !p->ended() && p->state() == PrimaryState::kStopped) {
    out.error(fmt::format("LOADING {}", s.loading_reason));
    return;
  }
  if (options_.primary_address && !options_.primary_address()) {
    out.error("MASTERDOWN no primary is known to this node (no leader elected); retry later");
    return;
  }
  out.error("READONLY You can't write against a read only replica.");
}

// ---- Dispatch ---------------------------------------------------------------------------

Task<void> RespCommands::execute(std::vector<std::string> args, ClientState& client,
                                 ReplyWriter& out) {
  if (args.empty()) {
    out.err("empty command");
    co_return;
  }
  const MonoTime started = node_.env().clock().monotonic_now();
  const size_t mark = out.size();
  const auto reply = [&] { return std::string_view(out.buffer()).substr(mark); };
  const CommandSpec* spec = find_command(lower(args[0]));
  note_command(client, spec, args);
  // After MULTI a refused command discards the transaction (EXEC answers EXECABORT).
  const auto refused = [&] {
    commands_rejected_++;
    if (client.multi) client.multi->dirty = true;
    record_rejected(spec, args, reply());
  };
  if (spec == nullptr) {
    out.err(unknown_command_message(args));
    refused();
    co_return;
  }
  // Redis 7.0 answers a refused EXEC with EXECABORT and the refusal, and drops the
  // transaction (even without one: EXEC before AUTH).
  const auto exec_refused = [&](std::string_view error) {
    commands_rejected_++;
    client.multi.reset();
    unwatch_all(client);
    exec_abort(error, out);
    record_rejected(spec, args, reply());
  };
  if (!arity_ok(spec->arity, args.size())) {
    const std::string e = fmt::format("wrong number of arguments for '{}' command", spec->name);
    if (spec->id == CommandId::kExec) {
      exec_refused(e);
      co_return;
    }
    out.err(e);
    refused();
    co_return;
  }
  if (std::optional<std::string> e = subcommand_error(*spec, args)) {
    out.err(*e);
    refused();
    co_return;
  }
  ReplyWriter refusal;
  if (!admit(*spec, client, refusal)) {
    if (spec->id == CommandId::kExec) {
      exec_refused(refusal.buffer());
      co_return;
    }
    out.append(refusal);
    refused();
    co_return;
  }
  if (client.multi && spec->id != CommandId::kExec && spec->id != CommandId::kDiscard &&
      spec->id != CommandId::kMulti && spec->id != CommandId::kQuit &&
      spec->id != CommandId::kWatch && spec->id != CommandId::kReset) {
    queue_in_multi(*spec, args, client, out);
    co_return;
  }
  commands_executed_++;
  CallStart call = start_call(*spec, args);  // before the command moves its arguments
  call.started = started;
  co_await run(*spec, args, client, out);
  record_call(call, client, reply());
}

bool RespCommands::execute_now(Args& args, ClientState& client, ReplyWriter& out) {
  if (args.empty() || client.multi) return false;  // execute() queues after MULTI
  const CommandSpec* spec = find_command(lower(args[0]));
  note_command(client, spec, args);
  if (spec == nullptr || !arity_ok(spec->arity, args.size())) return false;
  if (subcommand_error(*spec, args)) return false;  // execute() answers it
  if (spec->id == CommandId::kExec) return false;   // even refused: execute() answers it
  const size_t mark = out.size();
  const auto reply = [&] { return std::string_view(out.buffer()).substr(mark); };
  if (!admit(*spec, client, out)) {
    commands_rejected_++;
    record_rejected(spec, args, reply());
    return true;
  }
  // admit() let it through without writing anything: execute() may still run it.
  const MonoTime started = node_.env().clock().monotonic_now();
  if (!run_immediate(*spec, args, client, out) &&
      !(spec->id == CommandId::kGet && get_now(client.db, args[1], out))) {
    return false;
  }
  commands_executed_++;
  // These commands leave their arguments as they were: the call's start is taken after them
  // (no copy of the arguments for a GET that execute() will run instead).
  CallStart call = start_call(*spec, args);
  call.started = started;
  record_call(call, client, reply());
  return true;
}

bool RespCommands::get_now(uint32_t db, std::string_view key, ReplyWriter& out) {
  Serving s = serving();
  std::optional<std::optional<std::string>> value;
  if (s.role == Role::kPrimary) {
    value = s.primary->get_cached(db_table(db), key);
  } else if (s.role == Role::kStandby) {
    if (auto r = s.standby->get_cached(db_table(db), key)) value = std::move(r->value);
  }
  if (!value) return false;
  (*value ? keyspace_hits_ : keyspace_misses_)++;
  if (*value) {
    out.bulk(**value);
  } else {
    out.null_bulk();
  }
  return true;
}

bool RespCommands::admit(const CommandSpec& spec, ClientState& c, ReplyWriter& out) {
  if (!options_.requirepass.empty() && !c.authenticated && (spec.flags & kFlagNoAuth) == 0) {
    out.error("NOAUTH Authentication required.");
    return false;
  }
  if ((spec.flags & (kFlagWrite | kFlagReadonly)) == 0) return true;
  if (c.monitor) {
    out.err("Replica can't interact with the keyspace");
    return false;
  }
  Serving s = serving();
  if ((spec.flags & kFlagWrite) != 0 && s.role != Role::kPrimary) {
    refuse_write(s, out);
    return false;
  }
  if ((spec.flags & kFlagReadonly) != 0 && s.role == Role::kLoading) {
    out.error(fmt::format("LOADING {}", s.loading_reason));
    return false;
  }
  return true;
}

bool RespCommands::run_immediate(const CommandSpec& spec, Args& a, ClientState& c,
                                 ReplyWriter& out) {
  switch (spec.id) {
    case CommandId::kPing:
      cmd_ping(a, out);
      return true;
    case CommandId::kEcho:
      out.bulk(a[1]);
      return true;
    case CommandId::kQuit:
      c.close_after_reply = true;
      out.ok();
      return true;
    case CommandId::kMulti:
      if (c.multi) {
        out.err("MULTI calls can not be nested");
      } else {
        c.multi.emplace();
        out.ok();
      }
      return true;
    case CommandId::kDiscard:
      if (!c.multi) {
        out.err("DISCARD without MULTI");
      } else {
        c.multi.reset();
        unwatch_all(c);
        out.ok();
      }
      return true;
    case CommandId::kUnwatch:
      unwatch_all(c);
      out.ok();
      return true;
    case CommandId::kHello:
      cmd_hello(a, c, out);
      return true;
    case CommandId::kReset:
      cmd_reset(c, out);
      return true;
    case CommandId::kAuth:
      cmd_auth(a, c, out);
      return true;
    case CommandId::kSelect:
      cmd_select(a, c, out);
      return true;
    case CommandId::kClient:
      cmd_client(a, c, out);
      return true;
    case CommandId::kConfig:
      cmd_config(a, out);
      return true;
    case CommandId::kSlowlog:
      cmd_slowlog(a, out);
      return true;
    case CommandId::kMonitor:
      // The server adds the connection to its monitors once this reply is flushed. (Redis
      // answers a second MONITOR with nothing; every command here has one reply.)
      c.monitor = true;
      out.ok();
      return true;
    case CommandId::kCommand:
      cmd_command(a, out);
      return true;
    case CommandId::kTime: {
      const int64_t us = node_.env().clock().wall_now_ns() / 1000;
      out.array(2);
      out.bulk(fmt::format("{}", us / 1'000'000));
      out.bulk(fmt::format("{}", us % 1'000'000));
      return true;
    }
    case CommandId::kRole:
      cmd_role(out);
      return true;
    default:
      return false;
  }
}

Task<void> RespCommands::run(const CommandSpec& spec, Args& a, ClientState& c, ReplyWriter& out) {
  if (run_immediate(spec, a, c, out)) co_return;
  switch (spec.id) {
    case CommandId::kGet:
      co_return co_await cmd_get(a, c, out);
    case CommandId::kSet:
      co_return co_await cmd_set(a, c, out);
    case CommandId::kSetNx:
      co_return co_await cmd_setnx(a, c, out);
    case CommandId::kDel:
      co_return co_await cmd_del(a, c, out);
    case CommandId::kExists:
      co_return co_await cmd_exists(a, c, out);
    case CommandId::kStrlen:
      co_return co_await cmd_strlen(a, c, out);
    case CommandId::kType:
    case CommandId::kTtl:
    case CommandId::kPttl:
      co_return co_await cmd_type_ttl(a, c, out, spec.id);
    case CommandId::kMget:
      co_return co_await cmd_mget(a, c, out);
    case CommandId::kMset:
    case CommandId::kMsetNx:
      co_return co_await cmd_mset(a, c, out, spec.id == CommandId::kMsetNx);
    case CommandId::kIncr:
    case CommandId::kIncrBy:
    case CommandId::kDecr:
    case CommandId::kDecrBy: {
      const bool decr = spec.id == CommandId::kDecr || spec.id == CommandId::kDecrBy;
      const bool by = spec.id == CommandId::kIncrBy || spec.id == CommandId::kDecrBy;
      co_return co_await cmd_incr(a, c, out, decr ? -1 : 1, by);
    }
    case CommandId::kUnlink:
      co_return co_await cmd_del(a, c, out);
    case CommandId::kGetDel:
      co_return co_await cmd_getdel(a, c, out);
    case CommandId::kGetSet: {
      a.emplace_back("GET");  // SET key value GET, which it is
      co_return co_await cmd_set(a, c, out);
    }
    case CommandId::kAppend:
      co_return co_await cmd_append(a, c, out);
    case CommandId::kGetRange:
    case CommandId::kSubstr:
      co_return co_await cmd_getrange(a, c, out);
    case CommandId::kSetRange:
      co_return co_await cmd_setrange(a, c, out);
    case CommandId::kIncrByFloat:
      co_return co_await cmd_incrbyfloat(a, c, out);
    case CommandId::kSetBit:
      co_return co_await cmd_setbit(a, c, out);
    case CommandId::kGetBit:
      co_return co_await cmd_getbit(a, c, out);
    case CommandId::kBitCount:
      co_return co_await cmd_bitcount(a, c, out);
    case CommandId::kBitPos:
      co_return co_await cmd_bitpos(a, c, out);
    case CommandId::kBitOp:
      co_return co_await cmd_bitop(a, c, out);
    case CommandId::kBitField:
    case CommandId::kBitFieldRo:
      co_return co_await cmd_bitfield(a, c, out, spec.id == CommandId::kBitFieldRo);
    case CommandId::kLcs:
      co_return co_await cmd_lcs(a, c, out);
    case CommandId::kCopy:
      co_return co_await cmd_copy(a, c, out);
    case CommandId::kMove:
      co_return co_await cmd_move(a, c, out);
    case CommandId::kRename:
    case CommandId::kRenameNx:
      co_return co_await cmd_rename(a, c, out, spec.id == CommandId::kRenameNx);
    case CommandId::kTouch:
      co_return co_await cmd_exists(a, c, out);  // Redis counts the same way
    case CommandId::kPersist:
      out.integer(0);  // no key has an expiration to remove
      co_return;
    case CommandId::kScan:
      co_return co_await cmd_scan(a, c, out);
    case CommandId::kKeys:
      co_return co_await cmd_keys(a, c, out);
    case CommandId::kDbSize:
      co_return co_await cmd_dbsize(c, out);
    case CommandId::kFlushDb:
    case CommandId::kFlushAll:
      co_return co_await cmd_flushdb(a, c, out, spec.id == CommandId::kFlushAll);
    case CommandId::kSetEx:
    case CommandId::kPSetEx:
    case CommandId::kExpire:
    case CommandId::kPExpire:
    case CommandId::kExpireAt:
    case CommandId::kPExpireAt: {
      std::string name(spec.name);
      for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out.err(fmt::format("{} is not supported: Quire keys never expire", name));
      co_return;
    }
    case CommandId::kGetEx:
      co_return co_await cmd_getex(a, c, out);
    case CommandId::kExpireTime:
    case CommandId::kPExpireTime:
      co_return co_await cmd_type_ttl(a, c, out, CommandId::kTtl);  // -1 or -2, as TTL
    case CommandId::kInfo:
      co_return co_await cmd_info(a, out);
    case CommandId::kWait:
      co_return co_await cmd_wait(a, c, out);
    case CommandId::kMemory:
      co_return co_await cmd_memory(a, c, out);
    case CommandId::kExec:
      co_return co_await cmd_exec(c, out);
    case CommandId::kWatch:
      co_return co_await cmd_watch(a, c, out);
    case CommandId::kQuireReport:
      c.standby_link = true;  // CLIENT LIST: a replica's link
      co_return co_await cmd_quire(spec, a, out);
    default:  // QUIRE.*
      co_return co_await cmd_quire(spec, a, out);
  }
}

// ---- Connection -------------------------------------------------------------------------

void RespCommands::cmd_ping(Args& a, ReplyWriter& out) {
  if (a.size() > 2) {
    out.err("wrong number of arguments for 'ping' command");
  } else if (a.size() == 2) {
    out.bulk(a[1]);
  } else {
    out.simple("PONG");
  }
}

void RespCommands::cmd_hello(Args& a, ClientState& c, ReplyWriter& out) {
  if (a.size() >= 2) {
    std::optional<int64_t> ver = parse_int64(a[1]);
    if (!ver) {
      out.err("Protocol version is not an integer or out of range");
      return;
    }
    // Quire speaks RESP2 only: HELLO 3 is refused as by a server without RESP3.
    if (*ver != 2) {
      out.error("NOPROTO unsupported protocol version");
      return;
    }
  }
  // Redis 7.0 applies each option as it reads it: an AUTH or a SETNAME before a failing
  // option stays applied, and a name is set even before the NOAUTH below.
  for (size_t j = 2; j < a.size(); j++) {
    const size_t more = a.size() - 1 - j;
    const std::string opt = lower(a[j]);
    if (opt == "auth" && more >= 2) {
      const bool ok = a[j + 1] == "default" &&
                      (options_.requirepass.empty() || a[j + 2] == options_.requirepass);
      if (!ok) {
        out.error("WRONGPASS invalid username-password pair or user is disabled.");
        return;
      }
      c.authenticated = true;
      j += 2;
    } else if (opt == "setname" && more >= 1) {
      if (!valid_client_name(a[j + 1])) {
        out.err("Client names cannot contain spaces, newlines or special characters.");
        return;
      }
      if (auto refused = client_name_too_long(a[j + 1])) {
        out.err(*refused);
        return;
      }
      c.name = a[j + 1];
      j++;
    } else {
      out.err(fmt::format("Syntax error in HELLO option '{}'", c_string(a[j])));
      return;
    }
  }
  if (!options_.requirepass.empty() && !c.authenticated) {
    out.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return;
  }
  write_hello_reply(c.id, serving().role == Role::kPrimary, out);
}

void RespCommands::cmd_auth(Args& a, ClientState& c, ReplyWriter& out) {
  if (a.size() > 3) {
    out.err("syntax error");
    return;
  }
  if (a.size() == 2 && options_.requirepass.empty()) {
    out.err(
        "AUTH <password> called without any password configured for the default user. Are you "
        "sure your configuration is correct?");
    return;
  }
  const std::string& user = a.size() == 3 ? a[1] : std::string("default");
  const std::string& pass = a.back();
  if (user != "default" || (!options_.requirepass.empty() && pass != options_.requirepass)) {
    out.error("WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  c.authenticated = true;
  out.ok();
}

std::optional<uint32_t> RespCommands::parse_db(std::string_view arg, ReplyWriter& out) const {
  // Redis reads the index as a long long, then checks it against an int's range.
  std::optional<int64_t> db = parse_int64(arg);
  if (!db) {
    out.err("value is not an integer or out of range");
    return std::nullopt;
  }
  if (*db < INT32_MIN || *db > INT32_MAX) {
    out.err("value is out of range, value must between -2147483648 and 2147483647");
    return std::nullopt;
  }
  if (*db < 0 || *db >= static_cast<int64_t>(options_.databases)) {
    out.err("DB index is out of range");
    return std::nullopt;
  }
  return static_cast<uint32_t>(*db);
}

void RespCommands::cmd_select(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<uint32_t> db = parse_db(a[1], out);
  if (!db) return;
  c.db = *db;
  out.ok();
}

// As Redis 7.0's RESET (clearClientConnectionState): the connection as new, its id kept.
void RespCommands::cmd_reset(ClientState& c, ReplyWriter& out) {
  if (c.standby_link) {
    out.err("can only reset normal client connections");
    return;
  }
  c.multi.reset();
  unwatch_all(c);
  c.db = 0;
  c.name.clear();
  c.authenticated = options_.requirepass.empty();
  c.reply_off = false;
  c.reply_skip_next = false;
  c.monitor = false;  // the server drops it from its monitors once this reply is flushed
  out.simple("RESET");
}

void RespCommands::cmd_client(Args& a, ClientState& c, ReplyWriter& out) {
  // The dispatcher checked the subcommand and its arity (command_table.cc).
  const std::string sub = lower(a[1]);
  if (sub == "id") {
    out.integer(static_cast<int64_t>(c.id));
  } else if (sub == "getname") {
    if (c.name.empty()) {
      out.null_bulk();
    } else {
      out.bulk(c.name);
    }
  } else if (sub == "setname") {
    if (!valid_client_name(a[2])) {
      out.err("Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    if (auto refused = client_name_too_long(a[2])) {
      out.err(*refused);
      return;
    }
    c.name = a[2];
    out.ok();
  } else if (sub == "info") {
    out.bulk(client_info_line(c) + "\n");
  } else if (sub == "list") {
    client_list(a, c, out);
  } else if (sub == "kill") {
    client_kill(a, c, out);
  } else if (sub == "reply") {
    // As Redis 7.0: OFF and SKIP answer nothing themselves (the server drops the replies).
    const std::string_view mode = c_string(a[2]);
    if (iequals(mode, "on")) {
      c.reply_off = false;
      c.reply_skip = false;
      out.ok();
    } else if (iequals(mode, "off")) {
      c.reply_off = true;
    } else if (iequals(mode, "skip")) {
      if (!c.reply_off) c.reply_skip_next = true;
    } else {
      out.err("syntax error");
    }
  } else {
    help_reply({"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ID",
                "    Return the ID of the current connection.",
                "GETNAME",
                "    Return the name of the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "HELP",
                "    Print this help."},
               out);
  }
}

// Redis 7.0's fields; those of buffers and memory Quire does not keep per client are 0.
std::string RespCommands::client_info_line(const ClientState& c) {
  const MonoTime now = node_.env().executor().now();
  const auto secs = [](Nanos d) { return std::chrono::duration_cast<std::chrono::seconds>(d); };
  std::string cmd = "NULL";
  if (!c.last_command.empty()) {
    cmd = c.last_subcommand.empty() ? std::string(c.last_command)
                                    : fmt::format("{}|{}", c.last_command, c.last_subcommand);
  }
  std::string flags;
  if (c.standby_link) flags += 'S';
  if (c.monitor) flags += 'O';
  if (c.multi) flags += 'x';
  if (c.close_after_reply) flags += 'c';
  if (flags.empty()) flags = "N";
  return fmt::format(
      "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 "
      "multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
      "tot-mem=0 events=r cmd={} user=default redir=-1 resp=2",
      c.id, c.address, c.local_address, c.name, secs(now - c.connected_at).count(),
      secs(now - c.last_command_at).count(), flags, c.db,
      c.multi ? static_cast<int64_t>(c.multi->queued.size()) : -1, cmd);
}

namespace {

// CLIENT LIST/KILL TYPE: Redis's client types. Quire's clients are normal ones, or a
// standby's progress link (a replica); it has no masters or pub/sub clients.
enum class ClientType : uint8_t { kNormal, kReplica, kMaster, kPubsub };

std::optional<ClientType> client_type_named(std::string_view name) {
  if (iequals(c_string(name), "normal")) return ClientType::kNormal;
  if (iequals(c_string(name), "slave") || iequals(c_string(name), "replica"))
    return ClientType::kReplica;
  if (iequals(c_string(name), "master")) return ClientType::kMaster;
  if (iequals(c_string(name), "pubsub")) return ClientType::kPubsub;
  return std::nullopt;
}

ClientType client_type(const ClientState& c) {
  return c.standby_link ? ClientType::kReplica : ClientType::kNormal;
}

}  // namespace

// CLIENT LIST [TYPE type | ID id ...], as Redis 7.0 parses it.
void RespCommands::client_list(Args& a, ClientState& c, ReplyWriter& out) {
  std::vector<const ClientState*> all;
  if (directory_ != nullptr) all = directory_->connected();
  if (all.empty()) all.push_back(&c);  // no directory: the caller alone
  std::string text;
  const auto add = [&](const ClientState& each) { text += client_info_line(each) + "\n"; };
  if (a.size() == 4 && iequals(c_string(a[2]), "type")) {
    std::optional<ClientType> type = client_type_named(a[3]);
    if (!type) {
      out.err(fmt::format("Unknown client type '{}'", c_string(a[3])));
      return;
    }
    for (const ClientState* each : all) {
      if (client_type(*each) == *type) add(*each);
    }
  } else if (a.size() > 3 && iequals(c_string(a[2]), "id")) {
    std::vector<int64_t> ids;
    for (size_t j = 3; j < a.size(); j++) {
      std::optional<int64_t> id = parse_int64(a[j]);
      if (!id) {
        out.err("Invalid client ID");
        return;
      }
      ids.push_back(*id);
    }
    for (int64_t id : ids) {  // in the order asked, repeats repeated, as Redis
      // Past what one reply may hold, the rest would only be thrown away: the reply
      // overflows and the connection closes (an ID repeated millions of times).
      if (text.size() > out.bytes_max()) break;
      for (const ClientState* each : all) {
        if (static_cast<int64_t>(each->id) == id) add(*each);
      }
    }
  } else if (a.size() != 2) {
    out.err("syntax error");
    return;
  } else {
    for (const ClientState* each : all) add(*each);
  }
  out.bulk(text);
}

// CLIENT KILL addr (the old form: may kill the caller; "+OK" or "No such client"), or
// CLIENT KILL filter value [filter value ...] (the count killed; SKIPME yes by default).
// The caller, when it matches, is closed after this reply.
void RespCommands::client_kill(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<std::string> addr, laddr;
  std::optional<ClientType> type;
  uint64_t id = 0;
  bool skipme = true;
  const bool old_form = a.size() == 3;
  if (old_form) {
    addr = std::string(c_string(a[2]));
    skipme = false;
  } else {
    for (size_t i = 2; i < a.size(); i += 2) {
      if (i + 1 >= a.size()) {
        out.err("syntax error");
        return;
      }
      const std::string_view option = c_string(a[i]);
      const std::string& value = a[i + 1];
      if (iequals(option, "id")) {
        std::optional<int64_t> v = parse_int64(value);
        if (!v || *v < 1) {
          out.err("client-id should be greater than 0");
          return;
        }
        id = static_cast<uint64_t>(*v);
      } else if (iequals(option, "type")) {
        type = client_type_named(value);
        if (!type) {
          out.err(fmt::format("Unknown client type '{}'", c_string(value)));
          return;
        }
      } else if (iequals(option, "addr")) {
        addr = std::string(c_string(value));
      } else if (iequals(option, "laddr")) {
        laddr = std::string(c_string(value));
      } else if (iequals(option, "user")) {
        if (value != "default") {  // Redis looks the whole name up
          out.err(fmt::format("No such user '{}'", c_string(value)));
          return;
        }
      } else if (iequals(option, "skipme")) {
        if (iequals(c_string(value), "yes")) {
          skipme = true;
        } else if (iequals(c_string(value), "no")) {
          skipme = false;
        } else {
          out.err("syntax error");
          return;
        }
      } else {
        out.err("syntax error");
        return;
      }
    }
  }
  std::vector<const ClientState*> all;
  if (directory_ != nullptr) all = directory_->connected();
  if (all.empty()) all.push_back(&c);
  std::vector<uint64_t> victims;
  bool this_one = false;
  for (const ClientState* each : all) {
    if (addr && each->address != *addr) continue;
    if (laddr && each->local_address != *laddr) continue;
    if (type && client_type(*each) != *type) continue;
    if (id != 0 && each->id != id) continue;
    if (each->id == c.id) {
      if (skipme) continue;
      this_one = true;
    } else {
      victims.push_back(each->id);
    }
  }
  // `all` points into the directory: kill only once done reading it.
  size_t killed = this_one ? 1 : 0;
  for (uint64_t v : victims) {
    if (directory_->kill(v)) killed++;
  }
  if (old_form) {
    if (killed == 0) {
      out.err("No such client");
    } else {
      out.ok();
    }
  } else {
    out.integer(static_cast<int64_t>(killed));
  }
  if (this_one) c.close_after_reply = true;
}

// ---- Shared helpers ---------------------------------------------------------------------

Timestamp RespCommands::applied_ts() {
  Serving s = serving();
  if (s.primary) return s.primary->applied_ts();
  if (s.standby) return s.standby->applied_ts();
  return Timestamp();
}

Status RespCommands::read_too_large() const {
  return Status(Code::kInvalidArgument,
                fmt::format("the values read pass {} bytes (Quire's read_bytes_max, a reply's "
                            "bound); read fewer keys at once",
                            options_.read_bytes_max));
}

void RespCommands::read_failed(const Status& st, ReplyWriter& out) {
  if (st.code() == Code::kInvalidArgument) {  // a bound of the read's (read_too_large)
    out.err(st.message());
  } else if (st.code() == Code::kUnavailable) {
    out.error(fmt::format("LOADING {}", st.message()));
  } else if (st.code() == Code::kOlder || st.retriable()) {
    out.error(fmt::format("TRYAGAIN read not answered, retry: {}", st.to_string()));
  } else {
    out.err(fmt::format("read failed: {}", st.to_string()));
  }
}

Task<Result<std::vector<std::optional<std::string>>>> RespCommands::read_keys(
    ClientState& c, std::vector<std::string> keys) {
  if (c.exec == nullptr) co_return co_await read_keys_at(c.db, std::move(keys));
  // Inside EXEC: the transaction's own writes first, the node for the rest.
  ExecOverlay& tx = *c.exec;
  std::vector<std::optional<std::string>> values(keys.size());
  std::vector<std::string> missing;
  std::vector<size_t> missing_at;
  size_t bytes = 0;  // of the transaction's own values read (the node's: read_keys_at's)
  for (size_t i = 0; i < keys.size(); i++) {
    if (auto it = tx.values.find(keys[i]); it != tx.values.end()) {
      if (it->second && (bytes += it->second->size()) > options_.read_bytes_max) {
        Status st = read_too_large();
        if (tx.failed.is_ok()) tx.failed = st;
        co_return st;
      }
      values[i] = it->second;
    } else {
      missing.push_back(keys[i]);
      missing_at.push_back(i);
    }
  }
  if (!missing.empty()) {
    auto read = co_await read_keys_at(c.db, std::move(missing));
    if (!read.is_ok()) {
      if (tx.failed.is_ok()) tx.failed = read.status();
      co_return read.status();
    }
    for (size_t j = 0; j < missing_at.size(); j++) values[missing_at[j]] = std::move((*read)[j]);
  }
  co_return values;
}

Task<Result<std::vector<std::optional<std::string>>>> RespCommands::read_keys_at(
    uint32_t db, std::vector<std::string> keys) {
  const TableId table = db_table(db);
  Status last;
  for (int attempt = 0; attempt < options_.snapshot_attempts_max; attempt++) {
    Serving s = serving();
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    bool overtaken = false;
    size_t bytes = 0;
    if (s.role == Role::kPrimary) {
      const Timestamp ts = s.primary->applied_ts();
      for (const std::string& k : keys) {
        auto r = co_await s.primary->get(table, k, ts);
        if (!r.is_ok()) {
          if (r.code() != Code::kOlder) co_return r.status();
          last = r.status();
          overtaken = true;
          break;
        }
        if (*r && (bytes += (*r)->size()) > options_.read_bytes_max) co_return read_too_large();
        values.push_back(std::move(*r));
      }
    } else if (s.role == Role::kStandby) {
      const Timestamp ts = s.standby->applied_ts();
      for (const std::string& k : keys) {
        auto r = co_await s.standby->get(table, k, ts);
        if (!r.is_ok()) {
          if (r.code() != Code::kOlder) co_return r.status();
          last = r.status();
          overtaken = true;
          break;
        }
        if (r->value && (bytes += r->value->size()) > options_.read_bytes_max) {
          co_return read_too_large();
        }
        values.push_back(std::move(r->value));
      }
    } else {
      co_return Status(Code::kUnavailable, s.loading_reason);
    }
    if (!overtaken) {
      note_lookups(values);
      co_return values;
    }
  }
  co_return last;
}

Task<Result<std::vector<std::pair<std::string, std::string>>>> RespCommands::read_range(
    uint32_t db, std::string from, size_t limit, std::optional<Timestamp> ts) {
  const TableId table = db_table(db);
  std::string to;
  Serving s = serving();
  if (s.role == Role::kPrimary) {
    co_return co_await s.primary->scan(table, std::move(from), std::move(to), limit, ts);
  }
  if (s.role == Role::kStandby) {
    auto r = co_await s.standby->scan(table, std::move(from), std::move(to), limit, ts);
    if (!r.is_ok()) co_return r.status();
    co_return std::move(r->value);
  }
  co_return Status(Code::kUnavailable, s.loading_reason);
}

Task<Result<uint64_t>> RespCommands::count_keys(uint32_t db) {
  Status last;
  for (int attempt = 0; attempt < options_.snapshot_attempts_max; attempt++) {
    const Timestamp ts = applied_ts();
    uint64_t count = 0;
    std::string from;
    bool overtaken = false;
    while (true) {
      auto rows = co_await read_range(db, from, options_.scan_chunk_rows, ts);
      if (!rows.is_ok()) {
        if (rows.code() != Code::kOlder) co_return rows.status();
        last = rows.status();
        overtaken = true;
        break;
      }
      count += rows->size();
      if (rows->size() < options_.scan_chunk_rows) break;
      from = rows->back().first;
      from.push_back('\0');
    }
    if (!overtaken) co_return count;
  }
  co_return last;
}

Task<std::optional<std::optional<std::string>>> RespCommands::read_one(ClientState& c,
                                                                       const std::string& key,
                                                                       ReplyWriter& out) {
  std::vector<std::string> keys{key};
  auto read = co_await read_keys(c, std::move(keys));
  if (!read.is_ok()) {
    read_failed(read.status(), out);
    co_return std::nullopt;
  }
  co_return std::move((*read)[0]);
}

Task<std::optional<RespCommands::LockedRead>> RespCommands::read_locked(ClientState& c,
                                                                        const std::string& key,
                                                                        ReplyWriter& out) {
  std::vector<std::string> keys{key};
  auto held =
      co_await lock_for_write(c, LockMode::kShared, std::move(keys), LockMode::kExclusive, out);
  if (!held) co_return std::nullopt;
  auto value = co_await read_one(c, key, out);
  if (!value) co_return std::nullopt;
  co_return LockedRead{std::move(*held), std::move(*value)};
}

Task<std::optional<HeldLocks>> RespCommands::lock_for_write(ClientState& c, LockMode db_mode,
                                                            std::vector<std::string> keys,
                                                            LockMode mode, ReplyWriter& out) {
  if (c.exec != nullptr) co_return HeldLocks();  // EXEC holds every key of the transaction
  // Refused before any lock is taken or key read: a command over the bound would only be
  // refused once it had held them all (DEL of millions of keys).
  if (keys.size() > kLogEntryOpsMax) {
    out.err(too_many_keys(keys.size()));
    co_return std::nullopt;
  }
  co_return co_await lock_keys_at(c.db, db_mode, std::move(keys), mode, out);
}

Task<std::optional<HeldLocks>> RespCommands::lock_keys_at(uint32_t db, LockMode db_mode,
                                                          std::vector<std::string> keys,
                                                          LockMode mode, ReplyWriter& out) {
  const Deadline deadline = node_.env().executor().deadline_after(options_.lock_wait_max);
  auto held = co_await locks_.lock(db, db_mode, std::move(keys), mode, deadline);
  if (!held.is_ok()) {
    out.error(
        fmt::format("TRYAGAIN write not committed: its keys stayed locked by other "
                    "commands ({}); retry",
                    held.status().to_string()));
    co_return std::nullopt;
  }
  co_return std::move(*held);
}

bool RespCommands::within_limits(const std::vector<LogWrite>& batch, ReplyWriter& out) {
  if (batch.size() > kLogEntryOpsMax) {
    out.err(too_many_keys(batch.size()));
    return false;
  }
  size_t bytes = kLogEntryHeaderBytes;
  for (const LogWrite& w : batch) {
    if (w.key.size() > kKeyBytesMax) {
      out.err(fmt::format("key is {} bytes; Quire's key limit is {} bytes (kKeyBytesMax)",
                          w.key.size(), kKeyBytesMax));
      return false;
    }
    if (w.value && w.value->size() > kValueBytesMax) {
      out.err(value_too_large(w.value->size()));
      return false;
    }
    bytes += write_bytes(w);
  }
  if (bytes > kLogEntryBytesMax) {
    out.err(
        fmt::format("a command may write at most {} bytes at once (Quire's log entry "
                    "bound, kLogEntryBytesMax); this one writes about {}",
                    kLogEntryBytesMax, bytes));
    return false;
  }
  return true;
}

Task<std::optional<Primary::QueuedWrite>> RespCommands::enqueue(std::vector<LogWrite> batch,
                                                                ReplyWriter& out) {
  if (!within_limits(batch, out)) co_return std::nullopt;
  Serving s = serving();
  if (s.role != Role::kPrimary) {  // the role changed while the command waited
    refuse_write(s, out);
    co_return std::nullopt;
  }
  // Counted once queued, whatever its outcome: a write that may have happened breaks a
  // WATCH as one that did.
  touch_watched(batch);
  Result<Primary::QueuedWrite> queued = co_await s.primary->enqueue_write(std::move(batch));
  if (!queued.is_ok()) {
    write_failed(queued.status(), out);
    co_return std::nullopt;
  }
  co_return std::move(queued).value();
}

Task<std::optional<Timestamp>> RespCommands::commit(std::vector<LogWrite> batch, ClientState& c,
                                                    ReplyWriter& out) {
  if (c.exec != nullptr) {
    if (!within_limits(batch, out)) co_return std::nullopt;
    ExecOverlay& tx = *c.exec;
    for (LogWrite& w : batch) {
      QUIRE_ASSERT(w.table == db_table(tx.db));  // a transaction runs in one database
      auto it = tx.values.find(w.key);
      if (it == tx.values.end()) {
        it = tx.values.emplace(w.key, std::nullopt).first;
        tx.order.push_back(it->first);
      } else {
        tx.bytes -= write_bytes(LogWrite{w.table, w.key, it->second});
      }
      tx.bytes += write_bytes(w);
      it->second = std::move(w.value);
    }
    // The whole transaction is one log entry: stop as soon as it cannot be one.
    if (tx.order.size() > kLogEntryOpsMax || tx.bytes + kLogEntryHeaderBytes > kLogEntryBytesMax) {
      tx.failed = Status(Code::kInvalidArgument,
                         fmt::format("a transaction may write at most {} keys and {} bytes at "
                                     "once (Quire's log entry bounds, kLogEntryOpsMax and "
                                     "kLogEntryBytesMax)",
                                     kLogEntryOpsMax, kLogEntryBytesMax));
    }
    co_return Timestamp();
  }
  std::optional<Primary::QueuedWrite> queued = co_await enqueue(std::move(batch), out);
  if (!queued) co_return std::nullopt;
  Result<Timestamp> r = co_await queued->outcome();
  if (!r.is_ok()) {
    write_failed(r.status(), out);
    co_return std::nullopt;
  }
  c.last_write = std::max(c.last_write, *r);
  co_return *r;
}

void RespCommands::write_failed(const Status& st, ReplyWriter& out) {
  if (st.code() == Code::kInvalidArgument) {
    out.err(st.to_string());
  } else if (st.code() == Code::kFenced ||
             st.message().find("outcome unknown") != std::string::npos) {
    out.error(
        fmt::format("TRYAGAIN write outcome unknown: it may or may not have been applied "
                    "(read before retrying a command that is not idempotent): {}",
                    st.to_string()));
  } else {
    out.error(fmt::format("TRYAGAIN write not committed (safe to retry): {}", st.to_string()));
  }
}

void help_reply(std::initializer_list<std::string_view> lines, ReplyWriter& out) {
  out.array(lines.size());
  for (std::string_view l : lines) out.simple(l);
}

std::string_view c_string(std::string_view s) {
  return s.substr(0, s.find('\0'));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace quire::resp
