// `quire certs create-ca|create-node`: the certificates of mutual TLS between nodes
// (runtime/real/certs.h), laid out as
//
//   DIR/ca.crt, DIR/ca.key                    the cluster CA (ca.key stays off the nodes)
//   DIR/NAME/ca.crt, node.crt, node.key       node NAME's directory, the one to ship to it
//
// so a node runs with --tls-ca DIR/NAME/ca.crt --tls-cert DIR/NAME/node.crt
// --tls-key DIR/NAME/node.key.
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.h"
#include "runtime/real/certs.h"

namespace quire::cli {

namespace {

constexpr int64_t kSecondsPerDay = 24 * 3600;
// A century; beyond it a lifetime is a typo.
constexpr int64_t kLifetimeDaysMax = 36525;
// Node names become directory names.
constexpr size_t kNodeNameBytesMax = 64;

struct CaFlags {
  std::string dir;
  int64_t lifetime_days = 0;  // 0: the default
  bool overwrite = false;
};

struct NodeFlags {
  std::string dir;
  std::string name;
  std::vector<std::string> hosts;
  std::string ca_dir;  // empty: dir
  int64_t lifetime_days = 0;
  bool overwrite = false;
};

int run_create_ca(const CaFlags& flags) {
  CertOptions options;
  options.lifetime_s = flags.lifetime_days * kSecondsPerDay;
  options.overwrite = flags.overwrite;
  if (Status st = create_ca(flags.dir, options); !st.is_ok()) {
    fmt::print(stderr, "quire certs create-ca: {}\n", st.message());
    return kExitFailed;
  }
  fmt::print("created CA {0}/{1} and its key {0}/{2} (keep {2} off the nodes)\n", flags.dir,
             kCaCertFile, kCaKeyFile);
  return kExitOk;
}

// Whether the node's copy of the CA certificate may be written: never through a symbolic
// link (it would overwrite the file the link names), and not over an existing file unless
// --overwrite, as the node's own files. Checked before any file is written.
Status check_ca_copy(const std::string& node_dir, bool overwrite) {
  const std::string to = fmt::format("{}/{}", node_dir, kCaCertFile);
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(to, ec);
  if (std::filesystem::is_symlink(st)) {
    return invalid_argument(fmt::format("{} is a symbolic link: refusing to write through it", to));
  }
  if (std::filesystem::exists(st) && !overwrite) {
    return invalid_argument(fmt::format("{} exists (--overwrite replaces it)", to));
  }
  return Status::ok();
}

// The node's directory gets its own copy of the CA certificate it was signed by, so the
// directory alone is what the node needs.
Status copy_ca_certificate(const std::string& ca_dir, const std::string& node_dir) {
  const std::string from = fmt::format("{}/{}", ca_dir, kCaCertFile);
  const std::string to = fmt::format("{}/{}", node_dir, kCaCertFile);
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return io_error(fmt::format("cannot copy {} to {}: {}", from, to, ec.message()));
  return Status::ok();
}

int run_create_node(const NodeFlags& flags) {
  CertOptions options;
  options.ca_dir = flags.ca_dir.empty() ? flags.dir : flags.ca_dir;
  options.lifetime_s = flags.lifetime_days * kSecondsPerDay;
  options.overwrite = flags.overwrite;
  const std::string node_dir = fmt::format("{}/{}", flags.dir, flags.name);
  Status st = check_ca_copy(node_dir, flags.overwrite);
  if (st.is_ok()) st = create_node(node_dir, flags.name, flags.hosts, options);
  if (st.is_ok()) st = copy_ca_certificate(options.ca_dir, node_dir);
  if (!st.is_ok()) {
    fmt::print(stderr, "quire certs create-node: {}\n", st.message());
    return kExitFailed;
  }
  fmt::print("created node {} in {}: {}, {}, {} (hosts {})\n", flags.name, node_dir, kCaCertFile,
             kNodeCertFile, kNodeKeyFile, fmt::join(flags.hosts, ","));
  return kExitOk;
}

// A node name is one path component: letters, digits, '.', '_' and '-', not "." or "..".
CLI::Validator node_name_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty() || value.size() > kNodeNameBytesMax || value == "." || value == "..")
          return fmt::format("a node name is 1 to {} characters, not . or ..", kNodeNameBytesMax);
        for (char c : value) {
          const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
          if (!ok) return "a node name holds only letters, digits, '.', '_' and '-'";
        }
        return "";
      },
      "NAME");
}

void add_lifetime_flags(CLI::App& cmd, int64_t& lifetime_days, bool& overwrite,
                        const std::string& default_lifetime) {
  cmd.add_option("--lifetime-days", lifetime_days,
                 fmt::format("how long the certificate is valid (default {})", default_lifetime))
      ->check(CLI::Range(int64_t{1}, kLifetimeDaysMax));
  cmd.add_flag("--overwrite", overwrite, "replace files that exist instead of refusing");
}

}  // namespace

void add_certs_commands(CLI::App& app, Commands& commands) {
  CLI::App* certs = app.add_subcommand("certs", "certificates for mutual TLS between nodes");
  certs->require_subcommand(1);
  certs->footer(
      "Layout: DIR/ca.crt and DIR/ca.key are the cluster CA; DIR/NAME/ holds node NAME's "
      "ca.crt, node.crt and node.key, for --tls-ca, --tls-cert and --tls-key. Private keys are "
      "mode 0600. Nothing is overwritten without --overwrite. Exit 1 on failure (the message "
      "says why), 2 on bad usage.");

  auto ca = std::make_shared<CaFlags>();
  CLI::App* ca_cmd = certs->add_subcommand("create-ca", "create the cluster CA in DIR");
  ca_cmd->add_option("--dir", ca->dir, "directory (created when missing)")
      ->required()
      ->check(nonempty_validator());
  add_lifetime_flags(*ca_cmd, ca->lifetime_days, ca->overwrite, "3653 days");
  commands.push_back({ca_cmd, [ca] { return run_create_ca(*ca); }});

  auto node = std::make_shared<NodeFlags>();
  CLI::App* node_cmd =
      certs->add_subcommand("create-node", "create node NAME's certificate in DIR/NAME");
  node_cmd->add_option("--dir", node->dir, "certificates directory; the node's goes in DIR/NAME")
      ->required()
      ->check(nonempty_validator());
  node_cmd->add_option("--name", node->name, "the node's name (its certificate's common name)")
      ->required()
      ->check(node_name_validator());
  node_cmd
      ->add_option("--host", node->hosts,
                   "an IP address or DNS name the node is reached at (repeat for more; a "
                   "client checks the IP it dialled)")
      ->required()
      ->check(nonempty_validator());
  node_cmd->add_option("--ca-dir", node->ca_dir, "where ca.crt and ca.key are (default: DIR)")
      ->check(nonempty_validator());
  add_lifetime_flags(*node_cmd, node->lifetime_days, node->overwrite, "366 days");
  commands.push_back({node_cmd, [node] { return run_create_node(*node); }});
}

}  // namespace quire::cli
