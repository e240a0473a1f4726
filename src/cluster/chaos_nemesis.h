// The real chaos harness's nemesis: applies the plan's fault events (chaos_schedule.h) to
// the cluster's real processes, each at its time, on its own thread:
//   - SIGKILL, SIGSTOP and SIGCONT through the supervisor's state (kill_process);
//   - a killed process comes back when its time is up: the supervisor is asked to start
//     whatever is down (SIGHUP, what `quire cluster start` sends a running cluster); a
//     wiped page server's data directory is emptied first, once it is dead;
//   - QUIRE.SEAL on the primary for seal bursts;
//   - network faults through the fault proxies (when the cluster runs behind them);
//   - full disks through the page servers' tmpfs mounts (when they have them).
// Roles are looked up when an event fires; a primary fault that finds no serving primary is
// skipped (and not counted). Every SIGKILL sent is recorded, so the abort checker can tell
// injected deaths from others. heal() undoes whatever is still in effect.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/chaos_schedule.h"
#include "cluster/cluster_spec.h"
#include "cluster/stop_signal.h"

namespace quire::cluster {

inline constexpr auto kPickupWaitMax = std::chrono::seconds(5);
inline constexpr auto kDeathWaitMax = std::chrono::seconds(5);

// One event as it ran.
struct ExecutedEvent {
  RealFaultEvent event;
  int64_t fired_at_ms = -1;  // -1: not reached
  std::string target;        // the process it hit ("" when skipped)
  std::string note;          // why it was skipped, or what it did
  bool skipped = false;
};

// Sets a network fault on the proxy in front of page server `index` (or etcd when
// `etcd`), or clears it (`on` false). Absent when the cluster runs without proxies.
using NetFaultHook =
    std::function<void(bool etcd, uint32_t index, const RealFaultEvent& e, bool on)>;
// Fills page server `index`'s disk (leaving e.count KiB), or gives its space back (`on`
// false); what it did, or why it could not. Absent when the page servers have no tmpfs.
using DiskFullHook =
    std::function<Result<std::string>(uint32_t index, const RealFaultEvent& e, bool on)>;

class Nemesis {
 public:
  Nemesis(const ClusterSpec& spec, std::vector<RealFaultEvent> events,
          std::chrono::steady_clock::time_point t0, NetFaultHook net, DiskFullHook disk_full)
      : spec_(spec),
        events_(std::move(events)),
        t0_(t0),
        net_(std::move(net)),
        disk_full_(std::move(disk_full)) {}
  ~Nemesis() { stop(); }
  void start();
  // Stops firing new events (waits for the thread); then heal() undoes what is left.
  void stop();
  // SIGCONT every stopped process, restart every killed one (wiping those due a wipe),
  // clear every network fault.
  void heal();

  std::vector<ExecutedEvent> executed() const;
  // One name per SIGKILL sent.
  std::vector<std::string> injected_kills() const;
  // Events that ran, by kind name.
  std::map<std::string, uint64_t> counts() const;
  uint64_t fired() const;

 private:
  struct Pending {
    int64_t at_ms = 0;
    std::function<void()> undo;
  };
  void run();
  void fire(size_t i);
  void fire_kill_standby_page_server(ExecutedEvent& x);
  void fire_process_kill(ExecutedEvent& x, const std::string& name, bool wipe_page_server);
  void fire_pause(ExecutedEvent& x, const std::string& name);
  void fire_seal_burst(ExecutedEvent& x);
  void fire_net(ExecutedEvent& x);
  void fire_disk_full(ExecutedEvent& x);
  bool send(const std::string& name, int signal, std::string* error);
  void restart_down();
  void wipe(const std::string& page_server);
  void run_due_undos(int64_t now_ms, bool all);
  int64_t now_ms() const;

  ClusterSpec spec_;
  std::vector<RealFaultEvent> events_;
  std::chrono::steady_clock::time_point t0_;
  NetFaultHook net_;
  DiskFullHook disk_full_;
  StopSignal stop_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<ExecutedEvent> executed_;
  std::vector<std::string> kills_;
  std::set<std::string> stopped_;
  std::vector<Pending> undos_;  // owned by the nemesis thread, then by heal()
};

}  // namespace quire::cluster
