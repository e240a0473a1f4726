// `quire bench pageserver`: write throughput and latency of the page service through a
// ReplicationClient, against running servers or an in-process server on a data directory.
// With a data directory it also measures, in the same run and on the same disk, the
// baseline every durable write is bound by: one append + fdatasync at a time.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/histogram.h"
#include "cli/bench_run.h"
#include "cli/command.h"
#include "cli/data_dir_lock.h"
#include "cli/local_page_server.h"
#include "pagelog/replication_client.h"
#include "runtime/real/csprng_random.h"

namespace quire::cli {

namespace {

constexpr NodeId kServerNode = 1;
constexpr NodeId kClientNode = 2;
constexpr Nanos kServerStartTimeout = std::chrono::minutes(10);
constexpr Nanos kProbeTimeout = std::chrono::seconds(5);
// The whole write phase; each write is bounded by --timeout-ms on its own.
constexpr Nanos kWritePhaseMax = std::chrono::hours(1);
// Distinct random payloads cycled through, bounded in bytes so large records stay cheap.
constexpr size_t kPayloadPoolCountMax = 64;
constexpr size_t kPayloadPoolBytesMax = 64u << 20;
constexpr uint64_t kConcurrencyMax = 1024;
// The raw baseline runs at least this long (or all N writes).
constexpr Nanos kRawBaselineMin = std::chrono::seconds(1);
constexpr const char* kRawFileName = "bench-raw-fdatasync";

struct BenchFlags {
  std::vector<std::string> servers;
  std::string data;
  uint64_t records = 0;
  uint64_t size = 0;
  uint64_t concurrency = 16;
  uint64_t timeout_ms = 30000;
  std::string json_path;
  std::string log_path;
  std::string log_level = "warning";
};

// ---- the page service run

// What the writer tasks share.
struct WritePhase {
  uint64_t first_lsn = 1;
  uint64_t last_lsn = 0;
  uint64_t next_lsn = 1;
  Term term{1};
  Nanos write_timeout{};
  std::vector<Bytes> payloads;
  uint64_t acked = 0;
  uint64_t failed = 0;
  Status first_error;
  size_t writers_running = 0;
  MonoTime started;
  MonoTime finished;
  Histogram latency_us;
};

// Every kPageEvery-th record is a full image of one of kPagesMax pages.
constexpr uint64_t kPageEvery = 8;
constexpr uint64_t kPagesMax = 256;
constexpr int kGetPageCalls = 2000;

// Reads pages as of the durable LSN one call at a time (the index is in memory and the
// pages were just written: a warm read), recording each call's latency.
Task<void> read_pages(Env& env, ReplicationClient& client, Lsn as_of, uint64_t pages,
                      Histogram& latency_us, uint64_t& failures, bool& done) {
  auto rng = env.random_stream("bench-get-page");
  for (int i = 0; i < kGetPageCalls && pages > 0; ++i) {
    PageId page(1 + rng->uniform(pages));
    const MonoTime start = env.executor().now();
    auto r = co_await client.get_page(TableId(1), page, as_of, env.executor().deadline_after(5s));
    const MonoTime end = env.executor().now();
    if (r.is_ok()) {
      latency_us.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
    } else {
      failures++;
    }
  }
  done = true;
}

// Takes the next LSN and writes it, one record per call, until every LSN is taken or a
// write fails (then the others stop too: the run has failed).
Task<void> write_records(Env& env, ReplicationClient& client, WritePhase& phase) {
  while (phase.first_error.is_ok() && phase.next_lsn <= phase.last_lsn) {
    const uint64_t lsn = phase.next_lsn++;
    Record r;
    r.type = RecordType::kLog;
    if (lsn % kPageEvery == 0) {
      // Some full page images, so the read phase has pages to get.
      r.type = RecordType::kPage;
      r.table = TableId(1);
      r.page = PageId(1 + (lsn / kPageEvery) % kPagesMax);
    }
    r.lsn = Lsn(lsn);
    r.prev_lsn = Lsn(lsn - 1);
    r.term = phase.term;
    r.payload = phase.payloads[lsn % phase.payloads.size()];
    std::vector<Record> batch;
    batch.push_back(std::move(r));
    const MonoTime start = env.executor().now();
    Status st =
        co_await client.write(std::move(batch), env.executor().deadline_after(phase.write_timeout));
    const MonoTime end = env.executor().now();
    if (st.is_ok()) {
      phase.acked++;
      phase.latency_us.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
    } else {
      phase.failed++;
      if (phase.first_error.is_ok()) phase.first_error = std::move(st).with("lsn", lsn);
    }
  }
  if (--phase.writers_running == 0) phase.finished = env.executor().now();
}

// ---- the raw baseline

struct RawBaseline {
  uint64_t writes = 0;
  double seconds = 0;
  Histogram latency_us;
};

// Appends `bytes`-byte blocks to a fresh file in `dir` with one fdatasync each, as one
// synced write at a time would: `count` times, or until `duration` passed (at least one).
Result<std::unique_ptr<RawBaseline>> measure_raw_fdatasync(const std::string& dir, size_t bytes,
                                                           uint64_t count, Nanos duration,
                                                           const Bytes& fill) {
  std::string path = dir + "/" + kRawFileName;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  auto raw = std::make_unique<RawBaseline>();
  Status error;
  const auto start = std::chrono::steady_clock::now();
  uint64_t offset = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (i > 0 && t0 - start >= duration) break;
    size_t done = 0;
    // Each round writes at least one byte or fails, so it runs at most `bytes` times.
    while (done < bytes && error.is_ok()) {
      ssize_t n = ::pwrite(fd, fill.data() + done, bytes - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        error = io_error(fmt::format("write {}: {}", path, std::strerror(errno)));
      else
        done += static_cast<size_t>(n);
    }
    if (error.is_ok() && ::fdatasync(fd) != 0)
      error = io_error(fmt::format("fdatasync {}: {}", path, std::strerror(errno)));
    if (!error.is_ok()) break;
    offset += bytes;
    const auto t1 = std::chrono::steady_clock::now();
    raw->latency_us.record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
    raw->writes++;
  }
  raw->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  ::unlink(path.c_str());
  if (!error.is_ok()) return error;
  return raw;
}

// ---- the command

int fail(const std::string& message) {
  fmt::print(stderr, "quire bench pageserver: {}\n", message);
  return kExitFailed;
}

int run_bench_pageserver(const BenchFlags& flags) {
  if (flags.servers.empty() == flags.data.empty()) {
    fmt::print(stderr, "quire bench pageserver: give exactly one of --servers and --data\n");
    return kExitUsage;
  }
  std::unique_ptr<DataDirLock> lock;
  if (!flags.data.empty()) {
    auto locked = DataDirLock::acquire(flags.data);
    if (!locked.is_ok()) return fail(locked.status().message());
    lock = std::move(locked).value();
  }
  auto sink = open_log_sink(flags.log_path);
  if (!sink.is_ok()) return fail(sink.status().message());
  const Severity severity = *parse_severity(flags.log_level);

  RealLoop loop;
  if (Status st = loop.watch_signals(); !st.is_ok()) return fail(st.to_string());

  // With --data: the server node, on this loop, over loopback TCP.
  std::unique_ptr<LocalPageServer> local;
  std::vector<Address> servers(flags.servers.begin(), flags.servers.end());
  if (!flags.data.empty()) {
    PageServerOptions options;
    options.listen = "127.0.0.1:0";
    options.store.dir = "segments";
    local = std::make_unique<LocalPageServer>(loop, kServerNode, flags.data, std::move(options),
                                              sink->get(), severity);
    Result<Address> bound = local->start(kServerStartTimeout);
    if (!bound.is_ok())
      return fail(fmt::format("in-process page server: {}", bound.status().message()));
    servers = {*bound};
  }
  const size_t write_quorum = std::min<size_t>(2, servers.size());

  // The client node never touches its disk; its data directory is only nominal.
  RealEnv client_env(loop, kClientNode, "bench", flags.data.empty() ? "." : flags.data, sink->get(),
                     severity);
  auto phase = std::make_unique<WritePhase>();
  {
    ProbeResult probe;
    bool done = run_task_to_end(loop, client_env, "bench-probe",
                                probe_servers(client_env, servers, kProbeTimeout, &probe),
                                kProbeTimeout * static_cast<int64_t>(servers.size() + 1));
    if (!done) {
      loop.scheduler().destroy_node(kClientNode);
      return fail(loop.stop_signal() != 0 ? "interrupted"
                                          : "the servers did not answer a status call in time");
    }
    if (probe.answered < write_quorum) {
      return fail(fmt::format("{} of {} servers answered, fewer than the write quorum {}: {}",
                              probe.answered, servers.size(), write_quorum,
                              probe.first_error.to_string()));
    }
    // Continue the servers' chain, so the bench can run again against the same servers.
    phase->first_lsn = probe.last_lsn.value + 1;
    phase->term = std::max(probe.term, Term(1));
  }
  phase->next_lsn = phase->first_lsn;
  phase->last_lsn = phase->first_lsn + flags.records - 1;
  phase->write_timeout = std::chrono::milliseconds(flags.timeout_ms);
  {
    CsprngRandom random;
    size_t pool = std::clamp<size_t>(kPayloadPoolBytesMax / std::max<uint64_t>(flags.size, 1), 1,
                                     kPayloadPoolCountMax);
    pool = std::min<size_t>(pool, flags.records);
    for (size_t i = 0; i < pool; ++i) {
      Bytes payload(flags.size);
      random.fill(payload);
      phase->payloads.push_back(std::move(payload));
    }
  }

  ReplicationOptions options;
  options.servers = servers;
  options.write_quorum = write_quorum;
  options.term = phase->term;
  auto client = std::make_unique<ReplicationClient>(client_env, options);
  const size_t writers = std::min<uint64_t>(flags.concurrency, flags.records);
  phase->writers_running = writers;
  phase->started = client_env.executor().now();
  for (size_t i = 0; i < writers; ++i) {
    client_env.executor().spawn(fmt::format("bench-writer-{}", i),
                                write_records(client_env, *client, *phase));
  }
  bool finished = loop.run_until([&] { return phase->writers_running == 0; }, kWritePhaseMax);
  const Lsn durable_lsn = client->durable_lsn();
  // The read phase: get_page from a warm index, only after a complete write phase (pages
  // written by earlier runs against the same servers count too).
  Histogram get_page_us;
  uint64_t get_page_failures = 0;
  if (finished && phase->first_error.is_ok()) {
    uint64_t pages = std::min<uint64_t>(kPagesMax, phase->last_lsn / kPageEvery);
    bool reads_done = false;
    client_env.executor().spawn("bench-get-page",
                                read_pages(client_env, *client, durable_lsn, pages, get_page_us,
                                           get_page_failures, reads_done));
    loop.run_until([&] { return reads_done; }, kWritePhaseMax);
  }
  loop.scheduler().destroy_node(kClientNode);  // the writers and re-sends reference the client
  client.reset();
  if (!finished) {
    phase->finished = loop.now();
    if (phase->first_error.is_ok()) {
      phase->first_error = loop.stop_signal() != 0
                               ? cancelled("interrupted")
                               : deadline_exceeded("the write phase did not end in time");
    }
  }
  if (local && !local->env().restart_requested().is_ok()) {
    return fail(fmt::format("the in-process page server asked to be restarted: {}",
                            local->env().restart_requested().to_string()));
  }
  local.reset();  // the server is done before the baseline has the disk to itself

  const double seconds = std::chrono::duration<double>(phase->finished - phase->started).count();
  const double ops = per_second(phase->acked, seconds);
  const double mb = ops * static_cast<double>(flags.size) / 1e6;

  std::unique_ptr<RawBaseline> raw;
  if (!flags.data.empty() && phase->first_error.is_ok()) {
    Bytes fill(flags.size + kRecordHeaderBytes);
    CsprngRandom().fill(fill);
    Nanos duration = std::max(
        kRawBaselineMin, std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(seconds)));
    auto measured = measure_raw_fdatasync(flags.data, fill.size(), flags.records, duration, fill);
    if (!measured.is_ok())
      return fail(fmt::format("raw fdatasync baseline: {}", measured.status().to_string()));
    raw = std::move(measured).value();
  }
  const double raw_ops = raw ? per_second(raw->writes, raw->seconds) : 0.0;

