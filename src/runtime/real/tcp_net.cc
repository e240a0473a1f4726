#include "runtime/real/tcp_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <asio.hpp>
#include <asio/ssl.hpp>

#include "runtime/log_limiter.h"
#include "runtime/real/certs.h"
#include "runtime/sync.h"

namespace quire {

namespace {

using asio::ip::tcp;

// Log ids of the network component.
constexpr uint32_t kLogFrameTooLarge = 10101;
constexpr uint32_t kLogConnectionBroken = 10102;
constexpr uint32_t kLogAcceptFailed = 10103;
constexpr uint32_t kLogNoDelayFailed = 10104;
constexpr uint32_t kLogTlsHandshakeFailed = 10105;
constexpr uint32_t kLogConnectionTimedOut = 10106;
constexpr uint32_t kLogKeepAliveFailed = 10107;
constexpr uint32_t kLogHandshakeEvicted = 10108;
// Permission bits for group and others, which a TLS private key file must not have.
constexpr uint32_t kKeyFileGroupOtherBits = 077;

constexpr size_t kFrameHeaderBytes = 4;
// Frames up to this size are assembled in the connection's read buffer; larger ones are
// read into a buffer of their own, grown (doubling) as their bytes arrive.
constexpr size_t kReadBufferBytes = 64 * 1024;
// Frames handed to one gathered write.
constexpr size_t kWriteBatchFramesMax = 64;

using TlsStream = asio::ssl::stream<tcp::socket>;

// A connection's byte stream: the TCP socket itself, or TLS over it. Reads and writes take
// the same Asio completion handlers either way.
class ByteStream {
 public:
  explicit ByteStream(tcp::socket socket) : plain_(std::move(socket)) {}
  explicit ByteStream(std::unique_ptr<TlsStream> tls) : tls_(std::move(tls)) {
    QUIRE_ASSERT(tls_ != nullptr);
  }

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  // Completes once `buffers` are full.
  template <typename Buffers, typename Handler>
  void async_read_all(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      asio::async_read(*tls_, buffers, std::forward<Handler>(handler));
    } else {
      asio::async_read(*plain_, buffers, std::forward<Handler>(handler));
    }
  }
  // Completes once `buffers` are written; `condition` (as for asio::async_write) is asked
  // after every partial write.
  template <typename Buffers, typename Condition, typename Handler>
  void async_write_all(const Buffers& buffers, Condition condition, Handler&& handler) {
    if (tls_) {
      asio::async_write(*tls_, buffers, std::move(condition), std::forward<Handler>(handler));
    } else {
      asio::async_write(*plain_, buffers, std::move(condition), std::forward<Handler>(handler));
    }
  }

 private:
  std::optional<tcp::socket> plain_;
  std::unique_ptr<TlsStream> tls_;
};

// "a.b.c.d:port" or "[v6]:port". inet_ntop directly, since Asio's to_string() may throw.
std::string format_endpoint(const tcp::endpoint& ep) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ep.address().is_v6()) {
    auto bytes = ep.address().to_v6().to_bytes();
    inet_ntop(AF_INET6, bytes.data(), host, sizeof(host));
    return fmt::format("[{}]:{}", host, ep.port());
  }
  auto bytes = ep.address().to_v4().to_bytes();
  inet_ntop(AF_INET, bytes.data(), host, sizeof(host));
  return fmt::format("{}:{}", host, ep.port());
}

Result<tcp::endpoint> parse_endpoint(std::string_view address) {
  Result<TcpAddress> parsed = parse_tcp_address(address);
  if (!parsed.is_ok()) return parsed.status();
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(parsed->host, ec);
  if (ec) return invalid_argument(fmt::format("address '{}': {}", address, ec.message()));
  return tcp::endpoint(ip, parsed->port);
}

void set_no_delay(tcp::socket& socket, Logger* log, const Address& peer) {
  asio::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (ec && log) {
    log->warn("net", kLogNoDelayFailed, "cannot set TCP_NODELAY",
              {{"peer", peer}, {"error", ec.message()}});
  }
}

// SO_KEEPALIVE with TcpNet's probe timing; an error names the option that failed.
asio::error_code set_keep_alive(tcp::socket& socket) {
  asio::error_code ec;
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  if (ec) return ec;
  const int fd = socket.native_handle();
  const int idle_s = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(TcpNet::kKeepAliveIdle).count());
  const int interval_s = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(TcpNet::kKeepAliveInterval).count());
  const int probes = TcpNet::kKeepAliveProbes;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) != 0) {
    return asio::error_code(errno, asio::error::get_system_category());
  }
  return {};
}

}  // namespace

// What TLS needs, shared by a TcpNet and its listeners (which outlive it while handlers are
// pending): the OpenSSL context holding the CA and this node's certificate, and the count
// of failed handshakes.
class TlsContext {
 public:
  TlsContext() : ssl(asio::ssl::context::tls) {}

  void count_failure() { failures_++; }
  uint64_t failures() const { return failures_; }

  asio::ssl::context ssl;

 private:
  uint64_t failures_ = 0;
};

namespace {

// A connection waiting for receive budget; NetShared wakes it when budget is released.
class BudgetWaiter {
 public:
  virtual ~BudgetWaiter() = default;
  virtual void budget_released() = 0;
};

}  // namespace

// What a TcpNet shares with its connections and listeners, which outlive it while their
// handlers are pending: the options, the process-wide receive and send budgets, and the
// log limits (one LogLimiter per log id).
struct NetShared {
  NetShared(RealLoop& loop_in, TcpNetOptions options_in)
      : loop(loop_in),
        options(options_in),
        watchdog_interval(std::clamp(
            std::min({options.send_stall_timeout, options.frame_timeout, options.idle_timeout}) / 4,
            Nanos(std::chrono::milliseconds(10)), Nanos(std::chrono::seconds(1)))) {}

  // The count of suppressed lines when a line with log id `id` may go out now.
  std::optional<uint64_t> admit(uint32_t id) {
    return limits.try_emplace(id, TcpNet::kErrorLogInterval).first->second.admit(loop.now());
  }

  // Receive budget: incomplete frames take bytes with take_partial, which move to the
  // received frames when complete (partial_done); complete frames assembled in a read
  // buffer take theirs with take_received.
  bool take_partial(size_t n) {
    const size_t partial_max = options.receive_budget_bytes - TcpNet::kCompleteFrameReserveBytes;
    if (receive_used + n > options.receive_budget_bytes || receive_partial + n > partial_max) {
      return false;
    }
    receive_used += n;
    receive_partial += n;
    return true;
  }
  void partial_done(size_t n) { receive_partial -= n; }
  bool take_received(size_t n) {
    if (receive_used + n > options.receive_budget_bytes) return false;
    receive_used += n;
    return true;
  }
  void release_partial(size_t n) {
    receive_partial -= n;
    release_received(n);
  }
  void release_received(size_t n) {
    if (n == 0) return;
    receive_used -= n;
    // Every waiter retries; one that still does not fit registers again.
    std::vector<std::weak_ptr<BudgetWaiter>> waiting;
    waiting.swap(budget_waiters);
    for (const std::weak_ptr<BudgetWaiter>& w : waiting) {
      if (std::shared_ptr<BudgetWaiter> waiter = w.lock()) waiter->budget_released();
    }
  }

  // Send budget; a frame into an empty budget always fits.
  bool take_send(size_t n) {
    if (send_used > 0 && send_used + n > options.send_budget_bytes) return false;
    send_used += n;
    return true;
  }
  void release_send(size_t n) { send_used -= n; }

  RealLoop& loop;
  const TcpNetOptions options;
  // How often each connection checks its timeouts.
  const Nanos watchdog_interval;
  size_t receive_used = 0;     // incomplete and received frames
  size_t receive_partial = 0;  // of which incomplete
  size_t send_used = 0;
  std::vector<std::weak_ptr<BudgetWaiter>> budget_waiters;
  std::map<uint32_t, LogLimiter> limits;
};

