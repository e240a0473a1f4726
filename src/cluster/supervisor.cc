#include "cluster/supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_start_down = 0;

void on_stop_signal(int) {
  g_stop = 1;
}
void on_hup(int) {
  g_start_down = 1;
}

constexpr auto kTick = std::chrono::milliseconds(50);

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

template <typename... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print("{} supervisor: {}\n", now_text(), fmt::format(f, std::forward<Args>(args)...));
  std::fflush(stdout);
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("signal {} ({}){}", sig, strsignal(sig),
                       WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("status {}", status);
}

// Whether something accepts TCP connections at "127.0.0.1:port".
bool port_accepts(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  const int port = std::atoi(address.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

struct Child {
  ProcessSpec spec;
  ProcessState state;
  Clock::time_point started_at{};
  std::optional<Clock::time_point> restart_at;  // a pending automatic restart
  Clock::duration backoff = kBackoffMin;
};

class Supervisor {
 public:
  Supervisor(const ClusterSpec& spec, const std::string& quire) : spec_(spec) {
    for (auto& p : cluster_processes(spec, quire)) {
      Child c;
      c.state.name = p.name;
      c.state.kind = p.kind;
      c.state.address = p.address;
      c.spec = std::move(p);
      children_.push_back(std::move(c));
    }
  }

  int run() {
    start_in_order(/*only_down=*/false);
    while (!g_stop) {
      reap();
      if (g_start_down) {
        g_start_down = 0;
        say("SIGHUP: starting every process that is down");
        start_in_order(/*only_down=*/true);
      }
      restart_due();
      std::this_thread::sleep_for(kTick);
    }
    stop_all();
    return 0;
  }

 private:
  void spawn(Child& c) {
    const std::string log = spec_.log_path(c.spec.name);
    std::vector<char*> argv;
    for (auto& a : c.spec.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      say("cannot start {}: fork: {}", c.spec.name, std::strerror(errno));
      schedule_restart(c);
      return;
    }
    if (pid == 0) {
      // The child: its own process group (a signal to the supervisor's group is not one to
      // the cluster), output to its log, default signal handling, then the program.
      ::setpgid(0, 0);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0 || null < 0) ::_exit(127);
      ::dup2(null, 0);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      reset_for_exec();
      ::execv(argv[0], argv.data());
      const std::string msg =
          fmt::format("supervisor: cannot execute {}: {}\n", argv[0], std::strerror(errno));
      (void)!::write(2, msg.data(), msg.size());
      ::_exit(127);
    }
    c.state.pid = pid;
    // Set at fork, kept through exec: what tells this process from a later one at its pid.
    c.state.start_time = process_start_time(pid).value_or(0);
    c.state.alive = true;
    c.state.starts++;
    c.started_at = Clock::now();
    c.restart_at.reset();
    say("started {} (pid {})", c.spec.name, pid);
    write_state();
  }

  void schedule_restart(Child& c) {
    if (Clock::now() - c.started_at >= kBackoffResetAfter) c.backoff = kBackoffMin;
    c.restart_at = Clock::now() + c.backoff;
    say("{} will restart in {} ms", c.spec.name,
        std::chrono::duration_cast<std::chrono::milliseconds>(c.backoff).count());
    c.backoff = std::min<Clock::duration>(c.backoff * 2, kBackoffMax);
  }

  // Starts each kind once the previous kind listens (bounded by kPortWaitMax).
  void start_in_order(bool only_down) {
    for (ProcessKind kind : {ProcessKind::kEtcd, ProcessKind::kPageServer, ProcessKind::kNode}) {
      std::vector<Child*> started;
      for (auto& c : children_) {
        if (c.spec.kind != kind || g_stop) continue;
        if (only_down && (c.state.alive || c.restart_at)) continue;
        spawn(c);
        started.push_back(&c);
      }
      if (kind == ProcessKind::kNode) break;  // nobody waits on the compute nodes
      const auto until = Clock::now() + kPortWaitMax;
      for (Child* c : started) {
        while (!g_stop && c->state.alive && !port_accepts(c->spec.address) &&
               Clock::now() < until) {
          reap();
          std::this_thread::sleep_for(kTick);
        }
        if (c->state.alive && !port_accepts(c->spec.address)) {
          say("{} does not accept connections at {} yet; going on", c->spec.name, c->spec.address);
        }
      }
    }
  }

  void reap() {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (auto& c : children_) {
        if (c.state.pid != pid) continue;
        c.state.alive = false;
        c.state.pid = 0;
        c.state.start_time = 0;
        c.state.last_exit = describe_exit(status);
        say("{} (pid {}) ended: {}", c.spec.name, pid, c.state.last_exit);
        if (!stopping_ && WIFEXITED(status) && WEXITSTATUS(status) == 75) {
          schedule_restart(c);
          c.state.restarts++;
        }
        write_state();
      }
    }
  }

  void restart_due() {
    for (auto& c : children_) {
      if (c.restart_at && Clock::now() >= *c.restart_at && !c.state.alive) spawn(c);
    }
  }

  void stop_all() {
    stopping_ = true;
    write_state();
    say("stopping the cluster");
    for (ProcessKind kind : {ProcessKind::kNode, ProcessKind::kPageServer, ProcessKind::kEtcd}) {
      for (auto& c : children_) {
        c.restart_at.reset();
        if (c.spec.kind == kind && c.state.alive) {
          ::kill(c.state.pid, SIGTERM);
          ::kill(c.state.pid, SIGCONT);
        }
      }
      const auto until = Clock::now() + kStopGrace;
      while (Clock::now() < until && any_alive(kind)) {
        reap();
        std::this_thread::sleep_for(kTick);
      }
      for (auto& c : children_) {
        if (c.spec.kind == kind && c.state.alive) {
          say("{} (pid {}) did not stop within {} s: SIGKILL", c.spec.name, c.state.pid,
              std::chrono::duration_cast<std::chrono::seconds>(kStopGrace).count());
          ::kill(c.state.pid, SIGKILL);
        }
      }
      while (any_alive(kind)) {
        reap();
        std::this_thread::sleep_for(kTick);
      }
    }
    say("stopped");
    write_state();
  }

  bool any_alive(ProcessKind kind) const {
    for (const auto& c : children_) {
      if (c.spec.kind == kind && c.state.alive) return true;
    }
    return false;
  }

  void write_state() {
    SupervisorState s;
    s.supervisor_pid = ::getpid();
    s.stopping = stopping_;
    s.boot_id = boot_id_;
    for (const auto& c : children_) s.processes.push_back(c.state);
    if (Status st = quire::cluster::write_state(spec_, s); !st.is_ok()) {
      say("{}", st.message());
    }
  }

  const ClusterSpec& spec_;
  const std::string boot_id_ = current_boot_id();
  std::vector<Child> children_;
  bool stopping_ = false;
};

