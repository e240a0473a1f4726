// A local cluster's layout (`quire cluster`): every process, address and directory of a
// cluster that runs on one machine, as DIR/cluster.json holds it.
//
// DIR/
//   cluster.json        this spec
//   certs/              the cluster CA (ca.crt, ca.key) and certs/NAME/ for every node
//   cmk/cmk.key         the CMK file the compute nodes share (mode 0600)
//   etcd/               etcd's data directory
//   NAME/               a page server's data directory
//   logs/NAME.log       every process's output (stdout and stderr, appended)
//   run/                the supervisor's pid, lock and state.json
//
// Ports from the base port P: etcd's client port P and peer port P+1, page server i at
// P+10+i, compute node i's Redis port at P+20+i (i from 0). With `proxies` (the real chaos
// harness, fault_proxy.h), the nodes and the page servers' peers reach page server i
// through a fault-injecting proxy at P+30+i and etcd through one at P+2; the harness runs
// the proxies, so such a cluster only works while it does.
//
// This is tool code (it starts processes), not node code: it uses POSIX directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/pickup.h"

namespace quire::cluster {

inline constexpr size_t kPageServersMax = 9;
inline constexpr size_t kComputeNodesMax = 9;
// Ports a cluster may use from its base port: P .. P+39.
inline constexpr uint16_t kClusterPortsSpan = 40;
// The largest `quire node --group-pipeline-min` (a commit queue holds 4096 batches).
inline constexpr size_t kGroupPipelineMinMax = 4096;
// The largest `quire node --group-gather-us`.
inline constexpr int64_t kGroupGatherUsMax = 100000;

enum class ProcessKind : uint8_t { kEtcd = 1, kPageServer = 2, kNode = 3 };
std::string_view process_kind_name(ProcessKind kind);

struct ClusterSpec {
  std::string dir;  // absolute
  std::string name = "quire";
  uint16_t base_port = 7100;
  size_t pageservers = 3;
  size_t standbys = 2;  // compute nodes: 1 + standbys, all candidates
  // What a compute node does with a checkpoint whose keystore is older than its own
  // (`quire node --pickup-policy`; the real chaos harness runs every policy).
  PickupPolicy pickup_policy = PickupPolicy::kAccept;
  size_t write_quorum = 2;
  // `quire node --group-pipeline-min` for every compute node; 0: the node's default.
  size_t group_pipeline_min = 0;
  // `quire node --group-gather-us` for every compute node; -1: the node's default.
  int64_t group_gather_us = -1;
  bool tls = true;  // mutual TLS between page servers and compute nodes
  // etcd's clients too (https, --client-cert-auth, its certificate from the cluster's CA):
  // what init writes with tls; a cluster.json without the field (older) keeps http.
  bool etcd_tls = true;
  bool proxies = false;  // route through fault proxies (see above)
  std::string etcd_binary = "/usr/bin/etcd";
  // The Redis AUTH password of every compute node (empty: none). Kept in DIR/requirepass
  // (mode 0600), never in cluster.json; the nodes read it from there (--requirepass-file).
  std::string requirepass;

  size_t compute_nodes() const { return 1 + standbys; }
  std::string etcd_client() const;  // "127.0.0.1:P"
  std::string etcd_peer() const;
  std::string pageserver_name(size_t i) const;  // "ps1", ...
  std::string pageserver_address(size_t i) const;
  // Where the cluster's processes dial page server i and etcd: the proxy when `proxies`.
  std::string pageserver_proxy_address(size_t i) const;
  std::string etcd_proxy_address() const;
  std::string pageserver_dial_address(size_t i) const;
  std::string etcd_dial_address() const;
  std::string node_name(size_t i) const;  // "node1", ...
  std::string node_address(size_t i) const;
  std::string cmk_path() const;
  std::string requirepass_path() const;
  std::string log_path(const std::string& process) const;
  std::string run_dir() const;
};

// One process the supervisor runs.
struct ProcessSpec {
  std::string name;
  ProcessKind kind = ProcessKind::kNode;
  std::string address;            // where it serves (etcd: its client address)
  std::vector<std::string> argv;  // argv[0] is the program's path
};

// InvalidArgument naming what is wrong (counts, ports beyond 65535, a quorum that is not
// a majority-reaching 1..N).
Status validate(const ClusterSpec& spec);
// Reads DIR/cluster.json. NotFound when DIR holds no cluster; InvalidArgument when the
// file is malformed.
Result<ClusterSpec> load_spec(const std::string& dir);
// Writes DIR/cluster.json (temp file, then rename).
Status save_spec(const ClusterSpec& spec);

// A Redis AUTH password: at most kPasswordBytesMax bytes, not empty, no CR, LF or NUL (it
// travels in a file of one line and on command lines).
inline constexpr size_t kPasswordBytesMax = 512;
Status validate_password(std::string_view password);
// Reads a password file: its one line (a final "\n" or "\r\n" is not part of it), then
// validate_password. NotFound / InvalidArgument naming the file.
Result<std::string> read_password_file(const std::string& path);

// Creates a new cluster in spec.dir: refuses (InvalidArgument) a directory that already
// holds cluster.json, then writes the certificates, the CMK file and cluster.json.
Status init_cluster(const ClusterSpec& spec);

// Every process of the cluster in start order (etcd, page servers, compute nodes);
// `quire` is the quire program's path.
std::vector<ProcessSpec> cluster_processes(const ClusterSpec& spec, const std::string& quire);

}  // namespace quire::cluster
