// The coordinator seam: what Quire needs from a coordination service to choose its
// primary. Production uses etcd (3.4, through its JSON gateway); the simulator runs a
// coordinator node with etcd's semantics (sim_coordinator.h). Quire never decides who
// leads by itself: a node campaigns here, and the election's epoch is the primary's term.
//
// The model is etcd's v3 election API, with its caveats kept visible rather than hidden:
//  - A lease has a TTL (at least kLeaseTtlMin; a shorter request is raised to it, as
//    etcd does). Nobody keeps it alive but its owner (keep_alive). When it expires, the
//    coordinator deletes every key attached to it. A lease can outlive its TTL: a
//    coordinator that restarts, or changes leader, gives every lease a fresh TTL.
//  - campaign() puts the candidate's key `<election>/<lease in hex>` (attached to the
//    lease) and waits until every key under the election with a lower create revision is
//    gone. If the wait ends without leadership (the deadline, or the caller gives up), the
//    candidacy is withdrawn: the key is deleted. Campaigning again with the same lease
//    is idempotent: the same key, the same epoch.
//  - campaign() does not re-check that the candidate's own key survived the wait (etcd
//    3.4 does not). A winner must confirm with leader() that the leader's epoch is its
//    own before it acts, and must treat its term as valid only while its lease is.
//  - The epoch is the leader key's create revision: strictly increasing across the
//    cluster's history, so a later leader always has a higher epoch. It is a fencing
//    token; a lease alone never makes a leader safe (the page servers refuse lower terms).
//
// Every call takes a deadline and returns a typed error, never asserts on the service's
// answers: Unavailable (not reachable: outcome unknown), DeadlineExceeded, NotFound (the
// lease or leader does not exist), Cancelled; InvalidArgument for a malformed answer.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace quire {

// etcd's smallest TTL at its default election timeout (ceil(1.5 x 1 s)).
inline constexpr Nanos kLeaseTtlMin = std::chrono::seconds(2);

// A lease as granted: its id (positive, below 2^63) and TTL.
struct CoordinatorLease {
  int64_t id = 0;
  Nanos ttl{0};
};

// The leader of an election (or a candidate's own key, as campaign returns it).
struct Leadership {
  std::string election;  // the election's name, e.g. "/quire/db1/primary"
  std::string key;       // "<election>/<lease in hex>"
  uint64_t epoch = 0;    // the key's create revision: the primary's term
  int64_t lease = 0;
  std::string value;  // what the leader published (Quire: the node's client address)
  friend bool operator==(const Leadership&, const Leadership&) = default;
};

class Coordinator {
 public:
  virtual ~Coordinator() = default;

  // A new lease of `ttl` (raised to kLeaseTtlMin).
  virtual Task<Result<CoordinatorLease>> grant_lease(Nanos ttl, Deadline deadline) = 0;
  // Renews the lease for its whole TTL and returns that TTL; NotFound once it expired.
  virtual Task<Result<Nanos>> keep_alive(int64_t lease, Deadline deadline) = 0;
  // Ends the lease and deletes its keys. OK when it no longer exists.
  virtual Task<Status> revoke_lease(int64_t lease, Deadline deadline) = 0;

  // Campaigns in `election` under `lease`, publishing `value`; returns once this
  // candidate's key has the lowest create revision (see the caveats above), or fails:
  // NotFound (the lease is gone), DeadlineExceeded (the candidacy was withdrawn).
  virtual Task<Result<Leadership>> campaign(std::string election, int64_t lease, std::string value,
                                            Deadline deadline) = 0;
  // The current leader (linearizable); NotFound when there is none.
  virtual Task<Result<Leadership>> leader(std::string election, Deadline deadline) = 0;
  // Waits until the election has a leader whose epoch is not `known_epoch` (0: any
  // leader) and returns it; DeadlineExceeded when none came by the deadline.
  virtual Task<Result<Leadership>> observe(std::string election, uint64_t known_epoch,
                                           Deadline deadline) = 0;
  // Gives up leadership (or candidacy): deletes the key if its create revision is still
  // `who.epoch`. OK when it was already gone.
  virtual Task<Status> resign(Leadership who, Deadline deadline) = 0;
};

}  // namespace quire
