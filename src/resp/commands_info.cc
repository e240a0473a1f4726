// INFO: one bulk string of "# Section" headers and "key:value" lines, as Redis writes it.
//
// Offsets as Redis users read them: Quire has no replication byte stream, so every "offset"
// (master_repl_offset, slaveN offset, slave_repl_offset) is an LSN: the last LOG record
// applied (slave_read_repl_offset: the commit point seen). LSNs grow for the life of the
// database across primaries, as offsets should; a difference counts records, not bytes.
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <set>

#include "engine/btree_page.h"
#include "resp/commands.h"
#include "resp/node_facts.h"

namespace quire::resp {
namespace {

class InfoText {
 public:
  void section(std::string_view title) {
    if (!text.empty()) text += "\r\n";
    text += fmt::format("# {}\r\n", title);
  }
  template <typename V>
  void field(std::string_view key, const V& value) {
    text += fmt::format("{}:{}\r\n", key, value);
  }
  std::string text;
};

void info_server(InfoText& t, const RespCommandsOptions& o, std::string_view run_id,
                 int64_t uptime_s) {
  t.section("Server");
  t.field("redis_version", kRedisCompatVersion);
  t.field("redis_mode", "standalone");
  t.field("quire_version", o.quire_version);
  t.field("arch_bits", 64);
  t.field("process_id", o.process_id);
  t.field("run_id", run_id);
  t.field("tcp_port", o.tcp_port);
  t.field("uptime_in_seconds", uptime_s);
  t.field("uptime_in_days", uptime_s / 86400);
}

void info_clients(InfoText& t, const ServerStats& ss) {
  t.section("Clients");
  t.field("connected_clients", ss.connected_clients);
  t.field("maxclients", ss.max_clients);
  t.field("blocked_clients", 0);
}

// Redis's bytesToHuman: "1023B", "1.00K", "12.50M", ...
std::string human_bytes(uint64_t n) {
  static constexpr std::array<char, 5> kUnits = {'K', 'M', 'G', 'T', 'P'};
  if (n < 1024) return fmt::format("{}B", n);
  double d = static_cast<double>(n) / 1024;
  for (char unit : kUnits) {
    if (d < 1024 || unit == 'P') return fmt::format("{:.2f}{}", d, unit);
    d /= 1024;
  }
  return fmt::format("{}B", n);  // not reached
}

// Quire sets no memory limit and evicts nothing.
void info_memory(InfoText& t, const std::function<ProcessMemory()>& source) {
  t.section("Memory");
  std::optional<ProcessMemory> m;
  if (source) m = source();
  if (m) {
    t.field("used_memory", m->allocated_bytes);
    t.field("used_memory_human", human_bytes(m->allocated_bytes));
    t.field("used_memory_rss", m->resident_bytes);
    t.field("used_memory_rss_human", human_bytes(m->resident_bytes));
  }
  t.field("maxmemory", 0);
  t.field("maxmemory_human", "0B");
  t.field("maxmemory_policy", "noeviction");
  if (m) t.field("mem_allocator", m->allocator);
}

// Redis's "%ld.%06ld" seconds of CPU.
std::string cpu_seconds(Nanos t) {
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(t).count();
  return fmt::format("{}.{:06}", us / 1'000'000, us % 1'000'000);
}

void info_cpu(InfoText& t, const std::function<ProcessCpu()>& source) {
  t.section("CPU");
  if (!source) return;
  const ProcessCpu cpu = source();
  t.field("used_cpu_sys", cpu_seconds(cpu.system));
  t.field("used_cpu_user", cpu_seconds(cpu.user));
  t.field("used_cpu_sys_children", "0.000000");
  t.field("used_cpu_user_children", "0.000000");
}

void info_primary_replication(InfoText& t, const NodeFacts& f,
                              const std::vector<StandbyProgress>& standbys) {
  t.section("Replication");
  t.field("role", "master");
  t.field("connected_slaves", standbys.size());
  for (size_t i = 0; i < standbys.size(); i++) {
    const StandbyProgress& s = standbys[i];
    auto [host, port] = split_address(s.address);
    const uint32_t lag_s = f.applied_ts.seconds() > s.applied_ts.seconds()
                               ? f.applied_ts.seconds() - s.applied_ts.seconds()
                               : 0;
    t.text += fmt::format("slave{}:ip={},port={},state={},offset={},lag={}\r\n", i, host, port,
                          s.serving ? "online" : "wait_bgsave", s.applied_lsn.value, lag_s);
  }
  t.field("master_failover_state", "no-failover");
  t.field("master_replid", fmt::format("{:040x}", f.term));
  t.field("master_repl_offset", f.applied_lsn.value);
}

void info_standby_replication(InfoText& t, const NodeFacts& f, bool up,
                              const std::optional<Address>& primary) {
  auto [host, port] = split_address(primary.value_or(""));
  t.section("Replication");
  t.field("role", "slave");
  t.field("master_host", host);
  t.field("master_port", port);
  t.field("master_link_status", up ? "up" : "down");
  t.field("master_last_io_seconds_ago", up ? 0 : -1);
  t.field("master_sync_in_progress", up ? 0 : 1);
  t.field("slave_read_repl_offset", f.commit_lsn.value);
  t.field("slave_repl_offset", f.applied_lsn.value);
  t.field("slave_priority", 100);
  t.field("slave_read_only", 1);
  t.field("replica_announced", 1);
  t.field("connected_slaves", 0);
  t.field("master_replid", fmt::format("{:040x}", f.term));
  t.field("master_repl_offset", f.applied_lsn.value);
}

void info_persistence(InfoText& t, bool loading, const NodeFacts& f) {
  t.section("Persistence");
  t.field("loading", loading ? 1 : 0);
  t.field("async_loading", 0);
  // Every acknowledged write is durable at W page servers before its reply: what
  // appendonly yes with appendfsync always promises, replicated.
  t.field("aof_enabled", 1);
  t.field("aof_rewrite_in_progress", 0);
  t.field("aof_last_write_status", "ok");
  t.field("rdb_changes_since_last_save", 0);
  t.field("rdb_bgsave_in_progress", 0);
  t.field("quire_checkpoint_lsn", f.checkpoint_lsn.value);
}

// What INFO stats reports beyond the server's counters (since CONFIG RESETSTAT).
struct CommandStats {
  uint64_t executed = 0;
  uint64_t rejected = 0;
  uint64_t error_replies = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  std::array<double, 3> rates{};  // per second: commands, input bytes, output bytes
};

void info_stats(InfoText& t, const ServerStats& ss, const CommandStats& cs) {
  t.section("Stats");
  t.field("total_connections_received", ss.total_connections);
  // As Redis: the commands that ran (not those refused before running), EXEC's each.
  t.field("total_commands_processed", cs.executed);
  t.field("instantaneous_ops_per_sec", static_cast<uint64_t>(cs.rates[0] + 0.5));
  t.field("total_net_input_bytes", ss.net_input_bytes);
  t.field("total_net_output_bytes", ss.net_output_bytes);
  t.field("instantaneous_input_kbps", fmt::format("{:.2f}", cs.rates[1] / 1024));
  t.field("instantaneous_output_kbps", fmt::format("{:.2f}", cs.rates[2] / 1024));
  t.field("rejected_connections", ss.rejected_connections);
  t.field("expired_keys", 0);  // Quire keys never expire
  t.field("evicted_keys", 0);  // nor are they evicted (maxmemory 0)
  t.field("keyspace_hits", cs.keyspace_hits);
  t.field("keyspace_misses", cs.keyspace_misses);
  t.field("client_output_buffer_limit_disconnections", ss.output_limit_disconnects);
  t.field("unexpected_error_replies", 0);  // Redis's: errors from its master or AOF
  t.field("total_error_replies", cs.error_replies);
  t.field("quire_commands_executed", cs.executed);
  t.field("quire_commands_rejected", cs.rejected);
  t.field("quire_commands_parsed", ss.total_commands);
}

void info_pickups(InfoText& t, const PickupCounters& p) {
  t.field("quire_pickups_attempts", p.attempts);
  t.field("quire_pickups_installed", p.installed);
  t.field("quire_pickups_stale_keystore_accepted", p.stale_keystore_accepted);
  t.field("quire_pickups_skipped", p.skipped);
  t.field("quire_pickups_keystore_ahead_retries", p.keystore_ahead_retries);
  t.field("quire_pickups_unavailable_retries", p.unavailable_retries);
  t.field("quire_pickups_busy_retries", p.busy_retries);
  t.field("quire_pickups_older_ignored", p.older_ignored);
  t.field("quire_pickups_already_installed", p.already_installed);
  t.field("quire_pickups_corrupt", p.corrupt);
  t.field("quire_pickups_keystore_conflicts", p.keystore_conflicts);
  t.field("quire_pickups_version_too_new", p.version_too_new);
  t.field("quire_pickups_deadline_escalations", p.deadline_escalations);
  t.field("quire_pickups_resyncs", p.resyncs);
}

// The primary's commit groups: counts, and where the commit task's time went (us).
void info_commit_groups(InfoText& t, const PrimaryStats& st) {
  const auto us = [](Nanos d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  t.field("quire_groups_written", st.groups_written);
  t.field("quire_group_records", st.group_records);
  t.field("quire_groups_pipelined", st.groups_pipelined);
  t.field("quire_batches_acked", st.batches_acked);
  t.field("quire_group_retries", st.group_retries);
  t.field("quire_heartbeats", st.heartbeats);
  t.field("quire_commit_hints", st.commit_hints);
  t.field("quire_quorum_sync_us", us(st.quorum_sync));
  t.field("quire_group_pipeline_min", st.group_pipeline_min);
  t.field("quire_group_pipeline_min_changes", st.group_pipeline_min_changes);
  t.field("quire_groups_gathered", st.groups_gathered);
  t.field("quire_group_gathers_timed_out", st.group_gathers_timed_out);
  t.field("quire_group_gather_backoffs", st.group_gather_backoffs);
  t.field("quire_group_gather_wait_us", us(st.group_gather_wait));
  t.field("quire_checkpoints", st.checkpoints);
  t.field("quire_group_writer_wait_us", us(st.group_writer_wait));
  t.field("quire_group_durable_wait_us", us(st.group_durable_wait));
}

void info_quire(InfoText& t, const RespCommands::Serving& s, const NodeFacts& f) {
  t.section("Quire");
  t.field("quire_role", RespCommands::role_name(s.role));
  t.field("quire_state", f.state);
  if (s.role == RespCommands::Role::kLoading) t.field("quire_loading_reason", s.loading_reason);
  t.field("quire_term", f.term);
  t.field("quire_applied_ts", f.applied_ts.value);
  t.field("quire_applied_ts_text", fmt::format("{}", f.applied_ts));
  t.field("quire_applied_lsn", f.applied_lsn.value);
  t.field("quire_checkpoint_lsn", f.checkpoint_lsn.value);
  t.field("quire_checkpoint_ts", f.checkpoint_ts.value);
  t.field("quire_keystore_version", f.keystore_version);
  t.field("quire_kek_version", f.kek_version);
  t.field("quire_cmk_version", f.cmk_version);
  if (f.pickups) info_pickups(t, *f.pickups);
  if (s.primary != nullptr) info_commit_groups(t, s.primary->stats());
}

}  // namespace

Task<std::string> RespCommands::keyspace_lines() {
  std::string lines;
  if (serving().role == Role::kLoading) co_return lines;
  for (uint32_t db = 0; db < options_.databases; db++) {
    auto n = co_await count_keys(db);
    if (n.is_ok() && *n > 0) lines += fmt::format("db{}:keys={},expires=0,avg_ttl=0\r\n", db, *n);
  }
  co_return lines;
}

Task<void> RespCommands::cmd_info(Args& a, ReplyWriter& out) {
  // Redis's order, then Quire's own section. As Redis 7.0: commandstats is in "all" and
  // "everything" only; the others are the default sections.
  static constexpr std::array<std::string_view, 11> kSections = {
      "server", "clients",      "memory",     "persistence", "stats", "replication",
      "cpu",    "commandstats", "errorstats", "keyspace",    "quire"};
  std::set<std::string> want;
  for (size_t j = 1; j < a.size(); j++) want.insert(lower(a[j]));
  const bool everything = want.contains("all") || want.contains("everything");
  const bool defaults = everything || want.empty() || want.contains("default");
  const Serving s = serving();
  const NodeFacts f = gather_node_facts(node_);
  const ServerStats none;
  const ServerStats& ss = server_stats_ ? *server_stats_ : none;
  InfoText t;
  for (std::string_view name : kSections) {
    const bool listed = want.contains(std::string(name));
    if (name == "commandstats" ? !(everything || listed) : !(defaults || listed)) continue;
    if (name == "server") {
      const Nanos up = node_.env().executor().now() - started_at_;
      info_server(t, options_, run_id_,
                  std::chrono::duration_cast<std::chrono::seconds>(up).count());
    } else if (name == "clients") {
      info_clients(t, ss);
    } else if (name == "memory") {
      info_memory(t, options_.process_memory);
    } else if (name == "cpu") {
      info_cpu(t, options_.process_cpu);
    } else if (name == "replication" && s.role == Role::kPrimary) {
      info_primary_replication(t, f, standbys());
    } else if (name == "replication") {
      std::optional<Address> primary;
      if (options_.primary_address) primary = options_.primary_address();
      info_standby_replication(t, f, s.role == Role::kStandby, primary);
    } else if (name == "persistence") {
      info_persistence(t, s.role == Role::kLoading, f);
    } else if (name == "stats") {
      ServerStats since = ss;
      since.total_connections -= stats_base_.server.total_connections;
      since.total_commands -= stats_base_.server.total_commands;
      since.rejected_connections -= stats_base_.server.rejected_connections;
      since.output_limit_disconnects -= stats_base_.server.output_limit_disconnects;
      since.net_input_bytes -= stats_base_.server.net_input_bytes;
      since.net_output_bytes -= stats_base_.server.net_output_bytes;
      const MonoTime now = node_.env().clock().monotonic_now();
      sample_instant(now);
      CommandStats cs;
      cs.executed = commands_executed_ - stats_base_.executed;
      cs.rejected = commands_rejected_ - stats_base_.rejected;
      cs.error_replies = error_replies_;
      cs.keyspace_hits = keyspace_hits_ - stats_base_.keyspace_hits;
      cs.keyspace_misses = keyspace_misses_ - stats_base_.keyspace_misses;
      cs.rates = instant_rates(now);
      info_stats(t, since, cs);
    } else if (name == "commandstats") {
      t.section("Commandstats");
      for (size_t slot = 0; slot < command_counters_.size(); slot++) {
        const CommandCounters& k = command_counters_[slot];
        if (k.calls == 0 && k.rejected == 0 && k.failed == 0) continue;
        const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(k.time).count();
        t.text += fmt::format(
            "cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls={},failed_calls={}"
            "\r\n",
            command_stat_name(slot), k.calls, us,
            k.calls > 0 ? static_cast<double>(us) / static_cast<double>(k.calls) : 0.0, k.rejected,
            k.failed);
      }
    } else if (name == "errorstats") {
      t.section("Errorstats");
      for (const auto& [code, count] : error_counts_) {
        t.text += fmt::format("errorstat_{}:count={}\r\n", code, count);
      }
    } else if (name == "keyspace") {
      t.section("Keyspace");
      t.text += co_await keyspace_lines();
    } else if (name == "quire") {
      info_quire(t, s, f);
    }
  }
  out.bulk(t.text);
}

// MEMORY USAGE: Quire keeps a key's value in pages (and, recently written, in its ingest
// layer); the figure is the bytes its entry takes in a page, before encryption.
Task<void> RespCommands::cmd_memory(Args& a, ClientState& c, ReplyWriter& out) {
  // The dispatcher checked the subcommand and its arity (command_table.cc).
  if (lower(a[1]) == "help") {
    help_reply({"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).", "HELP",
                "    Print this help."},
               out);
    co_return;
  }
  for (size_t j = 3; j < a.size(); j++) {  // SAMPLES is parsed and has nothing to sample
    if (iequals(c_string(a[j]), "samples") && j + 1 < a.size()) {
      std::optional<int64_t> samples = parse_int64(a[j + 1]);
      if (!samples) {
        out.err("value is not an integer or out of range");
        co_return;
      }
      if (*samples < 0) {
        out.err("syntax error");
        co_return;
      }
      j++;
    } else {
      out.err("syntax error");
      co_return;
    }
  }
  auto value = co_await read_one(c, a[2], out);
  if (!value) co_return;
  if (!*value) {
    out.null_bulk();
    co_return;
  }
  out.integer(static_cast<int64_t>(leaf_entry_encoded_size(a[2].size(), (*value)->size())));
}

// ROLE, as INFO replication says it: a primary lists its standbys with their applied
// positions; any other node is a replica of the primary it knows of (if any).
void RespCommands::cmd_role(ReplyWriter& out) {
  const Serving s = serving();
  const NodeFacts f = gather_node_facts(node_);
  if (s.role == Role::kPrimary) {
    const std::vector<StandbyProgress> list = standbys();
    out.array(3);
    out.bulk("master");
    out.integer(static_cast<int64_t>(f.applied_lsn.value));
    out.array(list.size());
    for (const StandbyProgress& p : list) {
      auto [host, port] = split_address(p.address);
      out.array(3);
      out.bulk(host);
      out.bulk(port);
      out.bulk(fmt::format("{}", p.applied_lsn.value));
    }
    return;
  }
  std::optional<Address> primary;
  if (options_.primary_address) primary = options_.primary_address();
  auto [host, port] = split_address(primary.value_or(""));
  const bool up = s.role == Role::kStandby;
  out.array(5);
  out.bulk("slave");
  out.bulk(host);
  out.integer(parse_int64(port).value_or(0));
  out.bulk(up ? "connected" : "connect");
  out.integer(up ? static_cast<int64_t>(f.applied_lsn.value) : -1);
}

}  // namespace quire::resp
