// EtcdCoordinator: the Coordinator (coordinator.h) of a real process, over etcd 3.4's JSON
// gateway. Each call is one POST (HttpClient: libcurl on a worker thread, never blocking
// the loop), its answer decoded by the pure functions of etcd_gateway.h:
//
//   grant_lease   /v3/lease/grant       {"TTL"} (raised to kLeaseTtlMin, whole seconds)
//   keep_alive    /v3/lease/keepalive   one {"ID"} per POST; a result without TTL: NotFound
//   revoke_lease  /v3/lease/revoke      {"ID"}; NotFound (already gone) is OK
//   campaign      /v3/election/campaign {"name","lease","value"}; blocks in etcd until leader
//   leader        /v3/election/leader   {"name"}; "election: no leader": NotFound
//   observe       /v3/election/observe  {"name"}; a stream, ended at the first leader whose
//                                       epoch is not known_epoch
//   resign        /v3/election/resign   {"leader":{name,key,rev,lease}}
//
// Campaign withdrawal. When a campaign ends without leadership (its deadline, the task
// cancelled or destroyed, a broken connection, an unexpected answer), the HTTP request is
// abandoned, which makes etcd resign the candidacy itself (it cancels the request's context),
// and this client also deletes the candidate key `<election>/<lease hex>` if it is still
// attached to the lease (/v3/kv/txn with a LEASE compare): campaign awaits that for up to
// withdraw_timeout before it returns; a destroyed or cancelled task sends it detached. A
// campaign that fails with NotFound (the lease is gone) has no key left to withdraw.
//
// Log ids 49xxx; failures a flapping etcd repeats are rate-limited per id (kLogInterval).
// Destroy it before the loop, after the tasks that call it (see HttpClient).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "coord/coordinator.h"
#include "coord/etcd_gateway.h"
#include "runtime/env.h"
#include "runtime/log_limiter.h"
#include "runtime/real/http_client.h"
#include "runtime/real/real_loop.h"

namespace quire {

struct EtcdOptions {
  // Client URLs of the etcd cluster's members, e.g. "http://127.0.0.1:2379", or all
  // https:// with the three files below: mutual TLS (etcd --client-cert-auth).
  std::vector<std::string> endpoints;
  std::string tls_ca_file;    // the CA that signed etcd's server certificate
  std::string tls_cert_file;  // this client's certificate, for etcd's client-cert-auth
  std::string tls_key_file;
  Nanos connect_timeout = std::chrono::seconds(1);  // per endpoint tried
  size_t requests_in_flight_max = 16;
  size_t response_bytes_max = size_t{1} << 20;  // a whole answer, or one line of a stream
  // How long campaign waits for its candidacy to be withdrawn after the campaign failed.
  Nanos withdraw_timeout = std::chrono::seconds(2);

  HttpClientOptions http() const {
    HttpClientOptions o;
    o.endpoints = endpoints;
    o.tls_ca_file = tls_ca_file;
    o.tls_cert_file = tls_cert_file;
    o.tls_key_file = tls_key_file;
    o.connect_timeout = connect_timeout;
    o.requests_in_flight_max = requests_in_flight_max;
    o.response_bytes_max = response_bytes_max;
    return o;
  }
};

// InvalidArgument naming the problem (validate_http_client_options's, and a withdraw
// timeout that is not positive).
Status validate_etcd_options(const EtcdOptions& options);

class EtcdCoordinator : public Coordinator {
 public:
  static constexpr Nanos kLogInterval = std::chrono::seconds(1);
  // Election names and published values above these are InvalidArgument before any request.
  static constexpr size_t kElectionBytesMax = 512;
  static constexpr size_t kValueBytesMax = 4096;

  // InvalidArgument when the options are not valid (validate_etcd_options). No I/O: the
  // first call connects.
  static Result<std::unique_ptr<EtcdCoordinator>> create(RealLoop& loop, Env& env,
                                                         EtcdOptions options);
  ~EtcdCoordinator() override;

  Task<Result<CoordinatorLease>> grant_lease(Nanos ttl, Deadline deadline) override;
  Task<Result<Nanos>> keep_alive(int64_t lease, Deadline deadline) override;
  Task<Status> revoke_lease(int64_t lease, Deadline deadline) override;
  Task<Result<Leadership>> campaign(std::string election, int64_t lease, std::string value,
                                    Deadline deadline) override;
  Task<Result<Leadership>> leader(std::string election, Deadline deadline) override;
  Task<Result<Leadership>> observe(std::string election, uint64_t known_epoch,
                                   Deadline deadline) override;
  Task<Status> resign(Leadership who, Deadline deadline) override;

  HttpClient& http() { return http_; }

 private:
  EtcdCoordinator(RealLoop& loop, Env& env, EtcdOptions options);

  // Deletes the candidate key of `lease` if still attached to it, within the withdraw
  // timeout; logs a failure.
  Task<void> withdraw(std::string election, int64_t lease);
  // Logs a failed call (rate-limited per log id) and returns its status.
  Status note_failure(uint32_t log_id, std::string_view call, Status st);
  Status check_election(const std::string& election) const;

  Env& env_;
  EtcdOptions options_;
  HttpClient http_;
  std::map<uint32_t, LogLimiter> limits_;  // per log id
};

}  // namespace quire
