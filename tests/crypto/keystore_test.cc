// The keystore's rules (every apply() transition accepted or refused), its prefix and
// adoption properties, and its encoding. Wrapped blobs here are arbitrary bytes: the
// keystore never looks inside them.
#include "crypto/keystore.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace quire {
namespace {

constexpr uint64_t kCluster = 42;

Bytes blob_for(uint32_t a, uint64_t b = 0) {
  Bytes out;
  ByteWriter w(out);
  w.put_fixed32(a);
  w.put_fixed64(b);
  return out;
}

KeystoreChange new_kek(uint32_t v, uint64_t salt = 0) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kNewKek;
  c.kek_version = v;
  c.wrapped = WrappedKey{1, blob_for(v, salt)};
  return c;
}

KeystoreChange activate(uint32_t v) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kActivateKek;
  c.kek_version = v;
  return c;
}

KeystoreChange new_dek(uint64_t id, uint32_t version, uint32_t kek) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kNewDek;
  c.dek_id = id;
  c.dek_version = version;
  c.kek_version = kek;
  c.wrapped.blob = blob_for(version, id);
  return c;
}

KeystoreChange rewrap_dek(uint64_t id, uint32_t version, uint32_t kek) {
  KeystoreChange c = new_dek(id, version, kek);
  c.type = KeystoreChangeType::kRewrapDek;
  c.wrapped.blob = blob_for(kek, id * 1000 + version);
  return c;
}

KeystoreChange rewrap_kek(uint32_t v, uint32_t cmk) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kRewrapKek;
  c.kek_version = v;
  c.wrapped = WrappedKey{cmk, blob_for(v, cmk)};
  return c;
}

KeystoreChange retire(uint32_t v) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kRetireKek;
  c.kek_version = v;
  return c;
}

KeystoreChange destroy(uint32_t v) {
  KeystoreChange c;
  c.type = KeystoreChangeType::kDestroyKek;
  c.kek_version = v;
  return c;
}

// Applies a change that must be accepted.
void must_apply(Keystore& k, const KeystoreChange& c) {
  Status s = k.apply(c);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
}

// Applies a change that must be refused, and checks that nothing changed.
void must_refuse(Keystore& k, const KeystoreChange& c) {
  Keystore before = k;
  Status s = k.apply(c);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << keystore_change_name(c.type);
  EXPECT_NE(s.message().find(keystore_change_name(c.type)), std::string::npos) << s.to_string();
  EXPECT_EQ(s.field("kek_version"), c.kek_version);
  EXPECT_TRUE(k == before);
  EXPECT_EQ(k.version(), before.version());
}

// KEK 1 live and active, DEK {1, 1} under it.
Keystore basic() {
  Keystore k(kCluster);
  EXPECT_TRUE(k.apply(new_kek(1)).is_ok());
  EXPECT_TRUE(k.apply(activate(1)).is_ok());
  EXPECT_TRUE(k.apply(new_dek(1, 1, 1)).is_ok());
  return k;
}

TEST(KeystoreApply, NewKekMustBeNextVersionAndWrapped) {
  Keystore k(kCluster);
  must_refuse(k, new_kek(0));
  must_refuse(k, new_kek(2));
  KeystoreChange empty = new_kek(1);
  empty.wrapped.blob.clear();
  must_refuse(k, empty);
  must_apply(k, new_kek(1));
  EXPECT_EQ(k.version(), 1u);
  EXPECT_EQ(k.newest_kek_version(), 1u);
  EXPECT_EQ(k.keks().at(1).state, KekState::kLive);
  must_refuse(k, new_kek(1));  // a redo under the same version is not a new KEK
  must_refuse(k, new_kek(3));
  must_apply(k, new_kek(2));
  EXPECT_EQ(k.newest_kek_version(), 2u);
}

TEST(KeystoreApply, ActivateNeedsALiveKek) {
  Keystore k(kCluster);
  must_refuse(k, activate(1));
  must_apply(k, new_kek(1));
  must_apply(k, new_kek(2));
  must_apply(k, activate(2));
  EXPECT_EQ(k.active_kek(), 2u);
  must_apply(k, activate(1));
  EXPECT_EQ(k.active_kek(), 1u);
  must_apply(k, retire(2));
  must_refuse(k, activate(2));  // never reactivate a retired KEK
  must_apply(k, destroy(2));
  must_refuse(k, activate(2));
  must_refuse(k, activate(3));
}

