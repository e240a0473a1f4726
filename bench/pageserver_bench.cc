#include "bench/pageserver_bench.h"

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
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/histogram.h"
#include "bench/bench_run.h"
#include "bench/data_dir_lock.h"
#include "bench/local_page_server.h"
#include "pagelog/replication_client.h"
#include "runtime/real/csprng_random.h"

namespace quire::bench {

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
// The raw baseline runs at least this long (or all N writes).
constexpr Nanos kRawBaselineMin = std::chrono::seconds(1);
constexpr const char* kRawFileName = "bench-raw-fdatasync";

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

// ---- the run

// What one run measured.
struct PageserverRun {
  std::vector<Address> servers;
  size_t write_quorum = 0;
  size_t writers = 0;
  std::unique_ptr<WritePhase> phase = std::make_unique<WritePhase>();
  Lsn durable_lsn;
  Histogram get_page_us;
  uint64_t get_page_failures = 0;
  std::unique_ptr<RawBaseline> raw;  // with --data, after a complete write phase
  double seconds = 0;
  double ops = 0;  // acknowledged writes per second
  double mb = 0;   // payload MB (10^6) per second
  double raw_ops = 0;
};

// The in-process server node on `options.data`, on `loop`, over loopback TCP; `bound` is
// the address it listens on.
Result<std::unique_ptr<LocalPageServer>> start_local_server(RealLoop& loop,
                                                            const PageserverBenchOptions& options,
                                                            Address& bound_address) {
  PageServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  server_options.store.dir = "segments";
  auto local = std::make_unique<LocalPageServer>(
      loop, kServerNode, options.data, std::move(server_options), options.sink, options.severity);
  if (options.tls) {
    Status st = local->env().enable_tls(*options.tls);
    if (!st.is_ok())
      return Status(st.code(), fmt::format("in-process page server: {}", st.message()));
  }
  Result<Address> bound = local->start(kServerStartTimeout);
  if (!bound.is_ok())
    return Status(bound.status().code(),
                  fmt::format("in-process page server: {}", bound.status().message()));
  bound_address = *bound;
  return local;
}

// Asks the servers where their chain ends, so the writes continue it (and the bench can
// run again against the same servers).
Status continue_chain(RealLoop& loop, RealEnv& client_env, PageserverRun& run) {
  ProbeResult probe;
  bool done = run_task_to_end(loop, client_env, "bench-probe",
                              probe_servers(client_env, run.servers, kProbeTimeout, &probe),
                              kProbeTimeout * static_cast<int64_t>(run.servers.size() + 1));
  if (!done) {
    loop.scheduler().destroy_node(kClientNode);
    return loop.stop_signal() != 0
               ? cancelled("interrupted")
               : deadline_exceeded("the servers did not answer a status call in time");
  }
  if (probe.answered < run.write_quorum) {
    return unavailable(fmt::format("{} of {} servers answered, fewer than the write quorum {}: {}",
                                   probe.answered, run.servers.size(), run.write_quorum,
                                   probe.first_error.to_string()));
  }
  run.phase->first_lsn = probe.last_lsn.value + 1;
  run.phase->term = std::max(probe.term, Term(1));
  return Status::ok();
}

// The LSNs to write and the distinct random payloads cycled through.
void plan_writes(const PageserverBenchOptions& options, WritePhase& phase) {
  phase.next_lsn = phase.first_lsn;
  phase.last_lsn = phase.first_lsn + options.records - 1;
  phase.write_timeout = std::chrono::milliseconds(options.timeout_ms);
  CsprngRandom random;
  size_t pool = std::clamp<size_t>(kPayloadPoolBytesMax / std::max<uint64_t>(options.size, 1), 1,
                                   kPayloadPoolCountMax);
  pool = std::min<size_t>(pool, options.records);
  for (size_t i = 0; i < pool; ++i) {
    Bytes payload(options.size);
    random.fill(payload);
    phase.payloads.push_back(std::move(payload));
  }
}

// The write phase, K writers at once, then (after a complete one) the read phase: get_page
// from a warm index (pages written by earlier runs against the same servers count too).
// Ends the client node.
void write_and_read(RealLoop& loop, RealEnv& client_env, const PageserverBenchOptions& options,
                    PageserverRun& run) {
  WritePhase& phase = *run.phase;
  ReplicationOptions replication;
  replication.servers = run.servers;
  replication.write_quorum = run.write_quorum;
  replication.term = phase.term;
  auto client = std::make_unique<ReplicationClient>(client_env, replication);
  run.writers = std::min<uint64_t>(options.concurrency, options.records);
  phase.writers_running = run.writers;
  phase.started = client_env.executor().now();
  for (size_t i = 0; i < run.writers; ++i) {
    client_env.executor().spawn(fmt::format("bench-writer-{}", i),
                                write_records(client_env, *client, phase));
  }
  bool finished = loop.run_until([&] { return phase.writers_running == 0; }, kWritePhaseMax);
  run.durable_lsn = client->durable_lsn();
  if (finished && phase.first_error.is_ok()) {
    uint64_t pages = std::min<uint64_t>(kPagesMax, phase.last_lsn / kPageEvery);
    bool reads_done = false;
    client_env.executor().spawn(
        "bench-get-page", read_pages(client_env, *client, run.durable_lsn, pages, run.get_page_us,
                                     run.get_page_failures, reads_done));
    loop.run_until([&] { return reads_done; }, kWritePhaseMax);
  }
  loop.scheduler().destroy_node(kClientNode);  // the writers and re-sends reference the client
  client.reset();
  if (!finished) {
    phase.finished = loop.now();
    if (phase.first_error.is_ok()) {
      phase.first_error = loop.stop_signal() != 0
                              ? cancelled("interrupted")
                              : deadline_exceeded("the write phase did not end in time");
    }
  }
}

// With --data, after a complete write phase: raw append + fdatasync of the same frame size
// on the same disk, N writes or as long as the write phase (at least kRawBaselineMin).
Status measure_baseline(const PageserverBenchOptions& options, PageserverRun& run) {
  if (options.data.empty() || !run.phase->first_error.is_ok()) return Status::ok();
  Bytes fill(options.size + kRecordHeaderBytes);
  CsprngRandom().fill(fill);
  Nanos duration =
      std::max(kRawBaselineMin,
               std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(run.seconds)));
  auto measured = measure_raw_fdatasync(options.data, fill.size(), options.records, duration, fill);
  if (!measured.is_ok())
    return io_error(fmt::format("raw fdatasync baseline: {}", measured.status().to_string()));
  run.raw = std::move(measured).value();
  run.raw_ops = per_second(run.raw->writes, run.raw->seconds);
  return Status::ok();
}

