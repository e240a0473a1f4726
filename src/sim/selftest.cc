#include "sim/selftest.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/coding.h"
#include "base/crc32c.h"
#include "runtime/sim/sim_world.h"
#include "runtime/sync.h"

namespace quire {
namespace {

constexpr const char* kLogDir = "selftest";
constexpr const char* kLogPath = "selftest/log";
constexpr uint16_t kPort = 7000;
constexpr size_t kMaxServeTasks = 16;
constexpr size_t kMaxMessageBytes = 4096;
constexpr std::array<const char*, 3> kNodeNames = {"n1", "n2", "n3"};
constexpr uint32_t kSelftestNodes = kNodeNames.size();

// ---- Log records: fixed32 body length, fixed32 masked CRC32C of the body, body.
// Body: u8 kind, varint32 from, varint64 seq, length-prefixed padding (so records span
// sectors and tear in interesting places).

enum RecordKind : uint8_t { kLocal = 1, kDelivered = 2 };

struct LogRecord {
  uint8_t kind = 0;
  uint32_t from = 0;  // sender's node id, for kDelivered
  uint64_t seq = 0;
};

Bytes encode_record(const LogRecord& r, size_t padding) {
  Bytes body;
  ByteWriter w(body);
  w.put_u8(r.kind);
  w.put_varint32(r.from);
  w.put_varint64(r.seq);
  Bytes pad(padding, static_cast<uint8_t>(r.seq));
  w.put_length_prefixed(pad);
  Bytes out;
  ByteWriter o(out);
  o.put_fixed32(static_cast<uint32_t>(body.size()));
  o.put_fixed32(crc32c::mask(crc32c::value(body)));
  o.put_bytes(body);
  return out;
}

struct ParsedLog {
  std::vector<LogRecord> records;
  uint64_t valid_bytes = 0;
};

// Reads records from the start and stops at the first torn or corrupt one.
ParsedLog parse_log(ByteView data) {
  ParsedLog out;
  ByteReader r(data);
  while (!r.at_end()) {
    uint32_t len = 0, crc = 0;
    ByteView body;
    if (!r.get_fixed32(&len).is_ok() || !r.get_fixed32(&crc).is_ok() || len > kMaxMessageBytes ||
        !r.get_bytes(len, &body).is_ok()) {
      break;
    }
    if (crc32c::unmask(crc) != crc32c::value(body)) break;
    ByteReader b(body);
    LogRecord rec;
    ByteView pad;
    if (!b.get_u8(&rec.kind).is_ok() || !b.get_varint32(&rec.from).is_ok() ||
        !b.get_varint64(&rec.seq).is_ok() || !b.get_length_prefixed(&pad).is_ok() || !b.at_end() ||
        (rec.kind != kLocal && rec.kind != kDelivered)) {
      break;
    }
    out.records.push_back(rec);
    out.valid_bytes = r.position();
  }
  return out;
}

// ---- Messages between nodes: u8 type, varint32 from, varint64 seq.
enum MessageType : uint8_t { kHello = 1, kLast = 2, kData = 3, kAck = 4 };

struct Message {
  uint8_t type = 0;
  uint32_t from = 0;
  uint64_t seq = 0;
};

Bytes encode_message(const Message& m) {
  Bytes out;
  ByteWriter w(out);
  w.put_u8(m.type);
  w.put_varint32(m.from);
  w.put_varint64(m.seq);
  return out;
}

Result<Message> decode_message(ByteView data) {
  ByteReader r(data);
  Message m;
  QUIRE_RETURN_IF_ERROR(r.get_u8(&m.type));
  QUIRE_RETURN_IF_ERROR(r.get_varint32(&m.from));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&m.seq));
  if (!r.at_end() || m.type < kHello || m.type > kAck)
    return corruption("malformed self-test message");
  return m;
}

// ---- The checker's model: what was acknowledged, independent of any node's memory.

class Model {
 public:
  explicit Model(uint32_t nodes) : durable_local_(nodes + 1, 0) {}

