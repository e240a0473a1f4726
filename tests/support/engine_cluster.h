// Test support: a simulated page service (three page servers) with compute nodes that
// each run an Engine, sharing one simulated KMS.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crypto/sim_kms.h"
#include "engine/engine.h"
#include "pagelog/page_server.h"
#include "pagelog/page_service_link.h"
#include "pagelog/record_writer.h"
#include "support/sim_node.h"

namespace quire::testing_support {

// What a compute node runs: its link to the page service (replication client and record
// writer, the same wiring as the real-loop cluster of `quire bench engine`), KMS handle and
// engine. Owned by the node, so a crash destroys them with it.
class EngineNode : public NodeApp {
 public:
  EngineNode(Env& env, SimKmsService& kms_service, std::vector<Address> servers,
             const EngineOptions& options, Lsn chain_head, Lsn next_lsn)
      : env_(env),
        link_(env, std::move(servers), ReplicationOptions().term, chain_head, next_lsn),
        client(&link_.client()),
        writer(&link_.writer()) {
    kms = std::make_unique<SimKms>(kms_service, env);
    engine = std::make_unique<Engine>(env, *client, *kms, options);
  }
  // The engine and the KMS handle before the link they use.
  ~EngineNode() override {
    engine.reset();
    kms.reset();
  }
  void start() override {}
  Env& env() { return env_; }

 private:
  Env& env_;
  PageServiceLink link_;  // the replication client (W=2) and record writer

 public:
  ReplicationClient* client;
  RecordWriter* writer;
  std::unique_ptr<SimKms> kms;
  std::unique_ptr<Engine> engine;
};

// The test's handle on a compute node; `app` is null while the node is down.
struct ComputeNode {
  NodeId id;
  std::string name;
  EngineOptions options;
  std::vector<Address> servers;  // the page servers its replication client talks to
  Lsn chain_head;                // where the next incarnation's writer continues the chain
  Lsn next_lsn{1};
  EngineNode* app = nullptr;
  Engine& engine() { return *app->engine; }
  RecordWriter& writer() { return *app->writer; }
  Env& env() { return app->env(); }

  // The page service's latest completed checkpoint (its completion record).
  Task<Result<Record>> latest_checkpoint(Nanos timeout = Nanos(std::chrono::seconds(2))) {
    co_return co_await app->client->latest_checkpoint(env().executor().deadline_after(timeout));
  }
  // Installs the latest checkpoint (a stale keystore is installed, as the standby asks
  // under accept and on every load); Unavailable as a pick-up result when there is none.
  Task<PickupResult> install_latest(InstallMode mode) {
    auto latest = co_await latest_checkpoint();
    if (!latest.is_ok()) {
      PickupResult r;
      r.outcome = PickupOutcome::kUnavailable;
      r.detail = latest.status();
      co_return r;
    }
    co_return co_await engine().install_checkpoint(std::move(*latest), mode,
                                                   StaleKeystoreChoice::kInstall);
  }
};

// A set of page servers that are each other's peers (and nobody else's).
struct ServerGroup {
  std::vector<Address> addresses;
  std::vector<NodeId> nodes;
};

class EngineCluster {
 public:
  explicit EngineCluster(uint64_t seed, size_t servers = 3) : world_(seed) {
    kms_random_ = world_.random_stream("kms-service");
    kms_service_ = std::make_unique<SimKmsService>(*kms_random_);
    ServerGroup group = add_server_group("ps", servers);
    addrs_ = std::move(group.addresses);
    servers_ = std::move(group.nodes);
  }

  SimWorld& world() { return world_; }
  SimKmsService& kms_service() { return *kms_service_; }
  // The cluster's own page servers (the first group).
  const std::vector<NodeId>& servers() const { return servers_; }
  const std::vector<Address>& addresses() const { return addrs_; }

  // Another, separate page service in the same world: servers named prefix1..prefixN
  // at "prefixI:7000", started, peers of each other only. Compute nodes use it through
  // the add_compute overload that takes addresses.
  ServerGroup add_server_group(const std::string& prefix, size_t count = 3) {
    ServerGroup group;
    for (size_t i = 1; i <= count; ++i)
      group.addresses.push_back(prefix + std::to_string(i) + ":7000");
    for (size_t i = 0; i < count; ++i) {
      PageServerOptions o;
      o.listen = group.addresses[i];
      o.store.segment_bytes_max = 64 << 10;
      for (size_t j = 0; j < count; ++j) {
        if (j != i) o.peers.push_back(group.addresses[j]);
      }
      group.nodes.push_back(world_.add_node(prefix + std::to_string(i + 1), [o](Env& env) {
        return std::make_unique<PageServer>(env, o);
      }));
    }
    for (NodeId n : group.nodes) world_.start(n);
    return group;
  }

  // A compute node with an engine over the cluster's page servers (its writer starts an
  // empty log).
  ComputeNode& add_compute(const std::string& name, EngineOptions options = {}) {
    return add_compute(name, std::move(options), addrs_);
  }
  // The same over other page servers (e.g. a group from add_server_group).
  ComputeNode& add_compute(const std::string& name, EngineOptions options,
                           std::vector<Address> servers) {
    compute_.push_back(std::make_unique<ComputeNode>());
    ComputeNode* c = compute_.back().get();
    c->name = name;
    c->options = std::move(options);
    c->servers = std::move(servers);
    c->id = world_.add_node(name, [this, c](Env& env) {
      auto app = std::make_unique<EngineNode>(env, *kms_service_, c->servers, c->options,
                                              c->chain_head, c->next_lsn);
      c->app = app.get();
      return app;
    });
    world_.start(c->id);
    return *c;
  }

  // A started node that runs nothing of its own, for test coroutines that act as a
  // client or a tool (see run_on).
  NodeId add_tool_node(const std::string& name) {
    NodeId id = world_.add_node(name, [](Env&) { return std::make_unique<IdleApp>(); });
    world_.start(id);
    return id;
  }

  void crash(ComputeNode& c) {
    world_.crash(c.id, UnsyncedOnCrash::kLose);
    c.app = nullptr;
  }
  void restart(ComputeNode& c, Lsn chain_head, Lsn next_lsn) {
    c.chain_head = chain_head;
    c.next_lsn = next_lsn;
    world_.start(c.id);
  }

  template <typename F>
  bool run(ComputeNode& c, F body, Nanos limit = Nanos(std::chrono::seconds(600))) {
    return run_in_node(world_, c.env(), std::move(body), limit);
  }
  // The same on any running node (a tool node, a page server).
  template <typename F>
  bool run_on(NodeId node, F body, Nanos limit = Nanos(std::chrono::seconds(600))) {
    Env* env = world_.env(node);
    QUIRE_ASSERT(env != nullptr);
    return run_in_node(world_, *env, std::move(body), limit);
  }

 private:
  SimWorld world_;
  std::unique_ptr<Random> kms_random_;
  std::unique_ptr<SimKmsService> kms_service_;
  std::vector<Address> addrs_;
  std::vector<NodeId> servers_;
  std::vector<std::unique_ptr<ComputeNode>> compute_;
};

}  // namespace quire::testing_support
