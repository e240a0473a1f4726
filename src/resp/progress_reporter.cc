#include "resp/progress_reporter.h"

#include <algorithm>
#include <optional>

namespace quire::resp {

ProgressReporter::ProgressReporter(ReplicaNode& node, std::string name, Address address, Send send,
                                   Nanos interval, Nanos poll, Nanos spacing)
    : node_(node),
      name_(std::move(name)),
      address_(std::move(address)),
      send_(std::move(send)),
      interval_(interval),
      poll_(std::min(poll, interval)),
      spacing_(std::min(spacing, interval)) {}

ProgressReporter::~ProgressReporter() {
  stop();
}

void ProgressReporter::start() {
  if (running_) return;
  running_ = true;
  task_ = node_.env().executor().spawn("progress-report", loop());
}

void ProgressReporter::stop() {
  if (!running_) return;
  running_ = false;
  node_.env().executor().cancel(task_);
}

Task<void> ProgressReporter::loop() {
  Executor& exec = node_.env().executor();
  std::optional<StandbyProgress> last;  // the last report sent
  MonoTime last_at{};
  while (running_) {
    // Only a standby reports; a primary (or a node between roles) waits for the next round.
    if (Standby* s = node_.standby(); s != nullptr && node_.primary() == nullptr) {
      StandbyProgress p{name_, address_, s->applied_ts(), s->applied_lsn(),
                        s->state() == StandbyState::kSecondary};
      const bool moved = !last || p.applied_ts != last->applied_ts ||
                         p.applied_lsn != last->applied_lsn || p.serving != last->serving;
      const Nanos since = exec.now() - last_at;
      if ((moved && since >= spacing_) || since >= interval_) {
        last_at = exec.now();
        Status st = co_await send_(progress_report_args(p));
        if (st.is_ok()) {
          sent_++;
          last = std::move(p);
        } else {
          failed_++;
          last.reset();  // sent again at the next look
        }
      }
    }
    if (!(co_await exec.sleep(poll_)).is_ok()) co_return;  // cancelled
  }
}

}  // namespace quire::resp
