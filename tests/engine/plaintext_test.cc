// Nothing plaintext ever reaches a page server: no user value and no key.
//
// Every byte range each page server's disk is asked to write is recorded as it is
// written (so torn, overwritten and later-deleted files count too), and afterwards every
// current and durable file is read back. A leader writes values that each hold a random
// 16-byte canary, checkpoints, rotates the KEK and the CMK between checkpoints, and a page
// server crashes mid-checkpoint with a torn tail. Then no canary, and no 16-byte window
// of any key (KEKs, DEKs, keystore page keys, unwrapped from what the keystores hold), may
// appear in any of those bytes. A control run shows the same search finds plaintext.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>

#include "crypto/keystore_page.h"
#include "crypto/needle_set.h"
#include "engine/engine.h"
#include "support/engine_cluster.h"

namespace quire {
namespace {

using testing_support::ComputeNode;
using testing_support::EngineCluster;

constexpr TableId kT1{16};
constexpr TableId kT2{17};
constexpr int kPhases = 5;
constexpr int kValuesPerTablePerPhase = 400;  // 2000 per table in all

Timestamp ts(uint64_t n) {
  return Timestamp(n);
}

// What one page server's disk was asked to write.
struct DiskTap {
  std::vector<Bytes> writes;            // every range, in order
  std::map<std::string, Bytes> images;  // per path, every write applied at its offset
  uint64_t bytes = 0;
  // The same without each write's trailing zeros: the zeros a segment store writes ahead
  // of its records (SegmentStoreOptions::zero_ahead_bytes) hold nothing.
  uint64_t record_bytes = 0;
};

// Where needles were found: by needle index the first place, and the needles each kind
// of place held.
struct Findings {
  std::map<size_t, std::string> where;
  std::set<size_t> in_writes, in_images, in_current, in_durable;
  size_t count() const { return where.size(); }
  void add(const std::set<size_t>& hits, std::set<size_t>& kind, const std::string& place) {
    for (size_t h : hits) {
      kind.insert(h);
      where.emplace(h, place);
    }
  }
};

// The key labelled `what` in `needles`, from its windows: a key added to an empty set
// has every window added, in order. Empty when there is no such key.
Bytes key_of(const NeedleSet& needles, const std::string& what) {
  Bytes key;
  for (size_t i = 0; i < needles.size(); i++) {
    if (needles.what(i) != what) continue;
    ByteView window = needles.bytes(i);
    if (key.empty()) {
      key.assign(window.begin(), window.end());
    } else {
      key.push_back(window[kNeedleBytes - 1]);
    }
  }
  return key;
}

Task<void> checkpoint_task(Engine& e, RecordWriter& w, Timestamp at, bool& done) {
  // Its log position is everything written so far (this test has no log of its own):
  // page servers refuse retention past the newest checkpoint's log position.
  auto cp = co_await e.checkpoint(w, at, w.chain_head());
  EXPECT_TRUE(cp.is_ok()) << cp.status().to_string();
  done = true;
}

// A cluster whose page servers' writes are tapped, a leader, and the workload.
class PlaintextRun {
 public:
  PlaintextRun(uint64_t seed, bool encrypt) {
    cluster_ = std::make_unique<EngineCluster>(seed);
    for (NodeId n : cluster_->servers()) {
      DiskTap* tap = &taps_[n];
      cluster_->world().disk(n).set_write_observer(
          [tap](const std::string& path, uint64_t offset, ByteView data) {
            tap->writes.emplace_back(data.begin(), data.end());
            Bytes& image = tap->images[path];
            if (image.size() < offset + data.size()) image.resize(offset + data.size());
            std::copy(data.begin(), data.end(), image.begin() + static_cast<ptrdiff_t>(offset));
            tap->bytes += data.size();
            auto last = std::find_if(data.rbegin(), data.rend(), [](uint8_t b) { return b != 0; });
            tap->record_bytes += static_cast<uint64_t>(data.rend() - last);
          });
    }
    EngineOptions o;
    o.encrypt = encrypt;
    o.shape.leaf_bytes_max = 4096;
    o.io_timeout = 2s;
    leader_ = &cluster_->add_compute("leader", o);
    tool_ = cluster_->add_tool_node("tool");
    rng_ = cluster_->world().random_stream("canaries");
  }

  EngineCluster& cluster() { return *cluster_; }
  ComputeNode& leader() { return *leader_; }
  Engine& engine() { return leader_->engine(); }

