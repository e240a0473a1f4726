// ComputeNode: one Quire compute node as a real process runs it (`quire node`): a
// ReplicaNode in elected mode over the page servers, campaigning through etcd, its CMK in a
// FileKms, and the Redis protocol on its client port. The same node code runs in the
// simulator; this file only assembles it over the real runtime:
//
//   RealEnv ── ReplicaNode (EtcdCoordinator for its Elector; FileKms)
//           ├─ RespServer ── RespCommands (primary_address from the LeaderWatch)
//           ├─ LeaderWatch (its own EtcdCoordinator): the primary this node believes in
//           └─ ProgressReporter ── CommandLink to that primary (QUIRE.REPORT, for WAIT)
//
// The election is "/quire/<cluster>/primary"; a leader publishes its advertised client
// address. Shutdown (SIGTERM) retires from the election first, so a primary gives its lease
// back and a standby takes over without waiting out the TTL, then closes the clients.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "engine/pickup.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire {
class EtcdCoordinator;
class FileKms;
class LeaderWatch;
class ReplicaNode;
namespace resp {
class CommandLink;
class ProgressReporter;
class RespCommands;
class RespServer;
}  // namespace resp
}  // namespace quire

namespace quire::cluster {

// The slow log's bound: each entry holds at most about 5 KiB (32 arguments and the client's
// name, each cut at 128 bytes).
inline constexpr size_t kSlowlogMaxLenMax = 100'000;
// ... and its threshold's (about 11.6 days).
inline constexpr int64_t kSlowlogSlowerThanMaxUs = 1'000'000'000'000;

struct ComputeNodeOptions {
  std::string name;       // the node's name (logs, QUIRE.STATUS, INFO)
  std::string client;     // "host:port" the Redis protocol listens on (port 0: any)
  std::string advertise;  // what the node publishes as its client address (default: client)
  std::vector<std::string> pageservers;
  size_t write_quorum = 2;
  size_t preferred_pageserver = 0;
  std::vector<std::string> etcd;  // "http://host:port" endpoints, or all "https://host:port"
  // For https:// etcd endpoints: the node's own TLS files (--tls-ca, --tls-cert, --tls-key),
  // etcd's server certificate signed by the same CA.
  std::string etcd_tls_ca_file;
  std::string etcd_tls_cert_file;
  std::string etcd_tls_key_file;
  std::string cluster = "quire";  // the election is /quire/<cluster>/primary
  std::string cmk_file;           // the CMK file (FileKms; created when missing)
  std::string requirepass;        // Redis AUTH; also what the node authenticates with
  uint32_t databases = 16;
  // SLOWLOG: calls of at least this many microseconds are logged (negative: none), the
  // newest slowlog_max_len of them kept (Redis's slowlog-log-slower-than, slowlog-max-len).
  int64_t slowlog_log_slower_than_us = 10'000;
  size_t slowlog_max_len = 128;  // at most kSlowlogMaxLenMax
  PickupPolicy pickup_policy = PickupPolicy::kAccept;
  // Queued batches that let a commit group leave while another is in flight
  // (PrimaryOptions::group_pipeline_min); 0: its default.
  size_t group_pipeline_min = 0;
  // The longest a commit group waits to gather the writes of the clients it just answered
  // (PrimaryOptions::group_gather_max), in us; 0: never; -1: its default.
  int64_t group_gather_us = -1;
  uint64_t process_id = 0;
  std::string version = "0.1.0";
};

// InvalidArgument naming the problem (empty name, no page server, a quorum outside 1..N,
// a preferred server out of range, no etcd endpoint or one not http(s)://, https:// without
// the TLS files, a wildcard client
// host without --advertise, no CMK file).
Status validate(const ComputeNodeOptions& options);
std::string election_name(const std::string& cluster);

class ComputeNode {
 public:
  // `sink` may be null and must outlive this.
  ComputeNode(RealLoop& loop, ComputeNodeOptions options, LogSink* sink, Severity min_severity);
  // Destroys the node's tasks, then its parts, then its environment.
  ~ComputeNode();
  ComputeNode(const ComputeNode&) = delete;
  ComputeNode& operator=(const ComputeNode&) = delete;

  // For mutual TLS to the page servers, call env().enable_tls() before start().
  RealEnv& env() { return *env_; }

  // Opens the CMK file, starts the replica node (it campaigns), and listens for clients;
  // runs the loop until all of that is done. Returns the bound client address.
  // InvalidArgument (the CMK file cannot be used, the options), Unavailable (cannot listen),
  // Cancelled (a signal came first), DeadlineExceeded.
  Result<Address> start(Nanos timeout);

  // Retires from the election and waits (up to `timeout`) until this node leads no more,
  // then stops the client server. Runs the loop.
  void shutdown(Nanos timeout);

  ReplicaNode& node() { return *node_; }

 private:
  Status open_kms(Nanos timeout);

  RealLoop& loop_;
  ComputeNodeOptions options_;
  std::unique_ptr<RealEnv> env_;
  std::unique_ptr<FileKms> kms_;  // until the node takes it
  std::unique_ptr<EtcdCoordinator> watch_coordinator_;
  std::unique_ptr<LeaderWatch> watch_;
  std::unique_ptr<ReplicaNode> node_;
  std::unique_ptr<resp::RespCommands> commands_;
  std::unique_ptr<resp::RespServer> server_;
  std::unique_ptr<resp::CommandLink> link_;
  std::unique_ptr<resp::ProgressReporter> reporter_;
};

}  // namespace quire::cluster
