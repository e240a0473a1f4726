#include "bench/engine_bench.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fmt/ranges.h>
#include "base/histogram.h"
#include "bench/bench_run.h"
#include "bench/data_dir_lock.h"
#include "bench/local_page_server.h"
#include "bench/machine_info.h"
#include "bench/temporary_directory.h"
#include "crypto/file_kms.h"
#include "crypto/page_cipher.h"
#include "crypto/raw_gcm.h"
#include "engine/engine.h"
#include "pagelog/page_service_link.h"
#include "pagelog/record_writer.h"
#include "pagelog/replication_client.h"
#include "runtime/real/csprng_random.h"

namespace quire::bench {

namespace {

// Page servers take node ids from 1 (three per service); the compute node comes after.
constexpr NodeId kFirstServerNode = 1;
constexpr NodeId kComputeNode = 100;
constexpr size_t kServersPerService = 3;
constexpr size_t kWriteQuorum = kServiceWriteQuorum;
constexpr Nanos kServerStartTimeout = std::chrono::minutes(1);
constexpr Nanos kCallTimeout = std::chrono::seconds(5);
constexpr Nanos kKmsOpenTimeout = std::chrono::seconds(30);
// One mode's round (writes, checkpoints, reads) ends within this or the run fails.
constexpr Nanos kRoundMax = std::chrono::minutes(30);
constexpr uint64_t kCheckpointsPerRound = 10;
// Cold reads are N / this many: each costs page-service round trips.
constexpr uint64_t kColdReadsDivisor = 10;
constexpr size_t kValuePoolCount = 64;
constexpr size_t kCacheBytesMin = 64u << 20;
constexpr double kOverheadRatioGoalMax = 1.10;
constexpr double kCryptoRatioGoalMin = 0.8;
constexpr std::array<size_t, 2> kCryptoMessageBytes{4096, 16384};
// Each crypto figure runs at least this long (or kCryptoMessagesMax messages).
constexpr Nanos kCryptoMeasureMin = std::chrono::milliseconds(200);
constexpr uint64_t kCryptoMessagesMax = uint64_t{1} << 24;
constexpr uint64_t kCryptoClockEvery = 16;
constexpr size_t kCryptoPoolCount = 64;

enum class Mode : uint8_t { kEncrypted = 0, kPlaintext = 1 };
constexpr std::array<Mode, 2> kModes{Mode::kEncrypted, Mode::kPlaintext};
const char* mode_name(Mode m) {
  return m == Mode::kEncrypted ? "encrypted" : "plaintext";
}
size_t mode_index(Mode m) {
  return static_cast<size_t>(m);
}

double seconds_of(Nanos d) {
  return std::chrono::duration<double>(d).count();
}
uint64_t nanos_of(Nanos d) {
  return static_cast<uint64_t>(std::max<int64_t>(d.count(), 0));
}

// CPU time of the calling thread. The loop thread runs the engine and every page server,
// so this counts their work but neither the waits on the disk nor other processes' load
// on a shared machine.
double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// ---- the workload, the same for both modes

struct Workload {
  std::vector<std::string> keys;     // in write order: the sorted names, shuffled
  std::vector<std::string> values;   // the key at write position i gets value_of(i)
  std::vector<uint32_t> warm_reads;  // write positions to read, in order
  std::vector<uint32_t> cold_reads;
  const std::string& value_of(size_t i) const { return values[i % values.size()]; }
};

Workload make_workload(const EngineBenchOptions& flags, Random& random) {
  Workload w;
  w.keys.reserve(flags.keys);
  for (uint64_t i = 0; i < flags.keys; ++i) w.keys.push_back(fmt::format("user{:010}", i));
  for (size_t i = w.keys.size(); i > 1; --i) std::swap(w.keys[i - 1], w.keys[random.uniform(i)]);
  for (size_t i = 0; i < kValuePoolCount; ++i) {
    std::string v(flags.value_bytes, '\0');
    random.fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(v.data()), v.size()));
    w.values.push_back(std::move(v));
  }
  for (uint64_t i = 0; i < flags.keys; ++i)
    w.warm_reads.push_back(static_cast<uint32_t>(random.uniform(flags.keys)));
  const uint64_t cold = std::max<uint64_t>(1, flags.keys / kColdReadsDivisor);
  for (uint64_t i = 0; i < cold; ++i)
    w.cold_reads.push_back(static_cast<uint32_t>(random.uniform(flags.keys)));
  return w;
}

// ---- one mode's figures

struct Phase {
  double seconds = 0;      // writes: the whole phase; gets: the sum of the gets' own times
  double cpu_seconds = 0;  // the loop thread's, over the whole phase
};

struct RoundFigures {
  Phase write;  // applies and checkpoints
  Phase warm;
  Phase cold;
  double apply_seconds = 0;
  double checkpoint_seconds = 0;
  uint64_t checkpoints = 0;
  uint64_t pages_written = 0;
  uint64_t bytes_written = 0;  // page records' payloads (sealed when encrypted)
  uint64_t warm_cache_misses = 0;
  uint64_t cold_cache_misses = 0;  // pages fetched from the page service
};

