// RealEnv: the Env of one node in a real process. It wires the node's executor (on the
// process's RealLoop), the real clocks, OpenSSL's CSPRNG, TCP and POSIX files under the
// node's data directory, and a logger.
//
// The node's tasks reference this environment, so destroying it destroys them (as a crash
// of the node would). Destroy it before the loop.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/log.h"
#include "runtime/env.h"
#include "runtime/executor.h"
#include "runtime/real/blocking_worker.h"
#include "runtime/real/csprng_random.h"
#include "runtime/real/posix_disk.h"
#include "runtime/real/real_clock.h"
#include "runtime/real/real_loop.h"
#include "runtime/real/tcp_net.h"

namespace quire {

class RealEnv : public Env {
 public:
  // Log id of the line request_restart() writes.
  static constexpr uint32_t kLogRestartRequested = 10001;
  static constexpr uint32_t kLogAbort = 10002;

  // `node` must not be kWorldNode. `sink` may be null (no logging) and must outlive this.
  RealEnv(RealLoop& loop, NodeId node, std::string node_name, std::string data_dir, LogSink* sink,
          Severity min_severity);
  ~RealEnv() override;
  RealEnv(const RealEnv&) = delete;
  RealEnv& operator=(const RealEnv&) = delete;

  std::string_view node_name() const override { return node_name_; }
  Executor& executor() override { return executor_; }
  Clock& clock() override { return clock_; }
  Random& random() override { return random_; }
  // A fresh CSPRNG stream; `concern` only matters in simulation.
  std::unique_ptr<Random> random_stream(std::string_view concern) override;
  Net& net() override { return net_; }
  Disk& disk() override { return disk_; }
  Logger& log() override { return log_; }
  // Logs the reason, remembers the first one, and stops the loop so main() can exit with
  // kExitRestart.
  void request_restart(const Status& why) override;
  void abort_process(const Status& why) override;

  // Makes the node's network mutual TLS (see TcpNet::enable_tls); call before it listens or
  // connects. Without it the network is plaintext.
  Status enable_tls(const TlsOptions& options) { return net_.enable_tls(options); }

  // The first reason given to request_restart(), or OK.
  const Status& restart_requested() const { return restart_reason_; }
  RealClock& real_clock() { return clock_; }
  PosixDisk& posix_disk() { return disk_; }

 private:
  RealLoop& loop_;
  std::string node_name_;
  Executor executor_;
  RealClock clock_;
  CsprngRandom random_;
  Logger log_;
  TcpNet net_;
  BlockingWorker disk_worker_;  // the files' syncs; outlives disk_ and every file
  PosixDisk disk_;
  Status restart_reason_;
};

}  // namespace quire
