// Malicious or broken storage. The attacker owns the page servers' bytes (and recomputes
// every checksum it can: record CRCs, and where a case says so the keystore page's and
// the metadata page's own), but not the keys. A leader writes two checkpoints to the
// cluster's page service; its whole log is copied, transformed, into a second page
// service ("evil1..3"), and a fresh follower that talks only to that one installs the
// latest checkpoint (kLoad) and reads every key. A transformation must be reported as an
// error, never read as data, and never crash the follower.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <map>
#include <set>

#include "base/crc32c.h"
#include "crypto/keystore_page.h"
#include "engine/checkpoint_format.h"
#include "engine/engine.h"
#include "support/engine_cluster.h"

namespace quire {
namespace {

using testing_support::ComputeNode;
using testing_support::EngineCluster;
using testing_support::ServerGroup;

constexpr TableId kT1{16};
constexpr TableId kT2{17};
constexpr std::array<TableId, 2> kTables{kT1, kT2};
constexpr int kKeysPerTable = 120;

Timestamp ts(uint64_t n) {
  return Timestamp(n);
}
std::string key_of(int i) {
  return fmt::format("key{:04}", i);
}

EngineOptions small_pages() {
  EngineOptions o;
  o.shape.leaf_bytes_max = 600;  // many leaves and three levels from few keys
  o.shape.fanout_max = 4;
  o.io_timeout = 1s;
  return o;
}

using Log = std::vector<Record>;

// What the follower made of a (transformed) copy of the log.
struct AttackResult {
  PickupResult pickup;
  uint64_t keystore_version = 0;
  Lsn installed_lsn;
  size_t reads_ok = 0;
  size_t wrong_values = 0;      // OK reads that differ from what the leader wrote last
  size_t unwritten_values = 0;  // OK reads of a value the leader never wrote for that key
  std::vector<Status> read_errors;
  bool detected() const { return !pickup.installed() || !read_errors.empty(); }
};

void flip(Bytes& b, size_t at, uint8_t mask) {
  ASSERT_LT(at, b.size());
  b[at] ^= mask;
}

// The attacker's own checksums, as the formats define them.
void reseal_keystore_page_crc(Bytes& page) {
  constexpr size_t kCrcOffset = 36;
  encode_fixed32(page.data() + kCrcOffset, 0);
  encode_fixed32(page.data() + kCrcOffset, crc32c::mask(crc32c::value(page.data(), page.size())));
}
void reseal_metadata_crc(Bytes& meta) {
  encode_fixed32(meta.data() + 12, 0);
  encode_fixed32(meta.data() + 12, crc32c::mask(crc32c::value(meta.data(), meta.size())));
}
void set_completion_checksum(Record& completion, const Bytes& meta) {
  std::string text(completion.payload.begin(), completion.payload.end());
  auto c = decode_completion(text);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  c->metadata_checksum = crc32c::value(meta.data(), meta.size());
  text = encode_completion(*c);
  completion.payload.assign(text.begin(), text.end());
}

// The error names the page it was reading.
void expect_names(const Status& st, const Record& r) {
  EXPECT_EQ(st.field("table").value_or(0), r.table.value) << st.to_string();
  EXPECT_EQ(st.field("page").value_or(0), r.page.value) << st.to_string();
  EXPECT_EQ(st.field("lsn").value_or(0), r.lsn.value) << st.to_string();
}
bool names(const Status& st, const Record& r) {
  return st.field("table") == r.table.value && st.field("page") == r.page.value &&
         st.field("lsn") == r.lsn.value;
}

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<EngineCluster>(7);
    leader_ = &cluster_->add_compute("leader", small_pages());
    evil_ = cluster_->add_server_group("evil");
    follower_ = &cluster_->add_compute("follower", small_pages(), evil_.addresses);
    copier_ = cluster_->add_tool_node("copier");
    ASSERT_NO_FATAL_FAILURE(write_two_checkpoints());
    ASSERT_NO_FATAL_FAILURE(copy_log());
    ASSERT_NO_FATAL_FAILURE(index_log());
  }

