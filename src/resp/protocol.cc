#include "resp/protocol.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace quire::resp {

namespace {

// The argument vector's first reservation, whatever count the client announced (Redis's
// argv_len is min(multibulklen, 1024) the same way).
constexpr size_t kArgsReserveMax = 1024;
// The consumed prefix of the input buffer is dropped once it is at least this long (and
// more than half the buffer), so dropping stays linear in the bytes fed.
constexpr size_t kCompactAtBytes = 64 * 1024;

// A line's end: the first `end` byte buffered, unless a NUL byte comes before it. Redis
// searches its query buffer with strchr, which stops at a NUL, so such a line has no end
// for Redis: the connection waits for more, and is refused once more than a line's limit
// is buffered. (Costs the line's length, not the buffer's: a pipeline's later commands are
// not looked at.)
const char* find_line_end(const char* start, size_t buffered, char end) {
  const auto* at = static_cast<const char*>(std::memchr(start, end, buffered));
  if (at == nullptr || std::memchr(start, '\0', static_cast<size_t>(at - start)) != nullptr) {
    return nullptr;
  }
  return at;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

bool parse_redis_int(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  if (s.size() == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) i = 1;
  if (i == s.size() || s[i] < '1' || s[i] > '9') return false;
  // Accumulate as a positive magnitude up to 2^63 (the magnitude of INT64_MIN).
  const uint64_t limit =
      negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const auto digit = static_cast<uint64_t>(s[i] - '0');
    if (v > (limit - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

namespace {

// The line as sdssplitargs walks it: past the end reads as NUL, as in a C string.
struct InlineLine {
  std::string_view s;
  char operator()(size_t i) const { return i < s.size() ? s[i] : '\0'; }
};

// The byte a backslash escape inside double quotes stands for ("\n" is a newline; an
// unknown escape is the byte itself).
char unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

enum class TokenStep : uint8_t { kMore, kEnd, kBad };

// One byte (or escape) at p inside double quotes; p is left on the last byte consumed.
TokenStep double_quoted(const InlineLine& at, size_t& p, std::string& current) {
  const char c = at(p);
  if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
    current.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
    p += 3;
  } else if (c == '\\' && at(p + 1) != '\0') {
    ++p;
    current.push_back(unescape(at(p)));
  } else if (c == '"') {
    // A closing quote must be followed by a blank or the end.
    return at(p + 1) != '\0' && !is_blank(at(p + 1)) ? TokenStep::kBad : TokenStep::kEnd;
  } else if (c == '\0') {
    return TokenStep::kBad;  // unterminated
  } else {
    current.push_back(c);
  }
  return TokenStep::kMore;
}

// The same inside single quotes, where only \' is an escape.
TokenStep single_quoted(const InlineLine& at, size_t& p, std::string& current) {
  const char c = at(p);
  if (c == '\\' && at(p + 1) == '\'') {
    ++p;
    current.push_back('\'');
  } else if (c == '\'') {
    return at(p + 1) != '\0' && !is_blank(at(p + 1)) ? TokenStep::kBad : TokenStep::kEnd;
  } else if (c == '\0') {
    return TokenStep::kBad;
  } else {
    current.push_back(c);
  }
  return TokenStep::kMore;
}

// Outside quotes: a blank or the end ends the token; a quote opens one.
TokenStep unquoted(char c, bool& in_double, bool& in_single, std::string& current) {
  switch (c) {
    case ' ':
    case '\n':
    case '\r':
    case '\t':
    case '\0':
      return TokenStep::kEnd;
    case '"':
      in_double = true;
      break;
    case '\'':
      in_single = true;
      break;
    default:
      current.push_back(c);
      break;
  }
  return TokenStep::kMore;
}

}  // namespace

std::optional<uint64_t> parse_uint64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

bool split_inline_args(std::string_view line, std::vector<std::string>* args) {
  const InlineLine at{line};
  size_t p = 0;
  // Each round takes one token, or returns at the end of the line.
  while (true) {
    while (p < line.size() && is_blank(line[p])) ++p;
    if (p >= line.size()) return true;
    std::string current;
    bool in_double = false;
    bool in_single = false;
    // Each round consumes at least one byte, or ends the token.
    TokenStep step = TokenStep::kMore;
    while (step == TokenStep::kMore) {
      if (in_double) {
        step = double_quoted(at, p, current);
      } else if (in_single) {
        step = single_quoted(at, p, current);
      } else {
        step = unquoted(at(p), in_double, in_single, current);
      }
      if (step == TokenStep::kBad) return false;
      if (p < line.size()) ++p;
    }
    args->push_back(std::move(current));
  }
}

std::string encode_multibulk(const std::vector<std::string>& args) {
  std::string out = fmt::format("*{}\r\n", args.size());
  for (const std::string& a : args) {
    fmt::format_to(std::back_inserter(out), "${}\r\n", a.size());
    out.append(a);
    out.append("\r\n");
  }
  return out;
}

void RequestParser::feed(std::string_view data) {
  input_.append(data);
}

RequestParser::Result RequestParser::next(std::vector<std::string>* args) {
  if (failed_ != Result::kNeedMore) return failed_;
  args->clear();
  // Each round parses one command, or skips one that is none ("*0", an empty line).
  while (true) {
    if (multibulk_left_ == 0 && pos_ == input_.size()) {
      compact();
      return Result::kNeedMore;
    }
    const bool multibulk = multibulk_left_ > 0 || input_[pos_] == '*';
    const Result r = multibulk ? parse_multibulk(args) : parse_inline(args);
    if (r == Result::kNeedMore) {
      compact();
      return check_size();
    }
    if (r != Result::kCommand) return r;
    if (!args->empty()) return r;
  }
}

RequestParser::Result RequestParser::parse_inline(std::vector<std::string>* args) {
  const char* start = input_.data() + pos_;
  const size_t buffered = input_.size() - pos_;
  const char* newline = find_line_end(start, buffered, '\n');
  if (newline == nullptr) {
    if (buffered > limits_.line_bytes_max) {
      return fail("ERR Protocol error: too big inline request");
    }
    return Result::kNeedMore;
  }
  std::string_view line(start, static_cast<size_t>(newline - start));
  pos_ += line.size() + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!split_inline_args(line, args)) {
    args->clear();
    return fail("ERR Protocol error: unbalanced quotes in request");
  }
  return Result::kCommand;  // no arguments (an empty line) is no command: next() skips it
}

bool RequestParser::find_line(std::string_view* line, bool* too_long) const {
  const char* start = input_.data() + pos_;
  const size_t buffered = input_.size() - pos_;
  const char* cr = find_line_end(start, buffered, '\r');
  *too_long = cr == nullptr && buffered > limits_.line_bytes_max;
  // The byte after "\r" must be buffered too (it is skipped, whatever it is).
  if (cr == nullptr || cr == start + buffered - 1) return false;
  *line = std::string_view(start, static_cast<size_t>(cr - start));
  return true;
}

RequestParser::Result RequestParser::parse_multibulk(std::vector<std::string>* args) {
  std::string_view line;
  bool too_long = false;
  if (multibulk_left_ == 0) {
    if (!find_line(&line, &too_long)) {
      if (too_long) return fail("ERR Protocol error: too big mbulk count string");
      return Result::kNeedMore;
    }
    int64_t count = 0;
    if (!parse_redis_int(line.substr(1), &count) ||
        count > static_cast<int64_t>(limits_.multibulk_count_max)) {
      // (Elements cost memory only as their "$" lines arrive, within command_bytes_max.)
      return fail("ERR Protocol error: invalid multibulk length");
    }
    if (!authenticated_ && count > static_cast<int64_t>(limits_.unauthenticated_count_max)) {
      return fail("ERR Protocol error: unauthenticated multibulk length");
    }
    pos_ += line.size() + 2;
    if (count <= 0) return Result::kCommand;  // no arguments: no command
    multibulk_left_ = static_cast<size_t>(count);
    args_.clear();
    args_.reserve(std::min(multibulk_left_, kArgsReserveMax));
    args_bytes_ = 0;
    bulk_length_ = -1;
  }
  // Each round completes one element, or returns for more bytes.
  while (multibulk_left_ > 0) {
    if (bulk_length_ < 0) {
      if (!find_line(&line, &too_long)) {
        if (too_long) return fail("ERR Protocol error: too big bulk count string");
        return Result::kNeedMore;
      }
      if (line.empty() || line[0] != '$') {
        const char got = line.empty() ? '\r' : line[0];
        return fail(fmt::format("ERR Protocol error: expected '$', got '{}'", got));
      }
      int64_t length = 0;
      if (!parse_redis_int(line.substr(1), &length) || length < 0 ||
          length > static_cast<int64_t>(limits_.bulk_bytes_max)) {
        return fail("ERR Protocol error: invalid bulk length");
      }
      if (!authenticated_ &&
          length > static_cast<int64_t>(limits_.unauthenticated_bulk_bytes_max)) {
        return fail("ERR Protocol error: unauthenticated bulk length");
      }
      pos_ += line.size() + 2;
      bulk_length_ = length;
      args_.emplace_back();
      args_bytes_ += kArgOverheadBytes;
    }
    if (!read_bulk()) return Result::kNeedMore;
    multibulk_left_--;
    bulk_length_ = -1;
  }
  *args = std::move(args_);
  args_.clear();
  args_bytes_ = 0;
  return Result::kCommand;
}

bool RequestParser::read_bulk() {
  std::string& arg = args_.back();
  const auto length = static_cast<size_t>(bulk_length_);
  const size_t buffered = input_.size() - pos_;
  if (length < kBigBulkBytes) {
    // Small: wait until the data and its two trailing bytes are all buffered.
    if (buffered < length + 2) return false;
    arg.assign(input_.data() + pos_, length);
    args_bytes_ += length;
    pos_ += length + 2;
    return true;
  }
  // Big: take what arrived, growing by doubling but never past the announced length.
  const size_t n = std::min(buffered, length - arg.size());
  if (n > 0) {
    if (arg.capacity() < arg.size() + n) {
      arg.reserve(std::min(length, std::max(2 * arg.capacity(), arg.size() + n)));
    }
    arg.append(input_.data() + pos_, n);
    pos_ += n;
    args_bytes_ += n;
  }
  if (arg.size() < length || input_.size() - pos_ < 2) return false;
  pos_ += 2;
  return true;
}

RequestParser::Result RequestParser::check_size() {
  if (buffered_bytes() <= limits_.command_bytes_max) return Result::kNeedMore;
  failed_ = Result::kTooLarge;
  error_ = fmt::format("a command held {} bytes, above the limit of {}", buffered_bytes(),
                       limits_.command_bytes_max);
  return failed_;
}

RequestParser::Result RequestParser::fail(std::string message) {
  failed_ = Result::kProtocolError;
  error_ = std::move(message);
  return failed_;
}

void RequestParser::compact() {
  if (pos_ == input_.size()) {
    input_.clear();
    pos_ = 0;
  } else if (pos_ >= kCompactAtBytes && pos_ > input_.size() / 2) {
    input_.erase(0, pos_);
    pos_ = 0;
  }
}

}  // namespace quire::resp