TEST(KeystoreApply, NewDekVersionsAndWrappingKek) {
  Keystore k(kCluster);
  must_refuse(k, new_dek(1, 1, 1));  // no KEK yet
  must_apply(k, new_kek(1));
  must_refuse(k, new_dek(1, 0, 1));
  must_refuse(k, new_dek(1, 2, 1));  // the first version is 1
  KeystoreChange empty = new_dek(1, 1, 1);
  empty.wrapped.blob.clear();
  must_refuse(k, empty);
  must_refuse(k, new_dek(1, 1, 2));  // KEK 2 does not exist
  must_apply(k, new_dek(1, 1, 1));
  must_refuse(k, new_dek(1, 1, 1));
  must_refuse(k, new_dek(1, 3, 1));
  must_apply(k, new_dek(1, 2, 1));
  must_apply(k, new_dek(7, 1, 1));
  EXPECT_EQ(k.newest_dek(1), (DekRef{1, 2}));
  EXPECT_EQ(k.newest_dek(7), (DekRef{7, 1}));
  EXPECT_FALSE(k.newest_dek(2).has_value());
  EXPECT_EQ(k.deks().size(), 3u);
  EXPECT_EQ(k.deks().at(DekRef{1, 1}).kek_version, 1u);

  // A retired KEK wraps no new DEK.
  must_apply(k, new_kek(2));
  must_apply(k, retire(2));
  must_refuse(k, new_dek(9, 1, 2));
}

TEST(KeystoreApply, RewrapDekNeedsTheDekAndALiveKek) {
  Keystore k = basic();
  must_refuse(k, rewrap_dek(1, 2, 1));  // no such version
  must_refuse(k, rewrap_dek(2, 1, 1));  // no such id
  must_refuse(k, rewrap_dek(1, 1, 2));  // no such KEK
  must_apply(k, new_kek(2));
  KeystoreChange empty = rewrap_dek(1, 1, 2);
  empty.wrapped.blob.clear();
  must_refuse(k, empty);
  KeystoreChange r = rewrap_dek(1, 1, 2);
  must_apply(k, r);
  EXPECT_EQ(k.deks().at(DekRef{1, 1}).kek_version, 2u);
  EXPECT_EQ(k.deks().at(DekRef{1, 1}).wrapped, r.wrapped.blob);
  must_apply(k, new_kek(3));
  must_apply(k, retire(3));
  must_refuse(k, rewrap_dek(1, 1, 3));
}

TEST(KeystoreApply, RewrapKekNeedsAKekNotDestroyed) {
  Keystore k(kCluster);
  must_refuse(k, rewrap_kek(1, 2));
  must_apply(k, new_kek(1));
  KeystoreChange empty = rewrap_kek(1, 2);
  empty.wrapped.blob.clear();
  must_refuse(k, empty);
  must_apply(k, rewrap_kek(1, 2));
  EXPECT_EQ(k.keks().at(1).wrapped.cmk_version, 2u);
  must_apply(k, retire(1));
  must_apply(k, rewrap_kek(1, 3));  // a retired KEK still moves to a new CMK version
  EXPECT_EQ(k.keks().at(1).wrapped.cmk_version, 3u);
  must_apply(k, destroy(1));
  must_refuse(k, rewrap_kek(1, 4));
}

TEST(KeystoreApply, RetireNeedsLiveInactiveAndUnused) {
  Keystore k = basic();
  must_refuse(k, retire(1));  // active, and wraps DEK {1, 1}
  must_refuse(k, retire(2));  // no such KEK
  must_apply(k, new_kek(2));
  must_apply(k, activate(2));
  must_refuse(k, retire(1));  // still wraps DEK {1, 1}
  must_refuse(k, retire(2));  // active
  must_apply(k, rewrap_dek(1, 1, 2));
  must_apply(k, retire(1));
  EXPECT_EQ(k.keks().at(1).state, KekState::kRetired);
  must_refuse(k, retire(1));  // already retired
}

TEST(KeystoreApply, DestroyNeedsRetired) {
  Keystore k(kCluster);
  must_refuse(k, destroy(1));
  must_apply(k, new_kek(1));
  must_refuse(k, destroy(1));  // live
  must_apply(k, retire(1));
  must_apply(k, destroy(1));
  EXPECT_EQ(k.keks().at(1).state, KekState::kDestroyed);
  EXPECT_TRUE(k.keks().at(1).wrapped.blob.empty());
  must_refuse(k, destroy(1));
  // The version stays taken: the next KEK is 2.
  must_refuse(k, new_kek(1));
  must_apply(k, new_kek(2));
}