  void write(TableId t, const std::string& k, std::string v) {
    now_++;
    Status st = leader_->engine().apply_write(t, k, ts(now_), v);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    history_[t.value][k].insert(v);
    latest_[t.value][k] = std::move(v);
  }

  // Checkpoint 1 holds every key; checkpoint 2 rewrites a third of them and adds more,
  // so most pages (every root) have a version at each checkpoint's LSNs.
  void write_two_checkpoints() {
    ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
      Engine& e = leader_->engine();
      std::vector<TableId> tables(kTables.begin(), kTables.end());
      auto keys = co_await e.bootstrap_keys(tables);
      EXPECT_TRUE(keys.is_ok()) << keys.status().to_string();
      EXPECT_TRUE(e.push_keystore(ts(1)).is_ok());
      for (int round = 0; round < 2; round++) {
        for (TableId t : kTables) {
          for (int i = 0; i < kKeysPerTable + 20 * round; i++) {
            if (round == 1 && i < kKeysPerTable && i % 3 != 0) continue;
            write(t, key_of(i),
                  fmt::format("t{}/{}/round{}/{}", t.value, key_of(i), round, std::string(8, 'x')));
          }
        }
        auto cp = co_await e.checkpoint(leader_->writer(), ts(now_));
        EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
      }
    }));
    ASSERT_EQ(leader_->engine().checkpoint_ts(), ts(now_));
  }

  // The whole log, from the cluster's first page server.
  void copy_log() {
    const Lsn last = leader_->writer().chain_head();
    ASSERT_TRUE(cluster_->run_on(copier_, [&]() -> Task<void> {
      Env& env = *cluster_->world().env(copier_);
      PageServerClient source(env, cluster_->addresses()[0]);
      Lsn after;
      for (int i = 0; i < 1000 && after < last; i++) {
        auto chunk = co_await source.scan(after, 256 << 10, env.executor().deadline_after(1s));
        if (!chunk.is_ok() || chunk->records.empty()) {
          Status slept = co_await env.executor().sleep(10ms);  // not caught up yet
          EXPECT_TRUE(slept.is_ok());
          continue;
        }
        for (Record& r : chunk->records) log_.push_back(std::move(r));
        after = chunk->through;
      }
    }));
    ASSERT_FALSE(log_.empty());
    ASSERT_EQ(log_.back().lsn, last);
    for (size_t i = 1; i < log_.size(); i++) ASSERT_EQ(log_[i].prev_lsn, log_[i - 1].lsn);
  }

  size_t index_of(Lsn lsn) const {
    for (size_t i = 0; i < log_.size(); i++) {
      if (log_[i].lsn == lsn) return i;
    }
    ADD_FAILURE() << "no record at lsn " << lsn.value;
    return 0;
  }

  void index_log() {
    size_t completions = 0;
    for (size_t i = 0; i < log_.size(); i++) {
      const Record& r = log_[i];
      if (r.type == RecordType::kCheckpointComplete) {
        completion_ = i;
        completions++;
      }
      if (record_type_is_page(r.type) &&
          (r.type == RecordType::kPage || r.type == RecordType::kDiscard)) {
        versions_[{r.table.value, r.page.value}].push_back(i);
      }
    }
    ASSERT_EQ(completions, 2u);
    ASSERT_EQ(log_[completion_].lsn, leader_->engine().installed_checkpoint_lsn());
    std::string text(log_[completion_].payload.begin(), log_[completion_].payload.end());
    auto c = decode_completion(text);
    ASSERT_TRUE(c.is_ok());
    metadata_ = index_of(c->metadata_lsn);
    auto meta = decode_metadata_page(log_[metadata_].payload);
    ASSERT_TRUE(meta.is_ok()) << meta.status().to_string();
    meta_ = *meta;
    ASSERT_EQ(meta_.tables.size(), 2u);
    keystore_ = index_of(meta_.keystore.page_lsn);
    ASSERT_EQ(log_[keystore_].type, RecordType::kKeystore);
  }

  // The newest version of a table's root page.
  size_t root_of(TableId t) const {
    for (const TableRoot& r : meta_.tables) {
      if (r.table == t) return index_of(r.root_lsn);
    }
    ADD_FAILURE() << "no root for table " << t.value;
    return 0;
  }
  // The newest versions of the live pages of a table other than its root, optionally
  // only those with an older version.
  std::vector<size_t> live_non_root(TableId t, bool with_older_version) const {
    std::vector<size_t> out;
    const size_t root = root_of(t);
    for (const auto& [page, idx] : versions_) {
      if (page.first != t.value || log_[idx.back()].type != RecordType::kPage || idx.back() == root)
        continue;
      if (with_older_version && idx.size() < 2) continue;
      out.push_back(idx.back());
    }
    return out;
  }
  // The previous version of the page at log index `newest`.
  size_t older_version(size_t newest) const {
    const auto& idx = versions_.at({log_[newest].table.value, log_[newest].page.value});
    EXPECT_GE(idx.size(), 2u);
    EXPECT_EQ(idx.back(), newest);
    return idx[idx.size() - 2];
  }

  // Empties the evil page service and fills it with `log`.
  void load_evil(const Log& log) {
    for (NodeId n : evil_.nodes) {
      cluster_->world().crash(n, UnsyncedOnCrash::kLose);
      cluster_->world().disk(n).wipe();
      cluster_->world().start(n);
    }
    ASSERT_TRUE(cluster_->run_on(copier_, [&]() -> Task<void> {
      Env& env = *cluster_->world().env(copier_);
      for (const Address& a : evil_.addresses) {
        PageServerClient dest(env, a);
        size_t at = 0;
        for (int attempt = 0; attempt < 200 && at < log.size(); attempt++) {
          std::vector<Record> chunk;
          size_t bytes = 0;
          for (size_t i = at; i < log.size() && bytes < (128u << 10); i++) {
            bytes += log[i].framed_size();
            chunk.push_back(log[i]);
          }
          Status st = co_await dest.append(chunk, Term(1), env.executor().deadline_after(1s));
          if (st.is_ok()) {
            at += chunk.size();
            continue;
          }
          EXPECT_TRUE(st.retriable()) << a << ": " << st.to_string();  // still starting up
          Status slept = co_await env.executor().sleep(5ms);
          EXPECT_TRUE(slept.is_ok());
        }
        EXPECT_EQ(at, log.size()) << a;
        auto status = co_await dest.status(env.executor().deadline_after(1s));
        EXPECT_TRUE(status.is_ok());
        if (status.is_ok()) {
          EXPECT_EQ(status->durable_lsn, log.back().lsn) << a;
        }
      }
    }));
  }

  Task<void> read_all(AttackResult& out) {
    Engine& f = follower_->engine();
    const Timestamp at = f.checkpoint_ts();
    for (const auto& [table, keys] : latest_) {
      auto all = co_await f.scan(TableId(table), "", "", at, 1 << 20);
      if (!all.is_ok()) {
        out.read_errors.push_back(all.status());
      } else {
        out.reads_ok++;
        std::vector<std::pair<std::string, std::string>> want(keys.begin(), keys.end());
        if (*all != want) out.wrong_values++;
        for (const auto& [k, v] : *all) {
          if (history_[table][k].count(v) == 0) out.unwritten_values++;
        }
      }
      for (const auto& [k, v] : keys) {
        auto got = co_await f.get(TableId(table), k, at);
        if (!got.is_ok()) {
          out.read_errors.push_back(got.status());
          continue;
        }
        out.reads_ok++;
        if (*got != v) out.wrong_values++;
        if (*got && history_[table][k].count(**got) == 0) out.unwritten_values++;
      }
    }
  }

  // Copies `log` into the evil page service, and a fresh follower installs its latest
  // checkpoint and reads every key. Checks that nothing aborted and that no read returned
  // a value the leader never wrote for its key, nor (`expect_latest`) an older one.
  AttackResult attack(const Log& log, bool expect_latest = true) {
    AttackResult out;
    load_evil(log);
    if (cluster_->world().is_up(follower_->id)) cluster_->crash(*follower_);
    cluster_->restart(*follower_, Lsn(), Lsn(1));
    EXPECT_TRUE(cluster_->run(*follower_, [&]() -> Task<void> {
      auto latest = co_await follower_->latest_checkpoint();
      EXPECT_TRUE(latest.is_ok()) << latest.status().to_string();
      if (!latest.is_ok()) co_return;
      Engine& f = follower_->engine();
      out.pickup =
          co_await f.install_checkpoint(*latest, InstallMode::kLoad, StaleKeystoreChoice::kInstall);
      out.keystore_version = f.keystore().version();
      out.installed_lsn = f.installed_checkpoint_lsn();
      if (out.pickup.installed()) co_await read_all(out);
    }));
    EXPECT_TRUE(cluster_->world().aborts().empty());
    if (expect_latest) {
      EXPECT_EQ(out.wrong_values, 0u);
    }
    EXPECT_EQ(out.unwritten_values, 0u);
    return out;
  }

  // A tampered root stops the install (Corrupt, naming the page); a tampered inner page
  // installs and is caught when read.
  void expect_page_attack_detected(const AttackResult& r, size_t target, size_t root) {
    EXPECT_TRUE(r.detected());
    if (target != root) {
      expect_read_time_detection(r, {target}, {Code::kCorruption});
      return;
    }
    expect_refused(r);
    EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << r.pickup.detail.to_string();
    expect_names(r.pickup.detail, log_[target]);
  }

  // A refused install changes nothing: no checkpoint, no keystore.
  void expect_refused(const AttackResult& r) {
    EXPECT_FALSE(r.pickup.installed());
    EXPECT_TRUE(r.installed_lsn.is_zero());
    EXPECT_EQ(r.keystore_version, 0u);
  }

  // Installed (the roots are intact), and every read error is about `target` (or one of
  // `targets`) with one of `codes`.
  void expect_read_time_detection(const AttackResult& r, const std::vector<size_t>& targets,
                                  const std::set<Code>& codes) {
    EXPECT_EQ(r.pickup.outcome, PickupOutcome::kInstalled) << r.pickup.detail.to_string();
    EXPECT_FALSE(r.read_errors.empty());
    for (const Status& st : r.read_errors) {
      EXPECT_EQ(codes.count(st.code()), 1u) << st.to_string();
      bool named = false;
      for (size_t t : targets) named = named || names(st, log_[t]);
      EXPECT_TRUE(named) << st.to_string();
    }
  }

  std::unique_ptr<EngineCluster> cluster_;
  ComputeNode* leader_ = nullptr;
  ComputeNode* follower_ = nullptr;
  ServerGroup evil_;
  NodeId copier_;
  uint64_t now_ = 1;
  std::map<uint64_t, std::map<std::string, std::string>> latest_;
  std::map<uint64_t, std::map<std::string, std::set<std::string>>> history_;

  Log log_;
  size_t completion_ = 0;
  size_t metadata_ = 0;
  size_t keystore_ = 0;
  CheckpointMetadata meta_;
  // Per (table, page): the log indexes of its PAGE and DISCARD records, oldest first.
  std::map<std::pair<uint64_t, uint64_t>, std::vector<size_t>> versions_;
};