std::string lock_path(const ClusterSpec& spec) {
  return spec.run_dir() + "/supervisor.lock";
}

// The flock(2) a supervisor of an earlier build takes (and probes with): held too, so
// neither build's supervisor runs beside the other's. A probe by `status` holds it shared
// for a moment, so a few tries.
bool take_legacy_lock(int fd) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A write lock on the whole file.
struct flock whole_file_lock() {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  return fl;
}

}  // namespace

void reset_for_exec() {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::close_range(3, ~0U, 0);
}

std::optional<int> running_supervisor(const ClusterSpec& spec) {
  const int fd = ::open(lock_path(spec).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // Who holds it, without taking it (a shared lock held for a moment here would make a
  // supervisor starting just then refuse to run).
  struct flock fl = whole_file_lock();
  const bool asked = ::fcntl(fd, F_GETLK, &fl) == 0;
  if (asked && fl.l_type != F_UNLCK) {
    ::close(fd);
    // 0 (or less) when the holder's pid is not visible here (another pid namespace).
    return std::max(0, static_cast<int>(fl.l_pid));
  }
  // A supervisor of an earlier build holds only flock(2), which F_GETLK does not see; it
  // wrote its pid to supervisor.pid. (Supervisors of this build hold both locks, so this
  // probe never meets one of them mid-start: it would only make it wait and retry.)
  const bool legacy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  if (!legacy) return std::nullopt;
  std::ifstream in(spec.run_dir() + "/supervisor.pid");
  int pid = 0;
  in >> pid;
  return std::max(0, pid);
}

std::optional<uint64_t> process_start_time(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // After the command's ")": state is field 3, starttime field 22.
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return std::nullopt;
  }
  uint64_t ticks = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), ticks);
  if (ec != std::errc() || end != field.data() + field.size()) return std::nullopt;
  return ticks;
}

