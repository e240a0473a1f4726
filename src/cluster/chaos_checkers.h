// The real chaos harness's checkers, under the simulator's names (docs/chaos.md): pure
// functions over the operation history (chaos_history.h), the nodes' final content, the
// status samples, the supervisor's record of process exits, and the files the run left.
// Each returns its violations; none stops at the first. Every list they return is bounded
// by kViolationsPerCheckerMax (the last entry then says how many more there were).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/chaos_history.h"

namespace quire::cluster {

inline constexpr size_t kViolationsPerCheckerMax = 20;

struct Violation {
  std::string checker;  // abort, lost_write, read, monotonic, convergence, plaintext
  std::string detail;
};

// A node's content: key -> value, as read at the end.
using Content = std::map<std::string, std::string>;

// lost_write: every key with an acknowledged write holds that value or a later one of its
// writer on `node`; no key holds a value whose write failed (error) or was never written.
std::vector<Violation> check_lost_writes(const std::vector<Op>& history, const Content& content,
                                         const std::string& node);

// read: a read through the primary returns a value that was written (its write began before
// the read ended and did not fail) and no older than the newest write acknowledged before
// the read began; reads of one node (ReadPath::kNode) never go back in a key's write order.
// `reads_checked` counts the reads looked at.
std::vector<Violation> check_reads(const std::vector<Op>& history, uint64_t* reads_checked,
                                   const std::vector<std::string>& node_names);

// convergence: `standby`'s content equals the primary's.
std::vector<Violation> check_same_content(const Content& primary, const Content& standby,
                                          const std::string& standby_name);

// One QUIRE.STATUS sample of a node, for monotonic.
struct StatusSample {
  int64_t at_us = 0;
  std::string node;
  int pid = 0;  // the process incarnation
  std::string role;
  uint64_t checkpoint_lsn = 0;
  uint64_t keystore_version = 0;
  uint64_t step_downs = 0;  // QUIRE.STATUS step_downs: each one means a fresh engine
};

// monotonic: a node's installed checkpoint LSN and keystore version never go backwards
// within one process incarnation and one engine (a primary that steps down rebuilds from
// a fresh engine, so its counts start again: a new step_downs count, or a sample that
// shows the role left primary; a promotion keeps the engine).
class MonotonicTracker {
 public:
  // The violation this sample shows, if any.
  std::optional<Violation> observe(const StatusSample& s);

 private:
  struct Track {
    int pid = 0;
    uint64_t step_downs = 0;
    std::string role;
    uint64_t checkpoint_lsn = 0;
    uint64_t keystore_version = 0;
  };
  std::map<std::string, Track> tracks_;
};

// How one process ended (the supervisor's "NAME (pid P) ended: EXIT" lines).
struct ProcessExit {
  std::string name;
  int pid = 0;
  std::string how;  // "signal 9 (Killed)", "exit 75", ...
  std::string at;   // when the supervisor saw it, "2026-12-03T05:25:57Z" (UTC, to the second)
};
// The exits recorded in the supervisor's log before it began stopping the cluster.
std::vector<ProcessExit> parse_supervisor_exits(const std::string& supervisor_log);

// abort: every exit is one the nemesis caused: `injected` holds one entry per SIGKILL it
// sent (the process's name); each explains one "signal 9" exit of that process.
// `why(exit)` says what the process's log tells about that end ("" when nothing).
std::vector<Violation> check_exits(const std::vector<ProcessExit>& exits,
                                   const std::vector<std::string>& injected,
                                   const std::function<std::string(const ProcessExit&)>& why);

// abort: lines of the logs under `logs_dir` that show a crash ("terminate called",
// "AddressSanitizer", "runtime error:", "assertion failed", "Aborted").
std::vector<Violation> check_crash_lines(const std::string& logs_dir);

// plaintext: files under `dirs` (recursively) holding kValueCanary or kKeyCanary.
// `bytes_scanned` counts the bytes read.
std::vector<Violation> check_plaintext(const std::vector<std::string>& dirs,
                                       uint64_t* bytes_scanned);

}  // namespace quire::cluster
