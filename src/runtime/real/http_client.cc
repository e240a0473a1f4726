#include "runtime/real/http_client.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include <curl/curl.h>
#include <fmt/format.h>
#include <asio.hpp>

#include "runtime/real/certs.h"
#include "runtime/scheduler.h"

namespace quire {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::string_view kHttpScheme = "http://";
constexpr std::string_view kHttpsScheme = "https://";
// How long the worker pauses when curl_multi_poll itself fails (it never should).
constexpr auto kPollFailurePause = std::chrono::milliseconds(10);

std::once_flag curl_initialized;

// curl_global_init is not thread-safe against itself; every client calls it once here.
void init_curl_once() {
  std::call_once(curl_initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Rounded up: a request's curl timeout never ends before its deadline (a timeout before
// the deadline is read as an endpoint that could not be reached).
long millis_at_least_one(Nanos d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<long>(std::max<int64_t>(ms, 1));
}

// Failures where no byte of the request reached a server: the next endpoint may answer.
// A TLS handshake that failed also precedes any byte of the request.
bool connect_failed(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_SSL_CONNECT_ERROR ||
         code == CURLE_PEER_FAILED_VERIFICATION;
}

}  // namespace

Status validate_http_client_options(const HttpClientOptions& options) {
  if (options.endpoints.empty()) return invalid_argument("HTTP client: no endpoint");
  const bool https = options.endpoints.front().starts_with(kHttpsScheme);
  const std::string_view scheme = https ? kHttpsScheme : kHttpScheme;
  for (const std::string& e : options.endpoints) {
    if (!e.starts_with(scheme) || e.size() == scheme.size() ||
        e.find_first_of(" /?#", scheme.size()) != std::string::npos) {
      return invalid_argument(
          fmt::format("endpoint '{}' is not {}host:port{}", e, scheme,
                      e.starts_with(https ? kHttpScheme : kHttpsScheme) ? " (schemes mixed)" : ""));
    }
  }
  const bool any_tls = !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
                       !options.tls_key_file.empty();
  if (!https && any_tls) return invalid_argument("TLS files given for http:// endpoints");
  if (https) {
    if (options.tls_ca_file.empty() || options.tls_cert_file.empty() ||
        options.tls_key_file.empty()) {
      return invalid_argument(
          "https:// endpoints need a CA certificate, a client certificate and its key (mutual "
          "TLS)");
    }
    QUIRE_RETURN_IF_ERROR(check_tls_file("CA file", options.tls_ca_file));
    QUIRE_RETURN_IF_ERROR(check_tls_file("certificate file", options.tls_cert_file));
    QUIRE_RETURN_IF_ERROR(check_tls_file("key file", options.tls_key_file));
  }
  if (options.requests_in_flight_max == 0 || options.response_bytes_max == 0 ||
      options.connect_timeout <= Nanos(0)) {
    return invalid_argument("HTTP client: bounds and timeouts must be positive");
  }
  return Status();
}

// One request. Fields are owned by one side at a time: the submitter fills the request
// before it enters the inbox (the inbox mutex orders that), the worker owns the transfer,
// and the outcome is written by the worker before the completion is posted to the loop
// (the io_context's queue orders that).
struct HttpClient::Call {
  // The request, fixed at submission.
  std::string path;
  std::string body;
  bool has_deadline = false;
  SteadyTime deadline_at;
  LineFilter until;
  bool detached = false;

  // The worker's.
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string url;
  std::string received;  // the body, or the line the filter accepted
  std::string line;      // a stream's line being assembled
  bool line_accepted = false;
  bool too_large = false;
  size_t endpoint = 0;
  size_t endpoints_tried = 0;
  size_t bytes_max = 0;
  char error[CURL_ERROR_SIZE] = {};

  // Written by the worker, read by the loop after the completion runs.
  Result<HttpReply> outcome = unavailable("HTTP request not finished");

  // The loop's.
  SlotRef waiter;
  bool done = false;

  // Any thread: the awaiting task gave up; the worker drops the transfer.
  std::atomic<bool> abandoned{false};
};

struct HttpClientShared {
  using Call = HttpClient::Call;
  using LineFilter = HttpClient::LineFilter;

  HttpClientShared(RealLoop& loop, HttpClientOptions options_in)
      : io(loop.io()), scheduler(loop.scheduler()), options(std::move(options_in)) {
    init_curl_once();
    multi = curl_multi_init();
  }
  ~HttpClientShared() {
    if (multi) curl_multi_cleanup(multi);
  }

  // Any thread.
  void wake_worker() {
    if (multi) curl_multi_wakeup(multi);
  }
  void abandon(const std::shared_ptr<Call>& call) {
    call->abandoned = true;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      to_cancel.push_back(call);
    }
    wake_worker();
  }

  // Worker thread.
  void run();
  void begin(const std::shared_ptr<Call>& call);
  void start_attempt(const std::shared_ptr<Call>& call);
  void stop_transfer(Call& call);
  void drop(const std::shared_ptr<Call>& call);
  void on_done(CURL* easy, CURLcode code);
  void finish(const std::shared_ptr<Call>& call, Result<HttpReply> outcome);
  void release(const Call& call);

  asio::io_context& io;
  Scheduler& scheduler;
  const HttpClientOptions options;
  CURLM* multi = nullptr;

  std::mutex mu;  // guards the fields down to preferred
  std::vector<std::shared_ptr<Call>> to_start;
  std::vector<std::shared_ptr<Call>> to_cancel;
  bool stopping = false;
  size_t in_flight = 0;
  size_t detached_in_flight = 0;

  std::atomic<size_t> preferred{0};
  std::map<CURL*, std::shared_ptr<Call>> active;  // the worker's
};

namespace {

// libcurl's write callback: appends to the body within its bound or, for a stream, offers
// each complete line to the filter. Returning less than `n` aborts the transfer.
size_t on_body_bytes(char* data, size_t size, size_t count, void* user) {
  auto* call = static_cast<HttpClient::Call*>(user);
  const size_t n = size * count;
  if (call->abandoned) return 0;
  if (!call->until) {
    if (call->received.size() + n > call->bytes_max) {
      call->too_large = true;
      return 0;
    }
    call->received.append(data, n);
    return n;
  }
  std::string_view rest(data, n);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view piece = rest.substr(0, nl);
    if (call->line.size() + piece.size() > call->bytes_max) {
      call->too_large = true;
      return 0;
    }
    call->line.append(piece);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
    if (call->until(call->line)) {
      call->received = std::move(call->line);
      call->line_accepted = true;
      return 0;  // the wait is over: end the transfer
    }
    call->line.clear();
  }
  return n;
}

}  // namespace

