#include "runtime/real/real_loop.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <exception>
#include <optional>

#include <fmt/format.h>
#include <asio.hpp>

namespace quire {

struct RealLoop::Io {
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  asio::io_context context{1};
  // Keeps run_one_for() blocking when no I/O is pending: the scheduler's timers are not
  // Asio work, but the loop still has to sleep until they are due.
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(context);
  std::optional<asio::signal_set> signals;
};

namespace {

// Asio reports a failure of epoll itself by throwing. Nothing the process can do about it
// is safer than stopping loudly.
[[noreturn]] void event_loop_failed(const std::exception& e) {
  std::string msg = fmt::format("event loop failed: {}", e.what());
  detail::assertion_failed("the event loop keeps running", __FILE__, __LINE__, msg.c_str());
}

}  // namespace

RealLoop::RealLoop() : io_(std::make_unique<Io>()) {}

RealLoop::~RealLoop() {
  // Signal handlers and sockets die with io_ after the scheduler's tasks (member order).
  if (io_->signals) {
    asio::error_code ignored;
    io_->signals->cancel(ignored);
  }
}

Scheduler& RealLoop::scheduler() {
  return scheduler_;
}

asio::io_context& RealLoop::io() {
  return io_->context;
}

MonoTime RealLoop::now() const {
  auto elapsed = std::chrono::steady_clock::now() - io_->origin;
  return MonoTime{std::chrono::duration_cast<Nanos>(elapsed).count()};
}

void RealLoop::stop() {
  stop_requested_ = true;
}

void RealLoop::run() {
  while (!stop_requested_) {
    run_ready();
    if (stop_requested_) break;
    wait_for_events(MonoTime::never());
  }
  stop_requested_ = false;
}

bool RealLoop::run_until(const std::function<bool()>& done, Nanos timeout) {
  MonoTime deadline = now() + timeout;
  bool finished = done();
  while (!finished && !stop_requested_ && now() < deadline) {
    run_ready();
    finished = done();
    if (finished || stop_requested_) break;
    wait_for_events(deadline);
    finished = done();
  }
  stop_requested_ = false;
  return finished;
}

void RealLoop::run_ready() {
  const MonoTime turn_started = now();
  for (size_t i = 0; i < kEventsPerTurnMax; ++i) {
    // Fresh time for every event, so a task resumed late in a busy turn still bases its
    // sleeps and deadlines on the real clock rather than on the start of the turn.
    scheduler_.advance_to(now());
    if (i > 0 && scheduler_.now() - turn_started >= kTurnTimeMax) break;  // the network's turn
    std::optional<MonoTime> next = scheduler_.next_event_time();
    if (!next || *next > scheduler_.now()) break;
    scheduler_.run_next();
  }
  try {
    io_->context.poll();
  } catch (const std::exception& e) {
    event_loop_failed(e);
  }
  // Nothing due and the network quiet: the turn of one idle wait.
  scheduler_.advance_to(now());
  scheduler_.wake_idle();
}

void RealLoop::wait_for_events(MonoTime wake_by) {
  scheduler_.advance_to(now());
  MonoTime t = scheduler_.now();
  MonoTime until = std::min(t + kIdleWaitMax, wake_by);
  if (std::optional<MonoTime> next = scheduler_.next_event_time()) until = std::min(until, *next);
  if (until <= t) return;
  try {
    io_->context.run_one_for(until - t);
  } catch (const std::exception& e) {
    event_loop_failed(e);
  }
}

Status RealLoop::watch_signals() {
  if (io_->signals) return Status();
  // A process of sockets: a peer that closed its end is an error of the write, never a
  // signal that ends the process (whatever the parent left SIGPIPE at; the supervisor
  // starts its children with it at the default).
  ::signal(SIGPIPE, SIG_IGN);
  io_->signals.emplace(io_->context);
  for (int signal : {SIGINT, SIGTERM}) {
    asio::error_code ec;
    io_->signals->add(signal, ec);
    if (ec) {
      io_->signals.reset();
      return unavailable(fmt::format("cannot watch signal {}: {}", signal, ec.message()));
    }
  }
  arm_signal_wait();
  return Status();
}

void RealLoop::arm_signal_wait() {
  io_->signals->async_wait([this](const asio::error_code& ec, int signal) {
    if (ec) return;  // cancelled: the loop is going away
    stop_signal_ = signal;
    stop();
    arm_signal_wait();
  });
}

}  // namespace quire