struct ModeFigures {
  std::vector<RoundFigures> rounds;
  Histogram write_batch_us;  // N/10 applies and the checkpoint after them
  Histogram checkpoint_us;
  Histogram warm_get_ns;
  Histogram cold_get_ns;
};

// Which figure of a round: a phase's wall or CPU seconds.
struct Measure {
  Phase RoundFigures::*phase;
  double Phase::*seconds;
};

std::vector<double> per_round(const ModeFigures& f, Measure m) {
  std::vector<double> out;
  for (const RoundFigures& r : f.rounds) out.push_back(r.*m.phase.*m.seconds);
  return out;
}
double median_of(const ModeFigures& f, Measure m) {
  return median(per_round(f, m));
}
double median_of(const ModeFigures& f, double RoundFigures::*field) {
  std::vector<double> values;
  for (const RoundFigures& r : f.rounds) values.push_back(r.*field);
  return median(std::move(values));
}

// The median over rounds of encrypted / plaintext: each round pairs two runs made moments
// apart, so drift of the machine between rounds cancels.
double paired_ratio(const std::vector<double>& numerators,
                    const std::vector<double>& denominators) {
  std::vector<double> ratios;
  for (size_t i = 0; i < numerators.size() && i < denominators.size(); ++i) {
    if (denominators[i] > 0) ratios.push_back(numerators[i] / denominators[i]);
  }
  return median(std::move(ratios));
}
double paired_ratio(const ModeFigures& enc, const ModeFigures& plain, Measure m) {
  return paired_ratio(per_round(enc, m), per_round(plain, m));
}

// ---- the engine rounds

Status check_read(const Result<std::optional<std::string>>& got, const std::string& expected) {
  if (!got.is_ok()) return got.status();
  if (!*got) return corruption("a written key was not found");
  if (**got != expected) return corruption("a read returned another value than was written");
  return Status::ok();
}

// Gets the keys at `positions` one at a time, checking every value. With `cold`, the page
// cache is cleared before each get (outside its time), so every page on the path comes
// from the page service and is opened again.
Task<Status> timed_gets(Engine& engine, Env& env, TableId table, const Workload& w,
                        const std::vector<uint32_t>& positions, Timestamp read_ts, bool cold,
                        Phase& phase, Histogram& latency_ns) {
  Clock& clock = env.clock();
  const double cpu_start = thread_cpu_seconds();
  for (uint32_t p : positions) {
    if (cold) engine.page_cache().clear();
    const MonoTime a = clock.monotonic_now();
    auto got = co_await engine.get(table, w.keys[p], read_ts);
    const MonoTime b = clock.monotonic_now();
    if (Status st = check_read(got, w.value_of(p)); !st.is_ok())
      co_return std::move(st).at(cold ? "cold get" : "warm get");
    phase.seconds += seconds_of(b - a);
    latency_ns.record(nanos_of(b - a));
  }
  phase.cpu_seconds = thread_cpu_seconds() - cpu_start;
  co_return Status::ok();
}

// Writes every key, a checkpoint after each N/10.
Task<Status> timed_writes(Engine& engine, Clock& clock, RecordWriter& writer, TableId table,
                          const Workload& w, uint64_t& ts, RoundFigures& r, ModeFigures& fig) {
  const uint64_t n = w.keys.size();
  const uint64_t batch = std::max<uint64_t>(1, n / kCheckpointsPerRound);
  const MonoTime start = clock.monotonic_now();
  const double cpu_start = thread_cpu_seconds();
  for (uint64_t i = 0; i < n;) {
    const uint64_t end = std::min(n, i + batch);
    const MonoTime a = clock.monotonic_now();
    for (; i < end; ++i) {
      Status st = engine.apply_write(table, w.keys[i], Timestamp(++ts), w.value_of(i));
      if (!st.is_ok()) co_return std::move(st).at("apply_write");
    }
    const MonoTime b = clock.monotonic_now();
    auto info = co_await engine.checkpoint(writer, Timestamp(ts));
    const MonoTime c = clock.monotonic_now();
    if (!info.is_ok()) co_return info.status();
    r.apply_seconds += seconds_of(b - a);
    r.checkpoint_seconds += seconds_of(c - b);
    r.checkpoints++;
    r.pages_written += info->pages_written;
    r.bytes_written += info->bytes_written;
    fig.write_batch_us.record(nanos_of(c - a) / 1000);
    fig.checkpoint_us.record(nanos_of(c - b) / 1000);
  }
  r.write.seconds = seconds_of(clock.monotonic_now() - start);
  r.write.cpu_seconds = thread_cpu_seconds() - cpu_start;
  co_return Status::ok();
}

// One page service (three page servers on this loop) and the compute node's client and
// record writer to it.
struct PageService {
  std::vector<std::unique_ptr<LocalPageServer>> servers;
  std::vector<Address> addresses;
  std::unique_ptr<PageServiceLink> link;  // the compute node's client and record writer
};