TEST(KeystoreApply, RefusalNamesTheDek) {
  Keystore k = basic();
  Status s = k.apply(new_dek(5, 3, 1));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.field("dek_id"), 5u);
  EXPECT_EQ(s.field("dek_version"), 3u);
}

TEST(KeystoreDigest, ChainsAndDependsOnEveryField) {
  Keystore a(kCluster);
  EXPECT_EQ(a.digest(), KeystoreDigest{});
  must_apply(a, new_kek(1));
  KeystoreDigest d1 = a.digest();
  EXPECT_NE(d1, KeystoreDigest{});
  must_apply(a, activate(1));
  EXPECT_EQ(a.digest_at(1), d1);
  EXPECT_NE(a.digest(), d1);

  // The same change gives the same digest; a change differing in any field does not.
  Keystore b(kCluster);
  must_apply(b, new_kek(1));
  EXPECT_EQ(b.digest(), d1);
  Keystore c(kCluster);
  must_apply(c, new_kek(1, /*salt=*/9));
  EXPECT_NE(c.digest(), d1);
  Keystore d(kCluster);
  KeystoreChange other_cmk = new_kek(1);
  other_cmk.wrapped.cmk_version = 2;
  must_apply(d, other_cmk);
  EXPECT_NE(d.digest(), d1);
}

TEST(KeystoreChangeCoding, RoundTripsAndRejectsUnknownType) {
  KeystoreChange c = rewrap_dek(3, 4, 5);
  c.wrapped.cmk_version = 6;
  Bytes out;
  ByteWriter w(out);
  c.encode(w);
  ByteReader r(out);
  Result<KeystoreChange> d = KeystoreChange::decode(r);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(*d, c);
  EXPECT_TRUE(r.at_end());

  out[0] = 99;
  ByteReader bad(out);
  EXPECT_EQ(KeystoreChange::decode(bad).code(), Code::kCorruption);
  for (size_t n = 0; n < out.size(); ++n) {
    ByteReader cut(ByteView(out).first(n));
    EXPECT_EQ(KeystoreChange::decode(cut).code(), Code::kCorruption) << n;
  }
}

TEST(KeystoreAdopt, ForwardOnly) {
  Keystore old_k = basic();
  Keystore newer = old_k;
  must_apply(newer, new_kek(2));
  must_apply(newer, activate(2));

  Keystore k = old_k;
  ASSERT_TRUE(k.adopt(newer).is_ok());
  EXPECT_TRUE(k == newer);
  // An older keystore is a prefix: OK, and nothing goes backwards.
  ASSERT_TRUE(k.adopt(old_k).is_ok());
  EXPECT_TRUE(k == newer);
  ASSERT_TRUE(k.adopt(Keystore(kCluster)).is_ok());
  EXPECT_TRUE(k == newer);
  ASSERT_TRUE(k.adopt(newer).is_ok());
  EXPECT_TRUE(k == newer);
}

TEST(KeystoreAdopt, ConflictAndOtherCluster) {
  Keystore base = basic();
  Keystore a = base;
  Keystore b = base;
  must_apply(a, new_kek(2, 1));
  must_apply(b, new_kek(2, 2));
  EXPECT_FALSE(a.is_prefix_of(b));
  EXPECT_FALSE(b.is_prefix_of(a));
  Keystore before = a;
  Status s = a.adopt(b);
  EXPECT_EQ(s.code(), kKeystoreConflict);
  EXPECT_EQ(s.field("keystore_version"), 4u);
  EXPECT_TRUE(a == before);

  // Another cluster's keystore is never a prefix, even when empty.
  Keystore other(kCluster + 1);
  EXPECT_FALSE(other.is_prefix_of(a));
  EXPECT_FALSE(Keystore(kCluster).is_prefix_of(other));
  EXPECT_EQ(a.adopt(other).code(), kKeystoreConflict);
  EXPECT_EQ(other.adopt(a).code(), kKeystoreConflict);
}

