// TcpNet: Net over TCP for a real process, on its RealLoop's Asio io_context.
//
// A message travels as a frame: its length as 4 bytes little-endian, then its bytes. Each
// connection reads continuously into a bounded receive queue and stops reading while the
// queue is full, so a slow receiver pushes back on its sender through TCP instead of
// growing without bound. A peer that announces a frame above kMaxMessageBytes loses its
// connection (logged as an error); no other connection notices.
//
// Addresses are "host:port" where host is an IPv4 literal, "localhost" (127.0.0.1) or a
// bracketed IPv6 literal ("[::1]"). Names are not resolved: nothing in the loop blocks on
// DNS. Connections and listeners may be destroyed at any time, also with reads, writes or
// accepts pending; they must be destroyed before the loop.
//
// With TLS enabled (enable_tls), every connection is mutual TLS 1.3: each end presents its
// node certificate and verifies the other's against the cluster CA, and a client also
// checks that the server's certificate names the IP address it dialled. accept() returns
// only connections whose handshake succeeded; a failed or timed-out handshake is logged
// (at most one line per second, counting the lines suppressed) and closes that connection
// only. Frames are the same inside TLS. Without enable_tls, TCP carries the frames as is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/log.h"
#include "runtime/env.h"
#include "runtime/real/real_loop.h"

namespace quire {

// A parsed "host:port". `host` is a numeric IP literal without brackets.
struct TcpAddress {
  std::string host;
  uint16_t port = 0;
};

// InvalidArgument, naming what is wrong, for anything but the forms described above.
Result<TcpAddress> parse_tcp_address(std::string_view address);

// The files of a node's TLS identity (PEM): the cluster CA's certificate, this node's
// certificate (signed by that CA) and its private key (mode 0600; see runtime/real/certs.h).
struct TlsOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class TlsContext;

class TcpNet : public Net {
 public:
  // Receive queue bounds per connection: reading pauses once either is reached.
  static constexpr size_t kReceiveQueueMessagesMax = 1024;
  static constexpr size_t kReceiveQueueBytesMax = size_t{64} << 20;
  // Inbound connections accepted ahead of accept() calls; beyond it the kernel's backlog
  // holds them.
  static constexpr size_t kAcceptQueueMax = 64;
  static constexpr int kListenBacklog = 128;
  // How long close() keeps flushing queued sends before it drops them.
  static constexpr Nanos kCloseLingerMax = std::chrono::seconds(1);
  // How long a listener waits before accepting again after the kernel refused (EMFILE).
  static constexpr Nanos kAcceptRetryDelay = std::chrono::milliseconds(100);
  // How long an accepted connection has to complete its TLS handshake.
  static constexpr Nanos kTlsHandshakeTimeout = std::chrono::seconds(10);
  // Failed handshakes are logged at most once per this interval; the next line counts the
  // ones suppressed in between.
  static constexpr Nanos kTlsFailureLogInterval = std::chrono::seconds(1);

  // `log` receives broken-connection and accept errors; it may be null.
  TcpNet(RealLoop& loop, Logger* log) : loop_(loop), log_(log) {}

  // Makes every later listen() and connect() mutual TLS with these files. InvalidArgument,
  // naming the file, when one is missing, unreadable, not PEM, a key others can read, or a
  // key that is not the certificate's; nothing changes then. Call before listening.
  Status enable_tls(const TlsOptions& options);
  bool tls_enabled() const { return tls_ != nullptr; }
  // Handshakes that failed on either side since enable_tls.
  uint64_t tls_handshake_failures() const;

  // Binds and listens (SO_REUSEADDR). InvalidArgument for a malformed address,
  // Unavailable when the address cannot be bound.
  Result<std::unique_ptr<Listener>> listen(const Address& address) override;
  // InvalidArgument for a malformed address; Unavailable when refused or unreachable;
  // DeadlineExceeded (the attempt is abandoned); Cancelled.
  Task<Result<std::unique_ptr<Connection>>> connect(const Address& address,
                                                    Deadline deadline) override;

 private:
  Task<Result<std::unique_ptr<Connection>>> connect_to(Address address, Deadline deadline);

  RealLoop& loop_;
  Logger* log_;
  std::shared_ptr<TlsContext> tls_;  // null: plaintext
};

}  // namespace quire
