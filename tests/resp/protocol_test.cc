// The RESP2 request parser against Redis 7.0.15's behaviour (measured on the Debian
// redis-server: every error text below is what it replied), at every split of the input.
#include "resp/protocol.h"

#include "resp/handler.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

namespace quire::resp {
namespace {

using Args = std::vector<std::string>;
using R = RequestParser::Result;

struct Parsed {
  std::vector<Args> commands;
  R end = R::kNeedMore;
  std::string error;
};

// Feeds `input` in pieces of `chunk` bytes (0: all at once), draining between pieces.
Parsed parse(std::string_view input, size_t chunk = 0, RequestLimits limits = {}) {
  RequestParser p(limits);
  Parsed out;
  Args args;
  if (chunk == 0) chunk = std::max<size_t>(input.size(), 1);
  for (size_t at = 0; at < input.size() || at == 0; at += chunk) {
    p.feed(input.substr(at, chunk));
    while (true) {
      R r = p.next(&args);
      if (r == R::kCommand) {
        out.commands.push_back(args);
        continue;
      }
      out.end = r;
      out.error = p.error();
      break;
    }
    if (out.end != R::kNeedMore) return out;
    if (input.empty()) break;
  }
  return out;
}

TEST(RespProtocol, MultibulkAndInline) {
  Parsed p = parse("*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\nPING\r\nset a b\n");
  ASSERT_EQ(p.end, R::kNeedMore);
  ASSERT_EQ(p.commands.size(), 3u);
  EXPECT_EQ(p.commands[0], (Args{"ECHO", std::string("he\r\nl")}));
  EXPECT_EQ(p.commands[1], (Args{"PING"}));
  EXPECT_EQ(p.commands[2], (Args{"set", "a", "b"}));
}

TEST(RespProtocol, NoCommandForEmptyMultibulksAndEmptyLines) {
  Parsed p = parse("*0\r\n*-1\r\n*-5\r\n\r\n\n   \r\nPING\r\n");
  ASSERT_EQ(p.end, R::kNeedMore);
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0], (Args{"PING"}));
}

TEST(RespProtocol, BinarySafeBulks) {
  std::string value("a\0b\r\n\xff", 6);
  Parsed p = parse("*2\r\n$3\r\nSET\r\n$6\r\n" + value + "\r\n");
  ASSERT_EQ(p.commands.size(), 1u);
  EXPECT_EQ(p.commands[0][1], value);
}

// Redis skips the two bytes after a bulk and the byte after a line's "\r" unseen.
TEST(RespProtocol, SkipsTerminatorsUncheckedAsRedisDoes) {
  Parsed p = parse("*1\r\n$4\r\nPINGxxPING\r\n");
  ASSERT_EQ(p.commands.size(), 2u);
  EXPECT_EQ(p.commands[1], (Args{"PING"}));
  Parsed q = parse("*1\rx$4\rxPING\r\n");
  ASSERT_EQ(q.commands.size(), 1u);
  EXPECT_EQ(q.commands[0], (Args{"PING"}));
}

struct ErrorCase {
  std::string input;
  std::string error;
};

TEST(RespProtocol, EveryErrorHasRedisText) {
  const std::vector<ErrorCase> cases = {
      {"*2147483648\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*2147483647\r\n9$4\r\nPING\r\n", "ERR Protocol error: expected '$', got '9'"},
      {"*x\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*+1\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*01\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*99999999999999999999\r\n", "ERR Protocol error: invalid multibulk length"},
      {"*1\r\nx\r\n", "ERR Protocol error: expected '$', got 'x'"},
      {"*1\r\n\r\n", "ERR Protocol error: expected '$', got '\r'"},
      {"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$+4\r\nPING\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$04\r\nPING\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$ 4\r\nPING\r\n", "ERR Protocol error: invalid bulk length"},
      {"*1\r\n$\r\nPING\r\n", "ERR Protocol error: invalid bulk length"},
      {"set a \"b\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {"set a \"b\"c\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {"set a 'b\r\n", "ERR Protocol error: unbalanced quotes in request"},
      {std::string(65537, 'a'), "ERR Protocol error: too big inline request"},
      {"*" + std::string(65537, '1'), "ERR Protocol error: too big mbulk count string"},
      {"*1\r\n$" + std::string(65537, '1'), "ERR Protocol error: too big bulk count string"},
  };
  for (const ErrorCase& c : cases) {
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}}) {
      Parsed p = parse(c.input, chunk);
      EXPECT_EQ(p.end, R::kProtocolError) << c.input.substr(0, 40) << " chunk " << chunk;
      EXPECT_EQ(p.error, c.error) << c.input.substr(0, 40) << " chunk " << chunk;
    }
  }
}