// One mode's round on a fresh engine and table: writes with checkpoints, then warm reads
// (the last checkpoint left every page of the tree in the cache), then cold reads. Adds
// the round to `fig`, or sets `error` at the first failure.
Task<void> run_round(Env& env, PageService& service, Kms& kms, EngineOptions options, TableId table,
                     const Workload& w, ModeFigures& fig, Status& error) {
  Engine engine(env, service.link->client(), kms, std::move(options));
  std::vector<TableId> tables{table};
  auto keys = co_await engine.bootstrap_keys(std::move(tables));
  if (!keys.is_ok()) {
    error = Status(keys.status()).at("bootstrap_keys");
    co_return;
  }
  uint64_t ts = 1;
  if (Status st = engine.push_keystore(Timestamp(ts)); !st.is_ok()) {
    error = std::move(st).at("push_keystore");
    co_return;
  }
  Clock& clock = env.clock();
  RoundFigures r;
  error = co_await timed_writes(engine, clock, service.link->writer(), table, w, ts, r, fig);
  if (!error.is_ok()) co_return;
  const PageCacheStats& stats = engine.page_cache().stats();
  const uint64_t misses_before_warm = stats.misses;
  error = co_await timed_gets(engine, env, table, w, w.warm_reads, Timestamp(ts), false, r.warm,
                              fig.warm_get_ns);
  if (!error.is_ok()) co_return;
  const uint64_t misses_before_cold = stats.misses;
  error = co_await timed_gets(engine, env, table, w, w.cold_reads, Timestamp(ts), true, r.cold,
                              fig.cold_get_ns);
  if (!error.is_ok()) co_return;
  r.warm_cache_misses = misses_before_cold - misses_before_warm;
  r.cold_cache_misses = stats.misses - misses_before_cold;
  fig.rounds.push_back(r);
}

Task<void> open_kms(FileKms& kms, Status& out) {
  out = co_await kms.open();
}

// The in-process cluster. Its members are declared so they are destroyed in the order the
// runtime needs: the compute node's tasks first (they reference the clients), the loop last.
class LoopbackCluster {
 public:
  LoopbackCluster(std::string dir, LogSink* sink, Severity severity)
      : dir_(std::move(dir)), sink_(sink), severity_(severity) {}
  ~LoopbackCluster() {
    if (compute_) loop_.scheduler().destroy_node(kComputeNode);
  }
  LoopbackCluster(const LoopbackCluster&) = delete;
  LoopbackCluster& operator=(const LoopbackCluster&) = delete;

  RealLoop& loop() { return loop_; }
  RealEnv& compute() { return *compute_; }
  Kms& kms() { return *kms_; }
  PageService& service(Mode m) { return services_[mode_index(m)]; }

  // The compute node and its KMS (the CMK file in DIR/compute), then both page services.
  Status start() {
    QUIRE_RETURN_IF_ERROR(loop_.watch_signals());
    compute_ = std::make_unique<RealEnv>(loop_, kComputeNode, "compute", dir_, sink_, severity_);
    FileKmsOptions kms_options;
    kms_options.path = "compute/cmk.key";
    kms_ = std::make_unique<FileKms>(*compute_, kms_options);
    Status opened = unavailable("the KMS did not open in time");
    if (!run_task_to_end(loop_, *compute_, "bench-kms-open", open_kms(*kms_, opened),
                         kKmsOpenTimeout))
      return interrupted_or(std::move(opened));
    if (!opened.is_ok()) return std::move(opened).at("FileKms::open");
    NodeId node = kFirstServerNode;
    for (Mode m : kModes) QUIRE_RETURN_IF_ERROR(start_service(m, node));
    return Status::ok();
  }

  // The first reason a page server asked to be restarted, or OK.
  Status server_failure() {
    for (PageService& s : services_) {
      for (auto& server : s.servers) {
        if (!server->env().restart_requested().is_ok())
          return Status(Code::kIo, fmt::format("page server {} asked to be restarted: {}",
                                               server->env().node_name(),
                                               server->env().restart_requested().to_string()));
      }
    }
    return Status::ok();
  }

  Status interrupted_or(Status otherwise) const {
    return loop_.stop_signal() != 0 ? cancelled("interrupted") : std::move(otherwise);
  }

 private:
  Status start_service(Mode m, NodeId& node) {
    PageService& s = service(m);
    for (size_t i = 0; i < kServersPerService; ++i, ++node) {
      PageServerOptions options;
      options.listen = "127.0.0.1:0";
      options.store.dir = "segments";
      auto server = std::make_unique<LocalPageServer>(
          loop_, node, fmt::format("{}/{}/ps{}", dir_, mode_name(m), i + 1), std::move(options),
          sink_, severity_);
      Result<Address> bound = server->start(kServerStartTimeout);
      if (!bound.is_ok())
        return Status(bound.status().code(), fmt::format("{} page server {}: {}", mode_name(m),
                                                         i + 1, bound.status().message()));
      s.addresses.push_back(*bound);
      s.servers.push_back(std::move(server));
    }
    // Continue the servers' chain, so a run on a --data directory used before works too.
    ProbeResult probe;
    if (!run_task_to_end(loop_, *compute_, "bench-probe",
                         probe_servers(*compute_, s.addresses, kCallTimeout, &probe),
                         kCallTimeout * static_cast<int64_t>(kServersPerService + 1)))
      return interrupted_or(
          deadline_exceeded("the page servers did not answer a status call in time"));
    if (probe.answered < kServersPerService) {
      return unavailable(fmt::format("{} of {} {} page servers answered: {}", probe.answered,
                                     kServersPerService, mode_name(m),
                                     probe.first_error.to_string()));
    }
    s.link =
        std::make_unique<PageServiceLink>(*compute_, s.addresses, std::max(probe.term, Term(1)),
                                          probe.last_lsn, probe.last_lsn.next());
    return Status::ok();
  }

