#include "runtime/real/posix_disk.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "real_test_support.h"

namespace quire {
namespace {

using real_test::run_task;

Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// A fresh directory under the system's temporary directory, removed with everything in it
// afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/quire-disk-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    QUIRE_ASSERT_MSG(made != nullptr, "mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RealDiskTest : public ::testing::Test {
 protected:
  void TearDown() override { loop.scheduler().destroy_node(real_test::kTestNode); }

  // Runs one disk operation to completion on the loop and returns its result.
  template <typename T>
  T run(Task<T> op) {
    std::optional<T> out;
    auto driver = [](Task<T> op, std::optional<T>* out) -> Task<void> {
      out->emplace(co_await std::move(op));
    };
    bool finished = run_task(loop, driver(std::move(op), &out));
    QUIRE_ASSERT(finished && out.has_value());
    return std::move(*out);
  }

  std::unique_ptr<File> open(const std::string& path, OpenOptions options = {}) {
    Result<std::unique_ptr<File>> f = run(disk.open(path, options));
    EXPECT_TRUE(f.is_ok()) << f.status().to_string();
    return f.is_ok() ? std::move(*f) : nullptr;
  }

  Bytes read_all(File& f) {
    Result<uint64_t> size = f.size();
    EXPECT_TRUE(size.is_ok());
    Bytes out(size.is_ok() ? *size : 0);
    Result<size_t> n = run(f.read(0, out));
    EXPECT_TRUE(n.is_ok());
    if (n.is_ok()) out.resize(*n);
    return out;
  }

  RealLoop loop;
  TempDir dir;
  PosixDisk disk{dir.path()};
};

TEST_F(RealDiskTest, WritesReadsAppendsAndTruncates) {
  std::unique_ptr<File> f = open("data", {.create = true});
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path(), "data");
  EXPECT_EQ(*f->size(), 0u);

  ASSERT_TRUE(run(f->write(0, bytes_of("hello"))).is_ok());
  Result<uint64_t> at = run(f->append(bytes_of(" world")));
  ASSERT_TRUE(at.is_ok());
  EXPECT_EQ(*at, 5u);
  EXPECT_EQ(*f->size(), 11u);
  EXPECT_EQ(read_all(*f), bytes_of("hello world"));

  // A read at an offset stops at the end of the file.
  Bytes buf(100);
  Result<size_t> n = run(f->read(6, buf));
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + 5), bytes_of("world"));
  n = run(f->read(1000, buf));
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 0u);

  // A write past the end leaves a hole of zeros, and append follows the new end.
  ASSERT_TRUE(run(f->write(16, bytes_of("!"))).is_ok());
  EXPECT_EQ(*f->size(), 17u);
  at = run(f->append(bytes_of("?")));
  ASSERT_TRUE(at.is_ok());
  EXPECT_EQ(*at, 17u);

  ASSERT_TRUE(run(f->truncate(5)).is_ok());
  EXPECT_EQ(*f->size(), 5u);
  EXPECT_EQ(read_all(*f), bytes_of("hello"));
  ASSERT_TRUE(run(f->sync()).is_ok());
  ASSERT_TRUE(run(disk.sync_dir("")).is_ok());

  // Another handle sees the same bytes.
  std::unique_ptr<File> g = open("data");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(read_all(*g), bytes_of("hello"));
}

// try_lock is flock(2): a second holder (another descriptor: another process sharing the
// file, say) gets Busy until the first lets go; the lock file is 0600 and never a symlink.
TEST_F(RealDiskTest, TryLockExcludesAnotherHolderUntilReleased) {
  PosixDisk a(dir.path());
  PosixDisk b(dir.path());
  Result<std::unique_ptr<FileLock>> first = run(a.try_lock("k.lock"));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/k.lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<std::unique_ptr<FileLock>> second = run(b.try_lock("k.lock"));
  EXPECT_EQ(second.code(), Code::kBusy) << second.status().to_string();
  first->reset();
  second = run(b.try_lock("k.lock"));
  EXPECT_TRUE(second.is_ok()) << second.status().to_string();
  ASSERT_EQ(::symlink("k.lock", (dir.path() + "/link.lock").c_str()), 0);
  EXPECT_EQ(run(a.try_lock("link.lock")).code(), Code::kInvalidArgument);
}