namespace {

// Everything a connection's Asio handlers touch. Handlers hold it by shared_ptr, so it
// outlives the TcpConnection object while operations are pending.
class ConnectionState : public BudgetWaiter, public std::enable_shared_from_this<ConnectionState> {
 public:
  ConnectionState(std::shared_ptr<NetShared> shared, ByteStream stream, Address peer, Logger* log,
                  bool inbound)
      : shared_(std::move(shared)),
        options_(shared_->options),
        stream_(std::move(stream)),
        peer_(std::move(peer)),
        log_(log),
        inbound_(inbound),
        readable_(shared_->loop.scheduler()),
        read_buffer_(kReadBufferBytes),
        linger_(shared_->loop.io()),
        watchdog_(shared_->loop.io()) {}

  // Returns what the connection still holds of the budgets.
  ~ConnectionState() override {
    drop_large();
    shared_->release_send(send_queue_bytes_);
    shared_->release_received(inbox_bytes_);
  }

  const Address& peer() const { return peer_; }
  bool is_open() const { return !closed_ && !broken_; }

  // Starts the read loop and the timeouts; called once the state is owned by a shared_ptr.
  void start() {
    last_activity_ = shared_->loop.now();
    arm_watchdog();
    pump();
  }

  void budget_released() override {
    waiting_budget_ = false;
    pump();
  }

  Status send(ByteView message) {
    if (closed_) return unavailable(fmt::format("connection to {} is closed", peer_));
    if (broken_) return broken_status();
    if (message.size() > Connection::kMaxMessageBytes) {
      return invalid_argument(fmt::format("message of {} bytes to {} exceeds the maximum of {}",
                                          message.size(), peer_, Connection::kMaxMessageBytes));
    }
    size_t frame_bytes = kFrameHeaderBytes + message.size();
    if (!send_queue_.empty() && send_queue_bytes_ + frame_bytes > options_.send_queue_bytes_max) {
      send_refused_ = true;
      return busy(fmt::format("send queue to {} holds {} bytes; a {} byte frame would exceed {}",
                              peer_, send_queue_bytes_, frame_bytes,
                              options_.send_queue_bytes_max));
    }
    if (!shared_->take_send(frame_bytes)) {
      return busy(fmt::format("send queues hold {} bytes; a {} byte frame to {} would exceed {}",
                              shared_->send_used, frame_bytes, peer_, options_.send_budget_bytes));
    }
    Bytes frame(frame_bytes);
    encode_fixed32(frame.data(), static_cast<uint32_t>(message.size()));
    if (!message.empty()) {
      std::memcpy(frame.data() + kFrameHeaderBytes, message.data(), message.size());
    }
    send_queue_.push_back(std::move(frame));
    send_queue_bytes_ += frame_bytes;
    if (!writing_) write_batch();
    return Status();
  }

  // The next message, else Unavailable once broken or closed; waits until `deadline`.
  static Task<Result<Bytes>> receive(std::shared_ptr<ConnectionState> self, Deadline deadline) {
    // Each round either returns or waits to be notified; a notification means a message
    // arrived or the connection broke, so the rounds are bounded by what the peer sends.
    while (true) {
      if (!self->inbox_.empty()) {
        Bytes message = std::move(self->inbox_.front());
        self->inbox_.pop_front();
        self->inbox_bytes_ -= message.size();
        self->shared_->release_received(message.size());  // may resume other connections
        self->pump();                                     // resumes reading if the queue was full
        co_return message;
      }
      if (self->closed_) {
        co_return unavailable(fmt::format("connection to {} is closed", self->peer_));
      }
      if (self->broken_) co_return self->broken_status();
      Status waited = co_await self->readable_.wait(deadline);
      if (!waited.is_ok()) {
        co_return Status(waited.code(),
                         fmt::format("receive from {}: {}", self->peer_, waited.message()));
      }
    }
  }

