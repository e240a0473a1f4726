// `quire bench pageserver`: write throughput and latency of the page service through a
// ReplicationClient, against running servers or an in-process server on a data directory.
// With a data directory it also measures, in the same run and on the same disk, the
// baseline every durable write is bound by: one append + fdatasync at a time.
//
// Writes N LOG records (chained by prev_lsn, continuing the servers' chain; every 8th a
// full page image) with W = min(2, servers) and K writes in flight of one record each,
// then, after a complete write phase, get_page calls one at a time from the warm index.
// Prints the figures on stdout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "runtime/env.h"
#include "runtime/real/tcp_net.h"

namespace quire::bench {

inline constexpr uint64_t kPageserverBenchConcurrencyMax = 1024;

struct PageserverBenchOptions {
  std::vector<Address> servers;  // exactly one of servers and data is given
  std::string data;              // run an in-process page server on this directory
  uint64_t records = 0;          // N, at least 1
  uint64_t size = 0;             // payload bytes per record
  uint64_t concurrency = 16;     // K, 1 to kPageserverBenchConcurrencyMax
  uint64_t timeout_ms = 30000;   // the deadline of each write
  std::string json_path;         // also write the figures as JSON here, unless ""
  LogSink* sink = nullptr;       // the nodes' log lines; must outlive the run
  Severity severity = Severity::kWarning;
  // Mutual TLS for the client node and the in-process server; plaintext when absent.
  std::optional<TlsOptions> tls;
};

// Runs the bench and prints its figures. True when every write was acknowledged, false
// when some were not (the report says why); an error when the run could not be made (the
// directory is locked, too few servers answered, the in-process server failed, ...).
Result<bool> run_pageserver_bench(const PageserverBenchOptions& options);

}  // namespace quire::bench
