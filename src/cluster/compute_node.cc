#include "cluster/compute_node.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include <fmt/format.h>

#include "coord/etcd_coordinator.h"
#include "coord/leader_watch.h"
#include "crypto/file_kms.h"
#include "repl/replica_node.h"
#include "resp/command_link.h"
#include "resp/commands.h"
#include "resp/progress_reporter.h"
#include "resp/server.h"
#include "runtime/real/tcp_net.h"

namespace quire::cluster {

namespace {

constexpr NodeId kComputeNode = 1;
// A standby's QUIRE.REPORT (connect, AUTH, command and reply) is given this long.
constexpr Nanos kReportTimeout = std::chrono::seconds(1);
// Closing the client server: its connections' queued replies get this long.
constexpr Nanos kServerStopTimeout = std::chrono::seconds(2);
constexpr Nanos kStandbyPollMin = std::chrono::milliseconds(1);
constexpr Nanos kStandbyLogWait = std::chrono::milliseconds(100);

EtcdOptions etcd_options(const ComputeNodeOptions& o) {
  EtcdOptions e;
  e.endpoints = o.etcd;
  e.tls_ca_file = o.etcd_tls_ca_file;
  e.tls_cert_file = o.etcd_tls_cert_file;
  e.tls_key_file = o.etcd_tls_key_file;
  return e;
}

// jemalloc's control interface when the program links jemalloc (the release build's
// quire); null otherwise (the sanitizer build, the test programs).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

// INFO memory's figures: jemalloc's live allocations (what Redis's used_memory counts), else
// the resident set; the resident set from /proc/self/statm (a read of a few bytes).
resp::ProcessMemory read_process_memory() {
  resp::ProcessMemory m;
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    m.resident_bytes = resident_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
  m.allocated_bytes = m.resident_bytes;
  m.allocator = "libc";
  if (mallctl == nullptr) return m;
  uint64_t epoch = 1;  // refreshes the statistics
  size_t len = sizeof(epoch);
  (void)mallctl("epoch", &epoch, &len, &epoch, len);
  size_t allocated = 0;
  len = sizeof(allocated);
  if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) m.allocated_bytes = allocated;
  const char* version = nullptr;
  len = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &len, nullptr, 0) == 0 &&
      version != nullptr) {
    const std::string_view v(version);  // "5.3.0-0-g54eaed1d..."
    m.allocator = fmt::format("jemalloc-{}", v.substr(0, v.find('-')));
  }
  return m;
}

// INFO cpu's figures: this process's user and system time (getrusage).
resp::ProcessCpu read_process_cpu() {
  resp::ProcessCpu cpu;
  struct rusage u {};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return cpu;
  const auto time = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  cpu.user = time(u.ru_utime);
  cpu.system = time(u.ru_stime);
  return cpu;
}

bool wildcard_host(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]";
}

}  // namespace

std::string election_name(const std::string& cluster) {
  return fmt::format("/quire/{}/primary", cluster);
}

ReplicaConfig replica_config(const ComputeNodeOptions& o) {
  ReplicaConfig config;
  config.servers = o.pageservers;
  config.write_quorum = o.write_quorum;
  config.preferred_server = o.preferred_pageserver;
  config.engine.policy = o.pickup_policy;
  // A standby at the end of the log long-polls its page server (held up to 100 ms until a
  // write or a commit point arrives: the visibility lag). A server that answers an empty
  // read at once is polled every 1 ms for 16 reads, then every 20 ms while the log is idle.
  config.standby.log_wait = kStandbyLogWait;
  config.standby.poll_interval_min = kStandbyPollMin;
  config.primary.tables = resp::resp_tables(o.databases);
  if (o.group_pipeline_min != 0) {
    // A fixed threshold, whatever the disks' speed.
    config.primary.group_pipeline_min = o.group_pipeline_min;
    config.primary.group_pipeline_min_slow_sync = o.group_pipeline_min;
  }
  if (o.group_gather_us >= 0) {
    config.primary.group_gather_max = std::chrono::microseconds(o.group_gather_us);
  }
  config.elector.election = election_name(o.cluster);
  config.elector.value = o.advertise;
  return config;
}

