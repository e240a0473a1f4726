#include "coord/etcd_gateway.h"

#include <array>
#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace quire {

namespace {

using Json = nlohmann::json;

// gRPC status codes the gateway reports (google.golang.org/grpc/codes).
enum GrpcCode : int64_t {
  kGrpcCancelled = 1,
  kGrpcUnknown = 2,
  kGrpcInvalidArgument = 3,
  kGrpcDeadlineExceeded = 4,
  kGrpcNotFound = 5,
  kGrpcResourceExhausted = 8,
  kGrpcFailedPrecondition = 9,
  kGrpcOutOfRange = 11,
  kGrpcUnavailable = 14,
};
constexpr int kHttpOk = 200;
constexpr std::string_view kLeaseNotFound = "requested lease not found";
constexpr std::string_view kNoLeader = "election: no leader";
// An error message quoted in a Status is cut to this many bytes.
constexpr size_t kQuotedBytesMax = 200;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Status malformed(std::string_view what) {
  return invalid_argument(fmt::format("malformed etcd answer: {}", what));
}

std::string quoted(std::string_view text) {
  return std::string(text.substr(0, kQuotedBytesMax));
}

// The body parsed as one JSON object; InvalidArgument otherwise.
Result<Json> parse_object(std::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return malformed("not JSON");
  if (!j.is_object()) return malformed("not a JSON object");
  return j;
}

const Json* member(const Json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

// An int64 field: a JSON string of decimal digits (the gateway's form) or a JSON integer.
// nullopt when absent (a zero value the gateway omitted); InvalidArgument when malformed.
Result<std::optional<int64_t>> int64_field(const Json& object, const char* name) {
  const Json* v = member(object, name);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
      return malformed(fmt::format("{} out of range", name));
    }
    return std::optional<int64_t>(v->get<int64_t>());
  }
  if (!v->is_string()) return malformed(fmt::format("{} is not an integer", name));
  const std::string& s = v->get_ref<const std::string&>();
  int64_t out = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return malformed(fmt::format("{} is not a decimal integer", name));
  }
  return std::optional<int64_t>(out);
}

// A required positive int64 field.
Result<int64_t> positive_field(const Json& object, const char* name) {
  Result<std::optional<int64_t>> v = int64_field(object, name);
  if (!v.is_ok()) return v.status();
  if (!v->has_value() || **v <= 0)
    return malformed(fmt::format("{} missing or not positive", name));
  return **v;
}

// A lease TTL in seconds, as etcd answers it: positive and at most etcd's own bound
// (MaxLeaseTTL, 9,000,000,000 s), so that it converts to Nanos without overflow.
Result<Nanos> ttl_seconds(int64_t seconds) {
  constexpr int64_t kEtcdLeaseTtlMaxSeconds = 9'000'000'000;
  if (seconds <= 0) return malformed("TTL not positive");
  if (seconds > kEtcdLeaseTtlMaxSeconds) {
    return malformed(fmt::format("TTL {} s is beyond etcd's bound", seconds));
  }
  return Nanos(std::chrono::seconds(seconds));
}

// A base64 field decoded; "" when absent (empty bytes are omitted like any zero value).
Result<std::string> bytes_field(const Json& object, const char* name) {
  const Json* v = member(object, name);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) return malformed(fmt::format("{} is not a string", name));
  Result<std::string> decoded = base64_decode(v->get_ref<const std::string&>());
  if (!decoded.is_ok()) return malformed(fmt::format("{}: {}", name, decoded.status().message()));
  return decoded;
}

std::string int64_string(int64_t v) {
  return std::to_string(v);
}

// A gRPC code and message to a Status (see the header for the mapping).
Status grpc_status(int64_t code, std::string_view message) {
  std::string text = fmt::format("etcd: {} (gRPC code {})", quoted(message), code);
  switch (code) {
    case kGrpcNotFound:
      return not_found(std::move(text));
    case kGrpcUnavailable:
    case kGrpcCancelled:
      return unavailable(std::move(text));
    case kGrpcDeadlineExceeded:
      return deadline_exceeded(std::move(text));
    case kGrpcResourceExhausted:
      return busy(std::move(text));
    case kGrpcInvalidArgument:
    case kGrpcFailedPrecondition:
    case kGrpcOutOfRange:
      return invalid_argument(std::move(text));
    case kGrpcUnknown:
      // etcd's election server returns some errors untyped.
      if (message.find(kLeaseNotFound) != std::string_view::npos ||
          message.find(kNoLeader) != std::string_view::npos) {
        return not_found(std::move(text));
      }
      return unavailable(std::move(text));
    default:
      // Permission, authentication, unimplemented: a configuration problem, not retriable.
      return invalid_argument(std::move(text));
  }
}