TEST_F(RealDiskTest, LargeTransfersRoundTrip) {
  std::unique_ptr<File> f = open("big", {.create = true});
  ASSERT_NE(f, nullptr);
  Bytes data(3 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 16));
  ASSERT_TRUE(run(f->append(data)).is_ok());
  ASSERT_TRUE(run(f->append(data)).is_ok());
  EXPECT_EQ(*f->size(), 2 * data.size());
  Bytes back(data.size());
  Result<size_t> n = run(f->read(data.size(), back));
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(back, data);
}

TEST_F(RealDiskTest, OpenReportsMissingAndExistingFiles) {
  Result<std::unique_ptr<File>> missing = run(disk.open("nope", {}));
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  EXPECT_NE(missing.status().message().find("open"), std::string::npos);
  EXPECT_EQ(missing.status().field("errno"), uint64_t{ENOENT});

  ASSERT_NE(open("once", {.create = true, .exclusive = true}), nullptr);
  Result<std::unique_ptr<File>> again = run(disk.open("once", {.create = true, .exclusive = true}));
  EXPECT_EQ(again.code(), Code::kInvalidArgument);
  // Without exclusive, create opens the existing file.
  EXPECT_NE(open("once", {.create = true}), nullptr);

  // A directory is not a file; a file is not a directory.
  ASSERT_TRUE(run(disk.make_dirs("sub")).is_ok());
  EXPECT_EQ(run(disk.open("sub", {})).code(), Code::kInvalidArgument);
  EXPECT_EQ(run(disk.open("once/file", {.create = true})).code(), Code::kNotFound);
  EXPECT_EQ(run(disk.open("missing-dir/file", {.create = true})).code(), Code::kNotFound);
}

TEST_F(RealDiskTest, PermissionsReportTheModeAFileWasCreatedWith) {
  // The kernel clears the umask's bits from a new file's mode; pin it to the usual 022 so
  // the expected bits do not depend on who runs the test.
  mode_t old_mask = ::umask(022);
  ASSERT_NE(open("secret", {.create = true, .mode = 0600}), nullptr);
  ASSERT_NE(open("plain", {.create = true}), nullptr);
  ::umask(old_mask);

  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<FileStatus> secret = run(disk.file_status("secret"));
  ASSERT_TRUE(secret.is_ok()) << secret.status().to_string();
  EXPECT_EQ(secret->permissions, 0600u);
  EXPECT_EQ(secret->kind, FileKind::kRegular);
  EXPECT_EQ(run(disk.file_status("plain"))->permissions, 0644u);

  ASSERT_EQ(::chmod((dir.path() + "/secret").c_str(), 0640), 0);
  EXPECT_EQ(run(disk.file_status("secret"))->permissions, 0640u);
  // Opening an existing file never changes its bits.
  ASSERT_NE(open("secret", {.create = true, .mode = 0600}), nullptr);
  EXPECT_EQ(run(disk.file_status("secret"))->permissions, 0640u);

  Result<FileStatus> missing = run(disk.file_status("nope"));
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  EXPECT_EQ(run(disk.file_status("../etc")).code(), Code::kInvalidArgument);
}

