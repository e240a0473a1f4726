#include "cluster/cluster_ops.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cluster/resp_client.h"

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(200);
constexpr auto kPollStop = std::chrono::milliseconds(20);
// How often a start of a running cluster asks its supervisor again to start what is down.
constexpr auto kHupRepeat = std::chrono::seconds(2);

// The processes of `state` that still run (still_runs: never a reused pid).
std::vector<ProcessState> still_running(const SupervisorState& state) {
  std::vector<ProcessState> out;
  for (const auto& p : state.processes) {
    if (still_runs(state, p)) out.push_back(p);
  }
  return out;
}

std::string name_pids(const std::vector<ProcessState>& ps) {
  std::string out;
  for (const auto& p : ps)
    out += fmt::format("{}{} (pid {})", out.empty() ? "" : ", ", p.name, p.pid);
  return out;
}

uint64_t json_u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  return 0;
}

int spawn_supervisor(const ClusterSpec& spec, const std::string& quire) {
  const std::string log = spec.log_path("supervisor");
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The supervisor outlives this command: its own session, no terminal, output to its log.
  ::setsid();
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || null < 0) ::_exit(127);
  ::dup2(null, 0);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  reset_for_exec();
  std::vector<std::string> args = {quire, "cluster", "supervise", spec.dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  const std::string msg =
      fmt::format("quire cluster start: cannot execute {}: {}\n", argv[0], std::strerror(errno));
  (void)!::write(2, msg.data(), msg.size());
  ::_exit(127);
}

