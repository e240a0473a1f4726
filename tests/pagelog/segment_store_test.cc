#include "pagelog/segment_store.h"

#include <functional>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/sim_node.h"

namespace quire {
namespace {

using testing_support::IdleApp;

// A simulated node holding a SegmentStore, with helpers to run test coroutines on it and
// to crash and reopen it.
class StoreTest : public ::testing::Test {
 protected:
  StoreTest() {
    node_ = world_.add_node("ps", [](Env&) { return std::make_unique<IdleApp>(); });
    world_.start(node_);
  }
  ~StoreTest() override { store_.reset(); }

  Env& env() { return *world_.env(node_); }
  SimDiskStore& disk() { return world_.disk(node_); }

  template <typename F>
  void run(F body) {
    ASSERT_TRUE(testing_support::run_in_node(world_, env(), std::move(body)));
  }

  void open(SegmentStoreOptions options = {}) {
    options_ = options;
    run([&]() -> Task<void> {
      auto s = co_await SegmentStore::open(env(), options_);
      EXPECT_TRUE(s.is_ok()) << s.status().to_string();
      if (s.is_ok()) store_ = std::move(s).value();
    });
    ASSERT_TRUE(store_);
  }

  void crash_and_reopen(UnsyncedOnCrash mode) {
    store_.reset();
    world_.crash(node_, mode);
    world_.start(node_);
    open(options_);
  }

  Status append(std::vector<Record> records, AppendSource source = AppendSource::kWriter,
                std::optional<Term> writer_term = std::nullopt) {
    Status out = cancelled("unset");
    run([&]() -> Task<void> {
      out = co_await store_->append(std::move(records), source, writer_term);
    });
    return out;
  }

  Status abandon_after(Lsn lsn, std::optional<Term> writer_term = std::nullopt) {
    Status out = cancelled("unset");
    run([&]() -> Task<void> { out = co_await store_->abandon_after(lsn, writer_term); });
    return out;
  }

  Status raise_term(Term term) {
    Status out = cancelled("unset");
    run([&]() -> Task<void> { out = co_await store_->raise_term(term); });
    return out;
  }

  Status set_retention(Lsn lsn) {
    Status out = cancelled("unset");
    run([&]() -> Task<void> { out = co_await store_->set_retention(lsn); });
    return out;
  }

  // The length of a file on the node's disk (as a read of it would see it now).
  uint64_t file_size(const std::string& path) {
    uint64_t out = 0;
    run([&]() -> Task<void> {
      auto f = co_await env().disk().open(path, {});
      EXPECT_TRUE(f.is_ok()) << f.status().to_string();
      if (!f.is_ok()) co_return;
      auto size = (*f)->size();
      EXPECT_TRUE(size.is_ok());
      if (size.is_ok()) out = *size;
    });
    return out;
  }

  std::string segment_of(Lsn lsn) {
    return "segments/" + segment_file_name(store_->find(lsn)->segment);
  }

  // Where the record at `lsn` ends in its segment file.
  uint64_t end_of(Lsn lsn) {
    const RecordRef* ref = store_->find(lsn);
    return ref->offset + ref->size;
  }

  Result<Record> read_lsn(Lsn lsn) {
    Result<Record> out = not_found("unset");
    const RecordRef* ref = store_->find(lsn);
    if (ref == nullptr) return not_found("not indexed");
    RecordRef copy = *ref;
    run([&]() -> Task<void> { out = co_await store_->read(copy); });
    return out;
  }

  SimWorld world_{11};
  NodeId node_;
  SegmentStoreOptions options_;
  std::unique_ptr<SegmentStore> store_;
};

Record log_record(uint64_t lsn, uint64_t prev, size_t payload = 100) {
  Record r;
  r.type = RecordType::kLog;
  r.lsn = Lsn(lsn);
  r.prev_lsn = Lsn(prev);
  r.term = Term(1);
  r.payload = Bytes(payload, static_cast<uint8_t>(lsn));
  return r;
}

Record page_record(RecordType type, uint64_t page, uint64_t lsn, uint64_t prev, uint64_t base = 0) {
  Record r = log_record(lsn, prev, 64);
  r.type = type;
  r.table = TableId(7);
  r.page = PageId(page);
  r.base_lsn = Lsn(base);
  return r;
}

// A checkpoint's completion record; `log_lsn` is the checkpoint's log position.
Record completion_record(uint64_t lsn, uint64_t prev, uint64_t log_lsn) {
  Record r = log_record(lsn, prev, 32);
  r.type = RecordType::kCheckpointComplete;
  r.base_lsn = Lsn(log_lsn);
  return r;
}

// A LOG record carrying a commit point.
Record committing_log_record(uint64_t lsn, uint64_t prev, uint64_t commit_point) {
  Record r = log_record(lsn, prev);
  r.backlink_lsn = Lsn(commit_point);
  return r;
}

// The same record written by a writer of `term` (a take-over re-writes with the same bytes
// under a new term; `payload_byte` makes it a different record too).
Record of_term(Record r, uint64_t term, std::optional<uint8_t> payload_byte = std::nullopt) {
  r.term = Term(term);
  if (payload_byte) r.payload.assign(r.payload.size(), *payload_byte);
  return r;
}

TEST_F(StoreTest, AppendedRecordsReadBackAndSurviveACrash) {
  open();
  std::vector<Record> batch;
  for (uint64_t l = 1; l <= 50; ++l) batch.push_back(log_record(l, l - 1));
  ASSERT_TRUE(append(batch).is_ok());
  EXPECT_EQ(store_->last_lsn(), Lsn(50));
  EXPECT_EQ(store_->complete_lsn(), Lsn(50));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(50));
  for (uint64_t l = 1; l <= 50; ++l) {
    auto r = read_lsn(Lsn(l));
    ASSERT_TRUE(r.is_ok()) << l;
    EXPECT_EQ(*r, batch[l - 1]);
  }
  auto scan = store_->scan_after(Lsn(10), store_->complete_lsn(), 500, true);
  ASSERT_FALSE(scan.empty());
  EXPECT_EQ(scan.front().lsn, Lsn(11));
  EXPECT_LE(scan.size(), 3u);  // 172-byte records, 500-byte budget
}

TEST_F(StoreTest, ConcurrentAppendsShareOneSync) {
  open();
  uint64_t syncs_before = disk().stats().syncs;
  int ok = 0;
  auto writer = [&](uint64_t lsn) -> Task<void> {
    std::vector<Record> batch{
        log_record(lsn, lsn - 1)};  // g++ 12 rejects a braced list inside co_await
    Status st = co_await store_->append(std::move(batch));
    if (st.is_ok()) ok++;
  };
  for (uint64_t l = 1; l <= 20; ++l) env().executor().spawn("w", writer(l));
  world_.run_for(1s);
  EXPECT_EQ(ok, 20);
  uint64_t syncs = disk().stats().syncs - syncs_before;
  EXPECT_LT(syncs, 20u) << "group commit should batch concurrent appends";
  EXPECT_EQ(store_->complete_lsn(), Lsn(20));
}

TEST_F(StoreTest, WritesInFlightDuringASealFailWithSealed) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  Status first = cancelled("unset"), second = cancelled("unset"), sealed = cancelled("unset");
  // `first` takes the lock and writes; `second` queues behind it; then a seal arrives.
  auto w = [&](uint64_t lsn, Status& out) -> Task<void> {
    std::vector<Record> batch{log_record(lsn, lsn - 1)};
    out = co_await store_->append(std::move(batch));
  };
  auto s = [&]() -> Task<void> { sealed = co_await store_->seal(); };
  env().executor().spawn("first", w(2, first));
  env().executor().spawn("second", w(3, second));
  env().executor().spawn("seal", s());
  world_.run_for(1s);
  EXPECT_TRUE(sealed.is_ok());
  EXPECT_EQ(second.code(), Code::kSealed);
  EXPECT_TRUE(second.retriable());
  // The re-send lands in the new segment.
  ASSERT_TRUE(append({log_record(3, 2)}).is_ok());
  EXPECT_EQ(store_->stats().segments, 2u);
  EXPECT_EQ(store_->stats().seals, 1u);
  EXPECT_EQ(store_->find(Lsn(3))->segment, 2u);
}

TEST_F(StoreTest, SegmentsRollOverAtTheirSizeBound) {
  open({.dir = "segments", .segment_bytes_max = 4096});
  for (uint64_t l = 1; l <= 100; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 500)}).is_ok());
  EXPECT_GT(store_->stats().segments, 10u);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(100));
  EXPECT_TRUE(read_lsn(Lsn(37)).is_ok());
}