// The object under "result" of a stream line, or the stream's error.
Result<Json> stream_result(std::string_view line) {
  Result<Json> j = parse_object(line);
  if (!j.is_ok()) return j.status();
  if (const Json* error = member(*j, "error")) {
    if (!error->is_object()) return gateway_error(kHttpOk, line);
    const Json* message = member(*error, "message");
    Result<std::optional<int64_t>> code = int64_field(*error, "grpc_code");
    if (!code.is_ok() || !code->has_value()) return malformed("stream error without a code");
    return grpc_status(**code, message && message->is_string()
                                   ? std::string_view(message->get_ref<const std::string&>())
                                   : std::string_view());
  }
  const Json* result = member(*j, "result");
  if (result == nullptr || !result->is_object()) return malformed("stream line without result");
  return *result;
}

// The first line of a stream's body (the gateway ends each with a newline).
std::string_view first_line(std::string_view body) {
  size_t nl = body.find('\n');
  return nl == std::string_view::npos ? body : body.substr(0, nl);
}

// A leadership from an etcd KeyValue (leader and observe answers).
Result<Leadership> leadership_from_kv(const Json& kv, std::string_view election) {
  if (!kv.is_object()) return malformed("kv is not an object");
  Leadership l;
  l.election = std::string(election);
  Result<std::string> key = bytes_field(kv, "key");
  if (!key.is_ok()) return key.status();
  if (key->size() <= election.size() + 1 || key->compare(0, election.size(), election) != 0 ||
      (*key)[election.size()] != '/') {
    return malformed("leader key is not under the election");
  }
  l.key = std::move(*key);
  Result<int64_t> rev = positive_field(kv, "create_revision");
  if (!rev.is_ok()) return rev.status();
  l.epoch = static_cast<uint64_t>(*rev);
  Result<std::optional<int64_t>> lease = int64_field(kv, "lease");
  if (!lease.is_ok()) return lease.status();
  if (lease->value_or(0) < 0) return malformed("negative lease");
  l.lease = lease->value_or(0);
  Result<std::string> value = bytes_field(kv, "value");
  if (!value.is_ok()) return value.status();
  l.value = std::move(*value);
  return l;
}

// The body of a successful unary answer, or the error of any other.
Result<Json> success_object(const GatewayReply& reply) {
  if (reply.http_status != kHttpOk) return gateway_error(reply.http_status, reply.body);
  return parse_object(reply.body);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint32_t(uint8_t(bytes[i + 2]));
    for (int shift : {18, 12, 6, 0}) out.push_back(kBase64Alphabet[(v >> shift) & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return invalid_argument("base64 length is not a multiple of 4");
  std::array<int8_t, 256> value;
  value.fill(-1);
  for (size_t i = 0; i < kBase64Alphabet.size(); ++i)
    value[uint8_t(kBase64Alphabet[i])] = int8_t(i);
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t pads =
        last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int8_t d = 0;
      if (k >= 4 - pads) {
        d = 0;  // a pad
      } else {
        d = value[uint8_t(c)];
        if (d < 0) return invalid_argument("base64 has a character outside the alphabet");
      }
      v = (v << 6) | uint32_t(d);
    }
    out.push_back(char(v >> 16));
    if (pads < 2) out.push_back(char((v >> 8) & 0xff));
    if (pads < 1) out.push_back(char(v & 0xff));
    // Canonical form only: the bits a pad stands for must be zero.
    if ((pads == 1 && (v & 0xff) != 0) || (pads == 2 && (v & 0xffff) != 0)) {
      return invalid_argument("base64 has nonzero bits under its padding");
    }
  }
  return out;
}

std::string candidate_key(std::string_view election, int64_t lease) {
  return fmt::format("{}/{:x}", election, lease);
}

std::string grant_request(Nanos ttl) {
  const int64_t seconds = std::chrono::ceil<std::chrono::seconds>(ttl).count();
  return Json{{"TTL", int64_string(seconds)}}.dump();
}

std::string lease_request(int64_t lease) {
  return Json{{"ID", int64_string(lease)}}.dump();
}

std::string campaign_request(std::string_view election, int64_t lease, std::string_view value) {
  return Json{{"name", base64_encode(election)},
              {"lease", int64_string(lease)},
              {"value", base64_encode(value)}}
      .dump();
}

std::string election_request(std::string_view election) {
  return Json{{"name", base64_encode(election)}}.dump();
}

std::string resign_request(const Leadership& who) {
  Json leader = {{"name", base64_encode(who.election)},
                 {"key", base64_encode(who.key)},
                 {"rev", std::to_string(who.epoch)},
                 {"lease", int64_string(who.lease)}};
  return Json{{"leader", std::move(leader)}}.dump();
}

std::string withdraw_request(std::string_view election, int64_t lease) {
  const std::string key = base64_encode(candidate_key(election, lease));
  Json compare = {{"target", "LEASE"}, {"key", key}, {"lease", int64_string(lease)}};
  Json remove = {{"request_delete_range", {{"key", key}}}};
  Json txn;
  txn["compare"] = Json::array({std::move(compare)});
  txn["success"] = Json::array({std::move(remove)});
  return txn.dump();
}

