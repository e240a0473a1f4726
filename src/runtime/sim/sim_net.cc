#include "runtime/sim/sim_net.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "base/hash.h"

namespace quire {

namespace {

constexpr unsigned kPortMax = 65535;

// Splits "host:port"; the port must be a number in [0, kPortMax].
Result<std::pair<std::string, uint16_t>> split_address(const Address& a) {
  auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == a.size()) {
    return invalid_argument(fmt::format("address '{}' is not host:port", a));
  }
  unsigned port = 0;
  const char* first = a.data() + colon + 1;
  const char* last = a.data() + a.size();
  auto [p, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || p != last || port > kPortMax) {
    return invalid_argument(fmt::format("address '{}' has a bad port", a));
  }
  return std::make_pair(a.substr(0, colon), static_cast<uint16_t>(port));
}

class SimConnection : public Connection {
 public:
  SimConnection(SimNetwork& net, uint64_t id, Address peer)
      : net_(net), id_(id), peer_(std::move(peer)) {}
  ~SimConnection() override { net_.release_endpoint(id_); }

  Status send(ByteView message) override { return net_.send(id_, message); }

  Task<Result<Bytes>> receive(Deadline deadline) override {
    while (true) {
      SimNetwork::Endpoint* e = net_.endpoint(id_);
      if (e == nullptr) co_return unavailable("connection closed");
      if (!e->inbox.empty()) {
        Bytes m = std::move(e->inbox.front());
        e->inbox.pop_front();
        co_return m;
      }
      if (e->broken) {
        co_return unavailable(
            fmt::format("connection to {} broken; outcome of in-flight messages unknown", peer_));
      }
      Status st = co_await e->waiters.wait(deadline);
      if (!st.is_ok()) co_return st;
    }
  }

  void close() override { net_.close_endpoint(id_); }
  bool is_open() const override {
    SimNetwork::Endpoint* e = net_.endpoint(id_);
    return e != nullptr && !e->broken;
  }
  const Address& peer() const override { return peer_; }

 private:
  SimNetwork& net_;
  uint64_t id_;
  Address peer_;
};

class SimListener : public Listener {
 public:
  SimListener(SimNetwork& net, Address address, uint64_t serial)
      : net_(net), address_(std::move(address)), serial_(serial) {}
  ~SimListener() override { net_.release_listener(address_, serial_); }

  Task<Result<std::unique_ptr<Connection>>> accept(Deadline deadline) override {
    while (true) {
      SimNetwork::ListenerState* l = net_.listener_state(address_);
      if (l == nullptr || l->serial != serial_ || l->closed)
        co_return unavailable("listener closed");
      if (!l->pending.empty()) {
        uint64_t id = l->pending.front();
        l->pending.pop_front();
        SimNetwork::Endpoint* e = net_.endpoint(id);
        if (e == nullptr) continue;
        co_return std::unique_ptr<Connection>(
            std::make_unique<SimConnection>(net_, id, e->peer_address));
      }
      Status st = co_await l->waiters.wait(deadline);
      if (!st.is_ok()) co_return st;
    }
  }

  void close() override { net_.release_listener(address_, serial_); }
  const Address& address() const override { return address_; }

 private:
  SimNetwork& net_;
  Address address_;
  uint64_t serial_;
};

class SimStreamConnection : public StreamConnection {
 public:
  SimStreamConnection(SimNetwork& net, uint64_t id, Address peer, Address local)
      : net_(net), id_(id), peer_(std::move(peer)), local_(std::move(local)) {}
  ~SimStreamConnection() override { net_.release_stream(id_); }

  Task<Result<size_t>> read_some(std::span<uint8_t> out, Deadline deadline) override {
    QUIRE_ASSERT(!out.empty());
    while (true) {
      SimNetwork::Endpoint* e = net_.endpoint(id_);
      if (e == nullptr || e->closing) co_return unavailable("stream closed");
      if (e->unread() > 0) co_return net_.stream_take(id_, out);
      if (e->broken) {
        co_return unavailable(fmt::format("stream to {} broken; in-flight bytes lost", peer_));
      }
      if (e->fin_received) co_return unavailable(fmt::format("stream closed by {}", peer_));
      Status st = co_await e->waiters.wait(deadline);
      if (!st.is_ok()) co_return st;
    }
  }

  Status write(ByteView data) override { return net_.stream_write(id_, data); }

  size_t queued_bytes() const override {
    SimNetwork::Endpoint* e = net_.endpoint(id_);
    return e == nullptr ? 0 : e->queued();
  }