TEST(KeystoreCoding, DecodeRejectsInconsistentState) {
  // Hand-built encodings in the documented order: cluster, digests, active, KEKs, DEKs.
  auto build = [](uint64_t digests, std::optional<uint32_t> active,
                  std::vector<std::pair<uint32_t, KekState>> keks,
                  std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> deks) {
    Bytes out;
    ByteWriter w(out);
    w.put_fixed64(kCluster);
    w.put_varint64(digests);
    for (uint64_t i = 0; i < digests; ++i) w.put_bytes(Bytes(16, static_cast<uint8_t>(i + 1)));
    w.put_u8(active ? 1 : 0);
    if (active) w.put_varint32(*active);
    w.put_varint64(keks.size());
    for (auto [v, state] : keks) {
      w.put_varint32(v);
      w.put_u8(static_cast<uint8_t>(state));
      bool destroyed = state == KekState::kDestroyed;
      w.put_varint32(destroyed ? 0 : 1);
      w.put_length_prefixed(destroyed ? Bytes{} : blob_for(v));
    }
    w.put_varint64(deks.size());
    for (auto [id, version, kek] : deks) {
      w.put_varint64(id);
      w.put_varint32(version);
      w.put_varint32(kek);
      w.put_length_prefixed(blob_for(version, id));
    }
    return out;
  };
  using D = std::tuple<uint64_t, uint32_t, uint32_t>;
  const KekState live = KekState::kLive;

  // The well-formed one decodes, so the refusals below are about the one thing changed.
  Bytes good = build(3, 1, {{1, live}}, {D{1, 1, 1}});
  Result<Keystore> ok = Keystore::decode(good);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->version(), 3u);
  EXPECT_EQ(ok->deks().at(DekRef{1, 1}).kek_version, 1u);

  EXPECT_EQ(Keystore::decode(build(3, 1, {{1, live}}, {D{1, 1, 5}})).code(), Code::kCorruption)
      << "DEK naming a KEK that does not exist";
  EXPECT_EQ(
      Keystore::decode(build(4, 1, {{1, live}, {2, KekState::kRetired}}, {D{1, 1, 2}})).code(),
      Code::kCorruption)
      << "DEK wrapped by a retired KEK";
  EXPECT_EQ(Keystore::decode(build(3, 2, {{1, live}}, {})).code(), Code::kCorruption)
      << "active KEK missing";
  EXPECT_EQ(Keystore::decode(build(4, 2, {{1, live}, {2, KekState::kDestroyed}}, {})).code(),
            Code::kCorruption)
      << "active KEK destroyed";
  EXPECT_EQ(Keystore::decode(build(3, 1, {{2, live}}, {})).code(), Code::kCorruption)
      << "KEK versions skip 1";
  EXPECT_EQ(Keystore::decode(build(3, 1, {{1, live}}, {D{1, 2, 1}})).code(), Code::kCorruption)
      << "DEK versions skip 1";
  EXPECT_EQ(Keystore::decode(build(4, 1, {{1, live}}, {D{1, 1, 1}, D{1, 1, 1}})).code(),
            Code::kCorruption)
      << "duplicate DEK";
  EXPECT_EQ(Keystore::decode(build(2, 1, {{1, live}}, {D{1, 1, 1}})).code(), Code::kCorruption)
      << "more keys than versions";

  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(Keystore::decode(trailing).code(), Code::kCorruption);

  // A huge digest count in a small input is refused before anything is allocated.
  Bytes huge;
  ByteWriter w(huge);
  w.put_fixed64(kCluster);
  w.put_varint64(uint64_t{1} << 60);
  EXPECT_EQ(Keystore::decode(huge).code(), Code::kCorruption);
  EXPECT_EQ(Keystore::decode(Bytes{}).code(), Code::kCorruption);
}

// ---- Properties over random valid histories ----

// The rules, restated independently of Keystore::apply, over the public state.
bool model_accepts(const Keystore& k, const KeystoreChange& c) {
  auto kek = k.keks().find(c.kek_version);
  bool exists = kek != k.keks().end();
  bool live = exists && kek->second.state == KekState::kLive;
  bool wrapped = !c.wrapped.blob.empty();
  switch (c.type) {
    case KeystoreChangeType::kNewKek:
      return c.kek_version == k.keks().size() + 1 && wrapped;
    case KeystoreChangeType::kActivateKek:
      return live;
    case KeystoreChangeType::kNewDek: {
      uint32_t next = 1;
      for (const auto& [ref, e] : k.deks()) {
        if (ref.id == c.dek_id) next = std::max(next, ref.version + 1);
      }
      return c.dek_version == next && live && wrapped;
    }
    case KeystoreChangeType::kRewrapDek:
      return k.deks().contains(DekRef{c.dek_id, c.dek_version}) && live && wrapped;
    case KeystoreChangeType::kRewrapKek:
      return exists && kek->second.state != KekState::kDestroyed && wrapped;
    case KeystoreChangeType::kRetireKek: {
      bool used = false;
      for (const auto& [ref, e] : k.deks()) used = used || e.kek_version == c.kek_version;
      return live && k.active_kek() != c.kek_version && !used;
    }
    case KeystoreChangeType::kDestroyKek:
      return exists && kek->second.state == KekState::kRetired;
  }
  return false;
}