  // Stops reading, fails waiting receivers (messages already received stay readable, as in
  // the simulated world), and flushes what is queued for sending (for at most
  // kCloseLingerMax) before closing the socket.
  void close() {
    if (closed_) return;
    closed_ = true;
    log_ = nullptr;  // the logger's owner may go away while the flush lingers
    watchdog_.cancel();
    if (!reading_) drop_large();
    readable_.notify_all();
    if (broken_) return;  // the socket is already closed
    if (!writing_) {
      close_socket();
      return;
    }
    linger_.expires_after(TcpNet::kCloseLingerMax);
    linger_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->close_socket();
    });
  }

 private:
  bool inbox_full() const {
    return inbox_.size() >= TcpNet::kReceiveQueueMessagesMax ||
           inbox_bytes_ >= TcpNet::kReceiveQueueBytesMax;
  }
  // An accepted connection whose peer does not read what it is sent is not read either:
  // not while its queue is full (it holds send_queue_bytes_max, or refused a frame since
  // the last write completed).
  bool sends_backlogged() const {
    return inbound_ && (send_refused_ || send_queue_bytes_ >= options_.send_queue_bytes_max);
  }

  Status broken_status() const {
    return unavailable(fmt::format("connection to {} is broken: {}", peer_, broken_reason_));
  }

  void deliver(Bytes message) {
    inbox_bytes_ += message.size();
    inbox_.push_back(std::move(message));
    frame_started_ = MonoTime::never();
    last_activity_ = shared_->loop.now();
    readable_.notify_one();
  }

  // Turns buffered bytes into messages, then reads more unless the connection is done, a
  // read is already pending, the receive queue is full, sends are backlogged, or the
  // receive budget is spent.
  void pump() {
    if (reading_ || closed_ || broken_ || waiting_budget_) return;
    // Each round consumes one buffered frame or part of a large one, or returns.
    while (!inbox_full() && !sends_backlogged()) {
      if (large_.has_value()) {
        if (!fill_large()) return;
        if (large_filled_ == large_length_) {
          complete_large();
          continue;
        }
        if (read_begin_ < read_end_) continue;  // buffered bytes left for the grown buffer
        read_large();
        return;
      }
      size_t buffered = read_end_ - read_begin_;
      if (buffered < kFrameHeaderBytes) {
        read_more();
        return;
      }
      uint32_t length = decode_fixed32(read_buffer_.data() + read_begin_);
      if (length > Connection::kMaxMessageBytes) {
        frame_too_large(length);
        return;
      }
      if (kFrameHeaderBytes + length > read_buffer_.size()) {
        // Too large for the read buffer: its body goes to a buffer of its own, grown as the
        // bytes arrive.
        read_begin_ += kFrameHeaderBytes;
        large_.emplace();
        large_length_ = length;
        large_filled_ = 0;
        continue;
      }
      if (buffered - kFrameHeaderBytes < length) {
        read_more();
        return;
      }
      if (!shared_->take_received(length)) {
        wait_for_budget();
        return;
      }
      const uint8_t* body = read_buffer_.data() + read_begin_ + kFrameHeaderBytes;
      read_begin_ += kFrameHeaderBytes + length;
      deliver(Bytes(body, body + length));
    }
  }

  void wait_for_budget() {
    waiting_budget_ = true;
    shared_->budget_waiters.push_back(weak_from_this());
  }

  // Makes room in the large frame's buffer when it is full (doubling it, up to the frame's
  // length, against the receive budget) and moves buffered bytes into it. False when the
  // budget is spent: the connection then waits for it.
  bool fill_large() {
    if (large_filled_ == large_->size()) {
      const size_t size =
          std::min<size_t>(large_length_, std::max(2 * large_->size(), kReadBufferBytes));
      if (!shared_->take_partial(size - large_->size())) {
        wait_for_budget();
        return false;
      }
      large_->resize(size);
    }
    size_t n = std::min(read_end_ - read_begin_, large_->size() - large_filled_);
    if (n > 0) {
      std::memcpy(large_->data() + large_filled_, read_buffer_.data() + read_begin_, n);
      read_begin_ += n;
      large_filled_ += n;
    }
    return true;
  }

  void complete_large() {
    QUIRE_ASSERT(large_->size() == large_length_);
    Bytes message = std::move(*large_);
    large_.reset();
    shared_->partial_done(message.size());  // its bytes stay charged while in the inbox
    deliver(std::move(message));
  }

  // Releases an incomplete large frame; never while a read into it is pending.
  void drop_large() {
    if (!large_.has_value()) return;
    shared_->release_partial(large_->size());
    large_.reset();
  }

  void note_frame_started() {
    if (read_end_ > read_begin_ && frame_started_.is_never()) {
      frame_started_ = shared_->loop.now();
    }
  }

  void read_more() {
    if (read_begin_ > 0) {
      std::memmove(read_buffer_.data(), read_buffer_.data() + read_begin_, read_end_ - read_begin_);
      read_end_ -= read_begin_;
      read_begin_ = 0;
    }
    QUIRE_ASSERT(read_end_ < read_buffer_.size());
    note_frame_started();
    reading_ = true;
    stream_.async_read_some(
        asio::buffer(read_buffer_.data() + read_end_, read_buffer_.size() - read_end_),
        [self = shared_from_this()](const asio::error_code& ec, size_t n) {
          self->reading_ = false;
          if (ec) {
            self->read_failed(ec);
            return;
          }
          self->read_end_ += n;
          self->pump();
        });
  }

  void read_large() {
    QUIRE_ASSERT(large_filled_ < large_->size() && read_begin_ == read_end_);
    if (frame_started_.is_never()) frame_started_ = shared_->loop.now();
    reading_ = true;
    stream_.async_read_some(
        asio::buffer(large_->data() + large_filled_, large_->size() - large_filled_),
        [self = shared_from_this()](const asio::error_code& ec, size_t n) {
          self->reading_ = false;
          if (ec || self->closed_ || self->broken_) {
            self->drop_large();
            if (ec) self->read_failed(ec);
            return;
          }
          self->large_filled_ += n;
          self->pump();
        });
  }

  void write_batch() {
    QUIRE_ASSERT(!writing_ && !send_queue_.empty());
    size_t count = std::min(send_queue_.size(), kWriteBatchFramesMax);
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(count);
    for (size_t i = 0; i < count; ++i) buffers.push_back(asio::buffer(send_queue_[i]));
    writing_ = true;
    last_write_progress_ = shared_->loop.now();
    // The frames stay in send_queue_ (deque elements do not move) until the write ends.
    // Every partial write counts as progress for send_stall_timeout.
    stream_.async_write_all(
        buffers,
        [self = shared_from_this()](const asio::error_code& ec, size_t) -> size_t {
          self->last_write_progress_ = self->shared_->loop.now();
          return asio::transfer_all()(ec, 0);
        },
        [self = shared_from_this(), count](const asio::error_code& ec, size_t) {
          self->write_done(ec, count);
        });
  }

  void write_done(const asio::error_code& ec, size_t count) {
    writing_ = false;
    if (ec) write_failed(ec);
    if (broken_) {
      drop_send_queue();
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      send_queue_bytes_ -= send_queue_.front().size();
      shared_->release_send(send_queue_.front().size());
      send_queue_.pop_front();
    }
    last_activity_ = shared_->loop.now();
    send_refused_ = false;
    if (!send_queue_.empty()) {
      write_batch();
    } else if (closed_) {
      close_socket();  // close() was waiting for this flush
    }
    pump();  // resumes reading if sends were backlogged
  }

  void drop_send_queue() {
    shared_->release_send(send_queue_bytes_);
    send_queue_.clear();
    send_queue_bytes_ = 0;
  }

  // Every watchdog_interval, until closed or broken.
  void arm_watchdog() {
    watchdog_.expires_after(shared_->watchdog_interval);
    watchdog_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->closed_ || self->broken_) return;
      self->check_timeouts();
      if (!self->broken_) self->arm_watchdog();
    });
  }

  // Closes the connection when the peer reads nothing, holds a frame incomplete, or (on an
  // accepted connection) stays silent, for longer than the options allow.
  void check_timeouts() {
    const MonoTime now = shared_->loop.now();
    if (writing_ && now - last_write_progress_ >= options_.send_stall_timeout) {
      timed_out(fmt::format("the peer read nothing for {} ms", to_ms(options_.send_stall_timeout)));
    } else if (!frame_started_.is_never() && inbox_full()) {
      frame_started_ = now;  // the application is behind, not the peer: the clock restarts
    } else if (!frame_started_.is_never() && now - frame_started_ >= options_.frame_timeout) {
      timed_out(fmt::format("a frame stayed incomplete for {} ms", to_ms(options_.frame_timeout)));
    } else if (inbound_ && !writing_ && frame_started_.is_never() && inbox_.empty() &&
               now - last_activity_ >= options_.idle_timeout) {
      timed_out(fmt::format("idle for {} ms", to_ms(options_.idle_timeout)));
    }
  }

  static int64_t to_ms(Nanos d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }

  void timed_out(const std::string& reason) {
    if (log_) {
      if (std::optional<uint64_t> suppressed = shared_->admit(kLogConnectionTimedOut)) {
        log_->warn("net", kLogConnectionTimedOut, "connection timed out; closed",
                   {{"peer", peer_}, {"reason", reason}, {"suppressed", *suppressed}});
      }
    }
    break_connection("timed out: " + reason);
  }

  void read_failed(const asio::error_code& ec) {
    if (closed_ || broken_) return;
    // Over TLS a peer that closes without a close_notify alert reads as a truncated stream;
    // frames are length-prefixed, so that is an ordinary close too.
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      break_connection("the peer closed the connection");
      return;
    }
    log_broken("connection broken while reading", ec);
    break_connection(ec.message());
  }

  void write_failed(const asio::error_code& ec) {
    if (broken_) return;
    log_broken("connection broken while writing", ec);
    break_connection(ec.message());
  }

  void log_broken(std::string_view what, const asio::error_code& ec) {
    if (log_ == nullptr) return;
    if (std::optional<uint64_t> suppressed = shared_->admit(kLogConnectionBroken)) {
      log_->warn("net", kLogConnectionBroken, what,
                 {{"peer", peer_}, {"error", ec.message()}, {"suppressed", *suppressed}});
    }
  }

  void frame_too_large(uint32_t length) {
    if (log_) {
      if (std::optional<uint64_t> suppressed = shared_->admit(kLogFrameTooLarge)) {
        log_->error("net", kLogFrameTooLarge, "peer sent a frame above the maximum; dropping it",
                    {{"peer", peer_},
                     {"frame_bytes", length},
                     {"max_bytes", Connection::kMaxMessageBytes},
                     {"suppressed", *suppressed}});
      }
    }
    break_connection(fmt::format("the peer sent a frame of {} bytes, above the maximum of {}",
                                 length, Connection::kMaxMessageBytes));
  }

  // Messages already received stay readable; sends fail from now on.
  void break_connection(std::string reason) {
    broken_ = true;
    broken_reason_ = std::move(reason);
    watchdog_.cancel();
    close_socket();
    // A pending write still points into the queue, a pending read into the large frame;
    // their handlers release them.
    if (!writing_) drop_send_queue();
    if (!reading_) drop_large();
    readable_.notify_all();
  }

  void close_socket() {
    asio::error_code ignored;
    linger_.cancel();
    tcp::socket& socket = stream_.socket();
    if (!socket.is_open()) return;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  std::shared_ptr<NetShared> shared_;
  const TcpNetOptions& options_;  // shared_'s
  ByteStream stream_;
  Address peer_;
  Logger* log_;
  const bool inbound_;   // accepted, not connected
  bool closed_ = false;  // close() was called
  bool broken_ = false;  // the peer closed, an I/O error, a bad frame or a timeout
  std::string broken_reason_;

  // Receiving: read_buffer_[read_begin_, read_end_) holds bytes not yet parsed.
  std::deque<Bytes> inbox_;
  size_t inbox_bytes_ = 0;  // charged to the receive budget
  WaitQueue readable_;
  bool reading_ = false;
  bool waiting_budget_ = false;  // in shared_->budget_waiters
  Bytes read_buffer_;
  size_t read_begin_ = 0;
  size_t read_end_ = 0;
  // A frame larger than read_buffer_, being filled: its first large_filled_ bytes are in;
  // its size is what it has taken of the receive budget.
  std::optional<Bytes> large_;
  size_t large_length_ = 0;
  size_t large_filled_ = 0;
  MonoTime frame_started_ = MonoTime::never();  // the first byte of an incomplete frame
  MonoTime last_activity_;                      // a frame received or sent

  // Sending: whole frames, the first `count` of them being written while writing_.
  std::deque<Bytes> send_queue_;
  size_t send_queue_bytes_ = 0;  // charged to the send budget
  bool send_refused_ = false;    // send() was Busy on the queue's bound since the last write
  bool writing_ = false;
  MonoTime last_write_progress_;
  asio::steady_timer linger_;
  asio::steady_timer watchdog_;
};

