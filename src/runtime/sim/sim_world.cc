#include "runtime/sim/sim_world.h"

#include <fmt/format.h>

#include "base/hash.h"

namespace quire {

class SimWorld::NodeEnv : public Env {
 public:
  NodeEnv(SimWorld& world, NodeId node, uint32_t incarnation)
      : world_(world),
        node_(node),
        incarnation_(incarnation),
        exec_(world.scheduler_, node),
        random_(world.seed_, stream_name("default")),
        net_(world.network_.make_net(node)),
        disk_(world.disk(node).make_disk(exec_)),
        logger_(&world.log_ring(node), this, world.options_.log_min) {}

  std::string_view node_name() const override { return world_.name(node_); }
  Executor& executor() override { return exec_; }
  Clock& clock() override { return world_.clock(node_); }
  Random& random() override { return random_; }
  std::unique_ptr<Random> random_stream(std::string_view concern) override {
    return std::make_unique<SimRandom>(world_.seed_, stream_name(concern));
  }
  Net& net() override { return *net_; }
  Disk& disk() override { return *disk_; }
  Logger& log() override { return logger_; }
  void request_restart(const Status& why) override { world_.on_restart_request(node_, why); }
  void abort_process(const Status& why) override { world_.on_abort(node_, why); }

 private:
  // A restarted node draws new numbers: the incarnation is part of every stream's name.
  std::string stream_name(std::string_view concern) const {
    return fmt::format("node/{}/{}/{}", world_.name(node_), incarnation_, concern);
  }

