// FileKms: the embedded default KMS. The CMK versions live in one file on the compute
// node's own disk (never on a page server), through the node's Disk seam.
//
// The file is created on first open with mode 0600 and one fresh CMK version. open()
// refuses, with an error naming the file and the key id:
//   - a path that is a symlink, a directory or anything but a regular file
//     (InvalidArgument, saying which; a symlink is never followed),
//   - a file that is group- or world-accessible (InvalidArgument: "chmod 600 <file>"),
//   - a file for another key id (InvalidArgument),
//   - a malformed or damaged file (Corruption),
//   - a missing file when create_if_missing is false (NotFound).
//
// Sharing. The compute nodes of a cluster share one file (`quire cluster`; on separate hosts
// a shared or replicated path, docs/deploy.md). The file is the truth: rotate and retire
// re-read it before they rewrite it, so a version another node added is never dropped, and
// unwrap of a version this instance does not hold re-reads it (at most once per
// kReloadIntervalMin), so a standby unwraps a KEK the primary wrapped under a CMK version
// it has just added. Rotation and retirement hold the file's lock (`<file>.lock`, flock;
// waiting up to kLockWaitMax for another holder) from the re-read to the rename, so two
// writers sharing the file (a deposed primary finishing a rotation, `quire kms rotate`)
// never lose each other's versions, and read the file back after the rename: a rotation
// whose version the file does not hold (a writer that ignored the lock) fails, and nothing
// is wrapped under it.
//
// File format (little-endian): magic "QCMK" | format version u8 | key id (length-prefixed)
// | active version u32 | count u32 | count x {version u32, 32 key bytes} | CRC32C (masked)
// of everything before it. Rotation and retirement write a new file (temp, sync, rename,
// sync_dir), so a crash leaves the old file or the new one.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "crypto/cmk_versions.h"
#include "crypto/kms.h"
#include "runtime/env.h"

namespace quire {

struct FileKmsOptions {
  std::string path = "cmk.key";  // relative to the node's data directory
  std::string key_id = "quire-cmk";
  bool create_if_missing = true;
};

class FileKms : public Kms {
 public:
  static constexpr Nanos kReloadIntervalMin = std::chrono::milliseconds(100);
  static constexpr Nanos kLockWaitMax = std::chrono::seconds(5);
  static constexpr Nanos kLockRetryPause = std::chrono::milliseconds(10);

  FileKms(Env& env, FileKmsOptions options);
  ~FileKms() override;

  // Loads (or creates) the file. Every other call returns Unavailable before it.
  Task<Status> open();

  const std::string& key_id() const override { return options_.key_id; }
  Task<Result<uint32_t>> active_version() override;
  Task<Result<WrappedKey>> wrap(Bytes context, SecretKey key) override;
  Task<Result<SecretKey>> unwrap(Bytes context, WrappedKey wrapped) override;
  Task<Result<uint32_t>> rotate() override;
  Task<Status> retire(uint32_t version) override;
  Task<Result<std::vector<uint32_t>>> versions() override;

 private:
  struct State;
  // Reads and decodes the file (its contents only; open() checks the path first).
  Task<Result<CmkVersions>> load();
  // Replaces the in-memory versions with the file's; the state's mutex is held.
  Task<Status> reload_locked();
  Env& env_;
  FileKmsOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace quire
