#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/aead.h"
#include "crypto/file_kms.h"
#include "crypto/hex.h"
#include "crypto/sim_kms.h"
#include "runtime/real/real_env.h"
#include "runtime/real_test_support.h"
#include "runtime/sim/sim_random.h"
#include "runtime/sim/sim_world.h"
#include "support/sim_node.h"

namespace quire {
namespace {

using namespace std::chrono_literals;
using testing_support::IdleApp;
using testing_support::run_in_node;

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fresh key to wrap, drawn from a stream of its own so the KMS's draws are unaffected.
SecretKey test_key(uint64_t seed) {
  SimRandom random(seed, "test-key");
  return SecretKey::generate(random);
}

// Wraps test_key(key_seed) under `context` with `kms`, as a task of the node of `env`.
std::optional<WrappedKey> wrap_on(SimWorld& world, Env& env, Kms& kms, Bytes context,
                                  uint64_t key_seed) {
  std::optional<WrappedKey> out;
  bool finished = run_in_node(world, env, [&]() -> Task<void> {
    Result<WrappedKey> w = co_await kms.wrap(context, test_key(key_seed));
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    if (w.is_ok()) out = *w;
  });
  EXPECT_TRUE(finished);
  return out;
}

// Where the file format puts version i's key bytes, for the default key id:
// magic(4) | format(1) | key id(1 + 9) | active(4) | count(4) | i x {version(4), key(32)}.
size_t key_offset(size_t i) {
  return 4 + 1 + 1 + 9 + 4 + 4 + i * (4 + kSecretKeyBytes) + 4;
}

// One simulated node whose tasks the tests drive; its disk outlives crashes.
class FileKmsSimTest : public ::testing::Test {
 protected:
  FileKmsSimTest() {
    node_ = world_.add_node("n1", [](Env&) { return std::make_unique<IdleApp>(); });
    world_.start(node_);
  }

  Env& env() { return *world_.env(node_); }
  SimDiskStore& store() { return world_.disk(node_); }

  template <typename F>
  void run(F body) {
    ASSERT_TRUE(run_in_node(world_, env(), std::move(body)));
  }

  // Opens a FileKms on the running node and expects success.
  std::unique_ptr<FileKms> open_kms(FileKmsOptions options = {}) {
    auto kms = std::make_unique<FileKms>(env(), options);
    Status st = Status(Code::kCancelled, "not run");
    run([&]() -> Task<void> { st = co_await kms->open(); });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return kms;
  }

  // The open() status of a fresh FileKms on the running node.
  Status open_status(FileKmsOptions options = {}) {
    FileKms kms(env(), options);
    Status st = Status(Code::kCancelled, "not run");
    run([&]() -> Task<void> { st = co_await kms.open(); });
    return st;
  }

  void crash_and_restart(UnsyncedOnCrash mode) {
    world_.crash(node_, mode);
    world_.start(node_);
  }

  // The CMK versions' key bytes as the file holds them, in hex (both cases).
  std::vector<std::string> file_keys_hex() {
    std::vector<std::string> out;
    std::optional<Bytes> file = store().current_content("cmk.key");
    EXPECT_TRUE(file.has_value());
    if (!file) return out;
    for (size_t i = 0; key_offset(i) + kSecretKeyBytes + 4 <= file->size(); ++i) {
      ByteView key(file->data() + key_offset(i), kSecretKeyBytes);
      out.push_back(test::to_hex(key));
      out.push_back(test::to_hex(key, /*upper=*/true));
    }
    return out;
  }

