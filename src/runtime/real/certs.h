// Certificates for mutual TLS between nodes, made with OpenSSL's X509 API in the manner of
// `cockroach cert`: one cluster CA, and for each node a certificate the CA signs.
//
// create_ca(dir) writes dir/ca.crt (the CA's self-signed certificate, which every node
// trusts) and dir/ca.key (its private key, which belongs off the nodes). create_node(dir,
// name, hosts) writes dir/node.crt and dir/node.key: a certificate with common name `name`
// whose subject alternative names are `hosts` (an IP literal becomes an IP SAN, anything
// else a DNS SAN), signed by the CA in CertOptions::ca_dir. A node certificate serves both
// ends of a connection (server and client authentication). Keys are EC P-256; private keys
// are written mode 0600, certificates 0644. Nothing is overwritten unless asked, and no
// file is written when any check fails. Errors: InvalidArgument (bad input, or an output
// file exists), NotFound (no CA files), Corruption (a CA file that does not parse, or a
// key that is not the certificate's), Io.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace quire {

// File names inside a certificates directory.
inline constexpr std::string_view kCaCertFile = "ca.crt";
inline constexpr std::string_view kCaKeyFile = "ca.key";
inline constexpr std::string_view kNodeCertFile = "node.crt";
inline constexpr std::string_view kNodeKeyFile = "node.key";

// Default lifetimes: ten years for a CA, a year for a node.
inline constexpr int64_t kCaLifetimeDefaultS = int64_t{3653} * 24 * 3600;
inline constexpr int64_t kNodeLifetimeDefaultS = int64_t{366} * 24 * 3600;
// Certificates start an hour in the past, so a peer whose clock is a little behind
// accepts a certificate made just now.
inline constexpr int64_t kNotBeforeBackdateS = 3600;
// Hosts one node certificate names at most.
inline constexpr size_t kNodeHostsMax = 64;
// The largest CA, certificate or key file a node loads.
inline constexpr uint64_t kTlsFileBytesMax = uint64_t{1} << 20;

// Whether `path` (`what`: "CA file", "key file", ...) can be loaded: a regular file (a FIFO
// would block the loader for ever), at most kTlsFileBytesMax, readable. InvalidArgument
// naming the file otherwise.
Status check_tls_file(std::string_view what, const std::string& path);

// Whether the certificate in `cert_file` (its chain after it) verifies against the CA in
// `ca_file` now: signed by it and within its validity. A node checks its own at start, so
// an expired or foreign certificate is refused there rather than showing later as every
// handshake failing. InvalidArgument naming the files and OpenSSL's reason.
Status verify_node_certificate(const std::string& ca_file, const std::string& cert_file);

struct CertOptions {
  // Where ca.crt and ca.key are, for create_node; empty means the output directory.
  std::string ca_dir;
  // Valid from now + not_before_offset_s, for lifetime_s (0: the kind's default).
  int64_t not_before_offset_s = -kNotBeforeBackdateS;
  int64_t lifetime_s = 0;
  // Replace output files that exist instead of refusing.
  bool overwrite = false;
};

// Creates dir if missing, then dir/ca.crt and dir/ca.key.
Status create_ca(const std::string& dir, const CertOptions& options = {});

// Creates dir if missing, then dir/node.crt and dir/node.key for node `name`, reachable at
// `hosts` (1 to kNodeHostsMax of them), signed by the CA in options.ca_dir (or dir).
Status create_node(const std::string& dir, std::string_view name,
                   const std::vector<std::string>& hosts, const CertOptions& options = {});

}  // namespace quire
