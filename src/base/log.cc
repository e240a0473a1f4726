#include "base/log.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace quire {

std::string_view severity_letter(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return "D";
    case Severity::kInfo:
      return "I";
    case Severity::kWarning:
      return "W";
    case Severity::kError:
      return "E";
  }
  return "?";
}

Result<Severity> parse_severity(std::string_view s) {
  if (s == "debug" || s == "D") return Severity::kDebug;
  if (s == "info" || s == "I") return Severity::kInfo;
  if (s == "warning" || s == "warn" || s == "W") return Severity::kWarning;
  if (s == "error" || s == "E") return Severity::kError;
  return invalid_argument(fmt::format("unknown severity '{}' (debug, info, warning, error)", s));
}

void json_escape_to(std::string& out, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", c);
        } else if (c >= 0x80) {
          // Bytes outside ASCII are escaped one by one so a line is valid JSON whatever
          // bytes an attribute carried.
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

std::string format_utc_micros(int64_t unix_ns) {
  int64_t secs = unix_ns / 1'000'000'000;
  int64_t rem = unix_ns % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    secs -= 1;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem / 1000);
}

namespace {
void append_value(std::string& out, const LogAttr::Value& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          if (!std::isfinite(x)) {
            out += "null";  // NaN or infinity have no JSON form
          } else {
            out += fmt::format("{}", x);
          }
        } else if constexpr (std::is_same_v<T, std::string_view> ||
                             std::is_same_v<T, std::string>) {
          out += '"';
          json_escape_to(out, x);
          out += '"';
        } else {
          out += fmt::format("{}", x);
        }
      },
      v);
}
}  // namespace

std::string Logger::format_line(int64_t wall_ns, Severity s, std::string_view component,
                                uint32_t id, std::string_view ctx, std::string_view msg,
                                std::initializer_list<LogAttr> attrs) {
  std::string out;
  out.reserve(160);
  out += "{\"t\":\"";
  out += format_utc_micros(wall_ns);
  out += "\",\"s\":\"";
  out += severity_letter(s);
  out += "\",\"c\":\"";
  json_escape_to(out, component);
  out += "\",\"id\":";
  out += fmt::format("{}", id);
  out += ",\"ctx\":\"";
  json_escape_to(out, ctx);
  out += "\",\"msg\":\"";
  json_escape_to(out, msg);
  out += "\",\"attr\":{";
  bool first = true;
  for (const auto& a : attrs) {
    if (!first) out += ',';
    first = false;
    out += '"';
    json_escape_to(out, a.key);
    out += "\":";
    append_value(out, a.value);
  }
  out += "}}";
  return out;
}

void Logger::log(Severity s, std::string_view component, uint32_t id, std::string_view msg,
                 std::initializer_list<LogAttr> attrs) {
  if (!enabled(s)) return;
  int64_t t = ctx_ ? ctx_->log_wall_time_ns() : 0;
  std::string_view task = ctx_ ? ctx_->log_task_name() : std::string_view();
  sink_->write(format_line(t, s, component, id, task, msg, attrs));
}

void RingLogSink::write(std::string_view line) {
  lines_.emplace_back(line);
  bytes_ += line.size();
  while (!lines_.empty() && (lines_.size() > max_lines_ || bytes_ > max_bytes_)) {
    bytes_ -= lines_.front().size();
    lines_.pop_front();
    dropped_++;
  }
}

void RingLogSink::dump(std::FILE* out, std::string_view prefix) const {
  for (const auto& l : lines_) {
    std::fprintf(out, "%.*s%s\n", static_cast<int>(prefix.size()), prefix.data(), l.c_str());
  }
}

Result<std::unique_ptr<StreamLogSink>> StreamLogSink::open_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) {
    return io_error(fmt::format("cannot open log file {}: {}", path, std::strerror(errno)));
  }
  return std::make_unique<StreamLogSink>(f, true);
}

StreamLogSink::~StreamLogSink() {
  if (owned_ && f_) std::fclose(f_);
}

void StreamLogSink::write(std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fputc('\n', f_);
  std::fflush(f_);
}

}  // namespace quire
