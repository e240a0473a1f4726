#include "crypto/file_kms.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "base/crc32c.h"
#include "crypto/cmk_versions.h"
#include "runtime/sync.h"

namespace quire {

namespace {

constexpr uint8_t kMagic[4] = {'Q', 'C', 'M', 'K'};
constexpr uint8_t kFormatVersion = 1;
constexpr uint32_t kFileMode = 0600;
// The permission bits for group and others: any of them set lets someone else read the CMKs.
constexpr uint32_t kGroupOtherBits = 077;
// A key id is a short name; this bounds what a damaged length field makes us accept.
constexpr size_t kKeyIdBytesMax = 256;
constexpr size_t kVersionRecordBytes = 4 + kSecretKeyBytes;
// magic | format | key id (varint length + bytes) | active | count | records | crc
constexpr size_t kFileBytesMax = sizeof(kMagic) + 1 + kVarint64LengthMax + kKeyIdBytesMax + 4 + 4 +
                                 CmkVersions::kVersionsMax * kVersionRecordBytes + 4;

// A buffer that held key bytes: wiped before its memory goes back to the allocator.
struct WipedBytes {
  Bytes bytes;
  WipedBytes() = default;
  WipedBytes(const WipedBytes&) = delete;
  WipedBytes& operator=(const WipedBytes&) = delete;
  ~WipedBytes() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

void encode(const CmkVersions& versions, Bytes& out) {
  // Room for the whole image first: a reallocation would leave earlier key bytes in freed
  // memory, unwiped (magic, format, key id with its varint length, active, count, versions,
  // CRC).
  out.reserve(out.size() + sizeof(kMagic) + 1 + 10 + versions.key_id().size() + 4 + 4 +
              versions.size() * (4 + kSecretKeyBytes) + 4);
  const size_t capacity = out.capacity();
  ByteWriter w(out);
  w.put_bytes(ByteView(kMagic, sizeof(kMagic)));
  w.put_u8(kFormatVersion);
  w.put_string(versions.key_id());
  w.put_fixed32(versions.active());
  w.put_fixed32(static_cast<uint32_t>(versions.size()));
  for (uint32_t version : versions.versions()) {
    w.put_fixed32(version);
    w.put_bytes(versions.key(version).reveal());
  }
  w.put_fixed32(crc32c::mask(crc32c::value(out.data(), out.size())));
  QUIRE_ASSERT(out.capacity() == capacity);  // the reservation above covers every field
}

// The file's name and key id, which every error about it carries.
std::string describe(const FileKmsOptions& o) {
  return fmt::format("CMK file {} (key id '{}')", o.path, o.key_id);
}

Status not_open(const FileKmsOptions& o) {
  return unavailable(fmt::format("{}: the KMS is not open", describe(o)));
}

// Parses and checks the file's bytes. Errors name the file and the key id.
Result<CmkVersions> decode(const FileKmsOptions& o, ByteView data) {
  auto damaged = [&](std::string_view what) {
    return corruption(fmt::format("{} is damaged: {}", describe(o), what));
  };
  if (data.size() < sizeof(kMagic) + 1 + 4)
    return damaged(fmt::format("only {} bytes", data.size()));
  if (!std::equal(kMagic, kMagic + sizeof(kMagic), data.begin())) return damaged("bad magic");
  ByteView body = data.first(data.size() - 4);
  uint32_t stored_crc = crc32c::unmask(decode_fixed32(data.data() + body.size()));
  if (stored_crc != crc32c::value(body)) return damaged("checksum mismatch");

  ByteReader r(body.subspan(sizeof(kMagic)));
  uint8_t format = 0;
  if (!r.get_u8(&format).is_ok()) return damaged("truncated format version");
  if (format != kFormatVersion) {
    if (format > kFormatVersion) {
      return Status(Code::kVersionTooNew,
                    fmt::format("{} has format version {}; this build reads {}", describe(o),
                                format, kFormatVersion));
    }
    return damaged(fmt::format("format version {}", format));
  }
  std::string key_id;
  if (!r.get_string(&key_id, kKeyIdBytesMax).is_ok()) return damaged("truncated key id");
  if (key_id != o.key_id) {
    return invalid_argument(
        fmt::format("CMK file {} holds key id '{}', expected '{}'", o.path, key_id, o.key_id));
  }
  uint32_t active = 0;
  uint32_t count = 0;
  if (!r.get_fixed32(&active).is_ok() || !r.get_fixed32(&count).is_ok())
    return damaged("truncated header");
  if (count == 0 || count > CmkVersions::kVersionsMax ||
      r.remaining() != size_t{count} * kVersionRecordBytes) {
    return damaged(fmt::format("{} versions in {} bytes", count, r.remaining()));
  }
  CmkVersions versions(o.key_id);
  uint32_t previous = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t version = 0;
    ByteView key_bytes;
    // The record count was checked against the bytes left, so these reads cannot fail.
    Status got_version = r.get_fixed32(&version);
    Status got_key = r.get_bytes(kSecretKeyBytes, &key_bytes);
    QUIRE_ASSERT(got_version.is_ok() && got_key.is_ok());
    if (version <= previous)
      return damaged(fmt::format("version {} after version {}", version, previous));
    Result<SecretKey> key = SecretKey::from_bytes(key_bytes);
    if (!key.is_ok()) return damaged(fmt::format("version {} has a malformed key", version));
    versions.add(version, std::move(key).value());
    previous = version;
  }
  if (!versions.contains(active))
    return damaged(fmt::format("active version {} is not in the file", active));
  versions.activate(active);
  return versions;
}

// The file must be a regular file of its own (not a symlink to one somewhere else, nor a
// directory) that only its owner can read: anyone who can read it holds every CMK version,
// so refuse rather than use it.
Status check_private_file(const FileKmsOptions& options, const FileStatus& stat) {
  if (stat.kind == FileKind::kSymlink) {
    return invalid_argument(
        fmt::format("{} is a symlink; it must be a regular file", describe(options)));
  }
  if (stat.kind != FileKind::kRegular) {
    return invalid_argument(
        fmt::format("{} is not a regular file ({}); it must be one", describe(options),
                    stat.kind == FileKind::kDirectory ? "a directory" : "a special file"));
  }
  if ((stat.permissions & kGroupOtherBits) != 0) {
    return invalid_argument(
        fmt::format("{} is accessible by group or others (mode {:04o}); chmod 600 {}",
                    describe(options), stat.permissions, options.path));
  }
  return Status::ok();
}

// Reads the whole file, or NotFound when it is missing.
Task<Status> read_file(Disk& disk, std::string path, std::string describe_file, WipedBytes* out) {
  // Not through a symlink swapped in since the file was checked.
  Result<std::unique_ptr<File>> file =
      co_await disk.open(path, OpenOptions{.follow_symlink = false});
  if (!file.is_ok()) co_return file.status();
  Result<uint64_t> size = (*file)->size();
  if (!size.is_ok()) co_return size.status();
  if (*size > kFileBytesMax) {
    co_return corruption(
        fmt::format("{} is damaged: {} bytes, more than any valid file", describe_file, *size));
  }
  out->bytes.resize(*size);
  Result<size_t> n = co_await (*file)->read(0, out->bytes);
  if (!n.is_ok()) co_return n.status();
  out->bytes.resize(*n);
  co_return Status();
}

// Replaces the file with `versions` so that a crash leaves the old file or the new one:
// a private temporary written and synced, renamed over, and the directory synced.
//
// A failure leaves the old file in place, or (after the rename) possibly the new one;
// both are whole and hold every version the caller still has in memory, so the caller
// reports the error and keeps its old state rather than stopping the node.
Task<Status> write_file(Disk& disk, std::string path, const CmkVersions* versions) {
  std::string tmp = path + ".tmp";
  // A leftover temporary from a crash may carry other bits; start from a fresh 0600 file.
  Status removed = co_await disk.unlink(tmp);
  if (!removed.is_ok() && removed.code() != Code::kNotFound) co_return removed;
  OpenOptions create;
  create.create = true;
  create.exclusive = true;
  create.mode = kFileMode;
  Result<std::unique_ptr<File>> file = co_await disk.open(tmp, create);
  if (!file.is_ok()) co_return file.status();
  WipedBytes image;
  encode(*versions, image.bytes);
  QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->write(0, image.bytes));
  QUIRE_CO_RETURN_IF_ERROR(co_await (*file)->sync());
  file->reset();
  QUIRE_CO_RETURN_IF_ERROR(co_await disk.rename(tmp, path));
  co_return co_await disk.sync_dir(parent_of(path));
}

// Takes the file's lock (`path`.lock), waiting up to FileKms::kLockWaitMax for another
// writer sharing the file (another compute node's rotation, `quire kms rotate`).
Task<Result<std::unique_ptr<FileLock>>> lock_file(Env& env, const std::string& path) {
  const MonoTime until = env.executor().now() + FileKms::kLockWaitMax;
  while (true) {
    Result<std::unique_ptr<FileLock>> held = co_await env.disk().try_lock(path + ".lock");
    if (held.is_ok() || held.code() != Code::kBusy || env.executor().now() >= until) co_return held;
    QUIRE_CO_RETURN_IF_ERROR(co_await env.executor().sleep(FileKms::kLockRetryPause));
  }
}

Status with_file_context(const FileKmsOptions& o, std::string_view op, const Status& st) {
  return Status(st.code(), fmt::format("{}: {}: {}", describe(o), op, st.message()));
}

}  // namespace