  void local_durable(NodeId node, uint64_t seq) {
    durable_local_[node] = std::max(durable_local_[node], seq);
    appends_durable_++;
  }
  void acked(NodeId sender, NodeId receiver, uint64_t seq) {
    uint64_t& a = acked_[{sender, receiver}];
    if (seq > a) {
      acks_ += seq - a;
      a = seq;
    }
  }
  uint64_t acked_of(NodeId sender, NodeId receiver) const {
    auto it = acked_.find({sender, receiver});
    return it == acked_.end() ? 0 : it->second;
  }

  // Checks one node's log against everything acknowledged so far. Returns the number of
  // delivered messages in it.
  uint64_t check_log(NodeId node, const std::string& name, const ParsedLog& log,
                     std::string_view when) {
    uint64_t last_local = 0;
    std::map<uint32_t, uint64_t> last_from;
    uint64_t delivered = 0;
    for (const auto& r : log.records) {
      if (r.kind == kLocal) {
        if (r.seq != last_local + 1) {
          violation(fmt::format("{} {}: local record {} follows {} (gap or duplicate)", name, when,
                                r.seq, last_local));
        }
        last_local = r.seq;
      } else {
        uint64_t& prev = last_from[r.from];
        if (r.seq != prev + 1) {
          violation(fmt::format(
              "{} {}: message {} from node {} follows {} (duplicate or gap in delivery)", name,
              when, r.seq, r.from, prev));
        }
        prev = r.seq;
        delivered++;
      }
    }
    if (last_local < durable_local_[node]) {
      violation(fmt::format("{} {}: synced local record {} lost (log ends at {})", name, when,
                            durable_local_[node], last_local));
    }
    for (const auto& [key, seq] : acked_) {
      if (key.second != node) continue;
      uint64_t have = last_from.count(key.first) ? last_from[key.first] : 0;
      if (have < seq) {
        violation(fmt::format("{} {}: acknowledged message {} from node {} lost (log has {})", name,
                              when, seq, key.first, have));
      }
    }
    recoveries_checked_++;
    return delivered;
  }

  void violation(std::string v) {
    if (violations_.size() < 100) violations_.push_back(std::move(v));
  }
  const std::vector<std::string>& violations() const { return violations_; }
  uint64_t acks() const { return acks_; }
  uint64_t appends_durable() const { return appends_durable_; }
  uint64_t recoveries_checked() const { return recoveries_checked_; }

 private:
  std::vector<uint64_t> durable_local_;
  std::map<std::pair<NodeId, NodeId>, uint64_t> acked_;
  std::vector<std::string> violations_;
  uint64_t acks_ = 0;
  uint64_t appends_durable_ = 0;
  uint64_t recoveries_checked_ = 0;
};

// ---- The node.

class SelftestNode : public NodeApp {
 public:
  SelftestNode(Env& env, NodeId self, std::vector<std::pair<NodeId, std::string>> peers,
               Model& model)
      : env_(env),
        exec_(env.executor()),
        self_(self),
        peers_(std::move(peers)),
        model_(model),
        log_mu_(exec_.scheduler()) {}

  void start() override { exec_.spawn("recover", run()); }

 private:
  Task<void> run() {
    Status st = co_await recover();
    if (!st.is_ok()) {
      fail_stop(st);
      co_return;
    }
    auto listener = env_.net().listen(fmt::format("{}:{}", env_.node_name(), kPort));
    if (!listener.is_ok()) {
      env_.log().error("selftest", 90002, "cannot listen", {{"error", listener.status()}});
      fail_stop(listener.status());
      co_return;
    }
    listener_ = std::move(listener).value();
    exec_.spawn("accept", accept_loop());
    exec_.spawn("append", append_loop());
    for (const auto& [id, name] : peers_)
      exec_.spawn(fmt::format("send-to-{}", name), send_loop(id, name));
  }

  void fail_stop(const Status& why) {
    if (stopping_) return;
    stopping_ = true;
    env_.log().error("selftest", 90001, "local storage fault; restarting", {{"error", why}});
    env_.request_restart(why);
  }