// Unsynced bytes of a write the crash interrupted: where the next records go (over the
// zeros written ahead), or at the end of the file (past them). Either way a torn tail,
// truncated; the acknowledged records before it survive, what the crash kept of the torn
// record is counted (never the zeros after it), and the next record goes where it was.
TEST_F(StoreTest, TornTailIsTruncatedAndAcknowledgedRecordsSurvive) {
  for (const bool over_the_zeros : {true, false}) {
    for (int round = 0; round < 20; ++round) {
      SCOPED_TRACE(
          fmt::format("{} round {}", over_the_zeros ? "over the zeros" : "past them", round));
      open();
      uint64_t base = store_->last_lsn().value;
      for (uint64_t l = base + 1; l <= base + 10; ++l)
        ASSERT_TRUE(append({log_record(l, l - 1, 700)}).is_ok());
      Bytes torn;
      encode_record(log_record(base + 11, base + 10, 3000), torn);
      torn.resize(torn.size() / 2);
      const uint64_t records_end = end_of(Lsn(base + 10));
      run([&]() -> Task<void> {
        auto f = co_await env().disk().open(segment_of(Lsn(base + 10)), {});
        if (over_the_zeros) {
          (void)co_await (*f)->write(records_end, torn);
        } else {
          (void)co_await (*f)->append(torn);
        }
      });
      crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
      EXPECT_EQ(store_->complete_lsn(), Lsn(base + 10));
      EXPECT_TRUE(store_->stats().damaged.empty());
      if (over_the_zeros) {
        EXPECT_LE(store_->stats().torn_bytes_truncated, torn.size());
      }
      ASSERT_TRUE(append({log_record(base + 11, base + 10)}).is_ok());
      EXPECT_EQ(store_->find(Lsn(base + 11))->offset, records_end);
      EXPECT_EQ(store_->complete_lsn(), Lsn(base + 11));
      store_.reset();
    }
  }
}

// ---- Zeros written ahead of the records (SegmentStoreOptions::zero_ahead_bytes).

TEST_F(StoreTest, ZerosAheadOfTheRecordsAreNeitherTornNorDamaged) {
  open();
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  const std::string seg = segment_of(Lsn(10));
  // The first record's write laid zero_ahead_bytes of zeros after it: the next nine
  // overwrote zeros.
  EXPECT_EQ(file_size(seg), end_of(Lsn(1)) + (1u << 20));
  const uint64_t records_end = end_of(Lsn(10));
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  EXPECT_EQ(store_->stats().torn_bytes_truncated, 0u);
  EXPECT_TRUE(store_->stats().damaged.empty());
  // The next record goes right after the last one, not after the zeros.
  ASSERT_TRUE(append({log_record(11, 10)}).is_ok());
  EXPECT_EQ(store_->find(Lsn(11))->offset, records_end);
  EXPECT_EQ(file_size(seg), end_of(Lsn(1)) + (1u << 20));
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(11));
  for (uint64_t l = 1; l <= 11; ++l) EXPECT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
}

TEST_F(StoreTest, AGroupPastTheZerosWritesTheNextOnesAndNeverPastTheSegmentBound) {
  constexpr uint64_t kBound = 64 << 10;
  constexpr uint64_t kAhead = 8 << 10;
  open({.dir = "segments", .segment_bytes_max = kBound, .zero_ahead_bytes = kAhead});
  uint64_t l = 0;
  size_t with_zeros = 0;
  for (int i = 0; i < 200; ++i, ++l) {
    ASSERT_TRUE(append({log_record(l + 1, l, 700)}).is_ok());
    // The active file runs at most kAhead past the last record, and never past the bound.
    const uint64_t end = end_of(Lsn(l + 1));
    const uint64_t size = file_size(segment_of(Lsn(l + 1)));
    EXPECT_GE(size, end) << l + 1;
    EXPECT_LE(size, std::max(end, std::min(end + kAhead, kBound))) << l + 1;
    with_zeros += size > end;
  }
  // Almost every record found zeros after it: ten 772-byte records fill 8 KiB of zeros.
  EXPECT_GT(with_zeros, 150u);
  EXPECT_GT(store_->stats().segments, 2u);
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(l));
  EXPECT_EQ(store_->stats().torn_bytes_truncated, 0u);
  EXPECT_TRUE(store_->stats().damaged.empty());
}

// Sealed segments (by seal() or a roll-over) end at their last record.
TEST_F(StoreTest, SealingCutsTheZerosOff) {
  open({.dir = "segments", .segment_bytes_max = 16 << 10});
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  EXPECT_EQ(file_size(segment_of(Lsn(5))), end_of(Lsn(5)));
  for (uint64_t l = 6; l <= 100; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 700)}).is_ok());
  std::set<uint64_t> checked;
  for (uint64_t l = 1; l < 100; ++l) {
    const RecordRef* ref = store_->find(Lsn(l));
    if (ref->segment == store_->find(Lsn(100))->segment || !checked.insert(ref->segment).second)
      continue;
    // The last record of that sealed segment ends where its file does.
    uint64_t last = l;
    while (store_->find(Lsn(last + 1))->segment == ref->segment) last++;
    EXPECT_EQ(file_size(segment_of(Lsn(l))), end_of(Lsn(last))) << ref->segment;
  }
  EXPECT_GT(checked.size(), 3u);
}

// A crash after a roll-over created the next segment, before the sealed one's zeros were cut
// off: recovery cuts them, and reports nothing damaged.
TEST_F(StoreTest, ZerosACrashLeftOnASealedSegmentAreCutAtRecovery) {
  open();
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  ASSERT_TRUE(append({log_record(6, 5)}).is_ok());
  const std::string sealed = segment_of(Lsn(5));
  run([&]() -> Task<void> {
    auto f = co_await env().disk().open(sealed, {});
    EXPECT_TRUE((co_await (*f)->write(end_of(Lsn(5)), Bytes(64 << 10, 0))).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
  });
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_TRUE(store_->stats().damaged.empty());
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
  EXPECT_EQ(file_size(sealed), end_of(Lsn(5)));
}

// The same through the real path: a seal's cut is not synced, so a crash keeps it or not.
TEST_F(StoreTest, ACrashAfterASealLeavesNoZerosAndNoDamageOnTheSealedSegment) {
  uint64_t l = 0;
  for (int round = 0; round < 20; ++round) {
    open();
    for (int i = 0; i < 3; ++i, ++l) ASSERT_TRUE(append({log_record(l + 1, l)}).is_ok());
    const Lsn last_sealed(l);
    run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
    ASSERT_TRUE(append({log_record(l + 1, l)}).is_ok());
    ++l;
    crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
    EXPECT_TRUE(store_->stats().damaged.empty()) << round;
    EXPECT_EQ(store_->complete_lsn(), Lsn(l)) << round;
    EXPECT_EQ(file_size(segment_of(last_sealed)), end_of(last_sealed)) << round;
    store_.reset();
  }
}

// A crash that kept a later part of a group's unsynced write but lost an earlier sector
// (pages reach the disk in any order): the lost sector reads back as the zeros written
// ahead, so the records after it were never synced. Recovery cuts there, a torn tail, and
// reports no damage; the next write goes where the lost record was.
TEST_F(StoreTest, ALostSectorInTheLastWriteIsATornTailNotDamage) {
  open();
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  const uint64_t records_end = end_of(Lsn(5));
  Bytes group;
  encode_record(log_record(6, 5, 1500), group);  // holds whole 512-byte sectors
  const uint64_t seventh_at = records_end + group.size();
  Bytes seventh;
  encode_record(log_record(7, 6), seventh);
  run([&]() -> Task<void> {
    auto f = co_await env().disk().open(segment_of(Lsn(5)), {});
    // Only record 7 of the group [6, 7] reached the disk.
    EXPECT_TRUE((co_await (*f)->write(seventh_at, seventh)).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
  });
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_TRUE(store_->stats().damaged.empty());
  EXPECT_EQ(store_->complete_lsn(), Lsn(5));
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  // Counted up to record 7's end, not through the zeros after it.
  EXPECT_EQ(store_->stats().torn_bytes_truncated, seventh_at + seventh.size() - records_end);
  ASSERT_TRUE(append({log_record(6, 5)}).is_ok());
  EXPECT_EQ(store_->find(Lsn(6))->offset, records_end);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
  EXPECT_TRUE(store_->stats().damaged.empty());
}

TEST_F(StoreTest, WithoutZerosAheadTheFileEndsAtTheLastRecord) {
  open({.dir = "segments", .zero_ahead_bytes = 0});
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  EXPECT_EQ(file_size(segment_of(Lsn(10))), end_of(Lsn(10)));
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  ASSERT_TRUE(append({log_record(11, 10)}).is_ok());
  EXPECT_EQ(file_size(segment_of(Lsn(11))), end_of(Lsn(11)));
}

TEST_F(StoreTest, DamagedMiddleIsReportedAndNeverServed) {
  open();
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  const RecordRef victim = *store_->find(Lsn(5));
  std::string seg = "segments/" + segment_file_name(victim.segment);
  // Flip a payload bit of record 5 on disk.
  ASSERT_TRUE(disk().flip_bit(seg, victim.offset + kRecordHeaderBytes + 3, 2));
  EXPECT_EQ(read_lsn(Lsn(5)).code(), Code::kCorruption);  // detected on read, not served
  crash_and_reopen(UnsyncedOnCrash::kLose);
  auto stats = store_->stats();
  ASSERT_EQ(stats.damaged.size(), 1u);
  EXPECT_EQ(stats.damaged[0].begin, victim.offset);
  EXPECT_EQ(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(4));  // the chain breaks at the hole
  for (uint64_t l : {1, 4, 6, 10}) EXPECT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
  // A peer's copy fills the hole and the chain completes again.
  ASSERT_TRUE(append({log_record(5, 4)}).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
}

// The newest segment's header damaged (a bit flip, not a crash in its creation): its
// records are not served, and it takes no more. Records written after recovery go to a
// new segment, so the next recovery finds them; in the damaged one they would be lost.
TEST_F(StoreTest, ANewestSegmentWithADamagedHeaderIsSealedAndWritesGoToTheNext) {
  open({.dir = "segments", .zero_ahead_bytes = 0});
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  const uint64_t damaged = store_->find(Lsn(5))->segment;
  ASSERT_TRUE(disk().flip_bit("segments/" + segment_file_name(damaged), 2, 1));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->find(Lsn(5)), nullptr);
  ASSERT_EQ(store_->stats().damaged.size(), 1u);
  EXPECT_EQ(store_->stats().sealed_segments, store_->stats().segments - 1);
  // What a peer copies back, and what comes after, lands in the next segment.
  for (uint64_t l = 1; l <= 8; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok()) << l;
  EXPECT_EQ(segment_of(Lsn(8)), "segments/" + segment_file_name(damaged + 1));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(8));
  for (uint64_t l = 1; l <= 8; ++l) EXPECT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
}

// A file named like segment 0 was never written by a store (numbers start at 1): recovery
// leaves it alone, whatever it holds, and the store works as if it were not there.
TEST_F(StoreTest, AFileNamedLikeSegmentZeroIsNotASegment) {
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await env().disk().make_dirs("segments")).is_ok());
    auto f = co_await env().disk().open("segments/seg-0000000000000000", {.create = true});
    EXPECT_TRUE(f.is_ok());
  });
  open({.dir = "segments"});
  EXPECT_EQ(store_->stats().segments, 1u);
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  EXPECT_EQ(segment_of(Lsn(1)), "segments/" + segment_file_name(1));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_TRUE(read_lsn(Lsn(1)).is_ok());
}