  fmt::print("quire bench pageserver: {} records of {} bytes, concurrency {}, W={} of {}{}\n",
             flags.records, flags.size, writers, write_quorum, fmt::join(servers, ","),
             flags.data.empty() ? "" : fmt::format(" (in-process server on {})", flags.data));
  fmt::print("  acked {} of {} (lsn {}..{}), durable_lsn {}, {:.2f} s\n", phase->acked,
             flags.records, phase->first_lsn, phase->last_lsn, durable_lsn, seconds);
  fmt::print("  {:.0f} ops/s, {:.1f} MB/s; latency {}\n", ops, mb, phase->latency_us.summary("us"));
  if (get_page_us.count() > 0 || get_page_failures > 0) {
    fmt::print("  get_page (warm index, one call at a time): {}; failures {}\n",
               get_page_us.summary("us"), get_page_failures);
  }
  if (raw) {
    fmt::print(
        "  raw append+fdatasync of {} bytes on the same disk, one at a time: {} writes in {:.2f} "
        "s, {:.0f} ops/s, "
        "{:.1f} MB/s; latency {}\n",
        flags.size + kRecordHeaderBytes, raw->writes, raw->seconds, raw_ops,
        raw_ops * static_cast<double>(flags.size) / 1e6, raw->latency_us.summary("us"));
    fmt::print("  ratio_vs_raw_fdatasync {:.2f}\n", raw_ops > 0 ? ops / raw_ops : 0.0);
  }
  if (!phase->first_error.is_ok())
    fmt::print("  first error: {}\n", phase->first_error.to_string());

