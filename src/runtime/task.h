// Task<T>: a lazy C++20 coroutine.
//
// A Task does nothing until it is awaited (or spawned on an Executor). Awaiting a Task
// runs it at once, on the awaiting coroutine's stack, until it completes or first
// suspends. If it completed, the awaiting coroutine simply continues (await_suspend
// returns false): a loop of awaits that complete without suspending never grows the
// stack, even where the compiler does not turn symmetric transfer into a tail call (the
// sanitizer build). If it suspended, its completion later transfers straight back to the
// awaiting coroutine (symmetric transfer). Either way there are no scheduler round trips.
// Every frame knows the root task it runs under (TaskRecord), which is how waits find the
// task to park and how cancellation reaches whatever the task is waiting on.
//
// Node code returns Status/Result values; an exception escaping a task is a bug and trips
// an assertion when it reaches the root.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "base/assert.h"

namespace quire {

struct TaskRecord;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;  // the coroutine awaiting this one, if any
  TaskRecord* task = nullptr;            // the root task this frame runs under
  std::exception_ptr exception;
  bool running_inline = false;    // inside the awaiter's first resume()
  bool completed_inline = false;  // finished before that resume() returned

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      auto& p = h.promise();
      if (p.running_inline) {
        // The awaiter is still on the stack below us: return to it, and it lets the
        // awaiting coroutine continue without nesting another frame.
        p.completed_inline = true;
        return std::noop_coroutine();
      }
      auto next = p.continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (exception) std::rethrow_exception(exception);
    QUIRE_ASSERT(value.has_value());
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  void return_void() noexcept {}
  void take() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : detail::Promise<T> {
    Task get_return_object() noexcept {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool valid() const { return static_cast<bool>(h_); }

  struct Awaiter {
    Handle h;
    bool await_ready() const noexcept { return false; }
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> awaiting) noexcept {
      auto& p = h.promise();
      p.continuation = awaiting;
      p.task = awaiting.promise().task;
      p.running_inline = true;
      h.resume();
      p.running_inline = false;
      return !p.completed_inline;  // false: it finished, the awaiting coroutine goes on
    }
    T await_resume() { return h.promise().take(); }
  };

  Awaiter operator co_await() && noexcept {
    QUIRE_ASSERT(h_);
    return Awaiter{h_};
  }

  // For the executor: hands over the frame.
  Handle release() noexcept { return std::exchange(h_, nullptr); }

 private:
  explicit Task(Handle h) : h_(h) {}
  Handle h_;
};

}  // namespace quire