// read_many reads each run of records that lie back to back in a segment with one file
// read, and checks every record of it as read() does.
TEST_F(StoreTest, ReadManyReadsEachRunOnceAndChecksEveryRecord) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1), log_record(3, 2)}).is_ok());
  for (uint64_t l = 4; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  for (uint64_t l = 11; l <= 15; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  ASSERT_NE(store_->find(Lsn(10))->segment, store_->find(Lsn(11))->segment);

  auto refs_of = [&](std::initializer_list<uint64_t> lsns) {
    std::vector<RecordRef> refs;
    for (uint64_t l : lsns) refs.push_back(*store_->find(Lsn(l)));
    return refs;
  };
  auto read_many = [&](const std::vector<RecordRef>& refs, uint64_t* file_reads) {
    Result<std::vector<Record>> out = not_found("unset");
    const uint64_t before = disk().stats().reads;
    run([&]() -> Task<void> { out = co_await store_->read_many(refs); });
    *file_reads = disk().stats().reads - before;
    return out;
  };

  // Two runs: lsn 1..10 in the sealed segment, 11..15 in the active one.
  uint64_t reads = 0;
  auto all = read_many(refs_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}), &reads);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 15u);
  for (uint64_t l = 1; l <= 15; ++l) {
    EXPECT_EQ((*all)[l - 1].lsn, Lsn(l));
    EXPECT_EQ((*all)[l - 1].payload, log_record(l, l - 1).payload) << l;
  }
  EXPECT_EQ(reads, 2u);
  // Records apart are runs of their own; the order asked is the order returned.
  auto apart = read_many(refs_of({12, 3, 5, 6}), &reads);
  ASSERT_TRUE(apart.is_ok());
  ASSERT_EQ(apart->size(), 4u);
  EXPECT_EQ((*apart)[0].lsn, Lsn(12));
  EXPECT_EQ((*apart)[3].lsn, Lsn(6));
  EXPECT_EQ(reads, 3u);

  // A damaged record in the middle of a run fails the read, naming it; the records
  // before it still read.
  const RecordRef victim = *store_->find(Lsn(7));
  ASSERT_TRUE(disk().flip_bit("segments/" + segment_file_name(victim.segment),
                              victim.offset + kRecordHeaderBytes + 3, 2));
  auto damaged = read_many(refs_of({5, 6, 7, 8}), &reads);
  EXPECT_EQ(damaged.code(), Code::kCorruption);
  EXPECT_NE(damaged.status().to_string().find("lsn=7"), std::string::npos)
      << damaged.status().to_string();
  EXPECT_TRUE(read_many(refs_of({5, 6}), &reads).is_ok());
  EXPECT_TRUE(read_many(refs_of({8, 9, 10, 11}), &reads).is_ok());
}

TEST_F(StoreTest, PageChainReturnsNewestImageAndLaterDeltas) {
  open();
  ASSERT_TRUE(append({page_record(RecordType::kPage, 1, 1, 0),      // image
                      page_record(RecordType::kDelta, 1, 2, 1, 1),  // delta
                      log_record(3, 2),                             // unrelated
                      page_record(RecordType::kDelta, 1, 4, 3, 1),  // delta
                      page_record(RecordType::kPage, 1, 5, 4),      // new image
                      page_record(RecordType::kDelta, 1, 6, 5, 5),  // delta
                      page_record(RecordType::kDiscard, 1, 7, 6)})  // tombstone
                  .is_ok());
  auto lsns = [&](Lsn as_of) {
    std::vector<uint64_t> out;
    auto chain = store_->page_chain(TableId(7), PageId(1), as_of);
    if (!chain.is_ok()) return std::vector<uint64_t>{999, static_cast<uint64_t>(chain.code())};
    for (const auto& r : *chain) out.push_back(r.lsn.value);
    return out;
  };
  EXPECT_EQ(lsns(Lsn(1)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(lsns(Lsn(3)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(lsns(Lsn(4)), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(lsns(Lsn(5)), (std::vector<uint64_t>{5}));
  EXPECT_EQ(lsns(Lsn(6)), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(store_->page_chain(TableId(7), PageId(1), Lsn(7)).code(), Code::kDiscarded);
  EXPECT_EQ(store_->page_chain(TableId(7), PageId(2), Lsn(7)).code(), Code::kNotFound);
  EXPECT_EQ(store_->page_chain(TableId(7), PageId(1), Lsn(0)).code(), Code::kNotFound);
}

TEST_F(StoreTest, ReSendsAreIdempotentAndConflictsRejected) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1)}).is_ok());
  uint64_t bytes = store_->stats().bytes;
  EXPECT_TRUE(append({log_record(1, 0), log_record(2, 1)}).is_ok());
  EXPECT_EQ(store_->stats().bytes, bytes);  // nothing written twice
  Record different = log_record(2, 1);
  different.payload[0] ^= 1;
  EXPECT_EQ(append({different}).code(), Code::kInvalidArgument);
}

TEST_F(StoreTest, GapsKeepCompleteLsnBackUntilFilled) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1)}).is_ok());
  ASSERT_TRUE(append({log_record(5, 4), log_record(6, 5)}).is_ok());  // 3 and 4 missed
  EXPECT_EQ(store_->last_lsn(), Lsn(6));
  EXPECT_EQ(store_->complete_lsn(), Lsn(2));
  ASSERT_TRUE(append({log_record(3, 2), log_record(4, 3)}).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
}

TEST_F(StoreTest, AbandonDropsRecordsAboveAndSurvivesRestart) {
  open();
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->abandon_after(Lsn(6))).is_ok()); });
  EXPECT_EQ(store_->last_lsn(), Lsn(6));
  // The writer continues above the abandoned LSNs, naming 6 as the previous record.
  ASSERT_TRUE(append({log_record(11, 6), log_record(12, 11)}).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(12));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->find(Lsn(8)), nullptr);
  EXPECT_NE(store_->find(Lsn(11)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(12));
}

// The chain proves abandonment without a marker: a server that missed the abandon (or
// got a late copy after it) drops the records the writer's next record skips over, and
// never stores a record that a stored successor already skips.
TEST_F(StoreTest, ARecordThatSkipsStoredRecordsDropsThemAndSurvivesRestart) {
  open();
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  // 6 and 7 reached this server, then the writer abandoned after 5 elsewhere.
  ASSERT_TRUE(append({log_record(6, 5), log_record(7, 6)}).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(7));
  ASSERT_TRUE(append({log_record(8, 5), log_record(9, 8)}).is_ok());
  EXPECT_EQ(store_->find(Lsn(6)), nullptr);
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(9));
  // A late copy of an abandoned record is not stored again: a peer's is dropped, a
  // writer's refused (it must not be told OK for a record nobody can read).
  EXPECT_TRUE(append({log_record(6, 5)}, AppendSource::kPeer).is_ok());
  EXPECT_EQ(append({log_record(6, 5)}).code(), Code::kOlder);
  EXPECT_EQ(store_->find(Lsn(6)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(9));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->find(Lsn(6)), nullptr);
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  EXPECT_NE(store_->find(Lsn(8)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(9));
}

