#include "base/status.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace quire {

namespace detail {
void assertion_failed(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "quire: assertion failed: %s at %s:%d%s%s\n", expr, file, line,
               msg ? ": " : "", msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

namespace {
// The names layers gave their codes (name_layer_code); null until named.
std::atomic<const char*> layer_code_names[kLayerCodeLast - kLayerCodeFirst + 1];
}  // namespace

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kCorruption:
      return "Corruption";
    case Code::kVersionTooNew:
      return "VersionTooNew";
    case Code::kOlder:
      return "Older";
    case Code::kAlreadyInstalled:
      return "AlreadyInstalled";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kSealed:
      return "Sealed";
    case Code::kBusy:
      return "Busy";
    case Code::kFenced:
      return "Fenced";
    case Code::kNotFound:
      return "NotFound";
    case Code::kIo:
      return "Io";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Code::kNotYetMaterialized:
      return "NotYetMaterialized";
    case Code::kDiscarded:
      return "Discarded";
    case Code::kKeyExhausted:
      return "KeyExhausted";
    case Code::kNoSpace:
      return "NoSpace";
  }
  const int value = static_cast<int>(code);
  if (value >= kLayerCodeFirst && value <= kLayerCodeLast) {
    const char* name = layer_code_names[value - kLayerCodeFirst].load(std::memory_order_acquire);
    if (name != nullptr) return name;
  }
  return "Unknown";
}

void name_layer_code(Code code, const char* name) {
  const int value = static_cast<int>(code);
  QUIRE_ASSERT(value >= kLayerCodeFirst && value <= kLayerCodeLast);
  QUIRE_ASSERT(name != nullptr);
  const char* expected = nullptr;
  std::atomic<const char*>& slot = layer_code_names[value - kLayerCodeFirst];
  if (!slot.compare_exchange_strong(expected, name, std::memory_order_acq_rel)) {
    QUIRE_ASSERT(std::string_view(expected) == name);  // one name per code
  }
}

bool code_is_retriable(Code code) {
  switch (code) {
    case Code::kUnavailable:
    case Code::kSealed:
    case Code::kBusy:
    case Code::kDeadlineExceeded:
    case Code::kNotYetMaterialized:
    case Code::kNoSpace:
      return true;
    default:
      return false;
  }
}

Status::Status(Code code, std::string message) {
  QUIRE_ASSERT(code != Code::kOk);
  state_ = std::make_unique<State>(State{code, std::move(message), {}, {}});
}

namespace {
const std::string& empty_string() {
  static const std::string kEmpty;
  return kEmpty;
}
const std::vector<StatusField>& empty_fields() {
  static const std::vector<StatusField> kEmpty;
  return kEmpty;
}
}  // namespace

const std::string& Status::message() const {
  return state_ ? state_->message : empty_string();
}
const std::string& Status::step() const {
  return state_ ? state_->step : empty_string();
}
const std::vector<StatusField>& Status::fields() const {
  return state_ ? state_->fields : empty_fields();
}

std::optional<uint64_t> Status::field(std::string_view key) const {
  for (const auto& f : fields()) {
    if (f.key == key) return f.value;
  }
  return std::nullopt;
}

Status& Status::at(std::string step) & {
  QUIRE_ASSERT(state_);
  state_->step = std::move(step);
  return *this;
}

Status& Status::with(std::string key, uint64_t value) & {
  QUIRE_ASSERT(state_);
  state_->fields.push_back({std::move(key), value});
  return *this;
}

Status&& Status::at(std::string step) && {
  return std::move(at(std::move(step)));
}
Status&& Status::with(std::string key, uint64_t value) && {
  return std::move(with(std::move(key), value));
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string out = fmt::format("{}: {}", code_name(state_->code), state_->message);
  if (!state_->step.empty() || !state_->fields.empty()) {
    out += " [";
    bool first = true;
    if (!state_->step.empty()) {
      out += "step=" + state_->step;
      first = false;
    }
    for (const auto& f : state_->fields) {
      if (!first) out += ' ';
      out += fmt::format("{}={}", f.key, f.value);
      first = false;
    }
    out += ']';
  }
  return out;
}

}  // namespace quire