Status validate(const ComputeNodeOptions& o) {
  if (o.name.empty()) return invalid_argument("the node needs a name");
  auto client = parse_tcp_address(o.client);
  if (!client.is_ok()) return invalid_argument("client address: " + client.status().message());
  if (client->port == 0) return invalid_argument("the client address needs a port (not 0)");
  const std::string& advertise = o.advertise.empty() ? o.client : o.advertise;
  auto adv = parse_tcp_address(advertise);
  if (!adv.is_ok()) return invalid_argument("advertised address: " + adv.status().message());
  if (wildcard_host(adv->host) || adv->port == 0) {
    return invalid_argument(fmt::format(
        "{} cannot be reached by other nodes: give the address they should use (--advertise)",
        advertise));
  }
  if (o.pageservers.empty()) return invalid_argument("no page server given");
  for (const auto& ps : o.pageservers) {
    auto a = parse_tcp_address(ps);
    if (!a.is_ok())
      return invalid_argument(fmt::format("page server {}: {}", ps, a.status().message()));
  }
  if (o.write_quorum < 1 || o.write_quorum > o.pageservers.size() ||
      2 * o.write_quorum <= o.pageservers.size()) {
    return invalid_argument(fmt::format(
        "write quorum {} with {} page servers: it must be a majority (and at most all of them)",
        o.write_quorum, o.pageservers.size()));
  }
  if (o.preferred_pageserver >= o.pageservers.size()) {
    return invalid_argument(fmt::format("preferred page server {} of {} (they count from 0)",
                                        o.preferred_pageserver, o.pageservers.size()));
  }
  if (o.cluster.empty() || o.cluster.find('/') != std::string::npos) {
    return invalid_argument("the cluster name must be non-empty and hold no '/'");
  }
  if (o.cmk_file.empty()) return invalid_argument("no CMK file given");
  if (o.databases < 1 || o.databases > resp::kDatabasesMax) {
    return invalid_argument(fmt::format("databases must be 1..{}", resp::kDatabasesMax));
  }
  if (o.slowlog_log_slower_than_us > kSlowlogSlowerThanMaxUs) {
    return invalid_argument(
        fmt::format("slowlog-log-slower-than must be at most {} us (negative: log nothing)",
                    kSlowlogSlowerThanMaxUs));
  }
  if (o.slowlog_max_len > kSlowlogMaxLenMax) {
    return invalid_argument(fmt::format("slowlog-max-len must be at most {}", kSlowlogMaxLenMax));
  }
  return validate_etcd_options(etcd_options(o));
}

ComputeNode::ComputeNode(RealLoop& loop, ComputeNodeOptions options, LogSink* sink,
                         Severity min_severity)
    : loop_(loop), options_(std::move(options)) {
  if (options_.advertise.empty()) options_.advertise = options_.client;
  // The node's own files are its CMK file only: its data directory is the file's.
  std::filesystem::path cmk(options_.cmk_file);
  std::string dir = cmk.has_parent_path() ? cmk.parent_path().string() : std::string(".");
  env_ = std::make_unique<RealEnv>(loop, kComputeNode, options_.name, std::move(dir), sink,
                                   min_severity);
}

ComputeNode::~ComputeNode() {
  // Every task of the node references its parts; then the parts in reverse order of use.
  loop_.scheduler().destroy_node(env_->executor().node());
  reporter_.reset();
  link_.reset();
  server_.reset();
  commands_.reset();
  node_.reset();
  watch_.reset();
  watch_coordinator_.reset();
  kms_.reset();
  env_.reset();
}

Status ComputeNode::open_kms(Nanos timeout) {
  FileKmsOptions o;
  o.path = std::filesystem::path(options_.cmk_file).filename().string();
  o.create_if_missing = false;  // `quire cluster init` or `quire kms status --create` makes it
  kms_ = std::make_unique<FileKms>(*env_, o);
  Status opened = unavailable("not opened");
  auto open = [](FileKms& kms, Status& out) -> Task<void> { out = co_await kms.open(); };
  TaskId id = env_->executor().spawn("cmk-open", open(*kms_, opened));
  if (!loop_.run_until([&] { return env_->executor().is_done(id); }, timeout)) {
    env_->executor().cancel(id);
    if (loop_.stop_signal() != 0)
      return cancelled("stopped by a signal while opening the CMK file");
    return deadline_exceeded(fmt::format("no answer from the CMK file {}", options_.cmk_file));
  }
  if (opened.code() == Code::kNotFound) {
    const std::string dir = std::filesystem::path(options_.cmk_file).parent_path().string();
    return invalid_argument(fmt::format(
        "CMK file {} does not exist (`quire cluster init` makes one; or `quire kms status --dir "
        "{} --create`)",
        options_.cmk_file, dir.empty() ? "." : dir));
  }
  if (!opened.is_ok()) {
    return Status(opened.code(),
                  fmt::format("CMK file {}: {}", options_.cmk_file, opened.to_string()));
  }
  return Status();
}