  // Bootstrap, then per phase: values with canaries, a key rotation in some phases, a
  // checkpoint; in the crash phase a page server dies with a torn tail in the middle of
  // the checkpoint's writes and comes back from its disk.
  void workload() {
    ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
      std::vector<TableId> tables{kT1, kT2};
      auto keys = co_await engine().bootstrap_keys(tables);
      EXPECT_TRUE(keys.is_ok()) << keys.status().to_string();
      first_keystore_ = engine().keystore();
      EXPECT_TRUE(engine().push_keystore(ts(1)).is_ok());
    }));
    for (int phase = 0; phase < kPhases; phase++) {
      SCOPED_TRACE(fmt::format("phase {}", phase));
      for (TableId t : {kT1, kT2}) {
        for (int i = 0; i < kValuesPerTablePerPhase; i++) write(t, phase, i);
      }
      ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
        if (phase == 1 || phase == 4) {
          auto rotated = co_await engine().rotate_kek();
          EXPECT_TRUE(rotated.is_ok()) << rotated.status().to_string();
        } else if (phase == 3) {
          auto rotated = co_await engine().rotate_cmk();
          EXPECT_TRUE(rotated.is_ok()) << rotated.status().to_string();
        } else {
          co_return;
        }
        EXPECT_TRUE(engine().push_keystore(ts(++now_)).is_ok());
      }));
      if (phase == 2) {
        ASSERT_NO_FATAL_FAILURE(checkpoint_with_torn_server());
      } else {
        bool done = false;
        ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
          co_await checkpoint_task(engine(), leader_->writer(), ts(now_), done);
        }));
        ASSERT_TRUE(done);
      }
      checkpoints_.push_back(engine().installed_checkpoint_lsn());
    }
  }

  // Lets the page service drop what only the older checkpoints need (their segment files
  // may go; what they held was observed when written).
  void drop_old_checkpoints() {
    ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
      Status st = co_await leader_->app->client->set_retention(
          checkpoints_[kPhases - 2], leader_->env().executor().deadline_after(2s));
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    }));
    cluster_->world().run_for(1s);  // the restarted server catches up; garbage collection
  }

  void write(TableId t, int phase, int i) {
    Bytes canary(kNeedleBytes);
    rng_->fill(canary);
    std::string key = fmt::format("key{:05}", phase * kValuesPerTablePerPhase + i);
    std::string value = fmt::format("value {} of table {}: <", i, t.value);
    value.append(canary.begin(), canary.end());
    value += "> end";
    now_++;
    Status st = engine().apply_write(t, key, ts(now_), value);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    canaries.add(canary, fmt::format("canary of table {} {}", t.value, key));
    value_bytes += value.size();
  }

  void checkpoint_with_torn_server() {
    const NodeId victim = cluster_->servers()[1];
    const uint64_t mark = taps_[victim].record_bytes;
    bool done = false;
    leader_->env().executor().spawn("checkpoint",
                                    checkpoint_task(engine(), leader_->writer(), ts(now_), done));
    // The checkpoint's pages reach the victim's disk (more than a new segment's header);
    // the write is not synced yet.
    cluster_->world().run_until([&] { return taps_[victim].record_bytes > mark + 4096 || done; },
                                cluster_->world().now() + 10s);
    EXPECT_FALSE(done);
    cluster_->world().crash(victim, UnsyncedOnCrash::kRandomSubset);
    cluster_->world().start(victim);
    ASSERT_TRUE(cluster_->world().run_until([&] { return done; }, cluster_->world().now() + 60s));
    EXPECT_EQ(cluster_->world().disk(victim).stats().crashes, 1u);
  }

  // Plants a LOG record with `payload` as plaintext, after the leader's last record, on
  // every page server.
  void plant(Bytes payload) {
    ASSERT_TRUE(cluster_->run_on(tool_, [&]() -> Task<void> {
      Env& env = *cluster_->world().env(tool_);
      std::vector<Record> one(1);
      one[0].type = RecordType::kLog;
      one[0].table = kLogTable;
      one[0].lsn = leader_->writer().next_lsn();
      one[0].prev_lsn = leader_->writer().chain_head();
      one[0].term = Term(1);
      one[0].payload = payload;
      for (const Address& a : cluster_->addresses()) {
        PageServerClient c(env, a);
        Status st = co_await c.append(one, Term(1), env.executor().deadline_after(2s));
        EXPECT_TRUE(st.is_ok()) << st.to_string();
      }
    }));
  }

  // Every key the keystores name, unwrapped: KEKs through the KMS, DEKs under their KEK,
  // and the page key of every keystore page the page service holds.
  void collect_keys() {
    ASSERT_TRUE(cluster_->run(*leader_, [&]() -> Task<void> {
      Kms& kms = engine().kms();
      const std::array<const Keystore*, 2> keystores{&first_keystore_, &engine().keystore()};
      for (const Keystore* ks : keystores) {
        // Each keystore's keys in a set of their own first, so its DEKs can be compared.
        NeedleSet own;
        Status added = co_await add_keystore_keys(kms, *ks, own);
        EXPECT_TRUE(added.is_ok()) << added.to_string();
        for (size_t i = 0; i < own.size(); i++) keys.add(own.bytes(i), own.what(i));
        for (const auto& [v, entry] : ks->keks()) {
          if (own.has_label(kek_needle_label(v))) kek_count_.insert(v);
        }
        for (const auto& [ref, entry] : ks->deks()) {
          Bytes dek = key_of(own, dek_needle_label(ref));
          EXPECT_EQ(dek.size(), kSecretKeyBytes) << dek_needle_label(ref);
          if (dek.size() != kSecretKeyBytes) continue;
          auto [known, fresh] = deks_.emplace(ref, dek);
          // A rewrap changes the wrapping, never the key.
          if (!fresh) {
            EXPECT_EQ(known->second, dek);
          }
        }
      }
      // Keystore pages: header, then cmk version u32 and the length-prefixed wrapped key.
      Env& env = leader_->env();
      PageServerClient source(env, cluster_->addresses()[0]);
      Lsn after;
      for (int i = 0; i < 1000 && after < leader_->writer().chain_head(); i++) {
        auto chunk = co_await source.scan(after, 1 << 20, env.executor().deadline_after(2s));
        EXPECT_TRUE(chunk.is_ok()) << chunk.status().to_string();
        if (!chunk.is_ok() || chunk->records.empty()) break;
        after = chunk->through;
        for (const Record& r : chunk->records) {
          if (r.type != RecordType::kKeystore) continue;
          auto header = peek_keystore_page(r.payload);
          EXPECT_TRUE(header.is_ok());
          if (!header.is_ok()) continue;
          ByteReader body(ByteView(r.payload).subspan(kKeystorePageHeaderBytes));
          WrappedKey wrapped;
          ByteView blob;
          EXPECT_TRUE(body.get_fixed32(&wrapped.cmk_version).is_ok());
          EXPECT_TRUE(body.get_length_prefixed(&blob).is_ok());
          wrapped.blob.assign(blob.begin(), blob.end());
          Bytes context;
          ByteWriter w(context);
          w.put_string("keystore-page");
          w.put_fixed64(header->cluster_id);
          w.put_fixed64(header->keystore_version);
          auto page_key = co_await kms.unwrap(std::move(context), std::move(wrapped));
          EXPECT_TRUE(page_key.is_ok()) << page_key.status().to_string();
          if (!page_key.is_ok()) continue;
          keys.add(page_key->reveal(),
                   fmt::format("keystore page key v{}", header->keystore_version));
          page_keys_++;
        }
      }
    }));
  }

  // Searches every written range, every file image as written, and every current and
  // durable file of every page server.
  Findings search(const NeedleSet& needles) const {
    Findings f;
    for (NodeId n : cluster_->servers()) {
      const std::string server = cluster_->world().name(n);
      const DiskTap& tap = taps_.at(n);
      std::set<size_t> hits;
      for (const Bytes& w : tap.writes) {
        hits.clear();
        needles.find(w, hits);
        f.add(hits, f.in_writes, server + " write");
      }
      for (const auto& [path, image] : tap.images) {
        hits.clear();
        needles.find(image, hits);
        f.add(hits, f.in_images, server + " written image of " + path);
      }
      SimDiskStore& disk = cluster_->world().disk(n);
      for (const std::string& path : disk.current_files()) {
        hits.clear();
        needles.find(*disk.current_content(path), hits);
        f.add(hits, f.in_current, server + " current " + path);
      }
      for (const std::string& path : disk.durable_files()) {
        hits.clear();
        needles.find(*disk.durable_content(path), hits);
        f.add(hits, f.in_durable, server + " durable " + path);
      }
    }
    return f;
  }

  uint64_t observed_bytes() const {
    uint64_t n = 0;
    for (const auto& [id, tap] : taps_) n += tap.bytes;
    return n;
  }
  size_t durable_bytes() const {
    size_t n = 0;
    for (NodeId s : cluster_->servers()) {
      SimDiskStore& disk = cluster_->world().disk(s);
      for (const std::string& path : disk.durable_files()) n += disk.durable_content(path)->size();
    }
    return n;
  }
  uint64_t torn_bytes_truncated() const {
    auto* server = dynamic_cast<PageServer*>(cluster_->world().app(cluster_->servers()[1]));
    if (server == nullptr || server->store() == nullptr) return 0;
    return server->store()->stats().torn_bytes_truncated;
  }

  NeedleSet canaries;
  NeedleSet keys;
  uint64_t value_bytes = 0;
  const std::map<DekRef, Bytes>& deks() const { return deks_; }
  size_t kek_count() const { return kek_count_.size(); }
  size_t page_keys() const { return page_keys_; }
  size_t checkpoints() const { return checkpoints_.size(); }

 private:
  // Declared before the cluster: the observers point into it.
  std::map<NodeId, DiskTap> taps_;
  std::unique_ptr<EngineCluster> cluster_;
  ComputeNode* leader_ = nullptr;
  NodeId tool_;
  std::unique_ptr<Random> rng_;
  uint64_t now_ = 1;
  Keystore first_keystore_;
  std::vector<Lsn> checkpoints_;
  std::set<uint32_t> kek_count_;
  std::map<DekRef, Bytes> deks_;
  size_t page_keys_ = 0;
};