  SimWorld world_{7};
  NodeId node_ = 0;
};

TEST_F(FileKmsSimTest, FirstOpenCreatesAPrivateDurableFileWithVersionOne) {
  auto kms = open_kms();
  EXPECT_EQ(kms->key_id(), "quire-cmk");
  run([&]() -> Task<void> {
    Result<FileStatus> mode = co_await env().disk().file_status("cmk.key");
    EXPECT_TRUE(mode.is_ok()) << mode.status().to_string();
    if (mode.is_ok()) {
      EXPECT_EQ(mode->permissions, 0600u);
    }
    Result<uint32_t> active = co_await kms->active_version();
    EXPECT_EQ(active.value(), 1u);
    Result<std::vector<uint32_t>> versions = co_await kms->versions();
    EXPECT_EQ(versions.value(), std::vector<uint32_t>{1});
  });
  // Durable, directory entry included, and nothing else left behind.
  ASSERT_TRUE(store().durable_content("cmk.key").has_value());
  EXPECT_EQ(store().durable_files(), std::vector<std::string>{"cmk.key"});
  EXPECT_EQ(store().durable_content("cmk.key")->size(), key_offset(1));
}

TEST_F(FileKmsSimTest, ReopenFindsTheSameKeyAcrossInstancesAndCrashes) {
  auto first = open_kms();
  const Bytes context = bytes_of("cluster=c1 kek=1");
  SecretKey kek = test_key(1);
  std::optional<WrappedKey> wrapped = wrap_on(world_, env(), *first, context, 1);
  ASSERT_TRUE(wrapped.has_value());
  EXPECT_EQ(wrapped->cmk_version, 1u);
  EXPECT_EQ(wrapped->blob.size(), kWrappedKeyBytes);

  auto second = open_kms();
  run([&]() -> Task<void> {
    Result<SecretKey> key = co_await second->unwrap(context, *wrapped);
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    if (key.is_ok()) {
      EXPECT_TRUE(key->equals(kek));
    }
  });

  first.reset();
  second.reset();
  crash_and_restart(UnsyncedOnCrash::kLose);
  auto third = open_kms();
  run([&]() -> Task<void> {
    Result<SecretKey> key = co_await third->unwrap(context, *wrapped);
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    if (key.is_ok()) {
      EXPECT_TRUE(key->equals(kek));
    }
  });
}

TEST_F(FileKmsSimTest, RefusesAFileTheGroupOrOthersCanAccess) {
  open_kms();
  for (uint32_t mode : {0640u, 0604u, 0610u, 0660u, 0644u}) {
    ASSERT_TRUE(store().set_permissions("cmk.key", mode));
    Status st = open_status();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    EXPECT_TRUE(contains(st.message(), "cmk.key")) << st.message();
    EXPECT_TRUE(contains(st.message(), "quire-cmk")) << st.message();
    EXPECT_TRUE(contains(st.message(), "chmod 600 cmk.key")) << st.message();
  }
  // Owner-only bits are fine, whichever they are.
  ASSERT_TRUE(store().set_permissions("cmk.key", 0400));
  EXPECT_TRUE(open_status().is_ok());
}

TEST_F(FileKmsSimTest, RefusesADirectoryAsTheKeyFile) {
  run([&]() -> Task<void> { EXPECT_TRUE((co_await env().disk().make_dirs("cmk.key")).is_ok()); });
  Status st = open_status();
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  EXPECT_TRUE(contains(st.message(), "is not a regular file (a directory)")) << st.message();
}

TEST_F(FileKmsSimTest, RefusesAFileForAnotherKeyId) {
  open_kms();
  FileKmsOptions other;
  other.key_id = "other-cmk";
  Status st = open_status(other);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  EXPECT_TRUE(contains(st.message(), "cmk.key")) << st.message();
  EXPECT_TRUE(contains(st.message(), "'quire-cmk'")) << st.message();
  EXPECT_TRUE(contains(st.message(), "'other-cmk'")) << st.message();
}

TEST_F(FileKmsSimTest, EveryDamagedByteIsCorruptionNamingFileAndKeyId) {
  open_kms();
  const size_t size = store().current_content("cmk.key")->size();
  for (size_t offset = 0; offset < size; ++offset) {
    ASSERT_TRUE(store().flip_bit("cmk.key", offset, static_cast<int>(offset % 8)));
    Status st = open_status();
    EXPECT_EQ(st.code(), Code::kCorruption) << "offset " << offset << ": " << st.to_string();
    EXPECT_TRUE(contains(st.message(), "cmk.key")) << st.message();
    EXPECT_TRUE(contains(st.message(), "quire-cmk")) << st.message();
    ASSERT_TRUE(store().flip_bit("cmk.key", offset, static_cast<int>(offset % 8)));
  }
  EXPECT_TRUE(open_status().is_ok());
}

TEST_F(FileKmsSimTest, TruncatedFileIsCorruption) {
  open_kms();
  const uint64_t size = store().current_content("cmk.key")->size();
  for (uint64_t keep : {uint64_t{0}, uint64_t{3}, uint64_t{20}, size - 1}) {
    run([&]() -> Task<void> {
      Result<std::unique_ptr<File>> f = co_await env().disk().open("cmk.key", OpenOptions{});
      EXPECT_TRUE(f.is_ok());
      if (!f.is_ok()) co_return;
      EXPECT_TRUE((co_await (*f)->truncate(keep)).is_ok());
    });
    Status st = open_status();
    EXPECT_EQ(st.code(), Code::kCorruption) << "kept " << keep << ": " << st.to_string();
    EXPECT_TRUE(contains(st.message(), "cmk.key")) << st.message();
    EXPECT_TRUE(contains(st.message(), "quire-cmk")) << st.message();
  }
}

TEST_F(FileKmsSimTest, MissingFileWithoutCreateIsNotFound) {
  FileKmsOptions options;
  options.path = "keys/cmk.key";
  options.create_if_missing = false;
  Status st = open_status(options);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.to_string();
  EXPECT_TRUE(contains(st.message(), "keys/cmk.key")) << st.message();
  EXPECT_TRUE(contains(st.message(), "quire-cmk")) << st.message();
  EXPECT_TRUE(store().current_files().empty());

  // With creation allowed it makes the directory too, and then a non-creating open works.
  options.create_if_missing = true;
  EXPECT_TRUE(open_status(options).is_ok());
  options.create_if_missing = false;
  EXPECT_TRUE(open_status(options).is_ok());
}

TEST_F(FileKmsSimTest, RotateMakesANewActiveVersionAndKeepsOldOnesForUnwrap) {
  auto kms = open_kms();
  // g++ 12 mishandles braced lists in an expression with co_await; these are named.
  const std::vector<uint32_t> one_two_three{1, 2, 3};
  const Bytes context = bytes_of("kek v1");
  SecretKey kek = test_key(2);
  run([&]() -> Task<void> {
    Result<WrappedKey> old_wrap = co_await kms->wrap(context, kek.clone());
    EXPECT_EQ(old_wrap.value().cmk_version, 1u);
    Result<uint32_t> rotated = co_await kms->rotate();
    EXPECT_EQ(rotated.value(), 2u);
    EXPECT_EQ((co_await kms->active_version()).value(), 2u);
    Result<WrappedKey> new_wrap = co_await kms->wrap(context, kek.clone());
    EXPECT_EQ(new_wrap.value().cmk_version, 2u);
    std::vector<const WrappedKey*> both;
    both.push_back(&old_wrap.value());
    both.push_back(&new_wrap.value());
    for (const WrappedKey* w : both) {
      Result<SecretKey> key = co_await kms->unwrap(context, *w);
      EXPECT_TRUE(key.is_ok()) << key.status().to_string();
      if (key.is_ok()) {
        EXPECT_TRUE(key->equals(kek));
      }
    }
    // A blob moved to another version's label does not unwrap.
    WrappedKey relabelled = old_wrap.value();
    relabelled.cmk_version = 2;
    EXPECT_EQ((co_await kms->unwrap(context, relabelled)).code(), Code::kCorruption);
    Result<uint32_t> third = co_await kms->rotate();
    EXPECT_EQ(third.value(), 3u);
    Result<std::vector<uint32_t>> versions = co_await kms->versions();
    EXPECT_EQ(versions.value(), one_two_three);
  });
  // The file holds the new state, private, with no temporary left behind.
  auto reopened = open_kms();
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await reopened->active_version()).value(), 3u);
    Result<std::vector<uint32_t>> versions = co_await reopened->versions();
    EXPECT_EQ(versions.value(), one_two_three);
    EXPECT_EQ((co_await env().disk().file_status("cmk.key")).value().permissions, 0600u);
  });
  // No temporary left behind; the lock file stays, as flock lock files do.
  EXPECT_EQ(store().current_files(), (std::vector<std::string>{"cmk.key", "cmk.key.lock"}));
}

