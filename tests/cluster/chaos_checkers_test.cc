// The real chaos harness's checkers, each shown to pass on a clean history and to fail on a
// planted fault: an acknowledged write missing (lost_write), a stale or invented read
// (read), a standby going back in time (read), a checkpoint LSN going back (monotonic), an
// unexpected process exit (abort), a plaintext canary on a page server's disk (plaintext).
#include "cluster/chaos_checkers.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace quire::cluster {
namespace {

Op write_op(uint32_t owner, uint32_t index, uint64_t seq, int64_t start, int64_t end,
            OpOutcome outcome = OpOutcome::kOk) {
  Op op;
  op.kind = OpKind::kWrite;
  op.owner = owner;
  op.key_index = index;
  op.seq = seq;
  op.start_us = start;
  op.end_us = end;
  op.outcome = outcome;
  return op;
}

Op read_op(uint32_t owner, uint32_t index, uint64_t seq, int64_t start, int64_t end,
           ReadPath path = ReadPath::kPrimary, uint16_t node = 0) {
  Op op;
  op.kind = OpKind::kRead;
  op.owner = owner;
  op.key_index = index;
  op.seq = seq;
  op.start_us = start;
  op.end_us = end;
  op.path = path;
  op.node = node;
  return op;
}

const std::vector<std::string> kNames = {"node1", "node2", "node3"};

TEST(ChaosHistory, KeysAndValuesRoundTrip) {
  auto k = parse_chaos_key(chaos_key(3, 12345));
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(*k, (KeyId{3, 12345}));
  EXPECT_FALSE(parse_chaos_key("quirekey:3:").has_value());
  EXPECT_FALSE(parse_chaos_key("other").has_value());
  const std::string v = chaos_value(2, 99);
  EXPECT_EQ(v.size(), kValueBytes);
  auto id = parse_chaos_value(v);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->owner, 2u);
  EXPECT_EQ(id->seq, 99u);
  EXPECT_NE(chaos_value(2, 99), chaos_value(2, 100));
  EXPECT_FALSE(parse_chaos_value("quire-canary:2:0:").has_value());
}

TEST(ChaosHistory, ClassifiesWriteReplies) {
  RespReply ok;
  ok.type = RespReply::Type::kSimple;
  ok.text = "OK";
  EXPECT_EQ(classify_write(Result<RespReply>(ok)), OpOutcome::kOk);
  RespReply unknown;
  unknown.type = RespReply::Type::kError;
  unknown.text = "TRYAGAIN write outcome unknown: it may or may not have been applied";
  EXPECT_EQ(classify_write(Result<RespReply>(unknown)), OpOutcome::kUnknown);
  RespReply not_committed = unknown;
  not_committed.text = "TRYAGAIN write not committed (safe to retry): x";
  EXPECT_EQ(classify_write(Result<RespReply>(not_committed)), OpOutcome::kError);
  RespReply readonly = unknown;
  readonly.text = "READONLY You can't write against a read only replica.";
  EXPECT_EQ(classify_write(Result<RespReply>(readonly)), OpOutcome::kError);
  EXPECT_TRUE(is_not_primary_error(readonly.text));
  EXPECT_EQ(classify_write(Result<RespReply>(unavailable("connection closed"))),
            OpOutcome::kUnknown);
}

TEST(ChaosCheckers, LostWritePassesWhenEveryAckIsPresent) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10), write_op(0, 1, 2, 20, 30),
                       write_op(0, 20, 3, 40, 50), write_op(0, 21, 4, 60, 70, OpOutcome::kUnknown)};
  Content c = {{chaos_key(0, 1), chaos_value(0, 2)}, {chaos_key(0, 20), chaos_value(0, 3)}};
  EXPECT_TRUE(check_lost_writes(h, c, "node1").empty());
  c[chaos_key(0, 21)] = chaos_value(0, 4);  // an unknown write may be there too
  EXPECT_TRUE(check_lost_writes(h, c, "node1").empty());
}

TEST(ChaosCheckers, LostWriteFailsOnAMissingAcknowledgedWrite) {
  std::vector<Op> h = {write_op(0, 20, 1, 0, 10), write_op(1, 20, 1, 0, 10)};
  Content c = {{chaos_key(0, 20), chaos_value(0, 1)}};  // owner 1's write dropped
  auto v = check_lost_writes(h, c, "node2");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].checker, "lost_write");
  EXPECT_NE(v[0].detail.find("quirekey:1:20 is missing"), std::string::npos) << v[0].detail;
}

