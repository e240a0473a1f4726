// Request/response calls over a Connection, for the page service.
//
// Wire format (inside one message):
//   request:  u8 1, varint64 request id, u8 op, varint64 term, body...
//   response: u8 2, varint64 request id, u8 status code, string message, body...
//
// RpcClient keeps one connection to one server and any number of calls in flight on it
// (bounded); a reader task matches responses to calls by id. When the connection breaks,
// every call in flight fails with Unavailable: its outcome is unknown, and the caller
// decides whether re-sending is safe (page-service writes are idempotent by LSN).
//
// RpcServer accepts connections (it must outlive its tasks: it dies with its node) and runs each
// request as its own task (bounded per connection), so concurrent requests can share a group
// commit. A malformed message closes that connection with a logged error and affects no other.
// Against hostile or broken peers (the transport bounds memory and time; see TcpNet):
//  - Slots: at kConnectionsMax connections, a new one evicts the least recently active
//    (the one whose last request, or accept, is oldest; connections with requests in flight
//    only when every one has some). Idle and half-sent connections are therefore never
//    able to lock out a fresh client, which is served at once; refusing the newcomer
//    instead would let 256 silent sockets deny service until their timeouts, and reserved
//    slots would only move that limit.
//  - Unread responses: a response the connection's send queue cannot take (Busy: the peer
//    is not reading its responses) closes that connection; its calls then fail as any
//    broken connection's do.
//  - Oversize responses: a response that does not fit one frame (Connection::
//    kMaxMessageBytes) is replaced by InvalidArgument, so its call completes with a typed
//    error instead of never; the page service's handlers keep their responses within a
//    frame (page_protocol.h), so this is a last line of defence.
//  - The log: malformed requests, evictions, such closes and oversize responses are logged
//    at most once per kErrorLogInterval per kind, the next line counting the ones
//    suppressed (LogLimiter).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/coding.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"
#include "runtime/sync.h"

namespace quire {

struct RpcRequest {
  uint64_t id = 0;
  uint8_t op = 0;
  uint64_t term = 0;
  Bytes body;
};

struct RpcResponse {
  uint64_t id = 0;
  Status status;
  Bytes body;
};

Bytes encode_rpc_request(const RpcRequest& r);
// The same frame around a body the caller keeps (sent to several servers).
Bytes encode_rpc_request(uint64_t id, uint8_t op, uint64_t term, ByteView body);
Bytes encode_rpc_response(const RpcResponse& r);
Result<RpcRequest> decode_rpc_request(ByteView in);
Result<RpcResponse> decode_rpc_response(ByteView in);

class RpcClient {
 public:
  static constexpr size_t kInFlightMax = 1024;

  RpcClient(Env& env, Address server);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  // Sends one request and waits for its response: the response body, the server's error
  // status, Unavailable (not connected, or the connection broke: outcome unknown),
  // DeadlineExceeded, Busy (too many calls in flight) or Cancelled.
  Task<Result<Bytes>> call(uint8_t op, uint64_t term, Bytes body, Deadline deadline);
  // The same with a body shared by several calls (one encoding sent to every server).
  Task<Result<Bytes>> call(uint8_t op, uint64_t term, std::shared_ptr<const Bytes> body,
                           Deadline deadline);
  const Address& server() const { return server_; }
  // Drops the connection; calls in flight fail with Unavailable.
  void disconnect();

 private:
  struct Call {
    explicit Call(Scheduler& s) : wake(s) {}
    bool done = false;
    Status status;
    Bytes body;
    WaitQueue wake;  // its caller alone waits here (no herd of every call in flight)
  };
  // Everything the reader task touches lives here, shared with it, so destroying the
  // client while a read is parked leaves nothing dangling.
  struct State {
    explicit State(Scheduler& s) : connect_waiters(s) {}
    bool alive = true;
    std::shared_ptr<Connection> conn;
    uint64_t generation = 0;
    bool connecting = false;
    std::map<uint64_t, std::shared_ptr<Call>> calls;
    WaitQueue connect_waiters;  // calls waiting for a connection attempt to end
    void fail_all(const Status& why);
  };
  Task<Status> ensure_connected(Deadline deadline);
  static constexpr size_t kConnectWaitersMax = 64;
  static Task<void> read_loop(Env& env, Address server, std::shared_ptr<State> st,
                              std::shared_ptr<Connection> conn, uint64_t generation);

  Env& env_;
  Address server_;
  std::shared_ptr<State> st_;
  uint64_t next_id_ = 1;
  TaskId reader_;
};

class RpcServer {
 public:
  using Handler = std::function<Task<RpcResponse>(const RpcRequest&)>;
  static constexpr size_t kConnectionsMax = 256;
  static constexpr size_t kRequestsPerConnectionMax = 64;
  static constexpr Nanos kAcceptRetryPause = 100ms;  // after a failed accept
  static constexpr Nanos kErrorLogInterval = std::chrono::seconds(1);

  RpcServer(Env& env, Handler handler) : env_(env), handler_(std::move(handler)) {}
  // Listens and serves until the node stops. Errors from listen are returned.
  Status start(const Address& address);
  const Address& address() const;

 private:
  struct ConnState;
  Task<void> accept_loop();
  // Makes room for one more connection by closing the least recently active one.
  void evict_one();
  Task<void> serve(std::shared_ptr<ConnState> c);
  Task<void> handle(std::shared_ptr<ConnState> c, RpcRequest request);
  // Queues a response; one the queue refuses as Busy closes the connection.
  void respond(ConnState& c, const RpcResponse& response);
  // The InvalidArgument response that stands for one of `bytes` over the frame limit.
  Bytes refuse_oversize(ConnState& c, const RpcResponse& response, size_t bytes);

  Env& env_;
  Handler handler_;
  std::unique_ptr<Listener> listener_;
  // The connections being served, by id (accept order). Weak: a connection lives exactly
  // as long as its tasks, as it did before there was this index.
  std::map<uint64_t, std::weak_ptr<ConnState>> connections_;
  uint64_t next_connection_id_ = 1;
  uint64_t activity_ = 0;  // stamps ConnState::last_active
  LogLimiter evicted_log_{kErrorLogInterval};
  LogLimiter malformed_log_{kErrorLogInterval};
  LogLimiter unread_log_{kErrorLogInterval};
  LogLimiter oversize_log_{kErrorLogInterval};
};

}  // namespace quire
