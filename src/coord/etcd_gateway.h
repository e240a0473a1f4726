// The JSON of etcd 3.4's gRPC gateway (/v3/...) for the calls EtcdCoordinator makes: pure
// functions that build request bodies and turn an HTTP answer into a typed result. No I/O,
// so every quirk is unit-tested without an etcd (tests/coord/etcd_gateway_test.cc).
//
// The gateway's quirks (../shared/reference/real-cluster-digest.md §0, §1):
//  - int64 fields are JSON strings ("ID":"7587..."); a JSON integer is accepted too.
//  - keys, values and election names are standard base64.
//  - fields with zero values are omitted: a keepalive on an expired lease answers a
//    `result` without `TTL` (NotFound here), a failed txn has no `succeeded`.
//  - streams (keepalive, observe) are newline-delimited {"result":{...}} objects; an error
//    inside a stream is {"error":{"grpc_code":..,"message":..}} after an HTTP 200.
//  - an error answer is {"error":..,"message":..,"code":<gRPC code>} with the HTTP status
//    following the code; some errors come as code 2 (Unknown) and are told apart by their
//    message ("etcdserver: requested lease not found", "election: no leader").
//
// Errors: NotFound (a lease or leader that does not exist), Unavailable (etcd answered
// that it cannot serve now, or an unknown server error: the outcome is unknown),
// DeadlineExceeded (etcd's own timeout), Busy (etcd's rate limit), and InvalidArgument for
// anything malformed or unexpected: never an assertion.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "coord/coordinator.h"
#include "runtime/real/http_client.h"

namespace quire {

// An HTTP answer from etcd (HttpClient's): its status and body.
using GatewayReply = HttpReply;

// Standard base64 (RFC 4648 §4, padded). decode is strict: InvalidArgument for any other
// character, a missing or misplaced pad, or nonzero trailing bits.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

// "<election>/<lease in lowercase hex>", the key etcd's campaign puts (Go's %x).
std::string candidate_key(std::string_view election, int64_t lease);

// Request bodies.
std::string grant_request(Nanos ttl);      // TTL in whole seconds, rounded up
std::string lease_request(int64_t lease);  // keepalive and revoke: {"ID":"<id>"}
std::string campaign_request(std::string_view election, int64_t lease, std::string_view value);
std::string election_request(std::string_view election);  // leader and observe: {"name":b64}
std::string resign_request(const Leadership& who);
// A txn that deletes the candidate key of `lease` in `election` if that key is still
// attached to `lease` (compare target LEASE): how a candidacy is withdrawn.
std::string withdraw_request(std::string_view election, int64_t lease);

// The typed error of an answer that is not a success (any HTTP status but 200, or a
// stream's error line).
Status gateway_error(int http_status, std::string_view body);

// Answers, each for the call it names; every one maps a non-200 status by gateway_error.
Result<CoordinatorLease> decode_grant(const GatewayReply& reply);
// The TTL renewed for; NotFound when the answer has no TTL (the lease expired or never was).
// A TTL (here and in a grant) above etcd's bound of 9,000,000,000 s is InvalidArgument.
Result<Nanos> decode_keep_alive(const GatewayReply& reply, int64_t lease);
// OK also when etcd answers that the lease does not exist.
Status decode_revoke(const GatewayReply& reply);
// campaign returns the leader key without the value: `value` is what was published. The
// key must be the candidate's own, under `lease` (InvalidArgument otherwise).
Result<Leadership> decode_campaign(const GatewayReply& reply, std::string_view election,
                                   int64_t lease, std::string_view value);
// NotFound when the election has no leader.
Result<Leadership> decode_leader(const GatewayReply& reply, std::string_view election);
// One line of an observe stream: the leader it announces, or the stream's error.
Result<Leadership> decode_observe_line(std::string_view line, std::string_view election);
// Whether an observe stream's line ends a wait for a leader whose epoch is not
// `known_epoch`: every line does except a well-formed leader at `known_epoch` (and an empty
// line). Runs on HttpClient's worker thread, so it is pure.
bool observe_line_ends_wait(std::string_view line, std::string_view election, uint64_t known_epoch);
// resign and withdraw: OK on any 200 answer with a JSON object (a failed compare included).
Status decode_header_only(const GatewayReply& reply);

}  // namespace quire
