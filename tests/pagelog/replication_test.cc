// Three page servers in the simulator under crashes (losing or tearing unsynced writes),
// partitions, message loss and seal bursts, with one writer at W=2. Afterwards every
// record acknowledged as durable must be readable after any single server is killed and
// restarted empty or stale, and get_page must match a reference model at random LSNs.
#include "pagelog/replication_client.h"

#include <map>

#include <gtest/gtest.h>

#include "pagelog/page_server.h"
#include "support/sim_node.h"

namespace quire {
namespace {

using testing_support::IdleApp;

constexpr int kPages = 5;

// The writer's view: every record it got acknowledged at W.
struct Model {
  std::map<Lsn, Record> acked;
  Lsn last_acked;

  // The chain get_page must return for (page, as_of), or the error code.
  Result<std::vector<Record>> expect(PageId page, Lsn as_of) const {
    std::vector<Record> mine;
    for (const auto& [l, r] : acked) {
      if (l > as_of) break;
      if (record_type_is_page(r.type) && r.page == page) mine.push_back(r);
    }
    if (mine.empty()) return not_found("none");
    if (mine.back().type == RecordType::kDiscard) return Status(Code::kDiscarded, "discarded");
    size_t image = mine.size();
    while (image-- > 0) {
      if (mine[image].type != RecordType::kDelta) break;
    }
    return std::vector<Record>(mine.begin() + image, mine.end());
  }
};

class ReplicationSim {
 public:
  explicit ReplicationSim(uint64_t seed) : world_(seed), rng_(world_.random_stream("test")) {
    std::vector<Address> addrs;
    for (int i = 1; i <= 3; ++i) addrs.push_back("ps" + std::to_string(i) + ":7000");
    for (int i = 0; i < 3; ++i) {
      PageServerOptions o;
      o.listen = addrs[i];
      o.store.segment_bytes_max = 16 << 10;  // small segments: many roll-overs
      for (int j = 0; j < 3; ++j) {
        if (j != i) o.peers.push_back(addrs[j]);
      }
      servers_.push_back(world_.add_node("ps" + std::to_string(i + 1), [o](Env& env) {
        return std::make_unique<PageServer>(env, o);
      }));
    }
    client_ = world_.add_node("client", [](Env&) { return std::make_unique<IdleApp>(); });
    for (NodeId n : world_.nodes()) world_.start(n);
    ReplicationOptions ro;
    ro.servers = addrs;
    ro.write_quorum = 2;
    // Parts of a record or two: get_page reads chains in several parts, under the faults.
    ro.page_client.part_bytes_max = kPartBytesMax;
    repl_ = std::make_unique<ReplicationClient>(*world_.env(client_), ro);
  }

  Env& env() { return *world_.env(client_); }

  // Builds the next batch of 1-4 records on the chain.
  std::vector<Record> next_batch() {
    std::vector<Record> batch;
    int n = 1 + static_cast<int>(rng_->uniform(4));
    for (int i = 0; i < n; ++i) {
      Record r;
      r.lsn = Lsn(next_lsn_);
      r.prev_lsn = Lsn(next_lsn_ - 1);
      r.term = Term(1);
      r.payload = Bytes(50 + rng_->uniform(400), static_cast<uint8_t>(next_lsn_));
      uint64_t pick = rng_->uniform(10);
      PageId page(1 + rng_->uniform(kPages));
      auto& image = image_of_[page.value];
      if (pick < 5) {
        r.type = RecordType::kLog;
      } else if (pick < 7 || image.is_zero()) {
        r.type = RecordType::kPage;
        r.table = TableId(1);
        r.page = page;
        r.backlink_lsn = image;
        image = r.lsn;
      } else if (pick < 9) {
        r.type = RecordType::kDelta;
        r.table = TableId(1);
        r.page = page;
        r.base_lsn = image;
      } else {
        r.type = RecordType::kDiscard;
        r.table = TableId(1);
        r.page = page;
        image = Lsn();  // the next record of this page starts a new image
      }
      batch.push_back(std::move(r));
      next_lsn_++;
    }
    return batch;
  }