std::string current_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

bool pid_alive(int pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  std::getline(in, stat);
  const auto paren = stat.rfind(") ");
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

bool still_runs(const SupervisorState& state, const ProcessState& p) {
  if (!p.alive || p.pid <= 0) return false;
  // Written in another boot: nothing of it runs. (Either id unreadable: the start time
  // alone tells.)
  if (!state.boot_id.empty()) {
    const std::string now = current_boot_id();
    if (!now.empty() && now != state.boot_id) return false;
  }
  if (!pid_alive(p.pid)) return false;
  const std::optional<uint64_t> started = process_start_time(p.pid);
  // A state written by an earlier build has no start times: the pid alone, as it judged.
  if (p.start_time == 0) return started.has_value();
  return started.has_value() && *started == p.start_time;
}

Status write_state(const ClusterSpec& spec, const SupervisorState& state) {
  nlohmann::ordered_json j;
  j["supervisor_pid"] = state.supervisor_pid;
  j["stopping"] = state.stopping;
  j["boot_id"] = state.boot_id;
  auto& ps = j["processes"] = nlohmann::ordered_json::array();
  for (const auto& p : state.processes) {
    ps.push_back({{"name", p.name},
                  {"kind", process_kind_name(p.kind)},
                  {"address", p.address},
                  {"pid", p.pid},
                  {"start_time", p.start_time},
                  {"alive", p.alive},
                  {"starts", p.starts},
                  {"restarts", p.restarts},
                  {"last_exit", p.last_exit}});
  }
  const std::string path = spec.run_dir() + "/state.json";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      return unavailable(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return unavailable(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::ok();
}

int run_supervisor(const ClusterSpec& spec, const std::string& quire) {
  // Whatever this process inherited: its children's ends must reach waitpid (an ignored
  // SIGCHLD makes the kernel reap them unseen), and its signals must not be blocked.
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // The handlers before the lock: once the lock shows this pid, a `quire cluster start` may
  // send it SIGHUP at any moment.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_hup;
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  std::filesystem::create_directories(spec.run_dir(), ec);
  std::filesystem::create_directories(spec.dir + "/logs", ec);
  const int lock = ::open(lock_path(spec).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock fl = whole_file_lock();
  if (lock < 0 || ::fcntl(lock, F_SETLK, &fl) != 0 || !take_legacy_lock(lock)) {
    const std::optional<int> holder = running_supervisor(spec);
    say("cluster {} already has a supervisor{}", spec.dir,
        holder && *holder > 0 ? fmt::format(" (pid {})", *holder) : "");
    if (lock >= 0) ::close(lock);
    return 1;
  }
  say("supervising cluster {} in {} (pid {})", spec.name, spec.dir, ::getpid());
  Supervisor supervisor(spec, quire);
  const int rc = supervisor.run();
  ::close(lock);  // releases the lock
  return rc;
}

Result<SupervisorState> read_state(const ClusterSpec& spec) {
  const std::string path = spec.run_dir() + "/state.json";
  std::ifstream in(path);
  if (!in) return not_found(fmt::format("no {}: the cluster was never started", path));
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(fmt::format("{} is not valid JSON", path));
  SupervisorState s;
  try {
    s.supervisor_pid = j.at("supervisor_pid").get<int>();
    s.stopping = j.at("stopping").get<bool>();
    s.boot_id = j.value("boot_id", std::string());
    for (const auto& p : j.at("processes")) {
      ProcessState ps;
      ps.name = p.at("name").get<std::string>();
      const auto kind = p.at("kind").get<std::string>();
      ps.kind = kind == "etcd"         ? ProcessKind::kEtcd
                : kind == "pageserver" ? ProcessKind::kPageServer
                                       : ProcessKind::kNode;
      ps.address = p.at("address").get<std::string>();
      ps.pid = p.at("pid").get<int>();
      ps.alive = p.at("alive").get<bool>();
      ps.starts = p.at("starts").get<uint64_t>();
      ps.restarts = p.at("restarts").get<uint64_t>();
      ps.last_exit = p.at("last_exit").get<std::string>();
      ps.start_time = p.value("start_time", uint64_t{0});
      s.processes.push_back(std::move(ps));
    }
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

}  // namespace quire::cluster
