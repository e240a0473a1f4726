// The server commands: INFO, CONFIG GET, COMMAND, WAIT and Quire's own QUIRE.*.
//
// Offsets as Redis users read them: Quire has no replication byte stream, so every "offset"
// (master_repl_offset, slaveN offset, slave_repl_offset) is an LSN: the last LOG record
// applied (or, for slave_read_repl_offset, the commit point seen). LSNs grow for the life
// of the database across primaries, as offsets should; their difference is a count of
// records, not bytes.
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "resp/commands.h"
#include "resp/glob.h"

namespace quire::resp {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// What INFO and QUIRE.STATUS report about the node, read once.
struct NodeFacts {
  std::string role;   // "primary", "standby", "loading"
  std::string state;  // the primary's or the standby's state name
  uint64_t term = 0;
  Timestamp applied_ts;
  Lsn applied_lsn;
  Lsn commit_lsn;
  Lsn checkpoint_lsn;
  Timestamp checkpoint_ts;
  uint64_t keystore_version = 0;
  uint32_t kek_version = 0;
  uint32_t cmk_version = 0;
  std::optional<PickupCounters> pickups;
};

// Splits "host:port" (the last colon); port 0 when absent.
std::pair<std::string, std::string> split_address(const std::string& a) {
  const size_t colon = a.rfind(':');
  if (colon == std::string::npos) return {a, "0"};
  return {a.substr(0, colon), a.substr(colon + 1)};
}

// CONFIG GET: the parameters Quire answers (redis-benchmark asks for save and appendonly).
std::vector<std::pair<std::string, std::string>> config_params(uint32_t databases) {
  return {{"save", ""},
          {"appendonly", "yes"},
          {"appendfsync", "always"},
          {"databases", fmt::format("{}", databases)},
          {"maxmemory", "0"},
          {"replica-read-only", "yes"},
          {"slave-read-only", "yes"}};
}

}  // namespace

// ---- Facts -------------------------------------------------------------------------------

namespace {

NodeFacts gather_facts(ReplicaNode& node, const RespCommands::Serving& s) {
  NodeFacts f;
  f.term = node.client().term().value;
  Engine& engine = node.engine();
  f.checkpoint_lsn = engine.installed_checkpoint_lsn();
  f.checkpoint_ts = engine.checkpoint_ts();
  const Keystore& ks = engine.keystore();
  f.keystore_version = ks.version();
  if (auto kek = ks.active_kek()) {
    f.kek_version = *kek;
    auto it = ks.keks().find(*kek);
    if (it != ks.keks().end()) f.cmk_version = it->second.wrapped.cmk_version;
  }
  if (Primary* p = node.primary()) {
    f.role = s.role == RespCommands::Role::kPrimary ? "primary" : "loading";
    f.state = std::string(primary_state_name(p->state()));
    f.applied_ts = p->applied_ts();
    f.applied_lsn = p->applied_lsn();
    f.commit_lsn = p->applied_lsn();
  } else if (Standby* sb = node.standby()) {
    f.role = s.role == RespCommands::Role::kStandby ? "standby" : "loading";
    f.state = std::string(standby_state_name(sb->state()));
    f.applied_ts = sb->applied_ts();
    f.applied_lsn = sb->applied_lsn();
    f.commit_lsn = sb->commit_lsn();
    f.pickups = sb->stats().pickups;
  } else {
    f.role = "loading";
    f.state = "none";
  }
  return f;
}

}  // namespace

