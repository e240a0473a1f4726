// The request side of RESP2 (https://redis.io/docs/reference/protocol-spec/): an
// incremental, binary-safe parser of the commands a client sends, with Redis 7.0's rules
// and error texts (networking.c: processMultibulkBuffer, processInlineBuffer, sdssplitargs).
//
// A command is either a multibulk ("*N\r\n" then N bulks "$len\r\n<len bytes>\r\n") or, when
// its first byte is not '*', an inline line split on blanks with Redis's quoting ("..." with
// \n \r \t \b \a \\ \" \xHH escapes, '...' with \' only). "*0", "*-1" and empty inline lines
// are no command. As in Redis, a line ends at "\r" and the byte after it is skipped unseen,
// an inline line at "\n" (a "\r" before it is dropped), and the two bytes after a bulk's
// data are skipped unchecked. Redis finds a line's end with strchr, which stops at a NUL
// byte: a NUL before the end leaves the line unended (the parser waits for more, and fails
// "too big" past line_bytes_max), as Redis does.
//
// Every error is the reply Redis sends ("ERR Protocol error: ..."), after which the server
// closes the connection; the parser stays failed. Limits (RequestLimits) are Redis 7.0's.
//
// Memory: the parser never allocates from a length the client announces. A bulk's bytes
// are kept as they arrive (a bulk of kBigBulkBytes or more is moved out of the input buffer
// into its argument, grown as it fills); the argument vector grows by the elements parsed.
// What one command holds (its arguments plus the bytes buffered) is bounded by
// command_bytes_max: past it the parser reports kTooLarge (Redis's client-query-buffer-limit,
// which closes the connection without a reply). Feed at most a read's worth at a time and
// drain next() to kNeedMore in between: then the input buffer holds at most one line
// (64 KiB) or one small bulk plus what was fed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quire::resp {

struct RequestLimits {
  // Redis's proto-max-bulk-len (512 MB).
  size_t bulk_bytes_max = size_t{512} << 20;
  // Elements one multibulk may announce (Redis 7.0: INT_MAX). Only those whose "$" line
  // arrived cost memory, each counted against command_bytes_max.
  size_t multibulk_count_max = INT32_MAX;
  // An inline line, or a "*N" / "$len" line, without its end (Redis's PROTO_INLINE_MAX_SIZE).
  size_t line_bytes_max = size_t{64} << 10;
  // Everything one command holds while it is assembled: its arguments' bytes (each counted
  // with kArgOverheadBytes) and the unparsed input (Redis: client-query-buffer-limit, 1 GB).
  // Room for one maximal bulk and change.
  size_t command_bytes_max = (size_t{512} << 20) + (size_t{64} << 20);
  // Before AUTH on a server with a password, Redis refuses early: a multibulk of more than
  // 10 elements, a bulk of more than 16384 bytes ("unauthenticated ... length").
  size_t unauthenticated_count_max = 10;
  size_t unauthenticated_bulk_bytes_max = 16384;
};

class RequestParser {
 public:
  // A bulk at least this long is moved out of the input buffer as its bytes arrive
  // (Redis's PROTO_MBULK_BIG_ARG).
  static constexpr size_t kBigBulkBytes = 32 * 1024;
  // What an argument costs beyond its bytes, for command_bytes_max.
  static constexpr size_t kArgOverheadBytes = sizeof(std::string);

  enum class Result : uint8_t {
    kCommand,        // *args holds the next command (at least one argument)
    kNeedMore,       // no complete command buffered: feed more
    kProtocolError,  // error() is the reply; the connection must close after sending it
    kTooLarge,       // one command outgrew command_bytes_max: close without a reply
  };

  explicit RequestParser(RequestLimits limits = {}) : limits_(limits) {}

  // Appends received bytes.
  void feed(std::string_view data);
  // Parses the next command out of what was fed. After kProtocolError or kTooLarge it keeps
  // returning that result.
  Result next(std::vector<std::string>* args);

  // The error reply without its '-' and CRLF, e.g. "ERR Protocol error: invalid bulk length".
  const std::string& error() const { return error_; }
  // Applies the unauthenticated limits (or lifts them) from the next line parsed on.
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }
  // Bytes fed and not yet parsed, plus a command's arguments assembled so far (each with
  // kArgOverheadBytes, and the argument vector's spare capacity).
  size_t buffered_bytes() const {
    return (input_.size() - pos_) + args_bytes_ +
           (args_.capacity() - args_.size()) * kArgOverheadBytes;
  }
  // True while part of a command is buffered (a partial line or an incomplete multibulk).
  bool mid_command() const { return pos_ < input_.size() || multibulk_left_ > 0; }

 private:
  Result parse_inline(std::vector<std::string>* args);
  Result parse_multibulk(std::vector<std::string>* args);
  // The line starting at pos_ up to its "\r" (exclusive), if the "\r" and one byte after it
  // are buffered. Sets *too_long when none is and more than line_bytes_max are buffered.
  bool find_line(std::string_view* line, bool* too_long) const;
  // Reads bulk bytes into the current argument; true once it is complete.
  bool read_bulk();
  Result fail(std::string message);
  Result check_size();
  void compact();

  RequestLimits limits_;
  bool authenticated_ = true;
  std::string input_;  // [pos_, end) not yet parsed
  size_t pos_ = 0;
  // The multibulk being assembled.
  std::vector<std::string> args_;
  size_t args_bytes_ = 0;
  size_t multibulk_left_ = 0;          // elements still to come (0: between commands)
  int64_t bulk_length_ = -1;           // the current element's length, -1 before its "$" line
  Result failed_ = Result::kNeedMore;  // kProtocolError or kTooLarge once failed
  std::string error_;
};

// Parses a decimal int64 the way Redis's string2ll does: an optional '-', digits, no '+',
// no leading zeros (but "0"), no blanks, no overflow.
bool parse_redis_int(std::string_view s, int64_t* out);

// Splits an inline line with Redis's sdssplitargs rules; false on unbalanced quotes (or a
// closing quote followed by something other than a blank).
bool split_inline_args(std::string_view line, std::vector<std::string>* args);

// An unsigned decimal (SCAN cursors, QUIRE.REPORT's positions): digits only, at most
// 2^64-1; nullopt otherwise.
std::optional<uint64_t> parse_uint64(std::string_view s);

// Encodes a command as a multibulk (the tests' and tools' client side).
std::string encode_multibulk(const std::vector<std::string>& args);

}  // namespace quire::resp
