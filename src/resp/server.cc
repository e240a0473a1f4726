#include "resp/server.h"

#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "runtime/log_limiter.h"

namespace quire::resp {

namespace {

constexpr std::string_view kComponent = "resp";
// Log ids of the RESP wire server (50001..50099).
constexpr uint32_t kLogListening = 50001;
constexpr uint32_t kLogAcceptFailed = 50002;
constexpr uint32_t kLogMaxClients = 50003;
constexpr uint32_t kLogProtocolError = 50004;
constexpr uint32_t kLogQueryBufferLimit = 50005;
constexpr uint32_t kLogOutputBufferLimit = 50006;
constexpr uint32_t kLogIdleTimeout = 50007;
constexpr uint32_t kLogStopped = 50008;

constexpr Nanos kAcceptRetryPause = std::chrono::milliseconds(100);
// A connection's reply buffer is released after a flush when it grew beyond this.
constexpr size_t kReplyBufferKeptBytes = 1 << 20;
constexpr std::string_view kMaxClientsReply = "-ERR max number of clients reached\r\n";

}  // namespace

struct RespServer::Client {
  std::unique_ptr<StreamConnection> stream;
  ClientState state;
  TaskId task;
  MonoTime output_soft_since = MonoTime::never();  // queued output above the soft limit since
  bool killed = false;                             // CLIENT KILL: its task ends at its next step
};

struct RespServer::Core : ClientDirectory {
  Core(Env& env_in, CommandHandler& handler_in, RespServerOptions options_in)
      : env(env_in), handler(handler_in), options(std::move(options_in)) {
    stats.max_clients = options.max_clients;
  }

  std::vector<const ClientState*> connected() const override {
    std::vector<const ClientState*> list;
    list.reserve(clients.size());
    for (const auto& [id, client] : clients) {
      if (!client->killed) list.push_back(&client->state);
    }
    return list;
  }
  // The connection closes now; its task, wherever it waits, sees the closed stream (or
  // `killed` between commands) and ends, leaving `clients` then.
  bool kill(uint64_t id) override {
    auto it = clients.find(id);
    if (it == clients.end() || it->second->killed) return false;
    it->second->killed = true;
    it->second->stream->close();
    stats.connected_clients--;
    forget_monitor(id);
    return true;
  }

  bool gone(uint64_t id) const override {
    auto it = clients.find(id);
    return it == clients.end() || it->second->killed || it->second->stream->peer_closed();
  }

