// Structured logging: one JSON object per line,
//   {"t":"2026-01-01T00:00:01.000250Z","s":"I","c":"net","id":20001,"ctx":"accept",
//    "msg":"connection closed","attr":{"peer":"ps1:7000"}}
// t is the node's wall clock (virtual in simulation), s the severity (D, I, W, E), c the
// component, id a stable numeric log id (unique per call site across the code base), ctx
// the running task's name, msg a fixed message, attr the varying details.
//
// A Logger belongs to one node. It takes time and task context from a LogContext (the
// node's Env) and writes finished lines to a LogSink: a file or stderr in real mode, a
// bounded in-memory ring in simulation. Lines below the minimum severity cost a compare.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"

namespace quire {

enum class Severity : uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

std::string_view severity_letter(Severity s);
// Accepts "debug", "info", "warning", "error" (or D/I/W/E).
Result<Severity> parse_severity(std::string_view s);

// One attribute. String values are views: a LogAttr lives only for the call it is passed to.
struct LogAttr {
  using Value = std::variant<int64_t, uint64_t, double, bool, std::string_view, std::string>;
  std::string_view key;
  Value value;

  LogAttr(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogAttr(std::string_view k, long v) : key(k), value(int64_t{v}) {}
  LogAttr(std::string_view k, long long v) : key(k), value(int64_t{v}) {}
  LogAttr(std::string_view k, unsigned v) : key(k), value(uint64_t{v}) {}
  LogAttr(std::string_view k, unsigned long v) : key(k), value(uint64_t{v}) {}
  LogAttr(std::string_view k, unsigned long long v) : key(k), value(uint64_t{v}) {}
  LogAttr(std::string_view k, double v) : key(k), value(v) {}
  LogAttr(std::string_view k, bool v) : key(k), value(v) {}
  LogAttr(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogAttr(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogAttr(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogAttr(std::string_view k, const Status& st) : key(k), value(st.to_string()) {}
  template <typename Tag>
  LogAttr(std::string_view k, StrongId<Tag> v) : key(k), value(uint64_t{v.value}) {}
  LogAttr(std::string_view k, Timestamp v) : key(k), value(uint64_t{v.value}) {}
};

// Where finished lines go.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(std::string_view line) = 0;
};

// Keeps the newest lines within a line and a byte bound; for simulation, dumped when a
// run fails or on request.
class RingLogSink : public LogSink {
 public:
  RingLogSink(size_t max_lines, size_t max_bytes) : max_lines_(max_lines), max_bytes_(max_bytes) {}
  void write(std::string_view line) override;
  const std::deque<std::string>& lines() const { return lines_; }
  uint64_t dropped() const { return dropped_; }
  void dump(std::FILE* out, std::string_view prefix = {}) const;

 private:
  size_t max_lines_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t dropped_ = 0;
  std::deque<std::string> lines_;
};

// Writes each line to a stdio stream (stderr, or a file it opened and owns).
class StreamLogSink : public LogSink {
 public:
  explicit StreamLogSink(std::FILE* stream, bool owned = false) : f_(stream), owned_(owned) {}
  static Result<std::unique_ptr<StreamLogSink>> open_file(const std::string& path);
  ~StreamLogSink() override;
  void write(std::string_view line) override;

 private:
  std::FILE* f_;
  bool owned_;
};

// Supplies what a log line needs from the node.
class LogContext {
 public:
  virtual ~LogContext() = default;
  virtual int64_t log_wall_time_ns() const = 0;  // Unix epoch nanoseconds
  virtual std::string_view log_task_name() const = 0;
};

class Logger {
 public:
  Logger(LogSink* sink, const LogContext* ctx, Severity min = Severity::kInfo)
      : sink_(sink), ctx_(ctx), min_(min) {}

  bool enabled(Severity s) const { return sink_ != nullptr && s >= min_; }
  void set_min_severity(Severity s) { min_ = s; }
  void set_sink(LogSink* sink) { sink_ = sink; }

  void log(Severity s, std::string_view component, uint32_t id, std::string_view msg,
           std::initializer_list<LogAttr> attrs = {});
  void debug(std::string_view c, uint32_t id, std::string_view msg,
             std::initializer_list<LogAttr> a = {}) {
    if (enabled(Severity::kDebug)) log(Severity::kDebug, c, id, msg, a);
  }
  void info(std::string_view c, uint32_t id, std::string_view msg,
            std::initializer_list<LogAttr> a = {}) {
    if (enabled(Severity::kInfo)) log(Severity::kInfo, c, id, msg, a);
  }
  void warn(std::string_view c, uint32_t id, std::string_view msg,
            std::initializer_list<LogAttr> a = {}) {
    if (enabled(Severity::kWarning)) log(Severity::kWarning, c, id, msg, a);
  }
  void error(std::string_view c, uint32_t id, std::string_view msg,
             std::initializer_list<LogAttr> a = {}) {
    if (enabled(Severity::kError)) log(Severity::kError, c, id, msg, a);
  }

  // The line log() would write, for tests and for sinks that need it as a string.
  static std::string format_line(int64_t wall_ns, Severity s, std::string_view component,
                                 uint32_t id, std::string_view ctx, std::string_view msg,
                                 std::initializer_list<LogAttr> attrs);

 private:
  LogSink* sink_;
  const LogContext* ctx_;
  Severity min_;
};

// Appends `s` to `out` as a JSON string body (without quotes): escapes quotes,
// backslashes and control characters.
void json_escape_to(std::string& out, std::string_view s);
// ISO-8601 UTC with microseconds: "2026-01-01T00:00:01.000250Z".
std::string format_utc_micros(int64_t unix_ns);

}  // namespace quire
