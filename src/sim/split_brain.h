// The split_brain checker, shared by the scenarios of elected replica sets (`quire chaos
// failover`, `quire chaos kek`): a history of which node acknowledged which write under
// which term and when (simulated time), of when each term's take-over fenced the page
// servers, and of which primary served.
//
// It fails when a write is acknowledged under a term after a higher term had already
// fenced the page servers, or after a higher term had already acknowledged a write: two
// nodes acknowledging as primary at overlapping simulated times. Epochs are unique per
// leadership, so one term is one node's primacy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/time.h"

namespace quire {

class ReplicaNode;

class SplitBrainHistory {
 public:
  // A write a client saw acknowledged by `node`'s primary under `term`, at `at`.
  void acked(std::string_view node, uint64_t term, MonoTime at, std::string_view key);
  // Term `term`'s take-over fenced a read quorum at `at` (the earliest report is kept).
  void fenced(uint64_t term, MonoTime at);
  // Samples a node: its last take-over's fence (ReplicaNode::stats). Call often enough that
  // no take-over goes unseen (a node keeps only its last one).
  void observe(const ReplicaNode& node);
  // The serving primary now, by term (0: none serving): counts primary changes.
  void serving(uint64_t term);

  // The first violation, described; nullopt when there is none.
  std::optional<std::string> check() const;

  // Times a new term's primary began serving after the first one.
  uint64_t failovers() const { return failovers_; }
  // The highest term seen serving or fencing.
  uint64_t terms_max() const { return terms_max_; }
  uint64_t acks() const { return acks_.size(); }

 private:
  struct Ack {
    std::string node;
    uint64_t term = 0;
    MonoTime at;
    std::string key;
  };
  // The first ack under a term after a higher term's time in `times` (what that term did
  // then: `event`), described.
  std::optional<std::string> acked_after(const std::map<uint64_t, MonoTime>& times,
                                         std::string_view event) const;

  std::vector<Ack> acks_;
  std::map<uint64_t, MonoTime> fenced_at_;  // term -> when its take-over fenced
  std::map<uint64_t, MonoTime> first_ack_;  // term -> its first acknowledgement
  uint64_t last_serving_term_ = 0;
  uint64_t failovers_ = 0;
  uint64_t terms_max_ = 0;
};

}  // namespace quire
