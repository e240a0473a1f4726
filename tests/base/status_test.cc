#include "base/status.h"

#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace quire {
namespace {

Status fails_with_corruption() {
  return Status(Code::kCorruption, "crc mismatch").at("recover").with("lsn", 7);
}

Status propagates(bool fail) {
  QUIRE_RETURN_IF_ERROR(fail ? fails_with_corruption() : Status::ok());
  return not_found("reached the end");
}

TEST(Status, OkIsDefaultAndFree) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_FALSE(s.retriable());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.step(), "");
  EXPECT_TRUE(s.fields().empty());
  EXPECT_EQ(s.to_string(), "OK");
  // OK carries no allocation: a Status is one pointer.
  static_assert(sizeof(Status) == sizeof(void*));
}

TEST(Status, CarriesCodeMessageStepAndFields) {
  const Status s = fails_with_corruption();
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message(), "crc mismatch");
  EXPECT_EQ(s.step(), "recover");
  ASSERT_EQ(s.fields().size(), 1u);
  EXPECT_EQ(s.fields()[0].key, "lsn");
  EXPECT_EQ(s.fields()[0].value, 7u);
  EXPECT_EQ(s.to_string(), "Corruption: crc mismatch [step=recover lsn=7]");
}

TEST(Status, ToStringFormats) {
  EXPECT_EQ(corruption("bad").to_string(), "Corruption: bad");
  EXPECT_EQ(busy("full").with("queue", 3).with("bound", 4).to_string(),
            "Busy: full [queue=3 bound=4]");
  EXPECT_EQ(io_error("short write").at("fsync").to_string(), "Io: short write [step=fsync]");
}

TEST(Status, FieldLookup) {
  Status s = unavailable("no answer");
  s.with("node", 3).with("term", 9);
  EXPECT_EQ(s.field("node"), 3u);
  EXPECT_EQ(s.field("term"), 9u);
  EXPECT_FALSE(s.field("lsn").has_value());
  EXPECT_FALSE(Status().field("node").has_value());
}

TEST(Status, CopiesAreDeep) {
  Status original = fails_with_corruption();
  Status copy = original;
  copy.with("page", 12).at("replay");
  EXPECT_EQ(original.step(), "recover");
  EXPECT_FALSE(original.field("page").has_value());
  EXPECT_EQ(copy.step(), "replay");
  EXPECT_EQ(copy.field("page"), 12u);

  Status assigned;
  assigned = original;
  original.with("extra", 1);
  EXPECT_FALSE(assigned.field("extra").has_value());
  EXPECT_EQ(assigned.to_string(), "Corruption: crc mismatch [step=recover lsn=7]");

  Status ok_copy = Status::ok();
  assigned = ok_copy;
  EXPECT_TRUE(assigned.is_ok());
}

TEST(Status, MovesTransferTheError) {
  Status a = fails_with_corruption();
  Status b = std::move(a);
  EXPECT_EQ(b.code(), Code::kCorruption);
  EXPECT_EQ(b.field("lsn"), 7u);
}

TEST(Status, ShorthandsHaveTheirCodes) {
  EXPECT_EQ(invalid_argument("").code(), Code::kInvalidArgument);
  EXPECT_EQ(corruption("").code(), Code::kCorruption);
  EXPECT_EQ(unavailable("").code(), Code::kUnavailable);
  EXPECT_EQ(not_found("").code(), Code::kNotFound);
  EXPECT_EQ(io_error("").code(), Code::kIo);
  EXPECT_EQ(busy("").code(), Code::kBusy);
  EXPECT_EQ(cancelled("").code(), Code::kCancelled);
  EXPECT_EQ(deadline_exceeded("").code(), Code::kDeadlineExceeded);
}