// Records above the new one stay: only the range it skips is abandoned. In one batch too.
TEST_F(StoreTest, ChainSkipDropsOnlyTheSkippedRange) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1)}).is_ok());
  // A pipelined later record arrived before the one that skips.
  ASSERT_TRUE(append({log_record(3, 2), log_record(6, 5)}).is_ok());
  ASSERT_TRUE(append({log_record(5, 2)}).is_ok());  // the chain goes 2 -> 5 -> 6
  EXPECT_EQ(store_->find(Lsn(3)), nullptr);
  EXPECT_NE(store_->find(Lsn(6)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
  // Within one batch: 7 (prev 6) then 9 (prev 6) drops 7.
  ASSERT_TRUE(append({log_record(7, 6), log_record(9, 6)}).is_ok());
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(9));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->find(Lsn(3)), nullptr);
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(9));
}

TEST_F(StoreTest, RetentionDropsSupersededRecordsAndEmptySegments) {
  open({.dir = "segments", .segment_bytes_max = 2048});
  uint64_t lsn = 0;
  auto next = [&](Record r) { ASSERT_TRUE(append({r}).is_ok()); };
  // Page 1 rewritten many times, with log records between.
  for (int i = 0; i < 30; ++i) {
    ++lsn;
    next(page_record(RecordType::kPage, 1, lsn, lsn - 1));
    ++lsn;
    next(log_record(lsn, lsn - 1, 300));
  }
  Lsn checkpoint(lsn);
  ++lsn;
  next(completion_record(lsn, lsn - 1, checkpoint.value));
  uint64_t segments_before = store_->stats().segments;
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->set_retention(checkpoint)).is_ok()); });
  EXPECT_LT(store_->stats().segments, segments_before);
  EXPECT_EQ(store_->complete_lsn(), Lsn(lsn));  // the completion, just past the point
  auto chain = store_->page_chain(TableId(7), PageId(1), checkpoint);
  ASSERT_TRUE(chain.is_ok());
  EXPECT_EQ(chain->front().lsn, Lsn(checkpoint.value - 1));  // the newest image at or below it
  ++lsn;
  next(log_record(lsn, lsn - 1));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(lsn));
  EXPECT_EQ(store_->stats().retention_lsn, checkpoint);
  EXPECT_TRUE(store_->page_chain(TableId(7), PageId(1), Lsn(lsn)).is_ok());
}

// Issue 12 item 1: a record the chain already skips is refused to a writer, never
// acknowledged and dropped.
TEST_F(StoreTest, AWritersRecordTheChainSkipsIsRefusedNotAcknowledged) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  ASSERT_TRUE(append({log_record(1000, 1)}).is_ok());  // a successor that skips 2..999
  Status two = append({log_record(2, 1)});
  EXPECT_EQ(two.code(), Code::kOlder) << two.to_string();
  EXPECT_EQ(append({log_record(3, 2)}).code(), Code::kOlder);
  EXPECT_EQ(store_->find(Lsn(2)), nullptr);
  EXPECT_EQ(store_->find(Lsn(3)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(1000));
}

// A request is all or nothing: a refusal late in it takes back its earlier records and
// the abandon marker one of them planned, while another request in the same group commit
// is stored.
TEST_F(StoreTest, ARefusedRequestStoresNoneOfItsRecords) {
  open();
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  Record conflicting = log_record(3, 2);
  conflicting.payload = Bytes(10, 0xee);
  Status refused = cancelled("unset"), accepted = cancelled("unset");
  auto w = [&](std::vector<Record> batch, Status& out) -> Task<void> {
    out = co_await store_->append(std::move(batch));
  };
  // 8 (prev 4) would abandon 5 under a marker; the conflicting 3 refuses the request.
  env().executor().spawn(
      "refused", w(std::vector<Record>{log_record(8, 4), log_record(9, 8), conflicting}, refused));
  env().executor().spawn("accepted", w(std::vector<Record>{log_record(6, 5)}, accepted));
  world_.run_for(1s);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument) << refused.to_string();
  EXPECT_TRUE(accepted.is_ok()) << accepted.to_string();
  for (uint64_t l : {8, 9}) EXPECT_EQ(store_->find(Lsn(l)), nullptr) << l;
  EXPECT_NE(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
  crash_and_reopen(UnsyncedOnCrash::kLose);  // no marker for 5 was written either
  EXPECT_NE(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->find(Lsn(8)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
}

// Issue 12 item 2: nothing at or below the highest stored commit point is abandoned,
// before or after a restart.
TEST_F(StoreTest, AbandonBelowTheCommitPointIsRefused) {
  open();
  for (uint64_t l = 1; l <= 9; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  ASSERT_TRUE(append({committing_log_record(10, 9, 8)}).is_ok());
  EXPECT_EQ(store_->commit_point(), Lsn(8));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->commit_point(), Lsn(8));  // recomputed from the records scanned
  for (uint64_t p : {0, 7}) {
    Status st = abandon_after(Lsn(p));
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << p << " " << st.to_string();
  }
  EXPECT_EQ(store_->last_lsn(), Lsn(10));
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  EXPECT_TRUE(abandon_after(Lsn(8)).is_ok());  // at the commit point: 9 and 10 go
  EXPECT_EQ(store_->last_lsn(), Lsn(8));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->commit_point(), Lsn(8));  // the abandoned 10 still held it
  EXPECT_EQ(abandon_after(Lsn(7)).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->last_lsn(), Lsn(8));
}

// The chain-skip path is an implicit abandon_after(prev_lsn): refused when it would drop
// a stored record at or below the commit point, from a writer or a peer.
TEST_F(StoreTest, AChainSkipBelowTheCommitPointIsRefused) {
  open();
  for (uint64_t l = 1; l <= 4; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  ASSERT_TRUE(append({committing_log_record(5, 4, 3)}).is_ok());
  for (AppendSource source : {AppendSource::kWriter, AppendSource::kPeer}) {
    Status st = append({log_record(7, 2)}, source);  // would drop 3, 4, 5
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  }
  for (uint64_t l = 1; l <= 5; ++l) EXPECT_NE(store_->find(Lsn(l)), nullptr) << l;
  EXPECT_EQ(store_->find(Lsn(7)), nullptr);
  ASSERT_TRUE(append({log_record(7, 3)}).is_ok());  // drops only 4 and 5, above it
  EXPECT_EQ(store_->find(Lsn(4)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(7));
}

// Retention never passes the newest complete checkpoint's log position.
TEST_F(StoreTest, RetentionPastTheNewestCompleteCheckpointIsRefused) {
  open();
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  EXPECT_EQ(set_retention(Lsn(5)).code(), Code::kNotYetMaterialized);  // no checkpoint
  ASSERT_TRUE(append({completion_record(11, 10, 8)}).is_ok());
  EXPECT_EQ(store_->checkpoint_log_lsn(), Lsn(8));
  EXPECT_EQ(set_retention(Lsn(9)).code(), Code::kNotYetMaterialized);
  EXPECT_EQ(set_retention(Lsn(~uint64_t{0})).code(), Code::kNotYetMaterialized);
  EXPECT_EQ(store_->retention_lsn(), Lsn(0));
  EXPECT_EQ(store_->last_lsn(), Lsn(11));
  EXPECT_TRUE(set_retention(Lsn(8)).is_ok());
  EXPECT_EQ(store_->retention_lsn(), Lsn(8));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->checkpoint_log_lsn(), Lsn(8));
  EXPECT_EQ(set_retention(Lsn(9)).code(), Code::kNotYetMaterialized);
  EXPECT_EQ(store_->retention_lsn(), Lsn(8));
  EXPECT_EQ(store_->commit_point(), Lsn(8));  // retention covers a commit point too
  EXPECT_EQ(abandon_after(Lsn(7)).code(), Code::kInvalidArgument);
}

// A retention point above complete_lsn makes the chain look whole from there although the
// gap below it may hold live page versions: the store remembers, durably, where the gap
// starts until the server copied it (finish_copy). Issue 13, quire chaos kek seed 79.
// A store that missed two stretches of its chain copies those two only: the rest of the
// chain below the retention point it holds itself, found by walking the chain back.
TEST_F(StoreTest, AJumpFindsEachGapInTheChainBelowTheRetentionPoint) {
  open();
  std::vector<Record> held;
  for (uint64_t l = 1; l <= 10; ++l) held.push_back(log_record(l, l - 1));
  for (uint64_t l = 13; l <= 20; ++l) held.push_back(log_record(l, l - 1));  // 11, 12 missed
  for (uint64_t l = 24; l <= 29; ++l) held.push_back(log_record(l, l - 1));  // 21-23 missed
  held.push_back(completion_record(30, 29, 28));
  ASSERT_TRUE(append(held).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  EXPECT_TRUE(set_retention(Lsn(28)).is_ok());
  const std::vector<CopyGap> gaps{{Lsn(10), Lsn(12)}, {Lsn(20), Lsn(23)}};
  EXPECT_EQ(store_->copy_gaps(), gaps);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->copy_gaps(), gaps);  // durable
  Status done = cancelled("unset");
  run([&]() -> Task<void> { done = co_await store_->finish_copy(Lsn(12)); });
  EXPECT_TRUE(done.is_ok());
  EXPECT_EQ(store_->copy_gaps(), (std::vector<CopyGap>{{Lsn(20), Lsn(23)}}));
  EXPECT_EQ(store_->copy_from(), Lsn(20));
  run([&]() -> Task<void> { done = co_await store_->finish_copy(Lsn(21)); });
  EXPECT_EQ(store_->copy_gaps(), (std::vector<CopyGap>{{Lsn(21), Lsn(23)}}));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->copy_gaps(), (std::vector<CopyGap>{{Lsn(21), Lsn(23)}}));
  run([&]() -> Task<void> { done = co_await store_->finish_copy(Lsn(23)); });
  EXPECT_TRUE(done.is_ok());
  EXPECT_EQ(store_->copy_from(), std::nullopt);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_TRUE(store_->copy_gaps().empty());
}

// More stretches missed than a store keeps gaps for: the closest are merged, and every
// missing record still lies in a gap.
TEST_F(StoreTest, AJumpOverManyGapsKeepsAtMostTheBoundAndLosesNone) {
  open();
  std::vector<Record> held;
  for (uint64_t l = 1; l <= 400; ++l) {
    if (l % 10 != 5) held.push_back(log_record(l, l - 1));  // 5, 15, ..., 395 missed
  }
  held.push_back(completion_record(401, 400, 400));
  ASSERT_TRUE(append(held).is_ok());
  EXPECT_TRUE(set_retention(Lsn(400)).is_ok());
  const std::vector<CopyGap>& gaps = store_->copy_gaps();
  EXPECT_EQ(gaps.size(), kCopyGapsMax);
  EXPECT_TRUE(copy_gaps_valid(gaps));
  for (uint64_t l = 5; l < 400; l += 10) {
    const bool covered = std::any_of(gaps.begin(), gaps.end(), [&](const CopyGap& g) {
      return g.from < Lsn(l) && Lsn(l) <= g.to;
    });
    EXPECT_TRUE(covered) << l;
  }
}

// COPY_GAPS checks: a file that does not is read as one gap from 0 to the retention point.
TEST(CopyGapsFile, RoundTripsAndRefusesWhatDoesNotCheck) {
  const std::vector<CopyGap> gaps{{Lsn(3), Lsn(5)}, {Lsn(9), Lsn(40)}};
  Bytes file = encode_copy_gaps_file(gaps);
  auto back = decode_copy_gaps_file(file);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, gaps);
  for (size_t i = 0; i < file.size(); ++i) {
    Bytes bad = file;
    bad[i] ^= 0x01;
    EXPECT_EQ(decode_copy_gaps_file(bad).code(), Code::kCorruption) << i;
    EXPECT_EQ(decode_copy_gaps_file(ByteView(file.data(), i)).code(), Code::kCorruption) << i;
  }
  // Overlapping gaps with a good CRC are refused too.
  EXPECT_EQ(
      decode_copy_gaps_file(encode_copy_gaps_file({{Lsn(3), Lsn(9)}, {Lsn(9), Lsn(40)}})).code(),
      Code::kCorruption);
}