  Task<Status> drained(size_t at_most, Deadline deadline) override {
    while (true) {
      SimNetwork::Endpoint* e = net_.endpoint(id_);
      if (e == nullptr || e->closing) co_return unavailable("stream closed");
      if (e->broken) co_return unavailable(fmt::format("stream to {} broken", peer_));
      if (e->queued() <= at_most) co_return Status();
      Status st = co_await e->waiters.wait(deadline);
      if (!st.is_ok()) co_return st;
    }
  }

  void close() override { net_.close_stream(id_); }
  bool is_open() const override {
    SimNetwork::Endpoint* e = net_.endpoint(id_);
    return e != nullptr && !e->broken && !e->closing;
  }
  bool peer_closed() const override {
    SimNetwork::Endpoint* e = net_.endpoint(id_);
    return e == nullptr || e->closing || e->broken || (e->fin_received && e->unread() == 0);
  }
  const Address& peer() const override { return peer_; }
  const Address& local() const override { return local_; }

 private:
  SimNetwork& net_;
  uint64_t id_;
  Address peer_;
  Address local_;
};

class SimStreamListener : public StreamListener {
 public:
  SimStreamListener(SimNetwork& net, Address address, uint64_t serial)
      : net_(net), address_(std::move(address)), serial_(serial) {}
  ~SimStreamListener() override { net_.release_listener(address_, serial_); }

  Task<Result<std::unique_ptr<StreamConnection>>> accept(Deadline deadline) override {
    while (true) {
      SimNetwork::ListenerState* l = net_.listener_state(address_);
      if (l == nullptr || l->serial != serial_ || l->closed)
        co_return unavailable("listener closed");
      if (!l->pending.empty()) {
        uint64_t id = l->pending.front();
        l->pending.pop_front();
        SimNetwork::Endpoint* e = net_.endpoint(id);
        if (e == nullptr) continue;
        co_return std::unique_ptr<StreamConnection>(
            std::make_unique<SimStreamConnection>(net_, id, e->peer_address, address_));
      }
      Status st = co_await l->waiters.wait(deadline);
      if (!st.is_ok()) co_return st;
    }
  }

  void close() override { net_.release_listener(address_, serial_); }
  const Address& address() const override { return address_; }

 private:
  SimNetwork& net_;
  Address address_;
  uint64_t serial_;
};

class SimNet : public Net {
 public:
  SimNet(SimNetwork& net, NodeId node) : net_(net), node_(node) {}
  Result<std::unique_ptr<StreamListener>> listen_stream(const Address& address) override {
    return net_.listen_stream(node_, address);
  }
  Task<Result<std::unique_ptr<StreamConnection>>> connect_stream(const Address& address,
                                                                 Deadline deadline) override {
    return net_.connect_stream(node_, address, deadline);
  }
  Result<std::unique_ptr<Listener>> listen(const Address& address) override {
    return net_.listen(node_, address);
  }
  Task<Result<std::unique_ptr<Connection>>> connect(const Address& address,
                                                    Deadline deadline) override {
    return net_.connect(node_, address, deadline);
  }

 private:
  SimNetwork& net_;
  NodeId node_;
};

}  // namespace

SimNetwork::SimNetwork(Scheduler& s, uint64_t seed) : s_(s), rng_(seed, "sim-net") {}
SimNetwork::~SimNetwork() = default;

void SimNetwork::add_host(const std::string& name, NodeId node) {
  hosts_[name] = node;
}

std::unique_ptr<Net> SimNetwork::make_net(NodeId node) {
  return std::make_unique<SimNet>(*this, node);
}

const LinkFaults& SimNetwork::faults(NodeId from, NodeId to) const {
  auto it = link_faults_.find({from, to});
  return it == link_faults_.end() ? default_faults_ : it->second;
}

Nanos SimNetwork::draw_latency(const LinkFaults& f) {
  double u = rng_.unit();
  double tail = -std::log1p(-u) * static_cast<double>(f.latency_tail_mean.count());
  auto ns = f.latency_min.count() + static_cast<int64_t>(tail);
  return Nanos(std::min<int64_t>(ns, std::max(f.latency_max.count(), f.latency_min.count())));
}

SimNetwork::Endpoint* SimNetwork::endpoint(uint64_t id) {
  auto it = endpoints_.find(id);
  return it == endpoints_.end() ? nullptr : it->second.get();
}

