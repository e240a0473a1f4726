#include "cluster/chaos_nemesis.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "cluster/chaos_workload.h"
#include "cluster/cluster_ops.h"
#include "cluster/supervisor.h"

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kPickupPoll = milliseconds(20);
constexpr auto kIdleTick = milliseconds(100);

struct Roles {
  std::optional<size_t> primary;
  std::vector<size_t> standbys;  // by node index
};

Roles roles_now(const ClusterSpec& spec) {
  Roles roles;
  uint64_t term = 0;
  for (size_t i = 0; i < spec.compute_nodes(); ++i) {
    NodeReport r = query_node(spec.node_address(i), kLocateTimeout);
    if (!r.answered) continue;
    if (r.role == "primary" && r.serving() && (!roles.primary || r.term > term)) {
      roles.primary = i;
      term = r.term;
    } else if (r.role == "standby") {
      roles.standbys.push_back(i);
    }
  }
  return roles;
}

uint64_t pickup_attempts(const std::string& address) {
  NodeReport r = query_node(address, kLocateTimeout);
  auto it = r.pickups.find("attempts");
  return it == r.pickups.end() ? 0 : it->second;
}

// Waits (bounded) until the standby at `address` starts its next pick-up attempt.
bool wait_for_pickup(const std::string& address, const StopSignal& stop) {
  const uint64_t before = pickup_attempts(address);
  const auto until = Clock::now() + kPickupWaitMax;
  while (Clock::now() < until && stop.sleep_for(kPickupPoll)) {
    if (pickup_attempts(address) != before) return true;
  }
  return false;
}

}  // namespace

void Nemesis::start() {
  executed_.clear();
  for (const auto& e : events_) executed_.push_back(ExecutedEvent{e});
  thread_ = std::thread([this] { run(); });
}

void Nemesis::stop() {
  stop_.stop();
  if (thread_.joinable()) thread_.join();
}

int64_t Nemesis::now_ms() const {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0_).count();
}

void Nemesis::run() {
  size_t next = 0;
  while (!stop_.stopped()) {
    const int64_t now = now_ms();
    run_due_undos(now, /*all=*/false);
    if (next < events_.size() && events_[next].at_ms <= now) {
      fire(next++);
      continue;
    }
    int64_t wake = now + kIdleTick.count();
    if (next < events_.size()) wake = std::min(wake, events_[next].at_ms);
    for (const auto& u : undos_) wake = std::min(wake, u.at_ms);
    stop_.sleep_for(milliseconds(std::max<int64_t>(1, wake - now)));
  }
}

void Nemesis::run_due_undos(int64_t now_ms, bool all) {
  // An undo may add none; take the due ones out first.
  std::vector<Pending> due;
  auto it = std::stable_partition(undos_.begin(), undos_.end(),
                                  [&](const Pending& p) { return !all && p.at_ms > now_ms; });
  due.assign(std::make_move_iterator(it), std::make_move_iterator(undos_.end()));
  undos_.erase(it, undos_.end());
  for (auto& p : due) p.undo();
}