void HttpClientShared::run() {
  while (true) {
    std::vector<std::shared_ptr<Call>> starting;
    std::vector<std::shared_ptr<Call>> cancelling;
    {
      std::lock_guard lock(mu);
      if (stopping) break;
      starting.swap(to_start);
      cancelling.swap(to_cancel);
    }
    // Cancels first, so a request queued after another's cancel never overtakes it (etcd:
    // a campaign's withdrawal).
    for (const std::shared_ptr<Call>& call : cancelling) {
      if (call->easy != nullptr) drop(call);
    }
    for (const std::shared_ptr<Call>& call : starting) {
      if (call->abandoned) {
        release(*call);
      } else {
        begin(call);
      }
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) on_done(msg->easy_handle, msg->data.result);
    }
    const int poll_ms = static_cast<int>(millis_at_least_one(HttpClient::kWorkerPollMax));
    if (curl_multi_poll(multi, nullptr, 0, poll_ms, nullptr) != CURLM_OK) {
      // Never spin: a poll that fails at once waits like an idle one would, briefly.
      std::this_thread::sleep_for(kPollFailurePause);
    }
  }
  for (auto& [easy, call] : active) stop_transfer(*call);
  active.clear();
}

void HttpClientShared::begin(const std::shared_ptr<Call>& call) {
  call->endpoint = preferred.load() % options.endpoints.size();
  call->endpoints_tried = 0;
  call->bytes_max = options.response_bytes_max;
  start_attempt(call);
}

