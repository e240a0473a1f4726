// The seed runner behind `quire sim kek`: `quire chaos kek` for every seed of a range, each
// in a worker process of its own, at most `jobs` at once. It prints each failing seed with
// its replay command and a summary (with the failovers the reports counted; as JSON when
// asked), keeps the output of failing seeds only, and removes its directory when nothing
// failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace quire {

inline constexpr int kSeedRunnerJobsMax = 64;

struct SeedRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t count() const { return last - first + 1; }
};

// "A..B", both ends included, A <= B, at most 1,000,000 seeds; InvalidArgument saying what
// is wrong otherwise.
Result<SeedRange> parse_seed_range(std::string_view text);

// The online CPUs, from 1 to kSeedRunnerJobsMax.
int default_seed_runner_jobs();

struct SeedRunnerOptions {
  SeedRange seeds;
  int jobs = 1;  // 1 to kSeedRunnerJobsMax
  std::string policy = "accept";
  std::optional<double> duration_seconds;  // passed on to the workers only when given
  std::optional<size_t> standbys;          // likewise
  std::vector<std::string> add_faults;     // `--add-fault NAME` each, in this order
  double seed_timeout_seconds = 0;         // 0: none
  bool stop_on_failure = false;
  std::string json_path;
  std::string worker_program = "/proc/self/exe";  // run as `PROGRAM chaos kek ...`
};

// Runs every seed (or until interrupted, or the first failure with stop_on_failure). True
// when every seed ran and passed and the JSON summary, if asked for, was written.
bool run_seed_range(const SeedRunnerOptions& options);

}  // namespace quire
