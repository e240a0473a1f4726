// TcpNet: Net over TCP for a real process, on its RealLoop's Asio io_context.
//
// A message travels as a frame: its length as 4 bytes little-endian, then its bytes. Each
// connection reads continuously into a bounded receive queue and stops reading while the
// queue is full, so a slow receiver pushes back on its sender through TCP instead of
// growing without bound. A peer that announces a frame above kMaxMessageBytes loses its
// connection (logged as an error); no other connection notices.
//
// Bounds against any peer (TcpNetOptions; every one closes or pauses that connection only):
//  - Memory on a promise: a frame's body is buffered as its bytes arrive, never allocated
//    from the length the header announces. Frames being received and received frames not
//    yet taken by receive() share one budget for the whole TcpNet (receive_budget_bytes);
//    a connection that needs more than is left stops reading until receive() frees some.
//    Incomplete frames may hold all of it but kCompleteFrameReserveBytes, so while peers
//    sit on half-sent frames, small frames from everyone else still get through.
//  - Unread sends: send() is Busy once a connection's queue would pass
//    send_queue_bytes_max (a frame into an empty queue always fits) or all connections'
//    queues would pass send_budget_bytes. An accepted connection whose queue is at its
//    bound stops being read (the server takes no new requests from a peer that does not
//    read its responses), and any connection whose pending write makes no progress for
//    send_stall_timeout is closed.
//  - Slow or silent peers: a frame must complete within frame_timeout of its first byte
//    (the clock restarts while the receive queue is full: then the application, not the
//    peer, is behind); an accepted connection that receives no frame and sends nothing
//    for idle_timeout is closed. TCP keepalive is on (kKeepAliveIdle, kKeepAliveInterval,
//    kKeepAliveProbes), so a vanished peer is noticed even with nothing to send.
//  - The log: errors a peer can cause (bad frames, broken connections, failed accepts and
//    handshakes, evicted handshakes) are logged at most once per kErrorLogInterval per
//    kind, the next line counting the ones suppressed in between (LogLimiter).
// How many connections a server keeps is the server's decision (RpcServer evicts).
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
// (rate-limited as above) and closes that connection only. Frames are the same inside TLS.
// Without enable_tls, TCP carries the frames as is.
//
// Sockets still in their server-side handshake share kAcceptQueueMax with authenticated
// connections that accept() has not taken yet, and each has kTlsHandshakeTimeout to finish.
// They do not stop the listener accepting: a socket that arrives when the queue is full
// evicts (closes) the oldest pending handshake, logged rate-limited. So peers that connect
// and stall mid-handshake cannot hold the queue for the timeout and lock out a fresh
// client, which is served at once; a legitimate slow handshake loses its slot only under a
// flood of kAcceptQueueMax newer connections, and its client reconnects. Refusing the
// newcomer would let a few dozen silent sockets deny service for the timeout, and a shorter
// timeout or a larger queue would only move that limit. Only authenticated connections
// stop accepting (then the application is behind; the kernel's backlog holds the rest),
// and the one accept in flight when they fill the queue may take one place past it.
#pragma once

#include <chrono>
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
struct NetShared;

// The bounds of one TcpNet (see the header comment). Zero is not a valid value for any.
struct TcpNetOptions {
  // Bytes of incomplete frames and received frames not yet taken by receive(), over all
  // connections. Above TcpNet::kCompleteFrameReserveBytes; frames larger than the
  // difference never complete, so keep it at least Connection::kMaxMessageBytes above.
  size_t receive_budget_bytes = size_t{128} << 20;
  // Bytes queued for sending on one connection, and over all connections.
  size_t send_queue_bytes_max = size_t{32} << 20;
  size_t send_budget_bytes = size_t{128} << 20;
  // A pending write that makes no progress for this long closes its connection.
  Nanos send_stall_timeout = std::chrono::seconds(30);
  // A frame not complete this long after its first byte closes its connection.
  Nanos frame_timeout = std::chrono::seconds(30);
  // An accepted connection with no frame in either direction for this long is closed.
  Nanos idle_timeout = std::chrono::minutes(5);
};