// Any change, valid or not, near the current state (so both outcomes are common).
KeystoreChange any_change(const Keystore& k) {
  KeystoreChange c;
  c.type = static_cast<KeystoreChangeType>(*rc::gen::inRange(1, 8));
  c.kek_version = *rc::gen::inRange<uint32_t>(0, static_cast<uint32_t>(k.newest_kek_version()) + 3);
  c.dek_id = *rc::gen::inRange<uint64_t>(1, 4);
  c.dek_version = *rc::gen::inRange<uint32_t>(0, 4);
  c.wrapped.cmk_version = *rc::gen::inRange<uint32_t>(0, 4);
  if (*rc::gen::inRange(0, 8) != 0) {
    c.wrapped.blob =
        *rc::gen::container<Bytes>(*rc::gen::inRange(1, 8), rc::gen::arbitrary<uint8_t>());
  }
  return c;
}

// A change the model accepts, drawn by generating until one fits (bounded; new KEK is
// always possible, so it is the fallback).
KeystoreChange valid_change(const Keystore& k) {
  for (int attempt = 0; attempt < 32; ++attempt) {
    KeystoreChange c = any_change(k);
    if (c.type == KeystoreChangeType::kNewDek) {
      std::optional<DekRef> newest = k.newest_dek(c.dek_id);
      c.dek_version = newest ? newest->version + 1 : 1;
    }
    if (model_accepts(k, c)) return c;
  }
  KeystoreChange c =
      new_kek(static_cast<uint32_t>(k.newest_kek_version()) + 1, *rc::gen::arbitrary<uint64_t>());
  return c;
}

// Every version of one random valid history, snapshots[0] empty.
std::vector<Keystore> random_history(Keystore start, int changes) {
  std::vector<Keystore> snapshots{start};
  for (int i = 0; i < changes; ++i) {
    Keystore next = snapshots.back();
    KeystoreChange c = valid_change(next);
    Status s = next.apply(c);
    RC_ASSERT(s.is_ok());
    snapshots.push_back(next);
  }
  return snapshots;
}

RC_GTEST_PROP(KeystoreProperty, ApplyFollowsTheRules, ()) {
  Keystore k(kCluster);
  int steps = *rc::gen::inRange(1, 60);
  for (int i = 0; i < steps; ++i) {
    KeystoreChange c = any_change(k);
    bool expected = model_accepts(k, c);
    Keystore before = k;
    Status s = k.apply(c);
    RC_ASSERT(s.is_ok() == expected);
    if (s.is_ok()) {
      RC_ASSERT(k.version() == before.version() + 1);
      RC_ASSERT(before.is_prefix_of(k));
    } else {
      RC_ASSERT(s.code() == Code::kInvalidArgument);
      RC_ASSERT(k == before);
    }
  }
}

RC_GTEST_PROP(KeystoreProperty, EveryPrefixIsAPrefix, ()) {
  std::vector<Keystore> h = random_history(Keystore(kCluster), *rc::gen::inRange(0, 40));
  for (size_t i = 0; i < h.size(); ++i) {
    RC_ASSERT(h[i].version() == i);
    for (size_t j = 0; j < h.size(); ++j) {
      RC_ASSERT(h[i].is_prefix_of(h[j]) == (i <= j));
    }
  }
}

RC_GTEST_PROP(KeystoreProperty, DivergedKeystoresConflict, ()) {
  std::vector<Keystore> shared = random_history(Keystore(kCluster), *rc::gen::inRange(0, 20));
  const Keystore& base = shared.back();
  // The first changes after the fork differ (same KEK version, different wrapped bytes).
  uint32_t next = static_cast<uint32_t>(base.newest_kek_version()) + 1;
  Keystore a = base;
  Keystore b = base;
  RC_ASSERT(a.apply(new_kek(next, 1)).is_ok());
  RC_ASSERT(b.apply(new_kek(next, 2)).is_ok());
  a = random_history(a, *rc::gen::inRange(0, 10)).back();
  b = random_history(b, *rc::gen::inRange(0, 10)).back();

  RC_ASSERT(base.is_prefix_of(a));
  RC_ASSERT(base.is_prefix_of(b));
  RC_ASSERT(!a.is_prefix_of(b));
  RC_ASSERT(!b.is_prefix_of(a));
  Keystore a_before = a;
  RC_ASSERT(a.adopt(b).code() == kKeystoreConflict);
  RC_ASSERT(a == a_before);
  RC_ASSERT(b.adopt(a).code() == kKeystoreConflict);
}