bool port_free(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// The ports [from, to) a base port may be drawn from: below the ephemeral range when it
// leaves room above 10,000, otherwise above it.
std::pair<uint32_t, uint32_t> base_port_range(uint16_t count) {
  constexpr uint32_t kLowest = 10'000;
  uint32_t eph_lo = 32'768, eph_hi = 60'999;  // Linux's default
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  uint32_t lo = 0, hi = 0;
  if (in >> lo >> hi && lo <= hi && hi <= 65'535) eph_lo = lo, eph_hi = hi;
  if (eph_lo >= kLowest + 10u * count) return {kLowest, eph_lo - count};
  if (eph_hi + 1 + 10u * count <= 65'536) return {eph_hi + 1, 65'536 - count};
  return {kLowest, 65'536 - count};  // the range covers nearly everything: take our chances
}

// The last non-empty line of a log, for an error message.
std::string last_log_line(const std::string& path) {
  std::istringstream in(file_tail(path, 4096));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

Result<uint16_t> pick_base_port(uint16_t count) {
  constexpr int kPicksMax = 50;
  const auto [from, to] = base_port_range(count);
  std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(::getpid()));
  for (int i = 0; i < kPicksMax; ++i) {
    const auto base = static_cast<uint16_t>(from + rng() % (to - from));
    bool all = true;
    for (uint16_t p = 0; p < count && all; ++p) all = port_free(static_cast<uint16_t>(base + p));
    if (all) return base;
  }
  return unavailable(
      fmt::format("no range of {} free loopback ports found in {}..{}", count, from, to - 1));
}

std::string file_tail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const auto size = static_cast<size_t>(in.tellg());
  const size_t from = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

bool NodeReport::serving() const {
  if (!answered) return false;
  if (role == "primary") return state == "SERVING";
  return state == "SECONDARY" && !primary.empty();
}

NodeReport query_node(const std::string& address, std::chrono::milliseconds timeout,
                      const std::string& password) {
  NodeReport r;
  auto client = RespClient::connect(address, timeout);
  if (!client.is_ok()) {
    r.error = client.status().message();
    return r;
  }
  if (!password.empty()) {
    auto auth = client->command({"AUTH", password}, timeout);
    if (!auth.is_ok() || auth->is_error()) {
      r.error = "AUTH: " + (auth.is_ok() ? auth->text : auth.status().message());
      return r;
    }
  }
  auto reply = client->command({"QUIRE.STATUS"}, timeout);
  if (!reply.is_ok()) {
    r.error = reply.status().message();
    return r;
  }
  if (reply->type != RespReply::Type::kBulk) {
    r.error = reply->is_error() ? reply->text : "QUIRE.STATUS: not a bulk reply";
    return r;
  }
  auto j = nlohmann::json::parse(reply->text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.error = "QUIRE.STATUS: not a JSON object";
    return r;
  }
  r.answered = true;
  r.role = j.value("role", "");
  r.state = j.value("state", "");
  r.term = json_u64(j, "term");
  r.applied_ts = json_u64(j, "applied_ts");
  r.applied_lsn = json_u64(j, "applied_lsn");
  r.checkpoint_lsn = json_u64(j, "checkpoint_lsn");
  r.keystore_version = json_u64(j, "keystore_version");
  if (auto it = j.find("primary"); it != j.end() && it->is_string()) r.primary = *it;
  r.step_downs = json_u64(j, "step_downs");
  if (auto it = j.find("pickups"); it != j.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) r.pickups[name] = json_u64(*it, name.c_str());
  }
  return r;
}

Result<ClusterReport> cluster_status(const ClusterSpec& spec) {
  ClusterReport report;
  report.supervisor_pid = running_supervisor(spec);
  auto state = read_state(spec);
  if (!state.is_ok() && state.code() != Code::kNotFound) return state.status();
  std::map<std::string, ProcessState> known;
  if (state.is_ok()) {
    for (auto& p : state->processes) known[p.name] = p;
  }
  uint64_t primary_lsn = 0;
  bool have_primary = false;
  for (const auto& p : cluster_processes(spec, "quire")) {
    ProcessReport pr;
    auto it = known.find(p.name);
    if (it != known.end()) pr.process = it->second;
    pr.process.name = p.name;
    pr.process.kind = p.kind;
    pr.process.address = p.address;
    // Trust the state file only while its supervisor runs and the pid is alive.
    pr.process.alive = report.supervisor_pid && state.is_ok() && still_runs(*state, pr.process);
    if (p.kind == ProcessKind::kNode && pr.process.alive) {
      pr.node = query_node(p.address, kStatusQueryTimeout, spec.requirepass);
      if (pr.node->answered && pr.node->role == "primary") {
        have_primary = true;
        primary_lsn = std::max(primary_lsn, pr.node->applied_lsn);
      }
    }
    report.processes.push_back(std::move(pr));
  }
  for (auto& pr : report.processes) {
    if (have_primary && pr.node && pr.node->answered && pr.node->role == "standby") {
      pr.lag_lsn = pr.node->applied_lsn >= primary_lsn
                       ? 0
                       : static_cast<int64_t>(primary_lsn - pr.node->applied_lsn);
    }
  }
  return report;
}

bool cluster_ready(const ClusterReport& report, std::string* why) {
  std::vector<std::string> down;
  size_t primaries = 0;
  for (const auto& pr : report.processes) {
    if (!pr.process.alive) {
      down.push_back(
          fmt::format("{} is not running{}", pr.process.name,
                      pr.process.last_exit.empty() ? "" : " (" + pr.process.last_exit + ")"));
      continue;
    }
    if (!pr.node) continue;
    if (!pr.node->answered) {
      down.push_back(fmt::format("{} does not answer at {}: {}", pr.process.name,
                                 pr.process.address, pr.node->error));
    } else if (pr.node->role == "primary" && pr.node->serving()) {
      ++primaries;
    } else if (!pr.node->serving()) {
      down.push_back(fmt::format("{} is {} {}{}", pr.process.name, pr.node->role, pr.node->state,
                                 pr.node->primary.empty() ? ", knowing of no primary" : ""));
    }
  }
  if (primaries != 1) {
    down.push_back(primaries == 0 ? "no primary serves" : fmt::format("{} primaries", primaries));
  }
  if (why) {
    why->clear();
    for (const auto& d : down) *why += (why->empty() ? "" : "; ") + d;
  }
  return down.empty();
}

namespace {

// For each process that is down: its log's last line, which says why it ended.
std::string down_logs(const ClusterSpec& spec, const ClusterReport& report) {
  std::string out;
  for (const auto& pr : report.processes) {
    if (pr.process.alive) continue;
    const std::string line = last_log_line(spec.log_path(pr.process.name));
    if (!line.empty()) out += fmt::format("\n  {}'s last log line: {}", pr.process.name, line);
  }
  return out;
}

}  // namespace

Result<StartOutcome> start_cluster(const ClusterSpec& spec, const std::string& quire,
                                   std::chrono::seconds wait) {
  StartOutcome out;
  if (auto pid = running_supervisor(spec)) {
    out.already_running = true;
    out.supervisor_pid = *pid;
    if (*pid > 0) ::kill(*pid, SIGHUP);  // start whatever is down
  } else {
    // A supervisor that was killed leaves its processes running, no longer anyone's
    // children: a new one cannot take them over, and its own copies would find their ports
    // taken. They are stopped first, by `quire cluster stop`.
    if (auto state = read_state(spec); state.is_ok()) {
      const std::vector<ProcessState> left = still_running(*state);
      if (!left.empty()) {
        return Status(Code::kUnavailable,
                      fmt::format("processes of cluster {} still run without their supervisor "
                                  "(it was killed): {}; stop them with `quire cluster stop {}`, "
                                  "then start again",
                                  spec.dir, name_pids(left), spec.dir));
      }
    }
    out.supervisor_pid = spawn_supervisor(spec, quire);
    if (out.supervisor_pid < 0) {
      return unavailable(fmt::format("cannot start the supervisor: {}", std::strerror(errno)));
    }
  }
  const auto until = Clock::now() + wait;
  std::string why = "not checked yet";
  auto last_hup = Clock::now();
  for (;;) {
    if (!out.already_running) {
      int status = 0;
      if (::waitpid(out.supervisor_pid, &status, WNOHANG) == out.supervisor_pid) {
        return unavailable(
            fmt::format("the supervisor ended at start (see {})", spec.log_path("supervisor")));
      }
    }
    auto report = cluster_status(spec);
    if (report.is_ok() && report->supervisor_pid && cluster_ready(*report, &why)) return out;
    if (!report.is_ok()) why = report.status().message();
    // A process still ending when the supervisor took SIGHUP (a SIGTERM just before this
    // start) was not down yet then: ask again while something is down.
    if (out.already_running && out.supervisor_pid > 0 && report.is_ok() &&
        Clock::now() - last_hup >= kHupRepeat &&
        std::any_of(report->processes.begin(), report->processes.end(),
                    [](const ProcessReport& p) { return !p.process.alive; })) {
      ::kill(out.supervisor_pid, SIGHUP);
      last_hup = Clock::now();
    }
    if (Clock::now() >= until) {
      return unavailable(fmt::format("not up within {} s: {}{}", wait.count(), why,
                                     report.is_ok() ? down_logs(spec, *report) : ""));
    }
    std::this_thread::sleep_for(kPoll);
  }
}

Status stop_cluster(const ClusterSpec& spec) {
  if (auto pid = running_supervisor(spec)) {
    if (*pid <= 0) return unavailable("the supervisor runs but its pid file is unreadable");
    ::kill(*pid, SIGTERM);
    // The supervisor gives each kind kStopGrace, then kills.
    const auto until = Clock::now() + 3 * kStopGrace + std::chrono::seconds(10);
    // It releases its lock once every child has ended, then exits; the exit itself can
    // take a moment (a sanitizer build checks for leaks), so wait for the pid too.
    while (running_supervisor(spec) || pid_alive(*pid)) {
      if (Clock::now() >= until) {
        return unavailable(fmt::format("the supervisor (pid {}) did not stop", *pid));
      }
      std::this_thread::sleep_for(kPollStop);
    }
    return Status::ok();
  }
  // No supervisor: stop what it left behind (it was killed), by pid, as it would have:
  // compute nodes, page servers, then etcd; SIGTERM (and SIGCONT), SIGKILL after
  // kStopGrace. Only processes that still run (never a pid some other process took since).
  auto state = read_state(spec);
  if (!state.is_ok()) return state.code() == Code::kNotFound ? Status::ok() : state.status();
  std::vector<std::string> survivors;
  for (ProcessKind kind : {ProcessKind::kNode, ProcessKind::kPageServer, ProcessKind::kEtcd}) {
    std::vector<ProcessState> left;
    for (const auto& p : still_running(*state)) {
      if (p.kind == kind) left.push_back(p);
    }
    for (const auto& p : left) {
      ::kill(p.pid, SIGTERM);
      ::kill(p.pid, SIGCONT);
    }
    auto gone = [&] {
      return std::none_of(left.begin(), left.end(),
                          [&](const ProcessState& p) { return still_runs(*state, p); });
    };
    for (auto until = Clock::now() + kStopGrace; !gone() && Clock::now() < until;) {
      std::this_thread::sleep_for(kPollStop);
    }
    for (const auto& p : left) {
      if (still_runs(*state, p)) ::kill(p.pid, SIGKILL);
    }
    for (auto until = Clock::now() + std::chrono::seconds(5); !gone() && Clock::now() < until;) {
      std::this_thread::sleep_for(kPollStop);
    }
    for (const auto& p : left) {
      if (still_runs(*state, p)) survivors.push_back(fmt::format("{} (pid {})", p.name, p.pid));
    }
  }
  for (auto& p : state->processes) {
    if (!p.alive || still_runs(*state, p)) continue;
    p.alive = false;
    p.pid = 0;
    p.start_time = 0;
    p.last_exit = "stopped without its supervisor";
  }
  if (Status st = write_state(spec, *state); !st.is_ok()) return st;
  if (!survivors.empty()) {
    return unavailable(fmt::format("still running after SIGKILL: {}", fmt::join(survivors, ", ")));
  }
  return Status::ok();
}

Status kill_process(const ClusterSpec& spec, const std::string& name, int signal) {
  auto state = read_state(spec);
  if (!state.is_ok()) return state.status();
  if (!running_supervisor(spec)) return unavailable("the cluster is not running");
  for (const auto& p : state->processes) {
    if (p.name != name) continue;
    if (!still_runs(*state, p)) return unavailable(fmt::format("{} is not running", name));
    if (::kill(p.pid, signal) != 0) {
      return unavailable(fmt::format("kill {}: {}", p.pid, std::strerror(errno)));
    }
    return Status::ok();
  }
  return not_found(fmt::format("no process named '{}' in this cluster", name));
}

}  // namespace quire::cluster
