#include "cli/command.h"

#include <fstream>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

#include "runtime/real/certs.h"
#include "runtime/real/tcp_net.h"

namespace quire::cli {

CLI::Validator tcp_address_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        Result<TcpAddress> parsed = parse_tcp_address(value);
        return parsed.is_ok() ? std::string() : parsed.status().message();
      },
      "HOST:PORT");
}

CLI::Validator severity_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        Result<Severity> parsed = parse_severity(value);
        return parsed.is_ok() ? std::string() : parsed.status().message();
      },
      "debug|info|warning|error");
}

CLI::Validator nonempty_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string { return value.empty() ? "must not be empty" : ""; },
      "");
}

bool write_report(const std::string& path, const std::string& text) {
  if (path.empty()) return true;
  std::ofstream out(path);
  out << text;
  if (out) return true;
  fmt::print(stderr, "quire: cannot write {}\n", path);
  return false;
}

Result<std::unique_ptr<LogSink>> open_log_sink(const std::string& path) {
  if (path.empty()) return std::unique_ptr<LogSink>(std::make_unique<StreamLogSink>(stderr));
  auto file = StreamLogSink::open_file(path);
  if (!file.is_ok()) return file.status();
  return std::unique_ptr<LogSink>(std::move(file).value());
}

void add_tls_flags(CLI::App& cmd, TlsFlags& flags) {
  CLI::Option* ca =
      cmd.add_option("--tls-ca", flags.files.ca_file, "mutual TLS: the cluster CA's certificate")
          ->check(nonempty_validator());
  CLI::Option* cert = cmd.add_option("--tls-cert", flags.files.cert_file,
                                     "mutual TLS: this node's certificate (signed by the CA)")
                          ->check(nonempty_validator());
  CLI::Option* key =
      cmd.add_option("--tls-key", flags.files.key_file, "mutual TLS: this node's key (mode 0600)")
          ->check(nonempty_validator());
  ca->needs(cert)->needs(key);
  cert->needs(ca)->needs(key);
  key->needs(ca)->needs(cert);
}

Status enable_tls_flags(RealEnv& env, const TlsFlags& flags) {
  if (!flags.given()) return Status::ok();
  QUIRE_RETURN_IF_ERROR(verify_node_certificate(flags.files.ca_file, flags.files.cert_file));
  return env.enable_tls(flags.files);
}

bool is_loopback_address(const std::string& address) {
  Result<TcpAddress> parsed = parse_tcp_address(address);
  if (!parsed.is_ok()) return false;
  in_addr v4{};
  if (inet_pton(AF_INET, parsed->host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;  // 127.0.0.0/8; localhost parses as 127.0.0.1
  in6_addr v6{};
  if (inet_pton(AF_INET6, parsed->host.c_str(), &v6) == 1)
    return std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
  return false;
}

}  // namespace quire::cli
