// The seed runner behind `quire sim kek`: it runs `quire chaos kek` once per seed of a range,
// each seed in a worker process of its own (so a crash, a signal or a hang costs that seed
// only), at most `jobs` at once, and reports every failing seed with the command that
// replays it.
//
// This is harness code, not node code: it uses POSIX processes and signals directly. It
// takes SIGCHLD and the interrupts (SIGINT, SIGTERM, and SIGPIPE when its output is
// closed, as by `| head`) synchronously (sigtimedwait), so there are no signal handlers and
// no race between a worker exiting and the runner sleeping. Each worker runs in a process
// group of its own: a ^C reaches the runner alone, which stops starting seeds, passes SIGTERM
// on to the workers (a second ^C kills them) and still reports and tidies up; a worker killed
// for a timeout takes whatever it started with it.
#include "sim/seed_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/assert.h"

namespace quire {

namespace {

// The worker's exit codes, as quire's (cli/command.h): passed, failed its checks, bad usage.
constexpr int kWorkerExitPassed = 0;
constexpr int kWorkerExitFailed = 1;
constexpr int kWorkerExitUsage = 2;

using Clock = std::chrono::steady_clock;

constexpr uint64_t kSeedsMax = 1'000'000;  // seeds in one run
// Failing seeds whose output files are kept, and that are printed with their output's tail
// or listed in the summary: enough to debug, bounded when every seed fails.
constexpr size_t kFailedOutputsKeptMax = 100;
constexpr size_t kFailuresWithTailMax = 20;
constexpr size_t kFailedSeedsListedMax = 20;
constexpr size_t kTailLines = 20;
// When this many seeds have finished and every one failed to run (no report), the worker
// is broken, not the seeds: no further seeds start.
constexpr uint64_t kBrokenWorkerSeeds = 10;
constexpr size_t kTailBytesMax = 64 * 1024;
constexpr uintmax_t kReportBytesMax = 64 << 20;
// How long the runner sleeps at most between looks at its workers (timeouts, the progress
// bar); a worker's exit wakes it at once.
constexpr auto kWaitTick = std::chrono::milliseconds(200);
constexpr auto kProgressRedrawMin = std::chrono::milliseconds(100);

// The flags of `quire chaos kek` that run `seed` as this run does: the worker's command line
// (with --json added) and the replay command printed for a failing seed.
std::vector<std::string> chaos_kek_flags(const SeedRunnerOptions& f, uint64_t seed) {
  std::vector<std::string> flags = {"--seed", std::to_string(seed), "--policy", f.policy};
  if (f.duration_seconds) {
    flags.push_back("--duration");
    flags.push_back(fmt::format("{}", *f.duration_seconds));
  }
  if (f.standbys) {
    flags.push_back("--standbys");
    flags.push_back(std::to_string(*f.standbys));
  }
  for (const std::string& fault : f.add_faults) {
    flags.push_back("--add-fault");
    flags.push_back(fault);
  }
  return flags;
}

std::string replay_command(const SeedRunnerOptions& f, uint64_t seed) {
  return fmt::format("quire chaos kek {}", fmt::join(chaos_kek_flags(f, seed), " "));
}

bool is_interrupt(int signal) {
  return signal == SIGINT || signal == SIGTERM || signal == SIGPIPE;
}

// While alive, SIGCHLD and the interrupts are blocked and taken with wait(); workers start
// with the mask the process had before.
class SynchronousSignals {
  static sigset_t empty_set() {
    sigset_t set;
    sigemptyset(&set);
    return set;
  }

