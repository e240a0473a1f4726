// `quire pl`: tools for the page service's log. `status` asks a running server; `verify`
// and `dump` read a data directory's segment files offline (pagelog/segment_files.h: no
// server, and nothing is written).

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crc32c.h"
#include "cli/command.h"
#include "pagelog/page_server.h"
#include "pagelog/segment_files.h"
#include "pagelog/segment_format.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::cli {

namespace {

constexpr NodeId kToolNode = 1;

// ---- status

struct StatusFlags {
  std::string server;
  uint64_t timeout_ms = 5000;
  TlsFlags tls;
};

Task<void> fetch_status(PageServerClient& client, Deadline deadline,
                        std::optional<Result<PageServerStatus>>* out) {
  *out = co_await client.status(deadline);
}

int run_pl_status(const StatusFlags& flags) {
  RealLoop loop;
  StreamLogSink sink(stderr);
  RealEnv env(loop, kToolNode, "pl", ".", &sink, Severity::kError);
  if (Status st = enable_tls_flags(env, flags.tls); !st.is_ok()) {
    fmt::print(stderr, "quire pl status: {}\n", st.message());
    return kExitFailed;
  }
  auto client = std::make_unique<PageServerClient>(env, flags.server);
  std::optional<Result<PageServerStatus>> result;
  const auto timeout = std::chrono::milliseconds(flags.timeout_ms);
  TaskId id = env.executor().spawn(
      "pl-status", fetch_status(*client, env.executor().deadline_after(timeout), &result));
  // The call's own deadline ends it; the margin only covers the loop's turns.
  loop.run_until([&] { return env.executor().is_done(id); }, timeout + std::chrono::seconds(1));
  loop.scheduler().destroy_node(kToolNode);  // the call references the client
  client.reset();
  if (!result.has_value() || !result->is_ok()) {
    std::string why = result.has_value() ? result->status().to_string() : "no answer";
    fmt::print(
        stderr, "quire pl status: cannot get the status of {}: {}{}\n", flags.server, why,
        flags.tls.given() ? "" : " (a server with TLS needs --tls-ca, --tls-cert and --tls-key)");
    return kExitFailed;
  }
  const PageServerStatus& s = **result;
  nlohmann::ordered_json j;
  j["last_lsn"] = s.last_lsn.value;
  j["durable_lsn"] = s.durable_lsn.value;
  j["segments"] = s.segments;
  j["sealed_count"] = s.sealed_count;
  j["term"] = s.term.value;
  j["records"] = s.records;
  j["bytes"] = s.bytes;
  j["damaged_ranges"] = nlohmann::ordered_json::array();
  for (const auto& d : s.damaged_ranges) {
    nlohmann::ordered_json range;
    range["segment"] = d.segment;
    range["begin"] = d.begin;
    range["end"] = d.end;
    j["damaged_ranges"].push_back(std::move(range));
  }
  fmt::print("{}\n", j.dump(2));
  return kExitOk;
}

// ---- reading segment files

// ---- verify

struct VerifyFlags {
  std::string data;
};

std::string format_ranges(const std::vector<ByteRange>& ranges) {
  std::string out;
  for (const auto& r : ranges)
    out += fmt::format("{}[{}, {})", out.empty() ? "" : " ", r.begin, r.end);
  return out;
}

int run_pl_verify(const VerifyFlags& flags) {
  auto files = list_segment_files(flags.data);
  if (!files.is_ok()) {
    fmt::print(stderr, "quire pl verify: {}\n", files.status().message());
    return kExitFailed;
  }
  uint64_t records_total = 0;
  uint64_t markers_total = 0;  // the server's own ABANDON and TERM markers
  uint64_t damaged_total = 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const SegmentFile& f = (*files)[i];
    const bool newest = i + 1 == files->size();
    auto bytes = read_segment_file(f.path);
    if (!bytes.is_ok()) {
      fmt::print(stderr, "quire pl verify: {}\n", bytes.status().message());
      return kExitFailed;
    }
    SegmentScan scan = scan_segment(*bytes, f.number);
    // As the server's recovery sees it: part of a crashed last write is a torn tail.
    if (newest) cut_at_lost_sector(*bytes, scan);
    const uint64_t file_bytes = bytes->size();
    if (!scan.header_status.is_ok()) {
      // The store rewrites a newest segment cut short inside its header (a crash while
      // creating it); any other bad header loses the whole file.
      if (newest && file_bytes <= kSegmentHeaderBytes) {
        fmt::print(
            "{}: records 0, file {} bytes, torn header (newest segment: the server rewrites it on "
            "start)\n",
            f.name, file_bytes);
      } else {
        fmt::print("{}: file {} bytes, DAMAGED header ({}): damaged [0, {})\n", f.name, file_bytes,
                   scan.header_status.to_string(), file_bytes);
        damaged_total++;
      }
      continue;
    }
    uint64_t record_bytes = 0;
    uint64_t markers = 0;
    for (const auto& r : scan.records) {
      record_bytes += r.size;
      if (record_type_is_internal(r.header.type)) markers++;
    }
    records_total += scan.records.size() - markers;
    markers_total += markers;
    std::vector<ByteRange> damaged = scan.damaged;
    std::string tail;
    if (scan.has_tail && scan.zero_tail) {
      tail = fmt::format(", zeros written ahead [{}, {}){}", scan.valid_end, file_bytes,
                         newest ? "" : " (a sealed segment: the server cuts them off on start)");
    } else if (scan.has_tail) {
      if (newest) {
        tail =
            fmt::format(", torn tail [{}, {}) (newest segment: the server truncates it on start)",
                        scan.valid_end, file_bytes);
      } else {
        damaged.push_back({scan.valid_end, file_bytes});  // a sealed segment has no tail to lose
      }
    }
    damaged_total += damaged.size();
    fmt::print("{}: records {}{}, bytes {}, file {} bytes, {}{}\n", f.name,
               scan.records.size() - markers,
               markers == 0 ? "" : fmt::format(" and markers {}", markers), record_bytes,
               file_bytes, damaged.empty() ? "intact" : "DAMAGED " + format_ranges(damaged), tail);
  }
  fmt::print("totals: records={} segments={} damaged_ranges={}{}\n", records_total, files->size(),
             damaged_total, markers_total == 0 ? "" : fmt::format(" markers={}", markers_total));
  fmt::print("{}\n", damaged_total == 0 ? "INTACT" : "DAMAGED");
  return damaged_total == 0 ? kExitOk : kExitFailed;
}

