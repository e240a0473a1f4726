// A compute node of the replica set, in either world: its replication client, KMS handle,
// engine and record writer, and the primary or standby role over them. Everything is
// owned by the node, so a crash destroys it with the node.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "crypto/kms.h"
#include "engine/engine.h"
#include "pagelog/record_writer.h"
#include "repl/primary.h"
#include "repl/standby.h"

namespace quire {

enum class ReplicaRole : uint8_t { kPrimary = 1, kStandby = 2 };

struct ReplicaConfig {
  ReplicaRole role = ReplicaRole::kStandby;
  std::vector<Address> servers;
  size_t write_quorum = 2;
  Term term{1};
  size_t preferred_server = 0;  // reads try this page server first
  EngineOptions engine;
  PrimaryOptions primary;
  StandbyOptions standby;
  // Where a primary's record chain continues (a new database: 0 and 1).
  Lsn chain_head;
  Lsn next_lsn{1};
};

class ReplicaNode : public NodeApp {
 public:
  using KmsFactory = std::function<std::unique_ptr<Kms>(Env&)>;
  ReplicaNode(Env& env, ReplicaConfig config, const KmsFactory& kms);
  ~ReplicaNode() override;
  // A primary starts (bootstrapping a new database) in a task named "primary-start";
  // a standby starts its log apply and checkpoint manager.
  void start() override;

  Env& env() { return env_; }
  ReplicaRole role() const { return config_.role; }
  Primary* primary() { return primary_.get(); }
  Standby* standby() { return standby_.get(); }
  Engine& engine() { return *engine_; }
  ReplicationClient& client() { return *client_; }
  // A primary's start result: OK once started (check started() first).
  bool started() const { return started_; }
  const Status& start_status() const { return start_status_; }

 private:
  Task<void> start_primary();

  Env& env_;
  ReplicaConfig config_;
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<Kms> kms_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RecordWriter> writer_;
  std::unique_ptr<Primary> primary_;
  std::unique_ptr<Standby> standby_;
  bool started_ = false;
  Status start_status_;
};

}  // namespace quire
