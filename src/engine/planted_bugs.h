// Planted bugs: the one test seam through which the chaos suite breaks a node on purpose,
// to show that its checkers catch what they claim to. Every field defaults to off, and
// nothing outside tests ever sets one.
#pragma once

#include <cstdint>

namespace quire {

struct PlantedBugs {
  // The primary acknowledges its n-th client batch (1-based) without logging or applying
  // it: the lost_write checker must fail. 0: off.
  uint64_t ack_unlogged_batch = 0;
  // The engine's next checkpoint writes one table's pages unencrypted: the plaintext
  // checker must fail.
  bool plaintext_pages_once = false;
  // A primary of an elected node acknowledges without asking its coordinator lease
  // (ReplicaNode never sets Primary::may_acknowledge).
  bool ignore_primary_lease = false;
  // A take-over keeps none of the log after the node's last installed checkpoint: its
  // commit marker abandons records a commit point covers (the page servers refuse it).
  bool takeover_from_checkpoint = false;

  bool any() const {
    return ack_unlogged_batch != 0 || plaintext_pages_once || ignore_primary_lease ||
           takeover_from_checkpoint;
  }
};

}  // namespace quire
