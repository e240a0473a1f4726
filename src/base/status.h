// Status and Result<T>: Quire's errors are values, never exceptions.
//
// A Status is either OK or carries a typed Code, a message, the step that failed and the
// ids and LSNs involved. Callers branch on the code; `retriable()` says whether trying the
// same operation again later can succeed. OK is a null pointer, so returning OK is free.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/assert.h"

namespace quire {

// The typed error codes of docs/architecture.md ("Errors") plus the runtime's own few. The numeric
// values are stable: they travel in messages between nodes.
enum class Code : uint8_t {
  kOk = 0,
  kInvalidArgument = 1,
  kCorruption = 2,        // checksum or authentication tag failed
  kVersionTooNew = 3,     // a format or compatible version this build cannot read
  kOlder = 4,             // older than what is already installed
  kAlreadyInstalled = 5,  // exactly what is already installed
  // 6, 7 and 8 are left to the layers above base (kLayerCodeFirst..kLayerCodeLast).
  kUnavailable = 9,  // retriable: a peer, server or service did not answer
  kSealed = 10,      // retriable: the segment was sealed under the write
  kBusy = 11,        // retriable: a bound was reached or a lock is held
  kFenced = 12,      // a newer term has been seen
  kNotFound = 13,
  kIo = 14,                  // the disk failed an operation
  kCancelled = 15,           // the task was cancelled
  kDeadlineExceeded = 16,    // retriable: a wait outlived its deadline
  kNotYetMaterialized = 17,  // retriable: the server has not reached that LSN yet
  kDiscarded = 18,           // the page was tombstoned
  kKeyExhausted = 19,        // a key reached its use limit; a new key version is needed
  kNoSpace = 20,  // retriable: the disk is full (ENOSPC, EDQUOT); nothing of the write is kept
};

inline constexpr int kCodeCount = 21;

// The values base leaves to the layers above it. A layer defines its codes there
// (`inline constexpr Code kMine{6};`) and names them with name_layer_code before it makes
// a Status with one.
inline constexpr int kLayerCodeFirst = 6;
inline constexpr int kLayerCodeLast = 8;
// Names a code in [kLayerCodeFirst, kLayerCodeLast] for code_name. `name` is a string
// literal (it is kept); naming a code again with the same name changes nothing.
void name_layer_code(Code code, const char* name);

// "InvalidArgument", "Corruption", ... ; a layer code's name once named; "Unknown" for
// any other value (for example a code received from a newer peer).
std::string_view code_name(Code code);

// True for the codes where retrying later can succeed without anyone intervening. The
// one classifier of codes: every "is this worth retrying" question about a code asks it.
bool code_is_retriable(Code code);

// One id or LSN attached to an error, e.g. {"lsn", 42}.
struct StatusField {
  std::string key;
  uint64_t value;
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message);

  Status(const Status& other)
      : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok() { return Status(); }

  bool is_ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  bool retriable() const { return code_is_retriable(code()); }
  const std::string& message() const;
  const std::string& step() const;
  const std::vector<StatusField>& fields() const;
  std::optional<uint64_t> field(std::string_view key) const;

  // Builders: `return Status(Code::kCorruption, "crc mismatch").at("recover").with("lsn", 7);`
  Status&& at(std::string step) &&;
  Status&& with(std::string key, uint64_t value) &&;
  Status& at(std::string step) &;
  Status& with(std::string key, uint64_t value) &;

  // "Corruption: crc mismatch [step=recover lsn=7]"
  std::string to_string() const;

  friend bool operator==(const Status& a, const Status& b) { return a.code() == b.code(); }

 private:
  struct State {
    Code code;
    std::string message;
    std::string step;
    std::vector<StatusField> fields;
  };
  std::unique_ptr<State> state_;
};

// Shorthands that read like the code they return.
inline Status invalid_argument(std::string m) {
  return Status(Code::kInvalidArgument, std::move(m));
}
inline Status corruption(std::string m) {
  return Status(Code::kCorruption, std::move(m));
}
inline Status unavailable(std::string m) {
  return Status(Code::kUnavailable, std::move(m));
}
inline Status not_found(std::string m) {
  return Status(Code::kNotFound, std::move(m));
}
inline Status io_error(std::string m) {
  return Status(Code::kIo, std::move(m));
}
inline Status busy(std::string m) {
  return Status(Code::kBusy, std::move(m));
}
inline Status cancelled(std::string m) {
  return Status(Code::kCancelled, std::move(m));
}
inline Status deadline_exceeded(std::string m) {
  return Status(Code::kDeadlineExceeded, std::move(m));
}

// A value or a non-OK Status. Constructing a Result from an OK Status is a programming
// error (there would be no value), caught by an assertion.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    QUIRE_ASSERT(!std::get<Status>(v_).is_ok());
  }

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }

  T& value() & {
    QUIRE_ASSERT(is_ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    QUIRE_ASSERT(is_ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    QUIRE_ASSERT(is_ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error; OK when there is a value.
  Status status() const { return is_ok() ? Status() : std::get<Status>(v_); }
  Status take_status() && { return is_ok() ? Status() : std::get<Status>(std::move(v_)); }
  Code code() const { return is_ok() ? Code::kOk : std::get<Status>(v_).code(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace quire

// Propagate a non-OK Status from an expression returning Status.
#define QUIRE_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::quire::Status quire_status_ = (expr);           \
    if (!quire_status_.is_ok()) return quire_status_; \
  } while (0)

#define QUIRE_CO_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::quire::Status quire_status_ = (expr);              \
    if (!quire_status_.is_ok()) co_return quire_status_; \
  } while (0)