  std::string dir_;
  LogSink* sink_;
  Severity severity_;
  RealLoop loop_;
  std::unique_ptr<RealEnv> compute_;
  std::unique_ptr<FileKms> kms_;
  std::array<PageService, 2> services_;
};

// Every round, both modes (the order alternating), on `dir`. An error's message says what
// failed, with the status it failed with.
Status run_engine_rounds(const EngineBenchOptions& flags, const std::string& dir, LogSink* sink,
                         Severity severity, const Workload& workload,
                         std::array<std::unique_ptr<ModeFigures>, 2>& figures) {
  EngineOptions engine_options;
  // Room for every page version the run writes, so warm reads never miss.
  engine_options.cache_bytes = std::max<size_t>(
      kCacheBytesMin, 16 * flags.keys * (flags.value_bytes + workload.keys.front().size() + 32));
  LoopbackCluster cluster(dir, sink, severity);
  if (Status st = cluster.start(); !st.is_ok())
    return Status(st.code(), fmt::format("setting up: {}", st.to_string()));
  for (uint64_t round = 0; round < flags.rounds; ++round) {
    std::array<Mode, 2> order = kModes;
    if (round % 2 == 1) std::swap(order[0], order[1]);
    for (Mode m : order) {
      EngineOptions options = engine_options;
      options.encrypt = m == Mode::kEncrypted;
      ModeFigures& fig = *figures[mode_index(m)];
      const size_t rounds_before = fig.rounds.size();
      // Each round's engine gets a table of its own: page ids restart with every engine.
      const TableId table(kFirstUserTable + round);
      Status error;
      const bool ended = run_task_to_end(
          cluster.loop(), cluster.compute(), fmt::format("bench-{}-round-{}", mode_name(m), round),
          run_round(cluster.compute(), cluster.service(m), cluster.kms(), options, table, workload,
                    fig, error),
          kRoundMax);
      if (!ended)
        error = cluster.interrupted_or(deadline_exceeded("the round did not end in time"));
      if (error.is_ok() && fig.rounds.size() != rounds_before + 1)
        error = Status(Code::kInvalidArgument, "the round ended without its figures");
      if (error.is_ok()) error = cluster.server_failure();
      if (!error.is_ok())
        return Status(error.code(),
                      fmt::format("{} round {}: {}", mode_name(m), round + 1, error.to_string()));
    }
  }
  return Status::ok();
}

// ---- the cipher alone: our page path against raw OpenSSL

// Calls op(i) for i = 0, 1, ... until kCryptoMeasureMin passed (or kCryptoMessagesMax
// calls) and returns MB/s (10^6 bytes) of `message_bytes` per call; Io when op fails.
Result<double> measure_mb_per_s(size_t message_bytes, const std::function<bool(uint64_t)>& op) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t done = 0;
  double seconds = 0;
  while (done < kCryptoMessagesMax) {
    for (uint64_t k = 0; k < kCryptoClockEvery; ++k, ++done) {
      if (!op(done))
        return io_error(fmt::format("message {} of {} bytes failed", done, message_bytes));
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds >= seconds_of(kCryptoMeasureMin)) break;
  }
  return per_second(done * message_bytes, seconds) / 1e6;
}

// MB/s per round for one message size.
struct CryptoFigures {
  size_t message_bytes = 0;
  std::vector<double> seal, raw_seal, open, raw_open;
};

