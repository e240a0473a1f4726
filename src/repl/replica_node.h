// A compute node of the replica set, in either world: its replication client, KMS handle,
// engine and record writer, and the primary or standby role over them. Everything is
// owned by the node, so a crash destroys it with the node.
//
// Two ways to run:
//  - Fixed role (no coordinator): the configured primary bootstraps a new database at the
//    configured term; standbys follow. Tests and the chaos scenarios of one primary.
//  - Elected (a coordinator factory is given): every node starts as a standby and campaigns
//    through an Elector. The winner takes over at its epoch (promote(): a new database is
//    bootstrapped when no page server of the read quorum holds anything). It acknowledges
//    writes only while Elector::may_lead holds; when deposed (lease lost, or a page server
//    fenced it), it steps down to a standby that rebuilds from the latest checkpoint and
//    the log, and campaigns again.
// A role's objects are retired, not destroyed, when the node changes role: a cancelled task
// still runs to its next wait. They are destroyed once quiescent (swept at the next change).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "coord/elector.h"
#include "crypto/kms.h"
#include "engine/engine.h"
#include "pagelog/record_writer.h"
#include "repl/primary.h"
#include "repl/standby.h"
#include "repl/takeover.h"
#include "runtime/log_limiter.h"

namespace quire {

enum class ReplicaRole : uint8_t { kPrimary = 1, kStandby = 2 };

struct ReplicaConfig {
  ReplicaRole role = ReplicaRole::kStandby;  // fixed-role mode only
  std::vector<Address> servers;
  size_t write_quorum = 2;
  Term term{1};
  size_t preferred_server = 0;  // reads try this page server first
  EngineOptions engine;
  PrimaryOptions primary;
  StandbyOptions standby;
  TakeOverOptions takeover;
  // Elected mode: the election (ElectorOptions::election, value) and its timing.
  ElectorOptions elector;
  // Pause between two take-over attempts while still leader.
  Nanos takeover_retry_pause = 200ms;
  // Where a primary's record chain continues (a new database: 0 and 1). Fixed role only.
  Lsn chain_head;
  Lsn next_lsn{1};
};

// How the node's role changes went (elected mode).
struct ReplicaNodeStats {
  uint64_t elections_won = 0;
  uint64_t promotions = 0;  // took over an existing database
  uint64_t bootstraps = 0;  // started a new one
  uint64_t promotion_failures = 0;
  uint64_t step_downs = 0;
  // The last take-over's term and when its fence reached a read quorum (the node's clock).
  uint64_t fenced_term = 0;
  MonoTime fenced_at;
};

class ReplicaNode : public NodeApp {
 public:
  using KmsFactory = std::function<std::unique_ptr<Kms>(Env&)>;
  using CoordinatorFactory = std::function<std::unique_ptr<Coordinator>(Env&)>;
  ReplicaNode(Env& env, ReplicaConfig config, const KmsFactory& kms,
              const CoordinatorFactory& coordinator = {});
  ~ReplicaNode() override;
  // Fixed role: a primary starts (bootstrapping a new database) in a task named
  // "primary-start"; a standby starts its log apply and checkpoint manager. Elected: the
  // standby starts and the elector campaigns.
  void start() override;

  Env& env() { return env_; }
  ReplicaRole role() const { return config_.role; }
  Primary* primary() { return primary_.get(); }
  Standby* standby() { return standby_.get(); }
  Engine& engine() { return *engine_; }
  ReplicationClient& client() { return *client_; }
  Elector* elector() { return elector_.get(); }
  const ReplicaNodeStats& stats() const { return stats_; }
  // A primary's start result: OK once started (check started() first).
  bool started() const { return started_; }
  const Status& start_status() const { return start_status_; }

  // A standby that won leadership with epoch `term` becomes the primary at that term
  // (repl/takeover.h): it fences the page servers, recovers the log's end, publishes it
  // with its commit marker, waits until its own engine applied the recovered tail, then
  // stops following and starts the primary over the same engine (its applied log and
  // ingest kept). When no fenced server holds any record and the engine holds no keys, the
  // database is new and the primary bootstraps it. On failure the node stays a standby at
  // the new term and may be promoted again. InvalidArgument for term 0, a term below the
  // node's, or a node that is not a standby.
  Task<Status> promote(Term term);
  // The primary steps down (its waiters fail with `why`) and the node becomes a standby
  // again, rebuilding from the latest checkpoint and the log, and resigns the coordinator's
  // leadership unless `resign` is kNo (the node was elected again, at a newer epoch, while
  // its take-over at the older one ran). A no-op for a standby.
  enum class Resign : uint8_t { kYes, kNo };
  void step_down(const Status& why, Resign resign = Resign::kYes);

 private:
  Task<void> start_primary();
  // Elected mode: takes over while this node still leads with `won`'s epoch.
  // Whether this node still holds the leadership `won` (the same epoch, lease valid).
  bool leading(const Leadership& won) const;
  Task<void> lead(Leadership won);
  void on_deposed(const Status& why);
  // promote()'s second half, once the log's end is recovered: the commit marker, the wait
  // until this node's engine applied the recovered tail, then the primary.
  Task<Status> continue_database(RecoveredLog recovered);
  // Becomes the primary over the current engine and writer (take-over or bootstrap).
  Task<Status> become_primary(const Primary::TakeOverPoint* at);
  void retire_standby();
  void retire_primary();
  void sweep_retired();

  Env& env_;
  ReplicaConfig config_;
  std::unique_ptr<ReplicationClient> client_;
  std::unique_ptr<Kms> kms_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<Elector> elector_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RecordWriter> writer_;
  std::unique_ptr<Primary> primary_;
  std::unique_ptr<Standby> standby_;
  // Objects of an earlier role, kept until quiescent. Engines retired with a primary are
  // kept with it (its tasks use them).
  struct RetiredPrimary {
    std::unique_ptr<Primary> primary;
    std::unique_ptr<RecordWriter> writer;
    std::unique_ptr<Engine> engine;
  };
  std::vector<RetiredPrimary> retired_primaries_;
  std::vector<std::unique_ptr<Standby>> retired_standbys_;
  bool promoting_ = false;
  LogLimiter takeover_retry_log_{std::chrono::seconds(5)};
  LogLimiter takeover_fenced_log_{std::chrono::seconds(5)};
  bool started_ = false;
  Status start_status_;
  ReplicaNodeStats stats_;
};

}  // namespace quire