TEST_F(StoreTest, RetentionAboveCompleteLsnPersistsWhereTheGapStarts) {
  open();
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  // 11..20 missed; then a record and a checkpoint completion (log position 21) arrive.
  ASSERT_TRUE(append({log_record(21, 20), completion_record(22, 21, 21)}).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  EXPECT_TRUE(set_retention(Lsn(5)).is_ok());  // at or below complete_lsn: no gap jumped
  EXPECT_EQ(store_->copy_from(), std::nullopt);
  EXPECT_TRUE(set_retention(Lsn(21)).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(22));  // the jump
  EXPECT_EQ(store_->copy_from(), Lsn(10));
  EXPECT_EQ(store_->copy_gaps(), (std::vector<CopyGap>{{Lsn(10), Lsn(20)}}));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->copy_from(), Lsn(10));  // durable
  EXPECT_EQ(store_->complete_lsn(), Lsn(22));
  Status done = cancelled("unset");
  run([&]() -> Task<void> { done = co_await store_->finish_copy(Lsn(15)); });
  EXPECT_TRUE(done.is_ok());
  EXPECT_EQ(store_->copy_from(), Lsn(15));  // copied only part of the gap
  run([&]() -> Task<void> { done = co_await store_->finish_copy(Lsn(22)); });
  EXPECT_TRUE(done.is_ok());
  EXPECT_EQ(store_->copy_from(), std::nullopt);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->copy_from(), std::nullopt);
  EXPECT_EQ(store_->retention_lsn(), Lsn(21));
}

TEST_F(StoreTest, FailedSyncBreaksTheStore) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  DiskFaults f;
  f.sync_eio = 1.0;
  disk().set_faults(f);
  EXPECT_EQ(append({log_record(2, 1)}).code(), Code::kIo);
  disk().set_faults(DiskFaults{});
  EXPECT_TRUE(store_->broken());
  EXPECT_EQ(append({log_record(3, 2)}).code(), Code::kIo);  // stays broken until reopened
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_FALSE(store_->broken());
  EXPECT_GE(store_->complete_lsn(), Lsn(1));
}

// ---- A full disk: writes are refused with NoSpace, the store stays up for reads and
// takes writes again once space is freed; nothing it acknowledged is lost.

// Appends 500-byte records after `lsn` until the disk refuses one; returns the last LSN
// stored and the refusal.
std::pair<uint64_t, Status> fill(uint64_t lsn,
                                 const std::function<Status(std::vector<Record>)>& append) {
  for (int i = 0; i < 1000; ++i) {
    Status st = append({log_record(lsn + 1, lsn, 500)});
    if (!st.is_ok()) return {lsn, st};
    ++lsn;
  }
  return {lsn, Status()};
}

TEST_F(StoreTest, AFullDiskRefusesWritesWithNoSpaceAndTheStoreGoesOn) {
  // Zeros ahead on: a refused write may land in them or past them.
  open({.dir = "segments", .segment_bytes_max = 16384, .zero_ahead_bytes = 4096});
  for (uint64_t l = 1; l <= 5; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 500)}).is_ok());
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes() + 20000;  // past the first segment's bound
  disk().set_faults(full);
  auto [last, refused] = fill(5, [&](std::vector<Record> r) { return append(std::move(r)); });
  ASSERT_EQ(refused.code(), Code::kNoSpace) << refused.to_string();
  EXPECT_GT(last, 5u);
  EXPECT_FALSE(store_->broken());
  EXPECT_EQ(store_->complete_lsn(), Lsn(last));
  EXPECT_GE(store_->stats().no_space_refusals, 1u);
  // No part of the refused write stays past the last record.
  EXPECT_EQ(file_size(segment_of(Lsn(last))), end_of(Lsn(last)));
  // Refused again, still up; reads go on.
  EXPECT_EQ(append({log_record(last + 1, last, 500)}).code(), Code::kNoSpace);
  EXPECT_FALSE(store_->broken());
  for (uint64_t l = 1; l <= last; ++l) ASSERT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
  // Space freed: the same write goes in, and more after it.
  disk().set_faults(DiskFaults{});
  ASSERT_TRUE(append({log_record(last + 1, last, 500)}).is_ok());
  for (uint64_t l = last + 2; l <= last + 40; ++l) {
    ASSERT_TRUE(append({log_record(l, l - 1, 500)}).is_ok());
  }
  EXPECT_GT(store_->stats().segments, 2u);  // rolled over after the refusals
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(last + 40));
  EXPECT_TRUE(store_->stats().damaged.empty());
  for (uint64_t l = 1; l <= last + 40; ++l) ASSERT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
}

// A roll-over, a seal and a retention step on a full disk: each is refused with NoSpace and
// leaves the store as it was, with no file of a segment that was never made.
TEST_F(StoreTest, SealsRollOversAndRetentionOnAFullDiskAreRefusedAndLeaveNothingBehind) {
  open({.dir = "segments", .segment_bytes_max = 4096, .zero_ahead_bytes = 0});
  uint64_t lsn = 0;
  for (int i = 0; i < 4; ++i, ++lsn) {
    ASSERT_TRUE(append({log_record(lsn + 1, lsn, 500)}).is_ok());
  }
  ++lsn;
  ASSERT_TRUE(append({completion_record(lsn, lsn - 1, lsn - 1)}).is_ok());
  const auto files_before = disk().current_files();
  const uint64_t segments_before = store_->stats().segments;
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes();  // not one byte more
  disk().set_faults(full);
  Status sealed = cancelled("unset");
  run([&]() -> Task<void> { sealed = co_await store_->seal(); });
  EXPECT_EQ(sealed.code(), Code::kNoSpace) << sealed.to_string();
  EXPECT_EQ(set_retention(Lsn(lsn - 1)).code(), Code::kNoSpace);
  EXPECT_EQ(store_->stats().retention_lsn, Lsn(0));
  // A write that would roll over (the segment is near its bound) and one that would not.
  EXPECT_EQ(append({log_record(lsn + 1, lsn, 3000)}).code(), Code::kNoSpace);
  EXPECT_EQ(append({log_record(lsn + 1, lsn, 10)}).code(), Code::kNoSpace);
  EXPECT_FALSE(store_->broken());
  EXPECT_EQ(store_->stats().segments, segments_before);
  EXPECT_EQ(disk().current_files(), files_before);  // no new segment, no temp file
  EXPECT_GE(store_->stats().no_space_refusals, 4u);
  disk().set_faults(DiskFaults{});
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  EXPECT_TRUE(set_retention(Lsn(lsn - 1)).is_ok());
  ASSERT_TRUE(append({log_record(lsn + 1, lsn, 3000)}).is_ok());
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->complete_lsn(), Lsn(lsn + 1));
  EXPECT_EQ(store_->stats().retention_lsn, Lsn(lsn - 1));
  EXPECT_TRUE(store_->stats().damaged.empty());
}