// One round of the four figures for one message size, the order alternating by round.
Status measure_crypto_round(size_t message_bytes, uint64_t round, CryptoFigures& fig) {
  CsprngRandom random;
  SecretKey key = SecretKey::generate(random);
  DataKey dek(DekRef{kFirstUserTable, 1}, key);
  RawGcm raw;
  if (!raw.init(key.reveal())) return io_error("OpenSSL could not set up AES-256-GCM");

  std::vector<Bytes> plaintexts(kCryptoPoolCount, Bytes(message_bytes));
  for (Bytes& p : plaintexts) random.fill(p);
  auto place_of = [](uint64_t i) {
    return PayloadPlace{TableId(kFirstUserTable), PageId(1 + i % kCryptoPoolCount), Lsn(1 + i),
                        RecordType::kPage};
  };
  // What the open figures open: sealed by each path once, cycled through.
  std::vector<Bytes> sealed(kCryptoPoolCount);
  std::vector<std::array<uint8_t, kGcmNonceBytes>> raw_ivs(kCryptoPoolCount);
  std::vector<Bytes> raw_sealed(kCryptoPoolCount, Bytes(message_bytes + kGcmTagBytes));
  for (size_t i = 0; i < kCryptoPoolCount; ++i) {
    QUIRE_RETURN_IF_ERROR(dek.seal(place_of(i), plaintexts[i], random, sealed[i]));
    random.fill(raw_ivs[i]);
    if (!raw.seal(raw_ivs[i].data(), plaintexts[i], raw_sealed[i].data()))
      return io_error("raw AES-256-GCM seal failed");
  }
  Bytes raw_out(message_bytes + kGcmTagBytes);
  DekLookup lookup = [&dek](const DekRef& r) { return r == dek.ref() ? &dek : nullptr; };

  // Ours as the page path runs it: a fresh output buffer per page, a nonce from the
  // CSPRNG, the header and the 40-byte AAD. Raw: a fresh IV from the same CSPRNG.
  auto ours_seal = [&](uint64_t i) {
    Bytes out;
    return dek.seal(place_of(i), plaintexts[i % kCryptoPoolCount], random, out).is_ok();
  };
  auto raw_seal = [&](uint64_t i) {
    std::array<uint8_t, kGcmNonceBytes> iv;
    random.fill(iv);
    return raw.seal(iv.data(), plaintexts[i % kCryptoPoolCount], raw_out.data());
  };
  auto ours_open = [&](uint64_t i) {
    const size_t j = i % kCryptoPoolCount;
    return open_sealed(lookup, place_of(j), sealed[j]).is_ok();
  };
  auto raw_open = [&](uint64_t i) {
    const size_t j = i % kCryptoPoolCount;
    return raw.open(raw_ivs[j].data(), raw_sealed[j], raw_out.data());
  };

  struct Step {
    std::function<bool(uint64_t)> op;
    std::vector<double>* out;
    const char* what;
  };
  std::vector<Step> steps{{ours_seal, &fig.seal, "DataKey::seal"},
                          {raw_seal, &fig.raw_seal, "raw EVP seal"},
                          {ours_open, &fig.open, "open_sealed"},
                          {raw_open, &fig.raw_open, "raw EVP open"}};
  if (round % 2 == 1) {
    std::swap(steps[0], steps[1]);
    std::swap(steps[2], steps[3]);
  }
  for (Step& s : steps) {
    Result<double> mb = measure_mb_per_s(message_bytes, s.op);
    if (!mb.is_ok()) return io_error(fmt::format("{}: {}", s.what, mb.status().message()));
    s.out->push_back(*mb);
  }
  return Status::ok();
}

// ---- the report

// What one run measured, and what follows from it.
struct Report {
  const EngineBenchOptions& flags;
  const std::string& dir;
  const Workload& workload;
  const MachineInfo& machine;
  const ModeFigures& enc;
  const ModeFigures& plain;
  const std::vector<CryptoFigures>& crypto;
  double wall_seconds = 0;
};

struct WorkloadKind {
  const char* name;  // in the JSON
  const char* label;
  Phase RoundFigures::*phase;
};
constexpr std::array<WorkloadKind, 3> kWorkloadKinds{{
    {"write_checkpoint", "writes + checkpoints", &RoundFigures::write},
    {"warm_get", "warm get", &RoundFigures::warm},
    {"cold_get", "cold get", &RoundFigures::cold},
}};

uint64_t ops_of(const Report& r, const WorkloadKind& k) {
  if (k.phase == &RoundFigures::write) return r.workload.keys.size();
  return k.phase == &RoundFigures::warm ? r.workload.warm_reads.size()
                                        : r.workload.cold_reads.size();
}
Measure wall(const WorkloadKind& k) {
  return {k.phase, &Phase::seconds};
}
Measure cpu(const WorkloadKind& k) {
  return {k.phase, &Phase::cpu_seconds};
}
uint64_t checkpoint_every(const EngineBenchOptions& flags) {
  return std::max<uint64_t>(1, flags.keys / kCheckpointsPerRound);
}
double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

// Where the encrypted time goes: the sealing and opening the engine did, at the rates the
// cipher runs alone for 16 KiB messages (the leaf size), against the measured extra time.
struct Attribution {
  double sealed_bytes = 0;  // per round (every round writes the same tree)
  double est_seal_seconds = 0;
  double extra_write_seconds = 0;
  double extra_write_cpu_seconds = 0;
  double pages_per_cold_get = 0;
  double page_bytes = 0;  // the mean sealed page
  double est_open_us_per_cold_get = 0;
  double extra_us_per_cold_get = 0;
  double extra_cpu_us_per_cold_get = 0;
};