class TcpConnection : public Connection {
 public:
  explicit TcpConnection(std::shared_ptr<ConnectionState> state) : state_(std::move(state)) {}
  ~TcpConnection() override { state_->close(); }
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  Status send(ByteView message) override { return state_->send(message); }
  Task<Result<Bytes>> receive(Deadline deadline) override {
    return ConnectionState::receive(state_, deadline);
  }
  void close() override { state_->close(); }
  bool is_open() const override { return state_->is_open(); }
  const Address& peer() const override { return state_->peer(); }

 private:
  std::shared_ptr<ConnectionState> state_;
};

// The peer's address; a peer that already left has none ("?"), and its connection reports
// broken on first read.
Address peer_of(tcp::socket& socket) {
  asio::error_code ec;
  tcp::endpoint remote = socket.remote_endpoint(ec);
  return ec ? Address("?") : format_endpoint(remote);
}

// `inbound`: accepted by a listener (idle_timeout and sends_backlogged apply).
std::unique_ptr<Connection> make_connection(std::shared_ptr<NetShared> shared, ByteStream stream,
                                            Logger* log, bool inbound) {
  Address peer = peer_of(stream.socket());
  set_no_delay(stream.socket(), log, peer);
  asio::error_code keep_alive = set_keep_alive(stream.socket());
  if (keep_alive && log) {
    if (std::optional<uint64_t> suppressed = shared->admit(kLogKeepAliveFailed)) {
      log->warn("net", kLogKeepAliveFailed, "cannot set TCP keepalive",
                {{"peer", peer}, {"error", keep_alive.message()}, {"suppressed", *suppressed}});
    }
  }
  auto state =
      std::make_shared<ConnectionState>(shared, std::move(stream), std::move(peer), log, inbound);
  state->start();
  return std::make_unique<TcpConnection>(std::move(state));
}

// Counts a failed handshake and logs it, rate-limited.
void tls_handshake_failed(TlsContext& tls, NetShared& shared, Logger* log, std::string_view side,
                          const Address& peer, const std::string& error) {
  tls.count_failure();
  if (log == nullptr) return;
  if (std::optional<uint64_t> suppressed = shared.admit(kLogTlsHandshakeFailed)) {
    log->warn("net", kLogTlsHandshakeFailed, "TLS handshake failed; connection closed",
              {{"side", side}, {"peer", peer}, {"error", error}, {"suppressed", *suppressed}});
  }
}

// A TLS handshake an accepted socket is going through, bounded by kTlsHandshakeTimeout
// (and by eviction: see ListenerState::pump).
struct ServerHandshake {
  ServerHandshake(asio::io_context& io, tcp::socket socket, asio::ssl::context& ssl)
      : stream(std::make_unique<TlsStream>(std::move(socket), ssl)), timer(io) {}
  // Cancels the handshake (its handler then sees an error). A no-op once the stream went
  // to the backlog: an expiry already queued when the handshake succeeded finds it gone.
  void abort() {
    if (stream == nullptr) return;
    asio::error_code ignored;
    stream->next_layer().close(ignored);
  }
  std::unique_ptr<TlsStream> stream;
  asio::steady_timer timer;
  Address peer;
  MonoTime started;
  bool timed_out = false;
  bool evicted = false;  // closed to make room; its handler drops it, whatever the outcome
};

class ListenerState : public std::enable_shared_from_this<ListenerState> {
 public:
  ListenerState(std::shared_ptr<NetShared> shared, tcp::acceptor acceptor, Address address,
                Logger* log, std::shared_ptr<TlsContext> tls)
      : loop_(shared->loop),
        shared_(std::move(shared)),
        acceptor_(std::move(acceptor)),
        address_(std::move(address)),
        log_(log),
        tls_(std::move(tls)),
        acceptable_(loop_.scheduler()),
        retry_(loop_.io()) {}

  const Address& address() const { return address_; }

  void start() { pump(); }

