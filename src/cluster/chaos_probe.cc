#include "cluster/chaos_probe.h"

#include <algorithm>

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;

bool is_crash(const std::string& how) {
  return how.find("signal 6") != std::string::npos || how.find("signal 11") != std::string::npos ||
         how.find("core dumped") != std::string::npos;
}

}  // namespace

void StatusProbe::start() {
  thread_ = std::thread([this] { run(); });
}

void StatusProbe::stop() {
  stop_.stop();
  if (thread_.joinable()) thread_.join();
}

ProbeView StatusProbe::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

void StatusProbe::run() {
  do {
    sample_once();
  } while (stop_.sleep_for(kProbeEvery));
}

void StatusProbe::sample_once() {
  auto state = read_state(spec_);
  if (!state.is_ok()) return;
  const auto now = Clock::now();
  const int64_t at_us = std::chrono::duration_cast<std::chrono::microseconds>(now - t0_).count();
  note_crashes(*state, at_us / 1000);
  std::vector<std::pair<std::string, NodeReport>> reports;
  for (const ProcessState& p : state->processes) {
    if (p.kind != ProcessKind::kNode || !p.alive) continue;
    NodeReport r = query_node(p.address, kProbeQueryTimeout);
    if (r.answered) note_node(p.name, p.pid, r, at_us);
    reports.emplace_back(p.name, std::move(r));
  }
  std::lock_guard<std::mutex> lock(mu_);
  view_.samples++;
  view_.primary.clear();
  const NodeReport* primary = nullptr;
  for (const auto& [name, r] : reports) {
    if (r.answered && r.role == "primary" && r.serving() && (!primary || r.term > primary->term)) {
      primary = &r;
      view_.primary = name;
    }
  }
  if (primary != nullptr) {
    if (primary_term_seen_ != 0 && primary->term > primary_term_seen_) view_.failovers++;
    primary_term_seen_ = std::max(primary_term_seen_, primary->term);
    view_.term = primary->term;
  }
  view_.standby_lag.clear();
  for (const auto& [name, r] : reports) {
    if (r.role != "standby") continue;
    const int64_t lag = primary == nullptr || !r.answered ? -1
                        : r.applied_lsn >= primary->applied_lsn
                            ? 0
                            : static_cast<int64_t>(primary->applied_lsn - r.applied_lsn);
    view_.standby_lag.emplace_back(name, lag);
  }
  view_.pickups.clear();
  for (const auto& [who, counters] : pickups_) {
    for (const auto& [k, v] : counters) view_.pickups[k] += v;
  }
}

void StatusProbe::note_crashes(const SupervisorState& state, int64_t at_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!view_.crashed_node.empty()) return;
  for (const ProcessState& p : state.processes) {
    if (p.kind == ProcessKind::kNode && !p.alive && is_crash(p.last_exit)) {
      view_.crashed_node = p.name;
      view_.crashed_how = p.last_exit;
      view_.crashed_at_ms = at_ms;
      return;
    }
  }
}

void StatusProbe::note_node(const std::string& name, int pid, const NodeReport& r, int64_t at_us) {
  StatusSample s{at_us, name, pid, r.role, r.checkpoint_lsn, r.keystore_version, r.step_downs};
  std::lock_guard<std::mutex> lock(mu_);
  if (auto v = monotonic_.observe(s); v && view_.monotonic.size() < kViolationsPerCheckerMax) {
    view_.monotonic.push_back(*v);
  }
  view_.terms_max = std::max(view_.terms_max, r.term);
  if (!r.pickups.empty()) pickups_[{name, pid}] = r.pickups;
}

}  // namespace quire::cluster
