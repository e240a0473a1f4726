#include "runtime/sim/sim_disk.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "runtime/executor.h"

namespace quire {
namespace {

// Runs `body` as a task on node 1 until it finishes.
template <typename F>
void run(Scheduler& s, F body) {
  Executor exec(s, 1);
  bool done = false;
  auto wrapper = [](F b, bool& d) -> Task<void> {
    co_await b();
    d = true;
  };
  exec.spawn("test", wrapper(std::move(body), done));
  while (!done && s.run_next()) {
  }
  ASSERT_TRUE(done);
}

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

class SimDisk : public ::testing::Test {
 protected:
  Scheduler s;
  Executor exec{s, 1};
  SimDiskStore store{1, "n1"};
  std::unique_ptr<Disk> disk = store.make_disk(exec);
};

TEST_F(SimDisk, WritesAreVisibleAtOnceAndDurableOnlyAfterSync) {
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("a", {.create = true});
    EXPECT_TRUE(f.is_ok());
    EXPECT_TRUE((co_await disk->sync_dir("")).is_ok());
    EXPECT_TRUE((co_await (*f)->append(bytes_of("hello"))).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
    EXPECT_TRUE((co_await (*f)->append(bytes_of(" world"))).is_ok());
    Bytes buf(64);
    auto n = co_await (*f)->read(0, buf);
    EXPECT_EQ(*n, 11u);
  });
  EXPECT_EQ(*store.durable_content("a"), bytes_of("hello"));
  EXPECT_EQ(*store.current_content("a"), bytes_of("hello world"));
  store.crash(UnsyncedOnCrash::kLose);
  EXPECT_EQ(*store.current_content("a"), bytes_of("hello"));
}

TEST_F(SimDisk, KeepModeKeepsEverything) {
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("a", {.create = true});
    (void)co_await (*f)->append(bytes_of("unsynced"));
  });
  store.crash(UnsyncedOnCrash::kKeep);
  EXPECT_EQ(*store.current_content("a"), bytes_of("unsynced"));
}

TEST_F(SimDisk, DirectoryChangesNeedSyncDir) {
  run(s, [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk->make_dirs("d/e")).is_ok());
    auto f = co_await disk->open("d/e/x", {.create = true});
    EXPECT_TRUE((co_await (*f)->append(bytes_of("data"))).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());  // data synced, directory entry not
  });
  store.crash(UnsyncedOnCrash::kLose);
  EXPECT_FALSE(store.current_content("d/e/x").has_value());

  run(s, [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk->make_dirs("d/e")).is_ok());
    EXPECT_TRUE((co_await disk->sync_dir("")).is_ok());
    EXPECT_TRUE((co_await disk->sync_dir("d")).is_ok());
    auto f = co_await disk->open("d/e/x", {.create = true});
    EXPECT_TRUE((co_await (*f)->append(bytes_of("data"))).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
    EXPECT_TRUE((co_await disk->sync_dir("d/e")).is_ok());
    auto g = co_await disk->open("d/e/tmp", {.create = true});
    EXPECT_TRUE((co_await (*g)->append(bytes_of("new"))).is_ok());
    EXPECT_TRUE((co_await (*g)->sync()).is_ok());
    EXPECT_TRUE((co_await disk->rename("d/e/tmp", "d/e/x")).is_ok());  // not synced
    auto names = co_await disk->list("d/e");
    EXPECT_EQ(*names, std::vector<std::string>{"x"});
  });
  store.crash(UnsyncedOnCrash::kLose);
  EXPECT_EQ(*store.current_content("d/e/x"), bytes_of("data"));  // the rename was lost whole
}

TEST_F(SimDisk, BadPathsAndMissingFilesAreTypedErrors) {
  run(s, [&]() -> Task<void> {
    EXPECT_EQ((co_await disk->open("../etc/passwd", {.create = true})).code(),
              Code::kInvalidArgument);
    EXPECT_EQ((co_await disk->open("/abs", {.create = true})).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await disk->open("missing", {})).code(), Code::kNotFound);
    EXPECT_EQ((co_await disk->open("nodir/x", {.create = true})).code(), Code::kNotFound);
    EXPECT_EQ((co_await disk->unlink("missing")).code(), Code::kNotFound);
    auto f = co_await disk->open("x", {.create = true});
    EXPECT_EQ((co_await disk->open("x", {.create = true, .exclusive = true})).code(),
              Code::kInvalidArgument);
  });
}