SimNetwork::ListenerState* SimNetwork::listener_state(const Address& a) {
  auto it = listeners_.find(a);
  return it == listeners_.end() ? nullptr : it->second.get();
}

void SimNetwork::break_endpoint(Endpoint* e) {
  if (e == nullptr || e->broken) return;
  e->broken = true;
  e->stream_out.clear();  // a broken stream's queued bytes are lost
  e->stream_out_head = 0;
  e->waiters.notify_all();
  stats_.connections_broken++;
  Endpoint* p = endpoint(e->peer);
  if (p != nullptr && !p->broken) {
    p->broken = true;
    p->stream_out.clear();
    p->stream_out_head = 0;
    p->waiters.notify_all();
  }
}

void SimNetwork::close_endpoint(uint64_t id) {
  break_endpoint(endpoint(id));
}

void SimNetwork::release_endpoint(uint64_t id) {
  Endpoint* e = endpoint(id);
  if (e == nullptr) return;
  break_endpoint(e);
  endpoints_.erase(id);
}

void SimNetwork::break_between(NodeId a, NodeId b) {
  for (auto& [id, e] : endpoints_) {
    if ((e->node == a && e->peer_node == b) || (e->node == b && e->peer_node == a))
      break_endpoint(e.get());
  }
}

void SimNetwork::partition_one_way(NodeId from, NodeId to) {
  blocked_.insert({from, to});
  s_.fold_trace(hash_fold(0x9A47ull, (uint64_t{from} << 32) | to));
}

void SimNetwork::partition(NodeId a, NodeId b) {
  blocked_.insert({a, b});
  blocked_.insert({b, a});
  break_between(a, b);
  s_.fold_trace(hash_fold(0x9A48ull, (uint64_t{a} << 32) | b));
}

void SimNetwork::isolate(NodeId node) {
  for (const auto& [name, other] : hosts_) {
    if (other != node) partition(node, other);
  }
}

void SimNetwork::heal(NodeId a, NodeId b) {
  blocked_.erase({a, b});
  blocked_.erase({b, a});
}

void SimNetwork::heal_all() {
  blocked_.clear();
  s_.fold_trace(0x4EA1ull);
}

