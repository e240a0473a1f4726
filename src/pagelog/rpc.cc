#include "pagelog/rpc.h"

#include <optional>

#include <fmt/format.h>

namespace quire {

namespace {
constexpr uint8_t kKindRequest = 1;
constexpr uint8_t kKindResponse = 2;
constexpr const char* kComponent = "rpc";
constexpr size_t kMessageMax = 1024;  // bytes of an error message we carry
}  // namespace

Bytes encode_rpc_request(uint64_t id, uint8_t op, uint64_t term, ByteView body) {
  Bytes out;
  out.reserve(24 + body.size());
  ByteWriter w(out);
  w.put_u8(kKindRequest);
  w.put_varint64(id);
  w.put_u8(op);
  w.put_varint64(term);
  w.put_bytes(body);
  return out;
}

Bytes encode_rpc_request(const RpcRequest& r) {
  return encode_rpc_request(r.id, r.op, r.term, r.body);
}

Bytes encode_rpc_response(const RpcResponse& r) {
  Bytes out;
  out.reserve(16 + r.body.size());
  ByteWriter w(out);
  w.put_u8(kKindResponse);
  w.put_varint64(r.id);
  w.put_u8(static_cast<uint8_t>(r.status.code()));
  const std::string& msg = r.status.message();
  w.put_string(std::string_view(msg).substr(0, kMessageMax));
  w.put_bytes(r.body);
  return out;
}

Result<RpcRequest> decode_rpc_request(ByteView in) {
  ByteReader r(in);
  uint8_t kind = 0;
  RpcRequest req;
  QUIRE_RETURN_IF_ERROR(r.get_u8(&kind));
  if (kind != kKindRequest) return corruption("not an rpc request");
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&req.id));
  QUIRE_RETURN_IF_ERROR(r.get_u8(&req.op));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&req.term));
  ByteView body;
  QUIRE_RETURN_IF_ERROR(r.get_bytes(r.remaining(), &body));
  req.body.assign(body.begin(), body.end());
  return req;
}

Result<RpcResponse> decode_rpc_response(ByteView in) {
  ByteReader r(in);
  uint8_t kind = 0, code = 0;
  RpcResponse resp;
  std::string message;
  QUIRE_RETURN_IF_ERROR(r.get_u8(&kind));
  if (kind != kKindResponse) return corruption("not an rpc response");
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&resp.id));
  QUIRE_RETURN_IF_ERROR(r.get_u8(&code));
  QUIRE_RETURN_IF_ERROR(r.get_string(&message, kMessageMax));
  if (code >= kCodeCount)
    return Status(Code::kCorruption, "unknown status code in rpc response").with("code", code);
  if (code != 0) resp.status = Status(static_cast<Code>(code), std::move(message));
  ByteView body;
  QUIRE_RETURN_IF_ERROR(r.get_bytes(r.remaining(), &body));
  resp.body.assign(body.begin(), body.end());
  return resp;
}

// ---- Client

RpcClient::RpcClient(Env& env, Address server)
    : env_(env),
      server_(std::move(server)),
      st_(std::make_shared<State>(env.executor().scheduler())) {}

RpcClient::~RpcClient() {
  st_->alive = false;
  if (st_->conn) st_->conn->close();  // wakes the reader, which sees it is no longer wanted
  env_.executor().cancel(reader_);
  st_->fail_all(cancelled("rpc client destroyed"));
}

void RpcClient::State::fail_all(const Status& why) {
  for (auto& [id, call] : calls) {
    call->done = true;
    call->status = why;
    call->wake.notify_all();
  }
  calls.clear();
}

void RpcClient::disconnect() {
  if (st_->conn) st_->conn->close();
  st_->conn.reset();
  st_->generation++;
  st_->fail_all(unavailable(
      fmt::format("connection to {} dropped; outcome of in-flight calls unknown", server_)));
}