TEST_F(SimDisk, InjectedEioOnEveryOperationKind) {
  std::unique_ptr<File> f;
  run(s, [&]() -> Task<void> {
    auto r = co_await disk->open("x", {.create = true});
    f = std::move(r).value();
    EXPECT_TRUE((co_await f->append(bytes_of("abc"))).is_ok());
  });
  DiskFaults faults;
  faults.read_eio = faults.write_eio = faults.sync_eio = 1.0;
  store.set_faults(faults);
  run(s, [&]() -> Task<void> {
    Bytes buf(8);
    EXPECT_EQ((co_await f->read(0, buf)).code(), Code::kIo);
    EXPECT_EQ((co_await f->append(bytes_of("d"))).code(), Code::kIo);
    EXPECT_EQ((co_await f->write(0, bytes_of("d"))).code(), Code::kIo);
    EXPECT_EQ((co_await f->sync()).code(), Code::kIo);
    EXPECT_EQ((co_await disk->sync_dir("")).code(), Code::kIo);
  });
  EXPECT_GE(store.stats().injected_eio, 5u);
  // After the failed fsync, reads still see the written bytes (Linux keeps the pages).
  EXPECT_EQ(*store.current_content("x"), bytes_of("abc"));
}

TEST_F(SimDisk, FlipBitCorruptsDurableAndVolatileImages) {
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("x", {.create = true});
    (void)co_await disk->sync_dir("");
    (void)co_await (*f)->append(bytes_of("a"));
    (void)co_await (*f)->sync();
  });
  ASSERT_TRUE(store.durable_content("x").has_value());
  EXPECT_TRUE(store.flip_bit("x", 0, 1));
  EXPECT_EQ((*store.current_content("x"))[0], 'a' ^ 2);
  EXPECT_EQ((*store.durable_content("x"))[0], 'a' ^ 2);
  EXPECT_FALSE(store.flip_bit("x", 5, 0));
}

TEST_F(SimDisk, SnapshotRestoreAndWipe) {
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("x", {.create = true});
    (void)co_await disk->sync_dir("");
    (void)co_await (*f)->append(bytes_of("old"));
    (void)co_await (*f)->sync();
  });
  auto snap = store.snapshot();
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("x", {});
    (void)co_await (*f)->append(bytes_of("new"));
    (void)co_await (*f)->sync();
  });
  store.restore(snap);
  EXPECT_EQ(*store.current_content("x"), bytes_of("old"));
  store.wipe();
  EXPECT_TRUE(store.current_files().empty());
}

TEST_F(SimDisk, PermissionsComeFromCreationAndFollowTheFile) {
  run(s, [&]() -> Task<void> {
    auto plain = co_await disk->open("plain", {.create = true});
    EXPECT_TRUE(plain.is_ok());
    auto secret = co_await disk->open("secret.tmp", {.create = true, .mode = 0600});
    EXPECT_TRUE(secret.is_ok());
    EXPECT_EQ((co_await disk->file_status("plain"))->permissions, 0644u);
    EXPECT_EQ((co_await disk->file_status("secret.tmp"))->permissions, 0600u);
    // Opening an existing file with another mode leaves its bits alone, as open(2) does.
    auto again = co_await disk->open("secret.tmp", {.create = true, .mode = 0666});
    EXPECT_TRUE(again.is_ok());
    EXPECT_EQ((co_await disk->file_status("secret.tmp"))->permissions, 0600u);
    EXPECT_TRUE((co_await disk->rename("secret.tmp", "secret")).is_ok());
    EXPECT_EQ((co_await disk->file_status("secret"))->permissions, 0600u);
    EXPECT_EQ((co_await disk->file_status("secret.tmp")).code(), Code::kNotFound);
    EXPECT_TRUE((co_await disk->sync_dir("")).is_ok());
    EXPECT_TRUE((co_await disk->make_dirs("d")).is_ok());
    EXPECT_EQ((co_await disk->file_status("d"))->permissions, 0755u);
    EXPECT_EQ((co_await disk->file_status("d"))->kind, FileKind::kDirectory);
    EXPECT_EQ((co_await disk->file_status("secret"))->kind, FileKind::kRegular);
  });

  // The bits last as long as the file: through a crash and a stale restore.
  store.crash(UnsyncedOnCrash::kLose);
  auto snap = store.snapshot();
  EXPECT_TRUE(store.set_permissions("secret", 0640));
  EXPECT_FALSE(store.set_permissions("missing", 0600));
  run(s, [&]() -> Task<void> {
    EXPECT_EQ((co_await disk->file_status("secret"))->permissions, 0640u);
    EXPECT_EQ((co_await disk->file_status("plain"))->permissions, 0644u);
  });
  store.restore(snap);
  run(s, [&]() -> Task<void> {
    EXPECT_EQ((co_await disk->file_status("secret"))->permissions, 0600u);
    EXPECT_EQ((co_await disk->file_status("missing")).code(), Code::kNotFound);
    EXPECT_EQ((co_await disk->file_status("../x")).code(), Code::kInvalidArgument);
  });
}