TEST(ChaosCheckers, LostWriteFailsOnAnOlderValueOrAFailedWrite) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10), write_op(0, 1, 2, 20, 30),
                       write_op(0, 2, 3, 40, 50, OpOutcome::kError)};
  Content c = {{chaos_key(0, 1), chaos_value(0, 1)}, {chaos_key(0, 2), chaos_value(0, 3)}};
  auto v = check_lost_writes(h, c, "node1");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NE(v[0].detail.find("older than seq 2"), std::string::npos) << v[0].detail;
  EXPECT_NE(v[1].detail.find("whose write failed"), std::string::npos) << v[1].detail;
}

TEST(ChaosCheckers, ReadPassesOnFreshOrConcurrentValues) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10), write_op(0, 1, 2, 20, 30),
                       read_op(0, 1, 1, 15, 16),  // seq 1 was the newest acknowledged
                       read_op(0, 1, 1, 25, 26),  // seq 2 in flight: 1 or 2
                       read_op(0, 1, 2, 25, 26),  // seq 2 in flight: 1 or 2
                       read_op(0, 2, 0, 5, 6)};   // never written: no value
  uint64_t checked = 0;
  EXPECT_TRUE(check_reads(h, &checked, kNames).empty());
  EXPECT_EQ(checked, 4u);
}

TEST(ChaosCheckers, ReadFailsOnAStaleRead) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10), write_op(0, 1, 2, 20, 30),
                       read_op(0, 1, 1, 40, 41, ReadPath::kPrimary, 1)};
  uint64_t checked = 0;
  auto v = check_reads(h, &checked, kNames);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].checker, "read");
  EXPECT_NE(v[0].detail.find("older than seq 2"), std::string::npos) << v[0].detail;
  EXPECT_NE(v[0].detail.find("node2"), std::string::npos) << v[0].detail;
}

TEST(ChaosCheckers, ReadFailsOnAValueNeverWrittenOrFailed) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10, OpOutcome::kError), read_op(0, 1, 1, 20, 21),
                       read_op(0, 1, 7, 20, 21)};
  Op foreign = read_op(0, 1, 0, 20, 21);
  foreign.foreign_value = true;
  h.push_back(foreign);
  uint64_t checked = 0;
  auto v = check_reads(h, &checked, kNames);
  ASSERT_EQ(v.size(), 3u);
}

TEST(ChaosCheckers, ReadFailsWhenAStandbyGoesBackInTime) {
  std::vector<Op> h = {write_op(0, 1, 1, 0, 10), write_op(0, 1, 2, 20, 30),
                       read_op(0, 1, 2, 40, 41, ReadPath::kNode, 2),
                       read_op(0, 1, 1, 50, 51, ReadPath::kNode, 2)};
  uint64_t checked = 0;
  auto v = check_reads(h, &checked, kNames);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].detail.find("node3 read quirekey:0:1"), std::string::npos) << v[0].detail;
  // Another node reading the older value is no violation: each node has its own past.
  h.back().node = 1;
  EXPECT_TRUE(check_reads(h, &checked, kNames).empty());
}

TEST(ChaosCheckers, ConvergenceComparesContent) {
  Content a = {{"k1", "v1"}, {"k2", "v2"}};
  EXPECT_TRUE(check_same_content(a, a, "node2").empty());
  Content b = {{"k1", "v1"}, {"k2", "other"}, {"k3", "v3"}};
  auto v = check_same_content(a, b, "node2");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].checker, "convergence");
  EXPECT_NE(v[0].detail.find("1 extra, 1 different"), std::string::npos) << v[0].detail;
}