  Task<Status> recover() {
    Disk& disk = env_.disk();
    QUIRE_CO_RETURN_IF_ERROR(co_await disk.make_dirs(kLogDir));
    QUIRE_CO_RETURN_IF_ERROR(co_await disk.sync_dir(""));
    auto file = co_await disk.open(kLogPath, OpenOptions{.create = true});
    if (!file.is_ok()) co_return file.status();
    file_ = std::move(file).value();
    QUIRE_CO_RETURN_IF_ERROR(co_await disk.sync_dir(kLogDir));

    auto size = file_->size();
    if (!size.is_ok()) co_return size.status();
    Bytes content(*size);
    size_t done = 0;
    while (done < content.size()) {
      auto n = co_await file_->read(done, std::span<uint8_t>(content).subspan(done));
      if (!n.is_ok()) co_return n.status();
      if (*n == 0) break;
      done += *n;
    }
    content.resize(done);
    ParsedLog log = parse_log(content);
    model_.check_log(self_, std::string(env_.node_name()), log, "recovery");
    for (const auto& r : log.records) {
      if (r.kind == kLocal) next_local_ = r.seq + 1;
      if (r.kind == kDelivered) delivered_[r.from] = r.seq;
    }
    if (log.valid_bytes < content.size()) {
      env_.log().warn("selftest", 90003, "truncating torn log tail",
                      {{"valid_bytes", log.valid_bytes}, {"file_bytes", content.size()}});
      QUIRE_CO_RETURN_IF_ERROR(co_await file_->truncate(log.valid_bytes));
      QUIRE_CO_RETURN_IF_ERROR(co_await file_->sync());
    }
    env_.log().info("selftest", 90004, "recovered",
                    {{"records", log.records.size()}, {"next_local", next_local_}});
    co_return Status();
  }

  // Appends one record and syncs it, under the log mutex. Any disk error is fatal for
  // this incarnation: after a failed write or fsync the file's durable state is unknown.
  Task<Status> append_durable(const LogRecord& rec) {
    if (stopping_) co_return unavailable("node is stopping");
    Bytes bytes = encode_record(rec, env_.random().uniform(1200));
    auto off = co_await file_->append(bytes);
    if (!off.is_ok()) {
      fail_stop(off.status());
      co_return off.status();
    }
    Status st = co_await file_->sync();
    if (!st.is_ok()) {
      fail_stop(st);
      co_return st;
    }
    co_return Status();
  }

  Task<void> append_loop() {
    while (!stopping_) {
      if (!(co_await exec_.sleep(env_.random().duration(5ms, 50ms))).is_ok()) co_return;
      if (!(co_await log_mu_.lock()).is_ok()) co_return;
      MutexGuard guard(log_mu_);
      uint64_t seq = next_local_;
      Status st = co_await append_durable(LogRecord{kLocal, 0, seq});
      if (!st.is_ok()) co_return;
      next_local_ = seq + 1;
      model_.local_durable(self_, seq);
    }
  }

  Task<void> accept_loop() {
    while (!stopping_) {
      auto conn = co_await listener_->accept(Deadline::never());
      if (!conn.is_ok()) {
        env_.log().warn("selftest", 90005, "accept failed", {{"error", conn.status()}});
        co_return;
      }
      if (serving_ >= kMaxServeTasks) {
        (*conn)->close();
        continue;
      }
      exec_.spawn("serve", serve(std::move(conn).value()));
    }
  }

  Task<void> serve(std::unique_ptr<Connection> conn) {
    serving_++;
    while (!stopping_) {
      auto bytes = co_await conn->receive(exec_.deadline_after(10s));
      if (!bytes.is_ok()) break;
      auto msg = decode_message(*bytes);
      if (!msg.is_ok()) {
        env_.log().error("selftest", 90006, "malformed message; closing connection",
                         {{"peer", conn->peer()}, {"error", msg.status()}});
        break;
      }
      if (msg->type == kHello) {
        (void)conn->send(encode_message({kLast, self_, delivered_[msg->from]}));
      } else if (msg->type == kData) {
        if (!(co_await deliver(msg->from, msg->seq)).is_ok()) break;
        (void)conn->send(encode_message({kAck, self_, msg->seq}));
      }
    }
    conn->close();
    serving_--;
  }