TEST(RespProtocol, AtTheLimitsIsStillValid) {
  EXPECT_EQ(parse("*1048576\r\n").end, R::kNeedMore);
  EXPECT_EQ(parse("*1\r\n$536870912\r\n").end, R::kNeedMore);
  EXPECT_EQ(parse(std::string(65536, 'a')).end, R::kNeedMore);
}

TEST(RespProtocol, CommandsBeforeAnErrorAreParsedAndTheParserStaysFailed) {
  RequestParser p;
  p.feed("*1\r\n$4\r\nPING\r\n*x\r\n*1\r\n$4\r\nPING\r\n");
  Args args;
  EXPECT_EQ(p.next(&args), R::kCommand);
  EXPECT_EQ(p.next(&args), R::kProtocolError);
  p.feed("PING\r\n");
  EXPECT_EQ(p.next(&args), R::kProtocolError);
}

TEST(RespProtocol, InlineQuotingAsSdssplitargs) {
  struct Case {
    std::string line;
    Args args;
  };
  const std::vector<Case> cases = {
      {"echo 'a\\'b'", {"echo", "a'b"}},
      {"echo \"\\x41\\n\"", {"echo", "A\n"}},
      {"echo \"\\r\\t\\b\\a\\\\\\\"\\q\"", {"echo", "\r\t\b\a\\\"q"}},
      {"echo \"\\x4\"", {"echo", "x4"}},  // not two hex digits: \x is x
      {"  a\t b  ", {"a", "b"}},
      {"a\"b c\" d", {"ab c", "d"}},
      {"\"\" ''", {"", ""}},
      {"'it''s'", {}},  // a closing quote must be followed by a blank
  };
  for (const Case& c : cases) {
    Args got;
    bool ok = split_inline_args(c.line, &got);
    if (c.args.empty()) {
      EXPECT_FALSE(ok) << c.line;
    } else {
      EXPECT_TRUE(ok) << c.line;
      EXPECT_EQ(got, c.args) << c.line;
    }
  }
}

// Redis finds a line's end with strchr, which stops at a NUL: a line with a NUL before its
// end never ends. The parser waits, and fails "too big" once more than a line's limit is
// buffered; bulk data, read by length, may hold NULs.
TEST(RespProtocol, ANulBeforeALinesEndLeavesItUnended) {
  using namespace std::string_literals;
  for (const std::string& wedged :
       {"ECHO a\0b\r\nPING\r\n"s, "\0\r\nPING\r\n"s, "*1\0\r\n$4\r\nPING\r\n"s,
        "*1\r\n$4\0\r\nPING\r\n"s, "*2\r\n$4\r\nECHO\r\n\0$0\r\n\r\n"s}) {
    for (size_t chunk : {size_t{0}, size_t{1}}) {
      Parsed p = parse(wedged, chunk);
      EXPECT_EQ(p.end, R::kNeedMore) << chunk;
      EXPECT_TRUE(p.commands.empty()) << chunk;
    }
  }
  Parsed inl = parse("PING\0\r\n"s + std::string(65536, 'x'));
  EXPECT_EQ(inl.error, "ERR Protocol error: too big inline request");
  Parsed count = parse("*1\0\r\n"s + std::string(65536, 'x'));
  EXPECT_EQ(count.error, "ERR Protocol error: too big mbulk count string");
  Parsed length = parse("*1\r\n$4\0\r\n"s + std::string(65536, 'x'));
  EXPECT_EQ(length.error, "ERR Protocol error: too big bulk count string");
  Parsed data = parse("*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\nPING\r\n"s);
  ASSERT_EQ(data.commands.size(), 2u);
  EXPECT_EQ(data.commands[0], (Args{"ECHO", "a\0b"s}));
  EXPECT_EQ(data.commands[1], (Args{"PING"}));
}