void Nemesis::fire(size_t i) {
  ExecutedEvent x;
  {
    std::lock_guard<std::mutex> lock(mu_);
    x = executed_[i];
  }
  x.fired_at_ms = now_ms();
  const RealFaultEvent& e = x.event;
  switch (e.kind) {
    case RealFaultKind::kKillStandbyPageServer:
      fire_kill_standby_page_server(x);
      break;
    case RealFaultKind::kRapidSealBurst:
      fire_seal_burst(x);
      break;
    case RealFaultKind::kPageServerKill:
      fire_process_kill(x, spec_.pageserver_name(e.target % spec_.pageservers), e.wipe);
      break;
    case RealFaultKind::kPageServerPause:
      fire_pause(x, spec_.pageserver_name(e.target % spec_.pageservers));
      break;
    case RealFaultKind::kPrimaryKill:
    case RealFaultKind::kPrimaryPause: {
      Roles roles = roles_now(spec_);
      if (!roles.primary) {
        x.skipped = true;
        x.note = "no primary serves";
        break;
      }
      const std::string name = spec_.node_name(*roles.primary);
      if (e.kind == RealFaultKind::kPrimaryKill) {
        fire_process_kill(x, name, false);
      } else {
        fire_pause(x, name);
      }
      break;
    }
    case RealFaultKind::kStandbyKill: {
      Roles roles = roles_now(spec_);
      if (roles.standbys.empty()) {
        x.skipped = true;
        x.note = "no standby answers";
        break;
      }
      const size_t node = roles.standbys[(e.target - 1) % roles.standbys.size()];
      fire_process_kill(x, spec_.node_name(node), false);
      break;
    }
    case RealFaultKind::kEtcdKill:
      fire_process_kill(x, "etcd", false);
      break;
    case RealFaultKind::kPageServerNet:
    case RealFaultKind::kEtcdNet:
      fire_net(x);
      break;
    case RealFaultKind::kPageServerDiskFull:
      fire_disk_full(x);
      break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  executed_[i] = x;
}

void Nemesis::fire_kill_standby_page_server(ExecutedEvent& x) {
  const RealFaultEvent& e = x.event;
  Roles roles = roles_now(spec_);
  if (roles.standbys.empty()) {
    x.skipped = true;
    x.note = "no standby answers";
    return;
  }
  const size_t node = roles.standbys[(e.target - 1) % roles.standbys.size()];
  const std::string server = spec_.pageserver_name(node % spec_.pageservers);
  if (e.at_pickup) {
    const bool seen = wait_for_pickup(spec_.node_address(node), stop_);
    x.note = seen ? "at a pick-up" : "no pick-up seen within 5 s";
  }
  x.fired_at_ms = now_ms();
  fire_process_kill(x, server, e.wipe);
  x.note = fmt::format("{}'s page server{}{}", spec_.node_name(node), x.note.empty() ? "" : ", ",
                       x.note);
}

void Nemesis::fire_process_kill(ExecutedEvent& x, const std::string& name, bool wipe_page_server) {
  std::string error;
  x.target = name;
  if (!send(name, SIGKILL, &error)) {
    x.skipped = true;
    x.note = error;
    return;
  }
  if (wipe_page_server) wipe(name);
  undos_.push_back({x.fired_at_ms + x.event.duration_ms, [this] { restart_down(); }});
}

void Nemesis::fire_pause(ExecutedEvent& x, const std::string& name) {
  std::string error;
  x.target = name;
  if (!send(name, SIGSTOP, &error)) {
    x.skipped = true;
    x.note = error;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_.insert(name);
  }
  undos_.push_back({x.fired_at_ms + x.event.duration_ms, [this, name] {
                      std::string ignored;
                      send(name, SIGCONT, &ignored);
                      std::lock_guard<std::mutex> lock(mu_);
                      stopped_.erase(name);
                    }});
}

void Nemesis::fire_seal_burst(ExecutedEvent& x) {
  Roles roles = roles_now(spec_);
  if (!roles.primary) {
    x.skipped = true;
    x.note = "no primary serves";
    return;
  }
  x.target = spec_.node_name(*roles.primary);
  auto client = RespClient::connect(spec_.node_address(*roles.primary), kConnectTimeout);
  if (!client.is_ok()) {
    x.note = "cannot connect: " + client.status().message();
    return;
  }
  auto reply =
      client->command({"QUIRE.SEAL", std::to_string(x.event.count)}, std::chrono::seconds(10));
  x.note = !reply.is_ok() ? reply.status().message() : reply->is_error() ? reply->text : "sealed";
}

void Nemesis::fire_net(ExecutedEvent& x) {
  const RealFaultEvent& e = x.event;
  const bool etcd = e.kind == RealFaultKind::kEtcdNet;
  if (!net_) {
    x.skipped = true;
    x.note = "the cluster runs without fault proxies";
    return;
  }
  const uint32_t index = e.target % static_cast<uint32_t>(spec_.pageservers);
  x.target = etcd ? "etcd" : spec_.pageserver_name(index);
  net_(etcd, index, e, true);
  undos_.push_back(
      {x.fired_at_ms + e.duration_ms, [this, etcd, index, e] { net_(etcd, index, e, false); }});
}

void Nemesis::fire_disk_full(ExecutedEvent& x) {
  const RealFaultEvent& e = x.event;
  if (!disk_full_) {
    x.skipped = true;
    x.note = "the page servers have no tmpfs of their own";
    return;
  }
  const uint32_t index = e.target % static_cast<uint32_t>(spec_.pageservers);
  x.target = spec_.pageserver_name(index);
  auto done = disk_full_(index, e, true);
  if (!done.is_ok()) {
    x.skipped = true;
    x.note = done.status().message();
    return;
  }
  x.note = *done;
  undos_.push_back({x.fired_at_ms + e.duration_ms, [this, index, e] {
                      auto grown = disk_full_(index, e, false);
                      (void)grown;  // heal() grows every disk again in any case
                    }});
}

bool Nemesis::send(const std::string& name, int signal, std::string* error) {
  if (signal == SIGKILL) {
    std::lock_guard<std::mutex> lock(mu_);
    kills_.push_back(name);  // before the signal: a probe may see the death at once
  }
  Status st = kill_process(spec_, name, signal);
  if (st.is_ok()) return true;
  *error = st.message();
  if (signal == SIGKILL) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(kills_.rbegin(), kills_.rend(), name);
    if (it != kills_.rend()) kills_.erase(std::next(it).base());
  }
  return false;
}

void Nemesis::restart_down() {
  if (auto pid = running_supervisor(spec_); pid && *pid > 0) ::kill(*pid, SIGHUP);
}

void Nemesis::wipe(const std::string& page_server) {
  // Only once it is dead: the supervisor reaps it within a tick.
  const auto until = Clock::now() + kDeathWaitMax;
  while (Clock::now() < until) {
    auto state = read_state(spec_);
    bool alive = true;
    if (state.is_ok()) {
      for (const auto& p : state->processes) {
        if (p.name == page_server) alive = p.alive;
      }
    }
    if (!alive) break;
    std::this_thread::sleep_for(kPickupPoll);
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(spec_.dir + "/" + page_server, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
}

void Nemesis::heal() {
  run_due_undos(0, /*all=*/true);
  std::set<std::string> stopped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped.swap(stopped_);
  }
  std::string ignored;
  for (const auto& name : stopped) send(name, SIGCONT, &ignored);
  restart_down();
}

std::vector<ExecutedEvent> Nemesis::executed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return executed_;
}

std::vector<std::string> Nemesis::injected_kills() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kills_;
}

std::map<std::string, uint64_t> Nemesis::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& x : executed_) {
    if (x.fired_at_ms >= 0 && !x.skipped) out[std::string(real_fault_kind_name(x.event.kind))]++;
  }
  return out;
}

uint64_t Nemesis::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& x : executed_) n += x.fired_at_ms >= 0 && !x.skipped ? 1 : 0;
  return n;
}

}  // namespace quire::cluster
