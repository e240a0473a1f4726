// The server commands: CONFIG GET, COMMAND, WAIT and Quire's own QUIRE.* (INFO is
// commands_info.cc).
#include <fmt/format.h>

#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/node_facts.h"

namespace quire::resp {
namespace {

// CONFIG GET: the parameters Quire answers (redis-benchmark asks for save and appendonly).
std::vector<std::pair<std::string, std::string>> config_params(const RespCommandsOptions& o) {
  const int64_t slower_than_us =
      o.slowlog_log_slower_than < Nanos(0)
          ? -1
          : std::chrono::duration_cast<std::chrono::microseconds>(o.slowlog_log_slower_than)
                .count();
  return {{"save", ""},
          {"appendonly", "yes"},
          {"appendfsync", "always"},
          {"databases", fmt::format("{}", o.databases)},
          {"slowlog-log-slower-than", fmt::format("{}", slower_than_us)},
          {"slowlog-max-len", fmt::format("{}", o.slowlog_max_len)},
          {"maxmemory", "0"},
          {"replica-read-only", "yes"},
          {"slave-read-only", "yes"}};
}

}  // namespace

// ---- QUIRE.STATUS ----------------------------------------------------------------------

std::string RespCommands::status_json() {
  const Serving s = serving();
  const NodeFacts f = gather_node_facts(node_);
  nlohmann::json j;
  j["node"] = std::string(node_.env().node_name());
  j["role"] = role_name(s.role);
  j["state"] = f.state;
  if (s.role == Role::kLoading) j["loading_reason"] = s.loading_reason;
  if (options_.primary_address) {
    if (std::optional<Address> p = options_.primary_address()) j["primary"] = *p;
  }
  j["term"] = f.term;
  j["applied_ts"] = f.applied_ts.value;
  j["applied_ts_text"] = fmt::format("{}", f.applied_ts);
  j["applied_lsn"] = f.applied_lsn.value;
  j["commit_lsn"] = f.commit_lsn.value;
  j["checkpoint_lsn"] = f.checkpoint_lsn.value;
  j["checkpoint_ts"] = f.checkpoint_ts.value;
  j["keystore_version"] = f.keystore_version;
  j["kek_version"] = f.kek_version;
  j["cmk_version"] = f.cmk_version;
  if (f.pickups) {
    const PickupCounters& p = *f.pickups;
    j["pickups"] = {{"attempts", p.attempts},
                    {"installed", p.installed},
                    {"stale_keystore_accepted", p.stale_keystore_accepted},
                    {"skipped", p.skipped},
                    {"keystore_ahead_retries", p.keystore_ahead_retries},
                    {"unavailable_retries", p.unavailable_retries},
                    {"busy_retries", p.busy_retries},
                    {"older_ignored", p.older_ignored},
                    {"already_installed", p.already_installed},
                    {"corrupt", p.corrupt},
                    {"keystore_conflicts", p.keystore_conflicts},
                    {"version_too_new", p.version_too_new},
                    {"deadline_escalations", p.deadline_escalations},
                    {"resyncs", p.resyncs}};
  }
  const ReplicaNodeStats& ns = node_.stats();
  j["elections_won"] = ns.elections_won;
  j["promotions"] = ns.promotions;
  j["step_downs"] = ns.step_downs;
  return j.dump();
}

// ---- SLOWLOG ---------------------------------------------------------------------------------

void RespCommands::cmd_slowlog(Args& a, ReplyWriter& out) {
  // The dispatcher checked the subcommand and its arity (command_table.cc).
  const std::string sub = lower(a[1]);
  if (sub == "get") {
    if (a.size() > 3) {  // within GET's arity, but Redis's own check refuses it
      out.err(
          fmt::format("unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                      c_string(a[1]).substr(0, 128)));
      return;
    }
    size_t count = 10;
    if (a.size() == 3) {
      std::optional<int64_t> n = parse_int64(a[2]);
      if (!n || *n < -1) {
        out.err("count should be greater than or equal to -1");
        return;
      }
      count = *n == -1 ? slowlog_.size() : static_cast<size_t>(*n);
    }
    const size_t sent = std::min(count, slowlog_.size());
    out.array(sent);
    for (size_t i = 0; i < sent; i++) {
      const SlowlogEntry& e = slowlog_[i];
      out.array(6);
      out.integer(static_cast<int64_t>(e.id));
      out.integer(e.unix_seconds);
      out.integer(e.duration_us);
      out.array(e.args.size());
      for (const std::string& arg : e.args) out.bulk(arg);
      out.bulk(e.peer);
      out.bulk(e.name);
    }
  } else if (sub == "len") {
    out.integer(static_cast<int64_t>(slowlog_.size()));
  } else if (sub == "reset") {
    slowlog_.clear();
    out.ok();
  } else {
    help_reply({"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name", "LEN", "    Return the length of the slowlog.", "RESET",
                "    Reset the slowlog.", "HELP", "    Print this help."},
               out);
  }
}

// ---- CONFIG, COMMAND ------------------------------------------------------------------------

void RespCommands::cmd_config(Args& a, ReplyWriter& out) {
  // The dispatcher checked the subcommand and its arity (command_table.cc).
  const std::string sub = lower(a[1]);
  if (sub == "get") {
    // As Redis 7.0: a name without glob characters is looked up (in any case) and answered
    // as it was typed; a pattern answers the parameters' own names; each parameter once.
    const auto params = config_params(options_);
    std::vector<std::pair<std::string, std::string>> found;
    std::vector<bool> taken(params.size(), false);
    auto same = [](std::string_view x, std::string_view y) { return lower(x) == lower(y); };
    for (size_t j = 2; j < a.size(); j++) {
      const std::string_view name = c_string(a[j]);
      const bool pattern = name.find_first_of("[*?") != std::string_view::npos;
      for (size_t i = 0; i < params.size(); i++) {
        if (taken[i]) continue;
        const bool match =
            pattern ? glob_match(name, params[i].first, true) : same(name, params[i].first);
        if (!match) continue;
        taken[i] = true;
        found.emplace_back(pattern ? params[i].first : std::string(name), params[i].second);
      }
    }
    out.array(found.size() * 2);
    for (const auto& [k, v] : found) {
      out.bulk(k);
      out.bulk(v);
    }
  } else if (sub == "set") {
    out.err("CONFIG SET is not supported by Quire (configure the node's flags)");
  } else if (sub == "rewrite") {
    out.err("The server is running without a config file");
  } else if (sub == "resetstat") {
    stats_base_.server = server_stats_ ? *server_stats_ : ServerStats();
    stats_base_.executed = commands_executed_;
    stats_base_.rejected = commands_rejected_;
    stats_base_.keyspace_hits = keyspace_hits_;
    stats_base_.keyspace_misses = keyspace_misses_;
    // As Redis's resetCommandTableStats and resetErrorTableStats.
    std::fill(command_counters_.begin(), command_counters_.end(), CommandCounters());
    error_counts_.clear();
    error_replies_ = 0;
    out.ok();
  } else {
    help_reply(
        {"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "GET <pattern>",
         "    Return parameters matching the glob-like <pattern> and their values.", "RESETSTAT",
         "    Reset statistics reported by the INFO command.", "HELP", "    Prints this help."},
        out);
  }
}

namespace {

void flags_array(uint32_t flags, ReplyWriter& out) {
  size_t n = 0;
  for (size_t i = 0; i < flag_names().size(); i++) n += has_flag_name(flags, i) ? 1 : 0;
  out.array(n);
  for (size_t i = 0; i < flag_names().size(); i++) {
    if (has_flag_name(flags, i)) out.simple(flag_names()[i]);
  }
}

void subcommand_info(std::string_view container, uint32_t container_flags,
                     const SubcommandSpec& sub, ReplyWriter& out);

// COMMAND INFO's ten fields. A subcommand (`name` "client|id") has its container's flags
// and its own, and its own key positions.
void command_info_fields(std::string_view name, int arity, uint32_t flags, int first_key,
                         int last_key, int key_step, std::span<const SubcommandSpec> subs,
                         std::string_view container, ReplyWriter& out) {
  out.array(10);
  out.bulk(name);
  out.integer(arity);
  flags_array(flags, out);
  out.integer(first_key);
  out.integer(last_key);
  out.integer(key_step);
  out.array(0);  // ACL categories
  out.array(0);  // tips
  out.array(0);  // key specs
  out.array(subs.size());
  for (const SubcommandSpec& sub : subs) subcommand_info(container, flags, sub, out);
}

void subcommand_info(std::string_view container, uint32_t container_flags,
                     const SubcommandSpec& sub, ReplyWriter& out) {
  command_info_fields(fmt::format("{}|{}", container, sub.name), sub.arity,
                      container_flags | sub.flags, sub.first_key, sub.last_key, sub.key_step, {},
                      {}, out);
}

void command_info_entry(const CommandSpec& c, ReplyWriter& out) {
  command_info_fields(c.name, c.arity, c.flags, c.first_key, c.last_key, c.key_step, c.subcommands,
                      c.name, out);
}

// COMMAND DOCS's argument maps, in Redis 7.0's order (redis-cli builds its hints from them
// and asserts their types: names and types are bulk strings, flags simple strings).
void argument_docs(std::span<const ArgDoc> args, ReplyWriter& out) {
  out.array(args.size());
  for (const ArgDoc& arg : args) {
    const bool nested = !arg.args.empty();
    const size_t fields = 2 + (arg.key_spec_index >= 0 ? 1 : 0) + (arg.token.empty() ? 0 : 1) +
                          (arg.since.empty() ? 0 : 1) + (arg.flags != 0 ? 1 : 0) + (nested ? 1 : 0);
    out.array(fields * 2);
    out.bulk("name");
    out.bulk(arg.name);
    out.bulk("type");
    out.bulk(arg.type);
    if (arg.key_spec_index >= 0) {
      out.bulk("key_spec_index");
      out.integer(arg.key_spec_index);
    }
    if (!arg.token.empty()) {
      out.bulk("token");
      out.bulk(arg.token);
    }
    if (!arg.since.empty()) {
      out.bulk("since");
      out.bulk(arg.since);
    }
    if (arg.flags != 0) {
      out.bulk("flags");
      const bool optional = (arg.flags & kArgOptional) != 0;
      const bool multiple = (arg.flags & kArgMultiple) != 0;
      out.array((optional ? 1 : 0) + (multiple ? 1 : 0));
      if (optional) out.simple("optional");
      if (multiple) out.simple("multiple");
    }
    if (nested) {
      out.bulk("arguments");
      argument_docs(arg.args, out);
    }
  }
}

// One COMMAND DOCS entry: the name, then its map (summary, since, group, complexity,
// arguments, subcommands) as a flat array.
void docs_fields(std::string_view name, std::string_view summary, std::string_view since,
                 std::string_view group, std::string_view complexity, std::span<const ArgDoc> args,
                 std::span<const SubcommandSpec> subs, ReplyWriter& out) {
  out.bulk(name);
  out.array((4 + (args.empty() ? 0 : 1) + (subs.empty() ? 0 : 1)) * 2);
  out.bulk("summary");
  out.bulk(summary);
  out.bulk("since");
  out.bulk(since);
  out.bulk("group");
  out.bulk(group);
  out.bulk("complexity");
  out.bulk(complexity);
  if (!args.empty()) {
    out.bulk("arguments");
    argument_docs(args, out);
  }
  if (!subs.empty()) {
    out.bulk("subcommands");
    out.array(subs.size() * 2);
    for (const SubcommandSpec& sub : subs) {
      docs_fields(fmt::format("{}|{}", name, sub.name), sub.summary, sub.since, group,
                  sub.complexity, sub.args, {}, out);
    }
  }
}

// A name COMMAND INFO or DOCS was given: a command, or "container|subcommand".
struct Looked {
  const CommandSpec* command = nullptr;
  const SubcommandSpec* sub = nullptr;
};
Looked look_up(std::string_view name) {
  const std::string n = lower(name);
  const size_t bar = n.find('|');
  Looked l;
  l.command = find_command(bar == std::string::npos ? n : n.substr(0, bar));
  if (l.command == nullptr || bar == std::string::npos) return l;
  l.sub = find_subcommand(*l.command, n.substr(bar + 1));
  if (l.sub == nullptr) l.command = nullptr;
  return l;
}

}  // namespace

void RespCommands::cmd_command(Args& a, ReplyWriter& out) {
  const auto table = command_table();
  if (a.size() == 1) {
    out.array(table.size());
    for (const CommandSpec& c : table) command_info_entry(c, out);
    return;
  }
  // The dispatcher checked the subcommand and its arity (command_table.cc).
  const std::string sub = lower(a[1]);
  if (sub == "count") {
    out.integer(static_cast<int64_t>(table.size()));
  } else if (sub == "info") {
    if (a.size() == 2) {
      out.array(table.size());
      for (const CommandSpec& c : table) command_info_entry(c, out);
      return;
    }
    out.array(a.size() - 2);
    for (size_t j = 2; j < a.size() && !out.overflowed(); j++) {
      const Looked l = look_up(a[j]);
      if (l.sub != nullptr) {
        subcommand_info(l.command->name, l.command->flags, *l.sub, out);
      } else if (l.command != nullptr) {
        command_info_entry(*l.command, out);
      } else {
        out.null_bulk();  // as Redis 7.0: a null bulk string, not a null array
      }
    }
  } else if (sub == "docs") {
    std::vector<Looked> docs;
    if (a.size() == 2) {
      for (const CommandSpec& c : table) docs.push_back(Looked{&c, nullptr});
    } else {
      for (size_t j = 2; j < a.size(); j++) {
        if (Looked l = look_up(a[j]); l.command != nullptr) docs.push_back(l);
      }
    }
    out.array(docs.size() * 2);
    for (const Looked& l : docs) {
      if (out.overflowed()) break;  // the connection closes: no use building the rest
      const CommandSpec& c = *l.command;
      if (l.sub != nullptr) {
        docs_fields(fmt::format("{}|{}", c.name, l.sub->name), l.sub->summary, l.sub->since,
                    c.group, l.sub->complexity, l.sub->args, {}, out);
      } else {
        docs_fields(c.name, c.summary, c.since, c.group, c.complexity, c.args, c.subcommands, out);
      }
    }
  } else if (sub == "list") {
    command_list(a, out);
  } else if (sub == "getkeys") {
    command_getkeys(a, out);
  } else {
    help_reply({"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)", "    Return details about all commands.", "COUNT",
                "    Return the total number of commands in this server.", "LIST",
                "    Return a list of all commands in this server.", "INFO [<command-name> ...]",
                "    Return details about multiple commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.", "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.", "GETKEYS <full-command>",
                "    Return the keys from a full command.", "HELP", "    Print this help."},
               out);
  }
}

// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern], as Redis 7.0:
// every command and subcommand name; Quire has no modules and no ACL categories, so those
// filters match nothing; a pattern matches the full name ("client|id") without case.
void RespCommands::command_list(Args& a, ReplyWriter& out) {
  enum class Filter : uint8_t { kNone, kNothing, kPattern } filter = Filter::kNone;
  std::string_view pattern;
  for (size_t i = 2; i < a.size(); i++) {
    if (iequals(c_string(a[i]), "filterby") && a.size() - 1 - i == 2) {
      const std::string_view type = c_string(a[i + 1]);
      if (iequals(type, "module") || iequals(type, "aclcat")) {
        filter = Filter::kNothing;
      } else if (iequals(type, "pattern")) {
        filter = Filter::kPattern;
        pattern = c_string(a[i + 2]);  // Redis matches sdslen of the C string's copy
      } else {
        out.err("syntax error");
        return;
      }
      i += 2;
    } else {
      out.err("syntax error");
      return;
    }
  }
  std::vector<std::string> names;
  const auto add = [&](std::string name) {
    if (filter == Filter::kNothing) return;
    if (filter == Filter::kPattern && !glob_match(pattern, name, /*nocase=*/true)) return;
    names.push_back(std::move(name));
  };
  for (const CommandSpec& c : command_table()) {
    add(std::string(c.name));
    for (const SubcommandSpec& sub : c.subcommands) add(fmt::format("{}|{}", c.name, sub.name));
  }
  out.array(names.size());
  for (const std::string& n : names) out.bulk(n);
}

// COMMAND GETKEYS command [arg ...]: the keys the command names, from the table's key
// positions, with Redis 7.0's checks and messages.
void RespCommands::command_getkeys(Args& a, ReplyWriter& out) {
  const CommandSpec* c = find_command(lower(a[2]));
  const SubcommandSpec* sub = nullptr;
  if (c != nullptr && !c->subcommands.empty() && a.size() >= 4) {
    sub = find_subcommand(*c, lower(a[3]));
    if (sub == nullptr) c = nullptr;  // Redis looks a container's subcommand up first
  }
  if (c == nullptr) {
    out.err("Invalid command specified");
    return;
  }
  const int first = sub != nullptr ? sub->first_key : c->first_key;
  const int last = sub != nullptr ? sub->last_key : c->last_key;
  const int step = sub != nullptr ? sub->key_step : c->key_step;
  const int arity = sub != nullptr ? sub->arity : c->arity;
  if (first == 0) {
    out.err("The command has no key arguments");
    return;
  }
  const size_t argc = a.size() - 2;
  if (!arity_ok(arity, argc)) {
    out.err("Invalid number of arguments specified for command");
    return;
  }
  const std::vector<size_t> positions = key_positions(first, last, step, argc);
  out.array(positions.size());
  for (size_t j : positions) out.bulk(a[j + 2]);
}

// ---- WAIT --------------------------------------------------------------------------------

std::vector<StandbyProgress> RespCommands::standbys() {
  if (options_.standby_progress) return options_.standby_progress();
  return progress_.current(node_.env().executor().now());
}

Task<void> RespCommands::cmd_wait(Args& a, ClientState& c, ReplyWriter& out) {
  std::optional<int64_t> wanted = parse_int64(a[1]);
  if (!wanted) {
    out.err("value is not an integer or out of range");
    co_return;
  }
  std::optional<int64_t> timeout_ms = parse_int64(a[2]);
  if (!timeout_ms) {
    out.err("timeout is not an integer or out of range");
    co_return;
  }
  if (*timeout_ms < 0) {
    out.err("timeout is negative");
    co_return;
  }
  if (serving().role != Role::kPrimary) {
    out.err(
        "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if "
        "a replica is configured to be writable (which is not the default) writes to replicas "
        "are just local and are not propagated.");
    co_return;
  }
  Executor& exec = node_.env().executor();
  // Redis 7.0 adds the timeout to its clock unchecked (a huge one wraps into the past);
  // 7.2 refuses it, as here.
  if (*timeout_ms > (std::numeric_limits<int64_t>::max() - exec.now().ns) / 1'000'000) {
    out.err("timeout is out of range");
    co_return;
  }
  const Deadline deadline = *timeout_ms == 0
                                ? Deadline::never()
                                : exec.deadline_after(std::chrono::milliseconds(*timeout_ms));
  // A standby counts once it serves with this connection's last write applied.
  auto reached = [&]() -> int64_t {
    int64_t n = 0;
    for (const StandbyProgress& p : standbys()) n += p.serving && p.applied_ts >= c.last_write;
    return n;
  };
  int64_t n = reached();
  // Polls until enough standbys applied the write, the timeout, the node stops being the
  // primary (its standbys' progress then says nothing about this write's fate), or the
  // client is gone (killed, or it closed the connection: nobody would read the answer,
  // and the connection would otherwise hold its place among max_clients forever).
  while (n < *wanted && exec.now() < deadline && serving().role == Role::kPrimary &&
         !(directory_ != nullptr && directory_->gone(c.id))) {
    const MonoTime wake = std::min(deadline, exec.now() + options_.wait_poll_interval);
    Status slept = co_await exec.sleep_until(wake);
    if (!slept.is_ok()) break;  // cancelled
    n = reached();
  }
  out.integer(n);
}

// ---- QUIRE.* ------------------------------------------------------------------------------

namespace {

void quire_failed(ReplyWriter& out, std::string_view what, const Status& st) {
  out.error(
      fmt::format("{} {} failed: {}", st.retriable() ? "TRYAGAIN" : "ERR", what, st.to_string()));
}

}  // namespace

Task<void> RespCommands::cmd_quire(const CommandSpec& spec, Args& a, ReplyWriter& out) {
  if (spec.id == CommandId::kQuireStatus) {
    out.bulk(status_json());
    co_return;
  }
  if (spec.id == CommandId::kQuireReport) {
    quire_report(a, out);
    co_return;
  }
  Serving s = serving();
  if (s.primary == nullptr) {  // admit() checked; the role changed since
    refuse_write(s, out);
    co_return;
  }
  Primary& p = *s.primary;
  if (spec.id == CommandId::kQuireRotateKek) {
    co_await quire_rotate_kek(p, a, out);
  } else if (spec.id == CommandId::kQuireRotateCmk) {
    Status st = co_await p.rotate_cmk();
    if (st.is_ok()) {
      out.integer(gather_node_facts(node_).cmk_version);
    } else {
      quire_failed(out, "QUIRE.ROTATECMK", st);
    }
  } else if (spec.id == CommandId::kQuireCheckpoint) {
    auto r = co_await p.checkpoint_now();
    if (r.is_ok()) {
      out.integer(static_cast<int64_t>(r->completion_lsn.value));
    } else {
      quire_failed(out, "QUIRE.CHECKPOINT", r.status());
    }
  } else if (spec.id == CommandId::kQuireSeal) {
    co_await quire_seal(p, a, out);
  }
}

Task<void> RespCommands::quire_rotate_kek(Primary& p, Args& a, ReplyWriter& out) {
  if (a.size() > 2) {
    out.err("syntax error");
    co_return;
  }
  std::optional<int64_t> gap_ms;
  if (a.size() == 2) {
    gap_ms = parse_int64(a[1]);
    if (!gap_ms || *gap_ms < 0 || *gap_ms > 60'000) {
      out.err("gap-ms must be an integer from 0 to 60000");
      co_return;
    }
  }
  // Without gap-ms the primary draws the gap from its options.
  std::optional<Result<uint32_t>> r;
  if (gap_ms) {
    const Nanos gap = std::chrono::milliseconds(*gap_ms);
    r.emplace(co_await p.rotate_active_kek(gap));
  } else {
    r.emplace(co_await p.rotate_active_kek());
  }
  if (r->is_ok()) {
    out.integer(**r);
  } else {
    quire_failed(out, "QUIRE.ROTATEKEK", r->status());
  }
}

Task<void> RespCommands::quire_seal(Primary& p, Args& a, ReplyWriter& out) {
  int64_t count = 1;
  if (a.size() > 2) {
    out.err("syntax error");
    co_return;
  }
  if (a.size() == 2) {
    std::optional<int64_t> n = parse_int64(a[1]);
    if (!n || *n < 1 || *n > 100) {
      out.err("count must be an integer from 1 to 100");
      co_return;
    }
    count = *n;
  }
  for (int64_t i = 0; i < count; i++) {
    Status st = co_await p.seal_log();
    if (!st.is_ok()) {
      quire_failed(out, "QUIRE.SEAL", st);
      co_return;
    }
  }
  out.ok();
}

void RespCommands::quire_report(Args& a, ReplyWriter& out) {
  std::optional<StandbyProgress> report = parse_progress_report(a);
  if (!report) {
    out.err("QUIRE.REPORT <name> <address> <applied-ts> <applied-lsn> <serving 0|1>");
    return;
  }
  Serving s = serving();
  if (s.role != Role::kPrimary) {  // the standby reports to whoever leads now
    refuse_write(s, out);
    return;
  }
  if (!progress_.report(std::move(*report), node_.env().executor().now())) {
    out.err(fmt::format("too many standbys report (at most {})", kProgressReportersMax));
    return;
  }
  out.ok();
}

}  // namespace quire::resp