  SimWorld& world_;
  NodeId node_;
  uint32_t incarnation_;
  Executor exec_;
  SimRandom random_;
  std::unique_ptr<Net> net_;
  std::unique_ptr<Disk> disk_;
  Logger logger_;
};

struct SimWorld::NodeSlot {
  NodeSlot(SimWorld& w, NodeId id, std::string n, Factory f)
      : name(std::move(n)),
        factory(std::move(f)),
        disk(w.seed_, name),
        clock(w.scheduler_),
        ring(w.options_.log_ring_lines, w.options_.log_ring_bytes) {
    (void)id;
  }
  std::string name;
  Factory factory;
  SimDiskStore disk;
  SimClock clock;
  RingLogSink ring;
  uint32_t incarnation = 0;
  uint32_t restarts_requested = 0;
  bool restart_pending = false;
  std::unique_ptr<NodeEnv> env;
  std::unique_ptr<NodeApp> app;
};

SimWorld::SimWorld(uint64_t seed, Options options)
    : seed_(seed), options_(options), network_(scheduler_, seed) {
  scheduler_.fold_trace(seed);
}

SimWorld::~SimWorld() {
  // Node tasks reference their apps and envs: destroy tasks first, then the nodes.
  for (NodeId id = 1; id <= nodes_.size(); ++id) {
    if (slot(id).app) {
      scheduler_.destroy_node(id);
      slot(id).app.reset();
      slot(id).env.reset();
    }
  }
}

std::unique_ptr<Random> SimWorld::random_stream(std::string_view concern) const {
  return std::make_unique<SimRandom>(seed_, fmt::format("world/{}", concern));
}

SimWorld::NodeSlot& SimWorld::slot(NodeId node) {
  QUIRE_ASSERT(node >= 1 && node <= nodes_.size());
  return *nodes_[node - 1];
}
const SimWorld::NodeSlot& SimWorld::slot(NodeId node) const {
  QUIRE_ASSERT(node >= 1 && node <= nodes_.size());
  return *nodes_[node - 1];
}

NodeId SimWorld::add_node(const std::string& name, Factory factory) {
  QUIRE_ASSERT(!find(name).has_value());
  auto id = static_cast<NodeId>(nodes_.size() + 1);
  nodes_.push_back(std::make_unique<NodeSlot>(*this, id, name, std::move(factory)));
  network_.add_host(name, id);
  return id;
}

std::optional<NodeId> SimWorld::find(const std::string& name) const {
  for (NodeId id = 1; id <= nodes_.size(); ++id) {
    if (nodes_[id - 1]->name == name) return id;
  }
  return std::nullopt;
}

std::vector<NodeId> SimWorld::nodes() const {
  std::vector<NodeId> out;
  for (NodeId id = 1; id <= nodes_.size(); ++id) out.push_back(id);
  return out;
}

void SimWorld::start(NodeId node) {
  NodeSlot& s = slot(node);
  if (s.app) return;
  s.incarnation++;
  s.restart_pending = false;
  network_.node_up(node);
  s.env = std::make_unique<NodeEnv>(*this, node, s.incarnation);
  s.app = s.factory(*s.env);
  QUIRE_ASSERT(s.app != nullptr);
  scheduler_.fold_trace(hash_fold(0x57A27ull, (uint64_t{node} << 32) | s.incarnation));
  s.app->start();
}

void SimWorld::pause(NodeId node, Nanos d) {
  scheduler_.pause_node(node, now() + d);
}

void SimWorld::crash(NodeId node, UnsyncedOnCrash mode) {
  NodeSlot& s = slot(node);
  if (!s.app) return;
  scheduler_.destroy_node(node);
  s.app.reset();
  s.env.reset();
  network_.node_down(node);
  s.disk.crash(mode);
  scheduler_.fold_trace(hash_fold(0xC4A54ull, (uint64_t{node} << 8) | static_cast<uint64_t>(mode)));
}

void SimWorld::on_abort(NodeId node, const Status& why) {
  NodeSlot& s = slot(node);
  aborts_.push_back(AbortRecord{node, now(), why.to_string()});
  uint32_t inc = s.incarnation;
  // Like on_restart_request, the crash runs outside the aborting task's stack; the node
  // stays down, as a process that died would.
  scheduler_.post(kWorldNode, [this, node, inc] {
    if (slot(node).incarnation != inc || !slot(node).app) return;
    crash(node, UnsyncedOnCrash::kLose);
  });
}

void SimWorld::on_restart_request(NodeId node, const Status& why) {
  NodeSlot& s = slot(node);
  s.restarts_requested++;
  if (s.restart_pending) return;
  s.restart_pending = true;
  uint32_t inc = s.incarnation;
  (void)why;  // the node logged it; the world only acts on it
  // Not inside the caller's stack: the crash destroys the very task asking for it.
  scheduler_.post(kWorldNode, [this, node, inc] {
    if (slot(node).incarnation != inc || !slot(node).app) return;
    crash(node, UnsyncedOnCrash::kLose);
    scheduler_.post_at(kWorldNode, now() + options_.restart_delay, [this, node] {
      if (!slot(node).app) start(node);
    });
  });
}

bool SimWorld::is_up(NodeId node) const {
  return slot(node).app != nullptr;
}
uint32_t SimWorld::incarnation(NodeId node) const {
  return slot(node).incarnation;
}
uint32_t SimWorld::restarts_requested(NodeId node) const {
  return slot(node).restarts_requested;
}
const std::string& SimWorld::name(NodeId node) const {
  return slot(node).name;
}
SimDiskStore& SimWorld::disk(NodeId node) {
  return slot(node).disk;
}
SimClock& SimWorld::clock(NodeId node) {
  return slot(node).clock;
}
RingLogSink& SimWorld::log_ring(NodeId node) {
  return slot(node).ring;
}
Env* SimWorld::env(NodeId node) {
  return slot(node).env.get();
}
NodeApp* SimWorld::app(NodeId node) {
  return slot(node).app.get();
}

void SimWorld::dump_log(NodeId node, std::FILE* out) const {
  const NodeSlot& s = slot(node);
  s.ring.dump(out, s.name + " ");
}

void SimWorld::dump_logs(std::FILE* out) const {
  for (NodeId id = 1; id <= nodes_.size(); ++id) dump_log(id, out);
}

void SimWorld::run_until(MonoTime t) {
  while (true) {
    auto next = next_event_time();
    if (!next || *next > t) break;
    scheduler_.run_next();
  }
  if (scheduler_.now() < t) scheduler_.advance_to(t);
}

bool SimWorld::run_until(const std::function<bool()>& done, MonoTime limit) {
  while (!done()) {
    auto next = next_event_time();
    if (!next || *next > limit) {
      if (scheduler_.now() < limit) scheduler_.advance_to(limit);
      return done();
    }
    scheduler_.run_next();
  }
  return true;
}

// The next event, once the idle waits had their turn: the simulated loop has nothing else
// to do whenever no event is due at the current time.
std::optional<MonoTime> SimWorld::next_event_time() {
  scheduler_.wake_idle();
  return scheduler_.next_event_time();
}

void SimWorld::run_to_quiescence(MonoTime limit) {
  while (true) {
    auto next = next_event_time();
    if (!next || *next > limit) return;
    scheduler_.run_next();
  }
}

}  // namespace quire
