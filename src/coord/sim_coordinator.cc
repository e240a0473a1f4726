#include "coord/sim_coordinator.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/crc32c.h"

namespace quire {

namespace {
constexpr const char* kComponent = "coordinator";
constexpr const char* kStateFile = "coord.state";
constexpr const char* kStateTemp = "coord.state.tmp";
constexpr uint32_t kStateMagic = 0x44524f43;  // "CORD"
constexpr uint64_t kIdMax = (uint64_t{1} << 63) - 1;

enum class CoordOp : uint8_t {
  kGrant = 1,
  kKeepAlive = 2,
  kRevoke = 3,
  kCampaign = 4,
  kLeader = 5,
  kObserve = 6,
  kResign = 7,
};

Status malformed(const char* what) {
  return Status(Code::kInvalidArgument, fmt::format("malformed coordinator message: {}", what));
}

Status lease_not_found(int64_t lease) {
  return Status(Code::kNotFound, "requested lease not found").with("lease", lease);
}

Bytes varints(std::initializer_list<uint64_t> values) {
  Bytes out;
  ByteWriter w(out);
  for (uint64_t v : values) w.put_varint64(v);
  return out;
}

// Reads a positive id below 2^63 (leases and epochs travel as varints).
Status get_id(ByteReader& r, int64_t* out) {
  uint64_t v = 0;
  if (!r.get_varint64(&v).is_ok() || v == 0 || v > kIdMax) return malformed("id");
  *out = static_cast<int64_t>(v);
  return Status();
}
}  // namespace

void encode_leadership(const Leadership& l, Bytes& out) {
  ByteWriter w(out);
  w.put_string(l.election);
  w.put_string(l.key);
  w.put_varint64(l.epoch);
  w.put_varint64(static_cast<uint64_t>(l.lease));
  w.put_string(l.value);
}

Result<Leadership> decode_leadership(ByteView in) {
  ByteReader r(in);
  Leadership l;
  uint64_t lease = 0;
  QUIRE_RETURN_IF_ERROR(r.get_string(&l.election, 1u << 16));
  QUIRE_RETURN_IF_ERROR(r.get_string(&l.key, 1u << 16));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&l.epoch));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&lease));
  QUIRE_RETURN_IF_ERROR(r.get_string(&l.value, 1u << 20));
  if (lease > kIdMax || l.epoch == 0 || !r.at_end()) return malformed("leadership");
  l.lease = static_cast<int64_t>(lease);
  return l;
}

// ---- The node

SimCoordinatorNode::SimCoordinatorNode(Env& env, SimCoordinatorOptions options)
    : env_(env),
      options_(std::move(options)),
      mu_(env.executor().scheduler()),
      changed_(env.executor().scheduler()) {}

SimCoordinatorNode::~SimCoordinatorNode() = default;

void SimCoordinatorNode::start() {
  env_.executor().spawn("coordinator", run());
}

Task<void> SimCoordinatorNode::run() {
  Status loaded = co_await load_state();
  if (!loaded.is_ok()) {
    env_.log().error(kComponent, 46001, "cannot read the coordinator's state; not serving",
                     {{"error", loaded}});
    co_return;
  }
  // Every lease starts a fresh TTL now: a restarted coordinator cannot know how long its
  // leases went unrenewed while it was down.
  const MonoTime now = env_.executor().now();
  for (auto& [id, l] : leases_) l.expires_at = now + l.ttl;
  rpc_ = std::make_unique<RpcServer>(env_, [this](const RpcRequest& r) { return handle(r); });
  Status st = rpc_->start(options_.listen);
  if (!st.is_ok()) {
    env_.log().error(kComponent, 46002, "cannot listen",
                     {{"address", options_.listen}, {"error", st}});
    co_return;
  }
  serving_ = true;
  env_.log().info(kComponent, 46003, "coordinator serving",
                  {{"revision", revision_}, {"leases", leases_.size()}, {"keys", kvs_.size()}});
  env_.executor().spawn("lease-expiry", expiry_loop());
}

Task<void> SimCoordinatorNode::expiry_loop() {
  while (true) {
    if (!(co_await env_.executor().sleep(options_.expiry_check_interval)).is_ok()) co_return;
    if (!(co_await mu_.lock()).is_ok()) co_return;
    MutexGuard guard(mu_);
    const MonoTime now = env_.executor().now();
    std::vector<int64_t> expired;
    for (const auto& [id, l] : leases_) {
      if (l.expires_at <= now) expired.push_back(id);
    }
    if (expired.empty()) continue;
    for (int64_t id : expired) {
      revoke_locked(id);
      env_.log().info(kComponent, 46004, "lease expired", {{"lease", id}});
    }
    if (!(co_await commit()).is_ok()) co_return;
  }
}