// Two writers sharing the file rotate at once (a deposed primary finishing a rotation while
// the new one starts one, `quire kms rotate` beside a node): the file's lock serializes
// them, so each gets its own version and the file keeps both; a fresh reader unwraps what
// each wrapped. Without the lock, both re-read version 1 and the second rename dropped the
// first's version 2, whose writer went on wrapping under a key that was nowhere on disk.
TEST_F(FileKmsSimTest, ConcurrentRotationsBySharersKeepEveryVersion) {
  auto a = open_kms();
  auto b = open_kms();
  const Bytes context = bytes_of("kek");
  SecretKey kek = test_key(5);
  std::optional<Result<uint32_t>> ra, rb;
  std::optional<Result<WrappedKey>> wa, wb;
  run([&]() -> Task<void> {
    auto rotate_and_wrap = [&](FileKms& kms, std::optional<Result<uint32_t>>* r,
                               std::optional<Result<WrappedKey>>* w) -> Task<void> {
      *r = co_await kms.rotate();
      if (r->has_value() && (*r)->is_ok()) *w = co_await kms.wrap(context, kek.clone());
    };
    env().executor().spawn("rotate-a", rotate_and_wrap(*a, &ra, &wa));
    env().executor().spawn("rotate-b", rotate_and_wrap(*b, &rb, &wb));
    (void)co_await env().executor().sleep(2s);
  });
  ASSERT_TRUE(ra && rb && wa && wb);
  ASSERT_TRUE(ra->is_ok() && rb->is_ok()) << ra->status().to_string() << rb->status().to_string();
  EXPECT_NE(ra->value(), rb->value());
  auto fresh = open_kms();
  run([&]() -> Task<void> {
    const std::vector<uint32_t> one_two_three{1, 2, 3};
    EXPECT_EQ((co_await fresh->versions()).value(), one_two_three);
    std::vector<const Result<WrappedKey>*> both;
    both.push_back(&*wa);
    both.push_back(&*wb);
    for (const Result<WrappedKey>* w : both) {
      EXPECT_TRUE(w->is_ok());
      if (!w->is_ok()) continue;
      Result<SecretKey> key = co_await fresh->unwrap(context, w->value());
      EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    }
  });
}

