#include "cluster/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include <fmt/format.h>

#include "runtime/real/tcp_net.h"

namespace quire::cluster {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollMax = std::chrono::milliseconds(100);
constexpr size_t kReadChunk = 64 * 1024;

Result<sockaddr_in> loopback_sockaddr(const std::string& address) {
  auto parsed = parse_tcp_address(address);
  if (!parsed.is_ok()) return parsed.status();
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(parsed->port);
  const std::string host = parsed->host == "localhost" ? "127.0.0.1" : parsed->host;
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return invalid_argument(fmt::format("{}: the fault proxy takes IPv4 addresses", address));
  }
  return sa;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

// Closes with RST rather than FIN.
void reset_close(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

}  // namespace

std::string_view proxy_mode_name(ProxyMode mode) {
  switch (mode) {
    case ProxyMode::kPass:
      return "pass";
    case ProxyMode::kDelay:
      return "delay";
    case ProxyMode::kReset:
      return "reset";
    case ProxyMode::kBlackhole:
      return "blackhole";
  }
  return "?";
}

// One relayed connection: the client's socket, the target's, and what waits in each
// direction (each chunk with the time it may be relayed).
struct FaultProxy::Relay {
  struct Chunk {
    std::string bytes;
    size_t offset = 0;
    Clock::time_point ready;
  };
  struct Direction {
    std::deque<Chunk> queue;
    size_t queued = 0;
    bool eof = false;   // the source closed its side
    bool shut = false;  // and the destination was told (shutdown SHUT_WR)
  };
  int client = -1;
  int server = -1;
  bool connecting = true;
  Clock::time_point connect_deadline;
  Direction up;    // client -> server
  Direction down;  // server -> client
  bool dead = false;

  void reset() {
    reset_close(client);
    reset_close(server);
    client = server = -1;
    dead = true;
  }
  // Reads what `from` sent into `d`; false when the relay must end.
  static bool pull(int from, Direction& d, Clock::duration delay) {
    char buf[kReadChunk];
    ssize_t n = ::read(from, buf, sizeof(buf));
    if (n > 0) {
      d.queue.push_back(Chunk{std::string(buf, static_cast<size_t>(n)), 0, Clock::now() + delay});
      d.queued += static_cast<size_t>(n);
      return true;
    }
    if (n == 0) {
      d.eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  // Writes the chunks of `d` that are ready to `to`; false when the relay must end.
  static bool push(int to, Direction& d) {
    const auto now = Clock::now();
    while (!d.queue.empty() && d.queue.front().ready <= now) {
      Chunk& c = d.queue.front();
      ssize_t n = ::send(to, c.bytes.data() + c.offset, c.bytes.size() - c.offset, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c.offset += static_cast<size_t>(n);
      d.queued -= static_cast<size_t>(n);
      if (c.offset < c.bytes.size()) return true;
      d.queue.pop_front();
    }
    if (d.eof && d.queue.empty() && !d.shut) {
      ::shutdown(to, SHUT_WR);
      d.shut = true;
    }
    return true;
  }
  static bool has_ready(const Direction& d, Clock::time_point now) {
    return !d.queue.empty() && d.queue.front().ready <= now;
  }
};

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(std::string listen, std::string target) {
  auto listen_sa = loopback_sockaddr(listen);
  if (!listen_sa.is_ok()) return listen_sa.status();
  auto target_sa = loopback_sockaddr(target);
  if (!target_sa.is_ok()) return target_sa.status();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailable(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*listen_sa), sizeof(sockaddr_in)) != 0 ||
      ::listen(fd, 128) != 0) {
    Status st = unavailable(fmt::format("cannot listen on {}: {}", listen, std::strerror(errno)));
    ::close(fd);
    return st;
  }
  set_nonblocking(fd);
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    return unavailable(fmt::format("pipe: {}", std::strerror(errno)));
  }
  std::string address = fmt::format("127.0.0.1:{}", ntohs(bound.sin_port));
  return std::unique_ptr<FaultProxy>(
      new FaultProxy(fd, pipe_fds[0], pipe_fds[1], std::move(address), std::move(target)));
}

FaultProxy::FaultProxy(int listen_fd, int wake_read, int wake_write, std::string address,
                       std::string target)
    : listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      address_(std::move(address)),
      target_(std::move(target)) {
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_read_);
  ::close(wake_write_);
}

void FaultProxy::set_mode(ProxyMode mode, std::chrono::milliseconds delay) {
  delay_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
  mode_ = mode;
  wake();
}

void FaultProxy::wake() {
  const char b = 1;
  (void)!::write(wake_write_, &b, 1);
}