  static Task<Result<std::unique_ptr<Connection>>> accept(std::shared_ptr<ListenerState> self,
                                                          Deadline deadline) {
    // Each round returns or waits for the next accepted socket (or close).
    while (true) {
      if (self->closed_) {
        co_return unavailable(fmt::format("listener on {} is closed", self->address_));
      }
      if (!self->backlog_.empty()) {
        ByteStream stream = std::move(self->backlog_.front());
        self->backlog_.pop_front();
        self->pump();
        co_return make_connection(self->shared_, std::move(stream), self->log_, true);
      }
      Status waited = co_await self->acceptable_.wait(deadline);
      if (!waited.is_ok()) {
        co_return Status(waited.code(),
                         fmt::format("accept on {}: {}", self->address_, waited.message()));
      }
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    log_ = nullptr;
    asio::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    backlog_.clear();
    for (auto& [id, handshake] : handshakes_) handshake->abort();
    handshakes_.clear();
    acceptable_.notify_all();
  }

 private:
  // Keeps one accept pending while the backlog has room. Sockets still in their TLS
  // handshake count against kAcceptQueueMax too, but they do not stop accepting: a socket
  // that arrives when backlog and handshakes fill the queue evicts the oldest handshake
  // (see the header comment). Only authenticated connections that accept() has not taken
  // yet stop it, since then the application, not a peer, is behind.
  void pump() {
    if (closed_ || accepting_ || backlog_.size() >= TcpNet::kAcceptQueueMax) return;
    accepting_ = true;
    acceptor_.async_accept(
        [self = shared_from_this()](const asio::error_code& ec, tcp::socket socket) {
          self->accepting_ = false;
          if (self->closed_) return;
          if (ec) {
            self->accept_failed(ec);
            return;
          }
          if (self->tls_) {
            if (self->backlog_.size() + self->handshakes_.size() >= TcpNet::kAcceptQueueMax) {
              self->evict_oldest_handshake();
            }
            self->start_handshake(std::move(socket));
          } else {
            self->backlog_.emplace_back(std::move(socket));
            self->acceptable_.notify_one();
          }
          self->pump();
        });
  }

  // Authenticates an accepted socket before accept() may return it: a failed or timed-out
  // handshake is logged (rate-limited) and closes that socket only.
  void start_handshake(tcp::socket socket) {
    const uint64_t id = next_handshake_id_++;
    Address peer = peer_of(socket);
    auto handshake = std::make_shared<ServerHandshake>(loop_.io(), std::move(socket), tls_->ssl);
    handshake->peer = std::move(peer);
    handshake->started = loop_.now();
    handshakes_.emplace(id, handshake);
    handshake->timer.expires_after(TcpNet::kTlsHandshakeTimeout);
    handshake->timer.async_wait([handshake](const asio::error_code& ec) {
      if (ec) return;  // cancelled: the handshake ended first
      handshake->timed_out = true;
      handshake->abort();
    });
    handshake->stream->async_handshake(
        asio::ssl::stream_base::server,
        [self = shared_from_this(), handshake, id](const asio::error_code& ec) {
          handshake->timer.cancel();
          self->handshakes_.erase(id);
          if (self->closed_) return;  // close() aborted it; the socket goes with `handshake`
          if (handshake->evicted) {
            // Logged and uncounted when evicted; even a handshake that succeeded just then
            // is dropped, since its slot went to the newcomer.
            handshake->abort();
          } else if (ec) {
            tls_handshake_failed(*self->tls_, *self->shared_, self->log_, "server", handshake->peer,
                                 handshake->timed_out ? "timed out" : ec.message());
            handshake->abort();
          } else {
            self->backlog_.emplace_back(std::move(handshake->stream));
            self->acceptable_.notify_one();
          }
          self->pump();
        });
  }

  // Closes the handshake that started first, to make room for a socket that just arrived;
  // logged rate-limited. Its slot is free at once (its handler, later, only drops it). A
  // no-op when no handshake is pending: the queue is full of authenticated connections that
  // accept() has not taken, and the newcomer takes the one place past the bound that the
  // accept in flight may use.
  void evict_oldest_handshake() {
    if (handshakes_.empty()) return;
    auto oldest = handshakes_.begin();
    std::shared_ptr<ServerHandshake> victim = oldest->second;
    handshakes_.erase(oldest);
    victim->evicted = true;
    victim->timer.cancel();
    victim->abort();
    if (log_ == nullptr) return;
    if (std::optional<uint64_t> suppressed = shared_->admit(kLogHandshakeEvicted)) {
      const auto age_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now() - victim->started);
      log_->warn("net", kLogHandshakeEvicted,
                 "accept queue full of TLS handshakes; closing the oldest for a new connection",
                 {{"address", address_},
                  {"peer", victim->peer},
                  {"handshake_ms", static_cast<int64_t>(age_ms.count())},
                  {"suppressed", *suppressed}});
    }
  }

  // Out of descriptors or memory, or a connection that died in the queue: try again a
  // little later rather than spin.
  void accept_failed(const asio::error_code& ec) {
    if (log_) {
      if (std::optional<uint64_t> suppressed = shared_->admit(kLogAcceptFailed)) {
        log_->warn("net", kLogAcceptFailed, "accept failed; retrying",
                   {{"address", address_}, {"error", ec.message()}, {"suppressed", *suppressed}});
      }
    }
    accepting_ = true;  // the retry timer stands in for the pending accept
    retry_.expires_after(TcpNet::kAcceptRetryDelay);
    retry_.async_wait([self = shared_from_this()](const asio::error_code& timer_ec) {
      self->accepting_ = false;
      if (!timer_ec) self->pump();
    });
  }

  RealLoop& loop_;
  std::shared_ptr<NetShared> shared_;
  tcp::acceptor acceptor_;
  Address address_;
  Logger* log_;
  std::shared_ptr<TlsContext> tls_;  // null: plaintext
  bool closed_ = false;
  bool accepting_ = false;
  std::deque<ByteStream> backlog_;  // accepted (and, with TLS, authenticated)
  std::map<uint64_t, std::shared_ptr<ServerHandshake>> handshakes_;
  uint64_t next_handshake_id_ = 1;
  WaitQueue acceptable_;
  asio::steady_timer retry_;
};

class TcpListener : public Listener {
 public:
  explicit TcpListener(std::shared_ptr<ListenerState> state) : state_(std::move(state)) {}
  ~TcpListener() override { state_->close(); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  Task<Result<std::unique_ptr<Connection>>> accept(Deadline deadline) override {
    return ListenerState::accept(state_, deadline);
  }
  void close() override { state_->close(); }
  const Address& address() const override { return state_->address(); }

 private:
  std::shared_ptr<ListenerState> state_;
};

// Connect attempts outlive the connecting task when it gives up (deadline, cancel); the
// handler then finds `abandoned` and drops the socket.
// A connect whose deadline has already passed fails at once: dialled anyway, a loopback
// connect could complete before the deadline's timer fires, and which one wins would
// depend on the loop's order of events.
Status deadline_not_passed(const Scheduler& scheduler, Deadline deadline, const Address& address) {
  if (deadline.is_never() || deadline > scheduler.now()) return Status();
  return deadline_exceeded(fmt::format("connect to {}: the deadline passed before it", address));
}

struct ConnectAttempt {
  explicit ConnectAttempt(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  SlotRef waiter;
  bool done = false;
  asio::error_code ec;
};

// The same for the client's TLS handshake that follows a TCP connect.
struct ClientHandshake {
  ClientHandshake(tcp::socket socket, asio::ssl::context& ssl)
      : stream(std::make_unique<TlsStream>(std::move(socket), ssl)) {}
  std::unique_ptr<TlsStream> stream;
  SlotRef waiter;
  bool done = false;
  asio::error_code ec;
};

// The client's side of the TLS handshake on a connected socket, within `deadline`. A failure
// is logged (rate-limited) and closes the socket: Unavailable, DeadlineExceeded, Cancelled.
Task<Result<std::unique_ptr<Connection>>> handshake_client(std::shared_ptr<NetShared> shared,
                                                           std::shared_ptr<TlsContext> tls,
                                                           Logger* log, tcp::socket socket,
                                                           Address address, std::string host,
                                                           Deadline deadline) {
  Scheduler& scheduler = shared->loop.scheduler();
  auto handshake = std::make_shared<ClientHandshake>(std::move(socket), tls->ssl);
  // The server's certificate must name the address we dialled (an IP SAN).
  asio::error_code ec;
  handshake->stream->set_verify_callback(asio::ssl::host_name_verification(std::move(host)), ec);
  if (ec) co_return invalid_argument(fmt::format("TLS to {}: {}", address, ec.message()));
  handshake->stream->async_handshake(asio::ssl::stream_base::client,
                                     [handshake, &scheduler](const asio::error_code& hs_ec) {
                                       handshake->done = true;
                                       handshake->ec = hs_ec;
                                       scheduler.wake(handshake->waiter, Status());
                                     });
  ClientHandshake* pending = handshake.get();  // see TcpNet::connect_to on g++ 12
  Status waited =
      co_await park_until(scheduler, deadline, [pending](SlotRef ref) { pending->waiter = ref; });
  if (!waited.is_ok()) {
    asio::error_code ignored;
    handshake->stream->next_layer().close(ignored);
    if (waited.code() == Code::kDeadlineExceeded) {
      tls_handshake_failed(*tls, *shared, log, "client", address, "timed out");
    }
    co_return Status(waited.code(),
                     fmt::format("TLS handshake with {}: {}", address, waited.message()));
  }
  QUIRE_ASSERT(handshake->done);
  if (handshake->ec) {
    tls_handshake_failed(*tls, *shared, log, "client", address, handshake->ec.message());
    asio::error_code ignored;
    handshake->stream->next_layer().close(ignored);
    co_return unavailable(
        fmt::format("TLS handshake with {} failed: {}", address, handshake->ec.message()));
  }
  co_return make_connection(shared, ByteStream(std::move(handshake->stream)), log, false);
}

// ---- Byte streams: plaintext TCP, read only when the application asks (so TCP's flow
// control pushes back on a peer that sends faster than it is served), written from a
// bounded queue.

// Everything a stream's Asio handlers touch; they hold it by shared_ptr.
class StreamState : public std::enable_shared_from_this<StreamState> {
 public:
  StreamState(std::shared_ptr<NetShared> shared, tcp::socket socket, Address peer, Address local)
      : shared_(std::move(shared)),
        socket_(std::move(socket)),
        peer_(std::move(peer)),
        local_(std::move(local)),
        waiters_(shared_->loop.scheduler()),
        read_buffer_(kStreamReadBufferBytes),
        linger_(shared_->loop.io()) {}

