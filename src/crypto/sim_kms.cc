#include "crypto/sim_kms.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "crypto/cmk_versions.h"
#include "runtime/sim/sim_random.h"

namespace quire {

namespace {

CmkVersions first_version(Random& random, const std::string& key_id) {
  CmkVersions versions(key_id);
  versions.add(1, SecretKey::generate(random));
  versions.activate(1);
  return versions;
}

}  // namespace

struct SimKmsService::Impl {
  // Members initialize in order: version 1's key is the first draw from `random`.
  Impl(Random& random, const std::string& key_id)
      : versions(first_version(random, key_id)), random(random.next_u64()) {}

  CmkVersions versions;
  // The service's own stream (nonces, rotated keys), so what it draws depends on the order
  // of the calls only, not on which node made them.
  SimRandom random;
};

SimKmsService::SimKmsService(Random& random, std::string key_id)
    : key_id_(std::move(key_id)), impl_(std::make_unique<Impl>(random, key_id_)) {}

SimKmsService::~SimKmsService() = default;

SimKms::SimKms(SimKmsService& service, Env& env)
    : service_(service), env_(env), latency_random_(env.random_stream("kms")) {}

SimKms::~SimKms() = default;

// Every call waits out its latency on the caller's executor first (so a crash of the
// calling node cancels it), then meets the service's faults as they are at that moment.
Task<Status> SimKms::begin_call(std::string op) {
  service_.calls_++;
  const SimKmsFaults& faults = service_.faults_;
  Nanos latency = latency_random_->duration(faults.latency_min,
                                            std::max(faults.latency_min, faults.latency_max));
  Status slept = co_await env_.executor().sleep(latency);
  if (!slept.is_ok()) co_return failed(std::move(slept));
  if (service_.faults_.unavailable) {
    co_return failed(
        unavailable(fmt::format("KMS for CMK '{}' is unavailable ({})", service_.key_id_, op)));
  }
  co_return Status();
}

Status SimKms::refused(uint32_t version, std::string_view why) {
  service_.failed_calls_++;
  return service_.impl_->versions.version_not_found(version, why);
}

Status SimKms::failed(Status st) {
  service_.failed_calls_++;
  return st;
}

Task<Result<uint32_t>> SimKms::active_version() {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("active_version"));
  co_return service_.impl_->versions.active();
}

Task<Result<WrappedKey>> SimKms::wrap(Bytes context, SecretKey key) {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("wrap"));
  SimKmsService::Impl& impl = *service_.impl_;
  uint32_t active = impl.versions.active();
  if (service_.faults_.refused.count(active) > 0) co_return refused(active, "cannot wrap");
  Result<WrappedKey> wrapped = impl.versions.wrap(context, key, impl.random);
  if (!wrapped.is_ok()) co_return failed(wrapped.status());
  if (service_.faults_.corrupt_wraps && !wrapped->blob.empty()) wrapped->blob.back() ^= 0x01;
  co_return wrapped;
}

Task<Result<SecretKey>> SimKms::unwrap(Bytes context, WrappedKey wrapped) {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("unwrap"));
  if (service_.faults_.refused.count(wrapped.cmk_version) > 0)
    co_return refused(wrapped.cmk_version, "cannot unwrap");
  Result<SecretKey> key = service_.impl_->versions.unwrap(context, wrapped);
  if (!key.is_ok()) co_return failed(key.status());
  co_return key;
}

Task<Result<uint32_t>> SimKms::rotate() {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("rotate"));
  SimKmsService::Impl& impl = *service_.impl_;
  Result<uint32_t> version = impl.versions.next_version();
  if (!version.is_ok()) co_return failed(version.status());
  impl.versions.add(*version, SecretKey::generate(impl.random));
  impl.versions.activate(*version);
  co_return *version;
}

Task<Status> SimKms::retire(uint32_t version) {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("retire"));
  SimKmsService::Impl& impl = *service_.impl_;
  Status allowed = impl.versions.check_retire(version);
  if (!allowed.is_ok()) co_return failed(std::move(allowed));
  impl.versions.remove(version);
  co_return Status();
}

Task<Result<std::vector<uint32_t>>> SimKms::versions() {
  QUIRE_CO_RETURN_IF_ERROR(co_await begin_call("versions"));
  co_return service_.impl_->versions.versions();
}

}  // namespace quire