// A holder that keeps the file's lock: a rotation waits for it up to kLockWaitMax, then
// fails with Busy, changing nothing; released in time, the rotation goes ahead.
TEST_F(FileKmsSimTest, ARotationWaitsForTheFilesLockThenGivesUp) {
  auto kms = open_kms();
  run([&]() -> Task<void> {
    Result<std::unique_ptr<FileLock>> held = co_await env().disk().try_lock("cmk.key.lock");
    EXPECT_TRUE(held.is_ok());
    const MonoTime t0 = env().executor().now();
    Result<uint32_t> refused = co_await kms->rotate();
    EXPECT_EQ(refused.code(), Code::kBusy) << refused.status().to_string();
    EXPECT_GE(env().executor().now() - t0, FileKms::kLockWaitMax);
    const std::vector<uint32_t> just_one{1};
    EXPECT_EQ((co_await kms->versions()).value(), just_one);
    std::optional<Result<uint32_t>> later;
    env().executor().spawn("rotate",
                           [](FileKms& k, std::optional<Result<uint32_t>>* out) -> Task<void> {
                             *out = co_await k.rotate();
                           }(*kms, &later));
    (void)co_await env().executor().sleep(1s);
    EXPECT_FALSE(later.has_value());  // still waiting
    held->reset();                    // let go
    (void)co_await env().executor().sleep(500ms);
    EXPECT_TRUE(later.has_value() && later->is_ok());
  });
}

// Two compute nodes sharing one CMK file (as `quire cluster` runs them): what one adds,
// the other unwraps with, and a rotation by either never drops the other's version.
TEST_F(FileKmsSimTest, InstancesSharingTheFileSeeEachOthersVersions) {
  auto primary = open_kms();
  auto standby = open_kms();
  const Bytes context = bytes_of("kek v2");
  SecretKey kek = test_key(4);
  const std::vector<uint32_t> one_two_three{1, 2, 3};
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await primary->rotate()).value(), 2u);
    Result<WrappedKey> wrapped = co_await primary->wrap(context, kek.clone());
    EXPECT_EQ(wrapped.value().cmk_version, 2u);
    // The standby has not seen version 2: it reads the file again, once the interval passed.
    (void)co_await env().executor().sleep(FileKms::kReloadIntervalMin);
    Result<SecretKey> key = co_await standby->unwrap(context, wrapped.value());
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    if (key.is_ok()) {
      EXPECT_TRUE(key->equals(kek));
    }
    // The standby rotates from what the file holds: version 3, with 1 and 2 kept.
    EXPECT_EQ((co_await standby->rotate()).value(), 3u);
    EXPECT_EQ((co_await standby->versions()).value(), one_two_three);
    // A version nobody wrote stays unknown; asking again within the interval reads nothing.
    WrappedKey unknown = wrapped.value();
    unknown.cmk_version = 9;
    EXPECT_EQ((co_await primary->unwrap(context, unknown)).code(), Code::kNotFound);
    EXPECT_EQ((co_await primary->unwrap(context, unknown)).code(), Code::kNotFound);
  });
  auto reopened = open_kms();
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await reopened->versions()).value(), one_two_three);
    EXPECT_EQ((co_await reopened->active_version()).value(), 3u);
  });
}

TEST_F(FileKmsSimTest, RotationIsDurableWhenItReturns) {
  auto kms = open_kms();
  const Bytes context = bytes_of("kek");
  SecretKey kek = test_key(3);
  std::optional<WrappedKey> wrapped;
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await kms->rotate()).value(), 2u);
    Result<WrappedKey> w = co_await kms->wrap(context, kek.clone());
    if (w.is_ok()) wrapped = *w;
  });
  ASSERT_TRUE(wrapped.has_value());
  kms.reset();
  crash_and_restart(UnsyncedOnCrash::kLose);
  auto after = open_kms();
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await after->active_version()).value(), 2u);
    Result<SecretKey> key = co_await after->unwrap(context, *wrapped);
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    if (key.is_ok()) {
      EXPECT_TRUE(key->equals(kek));
    }
  });
}

// A crash at any moment of a rotation leaves the old file or the new one, never a damaged
// one, and once rotate() returned, the new one.
TEST(FileKmsCrashTest, CrashDuringRotationLeavesTheOldOrTheNewFile) {
  int saw_old = 0;
  int saw_new = 0;
  for (uint64_t step = 0; step < 40; ++step) {
    SimWorld world(100 + step);
    NodeId node = world.add_node("n1", [](Env&) { return std::make_unique<IdleApp>(); });
    world.start(node);
    {
      FileKms kms(*world.env(node), FileKmsOptions{});
      Status opened = Status(Code::kCancelled, "not run");
      ASSERT_TRUE(run_in_node(world, *world.env(node),
                              [&]() -> Task<void> { opened = co_await kms.open(); }));
      ASSERT_TRUE(opened.is_ok()) << opened.to_string();
      bool rotated = false;
      auto rotate = [](FileKms& k, bool& done) -> Task<void> {
        Result<uint32_t> v = co_await k.rotate();
        done = v.is_ok();
      };
      world.env(node)->executor().spawn("rotate", rotate(kms, rotated));
      world.run_for(step * 25us);
      world.crash(node, UnsyncedOnCrash::kRandomSubset);
      world.start(node);
      FileKms after(*world.env(node), FileKmsOptions{});
      Status reopened = Status(Code::kCancelled, "not run");
      uint32_t active = 0;
      ASSERT_TRUE(run_in_node(world, *world.env(node), [&]() -> Task<void> {
        reopened = co_await after.open();
        if (reopened.is_ok()) active = (co_await after.active_version()).value();
      }));
      ASSERT_TRUE(reopened.is_ok()) << "step " << step << ": " << reopened.to_string();
      if (rotated) {
        EXPECT_EQ(active, 2u) << "step " << step;
      }
      EXPECT_TRUE(active == 1 || active == 2) << active;
      (active == 1 ? saw_old : saw_new)++;
    }
  }
  // The cut points span the whole rotation: some crashes came before it was durable.
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
}