class TcpNet : public Net {
 public:
  // Receive queue bounds per connection: reading pauses once either is reached.
  static constexpr size_t kReceiveQueueMessagesMax = 1024;
  static constexpr size_t kReceiveQueueBytesMax = size_t{64} << 20;
  // Inbound connections accepted ahead of accept() calls, authenticated or (with TLS) still
  // in their handshake; beyond it a newcomer evicts the oldest handshake, or, when all are
  // authenticated, the kernel's backlog holds it.
  static constexpr size_t kAcceptQueueMax = 64;
  static constexpr int kListenBacklog = 128;
  // How long close() keeps flushing queued sends before it drops them.
  static constexpr Nanos kCloseLingerMax = std::chrono::seconds(1);
  // How long a listener waits before accepting again after the kernel refused (EMFILE).
  static constexpr Nanos kAcceptRetryDelay = std::chrono::milliseconds(100);
  // How long an accepted connection has to complete its TLS handshake (unless evicted
  // first: see the header comment).
  static constexpr Nanos kTlsHandshakeTimeout = std::chrono::seconds(10);
  // Errors of one kind are logged at most once per this interval; the next line counts the
  // ones suppressed in between.
  static constexpr Nanos kErrorLogInterval = std::chrono::seconds(1);
  static constexpr Nanos kTlsFailureLogInterval = kErrorLogInterval;
  // Of receive_budget_bytes, what incomplete frames may not take.
  static constexpr size_t kCompleteFrameReserveBytes = size_t{16} << 20;
  // TCP keepalive: probes start after this much silence, one per interval, and the
  // connection breaks after this many unanswered.
  static constexpr Nanos kKeepAliveIdle = std::chrono::seconds(60);
  static constexpr Nanos kKeepAliveInterval = std::chrono::seconds(10);
  static constexpr int kKeepAliveProbes = 6;

  // `log` receives broken-connection and accept errors; it may be null. The options must
  // be valid (see TcpNetOptions).
  TcpNet(RealLoop& loop, Logger* log, TcpNetOptions options = {});
  ~TcpNet();
  const TcpNetOptions& options() const;
  // Bytes held now against receive_budget_bytes (incomplete and received frames) and
  // send_budget_bytes (queued frames).
  size_t receive_budget_used() const;
  size_t send_budget_used() const;

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

  // Byte streams (env.h's StreamConnection), for clients: plaintext TCP even with
  // enable_tls (no client protocol here uses TLS yet), TCP_NODELAY and keepalive as above.
  // A stream reads from its socket only while read_some waits, so a peer that sends faster
  // than it is served is held back by TCP; its writes queue up to
  // StreamConnection::kMaxQueuedWriteBytes (per stream: the send budgets above are for
  // frames). No timeouts apply: the stream's user decides when a peer is idle or stuck.
  // Accepted streams queue up to kAcceptQueueMax ahead of accept().
  Result<std::unique_ptr<StreamListener>> listen_stream(const Address& address) override;
  Task<Result<std::unique_ptr<StreamConnection>>> connect_stream(const Address& address,
                                                                 Deadline deadline) override;

 private:
  Task<Result<std::unique_ptr<Connection>>> connect_to(Address address, Deadline deadline);
  Task<Result<std::unique_ptr<StreamConnection>>> connect_stream_to(Address address,
                                                                    Deadline deadline);

  RealLoop& loop_;
  Logger* log_;
  // Budgets and log limits, shared with the connections and listeners (which may outlive
  // this object while their handlers are pending).
  std::shared_ptr<NetShared> shared_;
  std::shared_ptr<TlsContext> tls_;  // null: plaintext
};

}  // namespace quire