Task<RpcResponse> SimCoordinatorNode::handle(const RpcRequest& request) {
  RpcResponse resp;
  auto out = co_await dispatch(request.op, request.body);
  if (out.is_ok()) {
    resp.body = std::move(out).value();
  } else {
    resp.status = out.status();
  }
  co_return resp;
}

Task<Result<Bytes>> SimCoordinatorNode::dispatch(uint8_t op, ByteView body) {
  if (!serving_) co_return Status(Code::kUnavailable, "coordinator is not serving");
  switch (static_cast<CoordOp>(op)) {
    case CoordOp::kGrant:
      co_return co_await op_grant(body);
    case CoordOp::kKeepAlive:
      co_return co_await op_keepalive(body);
    case CoordOp::kRevoke:
      co_return co_await op_revoke(body);
    case CoordOp::kCampaign:
      co_return co_await op_campaign(body);
    case CoordOp::kLeader:
      co_return co_await op_leader(body);
    case CoordOp::kObserve:
      co_return co_await op_observe(body);
    case CoordOp::kResign:
      co_return co_await op_resign(body);
  }
  co_return Status(Code::kInvalidArgument, "unknown coordinator operation").with("op", op);
}

Task<Status> SimCoordinatorNode::commit() {
  revision_++;
  Bytes state = encode_state();
  Disk& disk = env_.disk();
  auto f = co_await disk.open(kStateTemp, {.create = true});
  Status st = f.status();
  if (st.is_ok()) st = co_await (*f)->truncate(0);
  if (st.is_ok()) st = co_await (*f)->write(0, state);
  if (st.is_ok()) st = co_await (*f)->sync();
  if (st.is_ok()) st = co_await disk.rename(kStateTemp, kStateFile);
  if (st.is_ok()) st = co_await disk.sync_dir("");
  if (!st.is_ok()) {
    // What is durable is unknown: restart and serve what the disk says.
    serving_ = false;
    env_.log().error(kComponent, 46005, "cannot persist the coordinator's state; restarting",
                     {{"error", st}});
    env_.request_restart(st);
    co_return st;
  }
  changed_.notify_all();
  co_return Status();
}

Deadline SimCoordinatorNode::wait_deadline(uint64_t wait_ns) const {
  const uint64_t cap = static_cast<uint64_t>(options_.wait_max.count());
  return env_.executor().deadline_after(Nanos(static_cast<int64_t>(std::min(wait_ns, cap))));
}

Task<Result<Bytes>> SimCoordinatorNode::op_grant(ByteView body) {
  ByteReader r(body);
  uint64_t ttl_ns = 0;
  if (!r.get_varint64(&ttl_ns).is_ok() || ttl_ns > kIdMax) co_return malformed("ttl");
  QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
  MutexGuard guard(mu_);
  if (leases_.size() >= options_.leases_max) {
    co_return Status(Code::kBusy, "too many leases").with("leases", leases_.size());
  }
  const Nanos ttl = std::max(Nanos(static_cast<int64_t>(ttl_ns)), kLeaseTtlMin);
  int64_t id = 0;
  while (id == 0 || leases_.count(id) > 0) {
    id = static_cast<int64_t>(env_.random().next_u64() & kIdMax);
  }
  leases_[id] = LeaseState{ttl, env_.executor().now() + ttl};
  QUIRE_CO_RETURN_IF_ERROR(co_await commit());
  co_return varints({static_cast<uint64_t>(id), static_cast<uint64_t>(ttl.count())});
}

Task<Result<Bytes>> SimCoordinatorNode::op_keepalive(ByteView body) {
  ByteReader r(body);
  int64_t id = 0;
  QUIRE_CO_RETURN_IF_ERROR(get_id(r, &id));
  QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
  MutexGuard guard(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) co_return lease_not_found(id);
  // Renewing changes no durable state: a restart renews every lease anyway.
  it->second.expires_at = env_.executor().now() + it->second.ttl;
  co_return varints({static_cast<uint64_t>(it->second.ttl.count())});
}

bool SimCoordinatorNode::revoke_locked(int64_t lease) {
  if (leases_.erase(lease) == 0) return false;
  std::erase_if(kvs_, [lease](const auto& e) { return e.second.lease == lease; });
  return true;
}