void HttpClientShared::start_attempt(const std::shared_ptr<Call>& call) {
  Nanos remaining = Nanos::max();
  if (call->has_deadline) {
    remaining =
        std::chrono::duration_cast<Nanos>(call->deadline_at - std::chrono::steady_clock::now());
    if (remaining <= Nanos(0)) {
      finish(call, deadline_exceeded("HTTP request timed out"));
      return;
    }
  }
  call->received.clear();
  call->line.clear();
  call->line_accepted = false;
  call->too_large = false;
  call->error[0] = '\0';
  call->url = options.endpoints[call->endpoint] + call->path;
  CURL* easy = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  // No "Expect: 100-continue" round trip for larger bodies.
  curl_slist* more = headers ? curl_slist_append(headers, "Expect:") : nullptr;
  if (easy == nullptr || more == nullptr) {
    if (easy) curl_easy_cleanup(easy);
    curl_slist_free_all(more ? more : headers);
    finish(call, unavailable("cannot allocate an HTTP request"));
    return;
  }
  call->headers = more;
  curl_easy_setopt(easy, CURLOPT_URL, call->url.c_str());
  if (options.tls_ca_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
  } else {
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_CAINFO, options.tls_ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);  // the cluster's CA only
    curl_easy_setopt(easy, CURLOPT_SSLCERT, options.tls_cert_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSLKEY, options.tls_key_file.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call->body.size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body_bytes);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, call.get());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->error);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  Nanos connect = std::min(options.connect_timeout, remaining);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, millis_at_least_one(connect));
  if (call->has_deadline)
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, millis_at_least_one(remaining));
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    curl_easy_cleanup(easy);
    curl_slist_free_all(call->headers);
    call->headers = nullptr;
    finish(call, unavailable("cannot start an HTTP request"));
    return;
  }
  call->easy = easy;
  active.emplace(easy, call);
}

void HttpClientShared::stop_transfer(Call& call) {
  if (call.easy == nullptr) return;
  curl_multi_remove_handle(multi, call.easy);
  curl_easy_cleanup(call.easy);
  call.easy = nullptr;
  curl_slist_free_all(call.headers);
  call.headers = nullptr;
}

void HttpClientShared::drop(const std::shared_ptr<Call>& call) {
  active.erase(call->easy);
  stop_transfer(*call);
  release(*call);
}

void HttpClientShared::on_done(CURL* easy, CURLcode code) {
  auto it = active.find(easy);
  if (it == active.end()) return;
  std::shared_ptr<Call> call = std::move(it->second);
  active.erase(it);
  long http_status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http_status);
  stop_transfer(*call);
  const std::string& endpoint = options.endpoints[call->endpoint];
  const bool before_deadline =
      !call->has_deadline || std::chrono::steady_clock::now() < call->deadline_at;
  // Nothing reached this endpoint (refused, or the connect timeout): try the next one.
  const bool unreachable =
      connect_failed(code) || (code == CURLE_OPERATION_TIMEDOUT && before_deadline);
  if (unreachable && !call->abandoned && ++call->endpoints_tried < options.endpoints.size()) {
    call->endpoint = (call->endpoint + 1) % options.endpoints.size();
    start_attempt(call);
    return;
  }
  const std::string detail = call->error[0] ? call->error : curl_easy_strerror(code);
  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && call->line_accepted)) {
    preferred = call->endpoint;
    std::string body =
        call->line_accepted || !call->until ? std::move(call->received) : std::move(call->line);
    finish(call, HttpReply{static_cast<int>(http_status), std::move(body)});
  } else if (call->too_large) {
    finish(call, invalid_argument(fmt::format("HTTP {}: answer above {} bytes", endpoint,
                                              options.response_bytes_max)));
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    finish(call, deadline_exceeded(fmt::format("HTTP {}: {}", endpoint, detail)));
  } else {
    finish(call, unavailable(fmt::format("HTTP {}: {}", endpoint, detail)));
  }
}

void HttpClientShared::finish(const std::shared_ptr<Call>& call, Result<HttpReply> outcome) {
  release(*call);
  if (call->detached || call->abandoned) return;
  call->outcome = std::move(outcome);
  Scheduler* s = &scheduler;
  asio::post(io, [call, s] {
    call->done = true;
    s->wake(call->waiter, Status());
  });
}