struct FileKms::State {
  explicit State(Env& env, const std::string& key_id)
      : mutex(env.executor().scheduler()), versions(key_id) {}

  // Serializes open, rotate and retire: each rewrites the file from the in-memory state.
  AsyncMutex mutex;
  bool open = false;
  CmkVersions versions;
  MonoTime loaded_at;  // when `versions` was last read from (or written to) the file
};

FileKms::FileKms(Env& env, FileKmsOptions options)
    : env_(env),
      options_(std::move(options)),
      state_(std::make_unique<State>(env, options_.key_id)) {}

FileKms::~FileKms() = default;

Task<Status> FileKms::open() {
  State& s = *state_;
  QUIRE_CO_RETURN_IF_ERROR(co_await s.mutex.lock());
  MutexGuard guard(s.mutex);
  if (s.open) co_return Status();
  Disk& disk = env_.disk();

  Result<FileStatus> stat = co_await disk.file_status(options_.path);
  if (!stat.is_ok() && stat.code() != Code::kNotFound)
    co_return with_file_context(options_, "stat", stat.status());
  if (!stat.is_ok()) {
    if (!options_.create_if_missing) {
      co_return not_found(
          fmt::format("{} does not exist and create_if_missing is off", describe(options_)));
    }
    CmkVersions fresh(options_.key_id);
    fresh.add(1, SecretKey::generate(env_.random()));
    fresh.activate(1);
    std::string parent = parent_of(options_.path);
    if (!parent.empty()) {
      Status made = co_await disk.make_dirs(parent);
      if (!made.is_ok()) co_return with_file_context(options_, "create directory", made);
    }
    Status written = co_await write_file(disk, options_.path, &fresh);
    if (!written.is_ok()) co_return with_file_context(options_, "create", written);
    s.versions = std::move(fresh);
    s.open = true;
    co_return Status();
  }

  QUIRE_CO_RETURN_IF_ERROR(check_private_file(options_, *stat));
  Result<CmkVersions> versions = co_await load();
  if (!versions.is_ok()) co_return versions.status();
  s.versions = std::move(versions).value();
  s.open = true;
  s.loaded_at = env_.executor().now();
  co_return Status();
}