// The control: the harness itself does not make a follower fail.
TEST_F(TamperTest, HealthyCopyInstallsAndReadsWhatTheLeaderWrote) {
  AttackResult r = attack(log_);
  EXPECT_EQ(r.pickup.outcome, PickupOutcome::kInstalled) << r.pickup.detail.to_string();
  EXPECT_EQ(r.installed_lsn, log_[completion_].lsn);
  EXPECT_EQ(r.keystore_version, leader_->engine().keystore().version());
  EXPECT_TRUE(r.read_errors.empty()) << r.read_errors.front().to_string();
  EXPECT_EQ(r.reads_ok, 2 + latest_[kT1.value].size() + latest_[kT2.value].size());
  EXPECT_EQ(follower_->engine().checkpoint_ts(), ts(now_));
  // The log has what the other cases need.
  EXPECT_FALSE(live_non_root(kT1, true).empty());
  EXPECT_GE(live_non_root(kT2, false).size(), 4u);
  EXPECT_GE(versions_.at({kT1.value, log_[root_of(kT1)].page.value}).size(), 2u);
}

// One byte of a sealed page, at every part of its format: the header (each byte either
// checked exactly or in the AAD), the nonce, the ciphertext and the tag.
TEST_F(TamperTest, FlippedPageByteIsDetected) {
  struct Spot {
    const char* field;
    size_t at;  // from the end when `from_end`
    bool from_end;
    uint8_t mask;
    std::set<Code> codes;
  };
  const std::set<Code> corrupt{Code::kCorruption};
  const std::vector<Spot> spots = {
      {"magic", 0, false, 0x01, corrupt},
      {"magic", 3, false, 0x80, corrupt},
      {"version->0", 4, false, 0x01, corrupt},
      {"version->3", 4, false, 0x02, {Code::kVersionTooNew}},
      {"reserved", 5, false, 0x01, corrupt},
      {"reserved", 7, false, 0x10, corrupt},
      // Another DEK id is either unknown (NotFound) or another table's key (the tag fails).
      {"dek id", 8, false, 0x01, {Code::kNotFound, Code::kCorruption}},
      {"dek id", 15, false, 0x40, {Code::kNotFound, Code::kCorruption}},
      {"dek version", 16, false, 0x01, {Code::kNotFound, Code::kCorruption}},
      {"dek version", 19, false, 0x80, {Code::kNotFound, Code::kCorruption}},
      {"nonce", 20, false, 0x01, corrupt},
      {"nonce", 31, false, 0x20, corrupt},
      {"ciphertext", 32, false, 0x01, corrupt},
      {"ciphertext", 17, true, 0x04, corrupt},
      {"tag", 16, true, 0x01, corrupt},
      {"tag", 1, true, 0x80, corrupt},
  };
  const size_t leaf = live_non_root(kT2, false).front();
  const std::vector<std::pair<const char*, size_t>> targets = {{"root of t16", root_of(kT1)},
                                                               {"non-root of t17", leaf}};
  for (const auto& [target_name, target] : targets) {
    for (const Spot& s : spots) {
      Log log = log_;
      Bytes& payload = log[target].payload;
      const size_t at = s.from_end ? payload.size() - s.at : s.at;
      SCOPED_TRACE(fmt::format("{} byte {} ({}) of {} of {} bytes", s.field, at, s.mask,
                               target_name, payload.size()));
      ASSERT_NO_FATAL_FAILURE(flip(payload, at, s.mask));
      AttackResult r = attack(log);
      EXPECT_TRUE(r.detected());
      if (target == leaf) {
        expect_read_time_detection(r, {target}, s.codes);
        continue;
      }
      // A root is opened by the install itself.
      expect_refused(r);
      if (s.codes.count(Code::kVersionTooNew)) {
        EXPECT_EQ(r.pickup.outcome, PickupOutcome::kVersionTooNew) << r.pickup.detail.to_string();
      } else {
        EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << r.pickup.detail.to_string();
      }
      EXPECT_EQ(s.codes.count(r.pickup.detail.code()), 1u) << r.pickup.detail.to_string();
      expect_names(r.pickup.detail, log_[target]);
    }
  }
}

