#include "repl/replica_node.h"

namespace quire {

ReplicaNode::ReplicaNode(Env& env, ReplicaConfig config, const KmsFactory& kms)
    : env_(env), config_(std::move(config)) {
  ReplicationOptions ro;
  ro.servers = config_.servers;
  ro.write_quorum = config_.write_quorum;
  ro.term = config_.term;
  client_ = std::make_unique<ReplicationClient>(env, ro);
  client_->set_preferred(config_.preferred_server);
  kms_ = kms(env);
  QUIRE_ASSERT(kms_ != nullptr);
  engine_ = std::make_unique<Engine>(env, *client_, *kms_, config_.engine);
  if (config_.role == ReplicaRole::kPrimary) {
    writer_ = std::make_unique<RecordWriter>(*client_, config_.chain_head, config_.next_lsn);
    primary_ = std::make_unique<Primary>(env, *engine_, *writer_, config_.primary);
  } else {
    standby_ = std::make_unique<Standby>(env, *client_, *engine_, config_.standby);
  }
  // Exactly one role, the configured one.
  QUIRE_ASSERT((primary_ != nullptr) == (config_.role == ReplicaRole::kPrimary));
  QUIRE_ASSERT((standby_ != nullptr) == (config_.role == ReplicaRole::kStandby));
}

ReplicaNode::~ReplicaNode() {
  // Roles first: they use the engine, the writer and the client.
  standby_.reset();
  primary_.reset();
  writer_.reset();
  engine_.reset();
  kms_.reset();
  client_.reset();
}

void ReplicaNode::start() {
  // A node starts once: a restarted node is a new ReplicaNode.
  QUIRE_ASSERT(!started_);
  if (standby_) {
    standby_->start();
    started_ = true;
    return;
  }
  env_.executor().spawn("primary-start", start_primary());
}

Task<void> ReplicaNode::start_primary() {
  QUIRE_ASSERT(primary_ != nullptr && !primary_->running());
  start_status_ = co_await primary_->start();
  started_ = start_status_.is_ok();
  if (!started_) {
    env_.log().error("replica", 43001, "primary could not start", {{"error", start_status_}});
  }
}

}  // namespace quire