 public:
  SynchronousSignals() {
    sigemptyset(&waited_);
    sigaddset(&waited_, SIGCHLD);
    sigaddset(&interrupts_, SIGINT);
    sigaddset(&interrupts_, SIGTERM);
    sigaddset(&interrupts_, SIGPIPE);
    sigorset(&waited_, &waited_, &interrupts_);
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap the workers itself.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(SIGCHLD, &default_action, &sigchld_before_);
    ::pthread_sigmask(SIG_BLOCK, &waited_, &mask_before_);
  }
  ~SynchronousSignals() {
    // A write to a closed stdout after the last look would kill the process as it unblocks.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    timespec zero{};
    ::sigtimedwait(&pipe, nullptr, &zero);
    ::pthread_sigmask(SIG_SETMASK, &mask_before_, nullptr);
    ::sigaction(SIGCHLD, &sigchld_before_, nullptr);
  }
  SynchronousSignals(const SynchronousSignals&) = delete;
  SynchronousSignals& operator=(const SynchronousSignals&) = delete;

  const sigset_t& worker_mask() const { return mask_before_; }

  // The signal that arrived within `timeout`, or 0.
  int wait(std::chrono::milliseconds timeout) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1'000'000;
    const int signal = ::sigtimedwait(&waited_, nullptr, &ts);
    return signal < 0 ? 0 : signal;
  }

  // A pending interrupt, taken without waiting, or 0.
  int take_interrupt() {
    timespec zero{};
    const int signal = ::sigtimedwait(&interrupts_, nullptr, &zero);
    return signal < 0 ? 0 : signal;
  }

