// The real chaos harness's operation history: every write and read its clients issued,
// with start and end times and an outcome, and the encoding of the keys and values they
// use, so the checkers (chaos_checkers.h) can tell which write a value read came from.
//
// Every key belongs to one client, which alone writes it, one write at a time: the order
// of a key's writes is its writer's order (`seq`, from 1). Key `index` < kHotKeysPerClient
// is one of the client's hot keys (overwritten all the time); above it every key is
// written once. Values are unique and start with kValueCanary (the plaintext checker's
// needle); keys start with kKeyCanary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "cluster/resp_client.h"

namespace quire::cluster {

inline constexpr std::string_view kValueCanary = "quire-canary:";
inline constexpr std::string_view kKeyCanary = "quirekey:";
inline constexpr uint32_t kHotKeysPerClient = 16;
inline constexpr size_t kValueBytes = 64;

enum class OpKind : uint8_t { kWrite = 1, kRead = 2 };
// ok: acknowledged (a write) or answered (a read). error: refused or not committed
// (READONLY, MASTERDOWN, LOADING, "TRYAGAIN write not committed", any other error
// reply): a write with this outcome must never be seen. unknown: it may or may not have
// taken effect (a timeout, a broken connection, "TRYAGAIN write outcome unknown").
enum class OpOutcome : uint8_t { kOk = 1, kError = 2, kUnknown = 3 };
// Where a read went: to the node its client believed to be the primary, or to one node
// whatever its role (a per-node reader).
enum class ReadPath : uint8_t { kPrimary = 1, kNode = 2 };

struct Op {
  int64_t start_us = 0;  // since the run began (steady clock)
  int64_t end_us = 0;
  uint32_t owner = 0;  // the key's client
  uint32_t key_index = 0;
  // A write: its value's seq. A read: the seq of the value it returned (0: no value).
  uint64_t seq = 0;
  uint16_t node = 0;  // compute node index it was sent to
  OpKind kind = OpKind::kWrite;
  OpOutcome outcome = OpOutcome::kOk;
  ReadPath path = ReadPath::kPrimary;
  bool foreign_value = false;  // a read returned a value that is not one of the owner's
};

std::string chaos_key(uint32_t owner, uint32_t index);
// The (owner, index) of a key chaos_key made; nullopt for any other key.
struct KeyId {
  uint32_t owner = 0;
  uint32_t index = 0;
  friend bool operator==(const KeyId&, const KeyId&) = default;
};
std::optional<KeyId> parse_chaos_key(std::string_view key);

// A value of kValueBytes: kValueCanary, the owner, the seq, then filler.
std::string chaos_value(uint32_t owner, uint64_t seq);
struct ValueId {
  uint32_t owner = 0;
  uint64_t seq = 0;
};
std::optional<ValueId> parse_chaos_value(std::string_view value);

// A write's outcome from its reply (see OpOutcome).
OpOutcome classify_write(const Result<RespReply>& reply);
// Whether an error reply says the node is not the primary (look for another).
bool is_not_primary_error(std::string_view error);

}  // namespace quire::cluster
