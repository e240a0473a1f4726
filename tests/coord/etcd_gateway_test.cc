// The etcd gateway's JSON, answer by answer, with its quirks: answers copied from etcd
// 3.4.23 on loopback (real-cluster-digest.md §1) and malformed variants of them.
#include "coord/etcd_gateway.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace quire {
namespace {

using Json = nlohmann::json;

GatewayReply ok(std::string body) {
  return GatewayReply{200, std::move(body)};
}

const char* kElection = "/quire/e";
// etcd's campaign answer for lease 4111120401909862406 (hex 390da23950b2d006) at rev 2.
const char* kCampaignAnswer =
    R"({"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709",)"
    R"("revision":"2","raft_term":"2"},"leader":{"name":"L3F1aXJlL2U=",)"
    R"("key":"L3F1aXJlL2UvMzkwZGEyMzk1MGIyZDAwNg==","rev":"2","lease":"4111120401909862406"}})";
constexpr int64_t kCampaignLease = 4111120401909862406;  // the lease kCampaignAnswer names
const char* kLeaderAnswer =
    R"({"header":{"revision":"2"},"kv":{"key":"L3F1aXJlL2UvMzkwZGEyMzk1MGIyZDAwNg==",)"
    R"("create_revision":"2","mod_revision":"2","version":"1","value":"YWRkcjE=",)"
    R"("lease":"4111120401909862406"}})";

TEST(EtcdGateway, Base64RoundTripsAndRejectsNonCanonicalText) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    Result<std::string> back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64_encode("/quire/e"), "L3F1aXJlL2U=");
  for (const char* bad : {"abc", "ab=c", "a===", "====", "L3F1aXJlL2U!", "YR==", "YWJ=", "=AAA"}) {
    EXPECT_EQ(base64_decode(bad).code(), Code::kInvalidArgument) << bad;
  }
}

TEST(EtcdGateway, RequestsUseStringInt64sAndBase64) {
  EXPECT_EQ(candidate_key("/quire/e", 4111120401909862406), "/quire/e/390da23950b2d006");
  EXPECT_EQ(Json::parse(grant_request(std::chrono::milliseconds(1500)))["TTL"], "2");
  EXPECT_EQ(Json::parse(lease_request(7))["ID"], "7");
  Json c = Json::parse(campaign_request("/quire/e", 7, "addr1"));
  EXPECT_EQ(c["name"], "L3F1aXJlL2U=");
  EXPECT_EQ(c["lease"], "7");
  EXPECT_EQ(c["value"], "YWRkcjE=");
  Json r = Json::parse(resign_request(Leadership{"/quire/e", "/quire/e/7", 12, 7, "v"}));
  EXPECT_EQ(r["leader"]["rev"], "12");
  EXPECT_EQ(r["leader"]["key"], base64_encode("/quire/e/7"));
  Json w = Json::parse(withdraw_request("/quire/e", 255));
  EXPECT_EQ(w["compare"][0]["target"], "LEASE");
  EXPECT_EQ(w["compare"][0]["lease"], "255");
  EXPECT_EQ(w["compare"][0]["key"], base64_encode("/quire/e/ff"));
  EXPECT_EQ(w["success"][0]["request_delete_range"]["key"], base64_encode("/quire/e/ff"));
}

TEST(EtcdGateway, GrantReadsIdAndTtlAsStrings) {
  auto lease =
      decode_grant(ok(R"({"header":{"revision":"1"},"ID":"2324035761133600520","TTL":"5"})"));
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  EXPECT_EQ(lease->id, 2324035761133600520);  // above 2^53: a double would lose it
  EXPECT_EQ(lease->ttl, std::chrono::seconds(5));
  // A JSON integer is accepted too.
  EXPECT_TRUE(decode_grant(ok(R"({"ID":7,"TTL":2})")).is_ok());
  for (const char* bad :
       {R"({"TTL":"5"})", R"({"ID":"0","TTL":"5"})", R"({"ID":"x1","TTL":"5"})",
        R"({"ID":"1","TTL":"-5"})", R"({"ID":"99999999999999999999","TTL":"5"})",
        R"({"ID":1.5,"TTL":"5"})", R"({"ID":"1"})", "[1]", "not json", "",
        R"({"ID":"1 ","TTL":"5"})",
        // Past etcd's bound (9e9 s): in Nanos it would overflow.
        R"({"ID":"1","TTL":"9223372036854775807"})", R"({"ID":"1","TTL":"9000000001"})"}) {
    EXPECT_EQ(decode_grant(ok(bad)).code(), Code::kInvalidArgument) << bad;
  }
}

