// The typed result of installing ("picking up") a checkpoint, and the policies for a
// checkpoint whose keystore is older than the node's (docs/architecture.md, "The rule the
// report broke"; docs/replication.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"

namespace quire {

enum class PickupPolicy : uint8_t {
  kAccept = 1,  // install it and keep the node's newer keystore (the default)
  kSkip = 2,    // leave it; wait for a checkpoint with a current keystore (follow mode)
  kResync = 3,  // leave it; the caller steps down and re-syncs (follow mode; a load installs)
  kAbort = 4,   // the report's behaviour: abort the process on a pick-up that did not install
};

std::string_view pickup_policy_name(PickupPolicy p);
// InvalidArgument listing the valid names.
Result<PickupPolicy> parse_pickup_policy(std::string_view name);

// What the engine found when asked to install a checkpoint: facts only. What the node
// does about them (under its PickupPolicy) is decided by the caller (decide_pickup in
// repl/standby.h), never here.
enum class PickupOutcome : uint8_t {
  kInstalled = 1,
  kAlreadyInstalled = 2,  // same LSN as installed: nothing to do
  kOlder = 3,             // below the installed LSN: rejected, nothing changed
  kStaleKeystore = 4,     // its keystore is an older prefix of the node's: nothing changed
  kKeystoreAhead = 5,     // it needs keystore versions the node has not applied: retry later
  kKeystoreConflict = 6,  // its keystore is not a prefix of the node's
  kCorrupt = 7,           // a record or page failed its checks
  kUnavailable = 8,       // retriable: the page service or the KMS did not answer
  kVersionTooNew = 9,     // written by a newer format
  kBusy = 10,             // retriable: a checkpoint or another pick-up holds the lock
  // Its keystore is an older prefix of the node's, and it was installed as asked
  // (StaleKeystoreChoice::kInstall), keeping the node's newer keystore. Named
  // "StaleKeystore" in logs, like kStaleKeystore.
  kStaleKeystoreInstalled = 11,
};

std::string_view pickup_outcome_name(PickupOutcome o);

// True for the outcomes where the same pick-up can succeed later without anyone
// intervening (KeystoreAhead, Unavailable, Busy).
bool pickup_outcome_retriable(PickupOutcome o);

// What the engine does with a checkpoint whose keystore is an older prefix of the node's.
// The caller chooses (stale_keystore_choice in repl/standby.h).
enum class StaleKeystoreChoice : uint8_t {
  kInstall = 1,  // install it and keep the node's newer keystore: kStaleKeystoreInstalled
  kReport = 2,   // change nothing and report kStaleKeystore
};

struct PickupResult {
  PickupOutcome outcome = PickupOutcome::kBusy;
  Lsn checkpoint_lsn;
  Timestamp checkpoint_ts;
  Lsn checkpoint_log_lsn;  // the checkpoint's log position (known once its metadata was read)
  uint64_t checkpoint_keystore_version = 0;
  uint64_t node_keystore_version = 0;
  Status detail;         // why, for every outcome but Installed and AlreadyInstalled
  int64_t prune_us = 0;  // dropping the ingest versions the checkpoint holds
  int64_t total_us = 0;  // the whole pick-up (live clock)

  // The checkpoint is the node's stable state after the call: Installed,
  // StaleKeystoreInstalled, or AlreadyInstalled (installed before; nothing changed).
  bool installed() const {
    return outcome == PickupOutcome::kInstalled ||
           outcome == PickupOutcome::kStaleKeystoreInstalled ||
           outcome == PickupOutcome::kAlreadyInstalled;
  }
  // The call switched the node's stable state to the checkpoint.
  bool switched() const {
    return outcome == PickupOutcome::kInstalled ||
           outcome == PickupOutcome::kStaleKeystoreInstalled;
  }
};

}  // namespace quire
