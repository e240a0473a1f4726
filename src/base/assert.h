// QUIRE_ASSERT states what the code itself guarantees. It is never used for anything
// that arrives from a disk, a network, a peer, a client or the KMS: those get a Status.
// Assertions stay on in every build type; a failed one prints where and aborts, so wrong
// code fails fast under simulation.
#pragma once

namespace quire::detail {
[[noreturn]] void assertion_failed(const char* expr, const char* file, int line, const char* msg);
}  // namespace quire::detail

#define QUIRE_ASSERT(cond)                                                   \
  do {                                                                       \
    if (!(cond)) [[unlikely]]                                                \
      ::quire::detail::assertion_failed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)

#define QUIRE_ASSERT_MSG(cond, msg)                                        \
  do {                                                                     \
    if (!(cond)) [[unlikely]]                                              \
      ::quire::detail::assertion_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)

#define QUIRE_UNREACHABLE(msg) \
  ::quire::detail::assertion_failed("unreachable", __FILE__, __LINE__, (msg))