std::string describe(const NeedleSet& needles, const Findings& f, size_t max = 5) {
  std::string out;
  size_t n = 0;
  for (const auto& [index, where] : f.where) {
    if (n++ == max) break;
    out += fmt::format("\n  {} in {}", needles.what(index), where);
  }
  return out;
}

TEST(Plaintext, NoCanaryAndNoKeyReachesAPageServer) {
  // Seed 14: its crash tears the victim's tail. (Seed 11's stopped doing so once page
  // servers wrote zeros ahead of their records: that crash kept all or none of the write.)
  PlaintextRun run(14, /*encrypt=*/true);
  ASSERT_NO_FATAL_FAILURE(run.workload());
  ASSERT_NO_FATAL_FAILURE(run.collect_keys());
  ASSERT_NO_FATAL_FAILURE(run.drop_old_checkpoints());
  EXPECT_EQ(run.checkpoints(), static_cast<size_t>(kPhases));
  EXPECT_EQ(run.canaries.size(), 2u * kPhases * kValuesPerTablePerPhase);
  // KEK v1..v3, the DEKs of the log and both tables, a page key per keystore page (the
  // bootstrap, two KEK rotations and a CMK rotation).
  EXPECT_EQ(run.kek_count(), 3u);
  EXPECT_EQ(run.deks().size(), 3u);
  EXPECT_EQ(run.page_keys(), 4u);
  // The data went through the disks: at least the values, at least once.
  EXPECT_GT(run.observed_bytes(), run.value_bytes);
  EXPECT_GT(run.durable_bytes(), run.value_bytes);
  // The crash tore the victim's tail (its recovery truncated bytes that had been written).
  EXPECT_GT(run.torn_bytes_truncated(), 0u) << "the crash left no torn tail: choose another seed";
  RecordProperty("observed_bytes", std::to_string(run.observed_bytes()));

  Findings canaries = run.search(run.canaries);
  EXPECT_EQ(canaries.count(), 0u) << " canaries on page servers:"
                                  << describe(run.canaries, canaries);
  Findings keys = run.search(run.keys);
  EXPECT_EQ(keys.count(), 0u) << " key windows on page servers:" << describe(run.keys, keys);
}