// On a full disk the retention file has no room for its temp file: it is overwritten where
// it is, so the step goes through and the segments it leaves dead free their space.
TEST_F(StoreTest, OnAFullDiskRetentionOverwritesItsFileInPlaceAndFreesSpace) {
  open({.dir = "segments", .segment_bytes_max = 2048, .zero_ahead_bytes = 0});
  uint64_t lsn = 0;
  for (; lsn < 10; ++lsn) ASSERT_TRUE(append({log_record(lsn + 1, lsn, 300)}).is_ok());
  ++lsn;
  ASSERT_TRUE(append({completion_record(lsn, lsn - 1, lsn - 1)}).is_ok());
  ASSERT_TRUE(set_retention(Lsn(lsn - 1)).is_ok());  // RETENTION exists from here on
  for (; lsn < 40; ++lsn) ASSERT_TRUE(append({log_record(lsn + 1, lsn, 300)}).is_ok());
  ++lsn;
  ASSERT_TRUE(append({completion_record(lsn, lsn - 1, lsn - 1)}).is_ok());
  const Lsn checkpoint(lsn - 1);
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes();
  disk().set_faults(full);
  EXPECT_EQ(append({log_record(lsn + 1, lsn, 300)}).code(), Code::kNoSpace);
  const uint64_t segments_before = store_->stats().segments;
  const uint64_t used_before = disk().used_bytes();
  EXPECT_TRUE(set_retention(checkpoint).is_ok());
  EXPECT_EQ(store_->stats().retention_overwrites, 1u);
  EXPECT_EQ(store_->retention_lsn(), checkpoint);
  EXPECT_LT(store_->stats().segments, segments_before);
  EXPECT_LT(disk().used_bytes(), used_before);
  // The space it freed takes the write the full disk refused.
  ASSERT_TRUE(append({log_record(lsn + 1, lsn, 300)}).is_ok());
  ++lsn;
  disk().set_faults(DiskFaults{});
  crash_and_reopen(UnsyncedOnCrash::kRandomSubset);
  EXPECT_EQ(store_->retention_lsn(), checkpoint);
  EXPECT_EQ(store_->complete_lsn(), Lsn(lsn));
  EXPECT_TRUE(store_->stats().damaged.empty());
}

// A retention step that would jump a gap persists the gaps first. When the retention file
// then finds no room (and there is none to overwrite), the step is refused whole: the
// store does not go on believing it lacks records it was never told to copy.
TEST_F(StoreTest, ARetentionStepRefusedForSpaceKeepsNoGapsItWouldHaveJumped) {
  open({.dir = "segments", .zero_ahead_bytes = 0});
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  ASSERT_TRUE(append({log_record(21, 20), completion_record(22, 21, 21)}).is_ok());
  ASSERT_EQ(store_->complete_lsn(), Lsn(10));
  DiskFaults full;  // room for the gaps file, not for a retention file after it
  full.capacity_bytes = disk().used_bytes() + encode_copy_gaps_file({{Lsn(10), Lsn(20)}}).size();
  disk().set_faults(full);
  EXPECT_EQ(set_retention(Lsn(21)).code(), Code::kNoSpace);
  EXPECT_EQ(store_->retention_lsn(), Lsn(0));
  EXPECT_EQ(store_->copy_from(), std::nullopt);
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  EXPECT_FALSE(store_->broken());
  disk().set_faults(DiskFaults{});
  EXPECT_TRUE(set_retention(Lsn(21)).is_ok());
  EXPECT_EQ(store_->copy_from(), Lsn(10));
  EXPECT_EQ(store_->complete_lsn(), Lsn(22));
}

// A server restarted on a disk that is still full opens, serves what it holds, and refuses
// writes until space is freed.
TEST_F(StoreTest, AStoreOpensOnAFullDiskAndServesWhatItHolds) {
  open({.dir = "segments", .segment_bytes_max = 8192, .zero_ahead_bytes = 0});
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 500)}).is_ok());
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes();
  disk().set_faults(full);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
  EXPECT_EQ(append({log_record(11, 10, 500)}).code(), Code::kNoSpace);
  EXPECT_FALSE(store_->broken());
  disk().set_faults(DiskFaults{});
  EXPECT_TRUE(append({log_record(11, 10, 500)}).is_ok());
}

// An empty data directory on a full disk: the store opens without an active segment
// (there is no room for its header) and serves what it holds, nothing; writes are refused
// for space, and the first one after space is freed creates the segment.
TEST_F(StoreTest, AStoreWithNoSegmentOpensOnAFullDiskAndCreatesItOnceThereIsRoom) {
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes() + kSegmentHeaderBytes / 2;  // 0 is unlimited
  disk().set_faults(full);
  open({.dir = "segments", .zero_ahead_bytes = 0});
  EXPECT_EQ(store_->stats().segments, 0u);
  EXPECT_EQ(store_->stats().sealed_segments, 0u);
  EXPECT_EQ(store_->complete_lsn(), Lsn(0));
  EXPECT_EQ(append({log_record(1, 0)}).code(), Code::kNoSpace);
  EXPECT_EQ(raise_term(Term(2)).code(), Code::kNoSpace);  // a TERM marker needs the segment too
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  EXPECT_FALSE(store_->broken());
  EXPECT_GE(store_->stats().no_space_refusals, 3u);  // the open's, the append's, the marker's
  disk().set_faults(DiskFaults{});
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  EXPECT_EQ(segment_of(Lsn(1)), "segments/" + segment_file_name(1));
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(1));
  ASSERT_TRUE(read_lsn(Lsn(1)).is_ok());
}

// The newest segment's header torn by a crash, on a disk that is full after it: the store
// removes the torn file, opens serving every record of the older segments, refuses writes
// for space, and once there is room creates the new segment under the torn one's number.
TEST_F(StoreTest, ATornNewestHeaderOnAFullDiskLeavesTheStoreServingReads) {
  open({.dir = "segments", .segment_bytes_max = 2048, .zero_ahead_bytes = 0});
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 500)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  const uint64_t segments = store_->stats().segments;
  ASSERT_GE(segments, 4u);
  // The sealed-to segment, its header cut to 10 bytes as a crash in its creation leaves it.
  const std::string newest = "segments/" + segment_file_name(segments);
  ASSERT_EQ(file_size(newest), kSegmentHeaderBytes);
  run([&]() -> Task<void> {
    auto f = co_await env().disk().open(newest, {});
    EXPECT_TRUE(f.is_ok());
    if (!f.is_ok()) co_return;
    EXPECT_TRUE((co_await (*f)->truncate(10)).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
  });
  DiskFaults full;
  full.capacity_bytes = disk().used_bytes() + 1;  // less than a header's room once it is gone
  disk().set_faults(full);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->stats().segments, segments - 1);
  EXPECT_EQ(store_->stats().sealed_segments, segments - 1);  // none is active
  EXPECT_EQ(store_->complete_lsn(), Lsn(10));
  for (uint64_t l = 1; l <= 10; ++l) ASSERT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
  EXPECT_EQ(append({log_record(11, 10, 500)}).code(), Code::kNoSpace);
  EXPECT_FALSE(store_->broken());
  disk().set_faults(DiskFaults{});
  ASSERT_TRUE(append({log_record(11, 10, 500)}).is_ok());
  EXPECT_EQ(segment_of(Lsn(11)), newest);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(11));
  for (uint64_t l = 1; l <= 11; ++l) ASSERT_TRUE(read_lsn(Lsn(l)).is_ok()) << l;
}

// ---- The descriptor cache: only the active segment and open_segments_max sealed ones
// are open, whatever the number of segments.

// 300 segments (a seal after every record) with a cache of 8: every record reads back, in
// an order that misses the cache, and the cache never holds more than its bound.
TEST_F(StoreTest, ManySegmentsAllReadableThroughABoundedCache) {
  open({.dir = "segments", .open_segments_max = 8});
  for (uint64_t l = 1; l <= 300; ++l) {
    ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
    run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
    ASSERT_LE(store_->stats().open_sealed_segments, 8u);
  }
  EXPECT_EQ(store_->stats().segments, 301u);  // the last seal left an empty active segment
  EXPECT_EQ(store_->stats().open_sealed_segments, 8u);
  for (uint64_t l = 1; l <= 300; l += 7) {  // strides through every part of the log
    auto r = read_lsn(Lsn(l));
    ASSERT_TRUE(r.is_ok()) << l << " " << r.status().to_string();
    EXPECT_EQ(r->lsn, Lsn(l));
    EXPECT_EQ(r->payload, log_record(l, l - 1).payload);
    EXPECT_LE(store_->stats().open_sealed_segments, 8u);
  }
}