// Two pages' payloads exchanged (the records keep their headers): the AAD binds table,
// page and LSN, so each payload fails where it now lies.
TEST_F(TamperTest, SwappedPagesAreDetected) {
  const std::vector<size_t> t1 = live_non_root(kT1, false);
  const std::vector<size_t> t2 = live_non_root(kT2, false);
  ASSERT_GE(t1.size(), 2u);
  ASSERT_GE(t2.size(), 1u);
  const std::vector<std::tuple<const char*, size_t, size_t>> swaps = {
      {"two pages of one table", t1[0], t1[1]},
      {"pages of two tables", t1[0], t2[0]},
  };
  for (const auto& [what, a, b] : swaps) {
    SCOPED_TRACE(what);
    Log log = log_;
    std::swap(log[a].payload, log[b].payload);
    AttackResult r = attack(log);
    EXPECT_TRUE(r.detected());
    expect_read_time_detection(r, {a, b}, {Code::kCorruption});
  }
  // The two roots: the install refuses.
  Log log = log_;
  std::swap(log[root_of(kT1)].payload, log[root_of(kT2)].payload);
  AttackResult r = attack(log);
  expect_refused(r);
  EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << r.pickup.detail.to_string();
  EXPECT_EQ(r.pickup.detail.code(), Code::kCorruption);
  EXPECT_TRUE(names(r.pickup.detail, log_[root_of(kT1)]) ||
              names(r.pickup.detail, log_[root_of(kT2)]))
      << r.pickup.detail.to_string();
}