// The control: the same workload with encryption off writes every canary, and a key
// planted in a plaintext LOG record is found, by the same search over the same taps.
TEST(Plaintext, ControlTheSearchFindsPlaintext) {
  PlaintextRun run(11, /*encrypt=*/false);
  ASSERT_NO_FATAL_FAILURE(run.workload());
  ASSERT_NO_FATAL_FAILURE(run.collect_keys());
  ASSERT_NO_FATAL_FAILURE(run.drop_old_checkpoints());
  Findings canaries = run.search(run.canaries);
  EXPECT_EQ(canaries.in_writes.size(), run.canaries.size());
  EXPECT_EQ(canaries.in_images.size(), run.canaries.size());
  EXPECT_EQ(canaries.in_current.size(), run.canaries.size());
  EXPECT_EQ(canaries.in_durable.size(), run.canaries.size());
  Findings keys = run.search(run.keys);
  EXPECT_EQ(keys.count(), 0u) << describe(run.keys, keys);

  // One DEK, planted in plaintext: every window of it is found, in every kind of place.
  ASSERT_FALSE(run.deks().empty());
  const Bytes dek = run.deks().begin()->second;
  Bytes payload = {'l', 'e', 'a', 'k', ':'};
  payload.insert(payload.end(), dek.begin(), dek.end());
  ASSERT_NO_FATAL_FAILURE(run.plant(payload));
  keys = run.search(run.keys);
  const size_t windows = kSecretKeyBytes - kNeedleBytes + 1;
  EXPECT_EQ(keys.count(), windows);
  EXPECT_EQ(keys.in_writes.size(), windows);
  EXPECT_EQ(keys.in_images.size(), windows);
  EXPECT_EQ(keys.in_current.size(), windows);
  EXPECT_EQ(keys.in_durable.size(), windows);
}

}  // namespace
}  // namespace quire
