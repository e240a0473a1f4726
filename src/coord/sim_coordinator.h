// The simulator's coordinator: a node with etcd's semantics for what Quire uses (leases,
// the election API, revisions), and the Coordinator client that talks to it over the
// node network (RPC, rpc.h). The network can partition it and the nemesis can crash and
// restart it like any node; production runs etcd instead (coordinator.h has the model).
//
// What it keeps from etcd:
//  - Linearizable: one node applies every operation in order and makes each durable
//    (its state file, synced and renamed into place) before answering it.
//  - A revision counter that every change moves on; a key's create revision is the
//    revision of the change that created it, so election epochs strictly increase.
//  - Leases expire on the coordinator's own clock (checked every expiry_check_interval);
//    expiry deletes the lease's keys. A restart gives every lease a fresh TTL (etcd's
//    leases outlive their TTL across leader changes the same way).
//  - campaign waits for the lower keys to go and does not re-check its own key; a wait
//    that ends without leadership withdraws the candidacy (as etcd does when the HTTP
//    request is cancelled).
// Bounds: leases_max, keys_max, names and values by size, waits by wait_max; beyond them
// a request gets Busy or InvalidArgument. A state file it cannot read keeps the node from
// serving (every request: Unavailable), logged; it never aborts.
//
// Wire (op, body; every integer a varint64, strings length-prefixed; durations in ns):
//   1 grant      ttl                        -> lease, ttl
//   2 keepalive  lease                      -> ttl
//   3 revoke     lease                      -> -
//   4 campaign   election, lease, value, wait -> leadership
//   5 leader     election                   -> leadership
//   6 observe    election, known_epoch, wait -> leadership
//   7 resign     election, key, epoch       -> -
// where leadership is election, key, epoch, lease, value.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "coord/coordinator.h"
#include "pagelog/rpc.h"
#include "runtime/env.h"
#include "runtime/sync.h"

namespace quire {

struct SimCoordinatorOptions {
  Address listen = "coord:2379";
  Nanos expiry_check_interval = std::chrono::milliseconds(100);
  Nanos wait_max = std::chrono::seconds(30);  // longest campaign or observe wait
  size_t leases_max = 1024;
  size_t keys_max = 4096;
  size_t name_bytes_max = 512;    // an election name or key
  size_t value_bytes_max = 4096;  // a published value
};

class SimCoordinatorNode : public NodeApp {
 public:
  SimCoordinatorNode(Env& env, SimCoordinatorOptions options);
  ~SimCoordinatorNode() override;
  void start() override;

  // For tests and checkers.
  bool serving() const { return serving_; }
  uint64_t revision() const { return revision_; }
  size_t lease_count() const { return leases_.size(); }

 private:
  struct Kv {
    std::string value;
    uint64_t create_revision = 0;
    uint64_t mod_revision = 0;
    int64_t lease = 0;
  };
  struct LeaseState {
    Nanos ttl{0};
    MonoTime expires_at;
  };

  Task<void> run();
  Task<void> expiry_loop();
  Task<RpcResponse> handle(const RpcRequest& request);
  Task<Result<Bytes>> dispatch(uint8_t op, ByteView body);
  Task<Result<Bytes>> op_grant(ByteView body);
  Task<Result<Bytes>> op_keepalive(ByteView body);
  Task<Result<Bytes>> op_revoke(ByteView body);
  Task<Result<Bytes>> op_campaign(ByteView body);
  Task<Result<Bytes>> op_leader(ByteView body);
  Task<Result<Bytes>> op_observe(ByteView body);
  Task<Result<Bytes>> op_resign(ByteView body);

  // Changes, each under mu_ and made durable before it returns.
  Task<Status> commit();  // persists the state, then wakes every waiter
  bool revoke_locked(int64_t lease);
  Result<Leadership> put_candidate(const std::string& election, int64_t lease,
                                   const std::string& value, bool* changed);
  std::optional<Leadership> current_leader(const std::string& election) const;
  bool lower_key_exists(const std::string& election, uint64_t epoch) const;
  Deadline wait_deadline(uint64_t wait_ns) const;

  Task<Status> load_state();
  Bytes encode_state() const;
  Status decode_state(ByteView in);

  Env& env_;
  SimCoordinatorOptions options_;
  std::unique_ptr<RpcServer> rpc_;
  AsyncMutex mu_;
  WaitQueue changed_;
  bool serving_ = false;
  uint64_t revision_ = 1;
  std::map<int64_t, LeaseState> leases_;
  std::map<std::string, Kv> kvs_;
};

// A Coordinator over RPC to a SimCoordinatorNode.
class SimCoordinatorClient : public Coordinator {
 public:
  // How much of a call's deadline is kept for the answer to travel back, so a wait the
  // server ends still reaches the caller in time.
  static constexpr Nanos kAnswerMargin = std::chrono::milliseconds(200);

  SimCoordinatorClient(Env& env, Address server);
  ~SimCoordinatorClient() override;

  Task<Result<CoordinatorLease>> grant_lease(Nanos ttl, Deadline deadline) override;
  Task<Result<Nanos>> keep_alive(int64_t lease, Deadline deadline) override;
  Task<Status> revoke_lease(int64_t lease, Deadline deadline) override;
  Task<Result<Leadership>> campaign(std::string election, int64_t lease, std::string value,
                                    Deadline deadline) override;
  Task<Result<Leadership>> leader(std::string election, Deadline deadline) override;
  Task<Result<Leadership>> observe(std::string election, uint64_t known_epoch,
                                   Deadline deadline) override;
  Task<Status> resign(Leadership who, Deadline deadline) override;

 private:
  uint64_t wait_ns(Deadline deadline) const;
  Task<Result<Leadership>> call_leadership(uint8_t op, Bytes body, Deadline deadline);

  Env& env_;
  RpcClient rpc_;
};

// The leadership encoding both sides share (exposed for tests).
void encode_leadership(const Leadership& l, Bytes& out);
Result<Leadership> decode_leadership(ByteView in);

}  // namespace quire