// Replay: the newest version of a page carries its older version's payload (a real
// ciphertext of that page, under the right key). The parent names the exact LSN and the
// LSN is in the AAD.
TEST_F(TamperTest, ReplayedOlderVersionIsDetected) {
  const size_t root = root_of(kT1);
  const size_t inner = live_non_root(kT1, true).front();
  for (size_t target : {root, inner}) {
    SCOPED_TRACE(target == root ? "root" : "non-root page");
    Log log = log_;
    log[target].payload = log_[older_version(target)].payload;
    expect_page_attack_detected(attack(log), target, root);
  }
}

// Replay by omission: the newest version is dropped (and the chain re-linked around it,
// so the servers are complete), so the page service answers with the older version.
TEST_F(TamperTest, DroppedNewestVersionServesTheOlderOneAndIsDetected) {
  const size_t root = root_of(kT1);
  const size_t inner = live_non_root(kT1, true).front();
  for (size_t target : {root, inner}) {
    SCOPED_TRACE(target == root ? "root" : "non-root page");
    Log log = log_;
    ASSERT_LT(target + 1, log.size());
    log[target + 1].prev_lsn = log[target].prev_lsn;
    log.erase(log.begin() + static_cast<ptrdiff_t>(target));
    expect_page_attack_detected(attack(log), target, root);
  }
}

