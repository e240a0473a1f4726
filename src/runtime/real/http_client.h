// HttpClient: HTTP POSTs (JSON bodies) to a set of equivalent servers, for tasks on a
// RealLoop, without ever blocking the loop. libcurl does the HTTP (a multi handle), driven by
// one worker thread that this object owns; each finished request is handed back to the loop
// thread (asio::post to the loop's io_context) where it wakes the task that awaits it. The
// etcd coordinator (coord/etcd_coordinator.h) talks to etcd's JSON gateway through it.
//
// Bounds and failures:
//  - At most requests_in_flight_max requests are in flight (a call beyond it gets Busy at
//    once); detached requests (post_detached) have kDetachedInFlightMax places of their own.
//  - A response body above response_bytes_max ends its request with InvalidArgument; a
//    stream keeps no more than one line (at most that many bytes) in memory.
//  - The deadline is both the request's curl timeout and a wait on the loop; whichever
//    fires first ends it with DeadlineExceeded (Deadline never: no timeout). Connecting
//    takes at most connect_timeout per endpoint.
//  - Endpoints are tried in order from the last one that answered; a connection that
//    cannot be made (refused, unresolvable, connect timeout) moves on to the next, once
//    around. Any other transport failure is Unavailable: the request may have been applied.
//    Any HTTP answer, whatever its status, is a result: the caller decodes it.
//  - A task that is cancelled (Cancelled) or destroyed while it waits abandons its request:
//    the worker closes the connection and never touches the task's memory (the request's
//    state is shared, and the worker sees it abandoned).
//
// Destroy it on the loop's thread before the loop, and only once no task still runs code
// of a caller that uses it (the node's tasks die with its Env). The destructor wakes the
// worker, which closes every connection, and joins it: promptly, never waiting for a server.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/real/real_loop.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace quire {

// What HttpClient's worker and its awaiting tasks share (defined in the .cc).
struct HttpClientShared;

// One HTTP answer: its status and body (for a stream, the line that ended the wait).
struct HttpReply {
  int http_status = 0;
  std::string body;
};

struct HttpClientOptions {
  // Base URLs of equivalent servers, "http://host:port" or "https://host:port" (no path),
  // all of one scheme.
  std::vector<std::string> endpoints;
  // https:// only, and then all three: mutual TLS (TLS 1.2 or later), the server's chain
  // verified against tls_ca_file and its name or address against the endpoint's host; this
  // client presents tls_cert_file with tls_key_file.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  Nanos connect_timeout = std::chrono::seconds(1);  // per endpoint tried
  size_t requests_in_flight_max = 16;
  size_t response_bytes_max = size_t{1} << 20;  // a whole answer, or one line of a stream
};

// InvalidArgument naming the problem: no endpoint, an endpoint that is not
// http(s)://host:port, schemes mixed, https without its three TLS files or a file that cannot
// be read (or is over 1 MiB), TLS files with http, a zero bound or timeout.
Status validate_http_client_options(const HttpClientOptions& options);

class HttpClient {
 public:
  // Detached requests in flight (beyond requests_in_flight_max); more are refused.
  static constexpr size_t kDetachedInFlightMax = 16;
  // The longest the worker sleeps in curl without looking at its inbox (it is also woken).
  static constexpr Nanos kWorkerPollMax = std::chrono::seconds(1);

  // A stream's line filter: a request given one completes with the first complete line it
  // accepts (or, if the stream ends first, whatever unterminated tail was left, possibly
  // empty). It runs on the worker thread: it must be pure.
  using LineFilter = std::function<bool(std::string_view line)>;

  // `options` must be valid (validate_http_client_options).
  HttpClient(RealLoop& loop, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const HttpClientOptions& options() const { return options_; }

  // POSTs `body` (JSON) to `path` (e.g. "/v3/lease/grant") and returns the HTTP answer (any
  // status). Busy (too many in flight), Unavailable (no endpoint reachable, connection
  // broken), DeadlineExceeded, Cancelled, InvalidArgument (answer too large).
  Task<Result<HttpReply>> post(std::string path, std::string body, Deadline deadline,
                               LineFilter until = {});
  // What outlives this object for as long as a request or a holder needs it; once this
  // object is gone, requests through it are refused.
  using Handle = std::shared_ptr<HttpClientShared>;
  Handle handle() const { return shared_; }
  // Sends a request nobody waits for, within `timeout`; false when it was not sent (the
  // detached bound, or the client is closed). Safe from a frame being destroyed after
  // the client (it takes the handle).
  static bool post_detached(const Handle& client, std::string path, std::string body,
                            Nanos timeout);

  // The endpoint requests start from: the last one that answered.
  size_t preferred_endpoint() const;
  size_t requests_in_flight() const;

  // The implementation's (defined in the .cc): one request.
  struct Call;

 private:
  using Shared = HttpClientShared;

  RealLoop& loop_;
  HttpClientOptions options_;
  Handle shared_;
  std::thread worker_;
};

}  // namespace quire