std::string RespCommands::status_json() {
  Serving s = serving();
  NodeFacts f = gather_facts(node_, s);
  nlohmann::json j;
  j["node"] = std::string(node_.env().node_name());
  j["role"] = f.role;
  j["state"] = f.state;
  if (s.role == Role::kLoading) j["loading_reason"] = s.loading_reason;
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

// ---- INFO --------------------------------------------------------------------------------

Task<void> RespCommands::cmd_info(Args& a, ReplyWriter& out) {
  static constexpr std::array<std::string_view, 7> kSections = {
      "server", "clients", "replication", "persistence", "stats", "keyspace", "quire"};
  std::set<std::string> want;
  for (size_t j = 1; j < a.size(); j++) want.insert(lower(a[j]));
  const bool all = want.empty() || want.contains("all") || want.contains("everything") ||
                   want.contains("default");
  auto wanted = [&](std::string_view name) { return all || want.contains(std::string(name)); };

  Serving s = serving();
  NodeFacts f = gather_facts(node_, s);
  const MonoTime now = node_.env().executor().now();
  const int64_t uptime_s =
      std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count();
  std::string text;
  auto section = [&](std::string_view title) {
    if (!text.empty()) text += "\r\n";
    text += fmt::format("# {}\r\n", title);
  };
  auto field = [&](std::string_view k, const auto& v) { text += fmt::format("{}:{}\r\n", k, v); };

  for (std::string_view name : kSections) {
    if (!wanted(name)) continue;
    if (name == "server") {
      section("Server");
      field("redis_version", kRedisCompatVersion);
      field("redis_mode", "standalone");
      field("quire_version", options_.quire_version);
      field("arch_bits", 64);
      field("process_id", options_.process_id);
      field("tcp_port", options_.tcp_port);
      field("uptime_in_seconds", uptime_s);
      field("uptime_in_days", uptime_s / 86400);
    } else if (name == "clients") {
      section("Clients");
      field("connected_clients", server_stats_ ? server_stats_->connected_clients : 0);
      field("blocked_clients", 0);
    } else if (name == "replication") {
      section("Replication");
      if (s.role == Role::kPrimary) {
        std::vector<StandbyProgress> standbys;
        if (options_.standby_progress) standbys = options_.standby_progress();
        field("role", "master");
        field("connected_slaves", standbys.size());
        for (size_t i = 0; i < standbys.size(); i++) {
          auto [host, port] = split_address(standbys[i].address);
          const uint64_t lag_s = f.applied_ts.seconds() > standbys[i].applied_ts.seconds()
                                     ? f.applied_ts.seconds() - standbys[i].applied_ts.seconds()
                                     : 0;
          text += fmt::format("slave{}:ip={},port={},state={},offset={},lag={}\r\n", i, host, port,
                              standbys[i].serving ? "online" : "wait_bgsave",
                              standbys[i].applied_lsn.value, lag_s);
        }
        field("master_failover_state", "no-failover");
        field("master_replid", fmt::format("{:040x}", f.term));
        field("master_repl_offset", f.applied_lsn.value);
      } else {
        std::optional<Address> primary;
        if (options_.primary_address) primary = options_.primary_address();
        auto [host, port] = split_address(primary.value_or(""));
        field("role", "slave");
        field("master_host", host);
        field("master_port", port);
        field("master_link_status", s.role == Role::kStandby ? "up" : "down");
        field("master_last_io_seconds_ago", s.role == Role::kStandby ? 0 : -1);
        field("master_sync_in_progress", s.role == Role::kStandby ? 0 : 1);
        field("slave_read_repl_offset", f.commit_lsn.value);
        field("slave_repl_offset", f.applied_lsn.value);
        field("slave_priority", 100);
        field("slave_read_only", 1);
        field("replica_announced", 1);
        field("connected_slaves", 0);
        field("master_replid", fmt::format("{:040x}", f.term));
        field("master_repl_offset", f.applied_lsn.value);
      }
    } else if (name == "persistence") {
      section("Persistence");
      field("loading", s.role == Role::kLoading ? 1 : 0);
      field("async_loading", 0);
      // Every acknowledged write is durable at W page servers before its reply: what
      // appendonly yes with appendfsync always promises, replicated.
      field("aof_enabled", 1);
      field("aof_rewrite_in_progress", 0);
      field("aof_last_write_status", "ok");
      field("rdb_changes_since_last_save", 0);
      field("rdb_bgsave_in_progress", 0);
      field("quire_checkpoint_lsn", f.checkpoint_lsn.value);
    } else if (name == "stats") {
      section("Stats");
      const ServerStats none;
      const ServerStats& ss = server_stats_ ? *server_stats_ : none;
      field("total_connections_received", ss.total_connections);
      field("total_commands_processed", ss.total_commands);
      field("rejected_connections", ss.rejected_connections);
      field("client_output_buffer_limit_disconnections", ss.output_limit_disconnects);
      field("quire_commands_executed", commands_executed_);
      field("quire_commands_rejected", commands_rejected_);
    } else if (name == "keyspace") {
      section("Keyspace");
      if (s.role != Role::kLoading) {
        for (uint32_t db = 0; db < options_.databases; db++) {
          auto n = co_await count_keys(db);
          if (n.is_ok() && *n > 0) {
            text += fmt::format("db{}:keys={},expires=0,avg_ttl=0\r\n", db, *n);
          }
        }
      }
    } else if (name == "quire") {
      section("Quire");
      field("quire_role", f.role);
      field("quire_state", f.state);
      if (s.role == Role::kLoading) field("quire_loading_reason", s.loading_reason);
      field("quire_term", f.term);
      field("quire_applied_ts", f.applied_ts.value);
      field("quire_applied_ts_text", fmt::format("{}", f.applied_ts));
      field("quire_applied_lsn", f.applied_lsn.value);
      field("quire_checkpoint_lsn", f.checkpoint_lsn.value);
      field("quire_checkpoint_ts", f.checkpoint_ts.value);
      field("quire_keystore_version", f.keystore_version);
      field("quire_kek_version", f.kek_version);
      field("quire_cmk_version", f.cmk_version);
      if (f.pickups) {
        const PickupCounters& p = *f.pickups;
        field("quire_pickups_attempts", p.attempts);
        field("quire_pickups_installed", p.installed);
        field("quire_pickups_stale_keystore_accepted", p.stale_keystore_accepted);
        field("quire_pickups_skipped", p.skipped);
        field("quire_pickups_keystore_ahead_retries", p.keystore_ahead_retries);
        field("quire_pickups_unavailable_retries", p.unavailable_retries);
        field("quire_pickups_busy_retries", p.busy_retries);
        field("quire_pickups_older_ignored", p.older_ignored);
        field("quire_pickups_already_installed", p.already_installed);
        field("quire_pickups_corrupt", p.corrupt);
        field("quire_pickups_keystore_conflicts", p.keystore_conflicts);
        field("quire_pickups_version_too_new", p.version_too_new);
        field("quire_pickups_resyncs", p.resyncs);
      }
    }
  }
  out.bulk(text);
}

// ---- CONFIG, COMMAND ------------------------------------------------------------------------

void RespCommands::cmd_config(Args& a, ReplyWriter& out) {
  const std::string sub = lower(a[1]);
  if (sub == "get") {
    if (a.size() < 3) {
      out.err("wrong number of arguments for 'config|get' command");
      return;
    }
    std::vector<std::pair<std::string, std::string>> found;
    for (const auto& [k, v] : config_params(options_.databases)) {
      for (size_t j = 2; j < a.size(); j++) {
        if (glob_match(a[j], k, true)) {
          found.emplace_back(k, v);
          break;
        }
      }
    }
    out.array(found.size() * 2);
    for (const auto& [k, v] : found) {
      out.bulk(k);
      out.bulk(v);
    }
  } else if (sub == "set" || sub == "resetstat" || sub == "rewrite") {
    out.err(fmt::format("CONFIG {} is not supported by Quire (configure the node's flags)",
                        lower(a[1])));
  } else if (sub == "help") {
    out.array(2);
    out.simple("CONFIG GET <pattern> [<pattern> ...]");
    out.simple("    Return parameters matching the glob-like <pattern> and their values.");
  } else {
    out.err(fmt::format("unknown subcommand '{}'. Try CONFIG HELP.",
                        std::string_view(a[1]).substr(0, 128)));
  }
}

namespace {

void command_info_entry(const CommandSpec& c, ReplyWriter& out) {
  out.array(10);
  out.bulk(c.name);
  out.integer(c.arity);
  size_t flags = 0;
  for (size_t i = 0; i < flag_names().size(); i++) flags += has_flag_name(c.flags, i) ? 1 : 0;
  out.array(flags);
  for (size_t i = 0; i < flag_names().size(); i++) {
    if (has_flag_name(c.flags, i)) out.simple(flag_names()[i]);
  }
  out.integer(c.first_key);
  out.integer(c.last_key);
  out.integer(c.key_step);
  out.array(0);  // ACL categories
  out.array(0);  // tips
  out.array(0);  // key specs
  out.array(0);  // subcommands
}

void command_docs_entry(const CommandSpec& c, ReplyWriter& out) {
  out.bulk(c.name);
  out.array(c.since.empty() ? 4 : 6);
  out.bulk("summary");
  out.bulk(c.summary);
  if (!c.since.empty()) {
    out.bulk("since");
    out.bulk(c.since);
  }
  out.bulk("group");
  out.bulk(c.group);
}

}  // namespace

void RespCommands::cmd_command(Args& a, ReplyWriter& out) {
  const auto table = command_table();
  if (a.size() == 1) {
    out.array(table.size());
    for (const CommandSpec& c : table) command_info_entry(c, out);
    return;
  }
  const std::string sub = lower(a[1]);
  if (sub == "count") {
    if (a.size() != 2) {
      out.err("wrong number of arguments for 'command|count' command");
      return;
    }
    out.integer(static_cast<int64_t>(table.size()));
  } else if (sub == "info") {
    if (a.size() == 2) {
      out.array(table.size());
      for (const CommandSpec& c : table) command_info_entry(c, out);
      return;
    }
    out.array(a.size() - 2);
    for (size_t j = 2; j < a.size(); j++) {
      const CommandSpec* c = find_command(lower(a[j]));
      if (c) {
        command_info_entry(*c, out);
      } else {
        out.null_array();
      }
    }
  } else if (sub == "docs") {
    std::vector<const CommandSpec*> docs;
    if (a.size() == 2) {
      for (const CommandSpec& c : table) docs.push_back(&c);
    } else {
      for (size_t j = 2; j < a.size(); j++) {
        if (const CommandSpec* c = find_command(lower(a[j]))) docs.push_back(c);
      }
    }
    out.array(docs.size() * 2);
    for (const CommandSpec* c : docs) command_docs_entry(*c, out);
  } else if (sub == "help") {
    out.array(4);
    out.simple("COMMAND [<subcommand> [<arg> ...]]. Subcommands are:");
    out.simple("(no subcommand), COUNT, INFO [<command-name> ...], DOCS [<command-name> ...]");
    out.simple("HELP");
    out.simple("    Print this help.");
  } else {
    out.err(fmt::format("unknown subcommand '{}'. Try COMMAND HELP.",
                        std::string_view(a[1]).substr(0, 128)));
  }
}

// ---- WAIT ---------------------------------------------------------------------------------

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
  const Deadline deadline = *timeout_ms == 0
                                ? Deadline::never()
                                : exec.deadline_after(std::chrono::milliseconds(*timeout_ms));
  auto reached = [&]() -> int64_t {
    if (!options_.standby_progress) return 0;
    int64_t n = 0;
    for (const StandbyProgress& p : options_.standby_progress()) {
      if (p.serving && p.applied_ts >= c.last_write) n++;
    }
    return n;
  };
  int64_t n = reached();
  // Polls until enough standbys applied the write, the timeout, or the node stops being
  // the primary (its standbys' progress then says nothing about this write's fate).
  while (n < *wanted && exec.now() < deadline && serving().role == Role::kPrimary &&
         options_.standby_progress) {
    const MonoTime wake = std::min(deadline, exec.now() + options_.wait_poll_interval);
    Status slept = co_await exec.sleep_until(wake);
    if (!slept.is_ok()) break;  // cancelled
    n = reached();
  }
  out.integer(n);
}