Attribution attribute(const Report& r) {
  Attribution a;
  const RoundFigures& first = r.enc.rounds.front();
  const double seal_mb_s = median(r.crypto.back().seal);
  const double open_mb_s = median(r.crypto.back().open);
  const double cold_n = static_cast<double>(r.workload.cold_reads.size());
  auto extra = [&](Measure m) { return median_of(r.enc, m) - median_of(r.plain, m); };
  a.sealed_bytes = static_cast<double>(first.bytes_written);
  a.est_seal_seconds = seal_mb_s > 0 ? a.sealed_bytes / (seal_mb_s * 1e6) : 0.0;
  a.extra_write_seconds = extra(wall(kWorkloadKinds[0]));
  a.extra_write_cpu_seconds = extra(cpu(kWorkloadKinds[0]));
  a.pages_per_cold_get = static_cast<double>(first.cold_cache_misses) / cold_n;
  a.page_bytes =
      first.pages_written > 0 ? a.sealed_bytes / static_cast<double>(first.pages_written) : 0.0;
  a.est_open_us_per_cold_get =
      open_mb_s > 0 ? a.pages_per_cold_get * a.page_bytes / open_mb_s : 0.0;
  a.extra_us_per_cold_get = extra(wall(kWorkloadKinds[2])) / cold_n * 1e6;
  a.extra_cpu_us_per_cold_get = extra(cpu(kWorkloadKinds[2])) / cold_n * 1e6;
  return a;
}

double overhead_ratio(const Report& r) {
  return paired_ratio(r.enc, r.plain, wall(kWorkloadKinds[0]));
}
double seal_ratio(const CryptoFigures& c) {
  return paired_ratio(c.seal, c.raw_seal);
}
double open_ratio(const CryptoFigures& c) {
  return paired_ratio(c.open, c.raw_open);
}
bool crypto_goal_met(const Report& r) {
  return std::all_of(r.crypto.begin(), r.crypto.end(),
                     [](const CryptoFigures& c) { return seal_ratio(c) >= kCryptoRatioGoalMin; });
}
const char* met(bool yes) {
  return yes ? "met" : "not met";
}

// What ran, and on what.
void print_setup(const Report& r) {
  fmt::print(
      "quire bench engine: {} keys, {}-byte values, {} rounds; a checkpoint every {} writes; {} "
      "warm "
      "and {} cold gets\n",
      r.flags.keys, r.flags.value_bytes, r.flags.rounds, checkpoint_every(r.flags),
      r.workload.warm_reads.size(), r.workload.cold_reads.size());
  fmt::print(
      "  per mode: {} in-process page servers (W={}, loopback TCP, PosixDisk under {}); one loop "
      "thread runs them and the engine\n",
      kServersPerService, kWriteQuorum, r.dir);
  fmt::print("  machine: {} cores, {} [{}], {}\n", r.machine.cores, r.machine.cpu_model,
             fmt::join(r.machine.cpu_flags, " "), r.machine.openssl_version);
}

// Per workload: each mode's rate and the ratios; then per mode the latencies, the write
// split, what was written and the cache misses.
void print_mode_table(const Report& r) {
  const ModeFigures& enc = r.enc;
  const ModeFigures& plain = r.plain;
  fmt::print("  {:<22} {:>28} {:>28} {:>9} {:>9}\n", "median of rounds", "encrypted", "plaintext",
             "enc/plain", "cpu ratio");
  for (const WorkloadKind& k : kWorkloadKinds) {
    auto cell = [&](const ModeFigures& f) {
      const double s = median_of(f, wall(k));
      return fmt::format("{:.0f} ops/s ({:.3f} s)", per_second(ops_of(r, k), s), s);
    };
    fmt::print("  {:<22} {:>28} {:>28} {:>9.3f} {:>9.3f}\n", k.label, cell(enc), cell(plain),
               paired_ratio(enc, plain, wall(k)), paired_ratio(enc, plain, cpu(k)));
  }
  auto row = [](const char* label, const std::string& e, const std::string& p) {
    fmt::print("  {:<22} {:>28} {:>28}\n", label, e, p);
  };
  auto latency = [](const Histogram& h, double scale, const char* unit) {
    return fmt::format("p50 {:.1f} p99 {:.1f} {}", static_cast<double>(h.p50()) * scale,
                       static_cast<double>(h.p99()) * scale, unit);
  };
  row("write batch latency", latency(enc.write_batch_us, 1e-3, "ms"),
      latency(plain.write_batch_us, 1e-3, "ms"));
  row("checkpoint latency", latency(enc.checkpoint_us, 1e-3, "ms"),
      latency(plain.checkpoint_us, 1e-3, "ms"));
  row("warm get latency", latency(enc.warm_get_ns, 1e-3, "us"),
      latency(plain.warm_get_ns, 1e-3, "us"));
  row("cold get latency", latency(enc.cold_get_ns, 1e-3, "us"),
      latency(plain.cold_get_ns, 1e-3, "us"));
  auto split = [](const ModeFigures& f) {
    return fmt::format("{:.3f} / {:.3f} / {:.3f}", median_of(f, cpu(kWorkloadKinds[0])),
                       median_of(f, &RoundFigures::apply_seconds),
                       median_of(f, &RoundFigures::checkpoint_seconds));
  };
  row("write cpu/apply/ckpt s", split(enc), split(plain));
  auto written = [](const ModeFigures& f) {
    return fmt::format("{} / {:.1f}", f.rounds.front().pages_written,
                       static_cast<double>(f.rounds.front().bytes_written) / 1e6);
  };
  row("pages / MB written", written(enc), written(plain));
  auto misses = [](const ModeFigures& f) {
    return fmt::format("{} / {}", f.rounds.front().warm_cache_misses,
                       f.rounds.front().cold_cache_misses);
  };
  row("cache misses warm/cold", misses(enc), misses(plain));
}