  // Delivers message `seq` from `from` exactly once: durably appended before it counts.
  Task<Status> deliver(uint32_t from, uint64_t seq) {
    QUIRE_CO_RETURN_IF_ERROR(co_await log_mu_.lock());
    MutexGuard guard(log_mu_);
    uint64_t& last = delivered_[from];
    if (seq <= last) co_return Status();  // a re-send: already delivered
    if (seq != last + 1)
      co_return invalid_argument(fmt::format("message {} from {} skips {}", seq, from, last + 1));
    QUIRE_CO_RETURN_IF_ERROR(co_await append_durable(LogRecord{kDelivered, from, seq}));
    last = seq;
    co_return Status();
  }

  Task<void> send_loop(NodeId peer, std::string peer_name) {
    Address address = fmt::format("{}:{}", peer_name, kPort);
    while (!stopping_) {
      auto conn = co_await env_.net().connect(address, exec_.deadline_after(1s));
      if (!conn.is_ok()) {
        if (conn.code() == Code::kCancelled) co_return;
        if (!(co_await exec_.sleep(env_.random().duration(10ms, 200ms))).is_ok()) co_return;
        continue;
      }
      Status st = co_await send_session(**conn, peer);
      (*conn)->close();
      if (st.code() == Code::kCancelled) co_return;
      if (!(co_await exec_.sleep(env_.random().duration(5ms, 50ms))).is_ok()) co_return;
    }
  }

  // One connection's worth of sending: a handshake learns what the receiver already has,
  // then each message is sent until acknowledged (re-sent on timeout).
  Task<Status> send_session(Connection& conn, NodeId peer) {
    QUIRE_CO_RETURN_IF_ERROR(conn.send(encode_message({kHello, self_, 0})));
    uint64_t next = 0;
    while (next == 0) {
      auto reply = co_await conn.receive(exec_.deadline_after(500ms));
      if (!reply.is_ok()) co_return reply.status();
      auto m = decode_message(*reply);
      if (!m.is_ok()) co_return m.status();
      if (m->type == kLast) {
        model_.acked(self_, peer, m->seq);
        next = m->seq + 1;
      }
    }
    while (!stopping_) {
      int attempts = 0;
      bool acked = false;
      while (!acked) {
        if (++attempts > 5) co_return unavailable("no acknowledgement after 5 attempts");
        QUIRE_CO_RETURN_IF_ERROR(conn.send(encode_message({kData, self_, next})));
        Deadline deadline = exec_.deadline_after(300ms);
        while (true) {
          auto reply = co_await conn.receive(deadline);
          if (reply.code() == Code::kDeadlineExceeded) break;  // re-send
          if (!reply.is_ok()) co_return reply.status();
          auto m = decode_message(*reply);
          if (!m.is_ok()) co_return m.status();
          if (m->type == kAck && m->seq == next) {
            acked = true;
            break;
          }
          // Anything else is a duplicate or stale reply: keep waiting.
        }
      }
      model_.acked(self_, peer, next);
      next++;
      QUIRE_CO_RETURN_IF_ERROR(co_await exec_.sleep(env_.random().duration(1ms, 20ms)));
    }
    co_return Status();
  }

  Env& env_;
  Executor& exec_;
  NodeId self_;
  std::vector<std::pair<NodeId, std::string>> peers_;
  Model& model_;
  AsyncMutex log_mu_;
  std::unique_ptr<File> file_;
  std::unique_ptr<Listener> listener_;
  std::map<uint32_t, uint64_t> delivered_;
  uint64_t next_local_ = 1;
  size_t serving_ = 0;
  bool stopping_ = false;
};

// ---- The nemesis: faults drawn from the seed while the fault phase lasts.