 private:
  sigset_t interrupts_ = empty_set();
  sigset_t waited_;
  sigset_t mask_before_;
  struct sigaction sigchld_before_ {};
};

// Starts `program` with `argv` in a new process group (its id the worker's pid), its stdin
// /dev/null and its stdout and stderr the file at `output_path`.
Result<pid_t> start_worker(const std::string& program, const std::vector<std::string>& argv,
                           const std::string& output_path, const sigset_t& worker_mask) {
  // Everything the child needs is prepared before fork: between fork and exec it only makes
  // async-signal-safe calls.
  std::vector<char*> argv_pointers;
  for (const std::string& arg : argv) argv_pointers.push_back(const_cast<char*>(arg.c_str()));
  argv_pointers.push_back(nullptr);
  const std::string exec_failed = fmt::format("quire sim kek: cannot run {}: errno ", program);

  const int output = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (output < 0)
    return io_error(fmt::format("cannot create {}: {}", output_path, std::strerror(errno)));
  const int input = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (input < 0) {
    const int error = errno;
    ::close(output);
    return io_error(fmt::format("cannot open /dev/null: {}", std::strerror(error)));
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(input, STDIN_FILENO);
    ::dup2(output, STDOUT_FILENO);
    ::dup2(output, STDERR_FILENO);
    ::pthread_sigmask(SIG_SETMASK, &worker_mask, nullptr);
    ::execv(program.c_str(), argv_pointers.data());
    // errno in decimal, without the allocating formatters.
    char digits[16];
    size_t n = 0;
    for (int e = errno; n == 0 || e > 0; e /= 10) digits[n++] = static_cast<char>('0' + e % 10);
    std::reverse(digits, digits + n);
    digits[n++] = '\n';
    (void)!::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    (void)!::write(STDERR_FILENO, digits, n);
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(output);
  ::close(input);
  if (pid < 0) return io_error(fmt::format("fork: {}", std::strerror(fork_error)));
  // Also here, so the group exists before the runner may signal it (whichever runs first).
  ::setpgid(pid, pid);
  return pid;
}

// The last `lines` lines of the file at `path` (from its last kTailBytesMax bytes).
std::vector<std::string> last_lines(const std::string& path, size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - std::streamoff(kTailBytesMax));
  in.seekg(start);
  std::string text(static_cast<size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  std::vector<std::string> all;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    all.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  if (all.size() > lines) all.erase(all.begin(), all.end() - static_cast<ptrdiff_t>(lines));
  return all;
}

Result<nlohmann::json> read_report(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return not_found("no JSON report written");
  if (size > kReportBytesMax)
    return corruption(
        fmt::format("the JSON report is {} bytes, more than {}", size, kReportBytesMax));
  std::ifstream in(path, std::ios::binary);
  nlohmann::json report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object())
    return corruption("the JSON report is not a JSON object");
  return report;
}

struct SeedOutcome {
  enum class Kind { kPassed, kCheckerFailed, kInfrastructure, kInterrupted };
  Kind kind = Kind::kInfrastructure;
  double sim_seconds = 0;
  uint64_t failovers = 0;  // the report's primary changes
  uint64_t terms_max = 0;
  std::string failed_checker;   // kCheckerFailed
  std::string first_violation;  // kCheckerFailed
  std::string reason;           // kInfrastructure
  bool report_written = false;
  bool worker_rejected_arguments = false;  // it exited 2: every seed would
};

// What a worker's wait status and JSON report say about its seed.
SeedOutcome judge_worker(uint64_t seed, int wait_status, const std::string& report_path) {
  SeedOutcome o;
  if (WIFSIGNALED(wait_status)) {
    const int signal = WTERMSIG(wait_status);
    o.reason = fmt::format("killed by signal {} ({}){}", signal, ::strsignal(signal),
                           WCOREDUMP(wait_status) ? ", core dumped" : "");
    return o;
  }
  QUIRE_ASSERT(WIFEXITED(wait_status));
  const int code = WEXITSTATUS(wait_status);
  if (code == kWorkerExitUsage) {
    o.reason = "exit status 2: the worker rejected its arguments";
    o.worker_rejected_arguments = true;
    return o;
  }
  if (code != kWorkerExitPassed && code != kWorkerExitFailed) {
    o.reason = fmt::format("exit status {}{}", code,
                           code == 127 ? " (the worker program could not be run)" : "");
    return o;
  }
  Result<nlohmann::json> report = read_report(report_path);
  if (!report.is_ok()) {
    o.reason = fmt::format("exit status {} but {}", code, report.status().message());
    return o;
  }
  o.report_written = true;
  const nlohmann::json& j = *report;
  if (!j.contains("seed") || !j["seed"].is_number_unsigned() || j["seed"].get<uint64_t>() != seed) {
    o.reason = fmt::format("exit status {} but the JSON report's seed is {}, not {}", code,
                           j.contains("seed") ? j["seed"].dump() : "missing", seed);
    return o;
  }
  if (!j.contains("passed") || !j["passed"].is_boolean()) {
    o.reason = fmt::format("exit status {} but the JSON report has no boolean \"passed\"", code);
    return o;
  }
  const bool passed = j["passed"].get<bool>();
  if (passed != (code == kWorkerExitPassed)) {
    o.reason = fmt::format("exit status {} but the JSON report says passed={}", code, passed);
    return o;
  }
  if (j.contains("sim_seconds") && j["sim_seconds"].is_number())
    o.sim_seconds = j["sim_seconds"].get<double>();
  if (j.contains("failovers") && j["failovers"].is_number_unsigned())
    o.failovers = j["failovers"].get<uint64_t>();
  if (j.contains("terms_max") && j["terms_max"].is_number_unsigned())
    o.terms_max = j["terms_max"].get<uint64_t>();
  if (passed) {
    o.kind = SeedOutcome::Kind::kPassed;
    return o;
  }
  o.kind = SeedOutcome::Kind::kCheckerFailed;
  o.failed_checker = j.contains("failed_checker") && j["failed_checker"].is_string() &&
                             !j["failed_checker"].get<std::string>().empty()
                         ? j["failed_checker"].get<std::string>()
                         : "(no checker named)";
  o.first_violation = "(no violation listed)";
  if (j.contains("violations") && j["violations"].is_array() && !j["violations"].empty()) {
    const nlohmann::json& first = j["violations"][0];
    o.first_violation = first.is_string() ? first.get<std::string>() : first.dump();
  }
  return o;
}

std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) return "?";
  const auto s = static_cast<uint64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// Progress on stderr: on a terminal one line redrawn in place; otherwise a plain line each
