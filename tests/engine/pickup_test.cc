// Checkpoint pick-up: one test per typed result, the report's race under each policy,
// and policy abort reproducing the report's crash (in the simulator, as a recorded abort).
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "support/engine_cluster.h"

namespace quire {
namespace {

using testing_support::ComputeNode;
using testing_support::EngineCluster;

constexpr TableId kT{16};
Timestamp ts(uint64_t n) {
  return Timestamp(n);
}

EngineOptions with_policy(PickupPolicy p) {
  EngineOptions o;
  o.policy = p;
  o.io_timeout = 1s;
  return o;
}

// A leader and a follower over the page service. The leader bootstraps its keys, pushes
// them at ts 1, writes and checkpoints; helpers run steps on either node.
class PickupTest : public ::testing::Test {
 protected:
  void SetUp() override { make(PickupPolicy::kAccept); }

  void make(PickupPolicy follower_policy) {
    cluster_ = std::make_unique<EngineCluster>(42);
    leader_ = &cluster_->add_compute("leader", with_policy(PickupPolicy::kAccept));
    follower_ = &cluster_->add_compute("follower", with_policy(follower_policy));
    ASSERT_TRUE(on_leader([this]() -> Task<void> {
      std::vector<TableId> tables{kT};
      auto ch = co_await leader().bootstrap_keys(tables);
      EXPECT_TRUE(ch.is_ok()) << ch.status().to_string();
      EXPECT_TRUE(leader().push_keystore(ts(1)).is_ok());
    }));
  }

  Engine& leader() { return leader_->engine(); }
  Engine& follower() { return follower_->engine(); }

  template <typename F>
  bool on_leader(F f) {
    return cluster_->run(*leader_, std::move(f));
  }
  template <typename F>
  bool on_follower(F f) {
    return cluster_->run(*follower_, std::move(f));
  }

  // Writes `n` keys at the next timestamps and checkpoints at the last one.
  Record write_and_checkpoint(int n) {
    Record completion;
    EXPECT_TRUE(on_leader([&]() -> Task<void> {
      for (int i = 0; i < n; i++) {
        now_++;
        Status st = leader().apply_write(kT, fmt::format("k{:04}", i), ts(now_),
                                         fmt::format("v{}@{}", i, now_));
        EXPECT_TRUE(st.is_ok()) << st.to_string();
      }
      auto cp = co_await leader().checkpoint(leader_->writer(), ts(now_));
      EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
      if (!cp.is_ok()) co_return;
      auto latest = co_await leader_->latest_checkpoint();
      EXPECT_TRUE(latest.is_ok());
      if (!latest.is_ok()) co_return;
      EXPECT_EQ(latest->lsn, cp->completion_lsn);
      completion = *latest;
    }));
    return completion;
  }

  // Installs `completion` on the follower; a stale keystore is installed (what the
  // standby asks for under accept and on every load) unless `stale` says to report it.
  PickupResult install(Record completion, InstallMode mode,
                       StaleKeystoreChoice stale = StaleKeystoreChoice::kInstall) {
    PickupResult r;
    EXPECT_TRUE(on_follower([&]() -> Task<void> {
      r = co_await follower().install_checkpoint(completion, mode, stale);
    }));
    return r;
  }

  // The leader's KEK rotation: returns the changes (T1 applies them to its keystore).
  std::vector<KeystoreChange> rotate() {
    std::vector<KeystoreChange> changes;
    EXPECT_TRUE(on_leader([&]() -> Task<void> {
      auto ch = co_await leader().rotate_kek();
      EXPECT_TRUE(ch.is_ok()) << ch.status().to_string();
      if (ch.is_ok()) changes = *ch;
    }));
    return changes;
  }

  // What log apply does on the follower with the rotation's changes.
  void follower_applies(const std::vector<KeystoreChange>& changes) {
    ASSERT_TRUE(on_follower([&]() -> Task<void> {
      for (const KeystoreChange& c : changes) {
        Status st = co_await follower().apply_keystore_change(c);
        EXPECT_TRUE(st.is_ok()) << st.to_string();
      }
    }));
  }

  std::optional<std::string> follower_get(const std::string& key) {
    std::optional<std::string> out;
    EXPECT_TRUE(on_follower([&]() -> Task<void> {
      auto got = co_await follower().get(kT, key, follower().checkpoint_ts());
      EXPECT_TRUE(got.is_ok()) << got.status().to_string();
      if (got.is_ok()) out = *got;
    }));
    return out;
  }