Task<Result<Bytes>> SimCoordinatorNode::op_revoke(ByteView body) {
  ByteReader r(body);
  int64_t id = 0;
  QUIRE_CO_RETURN_IF_ERROR(get_id(r, &id));
  QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
  MutexGuard guard(mu_);
  if (revoke_locked(id)) QUIRE_CO_RETURN_IF_ERROR(co_await commit());
  co_return Bytes();
}

std::optional<Leadership> SimCoordinatorNode::current_leader(const std::string& election) const {
  const std::string prefix = election + "/";
  std::optional<Leadership> best;
  for (auto it = kvs_.lower_bound(prefix);
       it != kvs_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (!best || it->second.create_revision < best->epoch) {
      best = Leadership{election, it->first, it->second.create_revision, it->second.lease,
                        it->second.value};
    }
  }
  return best;
}

bool SimCoordinatorNode::lower_key_exists(const std::string& election, uint64_t epoch) const {
  auto l = current_leader(election);
  return l && l->epoch < epoch;
}

// Puts the candidate's key if it is not there (or republishes its value); the caller
// commits when *changed.
Result<Leadership> SimCoordinatorNode::put_candidate(const std::string& election, int64_t lease,
                                                     const std::string& value, bool* changed) {
  if (leases_.count(lease) == 0) return lease_not_found(lease);
  const std::string key = fmt::format("{}/{:x}", election, lease);
  auto it = kvs_.find(key);
  *changed = false;
  if (it == kvs_.end()) {
    if (kvs_.size() >= options_.keys_max) {
      return Status(Code::kBusy, "too many keys").with("keys", kvs_.size());
    }
    // commit() moves the revision on: the key is created at the next revision.
    it = kvs_.emplace(key, Kv{value, revision_ + 1, revision_ + 1, lease}).first;
    *changed = true;
  } else if (it->second.value != value) {
    it->second.value = value;
    it->second.mod_revision = revision_ + 1;
    *changed = true;
  }
  return Leadership{election, key, it->second.create_revision, lease, value};
}

Task<Result<Bytes>> SimCoordinatorNode::op_campaign(ByteView body) {
  ByteReader r(body);
  std::string election, value;
  int64_t lease = 0;
  uint64_t wait_ns = 0;
  if (!r.get_string(&election, options_.name_bytes_max).is_ok() || election.empty() ||
      !get_id(r, &lease).is_ok() || !r.get_string(&value, options_.value_bytes_max).is_ok() ||
      !r.get_varint64(&wait_ns).is_ok()) {
    co_return malformed("campaign");
  }
  const Deadline until = wait_deadline(wait_ns);
  Leadership mine;
  {
    QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
    MutexGuard guard(mu_);
    bool changed = false;
    auto put = put_candidate(election, lease, value, &changed);
    if (!put.is_ok()) co_return put.status();
    if (changed) QUIRE_CO_RETURN_IF_ERROR(co_await commit());
    mine = std::move(put).value();
  }
  // Wait for every lower key to go. Like etcd 3.4, the candidate's own key is not
  // checked again here: the caller confirms with leader().
  while (true) {
    {
      QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
      MutexGuard guard(mu_);  // only committed state is looked at
      if (!lower_key_exists(election, mine.epoch)) break;
    }
    Status waited = co_await changed_.wait(until);
    if (waited.code() == Code::kDeadlineExceeded) {
      QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
      MutexGuard guard(mu_);
      auto it = kvs_.find(mine.key);
      if (it != kvs_.end() && it->second.create_revision == mine.epoch) {
        kvs_.erase(it);
        QUIRE_CO_RETURN_IF_ERROR(co_await commit());
      }
      co_return Status(Code::kDeadlineExceeded, "campaign withdrawn: not leader in time")
          .with("epoch", mine.epoch);
    }
    QUIRE_CO_RETURN_IF_ERROR(waited);
  }
  Bytes out;
  encode_leadership(mine, out);
  co_return out;
}

Task<Result<Bytes>> SimCoordinatorNode::op_leader(ByteView body) {
  ByteReader r(body);
  std::string election;
  if (!r.get_string(&election, options_.name_bytes_max).is_ok()) co_return malformed("election");
  // Linearizable: after every change committed before this request.
  QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
  MutexGuard guard(mu_);
  auto l = current_leader(election);
  if (!l) co_return Status(Code::kNotFound, "election has no leader");
  Bytes out;
  encode_leadership(*l, out);
  co_return out;
}