  const Address& peer() const { return peer_; }
  const Address& local() const { return local_; }
  bool is_open() const { return !closed_ && !broken_ && !eof_; }

  bool peer_closed() const {
    if (closed_ || broken_) return true;
    if (read_end_ > read_begin_) return false;  // bytes not read yet
    if (eof_) return true;
    // What the kernel holds, without taking it: 0 is the peer's FIN after every byte.
    char byte = 0;
    const ssize_t n = ::recv(const_cast<asio::ip::tcp::socket&>(socket_).native_handle(), &byte, 1,
                             MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
  size_t queued_bytes() const { return queued_bytes_; }

  static Task<Result<size_t>> read_some(std::shared_ptr<StreamState> self, std::span<uint8_t> out,
                                        Deadline deadline) {
    QUIRE_ASSERT(!out.empty());
    // Each round returns or waits for the one read in flight to end.
    while (true) {
      if (self->closed_) co_return unavailable(fmt::format("stream to {} is closed", self->peer_));
      if (self->read_end_ > self->read_begin_) {
        const size_t n = std::min(out.size(), self->read_end_ - self->read_begin_);
        std::memcpy(out.data(), self->read_buffer_.data() + self->read_begin_, n);
        self->read_begin_ += n;
        co_return n;
      }
      if (self->broken_) co_return self->broken_status();
      if (self->eof_) co_return unavailable(fmt::format("stream closed by {}", self->peer_));
      self->start_read();
      Status waited = co_await self->waiters_.wait(deadline);
      if (!waited.is_ok()) {
        co_return Status(waited.code(),
                         fmt::format("read from {}: {}", self->peer_, waited.message()));
      }
    }
  }

  Status write(ByteView data) {
    if (closed_) return unavailable(fmt::format("stream to {} is closed", peer_));
    if (broken_) return broken_status();
    if (queued_bytes_ + data.size() > StreamConnection::kMaxQueuedWriteBytes) {
      return busy(fmt::format("stream to {} has {} bytes queued; {} more would exceed {}", peer_,
                              queued_bytes_, data.size(), StreamConnection::kMaxQueuedWriteBytes));
    }
    if (data.empty()) return Status();
    // Small writes join the last queued chunk unless it is being written.
    if (queue_.size() > writing_chunks_ && queue_.back().size() < kStreamChunkBytes) {
      queue_.back().insert(queue_.back().end(), data.begin(), data.end());
    } else {
      queue_.emplace_back(data.begin(), data.end());
    }
    queued_bytes_ += data.size();
    if (writing_chunks_ == 0) write_batch();
    return Status();
  }

  static Task<Status> drained(std::shared_ptr<StreamState> self, size_t at_most,
                              Deadline deadline) {
    while (true) {
      if (self->closed_) co_return unavailable(fmt::format("stream to {} is closed", self->peer_));
      if (self->broken_) co_return self->broken_status();
      if (self->queued_bytes_ <= at_most) co_return Status();
      Status waited = co_await self->waiters_.wait(deadline);
      if (!waited.is_ok()) co_return waited;
    }
  }

  // Fails waiting readers and writers, and closes the socket once the queue is written (for
  // at most kCloseLingerMax).
  void close() {
    if (closed_) return;
    closed_ = true;
    waiters_.notify_all();
    if (broken_) return;
    if (writing_chunks_ == 0) {
      close_socket();
      return;
    }
    linger_.expires_after(TcpNet::kCloseLingerMax);
    linger_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->close_socket();
    });
  }

 private:
  // Reads land in the state's own buffer, never in the caller's: a read abandoned by its
  // caller may complete later.
  static constexpr size_t kStreamReadBufferBytes = 16 * 1024;
  // Queued writes are merged into chunks up to this size.
  static constexpr size_t kStreamChunkBytes = 64 * 1024;
  static constexpr size_t kStreamWriteBatchChunksMax = 64;

  Status broken_status() const {
    return unavailable(fmt::format("stream to {} is broken: {}", peer_, broken_reason_));
  }

  void start_read() {
    if (reading_ || closed_ || broken_ || eof_) return;
    reading_ = true;
    read_begin_ = 0;
    read_end_ = 0;
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              self->reading_ = false;
                              if (ec == asio::error::eof) {
                                self->eof_ = true;
                              } else if (ec) {
                                self->fail(ec.message());
                              } else {
                                self->read_end_ = n;
                              }
                              self->waiters_.notify_all();
                            });
  }

  void write_batch() {
    QUIRE_ASSERT(writing_chunks_ == 0 && !queue_.empty());
    writing_chunks_ = std::min(queue_.size(), kStreamWriteBatchChunksMax);
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(writing_chunks_);
    for (size_t i = 0; i < writing_chunks_; ++i) buffers.push_back(asio::buffer(queue_[i]));
    // The chunks stay in queue_ (deque elements do not move) until the write ends.
    asio::async_write(
        socket_, buffers,
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->write_done(ec); });
  }

  void write_done(const asio::error_code& ec) {
    const size_t count = std::exchange(writing_chunks_, 0);
    if (ec) fail(ec.message());
    if (broken_) {
      queue_.clear();
      queued_bytes_ = 0;
      waiters_.notify_all();
      return;
    }
    for (size_t i = 0; i < count; ++i) {
      queued_bytes_ -= queue_.front().size();
      queue_.pop_front();
    }
    waiters_.notify_all();
    if (!queue_.empty()) {
      write_batch();
    } else if (closed_) {
      close_socket();  // close() was waiting for this flush
    }
  }

  void fail(std::string reason) {
    if (broken_) return;
    broken_ = true;
    broken_reason_ = std::move(reason);
    close_socket();
    if (writing_chunks_ == 0) {
      queue_.clear();
      queued_bytes_ = 0;
    }
    waiters_.notify_all();
  }

  void close_socket() {
    asio::error_code ignored;
    linger_.cancel();
    if (!socket_.is_open()) return;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  std::shared_ptr<NetShared> shared_;
  tcp::socket socket_;
  Address peer_;
  Address local_;
  WaitQueue waiters_;  // readers and drain waiters: every event wakes them all
  bool closed_ = false;
  bool broken_ = false;
  bool eof_ = false;
  std::string broken_reason_;
  Bytes read_buffer_;  // [read_begin_, read_end_) received, not yet read
  size_t read_begin_ = 0;
  size_t read_end_ = 0;
  bool reading_ = false;
  std::deque<Bytes> queue_;  // the first writing_chunks_ are being written
  size_t writing_chunks_ = 0;
  size_t queued_bytes_ = 0;
  asio::steady_timer linger_;
};

class TcpStreamConnection : public StreamConnection {
 public:
  explicit TcpStreamConnection(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}
  ~TcpStreamConnection() override { state_->close(); }
  TcpStreamConnection(const TcpStreamConnection&) = delete;
  TcpStreamConnection& operator=(const TcpStreamConnection&) = delete;

  Task<Result<size_t>> read_some(std::span<uint8_t> out, Deadline deadline) override {
    return StreamState::read_some(state_, out, deadline);
  }
  Status write(ByteView data) override { return state_->write(data); }
  size_t queued_bytes() const override { return state_->queued_bytes(); }
  Task<Status> drained(size_t at_most, Deadline deadline) override {
    return StreamState::drained(state_, at_most, deadline);
  }
  void close() override { state_->close(); }
  bool is_open() const override { return state_->is_open(); }
  bool peer_closed() const override { return state_->peer_closed(); }
  const Address& peer() const override { return state_->peer(); }
  const Address& local() const override { return state_->local(); }