TEST_F(FileKmsSimTest, RetiredVersionsNoLongerUnwrapAndTheActiveOneCannotRetire) {
  auto kms = open_kms();
  const Bytes context = bytes_of("kek");
  const std::vector<uint32_t> just_two{2};
  run([&]() -> Task<void> {
    Result<WrappedKey> old_wrap = co_await kms->wrap(context, test_key(4));
    EXPECT_EQ((co_await kms->rotate()).value(), 2u);

    Status active = co_await kms->retire(2);
    EXPECT_EQ(active.code(), Code::kInvalidArgument) << active.to_string();
    EXPECT_TRUE(contains(active.message(), "quire-cmk")) << active.message();
    Status unknown = co_await kms->retire(9);
    EXPECT_EQ(unknown.code(), Code::kNotFound) << unknown.to_string();

    Status retired = co_await kms->retire(1);
    EXPECT_TRUE(retired.is_ok()) << retired.to_string();
    EXPECT_EQ((co_await kms->versions()).value(), just_two);
    Result<SecretKey> gone = co_await kms->unwrap(context, old_wrap.value());
    EXPECT_EQ(gone.code(), Code::kNotFound) << gone.status().to_string();
    EXPECT_TRUE(contains(gone.status().message(), "quire-cmk")) << gone.status().message();
    EXPECT_TRUE(contains(gone.status().message(), "version 1")) << gone.status().message();
    EXPECT_EQ((co_await kms->retire(1)).code(), Code::kNotFound);
  });
  // Retirement is durable: a crash and reopen still lack version 1.
  kms.reset();
  crash_and_restart(UnsyncedOnCrash::kLose);
  auto after = open_kms();
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await after->versions()).value(), just_two);
    EXPECT_EQ((co_await after->active_version()).value(), 2u);
  });
}

TEST_F(FileKmsSimTest, UnwrapUnderAnotherContextOrAlteredBlobIsCorruption) {
  auto kms = open_kms();
  run([&]() -> Task<void> {
    Result<WrappedKey> w = co_await kms->wrap(bytes_of("context A"), test_key(5));
    EXPECT_TRUE(w.is_ok());
    if (!w.is_ok()) co_return;
    Result<SecretKey> other = co_await kms->unwrap(bytes_of("context B"), *w);
    EXPECT_EQ(other.code(), Code::kCorruption) << other.status().to_string();
    EXPECT_TRUE(contains(other.status().message(), "quire-cmk")) << other.status().message();
    EXPECT_TRUE(contains(other.status().message(), "version 1")) << other.status().message();

    WrappedKey altered = *w;
    altered.blob[20] ^= 1;
    EXPECT_EQ((co_await kms->unwrap(bytes_of("context A"), altered)).code(), Code::kCorruption);
    WrappedKey short_blob = *w;
    short_blob.blob.pop_back();
    EXPECT_EQ((co_await kms->unwrap(bytes_of("context A"), short_blob)).code(), Code::kCorruption);
    EXPECT_TRUE((co_await kms->unwrap(bytes_of("context A"), *w)).is_ok());

    Result<WrappedKey> empty = co_await kms->wrap(bytes_of("context A"), SecretKey());
    EXPECT_EQ(empty.code(), Code::kInvalidArgument);
  });
}

TEST_F(FileKmsSimTest, EveryCallBeforeOpenIsUnavailable) {
  FileKms kms(env(), FileKmsOptions{});
  const WrappedKey wrapped{1, Bytes(kWrappedKeyBytes)};
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await kms.active_version()).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms.wrap(bytes_of("c"), test_key(6))).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms.unwrap(bytes_of("c"), wrapped)).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms.rotate()).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms.retire(1)).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms.versions()).code(), Code::kUnavailable);
  });
  // And nothing touched the disk.
  EXPECT_TRUE(store().current_files().empty());
}