Task<Result<CmkVersions>> FileKms::load() {
  WipedBytes data;
  Status read = co_await read_file(env_.disk(), options_.path, describe(options_), &data);
  if (read.code() == Code::kCorruption) co_return read;
  if (!read.is_ok()) co_return with_file_context(options_, "read", read);
  co_return decode(options_, data.bytes);
}

Task<Status> FileKms::reload_locked() {
  State& s = *state_;
  Result<FileStatus> stat = co_await env_.disk().file_status(options_.path);
  if (!stat.is_ok()) co_return with_file_context(options_, "stat", stat.status());
  QUIRE_CO_RETURN_IF_ERROR(check_private_file(options_, *stat));
  Result<CmkVersions> versions = co_await load();
  if (!versions.is_ok()) co_return versions.status();
  s.versions = std::move(versions).value();
  s.loaded_at = env_.executor().now();
  co_return Status();
}

Task<Result<uint32_t>> FileKms::active_version() {
  if (!state_->open) co_return not_open(options_);
  co_return state_->versions.active();
}

Task<Result<WrappedKey>> FileKms::wrap(Bytes context, SecretKey key) {
  if (!state_->open) co_return not_open(options_);
  co_return state_->versions.wrap(context, key, env_.random());
}

Task<Result<SecretKey>> FileKms::unwrap(Bytes context, WrappedKey wrapped) {
  State& s = *state_;
  if (!s.open) co_return not_open(options_);
  // A version this instance has not seen may have been added by another node sharing the
  // file (a CMK rotation on the primary): read the file again, at most once per interval.
  if (!s.versions.contains(wrapped.cmk_version) &&
      env_.executor().now() - s.loaded_at >= kReloadIntervalMin) {
    QUIRE_CO_RETURN_IF_ERROR(co_await s.mutex.lock());
    MutexGuard guard(s.mutex);
    if (!s.versions.contains(wrapped.cmk_version)) {
      Status reloaded = co_await reload_locked();
      s.loaded_at = env_.executor().now();  // a failed read also waits out the interval
      if (!reloaded.is_ok()) co_return reloaded;
    }
  }
  co_return s.versions.unwrap(context, wrapped);
}