TEST(RespProtocol, RedisIntegers) {
  int64_t v = 0;
  EXPECT_TRUE(parse_redis_int("0", &v) && v == 0);
  EXPECT_TRUE(parse_redis_int("-12", &v) && v == -12);
  EXPECT_TRUE(parse_redis_int("9223372036854775807", &v) && v == INT64_MAX);
  EXPECT_TRUE(parse_redis_int("-9223372036854775808", &v) && v == INT64_MIN);
  for (const char* bad : {"", "-", "-0", "00", "+1", " 1", "1 ", "9223372036854775808",
                          "-9223372036854775809", "1a"}) {
    EXPECT_FALSE(parse_redis_int(bad, &v)) << bad;
  }
}

// Every split of a mixed stream parses to the same commands.
TEST(RespProtocol, EverySplitPointGivesTheSameCommands) {
  const std::string input =
      encode_multibulk({"SET", std::string("k\r\n", 3), std::string(40, 'v')}) + "PING\r\n*0\r\n" +
      encode_multibulk({"GET", ""}) + "echo \"a b\" 'c'\n" +
      encode_multibulk({std::string(70'000, 'x')});
  Parsed whole = parse(input);
  ASSERT_EQ(whole.end, R::kNeedMore);
  ASSERT_EQ(whole.commands.size(), 5u);
  for (size_t split = 0; split <= input.size(); split += (split < 200 ? 1 : 997)) {
    RequestParser p;
    std::vector<Args> got;
    Args args;
    p.feed(std::string_view(input).substr(0, split));
    while (p.next(&args) == R::kCommand) got.push_back(args);
    p.feed(std::string_view(input).substr(split));
    while (p.next(&args) == R::kCommand) got.push_back(args);
    ASSERT_EQ(got, whole.commands) << "split at " << split;
  }
  Parsed bytewise = parse(input, 1);
  EXPECT_EQ(bytewise.commands, whole.commands);
}

// A count up to INT_MAX is taken, as Redis 7.0 takes it: only the elements that arrive cost
// memory (32 bytes each, and the vector's spare room), and they count against
// command_bytes_max.
TEST(RespProtocol, AnyIntCountIsTakenAndItsElementsAreBounded) {
  Parsed one = parse("*2147483647\r\n$4\r\nPING\r\n");
  EXPECT_EQ(one.end, R::kNeedMore);
  RequestLimits small;
  small.command_bytes_max = 1 << 20;
  RequestParser p(small);
  Args args;
  p.feed("*2147483647\r\n");
  EXPECT_EQ(p.next(&args), R::kNeedMore);
  EXPECT_LT(p.buffered_bytes(), size_t{64} << 10);
  R r = R::kNeedMore;
  for (int i = 0; i < 100'000 && r == R::kNeedMore; i++) {
    p.feed("$0\r\n\r\n");
    r = p.next(&args);
  }
  EXPECT_EQ(r, R::kTooLarge);
}

// A bulk announced at 512 MB holds only what arrived; a command past command_bytes_max
// ends the parse with kTooLarge.
TEST(RespProtocol, BigBulksGrowAsTheyArriveWithinTheCommandBound) {
  RequestParser p;
  Args args;
  p.feed("*2\r\n$3\r\nSET\r\n$536870912\r\n");
  EXPECT_EQ(p.next(&args), R::kNeedMore);
  std::string mib(1 << 20, 'z');
  p.feed(mib);
  EXPECT_EQ(p.next(&args), R::kNeedMore);
  EXPECT_LT(p.buffered_bytes(), size_t{2} << 20);

  RequestLimits small;
  small.command_bytes_max = 100'000;
  RequestParser q(small);
  q.feed("*1\r\n$200000\r\n");
  EXPECT_EQ(q.next(&args), R::kNeedMore);
  for (int i = 0; i < 10; ++i) q.feed(std::string(10'000, 'a'));
  EXPECT_EQ(q.next(&args), R::kTooLarge);
  EXPECT_EQ(q.next(&args), R::kTooLarge);

  // A 3 MB bulk fed in 1000-byte pieces comes out whole.
  std::string big(3'000'000, 'q');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>(i);
  Parsed r = parse(encode_multibulk({"SET", "k", big}), 1000);
  ASSERT_EQ(r.commands.size(), 1u);
  EXPECT_TRUE(r.commands[0][2] == big);
}

TEST(RespProtocol, UnauthenticatedLimits) {
  RequestParser p;
  p.set_authenticated(false);
  Args args;
  p.feed("*11\r\n");
  EXPECT_EQ(p.next(&args), R::kProtocolError);
  EXPECT_EQ(p.error(), "ERR Protocol error: unauthenticated multibulk length");
  RequestParser q;
  q.set_authenticated(false);
  q.feed("*2\r\n$4\r\nAUTH\r\n$16385\r\n");
  EXPECT_EQ(q.next(&args), R::kProtocolError);
  EXPECT_EQ(q.error(), "ERR Protocol error: unauthenticated bulk length");
  RequestParser r;
  r.set_authenticated(false);
  r.feed("*2\r\n$4\r\nAUTH\r\n$3\r\npwd\r\n");
  EXPECT_EQ(r.next(&args), R::kCommand);
}

// Random commands, encoded as multibulks and cut at random points, parse back equal.
RC_GTEST_PROP(RespProtocolProperty, EncodedCommandsParseBackAtAnySplit, ()) {
  const auto commands = *rc::gen::container<std::vector<Args>>(
      *rc::gen::inRange<size_t>(1, 20),
      rc::gen::container<Args>(
          *rc::gen::inRange<size_t>(1, 6),
          rc::gen::oneOf(rc::gen::arbitrary<std::string>(),
                         rc::gen::map(rc::gen::inRange<size_t>(0, 70'000),
                                      [](size_t n) { return std::string(n, 'b'); }))));
  std::string input;
  for (const Args& c : commands) input += encode_multibulk(c);
  const auto cuts =
      *rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(0, input.size() + 1));
  std::vector<size_t> points = cuts;
  points.push_back(0);
  points.push_back(input.size());
  std::sort(points.begin(), points.end());
  RequestParser p;
  std::vector<Args> got;
  Args args;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    p.feed(std::string_view(input).substr(points[i], points[i + 1] - points[i]));
    R r;
    while ((r = p.next(&args)) == R::kCommand) got.push_back(args);
    RC_ASSERT(r == R::kNeedMore);
  }
  RC_ASSERT(got == commands);
  RC_ASSERT(!p.mid_command());
}

}  // namespace
// A reply past the writer's bound overflows (the connection then closes); one dropped
// after the fact (CLIENT REPLY OFF) takes its overflow with it, as Redis sends nothing then.
TEST(ReplyWriterTest, AnOverflowGoesWithTheReplyDroppedAfterIt) {
  ReplyWriter out(64);
  out.simple("OK");
  const size_t mark = out.size();
  out.bulk(std::string(100, 'x'));
  EXPECT_TRUE(out.overflowed());
  out.truncate(mark);
  EXPECT_FALSE(out.overflowed());
  EXPECT_EQ(out.buffer(), "+OK\r\n");
  // An overflow before the mark stays.
  for (int i = 0; i < 20; i++) out.simple("filler");
  EXPECT_TRUE(out.overflowed());
  const size_t later = out.size();
  out.truncate(later);
  EXPECT_TRUE(out.overflowed());
  ReplyWriter big(1 << 20);
  big.append(out);  // an overflowed writer's replies overflow the one they join
  EXPECT_TRUE(big.overflowed());
}

}  // namespace quire::resp