Task<Result<Bytes>> SimCoordinatorNode::op_observe(ByteView body) {
  ByteReader r(body);
  std::string election;
  uint64_t known = 0, wait_ns = 0;
  if (!r.get_string(&election, options_.name_bytes_max).is_ok() ||
      !r.get_varint64(&known).is_ok() || !r.get_varint64(&wait_ns).is_ok()) {
    co_return malformed("observe");
  }
  const Deadline until = wait_deadline(wait_ns);
  while (true) {
    {
      QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
      MutexGuard guard(mu_);  // only committed state is looked at
      auto l = current_leader(election);
      if (l && l->epoch != known) {
        Bytes out;
        encode_leadership(*l, out);
        co_return out;
      }
    }
    QUIRE_CO_RETURN_IF_ERROR(co_await changed_.wait(until));
  }
}

Task<Result<Bytes>> SimCoordinatorNode::op_resign(ByteView body) {
  ByteReader r(body);
  std::string election, key;
  uint64_t epoch = 0;
  if (!r.get_string(&election, options_.name_bytes_max).is_ok() ||
      !r.get_string(&key, options_.name_bytes_max).is_ok() || !r.get_varint64(&epoch).is_ok()) {
    co_return malformed("resign");
  }
  QUIRE_CO_RETURN_IF_ERROR(co_await mu_.lock());
  MutexGuard guard(mu_);
  auto it = kvs_.find(key);
  if (it != kvs_.end() && it->second.create_revision == epoch) {
    kvs_.erase(it);
    QUIRE_CO_RETURN_IF_ERROR(co_await commit());
  }
  co_return Bytes();
}

// ---- State file: magic, revision, leases (id, ttl), keys (key, value, create, mod,
// lease), then a masked crc32c of everything before it.

Bytes SimCoordinatorNode::encode_state() const {
  Bytes out;
  ByteWriter w(out);
  w.put_fixed32(kStateMagic);
  w.put_varint64(revision_);
  w.put_varint64(leases_.size());
  for (const auto& [id, l] : leases_) {
    w.put_varint64(static_cast<uint64_t>(id));
    w.put_varint64(static_cast<uint64_t>(l.ttl.count()));
  }
  w.put_varint64(kvs_.size());
  for (const auto& [key, kv] : kvs_) {
    w.put_string(key);
    w.put_string(kv.value);
    w.put_varint64(kv.create_revision);
    w.put_varint64(kv.mod_revision);
    w.put_varint64(static_cast<uint64_t>(kv.lease));
  }
  w.put_fixed32(crc32c::mask(crc32c::value(out.data(), out.size())));
  return out;
}

Status SimCoordinatorNode::decode_state(ByteView in) {
  if (in.size() < 8) return corruption("coordinator state too short");
  const size_t body = in.size() - 4;
  if (crc32c::unmask(decode_fixed32(in.data() + body)) != crc32c::value(in.data(), body)) {
    return corruption("coordinator state checksum mismatch");
  }
  ByteReader r(in.first(body));
  uint32_t magic = 0;
  uint64_t n = 0;
  QUIRE_RETURN_IF_ERROR(r.get_fixed32(&magic));
  if (magic != kStateMagic) return corruption("not a coordinator state file");
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&revision_));
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&n));
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id = 0, ttl = 0;
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&id));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&ttl));
    if (id == 0 || id > kIdMax || ttl > kIdMax) return corruption("bad lease in state");
    leases_[static_cast<int64_t>(id)] = LeaseState{Nanos(static_cast<int64_t>(ttl)), {}};
  }
  QUIRE_RETURN_IF_ERROR(r.get_varint64(&n));
  for (uint64_t i = 0; i < n; ++i) {
    std::string key;
    Kv kv;
    uint64_t lease = 0;
    QUIRE_RETURN_IF_ERROR(r.get_string(&key, options_.name_bytes_max));
    QUIRE_RETURN_IF_ERROR(r.get_string(&kv.value, options_.value_bytes_max));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&kv.create_revision));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&kv.mod_revision));
    QUIRE_RETURN_IF_ERROR(r.get_varint64(&lease));
    if (lease > kIdMax) return corruption("bad key lease in state");
    kv.lease = static_cast<int64_t>(lease);
    kvs_[key] = std::move(kv);
  }
  if (!r.at_end()) return corruption("trailing bytes in coordinator state");
  return Status();
}

Task<Status> SimCoordinatorNode::load_state() {
  auto exists = co_await env_.disk().exists(kStateFile);
  if (!exists.is_ok()) co_return exists.status();
  if (!*exists) co_return Status();  // a new coordinator
  auto f = co_await env_.disk().open(kStateFile, {});
  if (!f.is_ok()) co_return f.status();
  auto size = (*f)->size();
  if (!size.is_ok()) co_return size.status();
  if (*size > (64u << 20)) co_return corruption("coordinator state file too large");
  Bytes bytes(*size);
  auto n = co_await (*f)->read(0, bytes);
  if (!n.is_ok()) co_return n.status();
  bytes.resize(*n);
  co_return decode_state(bytes);
}