// A directory without its owner-write bit refuses new entries, removals and renames, as the
// kernel does for a process without CAP_DAC_OVERRIDE, while its files stay writable; the
// bits are an operator's chmod, durable at once, and go with a directory a crash takes back.
TEST_F(SimDisk, AnUnwritableDirectoryRefusesChangesToItsEntries) {
  // Named arguments: g++ 12 mishandles braced lists and literals inside co_await.
  const std::string root, d = "d", kept = "d/kept", fresh = "d/new", sub = "d/sub", moved = "moved",
                          missing = "d/missing", e = "e";
  const OpenOptions create{.create = true};
  run(s, [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk->make_dirs(d)).is_ok());
    auto f = co_await disk->open(kept, create);
    EXPECT_TRUE(f.is_ok());
    EXPECT_TRUE((co_await disk->sync_dir(root)).is_ok());
    EXPECT_TRUE((co_await disk->sync_dir(d)).is_ok());
  });
  ASSERT_TRUE(store.set_permissions(d, 0555));
  EXPECT_FALSE(store.set_permissions("nowhere", 0555));
  run(s, [&]() -> Task<void> {
    EXPECT_EQ((co_await disk->file_status(d))->permissions, 0555u);
    auto made = co_await disk->open(fresh, create);
    EXPECT_EQ(made.code(), Code::kInvalidArgument);
    EXPECT_NE(made.status().message().find("open d/new: Permission denied"), std::string::npos)
        << made.status().to_string();
    EXPECT_EQ((co_await disk->unlink(kept)).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await disk->rename(kept, moved)).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await disk->make_dirs(sub)).code(), Code::kInvalidArgument);
    EXPECT_EQ((co_await disk->unlink(missing)).code(), Code::kNotFound);
    // Its files are their own: an existing one opens (even asked to create) and takes writes.
    auto file = co_await disk->open(kept, create);
    EXPECT_TRUE(file.is_ok());
    const Bytes x = bytes_of("x");
    if (file.is_ok()) {
      EXPECT_TRUE((co_await (*file)->append(x)).is_ok());
    }
  });
  // The bits are durable at once and travel in a snapshot.
  store.crash(UnsyncedOnCrash::kLose);
  store.restore(store.snapshot());
  run(s, [&]() -> Task<void> {
    EXPECT_EQ((co_await disk->file_status(d))->permissions, 0555u);
    EXPECT_EQ((co_await disk->open(fresh, create)).code(), Code::kInvalidArgument);
  });
  ASSERT_TRUE(store.set_permissions(d, 0755));
  run(s, [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk->open(fresh, create)).is_ok());
    EXPECT_TRUE((co_await disk->unlink(fresh)).is_ok());
    EXPECT_TRUE((co_await disk->make_dirs(e)).is_ok());  // synced into d: durable at once
  });
  // A directory make_dirs created survives a crash, with its bits.
  ASSERT_TRUE(store.set_permissions(e, 0555));
  store.crash(UnsyncedOnCrash::kLose);
  run(s, [&]() -> Task<void> {
    auto there = co_await disk->exists(e);
    EXPECT_TRUE(there.is_ok() && *there);
    EXPECT_EQ((co_await disk->file_status(e))->permissions, 0555u);
  });
}