// time another tenth of the seeds is done.
class ProgressDisplay {
 public:
  ProgressDisplay(uint64_t total, bool terminal) : total_(total), terminal_(terminal) {}

  void update(uint64_t done, uint64_t failed, double elapsed_seconds, bool stopping, bool force) {
    const double rate = elapsed_seconds > 0 ? static_cast<double>(done) / elapsed_seconds : 0;
    const std::string eta = stopping   ? "stopping"
                            : rate > 0 ? duration_text(static_cast<double>(total_ - done) / rate)
                                       : "?";
    if (terminal_) {
      const auto now = Clock::now();
      if (!force && drawn_ && now - last_draw_ < kProgressRedrawMin) return;
      constexpr size_t kWidth = 30;
      const auto filled = static_cast<size_t>(kWidth * done / total_);
      fmt::print(stderr, "\r[{}{}] {}/{} seeds, {} failed, {:.1f} seeds/s, ETA {}\033[K",
                 std::string(filled, '#'), std::string(kWidth - filled, '.'), done, total_, failed,
                 rate, eta);
      std::fflush(stderr);
      drawn_ = true;
      last_draw_ = now;
      return;
    }
    const uint64_t tenths = done * 10 / total_;
    if (tenths <= tenths_printed_) return;
    tenths_printed_ = tenths;
    fmt::print(stderr, "quire sim kek: {}/{} seeds done ({}%), {} failed, {:.1f} seeds/s, ETA {}\n",
               done, total_, done * 100 / total_, failed, rate, eta);
    std::fflush(stderr);
  }

  // Before other output to the terminal: the bar is redrawn by the next update.
  void clear() {
    if (!terminal_ || !drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  const uint64_t total_;
  const bool terminal_;
  bool drawn_ = false;
  Clock::time_point last_draw_;
  uint64_t tenths_printed_ = 0;
};

struct Worker {
  uint64_t seed = 0;
  pid_t pid = -1;
  Clock::time_point started;
  bool timed_out = false;  // killed by the runner after --seed-timeout
};

class SeedRunner {
 public:
  SeedRunner(const SeedRunnerOptions& flags, SeedRange range, std::string directory)
      : flags_(flags),
        range_(range),
        jobs_(
            static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(flags.jobs), range.count()))),
        directory_(std::move(directory)),
        progress_(range.count(), ::isatty(STDERR_FILENO) == 1) {
    QUIRE_ASSERT(jobs_ >= 1 && jobs_ <= kSeedRunnerJobsMax);
  }

  // Runs every seed (or until told to stop); true when every seed ran and passed.
  bool run() {
    const std::string added =
        flags_.add_faults.empty()
            ? std::string()
            : fmt::format(", faults added {}", fmt::join(flags_.add_faults, ","));
    fmt::print(
        "quire sim kek: seeds {}..{} ({} seeds), policy {}{}, jobs {}; worker output in {}\n",
        range_.first, range_.last, range_.count(), flags_.policy, added, jobs_, directory_);
    std::fflush(stdout);
    start_ = Clock::now();
    SynchronousSignals signals;
    for (;;) {
      note_interrupt(signals.take_interrupt());
      while (!stopping() && started_ < range_.count() && running_.size() < size_t(jobs_))
        start_next(signals.worker_mask());
      reap_finished();
      if (running_.empty() && (stopping() || started_ == range_.count())) break;
      enforce_seed_timeout();
      const int signal = signals.wait(kWaitTick);
      if (is_interrupt(signal)) note_interrupt(signal);
      progress_.update(done(), failures(), elapsed_seconds(), stopping(), false);
    }
    progress_.update(done(), failures(), elapsed_seconds(), stopping(), true);
    progress_.clear();
    wall_seconds_ = elapsed_seconds();
    const bool directory_kept = tidy_directory();
    print_summary(directory_kept);
    if (!flags_.json_path.empty()) {
      std::ofstream out(flags_.json_path);
      out << summary_json(directory_kept).dump(2) << "\n";
      if (!out) {
        fmt::print(stderr, "quire sim kek: cannot write {}\n", flags_.json_path);
        return false;
      }
    }
    return failures() == 0 && !interrupted_ && started_ == range_.count();
  }