void print_report(const PageserverBenchOptions& options, const PageserverRun& run) {
  const WritePhase& phase = *run.phase;
  fmt::print("quire bench pageserver: {} records of {} bytes, concurrency {}, W={} of {}{}, {}\n",
             options.records, options.size, run.writers, run.write_quorum,
             fmt::join(run.servers, ","),
             options.data.empty() ? "" : fmt::format(" (in-process server on {})", options.data),
             options.tls ? "mutual TLS" : "plaintext");
  fmt::print("  acked {} of {} (lsn {}..{}), durable_lsn {}, {:.2f} s\n", phase.acked,
             options.records, phase.first_lsn, phase.last_lsn, run.durable_lsn, run.seconds);
  fmt::print("  {:.0f} ops/s, {:.1f} MB/s; latency {}\n", run.ops, run.mb,
             phase.latency_us.summary("us"));
  if (run.get_page_us.count() > 0 || run.get_page_failures > 0) {
    fmt::print("  get_page (warm index, one call at a time): {}; failures {}\n",
               run.get_page_us.summary("us"), run.get_page_failures);
  }
  if (run.raw) {
    fmt::print(
        "  raw append+fdatasync of {} bytes on the same disk, one at a time: {} writes in {:.2f} "
        "s, {:.0f} ops/s, "
        "{:.1f} MB/s; latency {}\n",
        options.size + kRecordHeaderBytes, run.raw->writes, run.raw->seconds, run.raw_ops,
        run.raw_ops * static_cast<double>(options.size) / 1e6, run.raw->latency_us.summary("us"));
    fmt::print("  ratio_vs_raw_fdatasync {:.2f}\n", run.raw_ops > 0 ? run.ops / run.raw_ops : 0.0);
  }
  if (!phase.first_error.is_ok()) fmt::print("  first error: {}\n", phase.first_error.to_string());
}