TEST_F(FileKmsSimTest, ErrorMessagesNeverSpellOutKeyBytes) {
  auto kms = open_kms();
  SecretKey kek = test_key(7);
  std::optional<WrappedKey> wrapped = wrap_on(world_, env(), *kms, bytes_of("A"), 7);
  ASSERT_TRUE(wrapped.has_value());
  run([&]() -> Task<void> { EXPECT_EQ((co_await kms->rotate()).value(), 2u); });
  // Both CMK versions as the file holds them, and the KEK, each in both hex cases.
  std::vector<std::string> secrets = file_keys_hex();
  ASSERT_EQ(secrets.size(), 4u);
  secrets.push_back(test::to_hex(kek.reveal()));
  secrets.push_back(test::to_hex(kek.reveal(), /*upper=*/true));

  std::vector<Status> errors;
  run([&]() -> Task<void> {
    errors.push_back((co_await kms->unwrap(bytes_of("B"), *wrapped)).status());
    WrappedKey altered = *wrapped;
    altered.blob[kGcmNonceBytes] ^= 0x80;
    errors.push_back((co_await kms->unwrap(bytes_of("A"), altered)).status());
    errors.push_back(co_await kms->retire(2));
    EXPECT_TRUE((co_await kms->retire(1)).is_ok());
    errors.push_back((co_await kms->unwrap(bytes_of("A"), *wrapped)).status());
  });
  ASSERT_TRUE(store().set_permissions("cmk.key", 0644));
  errors.push_back(open_status());
  ASSERT_TRUE(store().set_permissions("cmk.key", 0600));
  FileKmsOptions other;
  other.key_id = "other";
  errors.push_back(open_status(other));
  ASSERT_TRUE(store().flip_bit("cmk.key", key_offset(0) + 3, 0));
  errors.push_back(open_status());

  ASSERT_EQ(errors.size(), 7u);
  for (const Status& st : errors) {
    EXPECT_FALSE(st.is_ok());
    for (const std::string& secret : secrets) {
      EXPECT_FALSE(contains(st.to_string(), secret)) << st.to_string();
    }
  }
}