// Recovery scans more segments than the cache holds, then serves every record; reads
// after an eviction reopen the segment.
TEST_F(StoreTest, RecoveryWithMoreSegmentsThanTheCacheServesEveryRecord) {
  open({.dir = "segments", .segment_bytes_max = 1024, .open_segments_max = 4});
  for (uint64_t l = 1; l <= 60; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 600)}).is_ok());
  ASSERT_GE(store_->stats().segments, 60u);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(60));
  EXPECT_EQ(store_->stats().open_sealed_segments, 4u);  // the newest sealed ones stay open
  // The oldest first (evicted at recovery), then the newest, then the oldest again: each
  // round evicts what the previous one opened.
  for (uint64_t round = 0; round < 3; ++round) {
    for (uint64_t i = 1; i <= 60; ++i) {
      uint64_t l = round == 1 ? 61 - i : i;
      auto r = read_lsn(Lsn(l));
      ASSERT_TRUE(r.is_ok()) << l << " " << r.status().to_string();
      EXPECT_EQ(r->payload, log_record(l, l - 1, 600).payload);
    }
    EXPECT_EQ(store_->stats().open_sealed_segments, 4u);
  }
}

// A read in flight keeps its file past an eviction by other reads: concurrent readers of
// many segments with a cache of 2 all get their records.
TEST_F(StoreTest, ConcurrentReadsAcrossEvictionsAllSucceed) {
  open({.dir = "segments", .segment_bytes_max = 1024, .open_segments_max = 2});
  for (uint64_t l = 1; l <= 40; ++l) ASSERT_TRUE(append({log_record(l, l - 1, 600)}).is_ok());
  crash_and_reopen(UnsyncedOnCrash::kLose);
  DiskFaults slow;  // latency, so reads overlap and open the same segments concurrently
  slow.latency_min = 100us;
  slow.latency_max = 2ms;
  disk().set_faults(slow);
  int ok = 0;
  for (uint64_t l = 1; l <= 40; ++l) {
    for (int copy = 0; copy < 2; ++copy) {
      RecordRef ref = *store_->find(Lsn(l));
      env().executor().spawn("read", [](SegmentStore* s, RecordRef ref, int* ok) -> Task<void> {
        auto r = co_await s->read(ref);
        if (r.is_ok() && r->lsn == ref.lsn) (*ok)++;
      }(store_.get(), ref, &ok));
    }
  }
  world_.run_for(2s);
  disk().set_faults(DiskFaults{});
  EXPECT_EQ(ok, 80);
  EXPECT_LE(store_->stats().open_sealed_segments, 2u);
}

// A retention step that drops many records (three steps' worth, over many segments)
// drops them with the write lock free: a write sent while it runs is stored before the
// step ends, where it once waited for the whole drop and every segment's deletion.
TEST_F(StoreTest, ABigRetentionStepLetsWritesThroughWhileItRuns) {
  open({.dir = "segments", .segment_bytes_max = 16384});
  const uint64_t n = 3 * 4096 + 100;
  uint64_t lsn = 0;
  while (lsn < n) {
    std::vector<Record> batch;
    for (int i = 0; i < 500 && lsn < n; ++i, ++lsn) batch.push_back(log_record(lsn + 1, lsn, 16));
    ASSERT_TRUE(append(std::move(batch)).is_ok());
  }
  ASSERT_TRUE(append({completion_record(n + 1, n, n)}).is_ok());
  const uint64_t segments_before = store_->stats().segments;
  ASSERT_GT(segments_before, 20u);
  bool retention_done = false;
  Status retention = cancelled("unset");
  bool written_during_retention = false;
  run([&]() -> Task<void> {
    auto step = [&]() -> Task<void> {
      retention = co_await store_->set_retention(Lsn(n));
      retention_done = true;
    };
    env().executor().spawn("retention", step());
    // Until the point is durable and the drop has begun.
    while (store_->stats().retention_lsn != Lsn(n) && !retention_done)
      co_await env().executor().sleep(10us);
    std::vector<Record> one{log_record(n + 2, n + 1, 16)};
    Status st = co_await store_->append(std::move(one), AppendSource::kWriter, std::nullopt);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    written_during_retention = !retention_done;
    while (!retention_done) co_await env().executor().sleep(1ms);
  });
  EXPECT_TRUE(retention.is_ok()) << retention.to_string();
  EXPECT_TRUE(written_during_retention);
  for (uint64_t l = 1; l <= n; ++l) ASSERT_EQ(store_->find(Lsn(l)), nullptr) << l;
  EXPECT_NE(store_->find(Lsn(n + 1)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(n + 2));
  EXPECT_LT(store_->stats().segments, segments_before / 4);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->complete_lsn(), Lsn(n + 2));
  EXPECT_EQ(store_->stats().retention_lsn, Lsn(n));
}

// Retention deletes a segment whose file is in the cache: it leaves the cache, and a read
// of a record in it is NotFound, never a read of a closed file.
TEST_F(StoreTest, RetentionDeletesACachedSegmentAndItLeavesTheCache) {
  open({.dir = "segments", .segment_bytes_max = 1024, .open_segments_max = 64});
  // One record per segment; a checkpoint completion at lsn 5 (log position 4) to retain
  // from.
  for (uint64_t l = 1; l <= 10; ++l) {
    Record r = log_record(l, l - 1, 600);
    if (l == 5) {
      r.type = RecordType::kCheckpointComplete;
      r.base_lsn = Lsn(4);
    }
    ASSERT_TRUE(append({r}).is_ok());
  }
  ASSERT_TRUE(read_lsn(Lsn(2)).is_ok());  // its segment is cached
  const uint64_t cached_before = store_->stats().open_sealed_segments;
  ASSERT_EQ(cached_before, 9u);  // every sealed segment
  RecordRef gone = *store_->find(Lsn(2));
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->set_retention(Lsn(4))).is_ok()); });
  EXPECT_EQ(store_->stats().segments, 6u);
  EXPECT_EQ(store_->stats().open_sealed_segments, cached_before - 4);  // lsn 1..4's segments
  Result<Record> r = not_found("unset");
  run([&]() -> Task<void> { r = co_await store_->read(gone); });
  EXPECT_EQ(r.code(), Code::kNotFound);
  EXPECT_TRUE(read_lsn(Lsn(6)).is_ok());
}

// A seal of an empty active segment creates no file, yet still fails the writes in
// flight with Sealed.
TEST_F(StoreTest, SealOfAnEmptySegmentCreatesNoFile) {
  open();
  for (int i = 0; i < 100; ++i) {
    run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  }
  EXPECT_EQ(store_->stats().segments, 1u);
  EXPECT_EQ(store_->stats().seals, 100u);
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  run([&]() -> Task<void> { EXPECT_TRUE((co_await store_->seal()).is_ok()); });
  EXPECT_EQ(store_->stats().segments, 2u);
  // A write queued before a seal of the (now empty) active segment fails with Sealed.
  Status queued = cancelled("unset");
  auto w = [&]() -> Task<void> {
    std::vector<Record> batch{log_record(2, 1)};
    queued = co_await store_->append(std::move(batch));
  };
  env().executor().spawn("w", w());
  env().executor().spawn(
      "seal", [](SegmentStore* s) -> Task<void> { (void)co_await s->seal(); }(store_.get()));
  world_.run_for(1s);
  EXPECT_EQ(queued.code(), Code::kSealed);
  EXPECT_EQ(store_->stats().segments, 2u);
  ASSERT_TRUE(append({log_record(2, 1)}).is_ok());
}

// ---- A data directory the store cannot use is InvalidArgument naming the path.

TEST_F(StoreTest, AFileWhereTheSegmentsDirectoryBelongsIsInvalidArgument) {
  run([&]() -> Task<void> {
    auto f = co_await env().disk().open("segments", {.create = true});
    EXPECT_TRUE(f.is_ok());
    auto s = co_await SegmentStore::open(env(), options_);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.status().message().find("segments"), std::string::npos) << s.status().to_string();
  });
}

TEST_F(StoreTest, ADirectoryNamedLikeASegmentIsInvalidArgument) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  store_.reset();
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await env().disk().make_dirs("segments/seg-0000000000000002")).is_ok());
    auto s = co_await SegmentStore::open(env(), options_);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.status().message().find("seg-0000000000000002"), std::string::npos)
        << s.status().to_string();
  });
}

