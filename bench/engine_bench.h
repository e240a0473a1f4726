// `quire bench engine`: what encryption costs the engine, against two baselines measured in
// the same run: the same engine with encryption off (EngineOptions::encrypt), and, for the
// cipher alone, raw OpenSSL AES-256-GCM in this process.
//
// Two page services of three in-process page servers each (loopback TCP, PosixDisk), one
// per mode so neither reads past the other's records; one compute node with a
// ReplicationClient (W=2) and a RecordWriter to each, and a FileKms. Each round runs both
// modes one after the other (the order alternating), each on a fresh Engine and table:
// N point writes with a checkpoint every N/10, N warm point reads, N/10 cold point reads.
// Everything runs on the one real loop of this process, page servers included.
//
// Prints the figures on stdout: medians over rounds, encrypted/plaintext ratios of wall and
// loop-thread CPU time, the crypto figures and where the encrypted time goes. Goals are
// reported, never enforced.
#pragma once

#include <cstdint>
#include <string>

#include "base/log.h"
#include "base/status.h"

namespace quire::bench {

inline constexpr uint64_t kEngineBenchKeysMax = uint64_t{1} << 24;
inline constexpr uint64_t kEngineBenchValueBytesMax = 4096;
inline constexpr uint64_t kEngineBenchRoundsMax = 100;

struct EngineBenchOptions {
  std::string data;            // the page services and the CMK file; "" for a temporary directory
  std::string json_path;       // also write the figures as JSON here, unless ""
  uint64_t keys = 20000;       // N: keys written per round and mode, 1 to kEngineBenchKeysMax
  uint64_t value_bytes = 100;  // up to kEngineBenchValueBytesMax
  uint64_t rounds = 5;         // 1 to kEngineBenchRoundsMax
  LogSink* sink = nullptr;     // the nodes' log lines; must outlive the run
  Severity severity = Severity::kWarning;
};

// Runs the rounds, prints the report and writes the JSON. An error's message says what
// could not be run (the directory is locked, a page server would not start, a read
// returned another value than was written, ...).
Status run_engine_bench(const EngineBenchOptions& options);

}  // namespace quire::bench