// The keystore page authenticates itself: any changed byte is Corruption (its CRC, or
// when the attacker recomputed that, its tag or the KMS), or VersionTooNew for its
// compatible-version byte. The follower keeps no keystore.
TEST_F(TamperTest, FlippedKeystoreByteIsDetected) {
  const size_t size = log_[keystore_].payload.size();
  struct Spot {
    const char* field;
    size_t at;
  };
  const std::vector<Spot> spots = {
      {"magic", 0},        {"format version", 4},      {"compatible version", 5},
      {"header size", 6},  {"keystore version", 8},    {"push ts", 16},
      {"cluster id", 24},  {"body size", 32},          {"crc", 36},
      {"cmk version", 40}, {"wrapped key length", 44}, {"wrapped key", 50},
      {"body", size / 2},  {"ciphertext", size - 17},  {"tag", size - 16},
      {"tag", size - 1},
  };
  for (bool fix_crc : {false, true}) {
    for (const Spot& s : spots) {
      if (fix_crc && s.at >= 36 && s.at < 40) continue;  // recomputing would undo the flip
      SCOPED_TRACE(fmt::format("{} byte {}{}", s.field, s.at, fix_crc ? ", CRC recomputed" : ""));
      Log log = log_;
      ASSERT_NO_FATAL_FAILURE(flip(log[keystore_].payload, s.at, 0x02));
      if (fix_crc) reseal_keystore_page_crc(log[keystore_].payload);
      AttackResult r = attack(log);
      expect_refused(r);
      if (s.at == 5) {
        EXPECT_EQ(r.pickup.outcome, PickupOutcome::kVersionTooNew) << r.pickup.detail.to_string();
      } else {
        EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << r.pickup.detail.to_string();
      }
    }
  }
}