RC_GTEST_PROP(KeystoreProperty, AdoptNeverGoesBackwards, ()) {
  // Two lineages from one fork: whatever a node is offered, in any order, its version
  // never drops, and it only ever holds a keystore someone offered or it built itself.
  std::vector<Keystore> shared = random_history(Keystore(kCluster), *rc::gen::inRange(0, 8));
  uint32_t next = static_cast<uint32_t>(shared.back().newest_kek_version()) + 1;
  Keystore fork_a = shared.back();
  Keystore fork_b = shared.back();
  RC_ASSERT(fork_a.apply(new_kek(next, 1)).is_ok());
  RC_ASSERT(fork_b.apply(new_kek(next, 2)).is_ok());
  std::vector<Keystore> offers = shared;
  for (const Keystore& k : random_history(fork_a, *rc::gen::inRange(0, 8))) offers.push_back(k);
  for (const Keystore& k : random_history(fork_b, *rc::gen::inRange(0, 8))) offers.push_back(k);

  Keystore node(kCluster);
  int steps = *rc::gen::inRange(1, 40);
  for (int i = 0; i < steps; ++i) {
    Keystore before = node;
    if (*rc::gen::inRange(0, 5) == 0) {
      Status s = node.apply(valid_change(node));
      RC_ASSERT(s.is_ok());
      RC_ASSERT(before.is_prefix_of(node));
      continue;
    }
    const Keystore& offer = *rc::gen::elementOf(offers);
    Status s = node.adopt(offer);
    RC_ASSERT(node.version() >= before.version());
    if (before.is_prefix_of(offer)) {
      RC_ASSERT(s.is_ok());
      RC_ASSERT(node == offer);
    } else if (offer.is_prefix_of(before)) {
      RC_ASSERT(s.is_ok());
      RC_ASSERT(node == before);
    } else {
      RC_ASSERT(s.code() == kKeystoreConflict);
      RC_ASSERT(node == before);
    }
  }
}

RC_GTEST_PROP(KeystoreProperty, EncodeDecodeRoundTrip, ()) {
  uint64_t cluster = *rc::gen::arbitrary<uint64_t>();
  Keystore k = random_history(Keystore(cluster), *rc::gen::inRange(0, 40)).back();
  Bytes out;
  ByteWriter w(out);
  k.encode(w);
  Result<Keystore> d = Keystore::decode(out);
  RC_ASSERT(d.is_ok());
  RC_ASSERT(*d == k);
  RC_ASSERT(d->version() == k.version());
  RC_ASSERT(d->digest() == k.digest());
  RC_ASSERT(d->cluster_id() == cluster);
  // Deterministic: the same state encodes to the same bytes.
  Bytes again;
  ByteWriter w2(again);
  d->encode(w2);
  RC_ASSERT(again == out);
}

RC_GTEST_PROP(KeystoreProperty, DamagedEncodingNeverDecodesToTheOriginal, ()) {
  Keystore k = random_history(Keystore(kCluster), *rc::gen::inRange(1, 30)).back();
  Bytes out;
  ByteWriter w(out);
  k.encode(w);
  // Every truncation is Corruption: the encoding is self-delimiting.
  for (size_t n = 0; n < out.size(); ++n) {
    Bytes cut(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    RC_ASSERT(Keystore::decode(cut).code() == Code::kCorruption);
  }
  // A flipped bit is Corruption, or at worst a different keystore; never a crash.
  for (int i = 0; i < 16; ++i) {
    Bytes flipped = out;
    size_t at = *rc::gen::inRange<size_t>(0, flipped.size());
    flipped[at] ^= static_cast<uint8_t>(1u << *rc::gen::inRange(0, 8));
    Result<Keystore> d = Keystore::decode(flipped);
    if (d.is_ok()) {
      RC_ASSERT(!(*d == k));
    } else {
      RC_ASSERT(d.code() == Code::kCorruption);
    }
  }
}

}  // namespace
}  // namespace quire