  // Writes until `end`, re-sending a batch whose outcome is unknown until it is durable.
  Task<void> writer(MonoTime end) {
    while (env().executor().now() < end) {
      std::vector<Record> batch = next_batch();
      while (true) {
        std::vector<Record> copy = batch;
        Status st = co_await repl_->write(std::move(copy), env().executor().deadline_after(2s));
        if (st.is_ok()) break;
        if (!st.retriable()) {
          ADD_FAILURE() << "write refused: " << st.to_string();
          co_return;
        }
      }
      for (auto& r : batch) model_.acked[r.lsn] = r;
      model_.last_acked = batch.back().lsn;
      Status slept = co_await env().executor().sleep(rng_->duration(100us, 5ms));
      if (!slept.is_ok()) co_return;
    }
    writer_done_ = true;
  }

  Task<void> seal_burst(size_t server) {
    PageServerClient c(env(), "ps" + std::to_string(server + 1) + ":7000");
    for (int i = 0; i < 20; ++i) (void)co_await c.seal(env().executor().deadline_after(100ms));
  }

  // One fault at a time on one server, so a quorum can always form.
  void nemesis(MonoTime end) {
    while (world_.now() + 2s < end) {
      world_.run_for(rng_->duration(100ms, 500ms));
      NodeId victim = servers_[rng_->uniform(3)];
      switch (rng_->uniform(4)) {
        case 0: {  // crash, then come back intact, empty or stale
          auto snapshot = world_.disk(victim).snapshot();
          world_.run_for(rng_->duration(10ms, 300ms));
          world_.crash(victim, static_cast<UnsyncedOnCrash>(rng_->uniform(3)));
          uint64_t how = rng_->uniform(3);
          if (how == 1) world_.disk(victim).wipe();
          if (how == 2) world_.disk(victim).restore(snapshot);
          world_.run_for(rng_->duration(50ms, 500ms));
          world_.start(victim);
          break;
        }
        case 1:
          world_.network().isolate(victim);
          world_.run_for(rng_->duration(50ms, 500ms));
          for (NodeId o : world_.nodes()) world_.network().heal(victim, o);
          break;
        case 2: {
          LinkFaults f;
          f.drop = 0.2;
          f.duplicate = 0.1;
          f.reorder = true;
          world_.network().set_link_faults(client_, victim, f);
          world_.network().set_link_faults(victim, client_, f);
          world_.run_for(rng_->duration(50ms, 500ms));
          world_.network().clear_link_faults();
          break;
        }
        case 3:
          env().executor().spawn("seal-burst", seal_burst(victim - servers_[0]));
          break;
      }
    }
  }

  // Reads everything acknowledged through the client (with failover) and compares.
  Task<void> check_reads(std::string when) {
    Deadline d = env().executor().deadline_after(30s);
    size_t log_count = 0;
    for (const auto& [l, r] : model_.acked) log_count += r.type == RecordType::kLog;
    std::vector<Record> log;
    Lsn from(1);
    while (from <= model_.last_acked) {
      auto part = co_await repl_->read_log(from, 64 << 10, d);
      EXPECT_TRUE(part.is_ok()) << when << ": " << part.status().to_string();
      if (!part.is_ok()) break;
      for (auto& r : part->records) {
        if (r.lsn <= model_.last_acked) log.push_back(r);
      }
      from = Lsn(part->through.value + 1);
    }
    EXPECT_EQ(log.size(), log_count) << when;
    for (const auto& r : log) {
      auto it = model_.acked.find(r.lsn);
      EXPECT_TRUE(it != model_.acked.end() && it->second == r) << when << " lsn " << r.lsn.value;
    }
    for (int i = 0; i < 100; ++i) {
      PageId page(1 + rng_->uniform(kPages));
      Lsn as_of(1 + rng_->uniform(model_.last_acked.value));
      auto want = model_.expect(page, as_of);
      auto got = co_await repl_->get_page(TableId(1), page, as_of, d);
      EXPECT_EQ(got.code(), want.code()) << when << " page " << page.value << " as_of "
                                         << as_of.value << ": " << got.status().to_string();
      if (got.is_ok() && want.is_ok()) {
        EXPECT_EQ(*got, *want) << when << " page " << page.value;
        size_t bytes = 0;
        for (const Record& r : *got) bytes += r.framed_size();
        multi_part_reads_ += bytes > kPartBytesMax;
      }
    }
    checked_++;
  }

