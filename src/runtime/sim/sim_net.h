// The simulated network: connections between simulated nodes as message queues with
// per-link latency, loss, duplication, reordering and partitions, all drawn from the
// run's seed.
//
// A message sent on a connection is delivered after a latency drawn for its link (a
// minimum plus an exponential tail), unless it is dropped. With reordering off, a
// connection delivers in order (like TCP); with it on, each message's latency is
// independent. A duplicated message is delivered twice. A symmetric partition breaks the
// connections across it and refuses new ones; a one-way partition silently drops
// messages in its direction only. A crashed node's connections break; its peers see
// Unavailable once they have read what had already arrived.
//
// Byte streams (Net::listen_stream / connect_stream) model TCP: bytes are never lost,
// duplicated or reordered while the stream lives. A write is cut into segments of random
// sizes, each delivered after a drawn latency (in order), and half the reads return a
// random part of what arrived, so readers see arbitrary chunk splits. Flow control: at most
// kStreamWindowBytes are unread at the receiver or in flight; the rest waits in the
// sender's queue (queued_bytes()). A symmetric partition breaks a stream as it breaks a
// connection; a one-way partition resets a stream when it next sends into it (TCP would
// retransmit until it gave up; the simulator gives up at once). close() sends what is
// queued, then FIN; bytes that arrive at a closed end are dropped, and a close whose queue
// does not drain within kStreamCloseLinger resets the stream. A crashed node's stream
// objects are destroyed before node_down (SimWorld::crash), so its peers see what a killed
// process's peers see: the bytes it had written, then end of stream.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/env.h"
#include "runtime/sim/sim_random.h"
#include "runtime/sync.h"

namespace quire {

struct LinkFaults {
  Nanos latency_min = 50us;
  Nanos latency_tail_mean = 150us;  // mean of the exponential part added to latency_min
  Nanos latency_max = 50ms;         // the tail is cut here
  double drop = 0;                  // probability a message is lost
  double duplicate = 0;             // probability a message is delivered twice
  bool reorder = false;             // independent latencies instead of in-order delivery
};

struct SimNetStats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t connections = 0;
  uint64_t connections_broken = 0;
  uint64_t connects_refused = 0;
  uint64_t stream_segments = 0;  // byte-stream segments delivered
};

class SimNetwork {
 public:
  SimNetwork(Scheduler& s, uint64_t seed);
  ~SimNetwork();

  // Hosts are node names; an address is "name:port".
  void add_host(const std::string& name, NodeId node);
  // The node went down: its listeners close and every connection it has breaks.
  void node_down(NodeId node);
  void node_up(NodeId node);

  void set_default_faults(const LinkFaults& f) { default_faults_ = f; }
  const LinkFaults& default_faults() const { return default_faults_; }
  void set_link_faults(NodeId from, NodeId to, const LinkFaults& f) {
    link_faults_[{from, to}] = f;
  }
  void clear_link_faults() { link_faults_.clear(); }

  // Blocks messages from `from` to `to`. Symmetric partitions block both directions and
  // break the connections between the two nodes.
  void partition_one_way(NodeId from, NodeId to);
  void partition(NodeId a, NodeId b);
  // Isolates `node` from every other host, both directions.
  void isolate(NodeId node);
  void heal(NodeId a, NodeId b);
  void heal_all();
  bool blocked(NodeId from, NodeId to) const { return blocked_.count({from, to}) > 0; }
  size_t blocked_links() const { return blocked_.size(); }

  const SimNetStats& stats() const { return stats_; }

  // The node-facing Net for `node`.
  std::unique_ptr<Net> make_net(NodeId node);

  // Internal to the simulated connection types.
  struct Endpoint;
  struct ListenerState;
  Status send(uint64_t endpoint, ByteView message);
  void close_endpoint(uint64_t endpoint);
  void release_endpoint(uint64_t endpoint);
  Endpoint* endpoint(uint64_t id);
  ListenerState* listener_state(const Address& a);
  void release_listener(const Address& a, uint64_t listener_serial);
  Result<std::unique_ptr<Listener>> listen(NodeId node, const Address& address);
  Task<Result<std::unique_ptr<Connection>>> connect(NodeId node, Address address,
                                                    Deadline deadline);
  Scheduler& scheduler() { return s_; }

  // Internal to the simulated byte streams.
  Result<std::unique_ptr<StreamListener>> listen_stream(NodeId node, const Address& address);
  Task<Result<std::unique_ptr<StreamConnection>>> connect_stream(NodeId node, Address address,
                                                                 Deadline deadline);
  Status stream_write(uint64_t endpoint, ByteView data);
  // Takes up to out.size() received bytes of `endpoint` (0 when none), reopening the peer's
  // window.
  size_t stream_take(uint64_t endpoint, std::span<uint8_t> out);
  void close_stream(uint64_t endpoint);
  void release_stream(uint64_t endpoint);