 private:
  std::shared_ptr<StreamState> state_;
};

std::unique_ptr<StreamConnection> make_stream(const std::shared_ptr<NetShared>& shared,
                                              tcp::socket socket, Logger* log) {
  Address peer = peer_of(socket);
  asio::error_code local_ec;
  const tcp::endpoint here = socket.local_endpoint(local_ec);
  Address local = local_ec ? Address("?") : format_endpoint(here);
  set_no_delay(socket, log, peer);
  asio::error_code keep_alive = set_keep_alive(socket);
  if (keep_alive && log) {
    if (std::optional<uint64_t> suppressed = shared->admit(kLogKeepAliveFailed)) {
      log->warn("net", kLogKeepAliveFailed, "cannot set TCP keepalive",
                {{"peer", peer}, {"error", keep_alive.message()}, {"suppressed", *suppressed}});
    }
  }
  return std::make_unique<TcpStreamConnection>(
      std::make_shared<StreamState>(shared, std::move(socket), std::move(peer), std::move(local)));
}

// Accepts ahead of accept() calls into a bounded queue; the kernel's backlog holds the rest.
class StreamListenerState : public std::enable_shared_from_this<StreamListenerState> {
 public:
  StreamListenerState(std::shared_ptr<NetShared> shared, tcp::acceptor acceptor, Address address,
                      Logger* log)
      : shared_(std::move(shared)),
        acceptor_(std::move(acceptor)),
        address_(std::move(address)),
        log_(log),
        acceptable_(shared_->loop.scheduler()),
        retry_(shared_->loop.io()) {}

  const Address& address() const { return address_; }

  static Task<Result<std::unique_ptr<StreamConnection>>> accept(
      std::shared_ptr<StreamListenerState> self, Deadline deadline) {
    while (true) {
      if (self->closed_) co_return unavailable(fmt::format("listener {} closed", self->address_));
      if (!self->backlog_.empty()) {
        tcp::socket socket = std::move(self->backlog_.front());
        self->backlog_.pop_front();
        self->pump();
        co_return make_stream(self->shared_, std::move(socket), self->log_);
      }
      self->pump();
      Status waited = co_await self->acceptable_.wait(deadline);
      if (!waited.is_ok()) co_return waited;
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    log_ = nullptr;
    asio::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    backlog_.clear();
    acceptable_.notify_all();
  }

  void pump() {
    if (closed_ || accepting_ || backlog_.size() >= TcpNet::kAcceptQueueMax) return;
    accepting_ = true;
    acceptor_.async_accept(
        [self = shared_from_this()](const asio::error_code& ec, tcp::socket socket) {
          self->accepting_ = false;
          if (self->closed_) return;
          if (ec) {
            self->accept_failed(ec);
            return;
          }
          self->backlog_.push_back(std::move(socket));
          self->acceptable_.notify_one();
          self->pump();
        });
  }

 private:
  void accept_failed(const asio::error_code& ec) {
    if (log_) {
      if (std::optional<uint64_t> suppressed = shared_->admit(kLogAcceptFailed)) {
        log_->warn("net", kLogAcceptFailed, "stream accept failed; retrying",
                   {{"address", address_}, {"error", ec.message()}, {"suppressed", *suppressed}});
      }
    }
    accepting_ = true;  // the retry timer stands in for the pending accept
    retry_.expires_after(TcpNet::kAcceptRetryDelay);
    retry_.async_wait([self = shared_from_this()](const asio::error_code& timer_ec) {
      self->accepting_ = false;
      if (!timer_ec) self->pump();
    });
  }

  std::shared_ptr<NetShared> shared_;
  tcp::acceptor acceptor_;
  Address address_;
  Logger* log_;
  bool closed_ = false;
  bool accepting_ = false;
  std::deque<tcp::socket> backlog_;
  WaitQueue acceptable_;
  asio::steady_timer retry_;
};

class TcpStreamListener : public StreamListener {
 public:
  explicit TcpStreamListener(std::shared_ptr<StreamListenerState> state)
      : state_(std::move(state)) {}
  ~TcpStreamListener() override { state_->close(); }
  TcpStreamListener(const TcpStreamListener&) = delete;
  TcpStreamListener& operator=(const TcpStreamListener&) = delete;

  Task<Result<std::unique_ptr<StreamConnection>>> accept(Deadline deadline) override {
    return StreamListenerState::accept(state_, deadline);
  }
  void close() override { state_->close(); }
  const Address& address() const override { return state_->address(); }

 private:
  std::shared_ptr<StreamListenerState> state_;
};

}  // namespace