void FaultProxy::run() {
  const sockaddr_in target = *loopback_sockaddr(target_);  // checked by start()
  std::vector<std::unique_ptr<Relay>> relays;
  std::vector<pollfd> fds;
  while (!stop_) {
    const ProxyMode mode = mode_.load();
    if (mode == ProxyMode::kReset) {
      for (auto& r : relays) r->reset();
      reset_ += relays.size();
      relays.clear();
    }
    const int timeout_ms = poll_set(relays, mode, fds);
    ::poll(fds.data(), fds.size(), timeout_ms);
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (::read(wake_read_, buf, sizeof(buf)) > 0) {
      }
    }
    if (stop_) break;
    if (mode_.load() != mode || mode == ProxyMode::kBlackhole) continue;
    const auto delay = mode == ProxyMode::kDelay ? std::chrono::nanoseconds(delay_ns_.load())
                                                 : std::chrono::nanoseconds(0);
    // The relays' pollfds follow the wake pipe's and the listener's, two per relay.
    for (size_t i = 0; i < relays.size(); ++i) {
      service(*relays[i], fds[2 + 2 * i].revents, fds[3 + 2 * i].revents, delay);
    }
    relays.erase(std::remove_if(relays.begin(), relays.end(), [](auto& r) { return r->dead; }),
                 relays.end());
    if (fds[1].revents & POLLIN) accept_new(relays, target);
  }
  for (auto& r : relays) {
    if (!r->dead) r->reset();
  }
}

int FaultProxy::poll_set(const std::vector<std::unique_ptr<Relay>>& relays, ProxyMode mode,
                         std::vector<pollfd>& fds) const {
  // Black-holed: nothing is polled but the wake pipe (a peer's hang-up must not spin us).
  const bool silent = mode == ProxyMode::kBlackhole;
  const auto now = Clock::now();
  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(kPollMax);
  fds.clear();
  fds.push_back({wake_read_, POLLIN, 0});
  fds.push_back({silent ? -1 : listen_fd_, POLLIN, 0});
  for (const auto& r : relays) {
    short ce = 0;
    short se = 0;
    if (r->connecting) {
      se = POLLOUT;
    } else {
      if (!r->up.eof && r->up.queued < kBufferBytesMax) ce |= POLLIN;
      if (Relay::has_ready(r->down, now)) ce |= POLLOUT;
      if (!r->down.eof && r->down.queued < kBufferBytesMax) se |= POLLIN;
      if (Relay::has_ready(r->up, now)) se |= POLLOUT;
    }
    for (const Relay::Direction* d : {&r->up, &r->down}) {
      if (!d->queue.empty() && d->queue.front().ready > now) {
        timeout = std::min(
            timeout, std::chrono::ceil<std::chrono::milliseconds>(d->queue.front().ready - now));
      }
    }
    fds.push_back({silent ? -1 : r->client, ce, 0});
    fds.push_back({silent ? -1 : r->server, se, 0});
  }
  return static_cast<int>(std::max<int64_t>(timeout.count(), 0));
}

void FaultProxy::service(Relay& r, short client_events, short server_events,
                         std::chrono::nanoseconds delay) {
  if (r.connecting) {
    if (client_events & (POLLHUP | POLLERR)) {  // the client gave up first
      r.reset();
      return;
    }
    if (server_events & (POLLOUT | POLLERR | POLLHUP)) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(r.server, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        r.connecting = false;
        return;
      }
    } else if (Clock::now() < r.connect_deadline) {
      return;
    }
    r.reset();  // the target refused or did not answer: so does the proxy
    reset_++;
    return;
  }
  constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
  bool ok = true;
  if (client_events & kReadable) ok = Relay::pull(r.client, r.up, delay);
  if (ok && (server_events & kReadable)) ok = Relay::pull(r.server, r.down, delay);
  if (ok) ok = Relay::push(r.server, r.up) && Relay::push(r.client, r.down);
  if (!ok) {
    r.reset();
    reset_++;
  } else if (r.up.shut && r.down.shut) {
    ::close(r.client);
    ::close(r.server);
    r.dead = true;
  }
}

void FaultProxy::accept_new(std::vector<std::unique_ptr<Relay>>& relays,
                            const sockaddr_in& target) {
  while (true) {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    accepted_++;
    // The mode as of this connection (it may have changed since the turn began).
    const bool refuse = mode_.load() == ProxyMode::kReset || relays.size() >= kConnectionsMax;
    int s = -1;
    if (!refuse) {
      s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    int rc = -1;
    if (s >= 0) {
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      rc = ::connect(s, reinterpret_cast<const sockaddr*>(&target), sizeof(target));
    }
    if (s < 0 || (rc != 0 && errno != EINPROGRESS)) {
      reset_close(c);
      reset_close(s);
      reset_++;
      continue;
    }
    auto r = std::make_unique<Relay>();
    r->client = c;
    r->server = s;
    r->connecting = rc != 0;
    r->connect_deadline = Clock::now() + kConnectTimeout;
    relays.push_back(std::move(r));
  }
}

}  // namespace quire::cluster