TEST(EtcdGateway, KeepAliveWithoutTtlIsNotFound) {
  const int64_t id = 4111120401909862406;
  auto ttl = decode_keep_alive(
      ok(R"({"result":{"header":{"revision":"1"},"ID":"4111120401909862406","TTL":"5"}})"
         "\n"),
      id);
  ASSERT_TRUE(ttl.is_ok()) << ttl.status().to_string();
  EXPECT_EQ(*ttl, std::chrono::seconds(5));
  // etcd's answer for an expired lease: a result with TTL 0, omitted.
  EXPECT_EQ(
      decode_keep_alive(ok(R"({"result":{"header":{"revision":"2"},"ID":"12345"}})"), 12345).code(),
      Code::kNotFound);
  EXPECT_EQ(decode_keep_alive(ok(R"({"result":{"ID":"12345","TTL":"0"}})"), 12345).code(),
            Code::kNotFound);
  // Another lease's answer, no result, a stream error, garbage.
  EXPECT_EQ(decode_keep_alive(ok(R"({"result":{"ID":"1","TTL":"5"}})"), 2).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(decode_keep_alive(ok(R"({"header":{}})"), 2).code(), Code::kInvalidArgument);
  EXPECT_EQ(decode_keep_alive(ok(R"({"error":{"grpc_code":14,"message":"no leader"}})"), 2).code(),
            Code::kUnavailable);
  EXPECT_EQ(decode_keep_alive(ok("{\"result\":"), 2).code(), Code::kInvalidArgument);
  // A negative TTL, and one past etcd's bound.
  EXPECT_EQ(decode_keep_alive(ok(R"({"result":{"ID":"2","TTL":"-5"}})"), 2).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(decode_keep_alive(ok(R"({"result":{"ID":"2","TTL":"9223372036854775807"}})"), 2).code(),
            Code::kInvalidArgument);
  auto longest = decode_keep_alive(ok(R"({"result":{"ID":"2","TTL":"9000000000"}})"), 2);
  ASSERT_TRUE(longest.is_ok()) << longest.status().to_string();
  EXPECT_EQ(*longest, std::chrono::seconds(9'000'000'000));
}

TEST(EtcdGateway, ErrorsMapToTypedStatuses) {
  struct Case {
    int http;
    const char* body;
    Code want;
  };
  const Case cases[] = {
      {404,
       R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})",
       Code::kNotFound},
      // The election server's untyped errors.
      {500,
       R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":2})",
       Code::kNotFound},
      {500, R"({"error":"election: no leader","message":"election: no leader","code":2})",
       Code::kNotFound},
      {500, R"({"error":"x","message":"something else","code":2})", Code::kUnavailable},
      {503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})",
       Code::kUnavailable},
      {504, R"({"message":"etcdserver: request timed out","code":4})", Code::kDeadlineExceeded},
      {429, R"({"message":"too many requests","code":8})", Code::kBusy},
      {400, R"({"error":"invalid character","message":"invalid character","code":3})",
       Code::kInvalidArgument},
      {403, R"({"message":"permission denied","code":7})", Code::kInvalidArgument},
      // Not the gateway's shape.
      {404, "404 page not found\n", Code::kInvalidArgument},
      {502, "<html>bad gateway</html>", Code::kUnavailable},
      {429, "slow down", Code::kBusy},
      {500, R"({"code":"two"})", Code::kUnavailable},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(gateway_error(c.http, c.body).code(), c.want) << c.http << " " << c.body;
    // Every decoder maps a non-200 answer the same way.
    EXPECT_EQ(decode_grant(GatewayReply{c.http, c.body}).code(), c.want);
    EXPECT_EQ(decode_header_only(GatewayReply{c.http, c.body}).code(), c.want);
  }
  // Revoking a lease that is gone is OK; other errors are not.
  EXPECT_TRUE(decode_revoke(GatewayReply{404, cases[0].body}).is_ok());
  EXPECT_EQ(decode_revoke(GatewayReply{503, cases[4].body}).code(), Code::kUnavailable);
  // A 200 whose body is not an object is malformed.
  EXPECT_EQ(decode_header_only(ok("")).code(), Code::kInvalidArgument);
  EXPECT_TRUE(decode_header_only(ok(R"({"header":{"revision":"3"}})")).is_ok());
  // A failed txn (no "succeeded") is still a well-formed answer.
  EXPECT_TRUE(decode_header_only(ok(R"({"header":{"revision":"8"}})")).is_ok());
}