Result<TcpAddress> parse_tcp_address(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid_argument(fmt::format("address '{}' is not host:port", address));
  }
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);

  TcpAddress out;
  if (host.empty()) {
    return invalid_argument(
        fmt::format("address '{}' has no host (0.0.0.0 means every interface)", address));
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return invalid_argument(fmt::format("address '{}' has an unterminated '[' host", address));
    }
    out.host = std::string(host.substr(1, host.size() - 2));
    in6_addr v6;
    if (inet_pton(AF_INET6, out.host.c_str(), &v6) != 1) {
      return invalid_argument(
          fmt::format("address '{}': '{}' is not an IPv6 literal", address, out.host));
    }
  } else if (host.find(':') != std::string_view::npos) {
    return invalid_argument(
        fmt::format("address '{}': an IPv6 host goes in brackets, as in [::1]:7000", address));
  } else if (host == "localhost") {
    out.host = "127.0.0.1";
  } else {
    out.host = std::string(host);
    in_addr v4;
    if (inet_pton(AF_INET, out.host.c_str(), &v4) != 1) {
      return invalid_argument(fmt::format(
          "address '{}': host '{}' is not an IPv4 literal, localhost or a bracketed IPv6 literal",
          address, host));
    }
  }

  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid_argument(fmt::format("address '{}': port '{}' is not a number", address, port));
  }
  uint32_t value = 0;
  for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535) {
    return invalid_argument(fmt::format("address '{}': port {} is above 65535", address, value));
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

TcpNet::TcpNet(RealLoop& loop, Logger* log, TcpNetOptions options)
    : loop_(loop), log_(log), shared_(std::make_shared<NetShared>(loop, options)) {
  QUIRE_ASSERT(options.receive_budget_bytes > kCompleteFrameReserveBytes);
  QUIRE_ASSERT(options.send_queue_bytes_max > 0 && options.send_budget_bytes > 0);
  QUIRE_ASSERT(options.send_stall_timeout > Nanos(0) && options.frame_timeout > Nanos(0) &&
               options.idle_timeout > Nanos(0));
}

TcpNet::~TcpNet() = default;

const TcpNetOptions& TcpNet::options() const {
  return shared_->options;
}

size_t TcpNet::receive_budget_used() const {
  return shared_->receive_used;
}

size_t TcpNet::send_budget_used() const {
  return shared_->send_used;
}

namespace {

// A bound, listening acceptor and the address it reports.
struct BoundAcceptor {
  tcp::acceptor acceptor;
  Address address;
};

Result<BoundAcceptor> bind_acceptor(asio::io_context& io, const Address& address) {
  Result<tcp::endpoint> endpoint = parse_endpoint(address);
  if (!endpoint.is_ok()) return endpoint.status();
  tcp::acceptor acceptor(io);
  asio::error_code ec;
  auto failed = [&](std::string_view step) {
    return unavailable(fmt::format("listen on {}: {}: {}", address, step, ec.message()));
  };
  acceptor.open(endpoint->protocol(), ec);
  if (ec) return failed("socket");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return failed("SO_REUSEADDR");
  acceptor.bind(*endpoint, ec);
  if (ec) return failed("bind");
  acceptor.listen(TcpNet::kListenBacklog, ec);
  if (ec) return failed("listen");
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return failed("getsockname");
  return BoundAcceptor{std::move(acceptor), format_endpoint(bound)};
}

}  // namespace

Result<std::unique_ptr<StreamListener>> TcpNet::listen_stream(const Address& address) {
  Result<BoundAcceptor> bound = bind_acceptor(loop_.io(), address);
  if (!bound.is_ok()) return bound.status();
  auto state = std::make_shared<StreamListenerState>(shared_, std::move(bound->acceptor),
                                                     std::move(bound->address), log_);
  state->pump();
  return std::unique_ptr<StreamListener>(std::make_unique<TcpStreamListener>(std::move(state)));
}

Task<Result<std::unique_ptr<StreamConnection>>> TcpNet::connect_stream(const Address& address,
                                                                       Deadline deadline) {
  // The coroutine takes its own copy of the address: the caller's may not outlive the call.
  return connect_stream_to(address, deadline);
}

Task<Result<std::unique_ptr<StreamConnection>>> TcpNet::connect_stream_to(Address address,
                                                                          Deadline deadline) {
  Result<tcp::endpoint> endpoint = parse_endpoint(address);
  if (!endpoint.is_ok()) co_return endpoint.status();
  Scheduler& scheduler = loop_.scheduler();
  if (Status st = deadline_not_passed(scheduler, deadline, address); !st.is_ok()) co_return st;
  auto attempt = std::make_shared<ConnectAttempt>(loop_.io());
  attempt->socket.async_connect(*endpoint, [attempt, &scheduler](const asio::error_code& ec) {
    attempt->done = true;
    attempt->ec = ec;
    scheduler.wake(attempt->waiter, Status());
  });
  ConnectAttempt* pending = attempt.get();  // see connect_to on g++ 12
  Status waited =
      co_await park_until(scheduler, deadline, [pending](SlotRef ref) { pending->waiter = ref; });
  if (!waited.is_ok()) {
    asio::error_code ignored;
    attempt->socket.close(ignored);
    co_return Status(waited.code(), fmt::format("connect to {}: {}", address, waited.message()));
  }
  QUIRE_ASSERT(attempt->done);
  if (attempt->ec) {
    co_return unavailable(fmt::format("connect to {}: {}", address, attempt->ec.message()));
  }
  co_return make_stream(shared_, std::move(attempt->socket), log_);
}

Result<std::unique_ptr<Listener>> TcpNet::listen(const Address& address) {
  Result<BoundAcceptor> bound = bind_acceptor(loop_.io(), address);
  if (!bound.is_ok()) return bound.status();
  auto state = std::make_shared<ListenerState>(shared_, std::move(bound->acceptor),
                                               std::move(bound->address), log_, tls_);
  state->start();
  return std::unique_ptr<Listener>(std::make_unique<TcpListener>(std::move(state)));
}

Task<Result<std::unique_ptr<Connection>>> TcpNet::connect(const Address& address,
                                                          Deadline deadline) {
  // The coroutine takes its own copy of the address: the caller's may not outlive the call.
  return connect_to(address, deadline);
}

Task<Result<std::unique_ptr<Connection>>> TcpNet::connect_to(Address address, Deadline deadline) {
  Result<tcp::endpoint> endpoint = parse_endpoint(address);
  if (!endpoint.is_ok()) co_return endpoint.status();

  Scheduler& scheduler = loop_.scheduler();
  if (Status st = deadline_not_passed(scheduler, deadline, address); !st.is_ok()) co_return st;
  auto attempt = std::make_shared<ConnectAttempt>(loop_.io());
  attempt->socket.async_connect(*endpoint, [attempt, &scheduler](const asio::error_code& ec) {
    attempt->done = true;
    attempt->ec = ec;
    scheduler.wake(attempt->waiter, Status());
  });
  // g++ 12 destroys a lambda (or any braced temporary) created inside a co_await expression
  // twice, so the register lambda captures a plain pointer; `attempt` keeps it alive.
  ConnectAttempt* pending = attempt.get();
  Status waited =
      co_await park_until(scheduler, deadline, [pending](SlotRef ref) { pending->waiter = ref; });
  if (!waited.is_ok()) {
    // Abandon the attempt: closing the socket cancels the pending connect.
    asio::error_code ignored;
    attempt->socket.close(ignored);
    co_return Status(waited.code(), fmt::format("connect to {}: {}", address, waited.message()));
  }
  QUIRE_ASSERT(attempt->done);
  if (attempt->ec) {
    co_return unavailable(fmt::format("connect to {}: {}", address, attempt->ec.message()));
  }
  if (tls_ == nullptr)
    co_return make_connection(shared_, ByteStream(std::move(attempt->socket)), log_, false);
  // parse_endpoint accepted the address, so it parses again to the host it dialled.
  Result<TcpAddress> dialled = parse_tcp_address(address);
  QUIRE_ASSERT(dialled.is_ok());
  std::string host = dialled->host;
  co_return co_await handshake_client(shared_, tls_, log_, std::move(attempt->socket),
                                      std::move(address), std::move(host), deadline);
}

uint64_t TcpNet::tls_handshake_failures() const {
  return tls_ ? tls_->failures() : 0;
}

Status TcpNet::enable_tls(const TlsOptions& options) {
  if (options.ca_file.empty() || options.cert_file.empty() || options.key_file.empty()) {
    return invalid_argument("TLS needs a CA file, a certificate file and a key file");
  }
  QUIRE_RETURN_IF_ERROR(check_tls_file("CA file", options.ca_file));
  QUIRE_RETURN_IF_ERROR(check_tls_file("certificate file", options.cert_file));
  QUIRE_RETURN_IF_ERROR(check_tls_file("key file", options.key_file));
  // Anyone who can read the key can pose as this node: refuse it, as FileKms refuses cmk.key.
  struct stat key_stat;
  if (::stat(options.key_file.c_str(), &key_stat) != 0) {
    return invalid_argument(
        fmt::format("TLS key file {}: {}", options.key_file, std::strerror(errno)));
  }
  if ((key_stat.st_mode & kKeyFileGroupOtherBits) != 0) {
    return invalid_argument(
        fmt::format("TLS key file {} is accessible by group or others "
                    "(mode {:04o}); chmod 600 {}",
                    options.key_file, key_stat.st_mode & 0777, options.key_file));
  }
  auto tls = std::make_shared<TlsContext>();
  SSL_CTX* ctx = tls->ssl.native_handle();
  // TLS 1.3 only, and no session tickets: every connection authenticates in full.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_num_tickets(ctx, 0) != 1) {
    return io_error("OpenSSL cannot be limited to TLS 1.3");
  }
  auto refused = [&](std::string_view what, const std::string& file, const asio::error_code& e) {
    return invalid_argument(fmt::format("TLS {} {}: {}", what, file, e.message()));
  };
  // A key file with a passphrase is refused, never asked for on a terminal (a node runs
  // unattended).
  SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
  asio::error_code ec;
  tls->ssl.load_verify_file(options.ca_file, ec);
  if (ec) return refused("CA file", options.ca_file, ec);
  tls->ssl.use_certificate_chain_file(options.cert_file, ec);
  if (ec) return refused("certificate file", options.cert_file, ec);
  tls->ssl.use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
  if (ec) return refused("key file", options.key_file, ec);
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return invalid_argument(
        fmt::format("TLS key file {} is not the key of {}", options.key_file, options.cert_file));
  }
  tls->ssl.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return refused("verify mode for", options.ca_file, ec);
  tls_ = std::move(tls);
  return Status::ok();
}

}  // namespace quire
