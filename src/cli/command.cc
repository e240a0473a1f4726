#include "cli/command.h"

#include <cstdio>

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

Result<std::unique_ptr<LogSink>> open_log_sink(const std::string& path) {
  if (path.empty()) return std::unique_ptr<LogSink>(std::make_unique<StreamLogSink>(stderr));
  auto file = StreamLogSink::open_file(path);
  if (!file.is_ok()) return file.status();
  return std::unique_ptr<LogSink>(std::move(file).value());
}

}  // namespace quire::cli