class Nemesis {
 public:
  Nemesis(SimWorld& world, const SelftestFaultMix& mix, MonoTime end, SelftestReport& report)
      : world_(world),
        rng_(world.random_stream("nemesis")),
        mix_(mix),
        end_(end),
        report_(report) {}

  void start() {
    if (mix_.message_faults) {
      LinkFaults f = world_.network().default_faults();
      f.drop = mix_.drop;
      f.duplicate = mix_.duplicate;
      f.reorder = mix_.reorder;
      world_.network().set_default_faults(f);
    }
    schedule_next();
  }

 private:
  void schedule_next() {
    Nanos gap = rng_->duration(Nanos(std::chrono::milliseconds(mix_.fault_interval_ms / 2)),
                               Nanos(std::chrono::milliseconds(mix_.fault_interval_ms * 3 / 2)));
    MonoTime at = world_.now() + gap;
    if (at >= end_) return;
    world_.scheduler().post_at(kWorldNode, at, [this] {
      act();
      schedule_next();
    });
  }

  NodeId pick_node() { return static_cast<NodeId>(1 + rng_->uniform(world_.nodes().size())); }

  void later(Nanos d, std::function<void()> fn) {
    world_.scheduler().post_at(kWorldNode, world_.now() + d, std::move(fn));
  }

  void act() {
    std::vector<int> enabled;
    if (mix_.crashes) enabled.push_back(0);
    if (mix_.partitions) enabled.push_back(1);
    if (mix_.disk_faults) enabled.push_back(2);
    if (mix_.clock_skew) enabled.push_back(3);
    if (enabled.empty()) return;
    switch (enabled[rng_->uniform(enabled.size())]) {
      case 0: {
        NodeId n = pick_node();
        if (!world_.is_up(n)) return;
        auto mode = static_cast<UnsyncedOnCrash>(rng_->uniform(3));
        world_.crash(n, mode);
        report_.crashes++;
        later(rng_->duration(50ms, 2s), [this, n] {
          if (!world_.is_up(n)) world_.start(n);
        });
        break;
      }
      case 1: {
        NodeId a = pick_node();
        NodeId b = pick_node();
        if (a == b) {
          world_.network().isolate(a);
        } else if (rng_->chance(0.5)) {
          world_.network().partition(a, b);
        } else {
          world_.network().partition_one_way(a, b);
        }
        report_.partitions++;
        later(rng_->duration(100ms, 3s), [this, a, b] {
          if (a == b) {
            for (NodeId o : world_.nodes()) world_.network().heal(a, o);
          } else {
            world_.network().heal(a, b);
          }
        });
        break;
      }
      case 2: {
        NodeId n = pick_node();
        DiskFaults f = world_.disk(n).faults();
        f.read_eio = f.write_eio = f.sync_eio = mix_.disk_eio;
        world_.disk(n).set_faults(f);
        later(rng_->duration(200ms, 2s), [this, n] {
          DiskFaults g = world_.disk(n).faults();
          g.read_eio = g.write_eio = g.sync_eio = 0;
          world_.disk(n).set_faults(g);
        });
        break;
      }
      case 3: {
        NodeId n = pick_node();
        world_.clock(n).set_offset_ns(rng_->range(-10'000'000'000, 10'000'000'000));
        world_.clock(n).set_drift_ppm(static_cast<double>(rng_->range(-200, 200)));
        report_.clock_skews++;
        break;
      }
    }
  }

  SimWorld& world_;
  std::unique_ptr<Random> rng_;
  SelftestFaultMix mix_;
  MonoTime end_;
  SelftestReport& report_;
};

