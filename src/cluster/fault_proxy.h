// FaultProxy: a TCP relay on loopback that injects network faults between Quire's
// processes, for the real chaos harness (this kernel has no netem). It listens on one
// address and relays every connection to one target, byte for byte (TLS passes through
// untouched), in one of four modes:
//
//   kPass       relay as it arrives.
//   kDelay      hold every chunk for `delay` before relaying it (both directions); the
//               order of bytes is kept.
//   kReset      reset every relayed connection now (RST, SO_LINGER 0) and every new one as
//               it arrives: "connection reset by peer" on both sides.
//   kBlackhole  relay nothing and read nothing, both directions, and leave new connections
//               unanswered: to both sides the peer has gone silent. Nothing is dropped:
//               bytes wait in the kernel's buffers (TCP's own flow control), so once the
//               mode is kPass again a connection that survived its peers' timeouts resumes
//               intact, as a healed partition would.
//
// Bounds: at most kConnectionsMax relayed connections (more are reset at accept); at most
// kBufferBytesMax queued per direction per connection (reading stops, flow control holds
// the sender); connecting to the target is given kConnectTimeout.
//
// The relay runs on its own thread (tool code, not node code); every method is safe to
// call from any thread. Destruction stops the thread and closes every socket.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>

#include "base/status.h"

namespace quire::cluster {

enum class ProxyMode : uint8_t { kPass = 0, kDelay = 1, kReset = 2, kBlackhole = 3 };
std::string_view proxy_mode_name(ProxyMode mode);

class FaultProxy {
 public:
  static constexpr size_t kConnectionsMax = 256;
  static constexpr size_t kBufferBytesMax = size_t{4} << 20;
  static constexpr auto kConnectTimeout = std::chrono::seconds(2);

  // Listens on `listen` ("127.0.0.1:PORT"; port 0 picks one) and relays to `target`.
  // Unavailable naming the address when it cannot listen; InvalidArgument for a malformed one.
  static Result<std::unique_ptr<FaultProxy>> start(std::string listen, std::string target);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  void set_mode(ProxyMode mode, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  ProxyMode mode() const { return mode_.load(); }
  const std::string& address() const { return address_; }
  const std::string& target() const { return target_; }
  uint64_t connections_accepted() const { return accepted_.load(); }
  uint64_t connections_reset() const { return reset_.load(); }

 private:
  struct Relay;
  FaultProxy(int listen_fd, int wake_read, int wake_write, std::string address, std::string target);
  void run();
  // The pollfds of one turn (wake pipe, listener, then client and server of each relay);
  // returns the poll timeout in ms (the next delayed chunk's time, at most kPollMax).
  int poll_set(const std::vector<std::unique_ptr<Relay>>& relays, ProxyMode mode,
               std::vector<pollfd>& fds) const;
  // Completes a connect, moves bytes both ways, ends the relay on an error or both EOFs.
  void service(Relay& r, short client_events, short server_events, std::chrono::nanoseconds delay);
  // Accepts what waits: relayed, or reset when the mode (read per connection) is kReset
  // or kConnectionsMax relays exist.
  void accept_new(std::vector<std::unique_ptr<Relay>>& relays, const sockaddr_in& target);
  void wake();

  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::string address_;
  std::string target_;
  std::atomic<ProxyMode> mode_{ProxyMode::kPass};
  std::atomic<int64_t> delay_ns_{0};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> reset_{0};
  std::thread thread_;
};

}  // namespace quire::cluster