// ---- dump

struct DumpFlags {
  std::string data;
  uint64_t table = 0;
  uint64_t page = 0;
  CLI::Option* table_option = nullptr;
  CLI::Option* page_option = nullptr;
};

int run_pl_dump(const DumpFlags& flags) {
  auto files = list_segment_files(flags.data);
  if (!files.is_ok()) {
    fmt::print(stderr, "quire pl dump: {}\n", files.status().message());
    return kExitFailed;
  }
  const bool by_table = flags.table_option->count() > 0;
  const bool by_page = flags.page_option->count() > 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const SegmentFile& f = (*files)[i];
    auto bytes = read_segment_file(f.path);
    if (!bytes.is_ok()) {
      fmt::print(stderr, "quire pl dump: {}\n", bytes.status().message());
      return kExitFailed;
    }
    SegmentScan scan = scan_segment(*bytes, f.number);
    if (i + 1 == files->size()) cut_at_lost_sector(*bytes, scan);  // as recovery does
    if (!scan.header_status.is_ok()) {
      fmt::print(stderr, "# {}: bad header: {}\n", f.name, scan.header_status.to_string());
      continue;
    }
    for (const auto& r : scan.damaged)
      fmt::print(stderr, "# {}: damaged [{}, {})\n", f.name, r.begin, r.end);
    if (scan.has_tail)
      fmt::print(stderr, "# {}: {} [{}, {})\n", f.name,
                 scan.zero_tail ? "zeros written ahead" : "tail", scan.valid_end, bytes->size());
    for (const ScannedRecord& r : scan.records) {
      const RecordHeader& h = r.header;
      if (by_table && h.table.value != flags.table) continue;
      if (by_page && h.page.value != flags.page) continue;
      uint32_t payload_crc =
          crc32c::value(bytes->data() + r.offset + kRecordHeaderBytes, h.payload_size);
      fmt::print(
          "segment={} offset={} type={} table={} page={} lsn={} prev_lsn={} base_lsn={} "
          "backlink_lsn={} term={} payload_bytes={} payload_crc32c={:08x}\n",
          f.number, r.offset, record_type_name(h.type), h.table, h.page, h.lsn, h.prev_lsn,
          h.base_lsn, h.backlink_lsn, h.term, h.payload_size, payload_crc);
    }
  }
  return kExitOk;
}

}  // namespace

void add_pl_commands(CLI::App& app, Commands& commands) {
  CLI::App* pl = app.add_subcommand("pl", "page service log tools");
  pl->require_subcommand(1);

  auto status = std::make_shared<StatusFlags>();
  CLI::App* status_cmd = pl->add_subcommand(
      "status", "print a page server's status as JSON; exit 1 when it cannot be reached");
  status_cmd->add_option("--server", status->server, "the page server")
      ->required()
      ->check(tcp_address_validator());
  status_cmd->add_option("--timeout-ms", status->timeout_ms, "how long to wait for the answer")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3600000}))
      ->capture_default_str();
  add_tls_flags(*status_cmd, status->tls);
  commands.push_back({status_cmd, [status] { return run_pl_status(*status); }});

  auto verify = std::make_shared<VerifyFlags>();
  CLI::App* verify_cmd =
      pl->add_subcommand("verify", "check a data directory's segment files offline");
  verify_cmd->footer(
      "Reads every segment file (stop the server first, or the "
      "newest segment may be caught mid-write). Prints each segment's records (and the "
      "server's own ABANDON and TERM markers, counted apart), bytes and damaged ranges, then "
      "totals. Exit 0 when intact, 1 when anything is damaged. Damaged: a "
      "corrupt range, a bad segment header, or bytes after the last valid record of a sealed "
      "segment. Not damage: such a torn tail (or a header cut short) on the newest segment, "
      "which a crash mid-write leaves and the server drops on start; it is reported as "
      "\"torn tail\".");
  verify_cmd->add_option("--data", verify->data, "the page server's data directory")
      ->required()
      ->check(nonempty_validator());
  commands.push_back({verify_cmd, [verify] { return run_pl_verify(*verify); }});

  auto dump = std::make_shared<DumpFlags>();
  CLI::App* dump_cmd =
      pl->add_subcommand("dump", "print a data directory's records offline, one per line");
  dump_cmd->footer(
      "One line per valid record: segment, "
      "offset, type, table, page, lsn, prev_lsn, base_lsn, backlink_lsn, term, payload length "
      "and payload CRC32C (never the payload). Damaged ranges are noted on stderr. Exit 1 only "
      "when the files cannot be read.");
  dump_cmd->add_option("--data", dump->data, "the page server's data directory")
      ->required()
      ->check(nonempty_validator());
  dump->table_option =
      dump_cmd->add_option("--table", dump->table, "only records of this table id");
  dump->page_option = dump_cmd->add_option("--page", dump->page, "only records of this page id");
  commands.push_back({dump_cmd, [dump] { return run_pl_dump(*dump); }});
}

}  // namespace quire::cli