// ---- The client

SimCoordinatorClient::SimCoordinatorClient(Env& env, Address server)
    : env_(env), rpc_(env, std::move(server)) {}
SimCoordinatorClient::~SimCoordinatorClient() = default;

uint64_t SimCoordinatorClient::wait_ns(Deadline deadline) const {
  const Nanos left = deadline - env_.executor().now() - kAnswerMargin;
  return left.count() > 0 ? static_cast<uint64_t>(left.count()) : 0;
}

Task<Result<CoordinatorLease>> SimCoordinatorClient::grant_lease(Nanos ttl, Deadline deadline) {
  Bytes body = varints({static_cast<uint64_t>(std::max<int64_t>(ttl.count(), 0))});
  auto out =
      co_await rpc_.call(static_cast<uint8_t>(CoordOp::kGrant), 0, std::move(body), deadline);
  if (!out.is_ok()) co_return out.status();
  ByteReader r(*out);
  CoordinatorLease lease;
  uint64_t ttl_ns = 0;
  QUIRE_CO_RETURN_IF_ERROR(get_id(r, &lease.id));
  if (!r.get_varint64(&ttl_ns).is_ok() || ttl_ns > kIdMax) co_return malformed("grant answer");
  lease.ttl = Nanos(static_cast<int64_t>(ttl_ns));
  co_return lease;
}

Task<Result<Nanos>> SimCoordinatorClient::keep_alive(int64_t lease, Deadline deadline) {
  Bytes body = varints({static_cast<uint64_t>(lease)});
  auto out =
      co_await rpc_.call(static_cast<uint8_t>(CoordOp::kKeepAlive), 0, std::move(body), deadline);
  if (!out.is_ok()) co_return out.status();
  ByteReader r(*out);
  uint64_t ttl_ns = 0;
  if (!r.get_varint64(&ttl_ns).is_ok() || ttl_ns > kIdMax) co_return malformed("keepalive answer");
  co_return Nanos(static_cast<int64_t>(ttl_ns));
}

Task<Status> SimCoordinatorClient::revoke_lease(int64_t lease, Deadline deadline) {
  Bytes body = varints({static_cast<uint64_t>(lease)});
  auto out =
      co_await rpc_.call(static_cast<uint8_t>(CoordOp::kRevoke), 0, std::move(body), deadline);
  co_return out.status();
}

Task<Result<Leadership>> SimCoordinatorClient::call_leadership(uint8_t op, Bytes body,
                                                               Deadline deadline) {
  auto out = co_await rpc_.call(op, 0, std::move(body), deadline);
  if (!out.is_ok()) co_return out.status();
  co_return decode_leadership(*out);
}

Task<Result<Leadership>> SimCoordinatorClient::campaign(std::string election, int64_t lease,
                                                        std::string value, Deadline deadline) {
  Bytes body;
  ByteWriter w(body);
  w.put_string(election);
  w.put_varint64(static_cast<uint64_t>(lease));
  w.put_string(value);
  w.put_varint64(wait_ns(deadline));
  co_return co_await call_leadership(static_cast<uint8_t>(CoordOp::kCampaign), std::move(body),
                                     deadline);
}

Task<Result<Leadership>> SimCoordinatorClient::leader(std::string election, Deadline deadline) {
  Bytes body;
  ByteWriter(body).put_string(election);
  co_return co_await call_leadership(static_cast<uint8_t>(CoordOp::kLeader), std::move(body),
                                     deadline);
}

Task<Result<Leadership>> SimCoordinatorClient::observe(std::string election, uint64_t known_epoch,
                                                       Deadline deadline) {
  Bytes body;
  ByteWriter w(body);
  w.put_string(election);
  w.put_varint64(known_epoch);
  w.put_varint64(wait_ns(deadline));
  co_return co_await call_leadership(static_cast<uint8_t>(CoordOp::kObserve), std::move(body),
                                     deadline);
}

Task<Status> SimCoordinatorClient::resign(Leadership who, Deadline deadline) {
  Bytes body;
  ByteWriter w(body);
  w.put_string(who.election);
  w.put_string(who.key);
  w.put_varint64(who.epoch);
  auto out =
      co_await rpc_.call(static_cast<uint8_t>(CoordOp::kResign), 0, std::move(body), deadline);
  co_return out.status();
}

}  // namespace quire
