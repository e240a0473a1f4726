#include "coord/leader_watch.h"

namespace quire {

namespace {
constexpr const char* kComponent = "leader-watch";
constexpr uint32_t kLogLeaderChanged = 47101;
constexpr uint32_t kLogCallFailed = 47102;
constexpr Nanos kLogInterval = std::chrono::seconds(5);
}  // namespace

LeaderWatch::LeaderWatch(Env& env, Coordinator& coordinator, LeaderWatchOptions options)
    : env_(env),
      coordinator_(coordinator),
      options_(std::move(options)),
      log_limit_(kLogInterval) {}

LeaderWatch::~LeaderWatch() {
  if (started_) env_.executor().cancel(task_);
}

void LeaderWatch::start() {
  if (started_) return;
  started_ = true;
  task_ = env_.executor().spawn("leader-watch", run());
}

std::optional<Leadership> LeaderWatch::leader() const {
  if (!leader_ || env_.executor().now() - known_at_ > options_.stale_after) return std::nullopt;
  return leader_;
}

Task<void> LeaderWatch::run() {
  Executor& exec = env_.executor();
  while (true) {
    const MonoTime sent = exec.now();
    auto current = co_await coordinator_.leader(options_.election, sent + options_.call_timeout);
    if (current.is_ok() || current.code() == Code::kNotFound) {
      std::optional<Leadership> seen;
      if (current.is_ok()) seen = *current;
      const bool changed =
          seen.has_value() != leader_.has_value() ||
          (seen && (seen->epoch != leader_->epoch || seen->value != leader_->value));
      if (changed) {
        env_.log().info(kComponent, kLogLeaderChanged, "leader changed",
                        {{"election", options_.election},
                         {"epoch", seen ? seen->epoch : 0},
                         {"value", seen ? seen->value : std::string("none")}});
      }
      leader_ = std::move(seen);
      known_at_ = sent;
    } else if (current.code() == Code::kCancelled) {
      co_return;
    } else {
      failures_++;
      if (std::optional<uint64_t> suppressed = log_limit_.admit(exec.now())) {
        env_.log().warn(kComponent, kLogCallFailed, "cannot ask the coordinator for the leader",
                        {{"election", options_.election},
                         {"error", current.status()},
                         {"suppressed", *suppressed}});
      }
    }
    if (!(co_await exec.sleep(options_.interval)).is_ok()) co_return;
  }
}

}  // namespace quire