  if (!flags.json_path.empty()) {
    nlohmann::ordered_json j;
    j["mode"] = flags.data.empty() ? "servers" : "data";
    j["servers"] = servers;
    if (!flags.data.empty()) j["data"] = flags.data;
    j["write_quorum"] = write_quorum;
    j["records"] = flags.records;
    j["size_bytes"] = flags.size;
    j["concurrency"] = writers;
    j["first_lsn"] = phase->first_lsn;
    j["acked"] = phase->acked;
    j["failed"] = phase->failed;
    j["durable_lsn"] = durable_lsn.value;
    j["seconds"] = seconds;
    j["ops_per_s"] = ops;
    j["mb_per_s"] = mb;
    j["latency_p50_us"] = phase->latency_us.p50();
    j["latency_p99_us"] = phase->latency_us.p99();
    j["latency_max_us"] = phase->latency_us.max();
    j["get_page_calls"] = get_page_us.count();
    j["get_page_failures"] = get_page_failures;
    j["get_page_p50_us"] = get_page_us.p50();
    j["get_page_p99_us"] = get_page_us.p99();
    if (raw) {
      j["raw_fdatasync_writes"] = raw->writes;
      j["raw_fdatasync_seconds"] = raw->seconds;
      j["raw_fdatasync_ops_per_s"] = raw_ops;
      j["raw_fdatasync_mb_per_s"] = raw_ops * static_cast<double>(flags.size) / 1e6;
      j["raw_fdatasync_p50_us"] = raw->latency_us.p50();
      j["raw_fdatasync_p99_us"] = raw->latency_us.p99();
      j["ratio_vs_raw_fdatasync"] = raw_ops > 0 ? ops / raw_ops : 0.0;
    }
    j["error"] = phase->first_error.is_ok() ? "" : phase->first_error.to_string();
    if (Status st = write_json_file(flags.json_path, j); !st.is_ok()) return fail(st.message());
  }
  return phase->first_error.is_ok() && phase->acked == flags.records ? kExitOk : kExitFailed;
}

}  // namespace