// The real POSIX disk: the file really is 0600 and a chmod to 0640 really is refused.
TEST(FileKmsRealTest, CreatesA0600FileAndRefusesAGroupReadableOne) {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-kms-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  {
    RealLoop loop;
    RealEnv env(loop, real_test::kTestNode, "n1", dir, nullptr, Severity::kInfo);
    FileKms kms(env, FileKmsOptions{});
    Status opened = Status(Code::kCancelled, "not run");
    auto open = [](FileKms& k, Status& out) -> Task<void> { out = co_await k.open(); };
    ASSERT_TRUE(real_test::run_task(loop, open(kms, opened)));
    ASSERT_TRUE(opened.is_ok()) << opened.to_string();

    const std::string file = dir + "/cmk.key";
    struct stat st;
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(std::filesystem::exists(file + ".tmp"));

    // A second instance reads the same key back.
    auto round_trip = [](FileKms& a, FileKms& b, Status& out) -> Task<void> {
      SecretKey kek = test_key(8);
      Bytes context = bytes_of("real");
      Result<WrappedKey> w = co_await a.wrap(context, kek.clone());
      if (!w.is_ok()) {
        out = w.status();
        co_return;
      }
      Result<SecretKey> back = co_await b.unwrap(context, *w);
      out = back.is_ok() ? (back->equals(kek) ? Status() : corruption("different key"))
                         : back.status();
    };
    FileKms second(env, FileKmsOptions{});
    Status second_open = Status(Code::kCancelled, "not run");
    ASSERT_TRUE(real_test::run_task(loop, open(second, second_open)));
    ASSERT_TRUE(second_open.is_ok()) << second_open.to_string();
    Status trip = Status(Code::kCancelled, "not run");
    ASSERT_TRUE(real_test::run_task(loop, round_trip(kms, second, trip)));
    EXPECT_TRUE(trip.is_ok()) << trip.to_string();

    ASSERT_EQ(::chmod(file.c_str(), 0640), 0);
    FileKms refused(env, FileKmsOptions{});
    Status refused_open = Status(Code::kCancelled, "not run");
    ASSERT_TRUE(real_test::run_task(loop, open(refused, refused_open)));
    EXPECT_EQ(refused_open.code(), Code::kInvalidArgument) << refused_open.to_string();
    EXPECT_TRUE(contains(refused_open.message(), "cmk.key")) << refused_open.message();
    EXPECT_TRUE(contains(refused_open.message(), "quire-cmk")) << refused_open.message();
    EXPECT_TRUE(contains(refused_open.message(), "chmod 600")) << refused_open.message();
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// A cmk.key that is a directory, or a symlink (even to a private, valid key file), is refused
// with a message saying so, before any mode check; nothing is read through the link.
TEST(FileKmsRealTest, RefusesADirectoryOrASymlinkAsTheKeyFile) {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-kms-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  {
    RealLoop loop;
    RealEnv env(loop, real_test::kTestNode, "n1", dir, nullptr, Severity::kInfo);
    auto open = [](FileKms& k, Status& out) -> Task<void> { out = co_await k.open(); };
    auto open_status = [&](const std::string& path) {
      FileKms kms(env, FileKmsOptions{.path = path});
      Status st = Status(Code::kCancelled, "not run");
      EXPECT_TRUE(real_test::run_task(loop, open(kms, st)));
      return st;
    };
    // A valid private key file to point a link at.
    ASSERT_TRUE(open_status("real.key").is_ok());

    ASSERT_EQ(::mkdir((dir + "/cmk.key").c_str(), 0755), 0);
    Status st = open_status("cmk.key");
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    EXPECT_TRUE(contains(st.message(), "cmk.key")) << st.message();
    EXPECT_TRUE(contains(st.message(), "is not a regular file (a directory)")) << st.message();
    EXPECT_FALSE(contains(st.message(), "accessible by group")) << st.message();

    ASSERT_EQ(::symlink("real.key", (dir + "/link.key").c_str()), 0);
    st = open_status("link.key");
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    EXPECT_TRUE(contains(st.message(), "link.key")) << st.message();
    EXPECT_TRUE(contains(st.message(), "is a symlink")) << st.message();
    EXPECT_TRUE(contains(st.message(), "quire-cmk")) << st.message();
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// One service shared by the world; each test node talks to it through its own client.
class SimKmsTest : public ::testing::Test {
 protected:
  SimKmsTest() : service_(*world_random_) {
    node_ = world_.add_node("n1", [](Env&) { return std::make_unique<IdleApp>(); });
    world_.start(node_);
    kms_ = std::make_unique<SimKms>(service_, *world_.env(node_));
  }

  Env& env() { return *world_.env(node_); }

  template <typename F>
  void run(F body) {
    ASSERT_TRUE(run_in_node(world_, env(), std::move(body)));
  }

  SimWorld world_{11};
  std::unique_ptr<Random> world_random_ = world_.random_stream("kms");
  SimKmsService service_;
  NodeId node_ = 0;
  std::unique_ptr<SimKms> kms_;
};

TEST_F(SimKmsTest, EveryCallTakesALatencyFromTheConfiguredRange) {
  service_.faults().latency_min = 3ms;
  service_.faults().latency_max = 7ms;
  run([&]() -> Task<void> {
    Nanos shortest = Nanos::max();
    Nanos longest = Nanos::zero();
    for (int i = 0; i < 40; ++i) {
      MonoTime before = env().executor().now();
      Result<WrappedKey> w = co_await kms_->wrap(bytes_of("c"), test_key(9));
      EXPECT_TRUE(w.is_ok());
      Nanos took = env().executor().now() - before;
      shortest = std::min(shortest, took);
      longest = std::max(longest, took);
    }
    EXPECT_GE(shortest, 3ms);
    EXPECT_LE(longest, 7ms);
    EXPECT_LT(shortest, longest);  // drawn, not fixed

    service_.faults().latency_min = service_.faults().latency_max = 5ms;
    MonoTime before = env().executor().now();
    EXPECT_TRUE((co_await kms_->versions()).is_ok());
    EXPECT_EQ(env().executor().now() - before, 5ms);
  });
  EXPECT_EQ(service_.calls(), 41u);
  EXPECT_EQ(service_.failed_calls(), 0u);
}

TEST_F(SimKmsTest, UnavailableFailsEveryCallRetriablyAfterTheLatency) {
  std::optional<WrappedKey> wrapped = wrap_on(world_, env(), *kms_, bytes_of("c"), 10);
  ASSERT_TRUE(wrapped.has_value());
  service_.faults().unavailable = true;
  service_.faults().latency_min = service_.faults().latency_max = 2ms;
  run([&]() -> Task<void> {
    MonoTime before = env().executor().now();
    Result<SecretKey> key = co_await kms_->unwrap(bytes_of("c"), *wrapped);
    EXPECT_EQ(key.code(), Code::kUnavailable);
    EXPECT_TRUE(key.status().retriable());
    EXPECT_EQ(env().executor().now() - before, 2ms);
    EXPECT_EQ((co_await kms_->wrap(bytes_of("c"), test_key(10))).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms_->active_version()).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms_->rotate()).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms_->retire(1)).code(), Code::kUnavailable);
    EXPECT_EQ((co_await kms_->versions()).code(), Code::kUnavailable);
  });
  EXPECT_EQ(service_.calls(), 7u);
  EXPECT_EQ(service_.failed_calls(), 6u);

  // Retrying once it is back succeeds, and the failed rotate changed nothing.
  service_.faults().unavailable = false;
  const std::vector<uint32_t> just_one{1};
  run([&]() -> Task<void> {
    Result<SecretKey> key = co_await kms_->unwrap(bytes_of("c"), *wrapped);
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    if (key.is_ok()) {
      EXPECT_TRUE(key->equals(test_key(10)));
    }
    EXPECT_EQ((co_await kms_->versions()).value(), just_one);
  });
}

TEST_F(SimKmsTest, RefusedVersionsAreNotFound) {
  std::optional<WrappedKey> wrapped = wrap_on(world_, env(), *kms_, bytes_of("c"), 11);
  ASSERT_TRUE(wrapped.has_value());
  service_.faults().refused.insert(1);
  run([&]() -> Task<void> {
    Result<SecretKey> key = co_await kms_->unwrap(bytes_of("c"), *wrapped);
    EXPECT_EQ(key.code(), Code::kNotFound);
    EXPECT_FALSE(key.status().retriable());
    EXPECT_TRUE(contains(key.status().message(), "quire-cmk")) << key.status().message();
    EXPECT_TRUE(contains(key.status().message(), "version 1")) << key.status().message();
    // The active version refused: wrapping fails too, until a rotation moves past it.
    EXPECT_EQ((co_await kms_->wrap(bytes_of("c"), test_key(11))).code(), Code::kNotFound);
    EXPECT_EQ((co_await kms_->rotate()).value(), 2u);
    Result<WrappedKey> w2 = co_await kms_->wrap(bytes_of("c"), test_key(11));
    EXPECT_EQ(w2.value().cmk_version, 2u);
  });
  EXPECT_EQ(service_.failed_calls(), 2u);
  service_.faults().refused.clear();
  run([&]() -> Task<void> {
    EXPECT_TRUE((co_await kms_->unwrap(bytes_of("c"), *wrapped)).is_ok());
  });
}

TEST_F(SimKmsTest, RotateRetireAndContextsBehaveLikeTheFileKms) {
  NodeId other_node = world_.add_node("n2", [](Env&) { return std::make_unique<IdleApp>(); });
  world_.start(other_node);
  SimKms other(service_, *world_.env(other_node));
  const std::vector<uint32_t> just_two{2};
  std::optional<WrappedKey> wrapped = wrap_on(world_, env(), *kms_, bytes_of("A"), 12);
  run([&]() -> Task<void> {
    EXPECT_EQ((co_await kms_->rotate()).value(), 2u);
    EXPECT_EQ((co_await kms_->retire(2)).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await kms_->retire(5)).code(), Code::kNotFound);
  });
  ASSERT_TRUE(wrapped.has_value());
  // The service is shared: another node sees the rotation and unwraps what n1 wrapped.
  ASSERT_TRUE(run_in_node(world_, *world_.env(other_node), [&]() -> Task<void> {
    EXPECT_EQ((co_await other.active_version()).value(), 2u);
    Result<SecretKey> key = co_await other.unwrap(bytes_of("A"), *wrapped);
    EXPECT_TRUE(key.is_ok()) << key.status().to_string();
    EXPECT_EQ((co_await other.unwrap(bytes_of("B"), *wrapped)).code(), Code::kCorruption);
    EXPECT_TRUE((co_await other.retire(1)).is_ok());
    EXPECT_EQ((co_await other.unwrap(bytes_of("A"), *wrapped)).code(), Code::kNotFound);
    EXPECT_EQ((co_await other.versions()).value(), just_two);
  }));
}

