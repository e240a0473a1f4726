#include "cluster/resp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`; false at the deadline.
bool wait_fd(int fd, short events, Clock::time_point until) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(until));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool parse_i64(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

RespClient::~RespClient() {
  close();
}
RespClient::RespClient(RespClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), in_(std::move(other.in_)), pos_(other.pos_) {}
RespClient& RespClient::operator=(RespClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    in_ = std::move(other.in_);
    pos_ = other.pos_;
  }
  return *this;
}

void RespClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
  pos_ = 0;
}

Result<RespClient> RespClient::connect(const std::string& address,
                                       std::chrono::milliseconds timeout) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return invalid_argument(fmt::format("bad address '{}'", address));
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  int64_t port = 0;
  if (!parse_i64(std::string_view(address).substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return invalid_argument(fmt::format("bad port in '{}'", address));
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return invalid_argument(fmt::format("bad IPv4 host in '{}'", address));
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return unavailable(fmt::format("socket: {}", std::strerror(errno)));
  RespClient client(fd);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) {
      return unavailable(fmt::format("connect {}: {}", address, std::strerror(errno)));
    }
    if (!wait_fd(fd, POLLOUT, Clock::now() + timeout)) {
      return deadline_exceeded(
          fmt::format("connect {}: no answer in {} ms", address, timeout.count()));
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return unavailable(fmt::format("connect {}: {}", address, std::strerror(err)));
  }
  return client;
}

Status RespClient::fill(Clock::time_point until) {
  if (in_.size() - pos_ > kRespReplyBytesMax) {
    close();
    return invalid_argument(fmt::format("reply over {} bytes", kRespReplyBytesMax));
  }
  if (pos_ > 0 && pos_ == in_.size()) {
    in_.clear();
    pos_ = 0;
  }
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      return Status::ok();
    }
    if (n == 0) {
      close();
      return unavailable("connection closed by the server");
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      const std::string why = std::strerror(errno);
      close();
      return unavailable(fmt::format("recv: {}", why));
    }
    if (!wait_fd(fd_, POLLIN, until)) return deadline_exceeded("no reply in time");
  }
}

Result<std::string> RespClient::read_line(Clock::time_point until) {
  for (;;) {
    const auto crlf = in_.find("\r\n", pos_);
    if (crlf != std::string::npos) {
      std::string line = in_.substr(pos_, crlf - pos_);
      pos_ = crlf + 2;
      return line;
    }
    if (Status st = fill(until); !st.is_ok()) return st;
  }
}

Result<RespReply> RespClient::read_reply(Clock::time_point until, size_t depth) {
  if (depth > kRespReplyDepthMax) return invalid_argument("reply nested too deep");
  auto line = read_line(until);
  if (!line.is_ok()) return line.status();
  if (line->empty()) return invalid_argument("empty reply line");
  RespReply r;
  const char type = (*line)[0];
  const std::string_view rest = std::string_view(*line).substr(1);
  int64_t n = 0;
  switch (type) {
    case '+':
      r.type = RespReply::Type::kSimple;
      r.text = rest;
      return r;
    case '-':
      r.type = RespReply::Type::kError;
      r.text = rest;
      return r;
    case ':':
      if (!parse_i64(rest, &r.integer)) return invalid_argument("malformed integer reply");
      r.type = RespReply::Type::kInteger;
      return r;
    case '$': {
      if (!parse_i64(rest, &n) || n < -1 || static_cast<uint64_t>(n) > kRespReplyBytesMax) {
        return invalid_argument("malformed bulk length");
      }
      if (n == -1) return r;  // null
      const size_t want = static_cast<size_t>(n) + 2;
      while (in_.size() - pos_ < want) {
        if (Status st = fill(until); !st.is_ok()) return st;
      }
      r.type = RespReply::Type::kBulk;
      r.text = in_.substr(pos_, static_cast<size_t>(n));
      pos_ += want;
      return r;
    }
    case '*': {
      if (!parse_i64(rest, &n) || n < -1 || n > 1'000'000) {
        return invalid_argument("malformed array length");
      }
      if (n == -1) return r;
      r.type = RespReply::Type::kArray;
      for (int64_t i = 0; i < n; ++i) {
        auto e = read_reply(until, depth + 1);
        if (!e.is_ok()) return e.status();
        r.elements.push_back(std::move(*e));
      }
      return r;
    }
    default:
      return invalid_argument(fmt::format("unknown reply type '{}'", type));
  }
}

Result<RespReply> RespClient::command(const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout) {
  if (fd_ < 0) return unavailable("not connected");
  const auto until = Clock::now() + timeout;
  std::string out = fmt::format("*{}\r\n", args.size());
  for (const auto& a : args) {
    out += fmt::format("${}\r\n", a.size());
    out += a;
    out += "\r\n";
  }
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd_, POLLOUT, until)) return deadline_exceeded("could not send in time");
      continue;
    }
    const std::string why = std::strerror(errno);
    close();
    return unavailable(fmt::format("send: {}", why));
  }
  auto reply = read_reply(until, 0);
  if (!reply.is_ok()) close();  // the stream's position is lost
  return reply;
}

}  // namespace quire::cluster
