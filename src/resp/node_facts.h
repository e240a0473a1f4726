// What INFO and QUIRE.STATUS report about a node, read from it once per command.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "repl/replica_node.h"

namespace quire::resp {

struct NodeFacts {
  std::string state;  // the primary's or the standby's state name; "none" without a role
  uint64_t term = 0;
  Timestamp applied_ts;
  Lsn applied_lsn;
  Lsn commit_lsn;  // a standby's commit point seen; a primary's applied LSN
  Lsn checkpoint_lsn;
  Timestamp checkpoint_ts;
  uint64_t keystore_version = 0;
  uint32_t kek_version = 0;               // the active KEK
  uint32_t cmk_version = 0;               // the CMK version wrapping the active KEK
  std::optional<PickupCounters> pickups;  // standbys only
};

NodeFacts gather_node_facts(ReplicaNode& node);

// "host" and "port" of "host:port" (split at the last colon; port "0" when absent).
std::pair<std::string, std::string> split_address(std::string_view address);

}  // namespace quire::resp
