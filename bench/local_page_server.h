// LocalPageServer: a PageServer node that this process runs on its RealLoop, with its own
// RealEnv. `quire pageserver` runs one; `quire bench pageserver --data` runs one beside
// its client node.
#pragma once

#include <memory>
#include <string>

#include "pagelog/page_server.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::bench {

class LocalPageServer {
 public:
  // The node's files live under `data_dir` (its store in options.store.dir below it).
  // `sink` may be null and must outlive this.
  LocalPageServer(RealLoop& loop, NodeId node, std::string data_dir, PageServerOptions options,
                  LogSink* sink, Severity min_severity);
  // Destroys the node's tasks, then the server, then its environment.
  ~LocalPageServer();
  LocalPageServer(const LocalPageServer&) = delete;
  LocalPageServer& operator=(const LocalPageServer&) = delete;

  // For mutual TLS, call env().enable_tls() before start(): the server's listener and its
  // catch-up connections to its peers all use the node's network.
  //
  // Starts the node and runs the loop until it serves; returns the address it bound (with
  // port 0, the port the kernel chose). Fails with InvalidArgument naming the path when the
  // data directory cannot be used as it is (a configuration error), Unavailable when it
  // cannot listen (naming why), Io when the node asked to be restarted
  // (env().restart_requested() says why), Cancelled when a signal stopped the loop first,
  // DeadlineExceeded after `timeout`.
  Result<Address> start(Nanos timeout);

  RealEnv& env() { return *env_; }
  PageServer& server() { return *server_; }

 private:
  RealLoop& loop_;
  PageServerOptions options_;
  std::unique_ptr<RealEnv> env_;
  std::unique_ptr<PageServer> server_;
};

}  // namespace quire::bench