void add_bench_commands(CLI::App& app, Commands& commands) {
  CLI::App* bench =
      app.add_subcommand("bench", "benchmarks: they print figures, never a verdict on speed");
  bench->require_subcommand(1);

  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = bench->add_subcommand("pageserver", "write throughput of the page service");
  cmd->footer(
      "Writes N LOG records (chained by prev_lsn, continuing the servers' chain) through a "
      "ReplicationClient with W = min(2, servers), K writes in flight of one record each, and "
      "report acked, durable_lsn, ops/s, MB/s (payload bytes, 10^6) and latency. With --data, "
      "runs an in-process server on DIR over loopback TCP and also measures raw append + "
      "fdatasync of the same frame size on DIR, one at a time (N writes or as long as the run, "
      "at least 1 s), reporting ratio_vs_raw_fdatasync = ops/s / raw ops/s. Exit 1 unless every "
      "write was acknowledged; 2 on bad usage (also: neither or both of --servers and --data).");
  CLI::Option* servers = cmd->add_option("--servers", flags->servers, "page servers to write to")
                             ->delimiter(',')
                             ->check(tcp_address_validator());
  CLI::Option* data =
      cmd->add_option("--data", flags->data, "run an in-process page server on this data directory")
          ->check(nonempty_validator());
  servers->excludes(data);
  cmd->add_option("--records", flags->records, "records to write")
      ->required()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--size", flags->size, "payload bytes per record")
      ->required()
      ->check(CLI::Range(uint64_t{0}, uint64_t{kRecordPayloadMax}));
  cmd->add_option("--concurrency", flags->concurrency, "writes in flight")
      ->check(CLI::Range(uint64_t{1}, kConcurrencyMax))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", flags->timeout_ms, "deadline of each write")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--json", flags->json_path, "also write the figures as JSON to this file");
  cmd->add_option("--log", flags->log_path, "append log lines to this file (default: stderr)");
  cmd->add_option("--log-level", flags->log_level, "lowest severity logged")
      ->check(severity_validator())
      ->capture_default_str();
  commands.push_back({cmd, [flags] { return run_bench_pageserver(*flags); }});

  add_bench_engine_command(*bench, commands);
}

}  // namespace quire::cli