Result<Address> ComputeNode::start(Nanos timeout) {
  QUIRE_RETURN_IF_ERROR(validate(options_));
  QUIRE_RETURN_IF_ERROR(open_kms(timeout));
  const EtcdOptions etcd = etcd_options(options_);
  auto watch_coordinator = EtcdCoordinator::create(loop_, *env_, etcd);
  if (!watch_coordinator.is_ok()) return watch_coordinator.status();
  watch_coordinator_ = std::move(watch_coordinator).value();

  ReplicaConfig config = replica_config(options_);
  ReplicaNode::KmsFactory kms = [this](Env&) -> std::unique_ptr<Kms> {
    QUIRE_ASSERT(kms_ != nullptr);  // the node asks once, in its constructor
    return std::move(kms_);
  };
  RealLoop* loop = &loop_;
  ReplicaNode::CoordinatorFactory coordinator = [loop,
                                                 etcd](Env& env) -> std::unique_ptr<Coordinator> {
    auto c = EtcdCoordinator::create(*loop, env, etcd);
    QUIRE_ASSERT(c.is_ok());  // the same options were accepted above
    return std::move(c).value();
  };
  node_ = std::make_unique<ReplicaNode>(*env_, std::move(config), kms, coordinator);

  watch_ = std::make_unique<LeaderWatch>(
      *env_, *watch_coordinator_, LeaderWatchOptions{.election = election_name(options_.cluster)});
  resp::RespCommandsOptions co;
  co.requirepass = options_.requirepass;
  co.databases = options_.databases;
  co.slowlog_log_slower_than = std::chrono::microseconds(options_.slowlog_log_slower_than_us);
  co.slowlog_max_len = options_.slowlog_max_len;
  co.tcp_port = parse_tcp_address(options_.client)->port;
  co.process_id = options_.process_id;
  co.quire_version = options_.version;
  co.process_memory = read_process_memory;
  co.process_cpu = read_process_cpu;
  co.primary_address = [this]() -> std::optional<Address> {
    std::optional<Leadership> l = watch_->leader();
    if (!l) return std::nullopt;
    return l->value;
  };
  commands_ = std::make_unique<resp::RespCommands>(*node_, std::move(co));
  resp::RespServerOptions so;
  so.auth_required = !options_.requirepass.empty();
  server_ = std::make_unique<resp::RespServer>(*env_, *commands_, so);
  commands_->set_server_stats(&server_->stats());
  commands_->set_client_directory(&server_->directory());

  // A standby reports to the primary its election names (never to itself).
  link_ = std::make_unique<resp::CommandLink>(
      *env_,
      [this]() -> std::optional<Address> {
        std::optional<Leadership> l = watch_->leader();
        if (!l || l->value == options_.advertise) return std::nullopt;
        return l->value;
      },
      options_.requirepass, kReportTimeout);
  reporter_ = std::make_unique<resp::ProgressReporter>(
      *node_, options_.name, options_.advertise,
      [this](std::vector<std::string> args) { return link_->send(std::move(args)); });

  if (Status st = server_->start(options_.client); !st.is_ok()) {
    return unavailable(fmt::format("cannot listen on {}: {}", options_.client, st.message()));
  }
  node_->start();
  watch_->start();
  reporter_->start();
  return server_->address();
}

void ComputeNode::shutdown(Nanos timeout) {
  if (!node_) return;
  if (Elector* elector = node_->elector()) {
    elector->retire(cancelled("the node is shutting down"));
    loop_.run_until([&] { return elector->retired(); }, timeout);
  }
  reporter_->stop();
  bool stopped = false;
  auto stop = [](resp::RespServer& server, bool& done) -> Task<void> {
    co_await server.stop();
    done = true;
  };
  env_->executor().spawn("resp-stop", stop(*server_, stopped));
  loop_.run_until([&] { return stopped; }, kServerStopTimeout);
}

}  // namespace quire::cluster