TEST(ChaosCheckers, MonotonicFailsOnlyWithinOneIncarnationAndEngine) {
  MonotonicTracker t;
  EXPECT_FALSE(t.observe({0, "node1", 10, "standby", 100, 5}).has_value());
  EXPECT_FALSE(t.observe({1, "node1", 10, "standby", 120, 6}).has_value());
  auto v = t.observe({2, "node1", 10, "standby", 110, 6});
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->checker, "monotonic");
  // A new process starts over; so does a primary that steps down.
  EXPECT_FALSE(t.observe({3, "node1", 11, "standby", 50, 2}).has_value());
  EXPECT_FALSE(t.observe({4, "node1", 11, "primary", 60, 3}).has_value());
  EXPECT_FALSE(t.observe({5, "node1", 11, "standby", 40, 2}).has_value());
  EXPECT_TRUE(t.observe({6, "node1", 11, "standby", 40, 1}).has_value());
  // A primary that stepped down and won again between two samples: step_downs tells.
  EXPECT_FALSE(t.observe({7, "node1", 11, "primary", 90, 9, 0}).has_value());
  EXPECT_FALSE(t.observe({8, "node1", 11, "primary", 70, 8, 1}).has_value());
  EXPECT_TRUE(t.observe({9, "node1", 11, "primary", 70, 7, 1}).has_value());
}

TEST(ChaosCheckers, AbortAcceptsInjectedKillsAndFlagsTheRest) {
  const std::string log =
      "2026-12-03T01:00:00Z supervisor: started ps1 (pid 100)\n"
      "2026-12-03T01:00:01Z supervisor: ps1 (pid 100) ended: signal 9 (Killed)\n"
      "2026-12-03T01:00:02Z supervisor: node2 (pid 200) ended: signal 6 (Aborted)\n"
      "2026-12-03T01:00:03Z supervisor: node3 (pid 300) ended: signal 9 (Killed)\n"
      "2026-12-03T01:00:04Z supervisor: stopping the cluster\n"
      "2026-12-03T01:00:05Z supervisor: node1 (pid 400) ended: exit 0\n";
  const auto exits = parse_supervisor_exits(log);
  ASSERT_EQ(exits.size(), 3u);
  EXPECT_EQ(exits[1].name, "node2");
  EXPECT_EQ(exits[1].pid, 200);
  EXPECT_EQ(exits[1].at, "2026-12-03T01:00:02Z");
  auto why = [](const ProcessExit& e) {
    return e.name == "node2" ? std::string("StaleKeystore") : std::string();
  };
  // node3's SIGKILL was not the nemesis's: it is flagged too.
  auto v = check_exits(exits, {"ps1"}, why);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].checker, "abort");
  EXPECT_NE(v[0].detail.find("node2 (pid 200) ended: signal 6 (Aborted); StaleKeystore"),
            std::string::npos)
      << v[0].detail;
  EXPECT_NE(v[1].detail.find("node3"), std::string::npos);
  EXPECT_EQ(check_exits(exits, {"ps1", "node3"}, why).size(), 1u);
}

class ChaosFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quire-chaos-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "ps1" / "segments");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary);
    out << bytes;
  }
  std::filesystem::path dir_;
};

TEST_F(ChaosFiles, PlaintextFindsACanaryOnDisk) {
  std::string sealed(3 << 20, '\x5a');
  write(dir_ / "ps1" / "segments" / "000001.seg", sealed);
  uint64_t scanned = 0;
  EXPECT_TRUE(check_plaintext({(dir_ / "ps1").string()}, &scanned).empty());
  EXPECT_EQ(scanned, sealed.size());
  // A canary straddling the scanner's 1 MiB chunks is still found.
  sealed.replace((1 << 20) - 5, kValueBytes, chaos_value(1, 2));
  write(dir_ / "ps1" / "segments" / "000002.seg", sealed);
  auto v = check_plaintext({(dir_ / "ps1").string()}, &scanned);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].checker, "plaintext");
  EXPECT_NE(v[0].detail.find("000002.seg"), std::string::npos) << v[0].detail;
  EXPECT_NE(v[0].detail.find(std::to_string((1 << 20) - 5)), std::string::npos) << v[0].detail;
}

TEST_F(ChaosFiles, CrashLinesAreFound) {
  write(dir_ / "node1.log", "{\"msg\":\"fine\"}\n");
  EXPECT_TRUE(check_crash_lines(dir_.string()).empty());
  write(dir_ / "node2.log", "ok\nterminate called after throwing an instance of 'x'\n");
  auto v = check_crash_lines(dir_.string());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].checker, "abort");
  EXPECT_NE(v[0].detail.find("node2.log: terminate called"), std::string::npos) << v[0].detail;
}

}  // namespace
}  // namespace quire::cluster