  // Bytes a stream may have unread at its receiver plus in flight toward it (a TCP window).
  static constexpr size_t kStreamWindowBytes = 256u << 10;
  // The largest segment a write is cut into.
  static constexpr size_t kStreamSegmentBytesMax = 16u << 10;
  // How long a closed stream keeps sending its queue before it resets.
  static constexpr Nanos kStreamCloseLinger = std::chrono::seconds(1);

 private:
  // A SYN into a partition is never answered; the connect gives up after this long.
  static constexpr Nanos kSynUnansweredTimeout = std::chrono::seconds(1);
  // The ports a server sees a client connect from: first, and how many.
  static constexpr uint64_t kEphemeralPortFirst = 40000;
  static constexpr uint64_t kEphemeralPortCount = 20000;
  // Messages queued at a receiver that is not reading before send() reports Busy.
  static constexpr size_t kInboxMessagesMax = 65536;

  // connect's step once the SYN reached an open listener `l` with room in its backlog:
  // makes both endpoints, queues the server's for accept, and returns the client's id.
  uint64_t open_endpoints(NodeId node, NodeId target, const Address& address, ListenerState* l);
  // listen's checks and bookkeeping for either kind: the new listener's serial.
  Result<uint64_t> bind_listener(NodeId node, const Address& address, bool stream);
  // connect's handshake for either kind: the client endpoint's id once established.
  Task<Result<uint64_t>> connect_endpoint(NodeId node, Address address, Deadline deadline,
                                          bool stream);
  // Moves a stream's queued bytes into flight as its peer's window allows; sends FIN after
  // the last byte of a closed stream.
  void pump_stream(Endpoint* e);
  void deliver_stream(uint64_t from, uint64_t to, std::shared_ptr<const Bytes> segment,
                      uint64_t hash);
  void deliver_fin(uint64_t to);
  // Forgets a stream endpoint nobody owns once it can send nothing more.
  void forget_stream_if_done(uint64_t id);
  // The name `node` was added under, or "?".
  std::string host_name(NodeId node) const;
  const LinkFaults& faults(NodeId from, NodeId to) const;
  Nanos draw_latency(const LinkFaults& f);
  void break_endpoint(Endpoint* e);
  void break_between(NodeId a, NodeId b);
  void deliver(uint64_t endpoint, std::shared_ptr<const Bytes> message, uint64_t hash);

  Scheduler& s_;
  SimRandom rng_;
  LinkFaults default_faults_;
  std::map<std::pair<NodeId, NodeId>, LinkFaults> link_faults_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::map<std::string, NodeId> hosts_;
  std::set<NodeId> down_;
  std::map<uint64_t, std::unique_ptr<Endpoint>> endpoints_;
  std::map<Address, std::unique_ptr<ListenerState>> listeners_;
  uint64_t next_endpoint_ = 1;
  uint64_t next_listener_ = 1;
  SimNetStats stats_;
};

struct SimNetwork::Endpoint {
  Endpoint(Scheduler& s) : waiters(s) {}
  uint64_t id = 0;
  uint64_t peer = 0;  // the other end's id
  NodeId node = kWorldNode;
  NodeId peer_node = kWorldNode;
  Address peer_address;
  std::deque<Bytes> inbox;
  bool broken = false;
  bool owned = true;             // a Connection object (or a pending accept) refers to it
  int64_t last_delivery_ns = 0;  // for in-order delivery
  WaitQueue waiters;             // readers, and for streams writers waiting for a drain

  // Byte streams only.
  bool stream = false;
  Bytes stream_in;  // received; [stream_in_head, end) not yet read
  size_t stream_in_head = 0;
  Bytes stream_out;  // written; [stream_out_head, end) not yet in flight
  size_t stream_out_head = 0;
  size_t in_flight = 0;       // sent toward the peer, not yet delivered
  bool fin_received = false;  // the peer closed; nothing follows what is in stream_in
  bool closing = false;       // close() was called here
  bool fin_sent = false;      // everything queued went out, and then FIN
  size_t unread() const { return stream_in.size() - stream_in_head; }
  size_t queued() const { return stream_out.size() - stream_out_head; }
};

struct SimNetwork::ListenerState {
  ListenerState(Scheduler& s) : waiters(s) {}
  uint64_t serial = 0;
  NodeId node = kWorldNode;
  Address address;
  std::deque<uint64_t> pending;  // endpoint ids of connections not yet accepted
  bool closed = false;
  bool stream = false;  // accepts byte streams, not message connections
  WaitQueue waiters;
  static constexpr size_t kBacklog = 128;
};

}  // namespace quire
