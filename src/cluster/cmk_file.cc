#include "cluster/cmk_file.h"

#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "crypto/file_kms.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::cluster {

namespace {

constexpr NodeId kToolNode = 1;
constexpr auto kToolTimeout = std::chrono::seconds(30);

Task<void> run_kms(FileKms& kms, bool rotate, Result<CmkFileInfo>* out) {
  CmkFileInfo info;
  Status st = co_await kms.open();
  if (!st.is_ok()) {
    *out = st;
    co_return;
  }
  if (rotate) {
    auto v = co_await kms.rotate();
    if (!v.is_ok()) {
      *out = v.status();
      co_return;
    }
    info.rotated_to = *v;
  }
  auto versions = co_await kms.versions();
  if (!versions.is_ok()) {
    *out = versions.status();
    co_return;
  }
  info.versions = *versions;
  auto active = co_await kms.active_version();
  if (!active.is_ok()) {
    *out = active.status();
    co_return;
  }
  info.active = *active;
  *out = std::move(info);
}

}  // namespace

Result<CmkFileInfo> open_cmk_file(const CmkFileRequest& request) {
  if (request.create) {
    std::error_code ec;
    std::filesystem::create_directories(request.dir, ec);
    if (ec) {
      return invalid_argument(fmt::format("cannot create {}: {}", request.dir, ec.message()));
    }
  }
  RealLoop loop;
  StreamLogSink sink(stderr);
  RealEnv env(loop, kToolNode, "kms", request.dir, &sink, Severity::kError);
  FileKmsOptions options;
  options.path = request.file;
  options.key_id = request.key_id;
  options.create_if_missing = request.create;
  auto kms = std::make_unique<FileKms>(env, options);
  Result<CmkFileInfo> outcome = unavailable("not run");
  TaskId id = env.executor().spawn("kms", run_kms(*kms, request.rotate, &outcome));
  const bool done = loop.run_until([&] { return env.executor().is_done(id); }, kToolTimeout);
  loop.scheduler().destroy_node(kToolNode);  // the task references the KMS
  kms.reset();
  if (!done) {
    return unavailable(fmt::format("no answer from the CMK file in {}", request.dir));
  }
  if (!outcome.is_ok()) {
    return Status(outcome.code(),
                  fmt::format("data directory {}: {}", request.dir, outcome.status().to_string()));
  }
  return outcome;
}

}  // namespace quire::cluster