// The overhead ratio against its goal, and where the encrypted time goes.
void print_overhead(const Report& r) {
  const double overhead = overhead_ratio(r);
  fmt::print(
      "  encryption_overhead_ratio {:.3f} (writes + checkpoints, wall; goal <= {:.2f}: {}); cold "
      "get "
      "{:.3f}\n",
      overhead, kOverheadRatioGoalMax, met(overhead <= kOverheadRatioGoalMax),
      paired_ratio(r.enc, r.plain, wall(kWorkloadKinds[2])));
  const Attribution a = attribute(r);
  fmt::print(
      "  where it goes: a round seals {:.1f} MB of pages: {:.3f} s at the 16 KiB seal rate, "
      "against "
      "{:.3f} s wall / {:.3f} s cpu measured extra\n",
      a.sealed_bytes / 1e6, a.est_seal_seconds, a.extra_write_seconds, a.extra_write_cpu_seconds);
  fmt::print(
      "                 a cold get opens {:.1f} pages of {:.0f} bytes: {:.1f} us at the 16 KiB "
      "open "
      "rate, against {:.1f} us wall / {:.1f} us cpu measured extra\n",
      a.pages_per_cold_get, a.page_bytes, a.est_open_us_per_cold_get, a.extra_us_per_cold_get,
      a.extra_cpu_us_per_cold_get);
}

void print_crypto(const Report& r) {
  fmt::print(
      "  crypto, one thread (MB/s, median of rounds; ratio = median of ours/raw per round):\n");
  for (const CryptoFigures& c : r.crypto) {
    fmt::print(
        "    {:>2} KiB  seal: DataKey::seal {:6.0f}  raw EVP {:6.0f}  ratio {:.3f} (goal >= "
        "{:.1f}: {})  "
        "open: open_sealed {:6.0f}  raw EVP {:6.0f}  ratio {:.3f}\n",
        c.message_bytes / 1024, median(c.seal), median(c.raw_seal), seal_ratio(c),
        kCryptoRatioGoalMin, met(seal_ratio(c) >= kCryptoRatioGoalMin), median(c.open),
        median(c.raw_open), open_ratio(c));
  }
}

void print_report(const Report& r) {
  print_setup(r);
  print_mode_table(r);
  print_overhead(r);
  print_crypto(r);
  fmt::print("  {:.1f} s wall\n", r.wall_seconds);
}

nlohmann::ordered_json mode_json(const Report& r, const ModeFigures& f) {
  nlohmann::ordered_json mj;
  for (const WorkloadKind& k : kWorkloadKinds) {
    const double s = median_of(f, wall(k));
    mj[k.name] = {{"ops", ops_of(r, k)},
                  {"seconds_median", s},
                  {"ops_per_s_median", per_second(ops_of(r, k), s)},
                  {"seconds_per_round", per_round(f, wall(k))},
                  {"cpu_seconds_median", median_of(f, cpu(k))},
                  {"cpu_seconds_per_round", per_round(f, cpu(k))}};
  }
  const RoundFigures& first = f.rounds.front();
  auto& w = mj["write_checkpoint"];
  w["batch_p50_us"] = f.write_batch_us.p50();
  w["batch_p99_us"] = f.write_batch_us.p99();
  w["checkpoint_p50_us"] = f.checkpoint_us.p50();
  w["checkpoint_p99_us"] = f.checkpoint_us.p99();
  w["apply_seconds_median"] = median_of(f, &RoundFigures::apply_seconds);
  w["checkpoint_seconds_median"] = median_of(f, &RoundFigures::checkpoint_seconds);
  w["checkpoints_per_round"] = first.checkpoints;
  w["pages_written_per_round"] = first.pages_written;
  w["bytes_written_per_round"] = first.bytes_written;
  mj["warm_get"]["p50_us"] = us(f.warm_get_ns.p50());
  mj["warm_get"]["p99_us"] = us(f.warm_get_ns.p99());
  mj["warm_get"]["cache_misses_per_round"] = first.warm_cache_misses;
  mj["cold_get"]["p50_us"] = us(f.cold_get_ns.p50());
  mj["cold_get"]["p99_us"] = us(f.cold_get_ns.p99());
  mj["cold_get"]["pages_fetched_per_round"] = first.cold_cache_misses;
  return mj;
}

nlohmann::ordered_json attribution_json(const Attribution& a) {
  return {{"sealed_bytes_per_round", a.sealed_bytes},
          {"estimated_seal_seconds_per_round", a.est_seal_seconds},
          {"measured_extra_write_seconds", a.extra_write_seconds},
          {"measured_extra_write_cpu_seconds", a.extra_write_cpu_seconds},
          {"pages_per_cold_get", a.pages_per_cold_get},
          {"mean_page_bytes", a.page_bytes},
          {"estimated_open_us_per_cold_get", a.est_open_us_per_cold_get},
          {"measured_extra_us_per_cold_get", a.extra_us_per_cold_get},
          {"measured_extra_cpu_us_per_cold_get", a.extra_cpu_us_per_cold_get}};
}

