// `quire kms`: the embedded KMS's CMK file on this machine. `status` opens it (creating it
// with --create) and prints its key id and CMK versions, never key bytes; `rotate` adds a
// CMK version. Both open it as a compute node does (cluster/cmk_file.h), so a
// missing, wrong or exposed CMK file gets the same error a node would print at start-up.
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cluster/cmk_file.h"

namespace quire::cli {

namespace {

struct KmsFlags {
  std::string dir;
  std::string file = "cmk.key";
  std::string key_id = "quire-cmk";
  bool create = false;
};

int run(const KmsFlags& flags, bool rotate) {
  const char* what = rotate ? "rotate" : "status";
  cluster::CmkFileRequest request{.dir = flags.dir,
                                  .file = flags.file,
                                  .key_id = flags.key_id,
                                  .create = flags.create,
                                  .rotate = rotate};
  auto info = cluster::open_cmk_file(request);
  if (!info.is_ok()) {
    fmt::print(stderr, "quire kms {}: {}\n", what, info.status().message());
    return kExitFailed;
  }
  nlohmann::ordered_json j;
  j["key_id"] = flags.key_id;
  j["file"] = flags.dir + "/" + flags.file;
  j["active_version"] = info->active;
  j["versions"] = info->versions;
  if (rotate) j["rotated_to"] = info->rotated_to;
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