TEST(Status, RetriableCodes) {
  const std::set<Code> retriable = {
      Code::kUnavailable,        Code::kSealed, Code::kBusy, Code::kDeadlineExceeded,
      Code::kNotYetMaterialized, Code::kNoSpace};
  for (int i = 0; i < kCodeCount; i++) {
    const auto code = static_cast<Code>(i);
    EXPECT_EQ(code_is_retriable(code), retriable.count(code) == 1) << code_name(code);
    if (code != Code::kOk) {
      EXPECT_EQ(Status(code, "x").retriable(), retriable.count(code) == 1) << code_name(code);
    }
  }
  EXPECT_FALSE(code_is_retriable(static_cast<Code>(200)));
}

bool is_layer_code(int value) {
  return value >= kLayerCodeFirst && value <= kLayerCodeLast;
}

// Base names its own codes; the values it leaves to layers above are named by them.
TEST(Status, CodeNameCoversEveryCode) {
  std::set<std::string_view> names;
  for (int i = 0; i < kCodeCount; i++) {
    if (is_layer_code(i)) continue;
    const std::string_view name = code_name(static_cast<Code>(i));
    EXPECT_NE(name, "Unknown") << i;
    EXPECT_FALSE(name.empty()) << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kCodeCount - (kLayerCodeLast - kLayerCodeFirst + 1)))
      << "names must be distinct";
  EXPECT_EQ(code_name(Code::kOk), "OK");
  EXPECT_EQ(code_name(Code::kCorruption), "Corruption");
  EXPECT_EQ(code_name(Code::kKeyExhausted), "KeyExhausted");
  EXPECT_EQ(code_name(Code::kNoSpace), "NoSpace");
  EXPECT_EQ(code_name(static_cast<Code>(kCodeCount)), "Unknown");
  EXPECT_EQ(code_name(static_cast<Code>(200)), "Unknown");
}

TEST(Status, LayerCodesAreNamedByTheirLayer) {
  const Code mine{kLayerCodeLast};
  EXPECT_EQ(code_name(mine), "Unknown");
  name_layer_code(mine, "MyLayerCode");
  name_layer_code(mine, "MyLayerCode");  // again, the same name: nothing changes
  EXPECT_EQ(code_name(mine), "MyLayerCode");
  EXPECT_EQ(Status(mine, "x").to_string(), "MyLayerCode: x");
  EXPECT_FALSE(code_is_retriable(mine));
}

TEST(Status, EqualityComparesCodes) {
  EXPECT_EQ(Status(), Status::ok());
  EXPECT_EQ(corruption("a"), corruption("b"));
  EXPECT_FALSE(corruption("a") == busy("a"));
  EXPECT_FALSE(corruption("a") == Status());
}

TEST(Status, ReturnIfErrorPropagates) {
  EXPECT_EQ(propagates(true).to_string(), "Corruption: crc mismatch [step=recover lsn=7]");
  EXPECT_EQ(propagates(false).code(), Code::kNotFound);
}

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return invalid_argument("not a digit").with("char", uint64_t(c));
  return c - '0';
}

TEST(Result, HoldsValue) {
  Result<int> r = parse_digit('7');
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 7);
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(r.code(), Code::kOk);
  EXPECT_TRUE(r.status().is_ok());
}

TEST(Result, HoldsStatus) {
  Result<int> r = parse_digit('x');
  EXPECT_FALSE(r.is_ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().field("char"), uint64_t('x'));
  EXPECT_EQ(r.status().to_string(), "InvalidArgument: not a digit [char=120]");
  const Status taken = std::move(r).take_status();
  EXPECT_EQ(taken.code(), Code::kInvalidArgument);
}

TEST(Result, MovesOutValue) {
  Result<std::unique_ptr<std::string>> r = std::make_unique<std::string>("page");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->get()->size(), 4u);
  std::unique_ptr<std::string> owned = std::move(r).value();
  EXPECT_EQ(*owned, "page");
}

TEST(ResultDeathTest, ValueOfErrorAsserts) {
  Result<int> r = parse_digit('x');
  EXPECT_DEATH((void)r.value(), "assertion failed");
}

TEST(ResultDeathTest, OkStatusIsNotAResult) {
  EXPECT_DEATH((void)Result<int>(Status::ok()), "assertion failed");
}

}  // namespace
}  // namespace quire