nlohmann::ordered_json crypto_json(const Report& r) {
  nlohmann::ordered_json cj = nlohmann::ordered_json::array();
  for (const CryptoFigures& c : r.crypto) {
    cj.push_back({{"message_bytes", c.message_bytes},
                  {"seal_mb_per_s", median(c.seal)},
                  {"raw_seal_mb_per_s", median(c.raw_seal)},
                  {"seal_ratio", seal_ratio(c)},
                  {"open_mb_per_s", median(c.open)},
                  {"raw_open_mb_per_s", median(c.raw_open)},
                  {"open_ratio", open_ratio(c)}});
  }
  return cj;
}

nlohmann::ordered_json report_json(const Report& r) {
  nlohmann::ordered_json j;
  j["keys"] = r.flags.keys;
  j["value_bytes"] = r.flags.value_bytes;
  j["rounds"] = r.flags.rounds;
  j["checkpoint_every"] = checkpoint_every(r.flags);
  j["warm_gets"] = r.workload.warm_reads.size();
  j["cold_gets"] = r.workload.cold_reads.size();
  j["data"] = r.flags.data;
  j["page_servers_per_mode"] = kServersPerService;
  j["write_quorum"] = kWriteQuorum;
  j["machine"] = {{"cores", r.machine.cores},
                  {"cpu_model", r.machine.cpu_model},
                  {"cpu_flags", r.machine.cpu_flags},
                  {"openssl_version", r.machine.openssl_version}};
  for (Mode m : kModes) j[mode_name(m)] = mode_json(r, m == Mode::kEncrypted ? r.enc : r.plain);
  for (const WorkloadKind& k : kWorkloadKinds) {
    j["ratios"][k.name] = paired_ratio(r.enc, r.plain, wall(k));
    j["cpu_ratios"][k.name] = paired_ratio(r.enc, r.plain, cpu(k));
  }
  const double overhead = overhead_ratio(r);
  j["encryption_overhead_ratio"] = overhead;
  j["encryption_overhead_ratio_workload"] = "write_checkpoint";
  j["encryption_overhead_goal_max"] = kOverheadRatioGoalMax;
  j["encryption_overhead_goal_met"] = overhead <= kOverheadRatioGoalMax;
  j["attribution"] = attribution_json(attribute(r));
  j["crypto"] = crypto_json(r);
  j["crypto_ratio_goal_min"] = kCryptoRatioGoalMin;
  j["crypto_ratio_goal_met"] = crypto_goal_met(r);
  j["wall_seconds"] = r.wall_seconds;
  return j;
}

// ---- the run

// The rounds' directory: --data, or a fresh temporary one kept in `temp`.
Result<std::string> bench_directory(const EngineBenchOptions& options,
                                    std::unique_ptr<TemporaryDirectory>& temp) {
  if (!options.data.empty()) return options.data;
  auto made = TemporaryDirectory::create("quire-bench-engine");
  if (!made.is_ok()) return made.status();
  temp = std::move(made).value();
  return temp->path();
}

// Every round of the four crypto figures, for each message size.
Result<std::vector<CryptoFigures>> measure_crypto(uint64_t rounds) {
  std::vector<CryptoFigures> crypto(kCryptoMessageBytes.size());
  for (uint64_t round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < kCryptoMessageBytes.size(); ++i) {
      crypto[i].message_bytes = kCryptoMessageBytes[i];
      if (Status st = measure_crypto_round(kCryptoMessageBytes[i], round, crypto[i]); !st.is_ok())
        return io_error(fmt::format("crypto: {}", st.to_string()));
    }
  }
  return crypto;
}

}  // namespace

Status run_engine_bench(const EngineBenchOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  std::unique_ptr<TemporaryDirectory> temp;  // declared first: removed after all else
  Result<std::string> dir = bench_directory(options, temp);
  if (!dir.is_ok()) return dir.status();
  auto lock = DataDirLock::acquire(*dir);
  if (!lock.is_ok()) return lock.status();

  CsprngRandom random;
  const Workload workload = make_workload(options, random);
  std::array<std::unique_ptr<ModeFigures>, 2> figures{std::make_unique<ModeFigures>(),
                                                      std::make_unique<ModeFigures>()};
  QUIRE_RETURN_IF_ERROR(
      run_engine_rounds(options, *dir, options.sink, options.severity, workload, figures));
  Result<std::vector<CryptoFigures>> crypto = measure_crypto(options.rounds);
  if (!crypto.is_ok()) return crypto.status();

  const MachineInfo machine = machine_info();
  Report report{
      options,
      *dir,
      workload,
      machine,
      *figures[mode_index(Mode::kEncrypted)],
      *figures[mode_index(Mode::kPlaintext)],
      *crypto,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count()};
  print_report(report);
  if (!options.json_path.empty())
    QUIRE_RETURN_IF_ERROR(write_json_file(options.json_path, report_json(report)));
  return Status::ok();
}

}  // namespace quire::bench
