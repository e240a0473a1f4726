// ScopedCount: counts the callers inside a region for as long as they are there, a
// coroutine's suspensions included. An object that a caller may be suspended in (a retired
// Primary or Standby, kept until quiescent()) checks the count before it can be destroyed.
#pragma once

namespace quire {

class ScopedCount {
 public:
  explicit ScopedCount(int& n) : n_(n) { ++n_; }
  ~ScopedCount() { --n_; }
  ScopedCount(const ScopedCount&) = delete;
  ScopedCount& operator=(const ScopedCount&) = delete;

 private:
  int& n_;
};

}  // namespace quire