void SimNetwork::node_down(NodeId node) {
  down_.insert(node);
  for (auto& [id, e] : endpoints_) {
    if (e->node == node || e->peer_node == node) break_endpoint(e.get());
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->second->node == node) {
      it->second->closed = true;
      it->second->waiters.notify_all();
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  // Endpoints the crashed node owned will never be released by their (destroyed) owners.
  std::erase_if(endpoints_, [node](const auto& kv) { return kv.second->node == node; });
}

void SimNetwork::node_up(NodeId node) {
  down_.erase(node);
}

Result<uint64_t> SimNetwork::bind_listener(NodeId node, const Address& address, bool stream) {
  auto parts = split_address(address);
  if (!parts.is_ok()) return parts.status();
  auto host = hosts_.find(parts->first);
  if (host == hosts_.end() || host->second != node) {
    return unavailable(fmt::format("cannot bind {}: not this node's address", address));
  }
  if (listeners_.count(address) > 0) {
    return unavailable(fmt::format("cannot bind {}: address in use", address));
  }
  auto st = std::make_unique<ListenerState>(s_);
  st->serial = next_listener_++;
  st->node = node;
  st->address = address;
  st->stream = stream;
  uint64_t serial = st->serial;
  listeners_[address] = std::move(st);
  return serial;
}

Result<std::unique_ptr<Listener>> SimNetwork::listen(NodeId node, const Address& address) {
  Result<uint64_t> serial = bind_listener(node, address, false);
  if (!serial.is_ok()) return serial.status();
  return std::unique_ptr<Listener>(std::make_unique<SimListener>(*this, address, *serial));
}

Result<std::unique_ptr<StreamListener>> SimNetwork::listen_stream(NodeId node,
                                                                  const Address& address) {
  Result<uint64_t> serial = bind_listener(node, address, true);
  if (!serial.is_ok()) return serial.status();
  return std::unique_ptr<StreamListener>(
      std::make_unique<SimStreamListener>(*this, address, *serial));
}

void SimNetwork::release_listener(const Address& a, uint64_t serial) {
  auto it = listeners_.find(a);
  if (it == listeners_.end() || it->second->serial != serial) return;
  ListenerState* l = it->second.get();
  l->closed = true;
  l->waiters.notify_all();
  for (uint64_t id : l->pending) release_endpoint(id);
  listeners_.erase(it);
}

uint64_t SimNetwork::open_endpoints(NodeId node, NodeId target, const Address& address,
                                    ListenerState* l) {
  QUIRE_ASSERT(l != nullptr && !l->closed && l->pending.size() < ListenerState::kBacklog);
  auto client = std::make_unique<Endpoint>(s_);
  auto server = std::make_unique<Endpoint>(s_);
  client->id = next_endpoint_++;
  server->id = next_endpoint_++;
  client->peer = server->id;
  server->peer = client->id;
  client->node = node;
  client->peer_node = target;
  server->node = target;
  server->peer_node = node;
  client->peer_address = address;
  client->stream = l->stream;
  server->stream = l->stream;
  // The client's address as the server sees it: its host name and an ephemeral port.
  server->peer_address =
      fmt::format("{}:{}", host_name(node), kEphemeralPortFirst + client->id % kEphemeralPortCount);
  const uint64_t client_id = client->id;
  l->pending.push_back(server->id);
  endpoints_[client->id] = std::move(client);
  endpoints_[server->id] = std::move(server);
  l->waiters.notify_one();
  stats_.connections++;
  return client_id;
}

std::string SimNetwork::host_name(NodeId node) const {
  for (const auto& [name, id] : hosts_) {
    if (id == node) return name;
  }
  return std::string("?");
}

Task<Result<std::unique_ptr<Connection>>> SimNetwork::connect(NodeId node, Address address,
                                                              Deadline deadline) {
  Result<uint64_t> id = co_await connect_endpoint(node, address, deadline, false);
  if (!id.is_ok()) co_return id.status();
  co_return std::unique_ptr<Connection>(std::make_unique<SimConnection>(*this, *id, address));
}

Task<Result<std::unique_ptr<StreamConnection>>> SimNetwork::connect_stream(NodeId node,
                                                                           Address address,
                                                                           Deadline deadline) {
  Result<uint64_t> id = co_await connect_endpoint(node, address, deadline, true);
  if (!id.is_ok()) co_return id.status();
  // This end's address is the one the server sees (its host and ephemeral port).
  Endpoint* e = endpoint(*id);
  Endpoint* server = e == nullptr ? nullptr : endpoint(e->peer);
  Address local = server == nullptr ? Address("?") : server->peer_address;
  co_return std::unique_ptr<StreamConnection>(
      std::make_unique<SimStreamConnection>(*this, *id, address, std::move(local)));
}

namespace {

// Releases a half-open client endpoint when its handshake is abandoned (deadline, cancel,
// reset): the server side sees the connection break.
struct HandshakeGuard {
  SimNetwork& net;
  uint64_t id;
  ~HandshakeGuard() {
    if (id != 0) net.release_endpoint(id);
  }
};

}  // namespace

Task<Result<uint64_t>> SimNetwork::connect_endpoint(NodeId node, Address address, Deadline deadline,
                                                    bool stream) {
  Executor exec(s_, node);
  auto parts = split_address(address);
  if (!parts.is_ok()) co_return parts.status();
  auto host = hosts_.find(parts->first);
  if (host == hosts_.end()) co_return unavailable(fmt::format("connect {}: unknown host", address));
  NodeId target = host->second;
  const LinkFaults f = faults(node, target);  // a copy: the table may change while we wait

  auto unreachable = [&]() { return blocked(node, target) || blocked(target, node); };
  if (unreachable()) {
    // A SYN into a partition is never answered: the attempt times out.
    Deadline give_up = std::min(deadline, s_.now() + kSynUnansweredTimeout);
    Status st = co_await exec.sleep_until(give_up);
    if (!st.is_ok()) co_return st;
    if (give_up == deadline)
      co_return deadline_exceeded(fmt::format("connect {} timed out", address));
    co_return unavailable(fmt::format("connect {}: no route", address));
  }

  // SYN.
  Nanos there = draw_latency(f);
  if (s_.now() + there > deadline) {
    Status st = co_await exec.sleep_until(deadline);
    if (!st.is_ok()) co_return st;
    co_return deadline_exceeded(fmt::format("connect {} timed out", address));
  }
  Status st = co_await exec.sleep(there);
  if (!st.is_ok()) co_return st;
  ListenerState* l = listener_state(address);
  if (down_.count(target) > 0 || l == nullptr || l->closed || l->stream != stream ||
      l->pending.size() >= ListenerState::kBacklog || unreachable()) {
    stats_.connects_refused++;
    st = co_await exec.sleep(draw_latency(f));
    if (!st.is_ok()) co_return st;
    co_return unavailable(fmt::format("connect {}: connection refused", address));
  }

  const uint64_t client_id = open_endpoints(node, target, address, l);
  s_.fold_trace(hash_fold(0xC044ull, client_id));

  // SYN-ACK. From here on a cancelled or failed handshake releases the endpoint and the
  // server side sees it break.
  HandshakeGuard guard{*this, client_id};
  st = co_await exec.sleep(draw_latency(f));
  if (!st.is_ok()) co_return st;
  Endpoint* e = endpoint(client_id);
  if (e == nullptr || e->broken)
    co_return unavailable(fmt::format("connect {}: reset during handshake", address));
  guard.id = 0;
  co_return client_id;
}

Status SimNetwork::send(uint64_t id, ByteView message) {
  Endpoint* e = endpoint(id);
  if (e == nullptr || e->broken) {
    return unavailable("connection broken; outcome of in-flight messages unknown");
  }
  if (message.size() > Connection::kMaxMessageBytes) {
    return invalid_argument(fmt::format("message of {} bytes exceeds the {} byte limit",
                                        message.size(), Connection::kMaxMessageBytes));
  }
  Endpoint* p = endpoint(e->peer);
  if (p != nullptr && p->inbox.size() >= kInboxMessagesMax) {
    return busy("peer is not reading: receive queue full");
  }
  stats_.sent++;
  const LinkFaults& f = faults(e->node, e->peer_node);
  if (blocked(e->node, e->peer_node) || (f.drop > 0 && rng_.chance(f.drop))) {
    stats_.dropped++;
    return Status();
  }
  auto shared = std::make_shared<const Bytes>(message.begin(), message.end());
  uint64_t h = hash_bytes(message);
  int copies = (f.duplicate > 0 && rng_.chance(f.duplicate)) ? 2 : 1;
  if (copies == 2) stats_.duplicated++;
  for (int c = 0; c < copies; ++c) {
    int64_t at = (s_.now() + draw_latency(f)).ns;
    if (!f.reorder) {
      at = std::max(at, p ? p->last_delivery_ns : 0);
      if (p) p->last_delivery_ns = at;
    }
    uint64_t peer = e->peer;
    s_.post_at(kWorldNode, MonoTime{at}, [this, peer, shared, h] { deliver(peer, shared, h); });
  }
  return Status();
}

void SimNetwork::deliver(uint64_t id, std::shared_ptr<const Bytes> message, uint64_t hash) {
  Endpoint* e = endpoint(id);
  if (e == nullptr || e->broken || blocked(e->peer_node, e->node)) {
    stats_.dropped++;
    return;
  }
  s_.fold_trace(hash_fold(hash, id));
  stats_.delivered++;
  e->inbox.push_back(*message);
  e->waiters.notify_one();
}

// ---- Byte streams

Status SimNetwork::stream_write(uint64_t id, ByteView data) {
  Endpoint* e = endpoint(id);
  if (e == nullptr || e->closing) return unavailable("stream closed");
  if (e->broken) return unavailable("stream broken; in-flight bytes lost");
  if (e->queued() + data.size() > StreamConnection::kMaxQueuedWriteBytes) {
    return busy(fmt::format("stream queue holds {} bytes; {} more would exceed {}", e->queued(),
                            data.size(), StreamConnection::kMaxQueuedWriteBytes));
  }
  e->stream_out.insert(e->stream_out.end(), data.begin(), data.end());
  pump_stream(e);
  return Status();
}

size_t SimNetwork::stream_take(uint64_t id, std::span<uint8_t> out) {
  Endpoint* e = endpoint(id);
  if (e == nullptr) return 0;
  size_t n = std::min(e->unread(), out.size());
  if (n == 0) return 0;
  // Half the reads stop short of what is there, so readers meet every kind of split.
  if (n > 1 && rng_.chance(0.5)) n = 1 + rng_.uniform(n);
  std::memcpy(out.data(), e->stream_in.data() + e->stream_in_head, n);
  e->stream_in_head += n;
  if (e->stream_in_head == e->stream_in.size()) {
    e->stream_in.clear();
    e->stream_in_head = 0;
  }
  // The window reopened: the peer may send more.
  if (Endpoint* p = endpoint(e->peer)) pump_stream(p);
  return n;
}

void SimNetwork::pump_stream(Endpoint* e) {
  if (e->broken || e->fin_sent) return;
  Endpoint* p = endpoint(e->peer);
  const LinkFaults& f = faults(e->node, e->peer_node);
  // Each round puts one segment in flight, or stops at a full window.
  if (p == nullptr) {
    // The peer closed and was forgotten (a crash breaks streams first): what is sent to a
    // closed end is dropped there, as deliver_stream drops it at a closing one.
    e->stream_out.clear();
    e->stream_out_head = 0;
  }
  while (e->queued() > 0) {
    if (p->broken || blocked(e->node, e->peer_node)) {
      break_endpoint(e);  // the peer broke, or is unreachable: a reset
      return;
    }
    const size_t window_used = p->unread() + e->in_flight;
    if (window_used >= kStreamWindowBytes) break;
    const size_t most =
        std::min({e->queued(), kStreamWindowBytes - window_used, kStreamSegmentBytesMax});
    const size_t n = 1 + rng_.uniform(most);  // arbitrary splits
    const uint8_t* first = e->stream_out.data() + e->stream_out_head;
    auto segment = std::make_shared<const Bytes>(first, first + n);
    e->stream_out_head += n;
    e->in_flight += n;
    const uint64_t h = hash_bytes(ByteView(*segment));
    const int64_t at = std::max((s_.now() + draw_latency(f)).ns, p->last_delivery_ns);
    p->last_delivery_ns = at;
    const uint64_t from = e->id;
    const uint64_t to = p->id;
    s_.post_at(kWorldNode, MonoTime{at},
               [this, from, to, segment, h] { deliver_stream(from, to, segment, h); });
  }
  if (e->queued() == 0) {
    e->stream_out.clear();
    e->stream_out_head = 0;
  } else if (e->stream_out_head > e->stream_out.size() / 2) {
    e->stream_out.erase(e->stream_out.begin(),
                        e->stream_out.begin() + static_cast<ptrdiff_t>(e->stream_out_head));
    e->stream_out_head = 0;
  }
  if (e->closing && e->queued() == 0) {
    // FIN follows the last byte (to a peer still there).
    e->fin_sent = true;
    if (p == nullptr) return;
    const int64_t at = std::max((s_.now() + draw_latency(f)).ns, p->last_delivery_ns);
    p->last_delivery_ns = at;
    const uint64_t to = p->id;
    s_.post_at(kWorldNode, MonoTime{at}, [this, to] { deliver_fin(to); });
  }
  e->waiters.notify_all();  // writers waiting for a drain
}

void SimNetwork::deliver_stream(uint64_t from, uint64_t to, std::shared_ptr<const Bytes> segment,
                                uint64_t hash) {
  if (Endpoint* src = endpoint(from)) src->in_flight -= segment->size();
  Endpoint* e = endpoint(to);
  if (e == nullptr || e->broken || e->closing) {
    stats_.dropped++;
    return;
  }
  s_.fold_trace(hash_fold(hash, to));
  stats_.stream_segments++;
  e->stream_in.insert(e->stream_in.end(), segment->begin(), segment->end());
  e->waiters.notify_all();
}

void SimNetwork::deliver_fin(uint64_t to) {
  Endpoint* e = endpoint(to);
  if (e == nullptr || e->broken) return;
  e->fin_received = true;
  e->waiters.notify_all();
  forget_stream_if_done(to);
}

void SimNetwork::close_stream(uint64_t id) {
  Endpoint* e = endpoint(id);
  if (e == nullptr || e->closing) return;
  e->closing = true;
  e->stream_in.clear();  // unread bytes are dropped
  e->stream_in_head = 0;
  e->waiters.notify_all();
  if (e->broken) return;
  pump_stream(e);
  if (e->fin_sent) return;
  s_.post_at(kWorldNode, s_.now() + kStreamCloseLinger, [this, id] {
    Endpoint* lingering = endpoint(id);
    if (lingering == nullptr || lingering->fin_sent) return;
    break_endpoint(lingering);
    forget_stream_if_done(id);
  });
}

void SimNetwork::release_stream(uint64_t id) {
  Endpoint* e = endpoint(id);
  if (e == nullptr) return;
  close_stream(id);
  e->owned = false;
  forget_stream_if_done(id);
}

void SimNetwork::forget_stream_if_done(uint64_t id) {
  Endpoint* e = endpoint(id);
  if (e == nullptr || e->owned || !(e->broken || e->fin_sent)) return;
  endpoints_.erase(id);
}

}  // namespace quire
