// `quire kms`: the embedded KMS's CMK file on this machine. `status` opens it (creating it
// with --create) and prints its key id and CMK versions, never key bytes; `rotate` adds a
// CMK version. Both use FileKms through a real Env, exactly as a compute node does, so a
// missing, wrong or exposed CMK file gets the same error a node would print at start-up.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "crypto/file_kms.h"
#include "runtime/real/real_env.h"
#include "runtime/real/real_loop.h"

namespace quire::cli {

namespace {

constexpr NodeId kToolNode = 1;
constexpr auto kToolTimeout = std::chrono::seconds(30);

struct KmsFlags {
  std::string dir;
  std::string file = "cmk.key";
  std::string key_id = "quire-cmk";
  bool create = false;
};

struct KmsOutcome {
  Status status;
  std::vector<uint32_t> versions;
  uint32_t active = 0;
  uint32_t rotated_to = 0;
};

Task<void> run_kms(FileKms& kms, bool rotate, KmsOutcome* out) {
  Status st = co_await kms.open();
  if (!st.is_ok()) {
    out->status = st;
    co_return;
  }
  if (rotate) {
    auto v = co_await kms.rotate();
    if (!v.is_ok()) {
      out->status = v.status();
      co_return;
    }
    out->rotated_to = *v;
  }
  auto versions = co_await kms.versions();
  if (!versions.is_ok()) {
    out->status = versions.status();
    co_return;
  }
  out->versions = *versions;
  auto active = co_await kms.active_version();
  if (!active.is_ok()) {
    out->status = active.status();
    co_return;
  }
  out->active = *active;
}

int run(const KmsFlags& flags, bool rotate) {
  if (flags.create) {
    std::error_code ec;
    std::filesystem::create_directories(flags.dir, ec);
    if (ec) {
      fmt::print(stderr, "quire kms status: cannot create {}: {}\n", flags.dir, ec.message());
      return kExitFailed;
    }
  }
  RealLoop loop;
  StreamLogSink sink(stderr);
  RealEnv env(loop, kToolNode, "kms", flags.dir, &sink, Severity::kError);
  FileKmsOptions options;
  options.path = flags.file;
  options.key_id = flags.key_id;
  options.create_if_missing = flags.create;
  auto kms = std::make_unique<FileKms>(env, options);
  std::optional<KmsOutcome> outcome;
  outcome.emplace();
  TaskId id = env.executor().spawn("kms", run_kms(*kms, rotate, &*outcome));
  const bool done = loop.run_until([&] { return env.executor().is_done(id); }, kToolTimeout);
  loop.scheduler().destroy_node(kToolNode);  // the task references the KMS
  kms.reset();
  const char* what = rotate ? "rotate" : "status";
  if (!done) {
    fmt::print(stderr, "quire kms {}: no answer from the CMK file in {}\n", what, flags.dir);
    return kExitFailed;
  }
  if (!outcome->status.is_ok()) {
    fmt::print(stderr, "quire kms {}: data directory {}: {}\n", what, flags.dir,
               outcome->status.to_string());
    return kExitFailed;
  }
  nlohmann::ordered_json j;
  j["key_id"] = flags.key_id;
  j["file"] = flags.dir + "/" + flags.file;
  j["active_version"] = outcome->active;
  j["versions"] = outcome->versions;
  if (rotate) j["rotated_to"] = outcome->rotated_to;
  fmt::print("{}\n", j.dump());
  return kExitOk;
}

void add_flags(CLI::App* cmd, KmsFlags& flags) {
  cmd->add_option("--dir", flags.dir, "the compute node's data directory")
      ->required()
      ->check(nonempty_validator());
  cmd->add_option("--file", flags.file, "the CMK file, relative to --dir")
      ->check(nonempty_validator());
  cmd->add_option("--key-id", flags.key_id, "the CMK's key id")->check(nonempty_validator());
}

}  // namespace

void add_kms_commands(CLI::App& app, Commands& commands) {
  CLI::App* kms = app.add_subcommand("kms", "the embedded KMS's CMK file");
  kms->require_subcommand(1);
  auto flags = std::make_shared<KmsFlags>();
  CLI::App* status =
      kms->add_subcommand("status", "open the CMK file and print its key id and versions");
  add_flags(status, *flags);
  status->add_flag("--create", flags->create, "create the file (mode 0600) when it is missing");
  commands.push_back({status, [flags] { return run(*flags, false); }});
  auto rotate_flags = std::make_shared<KmsFlags>();
  CLI::App* rotate = kms->add_subcommand("rotate", "add a CMK version and make it active");
  add_flags(rotate, *rotate_flags);
  commands.push_back({rotate, [rotate_flags] { return run(*rotate_flags, true); }});
}

}  // namespace quire::cli