Task<Status> RpcClient::ensure_connected(Deadline deadline) {
  std::shared_ptr<State> st = st_;
  while (st->connecting) {
    // Another call is connecting: wait for it, but only a bounded crowd (a dead server
    // would otherwise park every caller behind one attempt); the rest retry or fail over.
    if (st->connect_waiters.size() >= kConnectWaitersMax) {
      co_return unavailable(fmt::format("connecting to {}", server_));
    }
    Status w = co_await st->connect_waiters.wait(deadline);
    if (!w.is_ok()) co_return w;
  }
  if (st->conn && st->conn->is_open()) co_return Status();
  st->connecting = true;
  auto c = co_await env_.net().connect(server_, deadline);
  st->connecting = false;
  st->connect_waiters.notify_all();
  if (!c.is_ok()) co_return c.status();
  st->conn = std::shared_ptr<Connection>(std::move(c).value());
  st->generation++;
  reader_ =
      env_.executor().spawn("rpc-reader", read_loop(env_, server_, st, st->conn, st->generation));
  co_return Status();
}

Task<void> RpcClient::read_loop(Env& env, Address server, std::shared_ptr<State> st,
                                std::shared_ptr<Connection> conn, uint64_t generation) {
  while (true) {
    auto m = co_await conn->receive(Deadline::never());
    if (!st->alive || generation != st->generation) co_return;  // no longer wanted
    if (!m.is_ok()) {
      st->conn.reset();
      st->generation++;
      st->fail_all(
          unavailable(fmt::format("connection to {} broken: {}; outcome of in-flight calls unknown",
                                  server, m.status().message())));
      co_return;
    }
    auto resp = decode_rpc_response(*m);
    if (!resp.is_ok()) {
      env.log().error(kComponent, 31001, "malformed response; dropping the connection",
                      {{"server", server}, {"error", resp.status()}});
      conn->close();
      st->conn.reset();
      st->generation++;
      st->fail_all(unavailable(
          fmt::format("malformed response from {}; outcome of in-flight calls unknown", server)));
      co_return;
    }
    auto it = st->calls.find(resp->id);
    if (it == st->calls.end()) continue;  // the caller gave up on it
    QUIRE_ASSERT(!it->second->done);      // a call leaves the map when it is done
    it->second->done = true;
    it->second->status = std::move(resp->status);
    it->second->body = std::move(resp->body);
    it->second->wake.notify_all();
    st->calls.erase(it);
  }
}

Task<Result<Bytes>> RpcClient::call(uint8_t op, uint64_t term, Bytes body, Deadline deadline) {
  auto shared = std::make_shared<const Bytes>(std::move(body));
  co_return co_await call(op, term, std::move(shared), deadline);
}

Task<Result<Bytes>> RpcClient::call(uint8_t op, uint64_t term, std::shared_ptr<const Bytes> body,
                                    Deadline deadline) {
  std::shared_ptr<State> st = st_;
  if (st->calls.size() >= kInFlightMax)
    co_return busy(fmt::format("too many calls in flight to {}", server_));
  QUIRE_CO_RETURN_IF_ERROR(co_await ensure_connected(deadline));
  QUIRE_ASSERT(st->conn != nullptr);  // connected, and nothing ran since
  uint64_t id = next_id_++;
  auto call = std::make_shared<Call>(env_.executor().scheduler());
  st->calls[id] = call;
  Status sent = st->conn->send(encode_rpc_request(id, op, term, *body));
  body.reset();
  if (!sent.is_ok()) {
    st->calls.erase(id);
    if (sent.code() == Code::kUnavailable) disconnect();
    co_return sent;
  }
  while (!call->done) {
    Status w = co_await call->wake.wait(deadline);
    if (!w.is_ok() && !call->done) {
      st->calls.erase(id);
      co_return w;
    }
  }
  if (!call->status.is_ok()) co_return call->status;
  co_return std::move(call->body);
}

// ---- Server

struct RpcServer::ConnState {
  uint64_t id = 0;
  std::unique_ptr<Connection> conn;
  size_t in_flight = 0;
  uint64_t last_active = 0;  // RpcServer::activity_ at its accept or last request
};

Status RpcServer::start(const Address& address) {
  auto l = env_.net().listen(address);
  if (!l.is_ok()) return l.status();
  listener_ = std::move(l).value();
  env_.executor().spawn("rpc-accept", accept_loop());
  return Status();
}

const Address& RpcServer::address() const {
  QUIRE_ASSERT(listener_);
  return listener_->address();
}