  void run_check(const std::string& when) {
    int before = checked_;
    env().executor().spawn("check", check_reads(when));
    world_.run_until([&] { return checked_ > before; }, world_.now() + 120s);
    ASSERT_GT(checked_, before) << when << ": the check did not finish";
  }

  SimWorld world_;
  std::unique_ptr<Random> rng_;
  std::vector<NodeId> servers_;
  NodeId client_;
  std::unique_ptr<ReplicationClient> repl_;
  Model model_;
  std::map<uint64_t, Lsn> image_of_;
  uint64_t next_lsn_ = 1;
  bool writer_done_ = false;
  int checked_ = 0;
  int multi_part_reads_ = 0;  // get_page answers larger than one part
  static constexpr size_t kPartBytesMax = 1024;
};

class ReplicationTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ReplicationTest, AcknowledgedRecordsSurviveAnySingleServerLoss) {
  ReplicationSim sim(GetParam());
  MonoTime end = sim.world_.now() + 20s;
  sim.env().executor().spawn("writer", sim.writer(end));
  sim.nemesis(end);
  sim.world_.run_until([&] { return sim.writer_done_; }, end + 60s);
  ASSERT_TRUE(sim.writer_done_);
  ASSERT_GT(sim.model_.acked.size(), 100u);
  EXPECT_EQ(sim.repl_->durable_lsn(), sim.model_.last_acked);
  for (NodeId n : sim.servers_) {
    if (!sim.world_.is_up(n)) sim.world_.start(n);
  }
  sim.world_.network().heal_all();
  sim.world_.run_for(2s);
  sim.run_check("after faults");
  EXPECT_GT(sim.multi_part_reads_, 0);  // chains did come in several parts

  // Kill each server in turn and bring it back empty or stale; reads stay right, and
  // the server catches up from its peers.
  for (size_t k = 0; k < 3; ++k) {
    NodeId victim = sim.servers_[k];
    auto stale = sim.world_.disk(victim).snapshot();
    sim.world_.crash(victim, UnsyncedOnCrash::kRandomSubset);
    if (k % 2 == 0) {
      sim.world_.disk(victim).wipe();
    } else {
      sim.world_.disk(victim).restore(stale);
    }
    sim.world_.start(victim);
    sim.repl_->set_preferred(k);  // read from the restarted server first: it must fail over
    sim.run_check("server " + std::to_string(k + 1) + " restarted " +
                  (k % 2 == 0 ? "empty" : "stale"));
    sim.world_.run_for(5s);
    PageServerClient direct(sim.env(), "ps" + std::to_string(k + 1) + ":7000");
    Lsn caught_up;
    auto probe = [&]() -> Task<void> {
      auto st = co_await direct.status(sim.env().executor().deadline_after(2s));
      if (st.is_ok()) caught_up = st->durable_lsn;
    };
    sim.env().executor().spawn("probe", probe());
    sim.world_.run_for(3s);
    EXPECT_GE(caught_up, sim.model_.last_acked) << "server " << k + 1 << " did not catch up";
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReplicationTest, ::testing::Values(1, 2, 3, 4, 5));

}  // namespace
}  // namespace quire
