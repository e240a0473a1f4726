#include "runtime/sim/sim_net.h"

#include <algorithm>
#include <charconv>
#include <cmath>

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

class SimNet : public Net {
 public:
  SimNet(SimNetwork& net, NodeId node) : net_(net), node_(node) {}
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
  e->waiters.notify_all();
  stats_.connections_broken++;
  Endpoint* p = endpoint(e->peer);
  if (p != nullptr && !p->broken) {
    p->broken = true;
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

Result<std::unique_ptr<Listener>> SimNetwork::listen(NodeId node, const Address& address) {
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
  uint64_t serial = st->serial;
  listeners_[address] = std::move(st);
  return std::unique_ptr<Listener>(std::make_unique<SimListener>(*this, address, serial));
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
  if (down_.count(target) > 0 || l == nullptr || l->closed ||
      l->pending.size() >= ListenerState::kBacklog || unreachable()) {
    stats_.connects_refused++;
    st = co_await exec.sleep(draw_latency(f));
    if (!st.is_ok()) co_return st;
    co_return unavailable(fmt::format("connect {}: connection refused", address));
  }

  const uint64_t client_id = open_endpoints(node, target, address, l);
  s_.fold_trace(hash_fold(0xC044ull, client_id));

  // SYN-ACK. The connection object exists from here on, so a cancelled or failed
  // handshake releases the endpoint and the server side sees it break.
  auto conn = std::make_unique<SimConnection>(*this, client_id, address);
  st = co_await exec.sleep(draw_latency(f));
  if (!st.is_ok()) co_return st;
  Endpoint* e = endpoint(client_id);
  if (e == nullptr || e->broken)
    co_return unavailable(fmt::format("connect {}: reset during handshake", address));
  co_return std::unique_ptr<Connection>(std::move(conn));
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

}  // namespace quire