  bool monitored() const override { return !monitors.empty(); }
  // Each monitor's stream takes the line; one past the output limits is closed (its task
  // then ends), as a client that does not read its replies.
  void feed_monitors(std::string_view line, uint64_t from_client) override {
    std::vector<uint64_t> over;
    for (uint64_t id : monitors) {
      if (id == from_client) continue;
      auto it = clients.find(id);
      if (it == clients.end() || it->second->killed) continue;
      Client& m = *it->second;
      Status written =
          m.stream->write(ByteView(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
      if (written.is_ok()) stats.net_output_bytes += line.size();
      if (written.code() == Code::kBusy || m.stream->queued_bytes() > options.output_hard_bytes) {
        over.push_back(id);
      }
    }
    for (uint64_t id : over) {
      log_monitor_limit(id);
      kill(id);
    }
  }
  // A client that ran MONITOR joins the monitors once its reply is flushed, so the lines
  // it receives all come after that reply.
  void start_monitor(Client& c) {
    if (std::find(monitors.begin(), monitors.end(), c.state.id) == monitors.end()) {
      monitors.push_back(c.state.id);
    }
  }
  void forget_monitor(uint64_t id) { std::erase(monitors, id); }
  void log_monitor_limit(uint64_t id);

  // The count of suppressed lines when a line with log id `id` may go out now.
  std::optional<uint64_t> admit(uint32_t id) {
    return limits.try_emplace(id, options.log_interval).first->second.admit(env.executor().now());
  }
  MonoTime now() const { return env.executor().now(); }

  Env& env;
  CommandHandler& handler;
  const RespServerOptions options;
  ServerStats stats;
  std::vector<uint64_t> monitors;  // the clients receiving MONITOR's lines, by id
  std::unique_ptr<StreamListener> listener;
  TaskId accept_task;
  std::map<uint64_t, std::shared_ptr<Client>> clients;  // connected, by id
  uint64_t next_client_id = 1;
  bool stopping = false;
  std::map<uint32_t, LogLimiter> limits;
  // Every connection reads into this one buffer: a read fills it only as it returns, and
  // the task hands the bytes to its parser before it next waits, so no two reads overlap
  // in it (one task runs at a time). Idle clients then hold no read buffer here.
  std::vector<uint8_t> read_buffer;
};

struct RespServer::Pipeline {
  struct Started {
    std::unique_ptr<PendingReply> reply;
    size_t bytes = 0;      // its arguments'
    bool dropped = false;  // its reply is not sent (CLIENT REPLY)
  };
  std::deque<Started> started;
  size_t bytes = 0;
};

namespace {

// Finishes the oldest started command, appending its reply to `out`.
Task<void> finish_oldest(RespServer::Client& client, RespServer::Pipeline& p, ReplyWriter& out) {
  QUIRE_ASSERT(!p.started.empty());
  RespServer::Pipeline::Started oldest = std::move(p.started.front());
  p.started.pop_front();
  QUIRE_ASSERT(p.bytes >= oldest.bytes);
  p.bytes -= oldest.bytes;
  const size_t mark = out.size();
  co_await oldest.reply->finish(client.state, out);
  if (oldest.dropped) out.truncate(mark);  // CLIENT REPLY OFF or SKIP when it started
}

// Finishes every started command, in order.
Task<void> finish_all(RespServer::Client& client, RespServer::Pipeline& p, ReplyWriter& out) {
  while (!p.started.empty()) co_await finish_oldest(client, p, out);
  QUIRE_ASSERT(p.bytes == 0);
}

// Hands the replies gathered in `out` to the stream and applies the output buffer limits.
// False when the connection must close (the stream broke, or the client is over a limit:
// logged).
bool flush_replies(RespServer::Core& core, RespServer::Client& client, ReplyWriter& out);
// Counts and logs (rate-limited) a client closed for its output.
void log_output_limit(RespServer::Core& core, RespServer::Client& client, std::string_view why);

}  // namespace

void RespServer::Core::log_monitor_limit(uint64_t id) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  log_output_limit(
      *this, *it->second,
      fmt::format("a monitor past the hard limit of {} bytes", options.output_hard_bytes));
}

RespServer::RespServer(Env& env, CommandHandler& handler, RespServerOptions options)
    : core_(std::make_shared<Core>(env, handler, std::move(options))) {
  QUIRE_ASSERT(core_->options.read_chunk_bytes > 0 && core_->options.commands_per_turn_max > 0 &&
               core_->options.pipeline_commands_max > 0);
  core_->read_buffer.resize(core_->options.read_chunk_bytes);
}

RespServer::~RespServer() {
  // Tasks still running hold the core; cancelled, they end without this object.
  Core& core = *core_;
  core.stopping = true;
  if (core.listener) core.listener->close();
  if (core.accept_task.valid()) core.env.executor().cancel(core.accept_task);
  for (auto& [id, client] : core.clients) {
    client->stream->close();
    if (client->task.valid()) core.env.executor().cancel(client->task);
  }
}

Status RespServer::start(const Address& address) {
  QUIRE_ASSERT(core_->listener == nullptr);
  Result<std::unique_ptr<StreamListener>> listener = core_->env.net().listen_stream(address);
  if (!listener.is_ok()) return listener.status();
  core_->listener = std::move(listener).value();
  core_->accept_task = core_->env.executor().spawn("resp-accept", accept_loop(core_));
  core_->env.log().info(
      kComponent, kLogListening, "RESP server listening",
      {{"address", core_->listener->address()}, {"max_clients", core_->options.max_clients}});
  return Status();
}

const Address& RespServer::address() const {
  QUIRE_ASSERT(core_->listener != nullptr);
  return core_->listener->address();
}

const ServerStats& RespServer::stats() const {
  return core_->stats;
}

ClientDirectory& RespServer::directory() {
  return *core_;
}

Task<void> RespServer::stop() {
  std::shared_ptr<Core> core = core_;
  core->stopping = true;
  if (core->listener) core->listener->close();
  std::vector<TaskId> tasks;
  if (core->accept_task.valid()) tasks.push_back(core->accept_task);
  for (auto& [id, client] : core->clients) {
    client->stream->close();
    if (client->task.valid()) tasks.push_back(client->task);
  }
  Executor& exec = core->env.executor();
  for (TaskId t : tasks) exec.cancel(t);
  for (TaskId t : tasks) {
    // A cancelled task ends at its next wait; joining cannot be refused but by our own cancel.
    Status joined = co_await exec.join(t);
    if (!joined.is_ok()) break;
  }
  core->env.log().info(kComponent, kLogStopped, "RESP server stopped",
                       {{"total_connections", core->stats.total_connections},
                        {"total_commands", core->stats.total_commands}});
}

Task<void> RespServer::accept_loop(std::shared_ptr<Core> core) {
  while (!core->stopping) {
    Result<std::unique_ptr<StreamConnection>> stream =
        co_await core->listener->accept(Deadline::never());
    if (core->stopping) co_return;
    if (!stream.is_ok()) {
      if (stream.code() == Code::kCancelled) co_return;
      if (std::optional<uint64_t> suppressed = core->admit(kLogAcceptFailed)) {
        core->env.log().warn(kComponent, kLogAcceptFailed, "accept failed; retrying",
                             {{"error", stream.status()}, {"suppressed", *suppressed}});
      }
      if (!(co_await core->env.executor().sleep(kAcceptRetryPause)).is_ok()) co_return;
      continue;
    }
    admit_client(core, std::move(stream).value());
  }
}

void RespServer::admit_client(const std::shared_ptr<Core>& core,
                              std::unique_ptr<StreamConnection> stream) {
  // Killed clients still ending (a write they started must finish) do not count.
  if (core->stats.connected_clients >= core->options.max_clients) {
    core->stats.rejected_connections++;
    if (std::optional<uint64_t> suppressed = core->admit(kLogMaxClients)) {
      core->env.log().warn(kComponent, kLogMaxClients, "max number of clients reached; refused",
                           {{"peer", stream->peer()},
                            {"max_clients", core->options.max_clients},
                            {"suppressed", *suppressed}});
    }
    const std::string_view reply = kMaxClientsReply;
    (void)stream->write(ByteView(reinterpret_cast<const uint8_t*>(reply.data()), reply.size()));
    stream->close();  // the reply still goes out
    return;
  }
  auto client = std::make_shared<Client>();
  client->state.id = core->next_client_id++;
  client->state.address = stream->peer();
  client->state.local_address = stream->local();
  client->state.connected_at = core->now();
  client->state.last_command_at = client->state.connected_at;
  client->stream = std::move(stream);
  core->clients.emplace(client->state.id, client);
  core->stats.connected_clients++;
  core->stats.total_connections++;
  client->task = core->env.executor().spawn("resp-client", serve(core, client));
}

Task<void> RespServer::serve(std::shared_ptr<Core> core, std::shared_ptr<Client> client) {
  Pipeline pipeline;
  co_await serve_commands(*core, *client, pipeline);
  client->stream->close();
  // Started writes keep their keys locked until they finished: wait for them, unanswered.
  ReplyWriter unsent;
  co_await finish_all(*client, pipeline, unsent);
  core->handler.disconnected(client->state);
  core->forget_monitor(client->state.id);
  if (core->clients.erase(client->state.id) > 0 && !client->killed) {
    core->stats.connected_clients--;
  }
}

namespace {

enum class Next : uint8_t { kRead, kClose };

// Starts the command if the handler does, within the pipeline's bounds (finishing the
// oldest started ones past them); otherwise finishes every started one, then runs it.
Task<void> run_command(RespServer::Core& core, RespServer::Client& client,
                       RespServer::Pipeline& pipe, std::vector<std::string>& args,
                       ReplyWriter& out) {
  size_t bytes = 0;
  for (const std::string& a : args) bytes += a.size();
  // Room for this one first (a command alone above the byte budget still runs).
  while (!pipe.started.empty() && (pipe.started.size() >= core.options.pipeline_commands_max ||
                                   pipe.bytes + bytes > core.options.pipeline_bytes_max)) {
    co_await finish_oldest(client, pipe, out);
  }
  std::unique_ptr<PendingReply> started = co_await core.handler.start(args, client.state);
  if (started == nullptr) {
    co_await finish_all(client, pipe, out);
    const size_t mark = out.size();
    co_await core.handler.execute(std::move(args), client.state, out);
    if (client.state.replies_dropped()) out.truncate(mark);
    co_return;
  }
  pipe.started.push_back(
      RespServer::Pipeline::Started{std::move(started), bytes, client.state.replies_dropped()});
  pipe.bytes += bytes;
}

// Runs every complete command the parser holds, in order, and finishes the started ones.
// kClose after a protocol error (its reply queued), an oversized command, QUIT, a failed
// flush, or a stop.
Task<Next> run_commands(RespServer::Core& core, RespServer::Client& client, RequestParser& parser,
                        RespServer::Pipeline& pipe, ReplyWriter& out) {
  std::vector<std::string> args;
  size_t in_a_row = 0;
  // Each round runs one command, or ends the batch.
  while (!core.stopping && !client.killed) {
    const RequestParser::Result parsed = parser.next(&args);
    if (parsed == RequestParser::Result::kNeedMore) {
      co_await finish_all(client, pipe, out);
      co_return Next::kRead;
    }
    if (parsed == RequestParser::Result::kProtocolError) {
      co_await finish_all(client, pipe, out);
      core.stats.protocol_errors++;
      if (std::optional<uint64_t> suppressed = core.admit(kLogProtocolError)) {
        core.env.log().warn(kComponent, kLogProtocolError, "protocol error; closing the client",
                            {{"client", client.state.id},
                             {"peer", client.state.address},
                             {"error", parser.error()},
                             {"suppressed", *suppressed}});
      }
      if (!client.state.replies_dropped()) out.error(parser.error());
      flush_replies(core, client, out);
      co_return Next::kClose;
    }
    if (parsed == RequestParser::Result::kTooLarge) {
      if (std::optional<uint64_t> suppressed = core.admit(kLogQueryBufferLimit)) {
        core.env.log().warn(kComponent, kLogQueryBufferLimit,
                            "client reached the query buffer limit; closing it",
                            {{"client", client.state.id},
                             {"peer", client.state.address},
                             {"error", parser.error()},
                             {"suppressed", *suppressed}});
      }
      co_return Next::kClose;
    }
    client.state.last_command_at = core.now();
    client.state.commands++;
    core.stats.total_commands++;
    // Most reads need not wait: no coroutine frame for them.
    const size_t mark = out.size();
    if (!pipe.started.empty()) {
      co_await run_command(core, client, pipe, args, out);
    } else if (core.handler.execute_now(args, client.state, out)) {
      if (client.state.replies_dropped()) out.truncate(mark);
    } else {
      co_await run_command(core, client, pipe, args, out);
    }
    args.clear();
    if (!client.state.monitor_echo.empty()) {  // a monitor's own command, after its reply
      out.buffer() += client.state.monitor_echo;
      client.state.monitor_echo.clear();
    }
    // As Redis's commandProcessed: a SKIP covers the one command after CLIENT REPLY SKIP.
    client.state.reply_skip = client.state.reply_skip_next;
    client.state.reply_skip_next = false;
    if (core.stopping || client.killed) co_return Next::kClose;
    if (out.overflowed()) {  // as Redis's close-ASAP: no further command of this client runs
      co_await finish_all(client, pipe, out);
      flush_replies(core, client, out);
      co_return Next::kClose;
    }
    parser.set_authenticated(!core.options.auth_required || client.state.authenticated);
    if (client.state.close_after_reply) {
      flush_replies(core, client, out);
      co_return Next::kClose;
    }
    // A monitor's replies go out after each of its commands: other clients' lines go
    // straight to its stream, and must not overtake a reply of its own that was ready
    // before them (its next command may wait: WAIT, a write).
    if (client.state.monitor && out.size() > 0 && !flush_replies(core, client, out)) {
      co_return Next::kClose;
    }
    if (out.size() >= core.options.reply_flush_bytes && !flush_replies(core, client, out)) {
      co_return Next::kClose;
    }
    if (++in_a_row % core.options.commands_per_turn_max == 0) {
      if (!(co_await core.env.executor().yield()).is_ok()) co_return Next::kClose;
    }
  }
  co_return Next::kClose;
}

void log_output_limit(RespServer::Core& core, RespServer::Client& client, std::string_view why) {
  core.stats.output_limit_disconnects++;
  if (std::optional<uint64_t> suppressed = core.admit(kLogOutputBufferLimit)) {
    core.env.log().warn(kComponent, kLogOutputBufferLimit,
                        "client does not read its replies; closing it",
                        {{"client", client.state.id},
                         {"peer", client.state.address},
                         {"queued_bytes", client.stream->queued_bytes()},
                         {"reason", why},
                         {"suppressed", *suppressed}});
  }
}

bool flush_replies(RespServer::Core& core, RespServer::Client& client, ReplyWriter& out) {
  if (out.overflowed()) {  // a reply was cut: none of it goes out
    log_output_limit(core, client,
                     fmt::format("a reply past the hard limit of {} bytes", out.bytes_max()));
    out.clear();
    return false;
  }
  if (out.size() > 0) {
    const std::string& bytes = out.buffer();
    Status written = client.stream->write(
        ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    if (written.is_ok()) core.stats.net_output_bytes += bytes.size();
    out.clear();
    // A connection keeps a small reply buffer, not the largest reply it ever sent.
    if (out.buffer().capacity() > kReplyBufferKeptBytes) std::string().swap(out.buffer());
    if (written.code() == Code::kBusy) {
      log_output_limit(core, client, written.message());
      return false;
    }
    if (!written.is_ok()) return false;
  }
  const size_t queued = client.stream->queued_bytes();
  const RespServerOptions& o = core.options;
  if (queued > o.output_hard_bytes) {
    log_output_limit(core, client,
                     fmt::format("above the hard limit of {} bytes", o.output_hard_bytes));
    return false;
  }
  if (queued <= o.output_soft_bytes) {
    client.output_soft_since = MonoTime::never();
    return true;
  }
  const MonoTime now = core.now();
  if (client.output_soft_since.is_never()) client.output_soft_since = now;
  if (now - client.output_soft_since >= o.output_soft_duration) {
    log_output_limit(
        core, client,
        fmt::format(
            "above the soft limit of {} bytes for {} ms", o.output_soft_bytes,
            std::chrono::duration_cast<std::chrono::milliseconds>(o.output_soft_duration).count()));
    return false;
  }
  return true;
}

}  // namespace

Task<void> RespServer::serve_commands(Core& core, Client& client, Pipeline& pipeline) {
  RequestParser parser(core.options.request_limits);
  parser.set_authenticated(!core.options.auth_required || client.state.authenticated);
  ReplyWriter out(core.options.output_hard_bytes);
  std::span<uint8_t> buffer(core.read_buffer);
  // Each round reads once and runs what that completed.
  while (!core.stopping && !client.killed) {
    const Deadline deadline = core.options.idle_timeout > Nanos(0)
                                  ? core.now() + core.options.idle_timeout
                                  : Deadline::never();
    Result<size_t> got = co_await client.stream->read_some(buffer, deadline);
    if (!got.is_ok()) {
      if (got.code() == Code::kDeadlineExceeded) {
        if (std::optional<uint64_t> suppressed = core.admit(kLogIdleTimeout)) {
          core.env.log().info(kComponent, kLogIdleTimeout, "client idle; closing it",
                              {{"client", client.state.id},
                               {"peer", client.state.address},
                               {"suppressed", *suppressed}});
        }
      }
      co_return;
    }
    core.stats.net_input_bytes += *got;
    parser.feed(std::string_view(reinterpret_cast<const char*>(buffer.data()), *got));
    const Next next = co_await run_commands(core, client, parser, pipeline, out);
    if (next == Next::kClose) co_return;
    if (!flush_replies(core, client, out)) co_return;
    if (client.state.monitor) {
      core.start_monitor(client);
    } else if (!core.monitors.empty()) {
      core.forget_monitor(client.state.id);  // RESET ends it
    }
  }
}

}  // namespace quire::resp