void HttpClientShared::release(const Call& call) {
  std::lock_guard lock(mu);
  if (call.detached) {
    detached_in_flight--;
  } else {
    in_flight--;
  }
}

HttpClient::HttpClient(RealLoop& loop, HttpClientOptions options)
    : loop_(loop), options_(options), shared_(std::make_shared<Shared>(loop, std::move(options))) {
  QUIRE_ASSERT_MSG(validate_http_client_options(options_).is_ok(),
                   "HttpClientOptions must be validated");
  if (shared_->multi) worker_ = std::thread([shared = shared_] { shared->run(); });
}

HttpClient::~HttpClient() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->wake_worker();
  if (worker_.joinable()) worker_.join();
}

size_t HttpClient::preferred_endpoint() const {
  return shared_->preferred.load() % options_.endpoints.size();
}

size_t HttpClient::requests_in_flight() const {
  std::lock_guard lock(shared_->mu);
  return shared_->in_flight;
}

namespace {

// Abandons a call still pending when the awaiting frame ends (a deadline, a cancel, or
// the task destroyed mid-wait).
template <typename SharedT, typename CallT>
class AbandonOnExit {
 public:
  AbandonOnExit(std::shared_ptr<SharedT> shared, std::shared_ptr<CallT> call)
      : shared_(std::move(shared)), call_(std::move(call)) {}
  AbandonOnExit(const AbandonOnExit&) = delete;
  AbandonOnExit& operator=(const AbandonOnExit&) = delete;
  ~AbandonOnExit() {
    if (!call_->done) shared_->abandon(call_);
  }

 private:
  std::shared_ptr<SharedT> shared_;
  std::shared_ptr<CallT> call_;
};

}  // namespace

Task<Result<HttpReply>> HttpClient::post(std::string path, std::string body, Deadline deadline,
                                         LineFilter until) {
  if (shared_->multi == nullptr) co_return unavailable("HTTP: libcurl could not be initialized");
  auto call = std::make_shared<Call>();
  call->path = std::move(path);
  call->body = std::move(body);
  call->until = std::move(until);
  if (!deadline.is_never()) {
    const Nanos remaining = deadline - loop_.now();
    if (remaining <= Nanos(0)) co_return deadline_exceeded("HTTP request: deadline passed");
    call->has_deadline = true;
    call->deadline_at = std::chrono::steady_clock::now() + remaining;
  }
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) co_return unavailable("HTTP client closed");
    if (shared_->in_flight >= options_.requests_in_flight_max) {
      co_return Status(Code::kBusy, "HTTP: too many requests in flight")
          .with("in_flight_max", options_.requests_in_flight_max);
    }
    shared_->in_flight++;
    shared_->to_start.push_back(call);
  }
  shared_->wake_worker();
  AbandonOnExit<Shared, Call> abandon_on_exit(shared_, call);
  // g++ 12: the register callable captures a plain pointer (see scheduler.h).
  Call* pending = call.get();
  Status waited = co_await park_until(loop_.scheduler(), deadline,
                                      [pending](SlotRef ref) { pending->waiter = ref; });
  if (!waited.is_ok()) {
    co_return Status(waited.code(), fmt::format("HTTP {}: {}", call->path, waited.message()));
  }
  QUIRE_ASSERT(call->done);  // only the completion wakes the wait with OK
  co_return std::move(call->outcome);
}

bool HttpClient::post_detached(const Handle& client, std::string path, std::string body,
                               Nanos timeout) {
  if (client == nullptr || client->multi == nullptr) return false;
  auto call = std::make_shared<Call>();
  call->path = std::move(path);
  call->body = std::move(body);
  call->detached = true;
  call->has_deadline = true;
  call->deadline_at = std::chrono::steady_clock::now() + timeout;
  {
    std::lock_guard lock(client->mu);
    if (client->stopping || client->detached_in_flight >= kDetachedInFlightMax) return false;
    client->detached_in_flight++;
    client->to_start.push_back(call);
  }
  client->wake_worker();
  return true;
}

}  // namespace quire