// A segments directory the node may not write, though its files are writable: recovery alone
// would succeed and the first seal or roll-over would break a serving store. The probe at
// open finds it first, as InvalidArgument naming the path, and leaves nothing behind.
TEST_F(StoreTest, AnUnwritableSegmentsDirectoryIsInvalidArgumentAtOpen) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  store_.reset();
  const std::vector<std::string> files_before = disk().current_files();
  ASSERT_TRUE(disk().set_permissions("segments", 0555));
  run([&]() -> Task<void> {
    auto s = co_await SegmentStore::open(env(), options_);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.status().to_string();
    EXPECT_NE(s.status().message().find("segments/.probe: Permission denied"), std::string::npos)
        << s.status().to_string();
    // The refusal is the disk's, not the probe's own idea: a seal would have met it too.
    const std::string next = "segments/seg-0000000000000002";
    const OpenOptions create{.create = true};
    auto seg = co_await env().disk().open(next, create);
    EXPECT_EQ(seg.code(), Code::kInvalidArgument);
  });
  EXPECT_EQ(disk().current_files(), files_before);
  // Writable again, the store opens with its record and no probe left over.
  ASSERT_TRUE(disk().set_permissions("segments", 0755));
  open();
  EXPECT_EQ(store_->complete_lsn(), Lsn(1));
  EXPECT_EQ(disk().current_files(), files_before);
  Status sealed = cancelled("unset");
  run([&]() -> Task<void> { sealed = co_await store_->seal(); });
  EXPECT_TRUE(sealed.is_ok()) << sealed.to_string();
  EXPECT_EQ(store_->stats().segments, 2u);
}

// A crash between creating the probe and removing it leaves it; the next open removes it,
// and in a directory that became unwritable meanwhile that removal is the refusal.
TEST_F(StoreTest, AProbeACrashLeftIsRemovedAtOpen) {
  open();
  ASSERT_TRUE(append({log_record(1, 0)}).is_ok());
  store_.reset();
  const std::vector<std::string> files_before = disk().current_files();
  run([&]() -> Task<void> {
    const std::string probe = "segments/.probe";
    const OpenOptions create{.create = true};
    auto f = co_await env().disk().open(probe, create);
    EXPECT_TRUE(f.is_ok());
  });
  world_.crash(node_, UnsyncedOnCrash::kKeep);
  world_.start(node_);
  ASSERT_TRUE(disk().set_permissions("segments", 0555));
  run([&]() -> Task<void> {
    auto s = co_await SegmentStore::open(env(), options_);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.status().to_string();
    EXPECT_NE(s.status().message().find("unlink segments/.probe"), std::string::npos)
        << s.status().to_string();
  });
  ASSERT_TRUE(disk().set_permissions("segments", 0755));
  open();
  EXPECT_EQ(store_->complete_lsn(), Lsn(1));
  EXPECT_EQ(disk().current_files(), files_before);
}

// raise_term is durable: a TERM marker, synced, recovered after a crash (and never indexed
// as a record); writes of a lower term are Fenced; a lower or equal raise changes nothing.
TEST_F(StoreTest, RaisedTermIsDurableAndFencesLowerWriters) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1)}).is_ok());
  EXPECT_EQ(store_->max_term(), Term(1));
  ASSERT_TRUE(raise_term(Term(5)).is_ok());
  EXPECT_EQ(store_->max_term(), Term(5));
  const uint64_t bytes = store_->stats().bytes;
  for (uint64_t t : {3, 5}) EXPECT_TRUE(raise_term(Term(t)).is_ok()) << t;
  EXPECT_EQ(store_->stats().bytes, bytes);  // no marker for a term not above the highest
  EXPECT_EQ(store_->max_term(), Term(5));
  EXPECT_EQ(append({log_record(3, 2)}, AppendSource::kWriter, Term(4)).code(), Code::kFenced);
  EXPECT_EQ(abandon_after(Lsn(1), Term(4)).code(), Code::kFenced);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->max_term(), Term(5));
  EXPECT_EQ(store_->stats().records, 2u);  // the marker is not a record
  EXPECT_EQ(store_->last_lsn(), Lsn(2));
  EXPECT_EQ(append({log_record(3, 2)}, AppendSource::kWriter, Term(1)).code(), Code::kFenced);
  EXPECT_EQ(store_->find(Lsn(3)), nullptr);
  // The new writer re-writes under term 5, its records' header terms may be lower.
  EXPECT_TRUE(append({log_record(3, 2)}, AppendSource::kWriter, Term(5)).is_ok());
  EXPECT_EQ(store_->complete_lsn(), Lsn(3));
}

// The segment holding the TERM marker of the highest term is kept by retention, so the
// fence survives garbage collection of every record of that era.
TEST_F(StoreTest, RetentionKeepsTheTermMarkersSegment) {
  open({.dir = "segments", .segment_bytes_max = 2048});
  ASSERT_TRUE(append({log_record(1, 0, 300)}).is_ok());
  ASSERT_TRUE(raise_term(Term(7)).is_ok());
  uint64_t lsn = 1;
  for (; lsn < 40; ++lsn) ASSERT_TRUE(append({log_record(lsn + 1, lsn, 300)}).is_ok());
  ASSERT_TRUE(append({completion_record(lsn + 1, lsn, lsn)}).is_ok());
  ASSERT_GT(store_->stats().segments, 3u);
  const uint64_t segments_before = store_->stats().segments;
  ASSERT_TRUE(set_retention(Lsn(lsn)).is_ok());
  EXPECT_LT(store_->stats().segments, segments_before);  // retention did delete segments
  EXPECT_TRUE(disk().current_content("segments/" + segment_file_name(1)).has_value());
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->max_term(), Term(7));
}

// Raft's log matching: a record of a newer term replaces a different one of an older term
// above the commit point, and the older branch after its prev_lsn goes with it; at or below
// the commit point it is refused; a stored record of a newer term makes the older one
// Older (a peer's copy is dropped).
TEST_F(StoreTest, ANewerTermReplacesAnOlderTermsTailAboveTheCommitPoint) {
  open();
  ASSERT_TRUE(append({log_record(1, 0), log_record(2, 1), committing_log_record(3, 2, 2),
                      log_record(4, 3), log_record(5, 4)})
                  .is_ok());
  ASSERT_EQ(store_->commit_point(), Lsn(2));
  // At or below the commit point: committed, refused (a re-stamp of the same bytes too).
  for (uint64_t term : {2, 3}) {
    EXPECT_EQ(append({of_term(log_record(2, 1), term)}).code(), Code::kInvalidArgument) << term;
  }
  // Term 2 re-writes 4 differently: 4 and 5 of term 1 go, 4 of term 2 is stored.
  ASSERT_TRUE(append({of_term(log_record(4, 3), 2, 0xaa)}).is_ok());
  ASSERT_NE(store_->find(Lsn(4)), nullptr);
  EXPECT_EQ(store_->find(Lsn(4))->term, Term(2));
  EXPECT_EQ(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(4));
  auto read = read_lsn(Lsn(4));
  ASSERT_TRUE(read.is_ok());
  EXPECT_EQ(read->payload[0], 0xaa);
  // The old writer's copy is refused to it and dropped from a peer.
  EXPECT_EQ(append({log_record(4, 3)}).code(), Code::kOlder);
  EXPECT_TRUE(append({log_record(4, 3)}, AppendSource::kPeer).is_ok());
  EXPECT_EQ(store_->find(Lsn(4))->term, Term(2));
  // The same term and other bytes is still a writer bug.
  EXPECT_EQ(append({of_term(log_record(4, 3), 2, 0xbb)}).code(), Code::kInvalidArgument);
  crash_and_reopen(UnsyncedOnCrash::kLose);
  EXPECT_EQ(store_->find(Lsn(4))->term, Term(2));
  EXPECT_EQ(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(4));
  EXPECT_EQ(store_->max_term(), Term(2));
}

// A newer writer's records may arrive out of order: replacing an older record below one of
// them abandons only the older term's records between, never the newer writer's.
TEST_F(StoreTest, AReplacementKeepsTheNewerWritersLaterRecords) {
  open();
  for (uint64_t l = 1; l <= 6; ++l) ASSERT_TRUE(append({log_record(l, l - 1)}).is_ok());
  ASSERT_TRUE(append({of_term(log_record(5, 4), 2)}).is_ok());  // drops 5 and 6 of term 1
  EXPECT_EQ(store_->find(Lsn(6)), nullptr);
  EXPECT_EQ(store_->complete_lsn(), Lsn(5));                    // 4 of term 1 still links to it
  ASSERT_TRUE(append({of_term(log_record(4, 3), 2)}).is_ok());  // drops only 4 of term 1
  ASSERT_NE(store_->find(Lsn(5)), nullptr);
  EXPECT_EQ(store_->find(Lsn(4))->term, Term(2));
  EXPECT_EQ(store_->find(Lsn(5))->term, Term(2));
  EXPECT_EQ(store_->complete_lsn(), Lsn(5));
  ASSERT_TRUE(append({of_term(log_record(6, 5), 2)}).is_ok());
  crash_and_reopen(UnsyncedOnCrash::kLose);
  for (uint64_t l = 4; l <= 6; ++l) EXPECT_EQ(store_->find(Lsn(l))->term, Term(2)) << l;
  EXPECT_EQ(store_->complete_lsn(), Lsn(6));
}

}  // namespace
}  // namespace quire
