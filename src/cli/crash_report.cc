#include "cli/crash_report.h"

#include <execinfo.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <initializer_list>

namespace quire::cli {

#if !defined(__SANITIZE_ADDRESS__)
namespace {

constexpr int kFramesMax = 64;
constexpr size_t kAltStackBytes = 64 * 1024;
alignas(16) char g_alt_stack[kAltStackBytes];

// Only async-signal-safe calls from here on: write(2), backtrace (loaded before any crash,
// see install_crash_report), backtrace_symbols_fd, raise.
void write_str(const char* s) {
  const ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}

void write_int(int v) {
  char buf[16];
  int n = 0;
  unsigned u = v < 0 ? static_cast<unsigned>(-v) : static_cast<unsigned>(v);
  do {
    buf[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && n < 15);
  if (v < 0) write_str("-");
  while (n > 0) {
    const char c = buf[--n];
    const ssize_t ignored = ::write(STDERR_FILENO, &c, 1);
    (void)ignored;
  }
}

void on_fatal_signal(int sig) {
  write_str("\nquire: fatal signal ");
  write_int(sig);
  write_str(" (");
  write_str(sig == SIGSEGV  ? "SIGSEGV"
            : sig == SIGBUS ? "SIGBUS"
            : sig == SIGFPE ? "SIGFPE"
            : sig == SIGILL ? "SIGILL"
                            : "?");
  write_str("); backtrace (addr2line -Cfe <quire> <+offset>):\n");
  void* frames[kFramesMax];
  const int n = backtrace(frames, kFramesMax);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  write_str("quire: end of backtrace\n");
  // SA_RESETHAND restored the default action: die of the same signal.
  ::raise(sig);
}

}  // namespace
#endif

void install_crash_report() {
#if !defined(__SANITIZE_ADDRESS__)
  void* warm[1];
  backtrace(warm, 1);  // loads the unwinder now, not inside the handler
  stack_t ss{};
  ss.ss_sp = g_alt_stack;
  ss.ss_size = sizeof(g_alt_stack);
  sigaltstack(&ss, nullptr);  // a stack overflow still gets its report
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigaction(sig, &sa, nullptr);
#endif
}

}  // namespace quire::cli