nlohmann::ordered_json report_json(const PageserverBenchOptions& options,
                                   const PageserverRun& run) {
  const WritePhase& phase = *run.phase;
  nlohmann::ordered_json j;
  j["mode"] = options.data.empty() ? "servers" : "data";
  j["servers"] = run.servers;
  j["tls"] = options.tls.has_value();
  if (!options.data.empty()) j["data"] = options.data;
  j["write_quorum"] = run.write_quorum;
  j["records"] = options.records;
  j["size_bytes"] = options.size;
  j["concurrency"] = run.writers;
  j["first_lsn"] = phase.first_lsn;
  j["acked"] = phase.acked;
  j["failed"] = phase.failed;
  j["durable_lsn"] = run.durable_lsn.value;
  j["seconds"] = run.seconds;
  j["ops_per_s"] = run.ops;
  j["mb_per_s"] = run.mb;
  j["latency_p50_us"] = phase.latency_us.p50();
  j["latency_p99_us"] = phase.latency_us.p99();
  j["latency_max_us"] = phase.latency_us.max();
  j["get_page_calls"] = run.get_page_us.count();
  j["get_page_failures"] = run.get_page_failures;
  j["get_page_p50_us"] = run.get_page_us.p50();
  j["get_page_p99_us"] = run.get_page_us.p99();
  if (run.raw) {
    j["raw_fdatasync_writes"] = run.raw->writes;
    j["raw_fdatasync_seconds"] = run.raw->seconds;
    j["raw_fdatasync_ops_per_s"] = run.raw_ops;
    j["raw_fdatasync_mb_per_s"] = run.raw_ops * static_cast<double>(options.size) / 1e6;
    j["raw_fdatasync_p50_us"] = run.raw->latency_us.p50();
    j["raw_fdatasync_p99_us"] = run.raw->latency_us.p99();
    j["ratio_vs_raw_fdatasync"] = run.raw_ops > 0 ? run.ops / run.raw_ops : 0.0;
  }
  j["error"] = phase.first_error.is_ok() ? "" : phase.first_error.to_string();
  return j;
}

}  // namespace

Result<bool> run_pageserver_bench(const PageserverBenchOptions& options) {
  std::unique_ptr<DataDirLock> lock;
  if (!options.data.empty()) {
    auto locked = DataDirLock::acquire(options.data);
    if (!locked.is_ok()) return locked.status();
    lock = std::move(locked).value();
  }
  RealLoop loop;
  if (Status st = loop.watch_signals(); !st.is_ok()) return io_error(st.to_string());

  PageserverRun run;
  run.servers = options.servers;
  std::unique_ptr<LocalPageServer> local;
  if (!options.data.empty()) {
    Address bound;
    auto started = start_local_server(loop, options, bound);
    if (!started.is_ok()) return started.status();
    local = std::move(started).value();
    run.servers = {bound};
  }
  run.write_quorum = std::min<size_t>(2, run.servers.size());
  // The client node never touches its disk; its data directory is only nominal.
  RealEnv client_env(loop, kClientNode, "bench", options.data.empty() ? "." : options.data,
                     options.sink, options.severity);
  if (options.tls) QUIRE_RETURN_IF_ERROR(client_env.enable_tls(*options.tls));
  QUIRE_RETURN_IF_ERROR(continue_chain(loop, client_env, run));
  plan_writes(options, *run.phase);
  write_and_read(loop, client_env, options, run);
  if (local && !local->env().restart_requested().is_ok()) {
    return io_error(fmt::format("the in-process page server asked to be restarted: {}",
                                local->env().restart_requested().to_string()));
  }
  local.reset();  // the server is done before the baseline has the disk to itself

  const WritePhase& phase = *run.phase;
  run.seconds = std::chrono::duration<double>(phase.finished - phase.started).count();
  run.ops = per_second(phase.acked, run.seconds);
  run.mb = run.ops * static_cast<double>(options.size) / 1e6;
  QUIRE_RETURN_IF_ERROR(measure_baseline(options, run));
  print_report(options, run);
  if (!options.json_path.empty())
    QUIRE_RETURN_IF_ERROR(write_json_file(options.json_path, report_json(options, run)));
  return phase.first_error.is_ok() && phase.acked == options.records;
}

}  // namespace quire::bench