 private:
  uint64_t done() const { return passed_ + failures(); }
  uint64_t failures() const { return checker_failures_ + infrastructure_failures_; }
  bool stopping() const { return interrupted_ || !stop_reason_.empty(); }
  double elapsed_seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  std::string output_path(uint64_t seed) const {
    return fmt::format("{}/seed-{}.out", directory_, seed);
  }
  std::string report_path(uint64_t seed) const {
    return fmt::format("{}/seed-{}.json", directory_, seed);
  }

  void start_next(const sigset_t& worker_mask) {
    const uint64_t seed = range_.first + started_;
    ++started_;
    std::vector<std::string> argv = {"quire", "chaos", "kek"};
    for (std::string& flag : chaos_kek_flags(flags_, seed)) argv.push_back(std::move(flag));
    argv.push_back("--json");
    argv.push_back(report_path(seed));
    Result<pid_t> pid = start_worker(flags_.worker_program, argv, output_path(seed), worker_mask);
    if (!pid.is_ok()) {
      SeedOutcome o;
      o.reason = fmt::format("could not start its worker: {}", pid.status().message());
      record(seed, o);
      stop_reason_ = "a worker could not be started";
      return;
    }
    running_.push_back(Worker{seed, *pid, Clock::now(), false});
    QUIRE_ASSERT(running_.size() <= size_t(jobs_));
  }

