// Test support for keystore tests that need a KMS: one simulated node with a SimKms, and
// a helper that builds a keystore with real wrapped keys.
#pragma once

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/key_ring.h"
#include "crypto/keystore.h"
#include "crypto/sim_kms.h"
#include "runtime/sim/sim_world.h"
#include "support/sim_node.h"

namespace quire::test {

class KmsNode {
 public:
  explicit KmsNode(uint64_t seed = 1)
      : world_(seed), kms_random_(world_.random_stream("kms")), service_(*kms_random_) {
    node_ =
        world_.add_node("n1", [](Env&) { return std::make_unique<testing_support::IdleApp>(); });
    world_.start(node_);
    kms_ = std::make_unique<SimKms>(service_, env());
    random_ = env().random_stream("test-keys");
  }

  SimWorld& world() { return world_; }
  Env& env() { return *world_.env(node_); }
  SimKmsService& service() { return service_; }
  Kms& kms() { return *kms_; }
  Random& random() { return *random_; }

  // Runs `body` (returning Task<void>) on the node to completion.
  template <typename F>
  bool run(F body) {
    return testing_support::run_in_node(world_, env(), std::move(body));
  }

 private:
  SimWorld world_;
  std::unique_ptr<Random> kms_random_;
  SimKmsService service_;
  NodeId node_;
  std::unique_ptr<SimKms> kms_;
  std::unique_ptr<Random> random_;
};

// Inside a Task<void>: applies a change that must be OK, or fails the test and returns.
#define KS_CO_APPLY(keystore, change_result)                               \
  do {                                                                     \
    auto ks_change_ = (change_result);                                     \
    if (!ks_change_.is_ok()) {                                             \
      ADD_FAILURE() << "make change: " << ks_change_.status().to_string(); \
      co_return;                                                           \
    }                                                                      \
    ::quire::Status ks_applied_ = (keystore).apply(*ks_change_);           \
    if (!ks_applied_.is_ok()) {                                            \
      ADD_FAILURE() << "apply: " << ks_applied_.to_string();               \
      co_return;                                                           \
    }                                                                      \
  } while (0)

// Inside a Task<void>: a Status that must be OK.
#define KS_CO_OK(expr)                                          \
  do {                                                          \
    ::quire::Status ks_status_ = (expr);                        \
    if (!ks_status_.is_ok()) {                                  \
      ADD_FAILURE() << #expr << ": " << ks_status_.to_string(); \
      co_return;                                                \
    }                                                           \
  } while (0)

inline KeystoreChange activate_kek(uint32_t version) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kActivateKek;
  c.kek_version = version;
  return c;
}

inline KeystoreChange retire_kek(uint32_t version) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kRetireKek;
  c.kek_version = version;
  return c;
}

inline KeystoreChange destroy_kek(uint32_t version) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kDestroyKek;
  c.kek_version = version;
  return c;
}

}  // namespace quire::test