SelftestFaultMix draw_mix(Random& rng) {
  SelftestFaultMix m;
  // Swarm testing: each class is on with probability 3/4, so some seeds leave some out.
  m.crashes = rng.chance(0.75);
  m.partitions = rng.chance(0.75);
  m.message_faults = rng.chance(0.75);
  m.disk_faults = rng.chance(0.75);
  m.clock_skew = rng.chance(0.75);
  if (m.message_faults) {
    m.drop = static_cast<double>(rng.uniform(100)) / 1000.0;       // up to 10%
    m.duplicate = static_cast<double>(rng.uniform(100)) / 1000.0;  // up to 10%
    m.reorder = rng.chance(0.5);
  }
  if (m.disk_faults) m.disk_eio = static_cast<double>(1 + rng.uniform(50)) / 1000.0;  // 0.1%..5%
  m.fault_interval_ms = static_cast<int>(200 + rng.uniform(1800));
  return m;
}

}  // namespace

namespace {

// Three nodes, n1..n3, each the peer of the others, started.
void add_selftest_nodes(SimWorld& world, Model& model) {
  for (size_t i = 0; i < kNodeNames.size(); ++i) {
    auto self = static_cast<NodeId>(i + 1);
    std::vector<std::pair<NodeId, std::string>> peers;
    for (size_t j = 0; j < kNodeNames.size(); ++j) {
      if (j != i) peers.emplace_back(static_cast<NodeId>(j + 1), kNodeNames[j]);
    }
    NodeId id = world.add_node(kNodeNames[i], [self, peers, &model](Env& env) {
      return std::make_unique<SelftestNode>(env, self, peers, model);
    });
    QUIRE_ASSERT(id == self);
  }
  for (NodeId id : world.nodes()) world.start(id);
}

// Every fault off, every node up: from here on the system must make progress.
void heal(SimWorld& world) {
  world.network().heal_all();
  world.network().set_default_faults(LinkFaults{});
  for (NodeId id : world.nodes()) {
    DiskFaults f = world.disk(id).faults();
    f.read_eio = f.write_eio = f.sync_eio = 0;
    world.disk(id).set_faults(f);
    if (!world.is_up(id)) world.start(id);
  }
}

using AckedCounts = std::map<std::pair<NodeId, NodeId>, uint64_t>;

// The final checks, on the durable disk images read by the checker itself, and of
// progress since `acked_at_heal`. Returns the messages delivered.
uint64_t check_final_state(SimWorld& world, Model& model, AckedCounts& acked_at_heal) {
  uint64_t delivered = 0;
  for (NodeId id : world.nodes()) {
    auto content = world.disk(id).durable_content(kLogPath);
    if (!content) {
      model.violation(fmt::format("{}: log file missing from the durable disk", world.name(id)));
      continue;
    }
    delivered += model.check_log(id, world.name(id), parse_log(*content), "final");
  }
  for (NodeId s : world.nodes()) {
    for (NodeId r : world.nodes()) {
      if (s == r) continue;
      if (model.acked_of(s, r) <= acked_at_heal[{s, r}]) {
        model.violation(fmt::format(
            "liveness: no message from {} to {} acknowledged after healing (stuck at {})",
            world.name(s), world.name(r), model.acked_of(s, r)));
      }
    }
  }
  return delivered;
}

void fill_report(SimWorld& world, Model& model, uint64_t delivered, SelftestReport& report) {
  report.trace_hash = world.trace_hash();
  report.events = world.events();
  report.sim_seconds = world.now().seconds();
  report.messages_acked = model.acks();
  report.messages_delivered = delivered;
  report.appends_durable = model.appends_durable();
  report.recoveries_checked = model.recoveries_checked();
  for (NodeId id : world.nodes()) {
    report.fail_stop_restarts += world.restarts_requested(id);
    report.disk_eio_injected += world.disk(id).stats().injected_eio;
  }
  report.net_sent = world.network().stats().sent;
  report.net_dropped = world.network().stats().dropped;
  report.net_duplicated = world.network().stats().duplicated;
  report.violations = model.violations();
  report.passed = report.violations.empty();
  if (!report.passed) {
    for (NodeId id : world.nodes()) {
      for (const auto& line : world.log_ring(id).lines()) {
        report.failure_logs += world.name(id) + " " + line + "\n";
      }
    }
  }
}

}  // namespace