TEST_F(RealDiskTest, FileStatusReportsALinkOrADirectoryWithoutFollowingIt) {
  ASSERT_NE(open("target", {.create = true, .mode = 0600}), nullptr);
  ASSERT_EQ(::symlink("target", (dir.path() + "/link").c_str()), 0);
  ASSERT_EQ(::mkdir((dir.path() + "/sub").c_str(), 0700), 0);
  EXPECT_EQ(run(disk.file_status("link"))->kind, FileKind::kSymlink);
  EXPECT_EQ(run(disk.file_status("sub"))->kind, FileKind::kDirectory);
  EXPECT_EQ(run(disk.file_status("sub"))->permissions, 0700u);
  // Opening through the link works unless the caller refuses links.
  EXPECT_NE(open("link", {}), nullptr);
  Result<std::unique_ptr<File>> refused = run(disk.open("link", {.follow_symlink = false}));
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("symlink"), std::string::npos);
}

TEST_F(RealDiskTest, RejectsPathsThatLeaveTheDataDirectory) {
  for (const char* bad : {"/etc/passwd", "..", "../x", "a/../../x", "a/..", "/"}) {
    EXPECT_EQ(run(disk.open(bad, {.create = true})).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.unlink(bad)).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.rename("x", bad)).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.list(bad)).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.make_dirs(bad)).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.exists(bad)).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(run(disk.sync_dir(bad)).code(), Code::kInvalidArgument) << bad;
  }
  // The root itself is a directory, never a file.
  EXPECT_EQ(run(disk.open("", {.create = true})).code(), Code::kInvalidArgument);
  EXPECT_EQ(run(disk.open(".", {.create = true})).code(), Code::kInvalidArgument);
  EXPECT_EQ(run(disk.open(std::string("a\0b", 3), {.create = true})).code(),
            Code::kInvalidArgument);
  // Nothing was created outside (or inside).
  Result<std::vector<std::string>> names = run(disk.list(""));
  ASSERT_TRUE(names.is_ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(RealDiskTest, DirectoriesListRenameUnlinkAndExist) {
  ASSERT_TRUE(run(disk.make_dirs("a/b/c")).is_ok());
  ASSERT_TRUE(run(disk.make_dirs("a/b/c")).is_ok());  // already there
  ASSERT_TRUE(run(disk.make_dirs("a/./b")).is_ok());
  for (const char* name : {"a/b/zeta", "a/b/alpha", "a/b/mid"}) {
    ASSERT_NE(open(name, {.create = true}), nullptr) << name;
  }
  Result<std::vector<std::string>> names = run(disk.list("a/b"));
  ASSERT_TRUE(names.is_ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"alpha", "c", "mid", "zeta"}));
  names = run(disk.list(""));
  ASSERT_TRUE(names.is_ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a"}));
  EXPECT_EQ(run(disk.list("missing")).code(), Code::kNotFound);

  EXPECT_TRUE(*run(disk.exists("a/b/mid")));
  EXPECT_TRUE(*run(disk.exists("a/b")));
  EXPECT_TRUE(*run(disk.exists("")));
  EXPECT_FALSE(*run(disk.exists("a/b/none")));
  EXPECT_FALSE(*run(disk.exists("a/b/mid/under-a-file")));

  ASSERT_TRUE(run(disk.rename("a/b/mid", "a/moved")).is_ok());
  EXPECT_FALSE(*run(disk.exists("a/b/mid")));
  EXPECT_TRUE(*run(disk.exists("a/moved")));
  EXPECT_EQ(run(disk.rename("a/b/mid", "a/again")).code(), Code::kNotFound);
  ASSERT_TRUE(run(disk.sync_dir("a")).is_ok());
  ASSERT_TRUE(run(disk.sync_dir("a/b")).is_ok());
  EXPECT_EQ(run(disk.sync_dir("nope")).code(), Code::kNotFound);

  ASSERT_TRUE(run(disk.unlink("a/moved")).is_ok());
  EXPECT_FALSE(*run(disk.exists("a/moved")));
  Status gone = run(disk.unlink("a/moved"));
  EXPECT_EQ(gone.code(), Code::kNotFound);
  EXPECT_NE(gone.message().find("unlink"), std::string::npos) << gone.message();

  // A file in the way of a directory is an error, not success.
  EXPECT_EQ(run(disk.make_dirs("a/b/zeta")).code(), Code::kInvalidArgument);
  EXPECT_EQ(run(disk.make_dirs("a/b/zeta/deeper")).code(), Code::kInvalidArgument);
  EXPECT_EQ(run(disk.list("a/b/zeta")).code(), Code::kNotFound);
  EXPECT_EQ(run(disk.sync_dir("a/b/zeta")).code(), Code::kNotFound);
}