// make_dirs syncs each directory it creates into its parent: after a crash the directories
// are there, and so is a file synced under them, without anyone making them again.
TEST_F(SimDisk, DirectoriesMakeDirsCreatedSurviveACrashWithWhatWasSyncedInThem) {
  run(s, [&]() -> Task<void> {
    EXPECT_TRUE((co_await disk->make_dirs("a/b")).is_ok());
    auto f = co_await disk->open("a/b/f", {.create = true});
    EXPECT_TRUE(f.is_ok());
    if (!f.is_ok()) co_return;
    EXPECT_TRUE((co_await (*f)->append(bytes_of("x"))).is_ok());
    EXPECT_TRUE((co_await (*f)->sync()).is_ok());
    EXPECT_TRUE((co_await disk->sync_dir("a/b")).is_ok());
  });
  store.crash(UnsyncedOnCrash::kLose);
  run(s, [&]() -> Task<void> {
    auto root = co_await disk->list("a");
    EXPECT_TRUE(root.is_ok()) << root.status().to_string();
    auto names = co_await disk->list("a/b");
    EXPECT_TRUE(names.is_ok()) << names.status().to_string();
    if (names.is_ok()) {
      EXPECT_EQ(*names, std::vector<std::string>{"f"});
    }
  });
}

// After a crash that keeps a random subset, every sector of the file holds a state that
// sector really had at some moment since the last sync, and the size is one the file had.
struct DiskOp {
  int kind;  // 0 write, 1 append, 2 truncate, 3 sync
  uint32_t offset;
  uint32_t length;
  uint8_t fill;
};

RC_GTEST_PROP(SimDiskProperty, CrashLeavesOnlyStatesTheSyncPointsAllow, ()) {
  auto ops = *rc::gen::container<std::vector<DiskOp>>(
      rc::gen::build<DiskOp>(rc::gen::set(&DiskOp::kind, rc::gen::inRange(0, 4)),
                             rc::gen::set(&DiskOp::offset, rc::gen::inRange(0u, 5000u)),
                             rc::gen::set(&DiskOp::length, rc::gen::inRange(1u, 2000u)),
                             rc::gen::set(&DiskOp::fill, rc::gen::arbitrary<uint8_t>())));
  const auto seed = *rc::gen::arbitrary<uint64_t>();

  Scheduler s;
  Executor exec(s, 1);
  SimDiskStore store(seed, "n1");
  auto disk = store.make_disk(exec);
  // states[k]: the file after the k-th operation since the last sync (states[0] = synced).
  std::vector<Bytes> states{Bytes{}};
  run(s, [&]() -> Task<void> {
    auto f = co_await disk->open("f", {.create = true});
    (void)co_await disk->sync_dir("");
    Bytes image;
    uint8_t counter = 0;
    for (const auto& op : ops) {
      Bytes data(op.length, static_cast<uint8_t>(op.fill + counter++));
      switch (op.kind) {
        case 0:
          (void)co_await (*f)->write(op.offset, data);
          if (image.size() < op.offset + data.size()) image.resize(op.offset + data.size(), 0);
          std::copy(data.begin(), data.end(), image.begin() + op.offset);
          states.push_back(image);
          break;
        case 1:
          (void)co_await (*f)->append(data);
          image.insert(image.end(), data.begin(), data.end());
          states.push_back(image);
          break;
        case 2:
          (void)co_await (*f)->truncate(op.offset);
          image.resize(op.offset, 0);
          states.push_back(image);
          break;
        case 3:
          (void)co_await (*f)->sync();
          states = {image};
          break;
      }
    }
  });
  store.crash(UnsyncedOnCrash::kRandomSubset);
  Bytes got = *store.current_content("f");

  bool size_ok = std::any_of(states.begin(), states.end(),
                             [&](const Bytes& st) { return st.size() == got.size(); });
  RC_ASSERT(size_ok);
  auto at = [](const Bytes& st, size_t b) -> uint8_t { return b < st.size() ? st[b] : 0; };
  for (size_t lo = 0; lo < got.size(); lo += kSimSectorBytes) {
    size_t hi = std::min(lo + kSimSectorBytes, got.size());
    bool some_state = false;
    for (const auto& st : states) {
      bool same = true;
      for (size_t b = lo; b < hi && same; ++b) same = got[b] == at(st, b);
      if (same) {
        some_state = true;
        break;
      }
    }
    RC_ASSERT(some_state);
  }
}

}  // namespace
}  // namespace quire
