// A simulated KMS for the deterministic world: one service (the CMK versions and the
// fault knobs) shared by every node, and a per-node client that waits on the calling
// node's executor, so a node crash cancels its calls like any other task.
//
// Faults: latency drawn per call from [latency_min, latency_max]; `unavailable` makes
// every call fail with Unavailable after the latency; `refused` versions fail with
// NotFound as if retired or disabled. Counters let tests see what happened.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "crypto/kms.h"
#include "runtime/env.h"

namespace quire {

struct SimKmsFaults {
  Nanos latency_min = Nanos(0);
  Nanos latency_max = Nanos(0);
  bool unavailable = false;
  std::set<uint32_t> refused;
  // A KMS that answers garbage: every wrap's blob has a byte flipped (it does not unwrap).
  bool corrupt_wraps = false;
};

class SimKmsService {
 public:
  // The CMK material comes from `random` (the world's "kms" stream); starts at version 1.
  explicit SimKmsService(Random& random, std::string key_id = "quire-cmk");
  ~SimKmsService();

  SimKmsFaults& faults() { return faults_; }
  uint64_t calls() const { return calls_; }
  uint64_t failed_calls() const { return failed_calls_; }
  const std::string& key_id() const { return key_id_; }

 private:
  friend class SimKms;
  struct Impl;
  std::string key_id_;
  SimKmsFaults faults_;
  uint64_t calls_ = 0;
  uint64_t failed_calls_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Every call counts in calls(); one that returns an error, for any reason, also counts in
// failed_calls().
class SimKms : public Kms {
 public:
  SimKms(SimKmsService& service, Env& env);
  ~SimKms() override;

  const std::string& key_id() const override { return service_.key_id(); }
  Task<Result<uint32_t>> active_version() override;
  Task<Result<WrappedKey>> wrap(Bytes context, SecretKey key) override;
  Task<Result<SecretKey>> unwrap(Bytes context, WrappedKey wrapped) override;
  Task<Result<uint32_t>> rotate() override;
  Task<Status> retire(uint32_t version) override;
  Task<Result<std::vector<uint32_t>>> versions() override;

 private:
  // Waits out the call's latency, then fails it if the service is unavailable.
  Task<Status> begin_call(std::string op);
  // NotFound for a version the service refuses or does not hold.
  Status refused(uint32_t version, std::string_view why);
  // Counts a failed call; returns `st`.
  Status failed(Status st);

  SimKmsService& service_;
  Env& env_;
  std::unique_ptr<Random> latency_random_;
};

}  // namespace quire
