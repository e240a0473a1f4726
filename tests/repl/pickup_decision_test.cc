// The checkpoint manager's one decision (decide_pickup), walked over every pick-up outcome,
// every policy and both sides of the retry deadline, against the table standby.h states.
#include <cctype>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "repl/standby.h"

namespace quire {
namespace {

const std::vector<PickupOutcome> kOutcomes = {
    PickupOutcome::kInstalled,
    PickupOutcome::kAlreadyInstalled,
    PickupOutcome::kOlder,
    PickupOutcome::kStaleKeystore,
    PickupOutcome::kKeystoreAhead,
    PickupOutcome::kKeystoreConflict,
    PickupOutcome::kCorrupt,
    PickupOutcome::kUnavailable,
    PickupOutcome::kVersionTooNew,
    PickupOutcome::kBusy,
    PickupOutcome::kStaleKeystoreInstalled,
};
const std::vector<PickupPolicy> kPolicies = {PickupPolicy::kAccept, PickupPolicy::kSkip,
                                             PickupPolicy::kResync, PickupPolicy::kAbort};

// The result the engine hands the manager: its outcome is all it says.
PickupResult result_for(PickupOutcome o) {
  PickupResult r;
  r.outcome = o;
  r.checkpoint_lsn = Lsn(40);
  return r;
}

// The table of standby.h, written out independently of the implementation.
PickupAction documented_action(PickupOutcome o, PickupPolicy policy, bool deadline_passed) {
  const bool abort = policy == PickupPolicy::kAbort;
  switch (o) {
    case PickupOutcome::kInstalled:
    case PickupOutcome::kStaleKeystoreInstalled:
      return PickupAction::kAdvance;
    case PickupOutcome::kAlreadyInstalled:
    case PickupOutcome::kOlder:
      return PickupAction::kIgnore;
    case PickupOutcome::kStaleKeystore:
      switch (policy) {
        case PickupPolicy::kAccept:  // accept has it installed; reported anyway, it waits
        case PickupPolicy::kSkip:
          return PickupAction::kWait;
        case PickupPolicy::kResync:
          return PickupAction::kStepDown;
        case PickupPolicy::kAbort:
          return PickupAction::kAbort;
      }
      break;
    case PickupOutcome::kKeystoreAhead:
    case PickupOutcome::kUnavailable:
    case PickupOutcome::kBusy:
      if (abort) return PickupAction::kAbort;
      return deadline_passed ? PickupAction::kStepDown : PickupAction::kRetry;
    case PickupOutcome::kCorrupt:
    case PickupOutcome::kKeystoreConflict:
    case PickupOutcome::kVersionTooNew:
      return abort ? PickupAction::kAbort : PickupAction::kStepDown;
  }
  ADD_FAILURE() << "no documented action for outcome " << pickup_outcome_name(o);
  return PickupAction::kStepDown;
}

TEST(DecidePickup, EveryOutcomePolicyAndDeadlineMatchesTheDocumentedTable) {
  int cases = 0;
  for (PickupOutcome o : kOutcomes) {
    for (PickupPolicy p : kPolicies) {
      for (bool passed : {false, true}) {
        const PickupAction want = documented_action(o, p, passed);
        const PickupAction got = decide_pickup(result_for(o), p, passed);
        EXPECT_EQ(got, want) << pickup_outcome_name(o) << " under " << pickup_policy_name(p)
                             << (passed ? ", deadline passed" : ", before the deadline") << ": got "
                             << pickup_action_name(got) << ", want " << pickup_action_name(want);
        cases++;
      }
    }
  }
  EXPECT_EQ(cases, 11 * 4 * 2);
}

// The deadline only matters to retriable outcomes: nothing else changes with it.
TEST(DecidePickup, DeadlineChangesOnlyRetriableOutcomes) {
  const std::set<PickupOutcome> retriable = {PickupOutcome::kKeystoreAhead,
                                             PickupOutcome::kUnavailable, PickupOutcome::kBusy};
  for (PickupOutcome o : kOutcomes) {
    for (PickupPolicy p : kPolicies) {
      const PickupResult r = result_for(o);
      const bool changes = decide_pickup(r, p, false) != decide_pickup(r, p, true);
      const bool expect_change = retriable.count(o) > 0 && p != PickupPolicy::kAbort;
      EXPECT_EQ(changes, expect_change)
          << pickup_outcome_name(o) << " under " << pickup_policy_name(p);
    }
  }
}

// Installed means the checkpoint is the node's stable state: the manager advances
// whatever the policy, and a stale keystore that was installed advances too.
TEST(DecidePickup, InstalledResultsAdvanceUnderEveryPolicy) {
  for (PickupPolicy p : kPolicies) {
    for (bool passed : {false, true}) {
      EXPECT_EQ(decide_pickup(result_for(PickupOutcome::kInstalled), p, passed),
                PickupAction::kAdvance)
          << pickup_policy_name(p);
    }
  }
  PickupResult stale = result_for(PickupOutcome::kStaleKeystoreInstalled);
  ASSERT_TRUE(stale.installed());
  ASSERT_TRUE(stale.switched());
  for (PickupPolicy p : kPolicies) {
    EXPECT_EQ(decide_pickup(stale, p, false), PickupAction::kAdvance) << pickup_policy_name(p);
    EXPECT_EQ(decide_pickup(stale, p, true), PickupAction::kAdvance) << pickup_policy_name(p);
  }
}

// AlreadyInstalled: the checkpoint is installed, but nothing changed: ignored, never
// advanced.
TEST(DecidePickup, AlreadyInstalledIsIgnoredThoughItIsInstalled) {
  for (PickupPolicy p : kPolicies) {
    PickupResult r = result_for(PickupOutcome::kAlreadyInstalled);
    ASSERT_TRUE(r.installed());
    ASSERT_FALSE(r.switched());
    EXPECT_EQ(decide_pickup(r, p, false), PickupAction::kIgnore) << pickup_policy_name(p);
    EXPECT_EQ(decide_pickup(r, p, true), PickupAction::kIgnore) << pickup_policy_name(p);
  }
}

// Before a pick-up: a load installs a stale keystore under every policy; in steady state
// only accept does.
TEST(StaleKeystoreChoice, LoadInstallsUnderEveryPolicyFollowOnlyUnderAccept) {
  for (PickupPolicy p : kPolicies) {
    EXPECT_EQ(stale_keystore_choice(p, InstallMode::kLoad), StaleKeystoreChoice::kInstall)
        << pickup_policy_name(p);
    EXPECT_EQ(stale_keystore_choice(p, InstallMode::kFollow), p == PickupPolicy::kAccept
                                                                  ? StaleKeystoreChoice::kInstall
                                                                  : StaleKeystoreChoice::kReport)
        << pickup_policy_name(p);
  }
}

// The one retriable classifier of outcomes, and the only outcomes the deadline changes.
TEST(DecidePickup, RetriableOutcomesAreKeystoreAheadUnavailableAndBusy) {
  for (PickupOutcome o : kOutcomes) {
    const bool want = o == PickupOutcome::kKeystoreAhead || o == PickupOutcome::kUnavailable ||
                      o == PickupOutcome::kBusy;
    EXPECT_EQ(pickup_outcome_retriable(o), want) << pickup_outcome_name(o);
  }
}

// Case-insensitive: the fallback names for values outside the enums.
bool names_unknown(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "unknown";
}

TEST(StandbyNames, StatesHaveDistinctKnownNames) {
  const std::vector<StandbyState> states = {StandbyState::kStartup, StandbyState::kCatchingUp,
                                            StandbyState::kSecondary, StandbyState::kResync};
  std::set<std::string> names;
  for (StandbyState s : states) {
    std::string name(standby_state_name(s));
    EXPECT_FALSE(name.empty());
    EXPECT_FALSE(names_unknown(name)) << static_cast<int>(s);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), states.size());
  EXPECT_EQ(standby_state_name(StandbyState::kSecondary), "SECONDARY");
  EXPECT_EQ(standby_state_name(StandbyState::kResync), "RESYNC");
}

TEST(StandbyNames, ActionsHaveDistinctKnownNames) {
  const std::vector<PickupAction> actions = {PickupAction::kAdvance,  PickupAction::kIgnore,
                                             PickupAction::kWait,     PickupAction::kRetry,
                                             PickupAction::kStepDown, PickupAction::kAbort};
  std::set<std::string> names;
  for (PickupAction a : actions) {
    std::string name(pickup_action_name(a));
    EXPECT_FALSE(name.empty());
    EXPECT_FALSE(names_unknown(name)) << static_cast<int>(a);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), actions.size());
}

}  // namespace
}  // namespace quire
