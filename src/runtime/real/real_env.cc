#include "runtime/real/real_env.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace quire {

RealEnv::RealEnv(RealLoop& loop, NodeId node, std::string node_name, std::string data_dir,
                 LogSink* sink, Severity min_severity)
    : loop_(loop),
      node_name_(std::move(node_name)),
      executor_(loop.scheduler(), node),
      clock_(loop),
      log_(sink, this, min_severity),
      net_(loop, &log_),
      disk_worker_(loop),
      disk_(std::move(data_dir), &disk_worker_) {
  QUIRE_ASSERT_MSG(node != kWorldNode, "a node's environment needs a node id other than 0");
}

RealEnv::~RealEnv() {
  // The node's tasks hold references into this environment (its net, disk, logger).
  loop_.scheduler().destroy_node(executor_.node());
}

std::unique_ptr<Random> RealEnv::random_stream(std::string_view /*concern*/) {
  return std::make_unique<CsprngRandom>();
}

void RealEnv::request_restart(const Status& why) {
  log_.error("runtime", kLogRestartRequested, "restart requested",
             {{"node", node_name_}, {"reason", why}});
  if (restart_reason_.is_ok()) {
    restart_reason_ = why.is_ok() ? Status(Code::kIo, "restart requested without a reason") : why;
  }
  loop_.stop();
}

void RealEnv::abort_process(const Status& why) {
  log_.error("runtime", kLogAbort, "aborting the process", {{"node", node_name_}, {"reason", why}});
  std::fflush(nullptr);
  std::abort();
}

}  // namespace quire