// The metadata page is checked by the completion record's checksum and by its own CRC.
TEST_F(TamperTest, FlippedMetadataByteIsDetected) {
  const size_t size = log_[metadata_].payload.size();
  const std::vector<size_t> spots = {0,  4,  5,  6,  8,  12,  16,  24,      32,
                                     48, 56, 72, 88, 92, 100, 108, size - 1};
  for (bool fix_completion : {false, true}) {
    for (size_t at : spots) {
      SCOPED_TRACE(
          fmt::format("byte {}{}", at, fix_completion ? ", completion checksum recomputed" : ""));
      Log log = log_;
      ASSERT_NO_FATAL_FAILURE(flip(log[metadata_].payload, at, 0x02));
      if (fix_completion) {
        ASSERT_NO_FATAL_FAILURE(set_completion_checksum(log[completion_], log[metadata_].payload));
      }
      AttackResult r = attack(log);
      expect_refused(r);
      EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << r.pickup.detail.to_string();
      EXPECT_EQ(r.pickup.detail.code(), Code::kCorruption);
    }
  }
}

// The metadata page is plaintext under checksums an attacker can recompute, so a
// rewritten one can point at an older tree (a rollback, which storage the attacker owns
// can always stage by hiding the newest checkpoint). What it must never do: crash the
// follower or make it read a value the leader never wrote for that key.
TEST_F(TamperTest, RewrittenMetadataNeverCrashesOrInventsValues) {
  const size_t size = log_[metadata_].payload.size();
  std::map<std::string, size_t> outcomes;
  for (size_t at = 0; at < size; at++) {
    if (at >= 12 && at < 16) continue;       // the CRC field itself: recomputing undoes the flip
    if (at >= 100 && at % 2 == 1) continue;  // the table entries: every other byte will do
    SCOPED_TRACE(fmt::format("byte {}", at));
    Log log = log_;
    ASSERT_NO_FATAL_FAILURE(flip(log[metadata_].payload, at, 0x02));
    reseal_metadata_crc(log[metadata_].payload);
    ASSERT_NO_FATAL_FAILURE(set_completion_checksum(log[completion_], log[metadata_].payload));
    AttackResult r = attack(log, /*expect_latest=*/false);  // checks: no abort, no invented value
    outcomes[std::string(pickup_outcome_name(r.pickup.outcome))]++;
    if (!r.pickup.installed()) {
      expect_refused(r);
    }
    // What the install does check: the compatible version, that the metadata and the
    // completion agree, and the keystore reference against the authenticated page.
    if (at == 5) {
      EXPECT_EQ(r.pickup.outcome, PickupOutcome::kVersionTooNew);
    }
    if (at >= 16 && at < 24) {
      EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << "checkpoint ts";
    }
    if (at >= 64 && at < 72) {
      EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << "keystore version";
    }
    if (at >= 80 && at < 96) {
      EXPECT_EQ(r.pickup.outcome, PickupOutcome::kCorrupt) << "keystore digest";
    }
  }
  EXPECT_GT(outcomes["Corrupt"], 0u);
  std::string summary;
  for (const auto& [o, n] : outcomes) summary += fmt::format("{}={} ", o, n);
  RecordProperty("outcomes", summary);
}

}  // namespace
}  // namespace quire