  std::unique_ptr<EngineCluster> cluster_;
  ComputeNode* leader_ = nullptr;
  ComputeNode* follower_ = nullptr;
  uint64_t now_ = 1;
};

TEST_F(PickupTest, InstalledThenAlreadyInstalled) {
  Record cp = write_and_checkpoint(50);
  PickupResult r = install(cp, InstallMode::kLoad);
  EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
  EXPECT_TRUE(r.installed());
  EXPECT_EQ(follower().installed_checkpoint_lsn(), cp.lsn);
  EXPECT_EQ(follower().keystore().version(), leader().keystore().version());
  EXPECT_EQ(follower_get("k0007"), fmt::format("v7@{}", 2 + 7));
  r = install(cp, InstallMode::kFollow);
  EXPECT_EQ(r.outcome, PickupOutcome::kAlreadyInstalled);
  EXPECT_EQ(follower().installed_checkpoint_lsn(), cp.lsn);
}

TEST_F(PickupTest, OlderIsRejectedAndChangesNothing) {
  Record first = write_and_checkpoint(20);
  Record second = write_and_checkpoint(20);
  ASSERT_EQ(install(second, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
  PickupResult r = install(first, InstallMode::kFollow);
  EXPECT_EQ(r.outcome, PickupOutcome::kOlder);
  EXPECT_FALSE(r.installed());
  EXPECT_EQ(follower().installed_checkpoint_lsn(), second.lsn);
  EXPECT_EQ(follower().checkpoint_ts(), ts(now_));
}

// The report's race: the leader commits KEK vN (T1) and checkpoints before writing it to
// the log (T2), so the checkpoint names vN-1's keystore, while the follower has already
// applied vN from the log.
TEST_F(PickupTest, ReportRaceInstallsUnderAccept) {
  ASSERT_EQ(install(write_and_checkpoint(20), InstallMode::kLoad).outcome,
            PickupOutcome::kInstalled);
  const uint64_t before = follower().keystore().version();
  std::vector<KeystoreChange> rotation = rotate();  // T1
  Record racing = write_and_checkpoint(30);         // checkpoint inside T1..T2
  follower_applies(rotation);                       // the follower is already at vN
  const uint64_t node_version = follower().keystore().version();
  ASSERT_GT(node_version, before);
  PickupResult r = install(racing, InstallMode::kFollow, StaleKeystoreChoice::kInstall);
  EXPECT_EQ(r.outcome, PickupOutcome::kStaleKeystoreInstalled) << r.detail.to_string();
  EXPECT_EQ(pickup_outcome_name(r.outcome), "StaleKeystore");
  EXPECT_TRUE(r.installed());
  EXPECT_EQ(r.checkpoint_keystore_version, before);
  EXPECT_EQ(follower().installed_checkpoint_lsn(), racing.lsn);
  EXPECT_EQ(follower().keystore().version(), node_version);  // kept, never backwards
  EXPECT_EQ(follower_get("k0025"), fmt::format("v25@{}", 22 + 25));
  EXPECT_TRUE(cluster_->world().aborts().empty());
}

TEST_F(PickupTest, ReportRaceIsSkippedUnderSkipAndResync) {
  for (PickupPolicy p : {PickupPolicy::kSkip, PickupPolicy::kResync}) {
    make(p);
    Record first = write_and_checkpoint(20);
    ASSERT_EQ(install(first, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
    std::vector<KeystoreChange> rotation = rotate();
    Record racing = write_and_checkpoint(30);
    follower_applies(rotation);
    const uint64_t node_version = follower().keystore().version();
    PickupResult r = install(racing, InstallMode::kFollow, StaleKeystoreChoice::kReport);
    EXPECT_EQ(r.outcome, PickupOutcome::kStaleKeystore);
    EXPECT_FALSE(r.installed());
    EXPECT_EQ(follower().installed_checkpoint_lsn(), first.lsn);  // nothing changed
    EXPECT_EQ(follower().keystore().version(), node_version);
    // The next checkpoint after T2 carries vN and installs.
    ASSERT_TRUE(on_leader([&]() -> Task<void> {
      EXPECT_TRUE(leader().push_keystore(ts(++now_)).is_ok());  // T2
      co_return;
    }));
    Record after = write_and_checkpoint(5);
    r = install(after, InstallMode::kFollow);
    EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
  }
}

// Policy abort is the standby's to carry out (decide_pickup): the engine only reports the
// stale keystore, changes nothing, and never ends the process itself.
TEST_F(PickupTest, ReportRaceUnderAbortIsOnlyReportedByTheEngine) {
  make(PickupPolicy::kAbort);
  Record first = write_and_checkpoint(20);
  ASSERT_EQ(install(first, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
  std::vector<KeystoreChange> rotation = rotate();
  Record racing = write_and_checkpoint(30);
  follower_applies(rotation);
  PickupResult r = install(racing, InstallMode::kFollow, StaleKeystoreChoice::kReport);
  EXPECT_EQ(r.outcome, PickupOutcome::kStaleKeystore);
  EXPECT_EQ(r.detail.code(), kStaleKeystore);
  EXPECT_EQ(follower().installed_checkpoint_lsn(), first.lsn);
  cluster_->world().run_for(10ms);
  EXPECT_TRUE(cluster_->world().aborts().empty());
  EXPECT_TRUE(cluster_->world().is_up(follower_->id));
}

// A load installs a stale keystore too when asked (the standby asks on every load).
TEST_F(PickupTest, ReportRaceInstallsOnLoadWhenAsked) {
  make(PickupPolicy::kSkip);
  ASSERT_EQ(install(write_and_checkpoint(20), InstallMode::kLoad).outcome,
            PickupOutcome::kInstalled);
  std::vector<KeystoreChange> rotation = rotate();
  Record racing = write_and_checkpoint(30);
  follower_applies(rotation);
  PickupResult r = install(racing, InstallMode::kLoad, StaleKeystoreChoice::kInstall);
  EXPECT_EQ(r.outcome, PickupOutcome::kStaleKeystoreInstalled) << r.detail.to_string();
  EXPECT_TRUE(r.installed());
  EXPECT_EQ(follower().installed_checkpoint_lsn(), racing.lsn);
}

TEST_F(PickupTest, KeystoreAheadUntilTheLogBringsTheKeys) {
  ASSERT_EQ(install(write_and_checkpoint(10), InstallMode::kLoad).outcome,
            PickupOutcome::kInstalled);
  std::vector<KeystoreChange> rotation = rotate();
  ASSERT_TRUE(on_leader([&]() -> Task<void> {
    EXPECT_TRUE(leader().push_keystore(ts(++now_)).is_ok());
    co_return;
  }));
  Record ahead = write_and_checkpoint(10);
  const Lsn installed = follower().installed_checkpoint_lsn();
  PickupResult r = install(ahead, InstallMode::kFollow);
  EXPECT_EQ(r.outcome, PickupOutcome::kKeystoreAhead);
  EXPECT_TRUE(pickup_outcome_retriable(r.outcome));
  EXPECT_EQ(follower().installed_checkpoint_lsn(), installed);
  follower_applies(rotation);
  r = install(ahead, InstallMode::kFollow);
  EXPECT_EQ(r.outcome, PickupOutcome::kInstalled) << r.detail.to_string();
}

TEST_F(PickupTest, KeystoreConflictWhenNotAPrefix) {
  ASSERT_EQ(install(write_and_checkpoint(10), InstallMode::kLoad).outcome,
            PickupOutcome::kInstalled);
  // The follower's keystore takes a different change than the leader's.
  ASSERT_TRUE(on_follower([&]() -> Task<void> {
    auto own = co_await follower().rotate_kek();
    EXPECT_TRUE(own.is_ok());
  }));
  rotate();
  ASSERT_TRUE(on_leader([&]() -> Task<void> {
    EXPECT_TRUE(leader().push_keystore(ts(++now_)).is_ok());
    co_return;
  }));
  Record cp = write_and_checkpoint(10);
  const Lsn installed = follower().installed_checkpoint_lsn();
  PickupResult r = install(cp, InstallMode::kFollow);
  EXPECT_EQ(r.outcome, PickupOutcome::kKeystoreConflict) << r.detail.to_string();
  EXPECT_EQ(follower().installed_checkpoint_lsn(), installed);
}

TEST_F(PickupTest, CorruptCompletionOrMetadata) {
  Record cp = write_and_checkpoint(10);
  Record garbage = cp;
  garbage.payload = Bytes{'n', 'o', 'p', 'e'};
  EXPECT_EQ(install(garbage, InstallMode::kLoad).outcome, PickupOutcome::kCorrupt);
  // A completion whose metadata checksum does not match the metadata page.
  std::string text(cp.payload.begin(), cp.payload.end());
  size_t at = text.find("metadata_checksum=") + std::string("metadata_checksum=").size();
  text[at] = text[at] == '0' ? '1' : '0';
  Record bad_sum = cp;
  bad_sum.payload.assign(text.begin(), text.end());
  PickupResult r = install(bad_sum, InstallMode::kLoad);
  EXPECT_EQ(r.outcome, PickupOutcome::kCorrupt);
  EXPECT_NE(r.detail.to_string().find("checksum"), std::string::npos);
  Record wrong_type = cp;
  wrong_type.type = RecordType::kLog;
  EXPECT_EQ(install(wrong_type, InstallMode::kLoad).outcome, PickupOutcome::kCorrupt);
  EXPECT_TRUE(follower().installed_checkpoint_lsn().is_zero());
  EXPECT_EQ(install(cp, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
}

TEST_F(PickupTest, VersionTooNew) {
  Record cp = write_and_checkpoint(10);
  std::string text(cp.payload.begin(), cp.payload.end());
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, from.size(), to);
  };
  replace("version=1,compatible_version=1", "version=2,compatible_version=2");
  Record newer = cp;
  newer.payload.assign(text.begin(), text.end());
  PickupResult r = install(newer, InstallMode::kLoad);
  EXPECT_EQ(r.outcome, PickupOutcome::kVersionTooNew);
  EXPECT_TRUE(follower().installed_checkpoint_lsn().is_zero());
}

TEST_F(PickupTest, UnavailableWhenThePageServiceIsUnreachable) {
  Record cp = write_and_checkpoint(10);
  cluster_->world().network().isolate(follower_->id);
  PickupResult r = install(cp, InstallMode::kLoad);
  EXPECT_EQ(r.outcome, PickupOutcome::kUnavailable) << r.detail.to_string();
  EXPECT_TRUE(follower().installed_checkpoint_lsn().is_zero());
  cluster_->world().network().heal_all();
  EXPECT_EQ(install(cp, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
}

TEST_F(PickupTest, UnavailableWhenTheKmsIsDown) {
  Record cp = write_and_checkpoint(10);
  cluster_->kms_service().faults().unavailable = true;
  PickupResult r = install(cp, InstallMode::kLoad);
  EXPECT_EQ(r.outcome, PickupOutcome::kUnavailable) << r.detail.to_string();
  EXPECT_EQ(follower().keystore().version(), 0u);
  cluster_->kms_service().faults().unavailable = false;
  EXPECT_EQ(install(cp, InstallMode::kLoad).outcome, PickupOutcome::kInstalled);
}

TEST_F(PickupTest, BusyWhileAnotherPickupRuns) {
  Record cp = write_and_checkpoint(10);
  PickupResult first, second;
  ASSERT_TRUE(on_follower([&]() -> Task<void> {
    Executor& exec = follower_->env().executor();
    auto one = [&]() -> Task<void> {
      first = co_await follower().install_checkpoint(cp, InstallMode::kLoad,
                                                     StaleKeystoreChoice::kInstall);
    };
    TaskId t = exec.spawn("first", one());
    co_await exec.yield();  // the first is now waiting on the page service
    second = co_await follower().install_checkpoint(cp, InstallMode::kLoad,
                                                    StaleKeystoreChoice::kInstall);
    Status joined = co_await exec.join(t);
    EXPECT_TRUE(joined.is_ok());
  }));
  EXPECT_EQ(second.outcome, PickupOutcome::kBusy);
  EXPECT_TRUE(second.detail.retriable());
  EXPECT_EQ(first.outcome, PickupOutcome::kInstalled);
}

TEST(PickupPolicy, ParsesNamesAndListsChoices) {
  EXPECT_EQ(*parse_pickup_policy("accept"), PickupPolicy::kAccept);
  EXPECT_EQ(*parse_pickup_policy("abort"), PickupPolicy::kAbort);
  auto bad = parse_pickup_policy("maybe");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("accept, skip, resync, abort"), std::string::npos);
}

}  // namespace
}  // namespace quire
