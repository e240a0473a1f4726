// A process that dies of a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL) first writes
// "quire: fatal signal N (name); backtrace:" and one line per frame to stderr (a node's
// or page server's log under `quire cluster`), then dies of the same signal, so its
// supervisor and the chaos checkers see the signal as before. Frames read
// "quire(+0xOFFSET) [0xADDRESS]": `addr2line -Cfe build/release/src/quire 0xOFFSET` names
// the function and line. Under AddressSanitizer nothing is installed (it reports itself).
#pragma once

namespace quire::cli {

void install_crash_report();

}  // namespace quire::cli