// What one seed produces: the wrapped bytes and when each call finished.
struct SimKmsRun {
  std::vector<Bytes> blobs;
  std::vector<MonoTime> finished;
};

SimKmsRun run_sim_kms(uint64_t seed) {
  SimWorld world(seed);
  std::unique_ptr<Random> random = world.random_stream("kms");
  SimKmsService service(*random);
  service.faults().latency_min = 1ms;
  service.faults().latency_max = 9ms;
  NodeId node = world.add_node("n1", [](Env&) { return std::make_unique<IdleApp>(); });
  world.start(node);
  SimKms kms(service, *world.env(node));
  SimKmsRun out;
  bool done = run_in_node(world, *world.env(node), [&]() -> Task<void> {
    for (int i = 0; i < 4; ++i) {
      if (i == 2) (void)co_await kms.rotate();
      Result<WrappedKey> w = co_await kms.wrap(bytes_of("c"), test_key(13));
      if (w.is_ok()) out.blobs.push_back(w->blob);
      out.finished.push_back(world.now());
    }
  });
  EXPECT_TRUE(done);
  return out;
}

TEST(SimKmsDeterminismTest, TheSameSeedGivesTheSameBytesAndTimes) {
  SimKmsRun a = run_sim_kms(5);
  SimKmsRun b = run_sim_kms(5);
  SimKmsRun c = run_sim_kms(6);
  ASSERT_EQ(a.blobs.size(), 4u);
  EXPECT_EQ(a.blobs, b.blobs);
  EXPECT_EQ(a.finished, b.finished);
  EXPECT_NE(a.blobs, c.blobs);
  EXPECT_NE(a.finished, c.finished);
  // Fresh nonces: no two wraps of the same key under the same context are alike.
  for (size_t i = 0; i < a.blobs.size(); ++i) {
    for (size_t j = i + 1; j < a.blobs.size(); ++j) EXPECT_NE(a.blobs[i], a.blobs[j]);
  }
}

}  // namespace
}  // namespace quire