Task<Result<uint32_t>> FileKms::rotate() {
  State& s = *state_;
  if (!s.open) co_return not_open(options_);
  QUIRE_CO_RETURN_IF_ERROR(co_await s.mutex.lock());
  MutexGuard guard(s.mutex);
  // Other processes sharing the file write it under its lock too: from the re-read to the
  // rename nobody else writes, so no version is lost to a race.
  Result<std::unique_ptr<FileLock>> file_lock = co_await lock_file(env_, options_.path);
  if (!file_lock.is_ok()) co_return with_file_context(options_, "rotate: lock", file_lock.status());
  // The file is the truth every node sharing it reads: start from what it holds now, so a
  // version another node added is never dropped by this rewrite.
  QUIRE_CO_RETURN_IF_ERROR(co_await reload_locked());
  Result<uint32_t> version = s.versions.next_version();
  if (!version.is_ok()) co_return version.status();
  // The new state goes in memory only once durable, so no wrap uses a version that a
  // crash could lose.
  CmkVersions next = s.versions.clone();
  next.add(*version, SecretKey::generate(env_.random()));
  next.activate(*version);
  Status written = co_await write_file(env_.disk(), options_.path, &next);
  if (!written.is_ok())
    co_return with_file_context(options_, fmt::format("rotate to version {}", *version), written);
  // What the file holds now must be what was written (a writer that ignored the lock, or a
  // file system that does not keep flock across hosts): nothing is wrapped under a version
  // the file lost.
  Result<CmkVersions> on_disk = co_await load();
  if (!on_disk.is_ok()) {
    co_return with_file_context(options_, fmt::format("rotate to version {}: read back", *version),
                                on_disk.status());
  }
  if (!on_disk->contains(*version) || on_disk->active() != *version ||
      !on_disk->key(*version).equals(next.key(*version))) {
    co_return with_file_context(
        options_, fmt::format("rotate to version {}", *version),
        unavailable("the file read back does not hold the version written: another writer "
                    "changed it; retry"));
  }
  s.versions = std::move(next);
  co_return *version;
}

Task<Status> FileKms::retire(uint32_t version) {
  State& s = *state_;
  if (!s.open) co_return not_open(options_);
  QUIRE_CO_RETURN_IF_ERROR(co_await s.mutex.lock());
  MutexGuard guard(s.mutex);
  Result<std::unique_ptr<FileLock>> file_lock = co_await lock_file(env_, options_.path);
  if (!file_lock.is_ok()) co_return with_file_context(options_, "retire: lock", file_lock.status());
  QUIRE_CO_RETURN_IF_ERROR(co_await reload_locked());  // as rotate does
  QUIRE_CO_RETURN_IF_ERROR(s.versions.check_retire(version));
  CmkVersions next = s.versions.clone();
  next.remove(version);
  Status written = co_await write_file(env_.disk(), options_.path, &next);
  if (!written.is_ok())
    co_return with_file_context(options_, fmt::format("retire version {}", version), written);
  s.versions = std::move(next);
  co_return Status();
}

Task<Result<std::vector<uint32_t>>> FileKms::versions() {
  if (!state_->open) co_return not_open(options_);
  co_return state_->versions.versions();
}

}  // namespace quire
