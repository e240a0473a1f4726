// The server commands: CONFIG GET, COMMAND, WAIT and Quire's own QUIRE.* (INFO is
// commands_info.cc).
#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/node_facts.h"

namespace quire::resp {
namespace {

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

// ---- QUIRE.STATUS ----------------------------------------------------------------------

std::string RespCommands::status_json() {
  const Serving s = serving();
  const NodeFacts f = gather_node_facts(node_);
  nlohmann::json j;
  j["node"] = std::string(node_.env().node_name());
  j["role"] = role_name(s.role);
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
  // summary, since and group are what a Redis 7 client may rely on.
  out.array(6);
  out.bulk("summary");
  out.bulk(c.summary);
  out.bulk("since");
  out.bulk(c.since);
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
  // Polls until enough standbys applied the write, the timeout, or the node stops being
  // the primary (its standbys' progress then says nothing about this write's fate).
  while (n < *wanted && exec.now() < deadline && serving().role == Role::kPrimary) {
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
