#include "coord/etcd_coordinator.h"

#include <algorithm>

#include <fmt/format.h>

namespace quire {

namespace {

constexpr const char* kComponent = "etcd";

// Log ids of the etcd coordinator.
constexpr uint32_t kLogCallFailed = 49001;
constexpr uint32_t kLogMalformedAnswer = 49002;
constexpr uint32_t kLogWithdrawFailed = 49003;
constexpr uint32_t kLogBusy = 49004;
constexpr uint32_t kLogWithdrawDropped = 49005;

constexpr std::string_view kGrantPath = "/v3/lease/grant";
constexpr std::string_view kKeepAlivePath = "/v3/lease/keepalive";
constexpr std::string_view kRevokePath = "/v3/lease/revoke";
constexpr std::string_view kCampaignPath = "/v3/election/campaign";
constexpr std::string_view kLeaderPath = "/v3/election/leader";
constexpr std::string_view kObservePath = "/v3/election/observe";
constexpr std::string_view kResignPath = "/v3/election/resign";
constexpr std::string_view kTxnPath = "/v3/kv/txn";

// Withdraws a candidacy, detached, when the campaigning frame ends without disarming it
// (the task cancelled or destroyed mid-wait). Holds the HTTP client's handle, never the
// coordinator, so it is safe even after the coordinator is gone (then it sends nothing).
class WithdrawOnExit {
 public:
  WithdrawOnExit(HttpClient::Handle client, std::string election, int64_t lease, Nanos timeout)
      : client_(std::move(client)),
        election_(std::move(election)),
        lease_(lease),
        timeout_(timeout) {}
  WithdrawOnExit(const WithdrawOnExit&) = delete;
  WithdrawOnExit& operator=(const WithdrawOnExit&) = delete;
  ~WithdrawOnExit() {
    if (armed_) {
      (void)HttpClient::post_detached(client_, std::string(kTxnPath),
                                      withdraw_request(election_, lease_), timeout_);
    }
  }
  void disarm() { armed_ = false; }

 private:
  HttpClient::Handle client_;
  std::string election_;
  int64_t lease_;
  Nanos timeout_;
  bool armed_ = true;
};

}  // namespace

Status validate_etcd_options(const EtcdOptions& options) {
  if (options.withdraw_timeout <= Nanos(0)) {
    return invalid_argument("etcd: withdraw_timeout must be positive");
  }
  Status http = validate_http_client_options(options.http());
  return http.is_ok() ? http : invalid_argument("etcd: " + http.message());
}

Result<std::unique_ptr<EtcdCoordinator>> EtcdCoordinator::create(RealLoop& loop, Env& env,
                                                                 EtcdOptions options) {
  QUIRE_RETURN_IF_ERROR(validate_etcd_options(options));
  return std::unique_ptr<EtcdCoordinator>(new EtcdCoordinator(loop, env, std::move(options)));
}

EtcdCoordinator::EtcdCoordinator(RealLoop& loop, Env& env, EtcdOptions options)
    : env_(env), options_(std::move(options)), http_(loop, options_.http()) {}

EtcdCoordinator::~EtcdCoordinator() = default;

Status EtcdCoordinator::note_failure(uint32_t log_id, std::string_view call, Status st) {
  if (st.code() == Code::kCancelled) return st;
  auto [it, inserted] = limits_.try_emplace(log_id, kLogInterval);
  (void)inserted;
  if (std::optional<uint64_t> suppressed = it->second.admit(env_.executor().now())) {
    env_.log().warn(kComponent, log_id, "etcd call failed",
                    {{"call", call}, {"error", st}, {"suppressed", *suppressed}});
  }
  return st;
}

Status EtcdCoordinator::check_election(const std::string& election) const {
  if (election.empty() || election.size() > kElectionBytesMax) {
    return invalid_argument(
        fmt::format("election name of {} bytes (1..{})", election.size(), kElectionBytesMax));
  }
  return Status();
}

namespace {
// The log id of a failure: a malformed answer apart from the transport's failures.
uint32_t failure_log_id(const Status& st) {
  if (st.code() == Code::kInvalidArgument) return kLogMalformedAnswer;
  if (st.code() == Code::kBusy) return kLogBusy;
  return kLogCallFailed;
}
}  // namespace

Task<Result<CoordinatorLease>> EtcdCoordinator::grant_lease(Nanos ttl, Deadline deadline) {
  std::string path(kGrantPath);
  std::string body = grant_request(std::max(ttl, kLeaseTtlMin));
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Result<CoordinatorLease> granted =
      reply.is_ok() ? decode_grant(*reply) : Result<CoordinatorLease>(reply.status());
  if (!granted.is_ok()) {
    co_return note_failure(failure_log_id(granted.status()), "grant", granted.status());
  }
  co_return granted;
}

Task<Result<Nanos>> EtcdCoordinator::keep_alive(int64_t lease, Deadline deadline) {
  std::string path(kKeepAlivePath);
  std::string body = lease_request(lease);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Result<Nanos> ttl =
      reply.is_ok() ? decode_keep_alive(*reply, lease) : Result<Nanos>(reply.status());
  // NotFound is the answer, not a failure of the call.
  if (!ttl.is_ok() && ttl.code() != Code::kNotFound) {
    co_return note_failure(failure_log_id(ttl.status()), "keepalive", ttl.status());
  }
  co_return ttl;
}

Task<Status> EtcdCoordinator::revoke_lease(int64_t lease, Deadline deadline) {
  std::string path(kRevokePath);
  std::string body = lease_request(lease);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Status st = reply.is_ok() ? decode_revoke(*reply) : reply.status();
  if (!st.is_ok()) co_return note_failure(failure_log_id(st), "revoke", st);
  co_return st;
}

Task<Result<Leadership>> EtcdCoordinator::campaign(std::string election, int64_t lease,
                                                   std::string value, Deadline deadline) {
  QUIRE_CO_RETURN_IF_ERROR(check_election(election));
  if (value.size() > kValueBytesMax) {
    co_return invalid_argument(
        fmt::format("published value of {} bytes (max {})", value.size(), kValueBytesMax));
  }
  if (lease <= 0) co_return invalid_argument("campaign needs a lease");
  WithdrawOnExit withdraw_on_exit(http_.handle(), election, lease, options_.withdraw_timeout);
  std::string path(kCampaignPath);
  std::string body = campaign_request(election, lease, value);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Result<Leadership> won = reply.is_ok() ? decode_campaign(*reply, election, lease, value)
                                         : Result<Leadership>(reply.status());
  if (won.is_ok() || won.code() == Code::kNotFound || won.code() == Code::kBusy) {
    // Leader; or the lease is gone, and its keys with it; or the request was refused
    // before it campaigned (too many in flight here, or etcd's rate limit).
    withdraw_on_exit.disarm();
    if (won.code() == Code::kBusy) co_return note_failure(kLogBusy, "campaign", won.status());
    co_return won;
  }
  if (won.code() != Code::kCancelled) {
    // Make sure the candidacy is gone before the caller hears it failed.
    withdraw_on_exit.disarm();
    co_await withdraw(election, lease);
  }
  // A campaign is a long poll: while another candidate leads it ends at its deadline, and
  // the elector campaigns again. That is no failure of etcd (a hung etcd shows in the
  // lease grant that precedes every campaign).
  if (won.code() == Code::kDeadlineExceeded) co_return won.status();
  co_return note_failure(failure_log_id(won.status()), "campaign", won.status());
}

Task<void> EtcdCoordinator::withdraw(std::string election, int64_t lease) {
  std::string path(kTxnPath);
  std::string body = withdraw_request(election, lease);
  const Deadline deadline = env_.executor().deadline_after(options_.withdraw_timeout);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), body, deadline);
  Status st = reply.is_ok() ? decode_header_only(*reply) : reply.status();
  if (st.is_ok() || st.code() == Code::kCancelled) co_return;
  if (st.code() == Code::kBusy) {
    // No place among the waited requests: leave it to a detached one.
    std::string detached_path(kTxnPath);
    if (HttpClient::post_detached(http_.handle(), std::move(detached_path), std::move(body),
                                  options_.withdraw_timeout)) {
      co_return;
    }
    (void)note_failure(kLogWithdrawDropped, "withdraw", st);
    co_return;
  }
  (void)note_failure(kLogWithdrawFailed, "withdraw", st);
}