TEST_F(RealDiskTest, MakeDirsCreatesAMissingDataDirectory) {
  PosixDisk nested(dir.path() + "/x/y/");
  EXPECT_FALSE(*run(nested.exists("")));
  ASSERT_TRUE(run(nested.make_dirs("")).is_ok());
  EXPECT_TRUE(*run(nested.exists("")));
  EXPECT_EQ(nested.root(), dir.path() + "/x/y");
  ASSERT_TRUE(run(nested.make_dirs("seg")).is_ok());
  Result<std::unique_ptr<File>> f = run(nested.open("seg/000001", {.create = true}));
  ASSERT_TRUE(f.is_ok());
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/x/y/seg/000001"));
}

// A data directory named relative to the working directory (`--data ps1`): make_dirs
// creates it and what is under it, each synced into its parent ("." for the first).
TEST_F(RealDiskTest, MakeDirsUnderARelativeDataDirectory) {
  const std::filesystem::path before = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  PosixDisk relative("ps1");
  const Status made = run(relative.make_dirs("seg"));
  const Status again = run(relative.make_dirs("seg"));
  std::filesystem::current_path(before);
  ASSERT_TRUE(made.is_ok()) << made.to_string();
  ASSERT_TRUE(again.is_ok()) << again.to_string();
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/ps1/seg"));
}

// The failure message names the operation, the path and the system's reason.
TEST_F(RealDiskTest, IoFailuresNameOperationPathAndReason) {
  // A name longer than any file system takes: the kernel refuses it, whoever runs the test.
  std::string name(300, 'n');
  Result<std::unique_ptr<File>> f = run(disk.open(name, {.create = true}));
  ASSERT_EQ(f.code(), Code::kIo);
  std::string message = f.status().message();
  EXPECT_NE(message.find("open"), std::string::npos) << message;
  EXPECT_NE(message.find(dir.path() + "/" + name), std::string::npos) << message;
  EXPECT_NE(message.find("File name too long"), std::string::npos) << message;
  EXPECT_EQ(f.status().field("errno"), uint64_t{ENAMETOOLONG});
  EXPECT_EQ(run(disk.unlink(name)).code(), Code::kIo);
  EXPECT_EQ(run(disk.make_dirs(name)).code(), Code::kIo);
}

// Tasks are lazy: nothing happens until awaited, and the arguments were copied, so a task
// made from temporaries still works when awaited later.
TEST_F(RealDiskTest, OperationsRunWhenAwaitedWithCopiedArguments) {
  Task<Result<std::unique_ptr<File>>> op =
      disk.open(std::string("late") + "-file", {.create = true});
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/late-file"));
  Result<std::unique_ptr<File>> f = run(std::move(op));
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/late-file"));
}

// Only regular files open: a FIFO is refused at once (a read from it would block the node
// forever), naming the path and what it is; so is a path where a file is in the way of a
// directory.
TEST_F(RealDiskTest, OpenRefusesAFifoAndMakeDirsAFileInTheWay) {
  ASSERT_EQ(::mkfifo((dir.path() + "/pipe").c_str(), 0644), 0);
  Result<std::unique_ptr<File>> f = run(disk.open("pipe", {}));
  ASSERT_EQ(f.code(), Code::kInvalidArgument);
  EXPECT_NE(f.status().message().find(dir.path() + "/pipe: is a FIFO"), std::string::npos)
      << f.status().to_string();
  ASSERT_NE(open("plain", {.create = true}), nullptr);
  Status st = run(disk.make_dirs("plain"));
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find(dir.path() + "/plain"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace quire