Task<void> RpcServer::accept_loop() {
  while (true) {
    auto c = co_await listener_->accept(Deadline::never());
    if (!c.is_ok()) {
      if (c.code() == Code::kCancelled) co_return;
      env_.log().warn(kComponent, 31002, "accept failed", {{"error", c.status()}});
      if (!(co_await env_.executor().sleep(kAcceptRetryPause)).is_ok()) co_return;
      continue;
    }
    if (connections_.size() >= kConnectionsMax) evict_one();
    auto state = std::make_shared<ConnState>();
    state->id = next_connection_id_++;
    state->conn = std::move(c).value();
    state->last_active = ++activity_;
    connections_.emplace(state->id, state);
    env_.executor().spawn("rpc-serve", serve(state));
  }
}

void RpcServer::evict_one() {
  // Least recently active first, among those with no request in flight when there are any.
  std::shared_ptr<ConnState> victim;
  for (const auto& [id, weak] : connections_) {
    std::shared_ptr<ConnState> c = weak.lock();
    if (c == nullptr) continue;
    if (victim == nullptr ||
        ((c->in_flight == 0) != (victim->in_flight == 0) ? c->in_flight == 0
                                                         : c->last_active < victim->last_active)) {
      victim = std::move(c);
    }
  }
  if (victim == nullptr) return;
  if (std::optional<uint64_t> suppressed = evicted_log_.admit(env_.clock().monotonic_now())) {
    env_.log().warn(kComponent, 31003,
                    "too many connections; closing the least recently active one",
                    {{"peer", victim->conn->peer()},
                     {"connections", connections_.size()},
                     {"suppressed", *suppressed}});
  }
  // Its serve task sees the close and ends; it is no longer counted from now.
  victim->conn->close();
  connections_.erase(victim->id);
}

Task<void> RpcServer::serve(std::shared_ptr<ConnState> c) {
  while (true) {
    auto m = co_await c->conn->receive(Deadline::never());
    if (!m.is_ok()) break;
    auto req = decode_rpc_request(*m);
    if (!req.is_ok()) {
      if (std::optional<uint64_t> suppressed = malformed_log_.admit(env_.clock().monotonic_now())) {
        env_.log().error(
            kComponent, 31004, "malformed request; closing the connection",
            {{"peer", c->conn->peer()}, {"error", req.status()}, {"suppressed", *suppressed}});
      }
      break;
    }
    c->last_active = ++activity_;
    if (c->in_flight >= kRequestsPerConnectionMax) {
      respond(*c, {req->id, busy("too many requests in flight on this connection"), {}});
      continue;
    }
    c->in_flight++;
    env_.executor().spawn("rpc-handle", handle(c, std::move(req).value()));
  }
  c->conn->close();
  connections_.erase(c->id);  // a no-op when it was evicted
}

Task<void> RpcServer::handle(std::shared_ptr<ConnState> c, RpcRequest request) {
  RpcResponse resp = co_await handler_(request);
  resp.id = request.id;
  QUIRE_ASSERT(c->in_flight > 0);
  c->in_flight--;
  if (c->conn->is_open()) respond(*c, resp);
}

void RpcServer::respond(ConnState& c, const RpcResponse& response) {
  Bytes message = encode_rpc_response(response);
  if (message.size() > Connection::kMaxMessageBytes)
    message = refuse_oversize(c, response, message.size());
  Status sent = c.conn->send(message);
  if (sent.code() != Code::kBusy) return;
  if (std::optional<uint64_t> suppressed = unread_log_.admit(env_.clock().monotonic_now())) {
    env_.log().warn(kComponent, 31005, "the peer does not read its responses; closing",
                    {{"peer", c.conn->peer()}, {"error", sent}, {"suppressed", *suppressed}});
  }
  c.conn->close();
}

Bytes RpcServer::refuse_oversize(ConnState& c, const RpcResponse& response, size_t bytes) {
  Status refused = Status(Code::kInvalidArgument,
                          fmt::format("the response of {} bytes exceeds the frame limit of {}",
                                      bytes, Connection::kMaxMessageBytes));
  if (std::optional<uint64_t> suppressed = oversize_log_.admit(env_.clock().monotonic_now())) {
    env_.log().error(kComponent, 31006, "a response does not fit one frame; refusing the request",
                     {{"peer", c.conn->peer()},
                      {"bytes", bytes},
                      {"answer", response.status},
                      {"suppressed", *suppressed}});
  }
  Bytes message = encode_rpc_response({response.id, std::move(refused), {}});
  QUIRE_ASSERT(message.size() <= Connection::kMaxMessageBytes);  // a header and a short message
  return message;
}

}  // namespace quire
