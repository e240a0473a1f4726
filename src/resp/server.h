// RespServer: the RESP2 wire (bytes, framing, bounds, connections) in front of a
// CommandHandler (resp/handler.h). It listens on the Env's byte-stream seam
// (Net::listen_stream), so it runs the same in the simulator and over real TCP.
//
// Per connection one task reads, parses (resp/protocol.h) and runs each complete command
// in order (`co_await handler.execute`), appending its reply; replies go to the stream once
// no complete command is left in what was read, or sooner when reply_flush_bytes pile up,
// so a pipeline's replies leave in few writes and a 100,000-command pipeline never holds
// more than a flush's worth of replies beyond the stream's queue.
//
// Pipelined writes. A command the handler starts (CommandHandler::start: a blind write,
// queued at the primary) does not hold up the next: the task starts the following
// commands meanwhile, so one pipeline's writes share commit groups. Replies still go out
// in command order, each write's once it finished (durable); a command the handler does
// not start runs only after every earlier one finished. At most pipeline_commands_max
// started commands (and pipeline_bytes_max of their arguments) are unfinished at once:
// past that the task finishes the oldest first. Before the task reads again it finishes
// every started command; when the connection ends (a close, QUIT, an error), the task
// still waits for them (their replies unsent) so that their locks outlive their writes.
//
// Bounds (RespServerOptions; each ends that connection only, logged rate-limited):
//  - Clients: past max_clients a new connection gets "-ERR max number of clients reached"
//    and is closed (Redis's maxclients, 10000).
//  - Protocol errors: the Redis error reply, then the connection closes (RequestParser).
//  - Query buffer: a command that holds more than request_limits.command_bytes_max closes
//    the connection without a reply (Redis's client-query-buffer-limit).
//  - Output buffer: a client whose unsent replies (the stream's queued bytes) pass
//    output_hard_bytes, or stay above output_soft_bytes for output_soft_duration, is
//    disconnected (Redis's client-output-buffer-limit; Redis's normal class has none, its
//    pubsub class 32 MB hard, 8 MB soft for 60 s).
//  - Idle: with idle_timeout non-zero, a client that sends nothing for that long is closed
//    (Redis's timeout; 0, the default, is none).
//  - Fairness: a task yields after commands_per_turn_max commands in a row.
// QUIT is the handler's (it sets ClientState::close_after_reply): the reply is sent, then
// the connection closes.
//
// Lifetime: the Env and the handler must outlive the server's tasks. stop() closes the
// listener and every connection and returns once every task ended; destroying the server
// without stop() (a node's crash destroys its tasks first) cancels them, and they end
// without touching the server. Every method runs on the Env's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "resp/handler.h"
#include "resp/protocol.h"
#include "runtime/env.h"

namespace quire::resp {

struct RespServerOptions {
  size_t max_clients = 10000;
  size_t output_hard_bytes = size_t{64} << 20;
  size_t output_soft_bytes = size_t{16} << 20;
  Nanos output_soft_duration = std::chrono::seconds(60);
  Nanos idle_timeout = Nanos(0);  // 0: never
  RequestLimits request_limits;
  // A password is configured: the parser's unauthenticated limits apply to a client until
  // the handler sets ClientState::authenticated.
  bool auth_required = false;
  // One read's buffer (Redis's PROTO_IOBUF_LEN is 16 KiB).
  size_t read_chunk_bytes = 16 * 1024;
  // Replies pending in the writer beyond which they go to the stream mid-pipeline.
  size_t reply_flush_bytes = 64 * 1024;
  size_t commands_per_turn_max = 1024;
  // Started commands of one connection not finished yet (pipelined writes), and the bytes
  // of their arguments: at either bound the connection finishes its oldest before it
  // starts another. At least 1 (1: one write at a time, as without pipelining).
  size_t pipeline_commands_max = 1024;
  size_t pipeline_bytes_max = size_t{16} << 20;
  // How often repeated warnings of one kind reach the log.
  Nanos log_interval = std::chrono::seconds(1);
};

class RespServer {
 public:
  RespServer(Env& env, CommandHandler& handler, RespServerOptions options = {});
  ~RespServer();
  RespServer(const RespServer&) = delete;
  RespServer& operator=(const RespServer&) = delete;

  // Listens on `address` and starts accepting. Errors from listen_stream are returned.
  Status start(const Address& address);
  // The bound address; start() must have succeeded.
  const Address& address() const;
  const ServerStats& stats() const;
  // The connected clients (CLIENT LIST, CLIENT KILL); valid as long as the server.
  ClientDirectory& directory();
  // Closes the listener and every connection (their queued replies still go out, as the
  // stream's close allows), and returns once the server's tasks ended.
  Task<void> stop();

  // Internal to server.cc: what the tasks share, and one connection.
  struct Core;
  struct Client;
  struct Pipeline;  // a connection's started commands, oldest first

 private:
  static Task<void> accept_loop(std::shared_ptr<Core> core);
  static void admit_client(const std::shared_ptr<Core>& core,
                           std::unique_ptr<StreamConnection> stream);
  static Task<void> serve(std::shared_ptr<Core> core, std::shared_ptr<Client> client);
  static Task<void> serve_commands(Core& core, Client& client, Pipeline& pipeline);

  std::shared_ptr<Core> core_;
};

}  // namespace quire::resp
