#include "base/log.h"

#include <limits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace quire {
namespace {

class FixedContext : public LogContext {
 public:
  int64_t log_wall_time_ns() const override {
    return 1767225601'000250000LL;
  }  // 2026-01-01T00:00:01.000250Z
  std::string_view log_task_name() const override { return "checkpoint-pick-up"; }
};

TEST(Log, LineIsJsonWithTheSevenFieldsInOrder) {
  RingLogSink ring(10, 1 << 20);
  FixedContext ctx;
  Logger log(&ring, &ctx);
  log.info("repl", 42001, "installed checkpoint",
           {{"lsn", uint64_t{7}},
            {"delta", -3},
            {"ratio", 0.5},
            {"ok", true},
            {"peer", "ps1:7000"},
            {"error", Status(Code::kCorruption, "bad crc").with("lsn", 9)}});
  ASSERT_EQ(ring.lines().size(), 1u);
  const std::string& line = ring.lines().front();
  EXPECT_EQ(
      line.rfind("{\"t\":\"2026-01-01T00:00:01.000250Z\",\"s\":\"I\",\"c\":\"repl\",\"id\":42001,"
                 "\"ctx\":\"checkpoint-pick-up\",\"msg\":\"installed checkpoint\",\"attr\":{",
                 0),
      0u)
      << line;
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["attr"]["lsn"], 7);
  EXPECT_EQ(j["attr"]["delta"], -3);
  EXPECT_EQ(j["attr"]["ratio"], 0.5);
  EXPECT_EQ(j["attr"]["ok"], true);
  EXPECT_EQ(j["attr"]["peer"], "ps1:7000");
  EXPECT_EQ(j["attr"]["error"], "Corruption: bad crc [lsn=9]");
}

TEST(Log, EscapingKeepsEveryLineValidJson) {
  RingLogSink ring(10, 1 << 20);
  Logger log(&ring, nullptr);
  std::string nasty = "quote\" backslash\\ newline\n tab\t nul";
  nasty.push_back('\0');
  nasty += " high\xff\xfe bytes";
  log.error("net", 1, nasty, {{"k\"ey", nasty}, {"nan", std::numeric_limits<double>::quiet_NaN()}});
  auto j = nlohmann::json::parse(ring.lines().front());  // throws on invalid JSON
  EXPECT_EQ(j["s"], "E");
  EXPECT_TRUE(j["attr"]["nan"].is_null());
  EXPECT_NE(j["msg"].get<std::string>().find("newline\n tab"), std::string::npos);
}

TEST(Log, SeverityFilterAndRingBounds) {
  RingLogSink ring(3, 1 << 20);
  Logger log(&ring, nullptr, Severity::kWarning);
  log.info("c", 1, "dropped by severity");
  log.debug("c", 2, "dropped by severity");
  EXPECT_TRUE(ring.lines().empty());
  for (int i = 0; i < 5; ++i) log.warn("c", 3, "kept", {{"i", i}});
  EXPECT_EQ(ring.lines().size(), 3u);
  EXPECT_EQ(ring.dropped(), 2u);
  EXPECT_EQ(nlohmann::json::parse(ring.lines().front())["attr"]["i"], 2);

  RingLogSink small(100, 300);  // byte bound
  Logger log2(&small, nullptr);
  for (int i = 0; i < 10; ++i) log2.info("c", 4, "a line of some length");
  size_t bytes = 0;
  for (const auto& l : small.lines()) bytes += l.size();
  EXPECT_LE(bytes, 300u);
  EXPECT_GT(small.dropped(), 0u);
}

TEST(Log, ParseSeverity) {
  EXPECT_EQ(*parse_severity("debug"), Severity::kDebug);
  EXPECT_EQ(*parse_severity("W"), Severity::kWarning);
  EXPECT_EQ(parse_severity("loud").code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace quire