  // Collects every worker that has exited, without waiting.
  void reap_finished() {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;  // none exited yet, or no children left
      auto it = std::find_if(running_.begin(), running_.end(),
                             [pid](const Worker& w) { return w.pid == pid; });
      if (it == running_.end()) continue;  // not a worker of this run
      const Worker worker = *it;
      running_.erase(it);
      SeedOutcome o = judge_worker(worker.seed, status, report_path(worker.seed));
      if (WIFSIGNALED(status) && interrupted_ &&
          (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM ||
           WTERMSIG(status) == SIGKILL) &&
          !worker.timed_out)
        o.kind = SeedOutcome::Kind::kInterrupted;
      if (worker.timed_out && WIFSIGNALED(status))
        o.reason = fmt::format("timed out after {} s (--seed-timeout) and was killed",
                               flags_.seed_timeout_seconds);
      record(worker.seed, o);
    }
  }

  // The first interrupt stops launching and passes SIGTERM on to the running workers; a
  // second one kills them.
  void note_interrupt(int signal) {
    if (!is_interrupt(signal)) return;
    const int to_workers = interrupted_ ? SIGKILL : SIGTERM;
    if (!interrupted_) {
      progress_.clear();
      fmt::print(
          stderr,
          "quire sim kek: {}; stopping {} running worker(s) (interrupt again to kill them)\n",
          ::strsignal(signal), running_.size());
    }
    interrupted_ = true;
    for (const Worker& w : running_) ::kill(-w.pid, to_workers);
  }

  void enforce_seed_timeout() {
    if (flags_.seed_timeout_seconds <= 0) return;
    const auto limit = std::chrono::duration<double>(flags_.seed_timeout_seconds);
    const auto now = Clock::now();
    for (Worker& w : running_) {
      if (w.timed_out || now - w.started < limit) continue;
      ::kill(-w.pid, SIGKILL);
      w.timed_out = true;
    }
  }

  void record(uint64_t seed, const SeedOutcome& o) {
    using Kind = SeedOutcome::Kind;
    if (o.kind == Kind::kInterrupted) {
      remove_files(seed);
      return;
    }
    sim_seconds_ += o.sim_seconds;
    failovers_ += o.failovers;
    if (o.failovers > 0) seeds_with_failover_++;
    terms_max_ = std::max(terms_max_, o.terms_max);
    if (o.kind == Kind::kPassed) {
      ++passed_;
      remove_files(seed);
      return;
    }
    if (o.kind == Kind::kCheckerFailed) {
      ++checker_failures_;
    } else {
      ++infrastructure_failures_;
    }
    failed_seeds_.push_back(seed);
    if (failures() == 1) {
      first_failure_seed_ = seed;
      time_to_first_failure_seconds_ = elapsed_seconds();
    }
    const bool keep = failures() <= kFailedOutputsKeptMax;
    print_failure(seed, o, keep);
    if (failure_details_.size() < kFailedOutputsKeptMax) {
      nlohmann::ordered_json d;
      d["seed"] = seed;
      d["kind"] = o.kind == Kind::kCheckerFailed ? "checker" : "infrastructure";
      d["failed_checker"] =
          o.kind == Kind::kCheckerFailed ? nlohmann::ordered_json(o.failed_checker) : nullptr;
      d["first_violation"] =
          o.kind == Kind::kCheckerFailed ? nlohmann::ordered_json(o.first_violation) : nullptr;
      d["reason"] = o.kind == Kind::kInfrastructure ? nlohmann::ordered_json(o.reason) : nullptr;
      d["output"] = output_path(seed);
      d["report"] = o.report_written ? nlohmann::ordered_json(report_path(seed)) : nullptr;
      d["replay"] = replay_command(flags_, seed);
      failure_details_.push_back(std::move(d));
    }
    if (keep) {
      ++failed_outputs_kept_;
    } else {
      remove_files(seed);
    }
    if (o.worker_rejected_arguments && stop_reason_.empty())
      stop_reason_ = "the worker rejected its arguments; every seed would";
    if (infrastructure_failures_ == kBrokenWorkerSeeds && done() == kBrokenWorkerSeeds &&
        stop_reason_.empty())
      stop_reason_ = fmt::format("the first {} seeds all failed to run; the worker looks broken",
                                 kBrokenWorkerSeeds);
    if (flags_.stop_on_failure && stop_reason_.empty()) stop_reason_ = "--stop-on-failure";
  }

  void print_failure(uint64_t seed, const SeedOutcome& o, bool kept) {
    progress_.clear();
    if (o.kind == SeedOutcome::Kind::kCheckerFailed) {
      fmt::print("FAILED seed {}: {}: {}\n", seed, o.failed_checker, o.first_violation);
    } else {
      fmt::print("FAILED seed {}: infrastructure: {}\n", seed, o.reason);
    }
    fmt::print("  replay: {}\n", replay_command(flags_, seed));
    if (kept) {
      fmt::print("  output: {}{}\n", output_path(seed),
                 o.report_written ? fmt::format(" (report: {})", report_path(seed)) : "");
    }
    if (o.kind == SeedOutcome::Kind::kInfrastructure &&
        infrastructure_failures_ <= kFailuresWithTailMax) {
      std::vector<std::string> tail = last_lines(output_path(seed), kTailLines);
      if (tail.empty())
        fmt::print("  its output is empty\n");
      else
        fmt::print("  last {} lines of its output:\n", tail.size());
      for (const std::string& line : tail) fmt::print("    | {}\n", line);
    }
    std::fflush(stdout);
  }

  void remove_files(uint64_t seed) {
    std::error_code ignored;
    std::filesystem::remove(output_path(seed), ignored);
    std::filesystem::remove(report_path(seed), ignored);
  }

  // Removes the run's directory unless a failing seed's files are kept in it; says which.
  bool tidy_directory() {
    std::error_code ignored;
    if (failed_outputs_kept_ == 0) {
      std::filesystem::remove_all(directory_, ignored);
      return false;
    }
    return true;
  }

  void print_summary(bool directory_kept) {
    const double seeds_per_s = wall_seconds_ > 0 ? double(done()) / wall_seconds_ : 0;
    const double sim_rate = wall_seconds_ > 0 ? sim_seconds_ / wall_seconds_ : 0;
    fmt::print(
        "quire sim kek: {} of {} seeds run: {} passed, {} failed ({} checker, {} infrastructure)\n",
        done(), range_.count(), passed_, failures(), checker_failures_, infrastructure_failures_);
    if (interrupted_)
      fmt::print("  interrupted before every seed ran\n");
    else if (!stop_reason_.empty() && started_ < range_.count())
      fmt::print("  started no further seeds: {}\n", stop_reason_);
    if (!failed_seeds_.empty()) {
      std::vector<uint64_t> sorted = failed_seeds_;
      std::sort(sorted.begin(), sorted.end());
      const size_t listed = std::min(sorted.size(), kFailedSeedsListedMax);
      fmt::print("  failed seeds: {}{}\n",
                 fmt::join(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(listed), " "),
                 sorted.size() > listed ? fmt::format(" and {} more", sorted.size() - listed) : "");
      fmt::print("  first failure: seed {} after {:.2f} s\n", first_failure_seed_,
                 time_to_first_failure_seconds_);
    }
    fmt::print(
        "  wall_seconds={:.2f} seeds_per_s={:.2f} sim_seconds={:.1f} "
        "sim_seconds_per_wall_second={:.1f} per_core={:.1f} jobs={}\n",
        wall_seconds_, seeds_per_s, sim_seconds_, sim_rate, sim_rate / jobs_, jobs_);
    fmt::print("  failovers={} (in {} seeds) terms_max={}\n", failovers_, seeds_with_failover_,
               terms_max_);
    if (directory_kept) fmt::print("  kept the failing seeds' output in {}\n", directory_);
    fmt::print("{}\n", failures() > 0 ? "FAILED" : interrupted_ ? "INTERRUPTED" : "PASSED");
    std::fflush(stdout);
  }

  nlohmann::ordered_json summary_json(bool directory_kept) const {
    const double seeds_per_s = wall_seconds_ > 0 ? double(done()) / wall_seconds_ : 0;
    const double sim_rate = wall_seconds_ > 0 ? sim_seconds_ / wall_seconds_ : 0;
    std::vector<uint64_t> sorted = failed_seeds_;
    std::sort(sorted.begin(), sorted.end());
    nlohmann::ordered_json j;
    j["seed_first"] = range_.first;
    j["seed_last"] = range_.last;
    j["seeds"] = range_.count();
    j["seeds_run"] = done();
    j["passed"] = passed_;
    j["failures"] = failures();
    j["checker_failures"] = checker_failures_;
    j["infrastructure_failures"] = infrastructure_failures_;
    j["failed_seeds"] = sorted;
    j["first_failure_seed"] =
        failures() > 0 ? nlohmann::ordered_json(first_failure_seed_) : nullptr;
    j["wall_seconds"] = wall_seconds_;
    j["time_to_first_failure_seconds"] =
        failures() > 0 ? nlohmann::ordered_json(time_to_first_failure_seconds_) : nullptr;
    j["seeds_per_s"] = seeds_per_s;
    j["sim_seconds"] = sim_seconds_;
    j["sim_seconds_per_wall_second"] = sim_rate;
    j["sim_seconds_per_wall_second_per_core"] = sim_rate / jobs_;
    j["failovers"] = failovers_;
    j["seeds_with_failover"] = seeds_with_failover_;
    j["terms_max"] = terms_max_;
    j["jobs"] = jobs_;
    j["policy"] = flags_.policy;
    j["duration_s"] =
        flags_.duration_seconds ? nlohmann::ordered_json(*flags_.duration_seconds) : nullptr;
    j["standbys"] = flags_.standbys ? nlohmann::ordered_json(*flags_.standbys) : nullptr;
    j["add_faults"] = flags_.add_faults;
    j["stop_on_failure"] = flags_.stop_on_failure;
    j["interrupted"] = interrupted_;
    j["output_directory"] = directory_kept ? nlohmann::ordered_json(directory_) : nullptr;
    j["failure_details"] = failure_details_;
    return j;
  }

  const SeedRunnerOptions& flags_;
  const SeedRange range_;
  const int jobs_;  // --jobs, at most one per seed
  const std::string directory_;
  ProgressDisplay progress_;
  Clock::time_point start_;
  std::vector<Worker> running_;  // at most jobs_
  uint64_t started_ = 0;         // seeds range_.first .. range_.first + started_ - 1
  uint64_t passed_ = 0;
  uint64_t checker_failures_ = 0;
  uint64_t infrastructure_failures_ = 0;
  size_t failed_outputs_kept_ = 0;
  std::vector<uint64_t> failed_seeds_;                   // in the order they finished
  std::vector<nlohmann::ordered_json> failure_details_;  // at most kFailedOutputsKeptMax
  uint64_t first_failure_seed_ = 0;
  double time_to_first_failure_seconds_ = 0;
  double sim_seconds_ = 0;  // summed over the workers' reports
  uint64_t failovers_ = 0;  // likewise
  uint64_t seeds_with_failover_ = 0;
  uint64_t terms_max_ = 0;  // the highest of the reports
  double wall_seconds_ = 0;
  bool interrupted_ = false;
  std::string stop_reason_;  // why no further seeds start ("" while they do)
};