TEST(EtcdGateway, CampaignReadsTheLeaderKey) {
  auto l = decode_campaign(ok(kCampaignAnswer), kElection, kCampaignLease, "addr1");
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ(l->election, kElection);
  EXPECT_EQ(l->key, "/quire/e/390da23950b2d006");
  EXPECT_EQ(l->epoch, 2u);
  EXPECT_EQ(l->lease, 4111120401909862406);
  EXPECT_EQ(l->value, "addr1");
  // Another election's answer, a key that is not the lease's, a missing rev.
  EXPECT_EQ(decode_campaign(ok(kCampaignAnswer), "/quire/other", kCampaignLease, "v").code(),
            Code::kInvalidArgument);
  // Another lease's leadership (a misrouted or broken answer) is not this candidate's.
  EXPECT_EQ(decode_campaign(ok(kCampaignAnswer), kElection, kCampaignLease + 1, "v").code(),
            Code::kInvalidArgument);
  Json bad = Json::parse(kCampaignAnswer);
  bad["leader"]["key"] = base64_encode("/quire/e/1");
  EXPECT_EQ(decode_campaign(ok(bad.dump()), kElection, kCampaignLease, "v").code(),
            Code::kInvalidArgument);
  bad = Json::parse(kCampaignAnswer);
  bad["leader"].erase("rev");
  EXPECT_EQ(decode_campaign(ok(bad.dump()), kElection, kCampaignLease, "v").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(decode_campaign(ok(R"({"header":{}})"), kElection, kCampaignLease, "v").code(),
            Code::kInvalidArgument);
}

TEST(EtcdGateway, LeaderAndObserveReadTheKv) {
  auto l = decode_leader(ok(kLeaderAnswer), kElection);
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_EQ(l->key, "/quire/e/390da23950b2d006");
  EXPECT_EQ(l->epoch, 2u);
  EXPECT_EQ(l->value, "addr1");
  EXPECT_EQ(l->lease, 4111120401909862406);
  // No kv: no leader.
  EXPECT_EQ(decode_leader(ok(R"({"header":{"revision":"2"}})"), kElection).code(), Code::kNotFound);
  // A key outside the election, a zero create revision (omitted), bad base64.
  EXPECT_EQ(decode_leader(ok(kLeaderAnswer), "/quire/f").code(), Code::kInvalidArgument);
  EXPECT_EQ(decode_leader(ok(kLeaderAnswer), "/quire/e/390da23950b2d006").code(),
            Code::kInvalidArgument);
  Json bad = Json::parse(kLeaderAnswer);
  bad["kv"].erase("create_revision");
  EXPECT_EQ(decode_leader(ok(bad.dump()), kElection).code(), Code::kInvalidArgument);
  bad = Json::parse(kLeaderAnswer);
  bad["kv"]["value"] = "!!";
  EXPECT_EQ(decode_leader(ok(bad.dump()), kElection).code(), Code::kInvalidArgument);
  // An empty value is omitted, and comes back empty.
  bad = Json::parse(kLeaderAnswer);
  bad["kv"].erase("value");
  EXPECT_EQ(decode_leader(ok(bad.dump()), kElection)->value, "");

  const std::string line = "{\"result\":" + Json::parse(kLeaderAnswer).dump() + "}";
  auto seen = decode_observe_line(line, kElection);
  ASSERT_TRUE(seen.is_ok()) << seen.status().to_string();
  EXPECT_EQ(*seen, *l);
  // The wait ends at a leader of another epoch, or at anything that is not a leader.
  EXPECT_TRUE(observe_line_ends_wait(line, kElection, 0));
  EXPECT_FALSE(observe_line_ends_wait(line, kElection, 2));
  EXPECT_TRUE(observe_line_ends_wait(line, kElection, 1));
  EXPECT_FALSE(observe_line_ends_wait("", kElection, 2));
  EXPECT_TRUE(observe_line_ends_wait("garbage", kElection, 2));
  const char* error =
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})";
  EXPECT_TRUE(observe_line_ends_wait(error, kElection, 2));
  EXPECT_EQ(decode_observe_line(error, kElection).code(), Code::kUnavailable);
  EXPECT_EQ(decode_observe_line(R"({"result":{"header":{}}})", kElection).code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace quire
