#include "resp/node_facts.h"

namespace quire::resp {

NodeFacts gather_node_facts(ReplicaNode& node) {
  NodeFacts f;
  f.term = node.client().term().value;
  Engine& engine = node.engine();
  f.checkpoint_lsn = engine.installed_checkpoint_lsn();
  f.checkpoint_ts = engine.checkpoint_ts();
  const Keystore& ks = engine.keystore();
  f.keystore_version = ks.version();
  if (auto kek = ks.active_kek()) {
    f.kek_version = *kek;
    auto it = ks.keks().find(*kek);
    if (it != ks.keks().end()) f.cmk_version = it->second.wrapped.cmk_version;
  }
  if (Primary* p = node.primary()) {
    f.state = std::string(primary_state_name(p->state()));
    f.applied_ts = p->applied_ts();
    f.applied_lsn = p->applied_lsn();
    f.commit_lsn = p->applied_lsn();
  } else if (Standby* sb = node.standby()) {
    f.state = std::string(standby_state_name(sb->state()));
    f.applied_ts = sb->applied_ts();
    f.applied_lsn = sb->applied_lsn();
    f.commit_lsn = sb->commit_lsn();
    f.pickups = sb->stats().pickups;
  } else {
    f.state = "none";
  }
  return f;
}

std::pair<std::string, std::string> split_address(std::string_view a) {
  const size_t colon = a.rfind(':');
  if (colon == std::string_view::npos) return {std::string(a), "0"};
  return {std::string(a.substr(0, colon)), std::string(a.substr(colon + 1))};
}

}  // namespace quire::resp