Result<std::string> make_run_directory() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);  // $TMPDIR or /tmp
  if (ec) base = "/tmp";
  std::string pattern = (base / "quire-sim-kek-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    return io_error(fmt::format("cannot create {}: {}", pattern, std::strerror(errno)));
  return pattern;
}

Result<uint64_t> parse_seed(std::string_view text) {
  uint64_t seed = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, seed);
  if (text.empty() || error == std::errc::invalid_argument || stop != end)
    return invalid_argument(fmt::format("\"{}\" is not a seed (a number from 0 to {})", text,
                                        std::numeric_limits<uint64_t>::max()));
  if (error == std::errc::result_out_of_range)
    return invalid_argument(fmt::format("{} is larger than the largest seed, {}", text,
                                        std::numeric_limits<uint64_t>::max()));
  return seed;
}

}  // namespace

// "A..B", both ends included, A <= B, at most kSeedsMax seeds.
Result<SeedRange> parse_seed_range(std::string_view text) {
  const size_t dots = text.find("..");
  if (dots == std::string_view::npos)
    return invalid_argument(fmt::format("expected FIRST..LAST (e.g. 1..1000), got \"{}\"", text));
  const std::string_view first_text = text.substr(0, dots);
  const std::string_view last_text = text.substr(dots + 2);
  if (first_text.empty() || last_text.empty())
    return invalid_argument(fmt::format("\"{}\": the {} seed is missing (expected FIRST..LAST)",
                                        text, first_text.empty() ? "first" : "last"));
  Result<uint64_t> first = parse_seed(first_text);
  if (!first.is_ok()) return first.status();
  Result<uint64_t> last = parse_seed(last_text);
  if (!last.is_ok()) return last.status();
  if (*first > *last)
    return invalid_argument(
        fmt::format("the first seed {} is greater than the last seed {}", *first, *last));
  if (*last - *first >= kSeedsMax)
    return invalid_argument(fmt::format("{}..{} is more than {} seeds, the most one run takes",
                                        *first, *last, kSeedsMax));
  return SeedRange{*first, *last};
}

int default_seed_runner_jobs() {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(std::clamp<long>(online, 1, kSeedRunnerJobsMax));
}

bool run_seed_range(const SeedRunnerOptions& options) {
  if (::access(options.worker_program.c_str(), X_OK) != 0) {
    fmt::print(stderr, "quire sim kek: cannot run the worker program {}: {}\n",
               options.worker_program, std::strerror(errno));
    return false;
  }
  Result<std::string> directory = make_run_directory();
  if (!directory.is_ok()) {
    fmt::print(stderr, "quire sim kek: {}\n", directory.status().message());
    return false;
  }
  SeedRunner runner(options, options.seeds, *directory);
  return runner.run();
}

}  // namespace quire
