// A small blocking Redis-protocol client for Quire's tools (`quire cluster`, the real chaos
// harness): one TCP connection, one command at a time, every wait bounded. Not node code.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace quire::cluster {

// A RESP2 reply.
struct RespReply {
  enum class Type : uint8_t { kSimple, kError, kInteger, kBulk, kNull, kArray };
  Type type = Type::kNull;
  std::string text;  // simple, error, bulk
  int64_t integer = 0;
  std::vector<RespReply> elements;  // array

  bool is_error() const { return type == Type::kError; }
};

inline constexpr size_t kRespReplyBytesMax = 64u << 20;
inline constexpr size_t kRespReplyDepthMax = 8;

class RespClient {
 public:
  RespClient() = default;
  ~RespClient();
  RespClient(RespClient&& other) noexcept;
  RespClient& operator=(RespClient&& other) noexcept;

  // Connects to "host:port" (IPv4 or localhost). Unavailable when refused,
  // DeadlineExceeded after `timeout`.
  static Result<RespClient> connect(const std::string& address, std::chrono::milliseconds timeout);

  // Sends one command and reads its reply; `timeout` bounds the whole exchange. An error
  // reply is a reply (is_error()), not a failed Status. Unavailable when the connection
  // broke (the connection is closed then), InvalidArgument for a malformed or oversized reply.
  Result<RespReply> command(const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout);

  bool is_open() const { return fd_ >= 0; }
  void close();

 private:
  explicit RespClient(int fd) : fd_(fd) {}
  Status fill(std::chrono::steady_clock::time_point until);
  Result<std::string> read_line(std::chrono::steady_clock::time_point until);
  Result<RespReply> read_reply(std::chrono::steady_clock::time_point until, size_t depth);

  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
};

}  // namespace quire::cluster