Status gateway_error(int http_status, std::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    Result<std::optional<int64_t>> code = int64_field(j, "code");
    const Json* message = member(j, "message");
    if (code.is_ok() && code->has_value()) {
      return grpc_status(**code, message && message->is_string()
                                     ? std::string_view(message->get_ref<const std::string&>())
                                     : std::string_view())
          .with("http_status", static_cast<uint64_t>(http_status));
    }
  }
  // Not the gateway's error shape: a proxy, or something that is not etcd.
  std::string text = fmt::format("etcd answered HTTP {}: {}", http_status, quoted(body));
  if (http_status >= 500 && http_status <= 599) return unavailable(std::move(text));
  if (http_status == 429) return busy(std::move(text));
  return invalid_argument(std::move(text));
}

Result<CoordinatorLease> decode_grant(const GatewayReply& reply) {
  Result<Json> j = success_object(reply);
  if (!j.is_ok()) return j.status();
  if (const Json* error = member(*j, "error"); error && error->is_string() && !error->empty()) {
    return gateway_error(reply.http_status, reply.body);
  }
  Result<int64_t> id = positive_field(*j, "ID");
  if (!id.is_ok()) return id.status();
  Result<int64_t> ttl = positive_field(*j, "TTL");
  if (!ttl.is_ok()) return ttl.status();
  Result<Nanos> granted = ttl_seconds(*ttl);
  if (!granted.is_ok()) return granted.status();
  return CoordinatorLease{*id, *granted};
}

Result<Nanos> decode_keep_alive(const GatewayReply& reply, int64_t lease) {
  if (reply.http_status != kHttpOk) return gateway_error(reply.http_status, reply.body);
  Result<Json> result = stream_result(first_line(reply.body));
  if (!result.is_ok()) return result.status();
  Result<std::optional<int64_t>> id = int64_field(*result, "ID");
  if (!id.is_ok()) return id.status();
  if (id->has_value() && **id != lease) return malformed("keepalive answered another lease");
  Result<std::optional<int64_t>> ttl = int64_field(*result, "TTL");
  if (!ttl.is_ok()) return ttl.status();
  // etcd answers an unknown or expired lease with TTL 0, which the gateway omits.
  if (!ttl->has_value() || **ttl == 0) {
    return Status(Code::kNotFound, "etcd: requested lease not found").with("lease", lease);
  }
  return ttl_seconds(**ttl);
}

Status decode_revoke(const GatewayReply& reply) {
  Status st = decode_header_only(reply);
  return st.code() == Code::kNotFound ? Status() : st;
}

Result<Leadership> decode_campaign(const GatewayReply& reply, std::string_view election,
                                   int64_t lease, std::string_view value) {
  Result<Json> j = success_object(reply);
  if (!j.is_ok()) return j.status();
  const Json* leader = member(*j, "leader");
  if (leader == nullptr || !leader->is_object()) return malformed("campaign without leader");
  Result<std::string> name = bytes_field(*leader, "name");
  if (!name.is_ok()) return name.status();
  if (*name != election) return malformed("campaign answered another election");
  Leadership l;
  l.election = std::string(election);
  Result<std::string> key = bytes_field(*leader, "key");
  if (!key.is_ok()) return key.status();
  Result<int64_t> rev = positive_field(*leader, "rev");
  if (!rev.is_ok()) return rev.status();
  Result<int64_t> leader_lease = positive_field(*leader, "lease");
  if (!leader_lease.is_ok()) return leader_lease.status();
  // etcd answers a campaign with the candidate's own key: another lease's is not ours.
  if (*leader_lease != lease) return malformed("campaign answered another lease's key");
  if (*key != candidate_key(election, lease)) return malformed("campaign key is not the lease's");
  l.key = std::move(*key);
  l.epoch = static_cast<uint64_t>(*rev);
  l.lease = lease;
  l.value = std::string(value);
  return l;
}

Result<Leadership> decode_leader(const GatewayReply& reply, std::string_view election) {
  Result<Json> j = success_object(reply);
  if (!j.is_ok()) return j.status();
  const Json* kv = member(*j, "kv");
  if (kv == nullptr) return not_found("etcd: election has no leader");
  return leadership_from_kv(*kv, election);
}

Result<Leadership> decode_observe_line(std::string_view line, std::string_view election) {
  Result<Json> result = stream_result(line);
  if (!result.is_ok()) return result.status();
  const Json* kv = member(*result, "kv");
  if (kv == nullptr) return malformed("observe result without kv");
  return leadership_from_kv(*kv, election);
}

bool observe_line_ends_wait(std::string_view line, std::string_view election,
                            uint64_t known_epoch) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return false;
  Result<Leadership> l = decode_observe_line(line, election);
  return !l.is_ok() || known_epoch == 0 || l->epoch != known_epoch;
}

Status decode_header_only(const GatewayReply& reply) {
  Result<Json> j = success_object(reply);
  return j.is_ok() ? Status() : j.status();
}

}  // namespace quire
