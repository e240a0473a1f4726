#include "bench/local_page_server.h"

#include <utility>

#include <fmt/format.h>

namespace quire::bench {

LocalPageServer::LocalPageServer(RealLoop& loop, NodeId node, std::string data_dir,
                                 PageServerOptions options, LogSink* sink, Severity min_severity)
    : loop_(loop),
      options_(options),
      env_(std::make_unique<RealEnv>(loop, node, fmt::format("ps{}", node), std::move(data_dir),
                                     sink, min_severity)),
      server_(std::make_unique<PageServer>(*env_, std::move(options))) {}

LocalPageServer::~LocalPageServer() {
  // The server's tasks reference it, and it references the environment.
  loop_.scheduler().destroy_node(env_->executor().node());
  server_.reset();
  env_.reset();
}

Result<Address> LocalPageServer::start(Nanos timeout) {
  const NodeId node = env_->executor().node();
  server_->start();
  // Until it serves, the node runs only its start-up task; when that ends without serving,
  // the server could not listen.
  bool settled = loop_.run_until(
      [&] {
        return server_->serving() || !env_->restart_requested().is_ok() ||
               loop_.scheduler().live_tasks(node) == 0;
      },
      timeout);
  if (!env_->restart_requested().is_ok()) {
    return Status(Code::kIo, fmt::format("the page server asked to be restarted: {}",
                                         env_->restart_requested().to_string()));
  }
  if (!settled) {
    if (loop_.stop_signal() != 0) return cancelled("stopped by a signal before serving");
    return deadline_exceeded(
        fmt::format("the page server did not start serving within {} s",
                    std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  }
  if (!server_->serving()) {
    const Status& why = server_->start_error();
    if (why.code() == Code::kInvalidArgument) return why;  // the data directory cannot be used
    return unavailable(fmt::format("cannot listen on {}: {}", options_.listen,
                                   why.is_ok() ? "see the log" : why.message()));
  }
  return server_->address();
}

}  // namespace quire::bench