// ---- QUIRE.* ------------------------------------------------------------------------------

Task<void> RespCommands::cmd_quire(const CommandSpec& spec, Args& a, ReplyWriter& out) {
  if (spec.id == CommandId::kQuireStatus) {
    out.bulk(status_json());
    co_return;
  }
  Serving s = serving();
  Primary* p = s.primary;
  if (p == nullptr) {  // admit() checked; the role changed since
    refuse_write(s, out);
    co_return;
  }
  auto failed = [&](std::string_view what, const Status& st) {
    out.error(
        fmt::format("{} {} failed: {}", st.retriable() ? "TRYAGAIN" : "ERR", what, st.to_string()));
  };
  switch (spec.id) {
    case CommandId::kQuireRotateKek: {
      if (a.size() > 2) {
        out.err("syntax error");
        co_return;
      }
      Result<uint32_t> r = Status(Code::kInvalidArgument, "unset");
      if (a.size() == 2) {
        std::optional<int64_t> gap_ms = parse_int64(a[1]);
        if (!gap_ms || *gap_ms < 0 || *gap_ms > 60'000) {
          out.err("gap-ms must be an integer from 0 to 60000");
          co_return;
        }
        r = co_await p->rotate_active_kek(std::chrono::milliseconds(*gap_ms));
      } else {
        r = co_await p->rotate_active_kek();
      }
      if (r.is_ok()) {
        out.integer(*r);
      } else {
        failed("QUIRE.ROTATEKEK", r.status());
      }
      break;
    }
    case CommandId::kQuireRotateCmk: {
      Status st = co_await p->rotate_cmk();
      if (!st.is_ok()) {
        failed("QUIRE.ROTATECMK", st);
        co_return;
      }
      NodeFacts f = gather_facts(node_, serving());
      out.integer(f.cmk_version);
      break;
    }
    case CommandId::kQuireCheckpoint: {
      auto r = co_await p->checkpoint_now();
      if (r.is_ok()) {
        out.integer(static_cast<int64_t>(r->completion_lsn.value));
      } else {
        failed("QUIRE.CHECKPOINT", r.status());
      }
      break;
    }
    case CommandId::kQuireSeal: {
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
        Status st = co_await p->seal_log();
        if (!st.is_ok()) {
          failed("QUIRE.SEAL", st);
          co_return;
        }
      }
      out.ok();
      break;
    }
    default:
      out.err("unknown QUIRE command");
      break;
  }
}

}  // namespace quire::resp