SelftestReport run_selftest(const SelftestOptions& options) {
  SelftestReport report;
  report.seed = options.seed;
  Model model(kSelftestNodes);  // outlives the world and its nodes
  SimWorld world(options.seed);
  add_selftest_nodes(world, model);

  auto mix_rng = world.random_stream("fault-mix");
  report.mix = draw_mix(*mix_rng);
  MonoTime heal_at = world.now() + options.fault_phase;
  Nemesis nemesis(world, report.mix, heal_at, report);
  nemesis.start();
  world.run_until(heal_at);

  heal(world);
  AckedCounts acked_at_heal;
  for (NodeId s : world.nodes()) {
    for (NodeId r : world.nodes()) acked_at_heal[{s, r}] = model.acked_of(s, r);
  }
  world.run_until(heal_at + options.heal_phase);

  const uint64_t delivered = check_final_state(world, model, acked_at_heal);
  fill_report(world, model, delivered, report);
  return report;
}

std::string selftest_report_text(const SelftestReport& r, double wall) {
  const auto& m = r.mix;
  std::string out = fmt::format("quire sim selftest: seed {}\n", r.seed);
  out += fmt::format(
      "  fault mix: crashes={} partitions={} message_faults={} (drop={:.3f} dup={:.3f} reorder={}) "
      "disk_faults={} (eio={:.3f}) clock_skew={} interval={}ms\n",
      m.crashes, m.partitions, m.message_faults, m.drop, m.duplicate, m.reorder, m.disk_faults,
      m.disk_eio, m.clock_skew, m.fault_interval_ms);
  out += fmt::format("  simulated {:.1f} s in {:.2f} s wall ({:.0f}x), {} events\n", r.sim_seconds,
                     wall, wall > 0 ? r.sim_seconds / wall : 0.0, r.events);
  out +=
      fmt::format("  messages acked {}, delivered {}; durable appends {}; recoveries checked {}\n",
                  r.messages_acked, r.messages_delivered, r.appends_durable, r.recoveries_checked);
  out += fmt::format(
      "  faults: crashes {}, fail-stop restarts {}, partitions {}, clock skews {}, disk EIO {}, "
      "messages sent {} dropped {} duplicated {}\n",
      r.crashes, r.fail_stop_restarts, r.partitions, r.clock_skews, r.disk_eio_injected, r.net_sent,
      r.net_dropped, r.net_duplicated);
  for (const auto& v : r.violations) out += fmt::format("  VIOLATION: {}\n", v);
  if (!r.passed) {
    out += fmt::format("  replay: quire sim selftest --seed {}\n", r.seed);
    out += fmt::format("---- node logs ----\n{}", r.failure_logs);
  }
  out += fmt::format("{} trace=0x{:016x}\n", r.passed ? "PASSED" : "FAILED", r.trace_hash);

  return out;
}

std::string selftest_report_json(const SelftestReport& r, double wall) {
  const auto& m = r.mix;
  nlohmann::ordered_json j;
  j["seed"] = r.seed;
  j["trace_hash"] = fmt::format("0x{:016x}", r.trace_hash);
  j["events"] = r.events;
  j["sim_seconds"] = r.sim_seconds;
  j["wall_seconds"] = wall;
  j["passed"] = r.passed;
  j["messages_acked"] = r.messages_acked;
  j["messages_delivered"] = r.messages_delivered;
  j["appends_durable"] = r.appends_durable;
  j["recoveries_checked"] = r.recoveries_checked;
  j["fault_mix"] = {{"crashes", m.crashes},
                    {"partitions", m.partitions},
                    {"message_faults", m.message_faults},
                    {"drop", m.drop},
                    {"duplicate", m.duplicate},
                    {"reorder", m.reorder},
                    {"disk_faults", m.disk_faults},
                    {"disk_eio", m.disk_eio},
                    {"clock_skew", m.clock_skew},
                    {"fault_interval_ms", m.fault_interval_ms}};
  j["violations"] = r.violations;
  return j.dump(2) + "\n";
}

}  // namespace quire