Task<Result<Leadership>> EtcdCoordinator::leader(std::string election, Deadline deadline) {
  QUIRE_CO_RETURN_IF_ERROR(check_election(election));
  std::string path(kLeaderPath);
  std::string body = election_request(election);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Result<Leadership> current =
      reply.is_ok() ? decode_leader(*reply, election) : Result<Leadership>(reply.status());
  if (!current.is_ok() && current.code() != Code::kNotFound) {
    co_return note_failure(failure_log_id(current.status()), "leader", current.status());
  }
  co_return current;
}

Task<Result<Leadership>> EtcdCoordinator::observe(std::string election, uint64_t known_epoch,
                                                  Deadline deadline) {
  QUIRE_CO_RETURN_IF_ERROR(check_election(election));
  std::string path(kObservePath);
  std::string body = election_request(election);
  HttpClient::LineFilter until = [election, known_epoch](std::string_view line) {
    return observe_line_ends_wait(line, election, known_epoch);
  };
  Result<GatewayReply> reply =
      co_await http_.post(std::move(path), std::move(body), deadline, std::move(until));
  Result<Leadership> seen =
      !reply.is_ok()              ? Result<Leadership>(reply.status())
      : reply->http_status != 200 ? gateway_error(reply->http_status, reply->body)
      : reply->body.empty()       ? Result<Leadership>(unavailable("etcd ended the observe stream"))
                                  : decode_observe_line(reply->body, election);
  if (!seen.is_ok() && seen.code() != Code::kDeadlineExceeded) {
    co_return note_failure(failure_log_id(seen.status()), "observe", seen.status());
  }
  co_return seen;
}

Task<Status> EtcdCoordinator::resign(Leadership who, Deadline deadline) {
  QUIRE_CO_RETURN_IF_ERROR(check_election(who.election));
  std::string path(kResignPath);
  std::string body = resign_request(who);
  Result<GatewayReply> reply = co_await http_.post(std::move(path), std::move(body), deadline);
  Status st = reply.is_ok() ? decode_header_only(*reply) : reply.status();
  if (!st.is_ok()) co_return note_failure(failure_log_id(st), "resign", st);
  co_return st;
}

}  // namespace quire
